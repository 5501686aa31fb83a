//! Swarm testing: every seed draws its own cluster shape and fault rates, so across seeds the
//! simulator visits calm runs, lossy runs, crash storms and membership churn, and their mixes.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use ringraft_raft::Mutant;

use super::clock::{Micros, MICROS_PER_MILLI};
use super::network::NetworkFaults;
use super::node::ShellBug;

const MS: Micros = MICROS_PER_MILLI;
/// The largest clock drift drawn: the bound lease reads are configured to assume.
pub const TICK_SKEW_MAX: f64 = 0.05;

#[derive(Debug, Clone)]
pub struct Scenario {
    pub seed: u64,
    pub voters: usize,
    pub learners: usize,
    pub network: NetworkFaults,
    pub tick_interval: Micros,
    /// Each node's clock runs fast or slow by up to this fraction (its tick interval differs).
    pub tick_skew: f64,
    pub election_timeout_ticks: u32,
    pub heartbeat_interval_ticks: u32,
    pub pre_vote: bool,
    pub check_quorum: bool,
    /// Serve reads from the leader lease (only with CheckQuorum). The lease allows for the
    /// cores' default `clock_drift_percent_max` (5%), which `tick_skew` never exceeds.
    pub lease_read: bool,
    pub inflight_msgs_max: usize,
    pub append_bytes_max: usize,
    pub snapshot_chunk_bytes_max: usize,
    pub fsync_latency_max: Micros,
    /// How often the nemesis considers a fault, and the chance of each kind per visit.
    pub nemesis_interval: Micros,
    pub crash_probability: f64,
    /// Chance that a node crashes while one of its fsyncs is in flight: the window in which
    /// durability bugs show.
    pub crash_in_fsync_probability: f64,
    pub downtime_max: Micros,
    /// A crash loses between this fraction and all of the node's unsynced writes.
    pub unsynced_loss_min: f64,
    pub partition_probability: f64,
    pub partition_duration_max: Micros,
    pub membership_probability: f64,
    pub transfer_probability: f64,
    pub compaction_threshold: u64,
    pub clients: usize,
    pub keys: u64,
    pub think_time_max: Micros,
    pub retry_interval: Micros,
    pub op_timeout: Micros,
    /// Faults happen during this much virtual time; then the liveness phase starts.
    pub fault_duration: Micros,
    pub bug: ShellBug,
    /// A rule every core breaks on purpose (set by the caller; it changes none of the draws, so
    /// a mutant runs the very schedules of the same seed without it).
    pub mutant: Option<Mutant>,
}

/// Draws `p` as zero in a quarter of the runs, else uniform in `(0, max]`: some runs must be
/// free of a fault for the others to show which fault matters.
fn rate(rng: &mut ChaCha8Rng, max: f64) -> f64 {
    if rng.gen_bool(0.25) {
        0.0
    } else {
        rng.gen_range(0.0..max)
    }
}

impl Scenario {
    pub fn draw(seed: u64, rng: &mut ChaCha8Rng, bug: ShellBug) -> Scenario {
        let delay_max = [2 * MS, 5 * MS, 20 * MS][rng.gen_range(0..3)];
        let network = NetworkFaults {
            drop_probability: rate(rng, 0.3),
            duplicate_probability: rate(rng, 0.5),
            delay_min: 100,
            delay_max,
            slow_probability: rate(rng, 0.2),
            slow_delay_max: rng.gen_range(delay_max..=300 * MS),
        };
        let check_quorum = rng.gen_bool(0.8);
        let lease_read = check_quorum && rng.gen_bool(0.25);
        let tick_skew = rate(rng, TICK_SKEW_MAX);
        let mut scenario = Scenario {
            seed,
            voters: if rng.gen_bool(0.5) { 3 } else { 5 },
            learners: rng.gen_range(0..=2),
            network,
            tick_interval: 10 * MS,
            tick_skew,
            election_timeout_ticks: 10,
            heartbeat_interval_ticks: rng.gen_range(1..=3),
            pre_vote: rng.gen_bool(0.8),
            check_quorum,
            lease_read,
            inflight_msgs_max: rng.gen_range(1..=16),
            append_bytes_max: rng.gen_range(40..=4096),
            snapshot_chunk_bytes_max: rng.gen_range(16..=2048),
            fsync_latency_max: rng.gen_range(MS..=15 * MS),
            nemesis_interval: 50 * MS,
            crash_probability: rate(rng, 0.3),
            crash_in_fsync_probability: rate(rng, 0.02),
            downtime_max: rng.gen_range(10 * MS..=1_000 * MS),
            unsynced_loss_min: 0.8,
            partition_probability: rate(rng, 0.3),
            partition_duration_max: rng.gen_range(50 * MS..=1_500 * MS),
            membership_probability: rate(rng, 0.3),
            transfer_probability: rate(rng, 0.15),
            compaction_threshold: rng.gen_range(2..=40),
            clients: rng.gen_range(1..=5),
            keys: rng.gen_range(1..=4),
            think_time_max: rng.gen_range(MS..=30 * MS),
            retry_interval: 150 * MS,
            op_timeout: 1_000 * MS,
            fault_duration: 3_000 * MS,
            bug,
            mutant: None,
        };
        if bug != ShellBug::None {
            // A broken shell shows only when a crash hits its window: crash often, sync slowly.
            scenario.crash_probability = rng.gen_range(0.3..0.6);
            scenario.fsync_latency_max = 20 * MS;
        }
        scenario
    }
}
