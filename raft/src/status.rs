//! A read-only view of the node for status pages, metrics and tests.

use std::collections::BTreeMap;

use crate::progress::ProgressState;
use crate::types::{ConfState, LogIndex, NodeId, Role, Term};

/// The leader's view of one follower.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerProgress {
    pub match_index: LogIndex,
    pub next_index: LogIndex,
    pub state: ProgressState,
    /// Heard from since the last CheckQuorum round.
    pub recent_active: bool,
    /// AppendEntries sent and not yet acknowledged.
    pub inflight_msgs: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub id: NodeId,
    pub term: Term,
    pub vote: Option<NodeId>,
    pub role: Role,
    pub leader: Option<NodeId>,
    pub commit: LogIndex,
    pub applied: LogIndex,
    /// Entries up to here are durable on this node.
    pub persisted_index: LogIndex,
    /// The index of the latest snapshot this node holds.
    pub snapshot_index: LogIndex,
    /// The first entry the core still holds in memory: at most `snapshot_index + 1`, lower by
    /// the tail a compaction retained (`Config::snapshot_catch_up_entries`).
    pub log_first_index: LogIndex,
    /// Bytes of entries the core holds in memory (see `RawNode::log_bytes`).
    pub log_bytes: usize,
    pub last_index: LogIndex,
    /// The latest configuration in the log (the one in effect).
    pub conf_state: ConfState,
    /// Per follower, on the leader only (empty elsewhere). The leader itself is not listed: its
    /// match index is `persisted_index`.
    pub progress: BTreeMap<NodeId, PeerProgress>,
    pub lead_transferee: Option<NodeId>,
}
