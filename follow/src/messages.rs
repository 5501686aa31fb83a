//! The messages of the follow plane. They come from peers and are hostile until checked: every
//! field a receiver acts on is validated first (see `fetch.rs` and `node.rs`); nothing here
//! panics on any value.

use std::sync::Arc;

use crate::types::{Entry, LogIndex, NodeId, Term};

/// Matches a response to the request it answers; a response to anything but the request in
/// flight is ignored (late, duplicated or forged).
pub type RequestId = u64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Downstream → upstream: send me committed entries from `from` on, at most `max_bytes` of
    /// them. Held by the upstream (a long poll) until it has something or `park_ticks` pass.
    /// Carries the sender's liveness digest when one is due.
    Fetch {
        request_id: RequestId,
        from: LogIndex,
        max_bytes: u64,
        digest: Option<Digest>,
    },
    /// Upstream → downstream: `entries` start at the request's `from`, are contiguous, and are
    /// all at or below `commit`, the upstream's committed (for an observer: applied) index.
    /// Empty when the long poll expired.
    Entries {
        request_id: RequestId,
        entries: Vec<Entry>,
        commit: LogIndex,
    },
    /// Upstream → downstream: my log starts after your `from`; fetch my snapshot at `index`.
    SnapshotNeeded {
        request_id: RequestId,
        index: LogIndex,
        term: Term,
        total_bytes: u64,
    },
    /// Downstream → upstream: send the snapshot at `index` from byte `offset`.
    SnapshotFetch {
        request_id: RequestId,
        index: LogIndex,
        offset: u64,
    },
    /// Upstream → downstream: bytes `[offset, offset + data.len())` of the snapshot at `index`.
    SnapshotChunk {
        request_id: RequestId,
        index: LogIndex,
        term: Term,
        offset: u64,
        total_bytes: u64,
        data: Arc<[u8]>,
    },
    /// Observer on its fallback → its primary: are you answering again?
    Probe {
        request_id: RequestId,
    },
    ProbeAck {
        request_id: RequestId,
    },
    /// A liveness digest on its own: from a voter to the leader, or from an observer whose fetch
    /// is parked when its digest is due.
    DigestOnly {
        digest: Digest,
    },
}

/// What a member reports up the tree about its part of it: the members it is responsible for and
/// has not heard from lately, and the members that reached it through the fallback rule (alive,
/// though their own upstream may report them silent). Empty in the normal case, so a digest costs
/// O(failures), not O(subtree).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Digest {
    pub silent: Vec<SilentReport>,
    /// Members heard through the fallback rule, with the ticks since they were last heard (as of
    /// the digest's sending), so the leader knows when they were alive, not when it learned it.
    pub adopted_alive: Vec<(NodeId, u64)>,
    /// Reports the sender could not carry (over `digest_members_max`), so the leader knows its
    /// view is partial.
    pub dropped: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SilentReport {
    pub member: NodeId,
    /// Ticks since the reporter last heard from the member, as of the digest's sending.
    pub silent_ticks: u64,
    /// `None` when the reporter is the member's own upstream; `Some(p)` when the reporter took the
    /// member over because its upstream `p` is itself silent (the leader counts such a report only
    /// while `p` is reported silent too).
    pub through: Option<NodeId>,
    /// The reporter has not heard the member since it became responsible for it: the silence may
    /// have begun earlier, under a previous upstream (the leader then keeps the earlier start).
    pub never_heard: bool,
    /// Ticks since the report was made by the member's reporter (0 there; each upstream that
    /// forwards a stored copy adds how long it held it).
    pub age_ticks: u64,
}
