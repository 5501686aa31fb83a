//! ringraft benchmark harness: a load generator that drives a 3-node `ringraftd dev` cluster and,
//! side by side in the same run, a 3-member etcd cluster and the machine's raw limits (a Unix
//! socket round trip, a 4 KiB write+fdatasync). See `src/bin/cluster_load.rs`.

pub mod clusters;
pub mod cpu;
pub mod etcd;
pub mod http;
pub mod load;
pub mod procs;
pub mod reference;
pub mod report;
pub mod ringraft;
pub mod stats;
pub mod suite;
pub mod summary;
