//! The simulated network: every message may be dropped, delayed (which reorders), duplicated or
//! replayed much later, and links can be cut one way or both.

use std::collections::BTreeSet;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use ringraft_paxos::{Message, NodeId};

use super::scenario::{Micros, Scenario};

#[derive(Debug, Default, Clone, Copy)]
pub struct NetworkStats {
    pub sent: u64,
    pub dropped: u64,
    pub duplicated: u64,
}

pub struct Network {
    pub calm: bool,
    drop_probability: f64,
    duplicate_probability: f64,
    delay_max: Micros,
    slow_probability: f64,
    slow_delay_max: Micros,
    /// Directed links that lose everything.
    pub blocked: BTreeSet<(NodeId, NodeId)>,
    pub stats: NetworkStats,
}

impl Network {
    pub fn new(s: &Scenario) -> Network {
        Network {
            calm: false,
            drop_probability: s.drop_probability,
            duplicate_probability: s.duplicate_probability,
            delay_max: s.delay_max,
            slow_probability: s.slow_probability,
            slow_delay_max: s.slow_delay_max,
            blocked: BTreeSet::new(),
            stats: NetworkStats::default(),
        }
    }

    /// The delays after which copies of `message` arrive (none: lost).
    pub fn send(&mut self, rng: &mut ChaCha8Rng, message: &Message) -> Vec<Micros> {
        self.stats.sent += 1;
        if self.blocked.contains(&(message.from, message.to)) {
            self.stats.dropped += 1;
            return Vec::new();
        }
        if !self.calm && rng.gen_bool(self.drop_probability) {
            self.stats.dropped += 1;
            return Vec::new();
        }
        let mut delays = vec![self.delay(rng)];
        if !self.calm && rng.gen_bool(self.duplicate_probability) {
            self.stats.duplicated += 1;
            delays.push(self.delay(rng) + rng.gen_range(0..=self.slow_delay_max));
        }
        delays
    }

    fn delay(&self, rng: &mut ChaCha8Rng) -> Micros {
        if !self.calm && rng.gen_bool(self.slow_probability) {
            rng.gen_range(100..=self.slow_delay_max)
        } else {
            rng.gen_range(100..=self.delay_max)
        }
    }

    /// Cuts `side` off from everyone else (both ways, or only outgoing).
    pub fn partition(&mut self, side: &[NodeId], all: &[NodeId], one_way: bool) {
        for &a in side {
            for &b in all.iter().filter(|b| !side.contains(b)) {
                self.blocked.insert((a, b));
                if !one_way {
                    self.blocked.insert((b, a));
                }
            }
        }
    }

    pub fn heal(&mut self) {
        self.blocked.clear();
    }
}
