//! Settings of one Raft core.

use crate::types::NodeId;

#[derive(Debug, Clone)]
pub struct Config {
    pub id: NodeId,
    /// A follower campaigns after a random number of ticks in
    /// `[election_timeout_ticks, 2 * election_timeout_ticks)` without hearing from a leader.
    pub election_timeout_ticks: u32,
    pub heartbeat_interval_ticks: u32,
    /// Ask before disrupting: a node only campaigns if a quorum would vote for it (thesis §9.6).
    pub pre_vote: bool,
    /// A leader steps down if it has not heard from a quorum within an election timeout (§6.2).
    pub check_quorum: bool,
    /// Serve ReadIndex from the leader lease instead of a heartbeat round. Needs `check_quorum`.
    pub lease_read: bool,
    /// At most this many AppendEntries in flight to one follower in the replicate state.
    pub inflight_msgs_max: usize,
    /// At most this many entry bytes in flight to one follower.
    pub inflight_bytes_max: usize,
    /// At most this many entry bytes in one AppendEntries message (at least one entry is sent).
    pub append_bytes_max: usize,
    /// Snapshot data goes to followers in chunks of at most this many bytes.
    pub snapshot_chunk_bytes_max: usize,
    /// Refuse new proposals when this many bytes of proposals are uncommitted.
    pub uncommitted_bytes_max: usize,
    /// Seed for the RNG that draws election timeouts: same seed and inputs, same outputs.
    pub seed: u64,
}

impl Config {
    pub fn new(id: NodeId) -> Config {
        Config {
            id,
            election_timeout_ticks: 10,
            heartbeat_interval_ticks: 2,
            pre_vote: true,
            check_quorum: true,
            lease_read: false,
            inflight_msgs_max: 256,
            inflight_bytes_max: 8 << 20,
            append_bytes_max: 1 << 20,
            snapshot_chunk_bytes_max: 256 << 10,
            uncommitted_bytes_max: 64 << 20,
            seed: id,
        }
    }
}
