//! The ring controller, standing in for the Raft log: it changes a key's acceptor set (a new
//! epoch with the old set pending handoff), has a node of the new set run the handoff round,
//! commits the completion, and each node learns every change in order, each with its own lag.
//! It also drives garbage collection and hostile input (the nemesis's other hands).

use rand::seq::SliceRandom;
use rand::Rng;
use ringraft_paxos::limits::{BALLOT_COUNTER_MAX, KEY_BYTES_MAX, VALUE_BYTES_MAX_DEFAULT};
use ringraft_paxos::{
    Answer, Ballot, Body, KeyConfig, Message, NodeId, Outcome, Refusal, Register,
};

use super::cluster::{key_name, Event, Who, World};
use super::scenario::MS;

impl World {
    /// Every node learns `view` of key `k`, in the order changes were committed.
    fn publish(&mut self, k: usize, view: KeyConfig) {
        for n in 1..=self.s.nodes {
            let lag = if self.s.slow_learners.contains(&n) {
                self.rng.gen_range(500 * MS..=2000 * MS)
            } else {
                self.rng.gen_range(0..=self.s.ring_lag_max)
            };
            let at = (self.now + lag).max(self.view_at[n as usize]);
            self.view_at[n as usize] = at;
            self.ring[k].settled_at = self.ring[k].settled_at.max(at);
            let delay = at - self.now;
            self.at(delay, Event::ViewArrives(n, k, view.clone()));
        }
    }

    pub fn ring_change(&mut self) -> Result<(), String> {
        if self.calm {
            return Ok(());
        }
        let d = self.every(self.s.ring_change_every);
        self.at(d, Event::RingChange);
        let stable: Vec<usize> = (0..self.ring.len())
            .filter(|&k| self.ring[k].config.previous.is_none())
            .collect();
        let Some(&k) = stable.choose(&mut self.rng) else {
            return Ok(());
        };
        let old = self.ring[k].config.clone();
        let outside: Vec<NodeId> = (1..=self.s.nodes)
            .filter(|n| !old.acceptors.contains(n))
            .collect();
        if outside.is_empty() {
            return Ok(());
        }
        let swaps = self
            .rng
            .gen_range(1..=outside.len().min(2).min(old.acceptors.len()));
        let mut set = old.acceptors.clone();
        set.shuffle(&mut self.rng);
        set.truncate(set.len() - swaps);
        set.extend(outside.choose_multiple(&mut self.rng, swaps));
        set.sort_unstable();
        let epoch = self.next_epoch;
        self.next_epoch += 1;
        let view = KeyConfig {
            epoch,
            acceptors: set,
            previous: Some((old.epoch, old.acceptors)),
        };
        self.ring[k].config = view.clone();
        self.summary.ring_changes += 1;
        self.publish(k, view);
        self.at(10 * MS, Event::Handoff(k));
        Ok(())
    }

    /// Asks a node of the new set that knows the transition to run the handoff round.
    pub fn handoff(&mut self, k: usize) -> Result<(), String> {
        let view = self.ring[k].config.clone();
        if view.previous.is_none() || self.ring[k].handoff_pending {
            return Ok(());
        }
        let key = key_name(k);
        let ready: Vec<NodeId> = view
            .acceptors
            .iter()
            .copied()
            .filter(|&n| {
                self.nodes[n as usize - 1].up
                    && self.nodes[n as usize - 1].views.get(&key) == Some(&view)
            })
            .collect();
        let Some(&n) = ready.choose(&mut self.rng) else {
            self.at(20 * MS, Event::Handoff(k));
            return Ok(());
        };
        let id = self.next_op;
        self.next_op += 1;
        self.node(n).configure(&key)?;
        self.node(n)
            .proposer
            .handoff(id, &key)
            .map_err(|e| e.to_string())?;
        self.ring[k].handoff_pending = true;
        self.inflight.insert(id, (n, Who::Handoff(k)));
        self.drain(n)
    }

    pub fn handoff_answered(&mut self, k: usize, answer: &Answer) -> Result<(), String> {
        self.ring[k].handoff_pending = false;
        let view = self.ring[k].config.clone();
        if answer.outcome == Outcome::HandedOff
            && answer.epoch == view.epoch
            && view.previous.is_some()
        {
            let done = KeyConfig::stable(view.epoch, view.acceptors);
            self.ring[k].config = done.clone();
            self.summary.handoffs += 1;
            self.publish(k, done);
        } else {
            self.at(20 * MS, Event::Handoff(k));
        }
        Ok(())
    }

    /// Garbage collection of a random key through a random node, and a hostile message.
    pub fn garbage(&mut self) -> Result<(), String> {
        let d = self.every(self.s.garbage_every);
        self.at(d, Event::Garbage);
        let k = self.rng.gen_range(0..self.ring.len());
        let n: NodeId = self.rng.gen_range(1..=self.s.nodes);
        // The contract of `Proposer::collect`: every node has applied the key's latest ring
        // change (no stale view may still count an old acceptor's copy).
        let settled = self.ring[k].config.previous.is_none() && self.now >= self.ring[k].settled_at;
        if !self.node(n).up || !settled {
            return Ok(());
        }
        let id = self.next_op;
        self.next_op += 1;
        self.node(n).configure(&key_name(k))?;
        self.node(n)
            .proposer
            .collect(id, &key_name(k))
            .map_err(|e| e.to_string())?;
        self.inflight.insert(id, (n, Who::Collect));
        if !self.calm {
            self.hostile(n, k);
        }
        self.drain(n)
    }

    /// Malformed or implausible messages a buggy peer might send: each must be dropped or
    /// refused.
    fn hostile(&mut self, n: NodeId, k: usize) {
        let from = if n == 1 { 2 } else { 1 };
        let key = key_name(k);
        let epoch = self.ring[k].config.epoch;
        let big = Register {
            value: Some(vec![7; VALUE_BYTES_MAX_DEFAULT + 1]),
            version: 1,
        };
        let counter = self.rng.gen_range(0..u64::MAX);
        let bodies = [
            Body::Accept {
                ballot: Ballot {
                    counter: 1,
                    node: from,
                },
                register: big.clone(),
            },
            Body::Prepare {
                ballot: Ballot {
                    counter,
                    node: from + 100,
                },
            },
            Body::Prepare {
                ballot: Ballot {
                    counter: 0,
                    node: from,
                },
            },
            // Well formed, the sender's own ballot, at the largest counter: promised, it would
            // make the key's proposers adopt the cap (refused: it jumps too far).
            Body::Prepare {
                ballot: Ballot {
                    counter: BALLOT_COUNTER_MAX,
                    node: from,
                },
            },
            Body::Accept {
                ballot: Ballot {
                    counter: 1,
                    node: from,
                },
                register: Register {
                    value: None,
                    version: 9,
                },
            },
            Body::Promise {
                ballot: Ballot {
                    counter: 1,
                    node: n,
                },
                accepted: Some((
                    Ballot {
                        counter: 5,
                        node: n,
                    },
                    big,
                )),
            },
            Body::Refuse {
                ballot: Ballot {
                    counter: 1,
                    node: n,
                },
                reason: Refusal::Promised(Ballot {
                    counter: u64::MAX,
                    node: from,
                }),
            },
            Body::Accepted {
                ballot: Ballot { counter, node: n },
            },
        ];
        let body = bodies[self.rng.gen_range(0..bodies.len())].clone();
        let long_key = self.rng.gen_bool(0.2);
        let m = Message {
            from,
            to: n,
            key: if long_key {
                vec![1; KEY_BYTES_MAX + 1]
            } else {
                key
            },
            epoch: if self.rng.gen_bool(0.3) {
                u64::MAX
            } else {
                epoch
            },
            body,
        };
        self.summary.hostile += 1;
        let node = self.node(n);
        let _ = node.configure(&m.key);
        node.acceptor.step(m.clone());
        node.proposer.step(m);
    }
}
