//! Per-seed settings drawn from the seed (swarm testing): each run stresses a different mix.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Virtual time in microseconds.
pub type Micros = u64;
pub const MS: Micros = 1000;

#[derive(Debug, Clone)]
pub struct Scenario {
    pub nodes: u64,
    pub keys: u64,
    pub clients: u64,
    pub replication: usize,
    pub drop_probability: f64,
    pub duplicate_probability: f64,
    pub delay_max: Micros,
    pub slow_probability: f64,
    pub slow_delay_max: Micros,
    /// Mean gaps between faults of each kind (0: none in this run).
    pub partition_every: Micros,
    pub crash_every: Micros,
    pub ring_change_every: Micros,
    pub garbage_every: Micros,
    /// A node learns a ring change up to this late (each node its own lag).
    pub ring_lag_max: Micros,
    /// Nodes that learn every ring change late (from 0.5 to 2 s): stale proposers, and old
    /// acceptors that have not heard of the handoff's completion.
    pub slow_learners: Vec<u64>,
    /// Each node's tick interval (clock skew).
    pub tick_interval: Vec<Micros>,
    pub fsync_delay_max: Micros,
    pub fault_phase: Micros,
    pub calm_phase: Micros,
}

fn sometimes(rng: &mut ChaCha8Rng, p: f64, every: std::ops::Range<u64>) -> Micros {
    if rng.gen_bool(p) {
        rng.gen_range(every) * MS
    } else {
        0
    }
}

impl Scenario {
    pub fn draw(rng: &mut ChaCha8Rng) -> Scenario {
        let nodes = rng.gen_range(3..=7);
        let replication = if nodes >= 5 && rng.gen_bool(0.3) {
            5
        } else {
            3
        };
        Scenario {
            nodes,
            keys: rng.gen_range(1..=4),
            clients: rng.gen_range(2..=6),
            replication,
            drop_probability: [0.0, 0.05, 0.15, 0.3][rng.gen_range(0..4)],
            duplicate_probability: [0.0, 0.1, 0.3][rng.gen_range(0..3)],
            delay_max: rng.gen_range(1..=5) * MS,
            slow_probability: [0.0, 0.05, 0.2][rng.gen_range(0..3)],
            slow_delay_max: rng.gen_range(10..=200) * MS,
            partition_every: sometimes(rng, 0.6, 100..800),
            crash_every: sometimes(rng, 0.7, 100..800),
            ring_change_every: sometimes(rng, 0.8, 50..400),
            garbage_every: sometimes(rng, 0.5, 100..500),
            ring_lag_max: [0, 20, 200, 1000][rng.gen_range(0..4)] * MS,
            slow_learners: (1..=nodes).filter(|_| rng.gen_bool(0.3)).collect(),
            tick_interval: (0..nodes).map(|_| rng.gen_range(5..=15) * MS).collect(),
            fsync_delay_max: rng.gen_range(1..=10) * MS,
            fault_phase: rng.gen_range(2000..=4000) * MS,
            calm_phase: 3000 * MS,
        }
    }
}
