//! Requests and responses of the local socket API. Each travels in one frame (see `frame`), wrapped
//! in a `RequestFrame` / `ResponseFrame` that carries the request id, so many requests share one
//! connection and answers may come back out of order.

use rkyv::{Archive, Deserialize, Serialize};

use crate::status::Status;

pub type NodeId = u64;

#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[rkyv(derive(Debug))]
#[repr(u8)]
pub enum MemberRole {
    Voter = 0,
    Learner = 1,
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[rkyv(derive(Debug))]
#[repr(u8)]
pub enum MemberState {
    Active = 0,
    /// Leaving on purpose: owns no keys, still replicates the log.
    Draining = 1,
    /// Not heard from within the failure detector's timeout: owns no keys.
    Down = 2,
}

/// One member of the cluster as the replicated state records it.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Member {
    pub id: NodeId,
    pub name: String,
    /// QUIC address, `host:port`.
    pub address: String,
    /// Failure domain; empty when zones are not used.
    pub zone: String,
    pub weight: u32,
    pub role: MemberRole,
    pub state: MemberState,
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[rkyv(derive(Debug))]
#[repr(u8)]
pub enum NodeRole {
    Follower = 0,
    Candidate = 1,
    Leader = 2,
    Learner = 3,
}

/// The one form people see a cluster id in: 16 lowercase hex digits, zero-padded, no prefix
/// (`ringraftctl status`, its `--json`, the daemon's logs, Python's `ClusterStatus`), so an id
/// copied from one place is found in the others. Programs get the `u64` itself (the protocol,
/// C's `ringraft_cluster_info.cluster_id`, Python's `ClusterStatus.cluster_id`); JSON carries
/// this text, as a JSON number cannot hold every u64 exactly.
pub fn cluster_id_text(cluster_id: u64) -> String {
    format!("{cluster_id:016x}")
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct StatusInfo {
    pub node_id: NodeId,
    pub name: String,
    /// Shown to people as `cluster_id_text`.
    pub cluster_id: u64,
    pub role: NodeRole,
    pub term: u64,
    /// 0 when no leader is known.
    pub leader_id: NodeId,
    pub commit_index: u64,
    pub applied_index: u64,
    pub last_index: u64,
    pub snapshot_index: u64,
    /// Raft index of the last membership change.
    pub epoch: u64,
    pub member_count: u32,
    pub daemon_version: String,
    /// The per-key registers' acceptor sets and their handoff, as this node knows them.
    pub registers: RegistersStatus,
}

/// Where the registers' acceptor sets stand (docs/paxos.md "In the daemon"): the epoch of the
/// last completed transition and the one in progress, with its handoff progress.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[rkyv(derive(Debug))]
pub struct RegistersStatus {
    /// False until the cluster enabled the registers (a state from before they existed).
    pub enabled: bool,
    /// Ring epoch of the last completed acceptor-set transition.
    pub stable_epoch: u64,
    /// Ring epoch of the transition in progress; 0 when none is.
    pub transition_epoch: u64,
    /// Acceptor sets of that transition still short of a majority of handoff reports.
    pub sets_waiting: u32,
    /// Members that reported their handoff for it.
    pub reports: u32,
    /// Keys this node still has to hand off for it.
    pub handoff_keys_remaining: u64,
}

/// One committed application proposal.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct LogRecord {
    /// The Raft index that committed it: its position in the cluster's one order.
    pub index: u64,
    pub data: Vec<u8>,
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum Request {
    Status,
    Members {
        linearizable: bool,
    },
    /// The whole ring: members, settings and the ring encoding of `ringraft-ring`.
    Ring {
        linearizable: bool,
    },
    Owner {
        key: Vec<u8>,
        linearizable: bool,
    },
    Replicas {
        key: Vec<u8>,
        n: u32,
        linearizable: bool,
    },
    /// What changed since the ring at `epoch` that the client holds: answered `RingDelta`, or
    /// `Ring` (the whole ring) when the daemon no longer has the changes since that epoch.
    RingSince {
        epoch: u64,
        linearizable: bool,
    },
    /// Commit `data` in the cluster's one order; answered once committed and applied locally.
    Propose {
        data: Vec<u8>,
        timeout_ms: u32,
    },
    /// Up to `max` records with index >= `from`.
    ReadLog {
        from: u64,
        max: u32,
    },
    /// A stream: every record with index >= `from`, now and as they commit, each answer a
    /// `Response::LogRecords` with this request's id, until `Cancel`.
    WatchLog {
        from: u64,
    },
    /// Stop a running watch.
    Cancel {
        request_id: u64,
    },
    // --- admin requests (only for the configured uids) ---
    Join {
        id: NodeId,
        name: String,
        address: String,
        zone: String,
        weight: u32,
    },
    Remove {
        id: NodeId,
    },
    Promote {
        id: NodeId,
    },
    TransferLeader {
        id: NodeId,
    },
    Snapshot,
    // --- per-key registers (CASPaxos on the key's ring replicas; see docs/paxos.md) ---
    /// A linearizable read of the register of `key`.
    KvGet {
        key: Vec<u8>,
        timeout_ms: u32,
    },
    /// Write `value` if the register's version is `expected_version` (0: only if absent;
    /// `limits::KV_ANY_VERSION`: whatever it is, a put). Answered `KvWritten`, or `KvConflict`.
    KvCas {
        key: Vec<u8>,
        expected_version: u64,
        value: Vec<u8>,
        timeout_ms: u32,
    },
    /// Leave a tombstone if the version is `expected_version` (`limits::KV_ANY_VERSION`: any).
    /// Answered `KvWritten` with version 0, or `KvConflict`.
    KvDelete {
        key: Vec<u8>,
        expected_version: u64,
        timeout_ms: u32,
    },
}

impl Request {
    /// The request's name as logs, errors and ringraftctl spell it.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Status => "status",
            Request::Members { .. } => "members",
            Request::Ring { .. } => "ring",
            Request::Owner { .. } => "owner",
            Request::Replicas { .. } => "replicas",
            Request::RingSince { .. } => "ring since",
            Request::Propose { .. } => "propose",
            Request::ReadLog { .. } => "read",
            Request::WatchLog { .. } => "watch",
            Request::Cancel { .. } => "cancel",
            Request::Join { .. } => "join",
            Request::Remove { .. } => "remove",
            Request::Promote { .. } => "promote",
            Request::TransferLeader { .. } => "transfer-leader",
            Request::Snapshot => "snapshot",
            Request::KvGet { .. } => "kv get",
            Request::KvCas { .. } => "kv cas",
            Request::KvDelete { .. } => "kv delete",
        }
    }

    pub fn is_admin(&self) -> bool {
        matches!(
            self,
            Request::Join { .. }
                | Request::Remove { .. }
                | Request::Promote { .. }
                | Request::TransferLeader { .. }
                | Request::Snapshot
        )
    }
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum Response {
    Status(StatusInfo),
    Members {
        epoch: u64,
        members: Vec<Member>,
    },
    Ring {
        epoch: u64,
        /// `ringraft_ring` encoding: rebuilds the same ring in the client process.
        ring: Vec<u8>,
        members: Vec<Member>,
        replication_factor: u32,
    },
    /// The changes from the client's ring at `from_epoch` to the daemon's at `epoch`: apply
    /// `delta` to the cached ring (`ringraft_ring::RingDelta`), replace the members listed in
    /// `members` and drop those in `removed`; the result equals the `Ring` answer at `epoch`.
    RingDelta {
        from_epoch: u64,
        epoch: u64,
        /// `ringraft_ring` delta encoding (docs/ring.md).
        delta: Vec<u8>,
        /// Members added or changed since `from_epoch`, ascending id.
        members: Vec<Member>,
        /// Members gone since `from_epoch`, ascending.
        removed: Vec<NodeId>,
        replication_factor: u32,
    },
    Owner {
        epoch: u64,
        member: Member,
    },
    Replicas {
        epoch: u64,
        members: Vec<Member>,
    },
    Proposed {
        index: u64,
    },
    LogRecords {
        records: Vec<LogRecord>,
        /// The lowest index still readable (older records fell out of the retention window).
        first_index: u64,
        /// The highest committed index applied on this node.
        last_index: u64,
    },
    /// An admin request succeeded; `index` is the Raft index that carried it (0 if none).
    Done {
        index: u64,
    },
    /// A `KvGet`: the register as chosen. `version` 0 and `value` None: absent.
    KvEntry {
        value: Option<Vec<u8>>,
        version: u64,
        /// The ring epoch the round ran under.
        epoch: u64,
    },
    /// A `KvCas` or `KvDelete` took effect: the register's new version (0 after a delete).
    KvWritten {
        version: u64,
        epoch: u64,
    },
    /// A `KvCas` or `KvDelete` whose expected version was not the current one: nothing written.
    KvConflict {
        current_version: u64,
        epoch: u64,
    },
    Error {
        status: Status,
        message: String,
    },
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct RequestFrame {
    pub id: u64,
    pub request: Request,
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct ResponseFrame {
    pub id: u64,
    pub response: Response,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_id_reads_as_sixteen_lowercase_hex_digits() {
        assert_eq!(cluster_id_text(0), "0000000000000000");
        assert_eq!(cluster_id_text(0xab), "00000000000000ab");
        assert_eq!(cluster_id_text(u64::MAX), "ffffffffffffffff");
        assert_eq!(cluster_id_text(0xED5C_0FFE_E000_0001), "ed5c0ffee0000001");
    }
}
