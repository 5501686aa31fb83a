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
use crate::register::apply;
use crate::types::{Ballot, KeyConfig, NodeId, Op, OpId, Register};

#[derive(Debug, Clone)]
pub(crate) enum Task {
    Client(Op),
    Handoff,
    Collect,
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
        outcome: Outcome,
        acks: BTreeSet<NodeId>,
    },
    Forget {
        acks: BTreeSet<NodeId>,
    },
}

pub(crate) struct Round {
    op: OpId,
    task: Task,
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

    /// True if an accept went out that changes the register: the operation may have taken
    /// effect even if the round fails (a later round may find and finish it).
    fn may_have_written(&self) -> bool {
        match &self.phase {
            Phase::Accept { register, base, .. } => register != base,
            Phase::Prepare { .. } | Phase::Forget { .. } => false,
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
    /// Starts a round for `task`, or answers it at once (`None`) when there is nothing to run.
    pub(crate) fn begin(
        &mut self,
        key: &[u8],
        op: OpId,
        task: Task,
        deadline_tick: u64,
        config: KeyConfig,
        cache: Option<Cache>,
    ) -> Option<Round> {
        let immediate = match (&task, &config.previous) {
            (Task::Handoff, None) => Some(Outcome::NoHandoffPending),
            (Task::Collect, Some(_)) => Some(Outcome::NotCollectable),
            _ => None,
        };
        let exhausted = self.counter_seen >= crate::limits::BALLOT_COUNTER_MAX;
        let immediate = match immediate {
            None if exhausted => Some(self.retry(RetryReason::Contended)),
            other => other,
        };
        if let Some(outcome) = immediate {
            self.answer(op, key, config.epoch, outcome);
            return None;
        }
        let new_only = self.config.mutated(Mutant::NewQuorumOnlyDuringHandoff);
        let cached = cache.filter(|c| {
            self.config.one_round_trip && c.config == config && matches!(task, Task::Client(_))
        });
        let (ballot, phase) = match (&task, cached) {
            (Task::Client(client_op), Some(cache)) => {
                let ballot = cache.ballot.successor();
                let (register, outcome) = apply(client_op, &cache.register);
                let base = cache.register;
                let acks = BTreeSet::new();
                (
                    ballot,
                    Phase::Accept {
                        register,
                        base,
                        outcome,
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
            op,
            task,
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
                let done = match round.task {
                    Task::Collect => round.quorum.is_unanimous(acks),
                    Task::Client(_) | Task::Handoff => round.quorum.is_reached(acks),
                };
                if done {
                    return self.after_accept(key, round);
                }
            }
            (Body::Forgot { .. }, Phase::Forget { acks }) => {
                acks.insert(message.from);
                if round.quorum.is_unanimous(acks) {
                    self.set_cache(key, None);
                    self.finish(key, round, Outcome::Collected);
                    return;
                }
            }
            (Body::Refuse { reason, .. }, _) => {
                if let Refusal::Promised(b) = reason {
                    self.adopt_counter(b.counter);
                }
                round.refused.insert(message.from);
                let lost = match (&round.task, &round.phase) {
                    (Task::Collect, Phase::Accept { .. } | Phase::Forget { .. }) => true,
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
        let (register, outcome) = match &round.task {
            Task::Client(op) => apply(op, &current),
            Task::Handoff => (current.clone(), Outcome::HandedOff),
            Task::Collect if current.value.is_some() => {
                return self.finish(key, round, Outcome::NotCollectable);
            }
            Task::Collect => (current.clone(), Outcome::Collected),
        };
        let acks = BTreeSet::new();
        let base = current;
        let phase = Phase::Accept {
            register,
            base,
            outcome,
            acks,
        };
        round.enter(phase, self.ticks, self.config.resend_interval_ticks);
        let messages = round.messages_to_silent(self.config.id, key);
        self.send_all(messages);
        self.keep(key, round);
    }

    fn after_accept(&mut self, key: &[u8], mut round: Round) {
        let Phase::Accept {
            register, outcome, ..
        } = &round.phase
        else {
            return self.keep(key, round);
        };
        if let Task::Collect = round.task {
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
        let outcome = outcome.clone();
        // A cache from sets the ring has since replaced would skip phase 1 on the new ones.
        // Without one round trip the cache is never used: none is kept (the key's work ends).
        let still_current = self.config.one_round_trip && self.view_of(key) == Some(&round.config);
        self.set_cache(key, still_current.then_some(cache));
        self.finish(key, round, outcome);
    }

    /// The round cannot succeed: refused by too many, or timed out.
    pub(crate) fn finish_aborted(&mut self, key: &[u8], round: Round, reason: RetryReason) {
        let backoff_ticks = self.backoff_ticks();
        let outcome = if round.may_have_written() {
            Outcome::Unknown {
                reason,
                backoff_ticks,
            }
        } else {
            Outcome::Retry {
                reason,
                backoff_ticks,
            }
        };
        self.set_cache(key, None);
        self.finish(key, round, outcome);
    }

    fn finish(&mut self, key: &[u8], round: Round, outcome: Outcome) {
        self.answer(round.op, key, round.config.epoch, outcome);
        self.start_next(key);
    }
}
