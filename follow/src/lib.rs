//! ringraft-follow: the sans-IO observer plane.
//!
//! Thousands of members follow one Raft log without the leader holding progress for each: a few
//! voters run Raft (the `ringraft-raft` core), a few learners stage there before promotion, and
//! every other member is an *observer* that pulls the committed log from one upstream in a tree
//! of bounded fan-out ([`Topology`]), with a fallback when its upstream stops answering, and
//! reports the liveness of its part of the tree upward in aggregate, so the leader hears
//! O(fan_out) messages per interval and decides `down`/`active` for all.
//!
//! # The contract
//!
//! No threads, sockets, clock or disk. The shell owns one [`Node`] per process and feeds it:
//! [`Node::tick`] (the logical clock), [`Node::step`] (a peer's [`Message`]),
//! [`Node::set_topology`] / [`Node::apply_membership`] (a committed membership change at its
//! epoch), [`Node::commit`] (on voters and learners: entries Raft committed), [`Node::set_leader`],
//! [`Node::set_snapshot`]. After every input it drains [`Node::poll_output`]: messages to send,
//! entries to apply in order, a snapshot to install, a request for a snapshot of the applied
//! state, and (on the leader) liveness decisions to commit through the log. Nothing is random:
//! the same inputs give the same outputs. See docs/follow.md for the protocol.
//!
//! # Peer input is hostile
//!
//! Every response is checked before anything is applied (see `fetch.rs`): entries not starting at
//! the index asked, with gaps, above the stated commit, with falling terms or over the size
//! asked are refused and counted, never applied; nothing in this crate panics on a peer's values.

mod config;
mod fetch;
mod liveness;
mod messages;
mod mutants;
mod node;
mod served;
mod topology;
mod types;

pub use config::{Config, ConfigError};
pub use fetch::{FetchCounters, Refusal};
pub use liveness::{LivenessDecision, LivenessStatus};
pub use messages::{Digest, Message, RequestId, SilentReport};
pub use mutants::Mutant;
pub use node::{CommitError, Node, NodeCounters, Output, Start};
pub use topology::{position, Topology, TopologyError};
pub use types::{Entry, LogIndex, MembershipChange, NodeId, Role, Snapshot, Term};
