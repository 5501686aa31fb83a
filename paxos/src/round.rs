//! One CASPaxos round of a proposer: phase 1 (prepare) unless the one-round-trip cache allows
//! skipping it, phase 2 (accept), and for garbage collection a third phase (forget). Votes are
//! counted with `quorum::Quorum` against the sets the round started with.

use std::collections::{BTreeMap, BTreeSet};

use crate::limits::BALLOT_JUMP_MAX;
use crate::message::{Body, Message, Refusal};
use crate::mutants::Mutant;
use crate::outcome::{Outcome, RetryReason};
use crate::proposer::Proposer;
use crate::quorum::Quorum;
use crate::register::apply_batch;
use crate::types::{Ballot, KeyConfig, NodeId, Op, OpId, Register};

/// One queued operation's kind.
#[derive(Debug, Clone)]
pub(crate) enum Task {
    Client(Op),
    Handoff,
    Collect,
}

/// What one round runs: a batch of client operations of the key (in queue order, at least one),
/// or a handoff or a garbage collection alone.
pub(crate) enum Work {
    Clients(Vec<(OpId, Op)>),
    Handoff(OpId),
    Collect(OpId),
}

impl Work {
    /// The operations the round answers, in order.
    pub(crate) fn op_ids(&self) -> Vec<OpId> {
        match self {
            Work::Clients(ops) => ops.iter().map(|(id, _)| *id).collect(),
            Work::Handoff(id) | Work::Collect(id) => vec![*id],
        }
    }

    fn len(&self) -> usize {
        match self {
            Work::Clients(ops) => ops.len(),
            Work::Handoff(_) | Work::Collect(_) => 1,
        }
    }
}

/// After a round whose accept a quorum acknowledged at `ballot`, each of those acceptors promised
/// `ballot.successor()`: that is phase 1 of the next round, already done, and `register` is what
/// it would have found (CASPaxos §2.2.1, "one round trip"). Valid while the sets are unchanged;
/// if another proposer prepared meanwhile, the next accept is refused and the cache is dropped.
#[derive(Debug, Clone)]
pub(crate) struct Cache {
    ballot: Ballot,
    register: Register,
    config: KeyConfig,
}

enum Phase {
    Prepare {
        promises: BTreeMap<NodeId, Option<(Ballot, Register)>>,
    },
    Accept {
        register: Register,
        /// The register the change was computed from: a round that proposes it unchanged
        /// cannot have taken effect, whatever became of it.
        base: Register,
        /// One answer per operation of the round, in order, given only once `register` is
        /// chosen: each was computed from the register the operations before it left, which
        /// exists only if the whole batch is chosen.
        outcomes: Vec<Outcome>,
        acks: BTreeSet<NodeId>,
    },
    Forget {
        acks: BTreeSet<NodeId>,
    },
}

pub(crate) struct Round {
    work: Work,
    pub(crate) deadline_tick: u64,
    pub(crate) resend_tick: u64,
    ballot: Ballot,
    config: KeyConfig,
    quorum: Quorum,
    members: BTreeSet<NodeId>,
    phase: Phase,
    refused: BTreeSet<NodeId>,
}

impl Round {
    /// The current phase's request to every member that has neither answered nor refused.
    pub(crate) fn messages_to_silent(&self, from: NodeId, key: &[u8]) -> Vec<Message> {
        let answered: BTreeSet<NodeId> = match &self.phase {
            Phase::Prepare { promises } => promises.keys().copied().collect(),
            Phase::Accept { acks, .. } | Phase::Forget { acks } => acks.clone(),
        };
        let body = self.request();
        self.members
            .iter()
            .filter(|n| !answered.contains(n) && !self.refused.contains(n))
            .map(|&to| Message {
                from,
                to,
                key: key.to_vec(),
                epoch: self.config.epoch,
                body: body.clone(),
            })
            .collect()
    }

    fn request(&self) -> Body {
        let ballot = self.ballot;
        match &self.phase {
            Phase::Prepare { .. } => Body::Prepare { ballot },
            Phase::Accept { register, .. } => Body::Accept {
                ballot,
                register: register.clone(),
            },
            Phase::Forget { .. } => Body::Forget { ballot },
        }
    }

    /// For each operation of the round: true if it may have taken effect although the round
    /// failed. That is so for an operation that writes, once an accept went out that changes
    /// the register (a later round may find and finish it). Reads and failed conditions change
    /// nothing, chosen or not, and a batch whose final register is the one it read leaves
    /// every observer what it found: those did not take effect (whatever became of the round).
    fn may_have_written(&self) -> Vec<bool> {
        match &self.phase {
            Phase::Accept {
                register,
                base,
                outcomes,
                ..
            } => outcomes
                .iter()
                .map(|o| register != base && matches!(o, Outcome::Written { .. }))
                .collect(),
            Phase::Prepare { .. } | Phase::Forget { .. } => vec![false; self.work.len()],
        }
    }

    fn enter(&mut self, phase: Phase, now: u64, resend_interval: u64) {
        self.phase = phase;
        self.refused.clear();
        self.resend_tick = now + resend_interval;
    }
}

fn refusal_reason(reason: Refusal, epoch: u64) -> RetryReason {
    match reason {
        Refusal::StaleEpoch => RetryReason::StaleEpoch { epoch },
        Refusal::EpochAhead => RetryReason::EpochAhead,
        Refusal::NotAcceptor => RetryReason::NotAcceptor,
        Refusal::Promised(_) | Refusal::TooLarge | Refusal::NotTombstone => RetryReason::Contended,
    }
}

impl Proposer {
    /// Starts a round for `work`, or answers it at once (`None`) when there is nothing to run.
    pub(crate) fn begin(
        &mut self,
        key: &[u8],
        work: Work,
        deadline_tick: u64,
        config: KeyConfig,
        cache: Option<Cache>,
    ) -> Option<Round> {
        let immediate = match (&work, &config.previous) {
            (Work::Handoff(_), None) => Some(Outcome::NoHandoffPending),
            (Work::Collect(_), Some(_)) => Some(Outcome::NotCollectable),
            _ => None,
        };
        let exhausted = self.counter_seen >= crate::limits::BALLOT_COUNTER_MAX;
        if immediate.is_some() || exhausted {
            for op in work.op_ids() {
                let outcome = match &immediate {
                    Some(outcome) => outcome.clone(),
                    None => self.retry(RetryReason::Contended),
                };
                self.answer(op, key, config.epoch, outcome);
            }
            return None;
        }
        let new_only = self.config.mutated(Mutant::NewQuorumOnlyDuringHandoff);
        let cached = cache.filter(|c| {
            self.config.one_round_trip && c.config == config && matches!(work, Work::Clients(_))
        });
        let (ballot, phase) = match (&work, cached) {
            (Work::Clients(ops), Some(cache)) => {
                let ballot = cache.ballot.successor();
                let (register, outcomes) = self.apply_clients(ops, &cache.register);
                let base = cache.register;
                let acks = BTreeSet::new();
                (
                    ballot,
                    Phase::Accept {
                        register,
                        base,
                        outcomes,
                        acks,
                    },
                )
            }
            _ => {
                self.counter_seen = self.counter_seen.saturating_add(1);
                let ballot = Ballot {
                    counter: self.counter_seen,
                    node: self.config.id,
                };
                let promises = BTreeMap::new();
                (ballot, Phase::Prepare { promises })
            }
        };
        self.counter_seen = self.counter_seen.max(ballot.counter);
        let round = Round {
            work,
            deadline_tick,
            resend_tick: self.ticks + self.config.resend_interval_ticks,
            ballot,
            quorum: Quorum::of(&config, new_only),
            members: Quorum::members(&config),
            config,
            phase,
            refused: BTreeSet::new(),
        };
        let messages = round.messages_to_silent(self.config.id, key);
        self.send_all(messages);
        Some(round)
    }

    pub(crate) fn on_reply(&mut self, key: &[u8], mut round: Round, message: Message) {
        if message.body.ballot() != round.ballot || !round.members.contains(&message.from) {
            return self.keep(key, round);
        }
        match (message.body, &mut round.phase) {
            (Body::Promise { accepted, .. }, Phase::Prepare { promises }) => {
                if let Some((b, _)) = &accepted {
                    self.counter_seen = self.counter_seen.max(b.counter);
                }
                promises.insert(message.from, accepted);
                let yes: BTreeSet<NodeId> = promises.keys().copied().collect();
                if round.quorum.is_reached(&yes) {
                    return self.after_prepare(key, round);
                }
            }
            (Body::Accepted { .. }, Phase::Accept { acks, .. }) => {
                acks.insert(message.from);
                let done = match round.work {
                    Work::Collect(_) => round.quorum.is_unanimous(acks),
                    Work::Clients(_) | Work::Handoff(_) => round.quorum.is_reached(acks),
                };
                if done {
                    return self.after_accept(key, round);
                }
            }
            (Body::Forgot { .. }, Phase::Forget { acks }) => {
                acks.insert(message.from);
                if round.quorum.is_unanimous(acks) {
                    self.set_cache(key, None);
                    self.finish(key, round, vec![Outcome::Collected]);
                    return;
                }
            }
            (Body::Refuse { reason, .. }, _) => {
                if let Refusal::Promised(b) = reason {
                    self.adopt_counter(b.counter);
                }
                round.refused.insert(message.from);
                let lost = match (&round.work, &round.phase) {
                    (Work::Collect(_), Phase::Accept { .. } | Phase::Forget { .. }) => true,
                    _ => round.quorum.is_lost(&round.refused),
                };
                if lost {
                    let why = refusal_reason(reason, message.epoch);
                    return self.finish_aborted(key, round, why);
                }
            }
            _ => {}
        }
        self.keep(key, round);
    }

    /// Raises `counter_seen` to a counter an acceptor says it promised, unless the jump is
    /// implausible (more than `BALLOT_JUMP_MAX` above what this proposer has seen): one buggy
    /// acceptor must not push every key of this node to `BALLOT_COUNTER_MAX`, where no round
    /// starts any more. The refusal still counts against the round. See docs/paxos.md,
    /// "Ballots".
    fn adopt_counter(&mut self, counter: u64) {
        let plausible = self.counter_seen.saturating_add(BALLOT_JUMP_MAX);
        if counter <= plausible {
            self.counter_seen = self.counter_seen.max(counter);
        }
    }

    fn keep(&mut self, key: &[u8], round: Round) {
        if let Some(work) = self.keys_round_slot(key) {
            *work = Some(round);
        }
    }

    /// Phase 1 reached a quorum: the register is the one accepted at the highest ballot among
    /// the promises (none: absent, which is also what a dropped key stands for).
    fn after_prepare(&mut self, key: &[u8], mut round: Round) {
        let Phase::Prepare { promises } = &round.phase else {
            return self.keep(key, round);
        };
        let current = promises
            .values()
            .flatten()
            .max_by_key(|(b, _)| *b)
            .map(|(_, r)| r.clone())
            .unwrap_or_default();
        let (register, outcomes) = match &round.work {
            Work::Clients(ops) => self.apply_clients(ops, &current),
            Work::Handoff(_) => (current.clone(), vec![Outcome::HandedOff]),
            Work::Collect(_) if current.value.is_some() => {
                return self.finish(key, round, vec![Outcome::NotCollectable]);
            }
            Work::Collect(_) => (current.clone(), vec![Outcome::Collected]),
        };
        let acks = BTreeSet::new();
        let base = current;
        let phase = Phase::Accept {
            register,
            base,
            outcomes,
            acks,
        };
        round.enter(phase, self.ticks, self.config.resend_interval_ticks);
        let messages = round.messages_to_silent(self.config.id, key);
        self.send_all(messages);
        self.keep(key, round);
    }

    fn after_accept(&mut self, key: &[u8], mut round: Round) {
        let Phase::Accept {
            register, outcomes, ..
        } = &round.phase
        else {
            return self.keep(key, round);
        };
        if let Work::Collect(_) = round.work {
            let phase = Phase::Forget {
                acks: BTreeSet::new(),
            };
            round.enter(phase, self.ticks, self.config.resend_interval_ticks);
            let messages = round.messages_to_silent(self.config.id, key);
            self.send_all(messages);
            return self.keep(key, round);
        }
        let cache = Cache {
            ballot: round.ballot,
            register: register.clone(),
            config: round.config.clone(),
        };
        let outcomes = outcomes.clone();
        // A cache from sets the ring has since replaced would skip phase 1 on the new ones.
        // Without one round trip the cache is never used: none is kept (the key's work ends).
        let still_current = self.config.one_round_trip && self.view_of(key) == Some(&round.config);
        self.set_cache(key, still_current.then_some(cache));
        self.finish(key, round, outcomes);
    }

    /// The round cannot succeed: refused by too many, or timed out. Each operation is told
    /// `Unknown` if it may have taken effect, else `Retry`; none gets the answer computed for
    /// it (that came from registers that may never be chosen).
    pub(crate) fn finish_aborted(&mut self, key: &[u8], round: Round, reason: RetryReason) {
        let outcomes = round
            .may_have_written()
            .into_iter()
            .map(|maybe| {
                let backoff_ticks = self.backoff_ticks();
                if maybe {
                    Outcome::Unknown {
                        reason,
                        backoff_ticks,
                    }
                } else {
                    Outcome::Retry {
                        reason,
                        backoff_ticks,
                    }
                }
            })
            .collect();
        self.set_cache(key, None);
        self.finish(key, round, outcomes);
    }

    /// Answers every operation of the round, each with its outcome, and starts the next round.
    fn finish(&mut self, key: &[u8], round: Round, outcomes: Vec<Outcome>) {
        let ops = round.work.op_ids();
        assert_eq!(ops.len(), outcomes.len(), "one answer per operation");
        for (op, outcome) in ops.into_iter().zip(outcomes) {
            self.answer(op, key, round.config.epoch, outcome);
        }
        self.start_next(key);
    }

    /// CASPaxos's change function for a batch: the operations in order, each applied to the
    /// register the ones before it left (docs/paxos.md, "Batched rounds").
    fn apply_clients(&self, ops: &[(OpId, Op)], base: &Register) -> (Register, Vec<Outcome>) {
        let from_base = self.config.mutated(Mutant::BatchFromBase);
        let (register, outcomes) = apply_batch(ops.iter().map(|(_, op)| op), base, from_base);
        debug_assert_eq!(outcomes.len(), ops.len());
        (register, outcomes)
    }
}
