//! The simulated network between cores: every message may be dropped, delayed (which reorders),
//! duplicated or replayed much later, and links can be cut in one direction or both. Cuts overlap
//! (a link is up again once every cut of it healed), and the nemesis may pick which messages of a
//! leader get lost: any loss pattern is one the protocol must survive.

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng;
use ringraft_raft::{Message, MessageBody, NodeId, Term};

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
    /// Directed links that currently lose everything, (from, to), with the number of cuts of each.
    blocked: BTreeMap<(NodeId, NodeId), u32>,
    /// Nodes cut off from everyone until the end of the run (a faulty minority).
    isolated_for_good: BTreeSet<NodeId>,
    /// Leaders whose appends that carry an entry of their own term (the key) are lost: their new
    /// entries stay with them while older entries still travel (the paper's figure 8).
    losing_own_entries: BTreeMap<NodeId, Term>,
    pub stats: NetworkStats,
}

/// Whether `message` is an append that carries an entry of the sender's term.
fn carries_own_entries(message: &Message) -> bool {
    matches!(&message.body, MessageBody::Append { entries, .. }
        if entries.iter().any(|e| e.term == message.term))
}

impl Network {
    pub fn new(faults: NetworkFaults) -> Network {
        Network {
            faults,
            blocked: BTreeMap::new(),
            isolated_for_good: BTreeSet::new(),
            losing_own_entries: BTreeMap::new(),
            stats: NetworkStats::default(),
        }
    }

    pub fn link_up(&self, from: NodeId, to: NodeId) -> bool {
        !self.blocked.contains_key(&(from, to))
            && !self.isolated_for_good.contains(&from)
            && !self.isolated_for_good.contains(&to)
    }

    /// Decides the fate of one message sent now: the delays after which its copies arrive (none if
    /// it is lost). A message also dies if its link is cut when it arrives; see `link_up`.
    pub fn transmit(&mut self, message: &Message, rng: &mut impl Rng) -> Vec<Micros> {
        let (from, to) = (message.from, message.to);
        self.stats.sent += 1;
        if !self.link_up(from, to) {
            self.stats.cut += 1;
            return Vec::new();
        }
        if self.losing_own_entries.get(&from) == Some(&message.term) && carries_own_entries(message)
        {
            self.stats.dropped += 1;
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

    /// Cuts `from → to` (asymmetric: `to → from` keeps working unless cut too). Returns the
    /// link cut, for `heal_links`.
    pub fn cut(&mut self, from: NodeId, to: NodeId) -> Vec<(NodeId, NodeId)> {
        if from == to {
            return Vec::new();
        }
        *self.blocked.entry((from, to)).or_insert(0) += 1;
        vec![(from, to)]
    }

    /// Splits `nodes` into groups that cannot talk across, in both directions. Returns the links
    /// cut, for `heal_links`.
    pub fn partition(&mut self, groups: &[Vec<NodeId>]) -> Vec<(NodeId, NodeId)> {
        let mut links = Vec::new();
        for (i, a) in groups.iter().enumerate() {
            for b in groups.iter().skip(i + 1) {
                for &x in a {
                    for &y in b {
                        links.extend(self.cut(x, y));
                        links.extend(self.cut(y, x));
                    }
                }
            }
        }
        links
    }

    /// Ends the cuts that returned `links` (a link cut twice stays down until both heal).
    pub fn heal_links(&mut self, links: &[(NodeId, NodeId)]) {
        for link in links {
            if let Some(count) = self.blocked.get_mut(link) {
                *count -= 1;
                if *count == 0 {
                    self.blocked.remove(link);
                }
            }
        }
    }

    /// Ends every cut and every chosen loss (not the isolation of a faulty minority).
    pub fn heal(&mut self) {
        self.blocked.clear();
        self.losing_own_entries.clear();
    }

    pub fn isolate_for_good(&mut self, node: NodeId) {
        self.isolated_for_good.insert(node);
    }

    pub fn is_losing_own_entries(&self, leader: NodeId) -> bool {
        self.losing_own_entries.contains_key(&leader)
    }

    /// From now on `leader`'s appends that carry entries of `term` are lost.
    pub fn lose_own_entries(&mut self, leader: NodeId, term: Term) {
        self.losing_own_entries.insert(leader, term);
    }

    /// Ends the loss `lose_own_entries(leader, term)` started (not a later one of the leader).
    pub fn stop_losing_own_entries(&mut self, leader: NodeId, term: Term) {
        if self.losing_own_entries.get(&leader) == Some(&term) {
            self.losing_own_entries.remove(&leader);
        }
    }

    pub fn describe_cuts(&self) -> String {
        let cuts: Vec<String> = self
            .blocked
            .keys()
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

    fn message(from: NodeId, to: NodeId) -> Message {
        Message {
            from,
            to,
            term: 1,
            body: MessageBody::TimeoutNow,
        }
    }

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
            .map(|_| network.transmit(&message(1, 2), &mut rng).len())
            .sum();
        // Expected copies per message: 0.7 * 1.5 = 1.05.
        assert!((9_800..11_200).contains(&copies), "copies {copies}");
        assert!((2_700..3_300).contains(&network.stats.dropped));
        let delays: Vec<Micros> = (0..1_000)
            .flat_map(|_| network.transmit(&message(1, 2), &mut rng))
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
        assert!(network.transmit(&message(3, 1), &mut rng).is_empty());
        network.heal();
        assert_eq!(network.transmit(&message(3, 1), &mut rng).len(), 1);
    }

    #[test]
    fn overlapping_cuts_heal_separately() {
        let mut network = Network::new(faults(0.0, 0.0));
        let first = network.partition(&[vec![1], vec![2, 3]]);
        let second = network.cut(1, 2);
        network.heal_links(&first);
        assert!(!network.link_up(1, 2), "still cut by the second cut");
        assert!(network.link_up(2, 1) && network.link_up(1, 3));
        network.heal_links(&second);
        assert!(network.link_up(1, 2));
        network.isolate_for_good(3);
        network.heal();
        assert!(!network.link_up(1, 3) && !network.link_up(3, 2));
    }

    #[test]
    fn a_leader_can_lose_its_new_entries_only() {
        use ringraft_raft::{Entry, EntryPayload};
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let mut network = Network::new(faults(0.0, 0.0));
        let append = |term: Term| Message {
            from: 1,
            to: 2,
            term: 3,
            body: MessageBody::Append {
                prev_log_index: 0,
                prev_log_term: 0,
                entries: vec![Entry {
                    index: 1,
                    term,
                    payload: EntryPayload::Empty,
                }],
                leader_commit: 0,
            },
        };
        network.lose_own_entries(1, 3);
        assert!(network.transmit(&append(3), &mut rng).is_empty());
        assert_eq!(network.transmit(&append(2), &mut rng).len(), 1);
        network.stop_losing_own_entries(1, 2);
        assert!(
            network.transmit(&append(3), &mut rng).is_empty(),
            "another term's loss"
        );
        network.stop_losing_own_entries(1, 3);
        assert_eq!(network.transmit(&append(3), &mut rng).len(), 1);
    }

    #[test]
    fn asymmetric_cut_blocks_one_direction() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut network = Network::new(faults(0.0, 0.0));
        network.cut(1, 2);
        assert!(network.transmit(&message(1, 2), &mut rng).is_empty());
        assert_eq!(network.transmit(&message(2, 1), &mut rng).len(), 1);
        assert_eq!(network.describe_cuts(), "1->2");
    }
}
