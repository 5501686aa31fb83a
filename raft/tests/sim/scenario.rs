//! Swarm testing: every seed draws its own cluster shape and fault rates, so across seeds the
//! simulator visits calm runs, lossy runs, crash storms and membership churn, and their mixes.
//!
//! Besides faults at random times, a seed draws which faults react to protocol events (a new
//! leader, a configuration entry appended, an append of older entries, a snapshot sent): random
//! schedules are blind to rules that matter only in one order of events (the paper's figure 8,
//! the membership errata), and a nemesis that strikes at those moments lines them up.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use ringraft_raft::Mutant;

use super::clock::{Micros, MICROS_PER_MILLI};
use super::network::NetworkFaults;
use super::node::ShellBug;

const MS: Micros = MICROS_PER_MILLI;
/// The largest clock drift drawn: the bound lease reads are configured to assume.
pub const TICK_SKEW_MAX: f64 = 0.05;

/// What a seed concentrates on. Most seeds mix everything; some make one pattern of events
/// frequent that a mix reaches too rarely for the default seeds (swarm testing: a seed that leaves
/// most faults out shows what the few it keeps can do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    General,
    /// New leaders cut off at once, or losing their own new entries while older ones travel,
    /// then going down: logs whose last terms differ, as in the paper's figure 8.
    LoneLeaders,
    /// Clusters of 4 or 6 voters whose leader is cut off as it appends a membership change, while
    /// the next leader changes the membership at once (the single-server change errata).
    MembershipAtFailover,
    /// Lease reads, with the leader cut off and the others campaigning as early as their
    /// stickiness allows, clients reading from the old leader and writing to the new one.
    LeaseExpiry,
    /// Frequent compaction and followers cut off or crashed long enough to need snapshots,
    /// whose transfers are disturbed and whose last chunks are replayed late.
    Snapshots,
}

/// Which reactions to protocol events a seed uses (each seed enables a random subset).
#[derive(Debug, Clone, Default)]
pub struct Reactions {
    /// Crash the node right after the event.
    pub crash: bool,
    /// Cut the node (a leader) off from everyone for a while.
    pub isolate: bool,
    /// Also when it has just been elected.
    pub isolate_new_leaders: bool,
    /// Partition a new leader together with a minority of the voters.
    pub leader_with_minority: bool,
    /// Propose a membership change on a new leader at once (before its term's first commit),
    /// sometimes removing a voter it has just been cut off from.
    pub conf_change: bool,
    /// Send the clients' pending reads to a new leader at once.
    pub reads: bool,
    /// Lose a leader's appends that carry entries of its own term for a while, then crash or
    /// isolate it: its new entries stay with it while older ones reach the others (figure 8).
    pub lone_leader: bool,
    /// Replay the last chunk of a snapshot later, after the follower moved on.
    pub snapshot_replay: bool,
}

impl Reactions {
    fn draw(rng: &mut ChaCha8Rng) -> Reactions {
        Reactions {
            crash: rng.gen_bool(0.5),
            isolate: rng.gen_bool(0.5),
            isolate_new_leaders: true,
            leader_with_minority: rng.gen_bool(0.5),
            conf_change: rng.gen_bool(0.5),
            reads: rng.gen_bool(0.5),
            lone_leader: rng.gen_bool(0.3),
            snapshot_replay: rng.gen_bool(0.5),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub seed: u64,
    pub focus: Focus,
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
    /// PreVote and CheckQuorum drawn per node, as in a rolling upgrade (never with lease reads,
    /// which need the same settings everywhere).
    pub mixed_settings: bool,
    /// Chance per nemesis visit that a running node pauses (keeps its state, takes no ticks, and
    /// reads its messages only when it resumes), and the longest pause. Never a leader in a run
    /// with lease reads: a paused leader breaks the clock bound the lease rests on.
    pub pause_probability: f64,
    pub pause_duration_max: Micros,
    /// Chance per nemesis visit that a node's clock jumps ahead (a burst of ticks) or runs at
    /// another rate for a while. Never with lease reads, whose safety rests on the clocks.
    pub clock_fault_probability: f64,
    /// Chance that each protocol event of its kind triggers a reaction.
    pub on_elected_probability: f64,
    pub on_conf_appended_probability: f64,
    pub on_old_term_append_probability: f64,
    pub on_snapshot_probability: f64,
    pub reactions: Reactions,
    /// Chance per nemesis visit (lease runs): isolate the leader, let the others campaign as
    /// early as their stickiness allows, and send half the clients to the isolated leader.
    pub lease_attack_probability: f64,
    /// Chance per nemesis visit that a follower is cut off for a while (the leader carries on).
    pub lagging_follower_probability: f64,
    /// In the liveness phase a minority of the voters stays down or cut off; the rest must
    /// converge without them.
    pub faulty_minority: bool,
    /// Per nemesis visit: a running node is handed a malformed message (see `cluster/hostile.rs`).
    pub hostile_probability: f64,
    /// Per nemesis visit: a running node's disk stalls (its fsyncs take up to
    /// `disk_stall_max`) while its network stays up.
    pub disk_stall_probability: f64,
    pub disk_stall_max: Micros,
    /// Entries a compaction keeps before its snapshot (`Config::snapshot_catch_up_entries`).
    pub snapshot_catch_up_entries: u64,
    /// Bytes of ballast in every snapshot: megabytes in some Snapshots runs.
    pub snapshot_ballast_bytes: usize,
    /// Membership changes remove voters more often than they add them.
    pub prefer_removals: bool,
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
    /// Adjusts a drawn scenario to its focus.
    fn concentrate(&mut self, rng: &mut ChaCha8Rng) {
        let none = Reactions::default();
        if self.focus != Focus::General {
            self.lease_attack_probability = 0.0;
        }
        match self.focus {
            Focus::General => {}
            Focus::LoneLeaders => {
                self.voters = if rng.gen_bool(0.5) { 3 } else { 5 };
                self.reactions = Reactions {
                    crash: rng.gen_bool(0.2),
                    isolate: true,
                    isolate_new_leaders: true,
                    lone_leader: true,
                    ..none
                };
                self.on_elected_probability = rng.gen_range(0.6..1.0);
                self.on_old_term_append_probability = rng.gen_range(0.3..1.0);
                // Many reigns, each cut off or down just past the next election.
                self.partition_duration_max = rng.gen_range(200 * MS..=500 * MS);
                self.downtime_max = rng.gen_range(100 * MS..=500 * MS);
                // Little else, so that the leader changes are what happens.
                self.crash_probability = rng.gen_range(0.0..0.05);
                self.partition_probability = rng.gen_range(0.0..0.05);
                self.membership_probability = rng.gen_range(0.0..0.05);
                self.transfer_probability = 0.0;
                self.pause_probability = 0.0;
                self.clock_fault_probability = 0.0;
                self.on_snapshot_probability = 0.0;
                self.on_conf_appended_probability = 0.0;
            }
            Focus::MembershipAtFailover => {
                self.voters = if rng.gen_bool(0.7) { 4 } else { 6 };
                // Now and then: a failover takes a few hundred milliseconds to play out.
                self.membership_probability = rng.gen_range(0.2..0.5);
                self.prefer_removals = true;
                // The leader that appends a change is cut off; the next one changes at once.
                self.reactions = Reactions {
                    isolate: true,
                    conf_change: true,
                    leader_with_minority: rng.gen_bool(0.3),
                    ..none
                };
                self.on_conf_appended_probability = rng.gen_range(0.7..1.0);
                self.on_elected_probability = rng.gen_range(0.9..1.0);
                self.on_snapshot_probability = 0.0;
                self.on_old_term_append_probability = 0.0;
                self.partition_duration_max = rng.gen_range(300 * MS..=1_500 * MS);
                // Little else, so that the failovers are what happens.
                self.crash_probability = rng.gen_range(0.0..0.05);
                self.partition_probability = rng.gen_range(0.0..0.05);
                self.pause_probability = 0.0;
                self.transfer_probability = 0.0;
            }
            Focus::Snapshots => {
                self.compaction_threshold = rng.gen_range(2..=8);
                self.snapshot_chunk_bytes_max = rng.gen_range(16..=256);
                // Followers fall behind (cut off, see `lagging_follower_probability`) under one
                // leader, whose term a replayed chunk must still carry to be heard.
                self.partition_probability = 0.0;
                self.lagging_follower_probability = rng.gen_range(0.0..0.2);
                // Appends overtake each other and come twice: a leader backs off below its
                // first index and sends a snapshot of entries the follower already has.
                self.network.slow_probability = rng.gen_range(0.1..0.3);
                self.network.slow_delay_max = rng.gen_range(10 * MS..=100 * MS);
                self.network.duplicate_probability = rng.gen_range(0.1..0.5);
                self.pre_vote = true;
                self.crash_probability = rng.gen_range(0.0..0.05);
                // New leaders probe every follower, and some back off below their first index.
                self.transfer_probability = rng.gen_range(0.1..0.3);
                self.membership_probability = rng.gen_range(0.0..0.1);
                self.network.drop_probability = self.network.drop_probability.min(0.05);
                // Slow disks: a snapshot overtakes the fsync of entries appended just before.
                self.fsync_latency_max = rng.gen_range(10 * MS..=30 * MS);
                // Busy clients: the log moves on while snapshots and appends are in flight.
                self.clients = rng.gen_range(3..=5);
                self.think_time_max = rng.gen_range(MS..=5 * MS);
                self.reactions = Reactions {
                    snapshot_replay: true,
                    ..none
                };
                self.on_snapshot_probability = rng.gen_range(0.5..1.0);
                self.on_elected_probability = 0.0;
                self.on_conf_appended_probability = 0.0;
                self.on_old_term_append_probability = 0.0;
            }
            Focus::LeaseExpiry => {
                // A calm cluster, so that the attack is what happens.
                self.voters = if rng.gen_bool(0.5) { 3 } else { 5 };
                self.check_quorum = true;
                self.lease_read = true;
                self.lease_attack_probability = rng.gen_range(0.1..0.3);
                self.crash_probability = rng.gen_range(0.0..0.05);
                self.partition_probability = 0.0;
                self.membership_probability = rng.gen_range(0.0..0.05);
                self.transfer_probability = 0.0;
                self.network.drop_probability = self.network.drop_probability.min(0.05);
                self.reactions = Reactions::default();
                self.clients = rng.gen_range(3..=5);
                self.keys = rng.gen_range(1..=2);
                self.think_time_max = rng.gen_range(MS..=10 * MS);
                // Clients whose write hangs at the cut-off leader soon try elsewhere.
                self.retry_interval = rng.gen_range(20 * MS..=60 * MS);
            }
        }
    }

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
            focus: Focus::General,
            voters: [3, 5, 3, 5, 4, 4, 1, 2, 6, 7][rng.gen_range(0..10)],
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
            mixed_settings: false,
            pause_probability: rate(rng, 0.1),
            pause_duration_max: rng.gen_range(20 * MS..=1_500 * MS),
            clock_fault_probability: rate(rng, 0.1),
            on_elected_probability: rate(rng, 0.8),
            on_conf_appended_probability: rate(rng, 0.8),
            on_old_term_append_probability: rate(rng, 0.3),
            on_snapshot_probability: rate(rng, 0.5),
            reactions: Reactions::draw(rng),
            lease_attack_probability: rate(rng, 0.2),
            lagging_follower_probability: 0.0,
            faulty_minority: rng.gen_bool(0.3),
            hostile_probability: 0.0,
            disk_stall_probability: 0.0,
            disk_stall_max: 0,
            snapshot_catch_up_entries: 0,
            snapshot_ballast_bytes: 0,
            prefer_removals: false,
            bug,
            mutant: None,
        };
        scenario.focus = match rng.gen_range(0..20) {
            0..=8 => Focus::General,
            9..=11 => Focus::LoneLeaders,
            12..=14 => Focus::MembershipAtFailover,
            15..=17 => Focus::LeaseExpiry,
            _ => Focus::Snapshots,
        };
        scenario.concentrate(rng);
        scenario.mixed_settings = !scenario.lease_read && rng.gen_bool(0.3);
        if scenario.lease_read {
            scenario.clock_fault_probability = 0.0;
        }
        scenario.hostile_probability = rate(rng, 0.3);
        scenario.disk_stall_probability = rate(rng, 0.1);
        scenario.disk_stall_max = rng.gen_range(50 * MS..=2_000 * MS);
        // A retained tail spares lagging followers their snapshot: rarer where snapshots are the
        // point.
        let tail_probability = if scenario.focus == Focus::Snapshots {
            0.2
        } else {
            0.5
        };
        if rng.gen_bool(tail_probability) {
            scenario.snapshot_catch_up_entries =
                rng.gen_range(1..=2 * scenario.compaction_threshold);
        }
        if scenario.focus == Focus::Snapshots && rng.gen_bool(0.25) {
            // Multi-megabyte snapshots in chunks of tens to hundreds of KiB; compactions rarer,
            // since each copies the state.
            scenario.snapshot_ballast_bytes = rng.gen_range(1 << 20..=3 << 20);
            scenario.snapshot_chunk_bytes_max = rng.gen_range(64 << 10..=512 << 10);
            scenario.compaction_threshold = rng.gen_range(10..=30);
        }
        if scenario.reactions.lone_leader {
            // One entry per append, so that older entries travel without the leader's own.
            scenario.append_bytes_max = rng.gen_range(1..=40);
        }
        if bug != ShellBug::None {
            // A broken shell shows only when a crash hits its window: crash often, sync slowly.
            scenario.crash_probability = rng.gen_range(0.3..0.6);
            scenario.fsync_latency_max = 20 * MS;
        }
        scenario
    }
}
