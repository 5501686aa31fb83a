//! A deterministic simulator for the CASPaxos core: virtual time, a faulty network, disks that
//! lose unsynced writes, crashing nodes, skewed clocks, ring epoch changes with handoffs, and
//! clients whose history is checked for linearizability per key.

#![allow(dead_code)]

pub mod clients;
pub mod cluster;
pub mod linearizability;
pub mod nemesis;
pub mod network;
pub mod node;
pub mod ring;
pub mod scenario;
