//! Values that cross the boundary between the Raft core and its shell: log entries, hard state,
//! snapshots, configuration states and peer messages.
//!
//! Every type here derives rkyv so the daemon can put it on the wire and check it (bytecheck)
//! before use; the core itself never serializes anything.

use rkyv::{Archive, Deserialize, Serialize};

/// A node's identity in the cluster. `0` is never a valid id.
pub type NodeId = u64;
/// A Raft term. Terms start at 0 on a fresh node and only grow.
pub type Term = u64;
/// A log position. Index 0 is the empty prefix; the first real entry has index 1.
pub type LogIndex = u64;

/// What one log entry carries.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum EntryPayload {
    /// Appended by a new leader at the start of its term (Raft thesis §3.6.2, and §6.4 for reads).
    Empty,
    /// Application data, opaque to the core.
    Normal(Vec<u8>),
    /// A membership change; takes effect as soon as it is in a node's log (thesis §4.1).
    ConfChange(ConfChange),
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Entry {
    pub term: Term,
    pub index: LogIndex,
    pub payload: EntryPayload,
}

impl Entry {
    /// Bytes this entry counts for in flow control (in-flight byte limits, message size limits).
    pub fn size_bytes(&self) -> usize {
        const HEADER_BYTES: usize = 24;
        HEADER_BYTES
            + match &self.payload {
                EntryPayload::Empty => 0,
                EntryPayload::Normal(data) => data.len(),
                EntryPayload::ConfChange(cc) => cc.context.len() + 16 * cc.changes.len(),
            }
    }
}

/// One step of a membership change.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum ConfChangeStep {
    AddVoter(NodeId),
    AddLearner(NodeId),
    RemoveNode(NodeId),
}

/// A membership change as proposed by the application.
///
/// Several steps that change the voter set at once go through joint consensus (thesis §4.3);
/// a single voter change or learner-only changes are applied directly. An empty `steps` list
/// while the configuration is joint means "leave the joint configuration".
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[rkyv(derive(Debug))]
pub struct ConfChange {
    pub changes: Vec<ConfChangeStep>,
    /// When entering a joint configuration: if true, the leader proposes the leave step by itself
    /// once the joint entry is committed.
    pub auto_leave: bool,
    /// Opaque application bytes (for example the new member's name and address).
    pub context: Vec<u8>,
}

/// The membership in effect: incoming voters, outgoing voters (non-empty only while joint),
/// learners, and learners that become learners after leaving a joint state (demoted voters).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[rkyv(derive(Debug))]
pub struct ConfState {
    pub voters: Vec<NodeId>,
    pub voters_outgoing: Vec<NodeId>,
    pub learners: Vec<NodeId>,
    pub learners_next: Vec<NodeId>,
    pub auto_leave: bool,
}

/// State that must be durable before the node acts on it.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[rkyv(derive(Debug))]
pub struct HardState {
    pub term: Term,
    /// Whom this node voted for in `term`; `None` if nobody.
    pub vote: Option<NodeId>,
    pub commit: LogIndex,
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[rkyv(derive(Debug))]
pub struct SnapshotMeta {
    /// The last log index the snapshot covers.
    pub index: LogIndex,
    /// The term of the entry at `index`.
    pub term: Term,
    /// The membership in effect at `index`.
    pub conf_state: ConfState,
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[rkyv(derive(Debug))]
pub struct Snapshot {
    pub meta: SnapshotMeta,
    /// The application's state machine image at `meta.index`, opaque to the core.
    pub data: Vec<u8>,
}

/// A message between two Raft cores. The shell delivers it to `to` and calls `step` there.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Message {
    pub from: NodeId,
    pub to: NodeId,
    /// The sender's term; for a PreVote request, the term the sender would campaign in.
    pub term: Term,
    pub body: MessageBody,
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum MessageBody {
    PreVote {
        last_log_index: LogIndex,
        last_log_term: Term,
    },
    PreVoteResponse {
        reject: bool,
    },
    Vote {
        last_log_index: LogIndex,
        last_log_term: Term,
        /// Set when the campaign follows a TimeoutNow: voters ignore their leader lease.
        leader_transfer: bool,
    },
    VoteResponse {
        reject: bool,
    },
    Append {
        prev_log_index: LogIndex,
        prev_log_term: Term,
        entries: Vec<Entry>,
        leader_commit: LogIndex,
    },
    AppendResponse {
        /// On success: the highest index known to match the leader's log.
        /// On reject: the `prev_log_index` that was rejected.
        index: LogIndex,
        reject: bool,
        /// On reject: a hint for fast back-off, the follower's last index and the term at the
        /// probed index (or the last term it has below it).
        reject_hint_index: LogIndex,
        reject_hint_term: Term,
    },
    Heartbeat {
        leader_commit: LogIndex,
        /// ReadIndex round this heartbeat confirms leadership for (0 = none).
        read_round: u64,
    },
    HeartbeatResponse {
        read_round: u64,
    },
    InstallSnapshot {
        meta: SnapshotMeta,
        /// Byte offset of `chunk` within the snapshot data.
        offset: u64,
        total_bytes: u64,
        chunk: Vec<u8>,
        done: bool,
    },
    InstallSnapshotResponse {
        snapshot_index: LogIndex,
        /// Bytes received so far, in order; the leader resumes from here.
        next_offset: u64,
        reject: bool,
    },
    TimeoutNow,
    /// A proposal forwarded from a follower to the leader.
    Propose {
        entries: Vec<EntryPayload>,
    },
    /// A ReadIndex request forwarded from a follower to the leader.
    ReadIndex {
        context: Vec<u8>,
    },
    ReadIndexResponse {
        context: Vec<u8>,
        index: LogIndex,
    },
}

/// The result of a ReadIndex request: once the node has applied up to `index`, a read that
/// reflects its state machine is linearizable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadState {
    pub context: Vec<u8>,
    pub index: LogIndex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
    /// A learner never campaigns and never votes.
    Learner,
}

/// Volatile state the shell may want to show (status, metrics) but need not persist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoftState {
    pub leader: Option<NodeId>,
    pub role: Role,
}
