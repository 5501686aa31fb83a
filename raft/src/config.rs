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
    /// Serve ReadIndex from the leader lease instead of a heartbeat round (thesis §6.4.1). Needs
    /// `check_quorum`, the same setting on every member (a node with `lease_read` also refuses
    /// votes for an election timeout after it starts, since a restart forgets whom it followed),
    /// and clocks whose tick rates differ from the nominal rate by at most
    /// `clock_drift_percent_max`: a lease is a bet on that bound. Off by default.
    pub lease_read: bool,
    /// The bound on clock drift that lease reads assume: every node's tick interval is within
    /// this many percent of the nominal one. The lease is shortened accordingly
    /// (see [`Config::lease_ticks`]).
    pub clock_drift_percent_max: u32,
    /// At most this many AppendEntries in flight to one follower in the replicate state.
    pub inflight_msgs_max: usize,
    /// At most this many entry bytes in flight to one follower.
    pub inflight_bytes_max: usize,
    /// At most this many entry bytes in one AppendEntries message (at least one entry is sent).
    pub append_bytes_max: usize,
    /// Snapshot data goes to followers in chunks of at most this many bytes.
    pub snapshot_chunk_bytes_max: usize,
    /// A follower refuses a snapshot announced larger than this: the partial snapshot it
    /// assembles in memory stays bounded whatever a faulty leader claims.
    pub snapshot_bytes_max: u64,
    /// Refuse new proposals when this many bytes of proposals are uncommitted.
    pub uncommitted_bytes_max: usize,
    /// A compaction keeps up to this many entries before the snapshot's index in memory, so that
    /// a follower only a little behind catches up from the log instead of a whole snapshot
    /// (etcd's SnapshotCatchUpEntries). 0 keeps none. The tail is also bounded by
    /// `snapshot_catch_up_bytes_max`; it is not kept across a restart.
    pub snapshot_catch_up_entries: u64,
    /// At most this many entry bytes in the retained tail.
    pub snapshot_catch_up_bytes_max: usize,
    /// Seed for the RNG that draws election timeouts: same seed and inputs, same outputs.
    pub seed: u64,
    /// Test-only: break one protocol rule on purpose (see [`crate::Mutant`]).
    #[cfg(feature = "mutants")]
    pub mutant: Option<crate::Mutant>,
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
            clock_drift_percent_max: 5,
            inflight_msgs_max: 256,
            inflight_bytes_max: 8 << 20,
            append_bytes_max: 1 << 20,
            snapshot_chunk_bytes_max: 256 << 10,
            snapshot_bytes_max: 1 << 30,
            uncommitted_bytes_max: 64 << 20,
            snapshot_catch_up_entries: 0,
            snapshot_catch_up_bytes_max: 16 << 20,
            seed: id,
            #[cfg(feature = "mutants")]
            mutant: None,
        }
    }
}

impl Config {
    /// How many of its own ticks a leader's lease lasts after the start of the heartbeat round a
    /// quorum acknowledged. A follower ignores (pre)votes for `election_timeout_ticks` of its
    /// ticks after hearing from the leader, which is at least `election_timeout_ticks - 1` tick
    /// intervals of real time (the lower bound of the randomized election timeout, and its first
    /// tick may come at once). The lease must end before that even when the leader's clock runs
    /// slow and the follower's fast by `clock_drift_percent_max`:
    /// `lease × (100 + d) <= (election_timeout_ticks - 1) × (100 - d)`.
    pub fn lease_ticks(&self) -> u64 {
        let drift = u64::from(self.clock_drift_percent_max.min(100));
        let sticky_ticks = u64::from(self.election_timeout_ticks.saturating_sub(1));
        let lease_ticks = sticky_ticks * (100 - drift) / (100 + drift);
        if self.mutated(crate::Mutant::LeaseTwiceTooLong) {
            return lease_ticks * 2;
        }
        lease_ticks
    }
}
