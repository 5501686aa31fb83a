//! ringraft-campaign: the fault campaign of issue 10. Real `ringraftd` processes, each in its own
//! network namespace, clients on every node's socket, faults injected at random from a seed, and a
//! checker that reads the whole history afterwards. campaign/README.md says how to run it, what it
//! injects and what it checks.
//!
//! - `history`: the history file (JSON lines) and its recorder;
//! - `checker`: what a history must satisfy, pure;
//! - `net`: the network namespaces, the bridge and the nftables faults;
//! - `proxy`: the UDP relay between the nodes that delays, duplicates and reorders;
//! - `cluster`: the ringraftd processes (start, kill, pause, restart, fault filesystems);
//! - `workload`: the clients and watchers;
//! - `kv_workload`: the registers' clients (counter increments) and final reads;
//! - `kv_checker`: what the registers' ops of a history must satisfy, pure;
//! - `campaign`: the nemesis and one whole run.

pub mod campaign;
pub mod checker;
pub mod cluster;
pub mod history;
pub mod kv_checker;
pub mod kv_workload;
pub mod net;
pub mod proxy;
pub mod workload;
