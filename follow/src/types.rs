//! Values that cross the boundary between this crate and its shell.

use std::sync::Arc;

/// A member's identity in the cluster (the same id as the Raft core's). `0` is never valid.
pub type NodeId = u64;
/// A position in the committed log. Index 0 is the empty prefix.
pub type LogIndex = u64;
/// A Raft term.
pub type Term = u64;

/// One committed log entry as observers carry it: the payload is opaque here (the daemon puts its
/// encoded Raft entry in it). The payload is shared, not copied: an upstream hands the same entry
/// to up to fan-out downstreams and keeps it in its served tail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub index: LogIndex,
    pub term: Term,
    pub data: Arc<[u8]>,
}

impl Entry {
    /// Bytes this entry counts for against a fetch's `max_bytes`: the payload plus a fixed header,
    /// so even empty entries cost something and a response of them stays bounded.
    pub fn size_bytes(&self) -> u64 {
        const HEADER_BYTES: u64 = 16;
        HEADER_BYTES + self.data.len() as u64
    }
}

/// The applied state of a member at `index`, as the shell encoded it (the daemon: its state
/// machine's snapshot). Opaque here; shared because one upstream sends it to several downstreams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub index: LogIndex,
    pub term: Term,
    pub data: Arc<[u8]>,
}

/// What a member is in the membership: voters run Raft and are the roots of the fetch tree,
/// learners are fed by the Raft leader (staging before promotion) and are not in the tree,
/// observers follow the log through the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Voter,
    Learner,
    Observer,
}

/// One change of the membership, as a committed entry carries it. The epoch of a change is the
/// index of its entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MembershipChange {
    /// Add `id` with `role`, or change an existing member's role (promotion: observer → learner
    /// → voter).
    Set(NodeId, Role),
    Remove(NodeId),
}
