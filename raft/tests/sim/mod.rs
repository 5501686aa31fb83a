//! A deterministic simulator for the Raft core: virtual time, a faulty network, disks that lose
//! unsynced writes, crashing nodes, membership churn and clients, with Raft's safety properties
//! checked after every event and the client history checked for linearizability at the end.

pub mod checkers;
pub mod client;
pub mod clock;
pub mod cluster;
pub mod disk;
pub mod linearizability;
pub mod mirror;
pub mod network;
pub mod node;
pub mod scenario;
pub mod scripted;
pub mod state_machine;
