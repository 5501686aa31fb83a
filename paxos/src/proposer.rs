//! The proposer: runs one CASPaxos round at a time per key, queues the rest, and answers each
//! operation once a quorum accepted its change (or tells why not). A round takes every client
//! operation queued for its key (up to `Config::batch_ops_max`) and applies them in order. Its
//! only durable state is the ballot reservation (see `limits::BALLOT_RESERVE_BLOCK`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::Config;
use crate::limits::{BALLOT_RESERVE_BLOCK, KEY_BYTES_MAX};
use crate::message::Message;
use crate::outcome::{Answer, Outcome, PaxosError, ProposeError, RetryReason};
use crate::ready::{Ready, Record};
use crate::round::{Cache, Round, Task, Work};
use crate::types::{KeyConfig, Op, OpId};

/// An operation waiting for its key's current round to end.
struct Pending {
    op: OpId,
    task: Task,
    deadline_tick: u64,
}

/// A key's work. Kept only while it holds something: a round, queued operations, or a cache; an
/// empty one is removed (see [`Proposer::settle`]).
#[derive(Default)]
struct KeyWork {
    queue: VecDeque<Pending>,
    round: Option<Round>,
    /// What this proposer's last round left accepted, with the next ballot promised to it.
    cache: Option<Cache>,
}

impl KeyWork {
    fn is_active(&self) -> bool {
        self.round.is_some() || !self.queue.is_empty()
    }
}

pub struct Proposer {
    pub(crate) config: Config,
    rng: ChaCha8Rng,
    views: BTreeMap<Vec<u8>, KeyConfig>,
    keys: BTreeMap<Vec<u8>, KeyWork>,
    /// The keys of `keys` with a round or queued operations: all that `tick` walks.
    active: BTreeSet<Vec<u8>>,
    /// The highest ballot counter seen anywhere: the next fresh ballot goes above it.
    pub(crate) counter_seen: u64,
    /// Counters below this are covered by a durable reservation.
    counter_durable: u64,
    /// Counters below this are covered by a reservation handed out, maybe not durable yet.
    counter_reserved: u64,
    /// (Ready number, counter_below) of reservations not yet acknowledged by `advance`.
    reservations: Vec<(u64, u64)>,
    pub(crate) ticks: u64,
    /// Keys visited by every tick so far: what ticking costs.
    keys_walked: u64,
    queued: usize,
    pub(crate) ready: Ready,
    next_number: u64,
}

impl Proposer {
    pub fn new(config: Config) -> Proposer {
        let rng = ChaCha8Rng::seed_from_u64(config.seed);
        Proposer {
            config,
            rng,
            views: BTreeMap::new(),
            keys: BTreeMap::new(),
            active: BTreeSet::new(),
            counter_seen: 0,
            counter_durable: 0,
            counter_reserved: 0,
            reservations: Vec::new(),
            ticks: 0,
            keys_walked: 0,
            queued: 0,
            ready: Ready::default(),
            next_number: 1,
        }
    }

    /// A restarted proposer: its new ballots start above every counter it may have used.
    pub fn restore<'a>(
        config: Config,
        records: impl IntoIterator<Item = &'a Record>,
    ) -> Result<Proposer, PaxosError> {
        let mut proposer = Proposer::new(config);
        for record in records {
            if let Record::BallotsReserved { counter_below } = record {
                proposer.counter_durable = proposer.counter_durable.max(*counter_below);
            }
        }
        proposer.counter_reserved = proposer.counter_durable;
        proposer.counter_seen = proposer.counter_durable;
        Ok(proposer)
    }

    /// The ring changed for `key`. Rounds already running keep the sets they started with (the
    /// acceptors' epoch fence stops them if that is stale); the one-round-trip cache is dropped
    /// on any change, so the first round under new sets runs phase 1 on them.
    pub fn set_key_config(&mut self, key: &[u8], view: KeyConfig) -> Result<(), PaxosError> {
        if !view.is_well_formed() {
            return Err(PaxosError::InvalidKeyConfig(format!("{view:?}")));
        }
        if self.views.get(key).is_some_and(|v| v.epoch > view.epoch) {
            return Ok(());
        }
        if self.views.get(key) != Some(&view) {
            if let Some(work) = self.keys.get_mut(key) {
                work.cache = None;
            }
            self.views.insert(key.to_vec(), view);
            self.settle(key);
        }
        Ok(())
    }

    /// Lets go of every key with no round and no queued operation: its one-round-trip cache
    /// (the next write of that key prepares again: one more round trip) and, for keys with no
    /// work at all, the configuration. Returns how many configurations were forgotten. Before
    /// the next operation on a forgotten key the shell hands its configuration in again
    /// (without one, `propose` answers [`ProposeError::NoAcceptors`]); replies about it are
    /// dropped, as they would be anyway with no round running. O(keys configured): call it now
    /// and then (say, once `configured_keys()` passes a bound), not every tick.
    pub fn forget_idle(&mut self) -> usize {
        self.keys.retain(|_, work| work.is_active());
        let before = self.views.len();
        let keys = &self.keys;
        self.views.retain(|key, _| keys.contains_key(key));
        debug_assert_eq!(self.active.len(), self.keys.len());
        before - self.views.len()
    }

    /// How many keys this proposer holds a configuration of.
    pub fn configured_keys(&self) -> usize {
        self.views.len()
    }

    /// How many keys have a round running or operations queued (what a tick walks).
    pub fn active_keys(&self) -> usize {
        self.active.len()
    }

    /// How many keys this proposer keeps any work of (active, or only a one-round-trip cache).
    pub fn tracked_keys(&self) -> usize {
        self.keys.len()
    }

    /// How many keys all ticks so far visited together (a gauge of what ticking costs).
    pub fn keys_walked(&self) -> u64 {
        self.keys_walked
    }

    pub fn key_config(&self, key: &[u8]) -> Option<&KeyConfig> {
        self.views.get(key)
    }

    /// Starts a client operation; its answer comes in a later [`Ready`]. Nothing is sent when
    /// this returns an error.
    pub fn propose(&mut self, op_id: OpId, key: &[u8], op: Op) -> Result<(), ProposeError> {
        let bytes = op.value_len();
        if bytes > self.config.value_bytes_max {
            let max = self.config.value_bytes_max;
            return Err(ProposeError::TooLarge { bytes, max });
        }
        self.submit(op_id, key, Task::Client(op.normalized()))
    }

    /// Starts a handoff round for `key`: an identity change under the joint quorum of its
    /// pending transition. [`Outcome::HandedOff`] means the caller may commit the completion.
    pub fn handoff(&mut self, op_id: OpId, key: &[u8]) -> Result<(), ProposeError> {
        self.submit(op_id, key, Task::Handoff)
    }

    /// Starts garbage collection of `key`: if it holds a tombstone, have every acceptor accept
    /// it, then have every acceptor drop the key. [`Outcome::Collected`] once all did.
    ///
    /// Contract: call it only once every node has applied the key's latest ring change (no node
    /// may still count an old set's acceptor, whose copy could outlive the tombstone); see
    /// docs/paxos.md, "Deletes and garbage collection".
    pub fn collect(&mut self, op_id: OpId, key: &[u8]) -> Result<(), ProposeError> {
        self.submit(op_id, key, Task::Collect)
    }

    fn submit(&mut self, op: OpId, key: &[u8], task: Task) -> Result<(), ProposeError> {
        if key.len() > KEY_BYTES_MAX {
            let bytes = key.len();
            return Err(ProposeError::KeyTooLong {
                bytes,
                max: KEY_BYTES_MAX,
            });
        }
        if !self.views.contains_key(key) {
            return Err(ProposeError::NoAcceptors);
        }
        if self.queued >= self.config.ops_queued_max {
            return Err(ProposeError::Busy);
        }
        self.queued += 1;
        let deadline_tick = self.ticks.saturating_add(self.config.op_timeout_ticks);
        let work = self.keys.entry(key.to_vec()).or_default();
        work.queue.push_back(Pending {
            op,
            task,
            deadline_tick,
        });
        self.start_next(key);
        self.settle(key);
        Ok(())
    }

    /// One tick of the proposer's clock: resend to silent acceptors, give up on late rounds.
    /// Walks only the keys with a round or queued operations (O(active keys), not O(keys ever
    /// proposed)).
    pub fn tick(&mut self) {
        self.ticks += 1;
        let keys: Vec<Vec<u8>> = self.active.iter().cloned().collect();
        self.keys_walked += keys.len() as u64;
        for key in keys {
            self.tick_key(&key);
            self.settle(&key);
        }
    }

    fn tick_key(&mut self, key: &[u8]) {
        self.expire_queued(key);
        let Some(mut round) = self.keys.get_mut(key).and_then(|w| w.round.take()) else {
            return;
        };
        if self.ticks >= round.deadline_tick {
            return self.finish_aborted(key, round, RetryReason::TimedOut);
        }
        if self.ticks >= round.resend_tick {
            round.resend_tick = self.ticks + self.config.resend_interval_ticks;
            let messages = round.messages_to_silent(self.config.id, key);
            self.send_all(messages);
        }
        if let Some(work) = self.keys.get_mut(key) {
            work.round = Some(round);
        }
    }

    /// Answers the queued operations whose deadline passed. Deadlines grow in queue order (each
    /// is the tick of its submission plus the same timeout), so the late ones are a prefix.
    fn expire_queued(&mut self, key: &[u8]) {
        let epoch = self.views.get(key).map_or(0, |v| v.epoch);
        loop {
            let ticks = self.ticks;
            let Some(work) = self.keys.get_mut(key) else {
                return;
            };
            if work.queue.front().is_none_or(|p| ticks < p.deadline_tick) {
                return;
            }
            let Some(pending) = work.queue.pop_front() else {
                return;
            };
            let outcome = self.retry(RetryReason::TimedOut);
            self.answer(pending.op, key, epoch, outcome);
        }
    }

    /// Restores the index after `key`'s work changed: active exactly when it has a round or
    /// queued operations, and no entry at all once it holds nothing (not even a cache).
    fn settle(&mut self, key: &[u8]) {
        let Some(work) = self.keys.get(key) else {
            self.active.remove(key);
            return;
        };
        if work.is_active() {
            if !self.active.contains(key) {
                self.active.insert(key.to_vec());
            }
        } else {
            self.active.remove(key);
            if work.cache.is_none() {
                self.keys.remove(key);
            }
        }
        debug_assert!(self
            .keys
            .get(key)
            .is_none_or(|w| w.is_active() || w.cache.is_some()));
        debug_assert!(self.views.contains_key(key) || !self.keys.contains_key(key));
    }

    /// Handles one reply from an acceptor. Replies that are malformed or match no running round
    /// (late, duplicated, of an aborted round) are dropped.
    pub fn step(&mut self, message: Message) {
        if message.to != self.config.id
            || !crate::validate::is_well_formed_reply(&message, self.config.value_bytes_max)
        {
            return;
        }
        let key = message.key.clone();
        let Some(round) = self.keys.get_mut(&key).and_then(|w| w.round.take()) else {
            return;
        };
        self.on_reply(&key, round, message);
        self.settle(&key);
    }

    pub fn ready(&mut self) -> Ready {
        let mut ready = std::mem::take(&mut self.ready);
        ready.number = self.next_number;
        self.next_number += 1;
        ready
    }

    /// The Ready numbered `number` (and every earlier one) is durable: ballots it reserved may
    /// now be sent without waiting.
    pub fn advance(&mut self, number: u64) {
        for (n, below) in &self.reservations {
            if *n <= number {
                self.counter_durable = self.counter_durable.max(*below);
            }
        }
        self.reservations.retain(|(n, _)| *n > number);
    }

    pub fn has_work(&self) -> bool {
        self.queued > 0
    }

    /// The record whose replay gives this proposer's durable state (its ballot reservation,
    /// including one handed out but maybe not durable yet: reserving more is always safe).
    pub fn checkpoint(&self) -> Record {
        Record::BallotsReserved {
            counter_below: self.counter_reserved.max(self.counter_durable),
        }
    }

    /// Starts the next round of `key` if none runs: the queue's first operation, with the
    /// client operations right behind it if it is one (see `take_batch`).
    pub(crate) fn start_next(&mut self, key: &[u8]) {
        loop {
            let Some(work) = self.keys.get_mut(key) else {
                return;
            };
            if work.round.is_some() || work.queue.is_empty() {
                return;
            }
            // Checked before an operation leaves the queue, so none is ever lost unanswered
            // (a key with work always has a view: `forget_idle` keeps those).
            let Some(view) = self.views.get(key).cloned() else {
                return;
            };
            let batch_ops_max = self.config.batch_ops_max;
            let batch_bytes_max = self.config.batch_value_bytes_max;
            let Some((round_work, deadline_tick)) =
                take_batch(&mut work.queue, batch_ops_max, batch_bytes_max)
            else {
                return;
            };
            let cache = work.cache.take();
            match self.begin(key, round_work, deadline_tick, view, cache) {
                Some(round) => {
                    if let Some(work) = self.keys.get_mut(key) {
                        work.round = Some(round);
                    }
                    return;
                }
                None => continue, // answered without a round: try the next one
            }
        }
    }

    pub(crate) fn set_cache(&mut self, key: &[u8], cache: Option<Cache>) {
        if let Some(work) = self.keys.get_mut(key) {
            work.cache = cache;
        }
    }

    pub(crate) fn keys_round_slot(&mut self, key: &[u8]) -> Option<&mut Option<Round>> {
        self.keys.get_mut(key).map(|w| &mut w.round)
    }

    pub(crate) fn view_of(&self, key: &[u8]) -> Option<&KeyConfig> {
        self.views.get(key)
    }

    /// Queues `message` under the ballot gate: it leaves at once only if its counter is covered
    /// by a durable reservation, else after this batch's records.
    pub(crate) fn send(&mut self, message: Message) {
        let counter = message.body.ballot().counter;
        if counter >= self.counter_reserved {
            self.counter_reserved = counter.saturating_add(BALLOT_RESERVE_BLOCK);
            let counter_below = self.counter_reserved;
            self.ready
                .records
                .push(Record::BallotsReserved { counter_below });
            self.reservations.push((self.next_number, counter_below));
        }
        if counter < self.counter_durable {
            self.ready.messages.push(message);
        } else {
            self.ready.persisted_messages.push(message);
        }
    }

    pub(crate) fn send_all(&mut self, messages: Vec<Message>) {
        for message in messages {
            self.send(message);
        }
    }

    pub(crate) fn answer(&mut self, op: OpId, key: &[u8], epoch: u64, outcome: Outcome) {
        self.queued = self.queued.saturating_sub(1);
        self.ready.answers.push(Answer {
            op,
            key: key.to_vec(),
            epoch,
            outcome,
        });
    }

    pub(crate) fn backoff_ticks(&mut self) -> u64 {
        let min = self.config.backoff_ticks_min;
        let max = self.config.backoff_ticks_max.max(min);
        self.rng.gen_range(min..=max)
    }

    pub(crate) fn retry(&mut self, reason: RetryReason) -> Outcome {
        let backoff_ticks = self.backoff_ticks();
        Outcome::Retry {
            reason,
            backoff_ticks,
        }
    }
}

/// Takes the next round's work off the front of `queue`: a handoff or a collection alone, or
/// the client operations at the front (at most `ops_max`, and no more value bytes than
/// `bytes_max` unless that would take none), in queue order. All were queued before the round
/// starts, so answering them at the moment its register is chosen, in this order, respects real
/// time. The round's deadline is the first operation's (the earliest: deadlines grow in queue
/// order), so none waits past its own.
fn take_batch(
    queue: &mut VecDeque<Pending>,
    ops_max: usize,
    bytes_max: usize,
) -> Option<(Work, u64)> {
    let first = queue.pop_front()?;
    let deadline_tick = first.deadline_tick;
    let op = match first.task {
        Task::Handoff => return Some((Work::Handoff(first.op), deadline_tick)),
        Task::Collect => return Some((Work::Collect(first.op), deadline_tick)),
        Task::Client(op) => op,
    };
    let mut bytes = op.value_len();
    let mut ops = vec![(first.op, op)];
    while ops.len() < ops_max {
        let Some(next) = queue.pop_front() else {
            break;
        };
        match next.task {
            Task::Client(op) if bytes.saturating_add(op.value_len()) <= bytes_max => {
                debug_assert!(
                    next.deadline_tick >= deadline_tick,
                    "deadlines grow in order"
                );
                bytes += op.value_len();
                ops.push((next.op, op));
            }
            task => {
                queue.push_front(Pending { task, ..next });
                break;
            }
        }
    }
    debug_assert!(!ops.is_empty() && ops.len() <= ops_max.max(1));
    Some((Work::Clients(ops), deadline_tick))
}
