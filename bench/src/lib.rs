//! ringraft benchmark harness: a load generator that drives a 3-node `ringraftd dev` cluster and,
//! side by side in the same run, a 3-member etcd cluster and the machine's raw limits (a Unix
//! socket round trip, a 4 KiB write+fdatasync). See `src/bin/cluster_load.rs`; and the registers
//! bench of issue 12 (compare-and-swap on the per-key registers beside etcd's Txn CAS and Raft
//! propose, 3 and 5 nodes), `src/bin/registers_load.rs`.

pub mod cas;
pub mod clusters;
pub mod cpu;
pub mod etcd;
pub mod http;
pub mod load;
pub mod procs;
pub mod reference;
pub mod registers;
pub mod registers_summary;
pub mod report;
pub mod ringraft;
pub mod stats;
pub mod suite;
pub mod summary;
