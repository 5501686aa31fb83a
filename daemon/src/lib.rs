//! ringraftd and ringraftctl
