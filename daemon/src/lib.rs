//! ringraft-daemon: the node-local coordination daemon (`ringraftd`) and its command line
//! (`ringraftctl`).
//!
//! Data flows one way: a local socket request (`api`) goes to the node loop (`node`), which
//! drives the Raft core (ringraft-raft), makes its work durable (ringraft-storage), talks to peers
//! (`transport`), and applies committed entries to the replicated state (`state`), whose answers
//! go back to the client. Per-key register requests go to `registers` instead, which runs
//! CASPaxos on each key's ring replicas beside the node loop.

pub mod api;
pub mod certs;
pub mod config;
pub mod ctl;
pub mod dev;
pub mod metrics;
pub mod node;
pub mod registers;
pub mod run;
pub mod state;
pub mod systemd;
pub mod transport;
