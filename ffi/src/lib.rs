//! libringraft: the C ABI client of ringraftd
