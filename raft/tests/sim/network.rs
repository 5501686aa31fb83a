//! The simulated network between cores: every message may be dropped, delayed (which reorders),
//! duplicated or replayed much later, and links can be cut in one direction or both.

use std::collections::BTreeSet;

use rand::Rng;
use ringraft_raft::NodeId;

use super::clock::{Micros, MICROS_PER_MILLI};

/// Per-run fault rates of the network (drawn per seed: swarm testing).
#[derive(Debug, Clone)]
pub struct NetworkFaults {
    pub drop_probability: f64,
    /// Probability that a message is delivered twice; the copy may come much later (a replay).
    pub duplicate_probability: f64,
    pub delay_min: Micros,
    pub delay_max: Micros,
    /// Probability that a message takes the slow path (up to `slow_delay_max`): reordering.
    pub slow_probability: f64,
    pub slow_delay_max: Micros,
}

impl NetworkFaults {
    /// A network that delivers every message once, quickly: the liveness phase.
    pub fn calm() -> NetworkFaults {
        NetworkFaults {
            drop_probability: 0.0,
            duplicate_probability: 0.0,
            delay_min: 100,
            delay_max: 2 * MICROS_PER_MILLI,
            slow_probability: 0.0,
            slow_delay_max: 2 * MICROS_PER_MILLI,
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct NetworkStats {
    pub sent: u64,
    pub dropped: u64,
    pub duplicated: u64,
    pub cut: u64,
}

pub struct Network {
    pub faults: NetworkFaults,
    /// Directed links that currently lose everything: (from, to).
    blocked: BTreeSet<(NodeId, NodeId)>,
    pub stats: NetworkStats,
}

impl Network {
    pub fn new(faults: NetworkFaults) -> Network {
        Network {
            faults,
            blocked: BTreeSet::new(),
            stats: NetworkStats::default(),
        }
    }

    pub fn link_up(&self, from: NodeId, to: NodeId) -> bool {
        !self.blocked.contains(&(from, to))
    }

    /// Decides the fate of one message sent now: the delays after which its copies arrive (none if
    /// it is lost). A message also dies if its link is cut when it arrives; see `link_up`.
    pub fn transmit(&mut self, from: NodeId, to: NodeId, rng: &mut impl Rng) -> Vec<Micros> {
        self.stats.sent += 1;
        if !self.link_up(from, to) {
            self.stats.cut += 1;
            return Vec::new();
        }
        if rng.gen_bool(self.faults.drop_probability) {
            self.stats.dropped += 1;
            return Vec::new();
        }
        let mut delays = vec![self.delay(rng)];
        if rng.gen_bool(self.faults.duplicate_probability) {
            self.stats.duplicated += 1;
            // A replay: the copy may arrive long after the original.
            delays.push(self.delay(rng) + rng.gen_range(0..=self.faults.slow_delay_max));
        }
        delays
    }

    fn delay(&self, rng: &mut impl Rng) -> Micros {
        let faults = &self.faults;
        if rng.gen_bool(faults.slow_probability) {
            rng.gen_range(faults.delay_min..=faults.slow_delay_max.max(faults.delay_min))
        } else {
            rng.gen_range(faults.delay_min..=faults.delay_max.max(faults.delay_min))
        }
    }

    /// Cuts `from → to` (asymmetric: `to → from` keeps working unless cut too).
    pub fn cut(&mut self, from: NodeId, to: NodeId) {
        if from != to {
            self.blocked.insert((from, to));
        }
    }

    /// Splits `nodes` into groups that cannot talk across, in both directions.
    pub fn partition(&mut self, groups: &[Vec<NodeId>]) {
        for (i, a) in groups.iter().enumerate() {
            for b in groups.iter().skip(i + 1) {
                for &x in a {
                    for &y in b {
                        self.cut(x, y);
                        self.cut(y, x);
                    }
                }
            }
        }
    }

    pub fn heal(&mut self) {
        self.blocked.clear();
    }

    pub fn is_partitioned(&self) -> bool {
        !self.blocked.is_empty()
    }

    pub fn describe_cuts(&self) -> String {
        let cuts: Vec<String> = self
            .blocked
            .iter()
            .map(|(from, to)| format!("{from}->{to}"))
            .collect();
        cuts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn faults(drop: f64, duplicate: f64) -> NetworkFaults {
        NetworkFaults {
            drop_probability: drop,
            duplicate_probability: duplicate,
            delay_min: 10,
            delay_max: 20,
            slow_probability: 0.1,
            slow_delay_max: 1_000,
        }
    }

    #[test]
    fn loss_and_duplication_follow_their_rates() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut network = Network::new(faults(0.3, 0.5));
        let copies: usize = (0..10_000)
            .map(|_| network.transmit(1, 2, &mut rng).len())
            .sum();
        // Expected copies per message: 0.7 * 1.5 = 1.05.
        assert!((9_800..11_200).contains(&copies), "copies {copies}");
        assert!((2_700..3_300).contains(&network.stats.dropped));
        let delays: Vec<Micros> = (0..1_000)
            .flat_map(|_| network.transmit(1, 2, &mut rng))
            .collect();
        assert!(delays.iter().all(|&d| (10..=2_000).contains(&d)));
        assert!(
            delays.iter().any(|&d| d > 20),
            "some messages take the slow path"
        );
    }

    #[test]
    fn partitions_cut_across_groups_and_heal() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut network = Network::new(faults(0.0, 0.0));
        network.partition(&[vec![1, 2], vec![3]]);
        assert!(network.link_up(1, 2) && network.link_up(2, 1));
        assert!(!network.link_up(1, 3) && !network.link_up(3, 2));
        assert!(network.transmit(3, 1, &mut rng).is_empty());
        network.heal();
        assert_eq!(network.transmit(3, 1, &mut rng).len(), 1);
    }

    #[test]
    fn asymmetric_cut_blocks_one_direction() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut network = Network::new(faults(0.0, 0.0));
        network.cut(1, 2);
        assert!(network.transmit(1, 2, &mut rng).is_empty());
        assert_eq!(network.transmit(2, 1, &mut rng).len(), 1);
        assert_eq!(network.describe_cuts(), "1->2");
    }
}
