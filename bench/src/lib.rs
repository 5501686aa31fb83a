//! ringraft benchmark harness
