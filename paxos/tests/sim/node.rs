//! One simulated node: a proposer and an acceptor behind a shell that follows the Ready
//! contract, on a disk that makes a batch durable only when its fsync completes and loses
//! unsynced batches (all, or all but a prefix) in a crash.

use std::collections::{BTreeMap, VecDeque};

use ringraft_paxos::{
    Acceptor, Answer, Ballot, Body, Config, KeyConfig, KeyState, Message, Mutant, NodeId, Proposer,
    Record,
};

struct Batch {
    id: u64,
    records: Vec<Record>,
    persisted_messages: Vec<Message>,
    proposer_ready: u64,
}

pub struct Node {
    pub id: NodeId,
    pub up: bool,
    pub incarnation: u64,
    pub tick_interval: u64,
    pub proposer: Proposer,
    pub acceptor: Acceptor,
    mutant: Option<Mutant>,
    seed: u64,
    durable: Vec<Record>,
    unsynced: VecDeque<Batch>,
    next_batch: u64,
    /// The durable acceptor state, to check each reply against at the moment it leaves.
    durable_keys: BTreeMap<Vec<u8>, KeyState>,
    durable_floor: Ballot,
    /// The ring as this node's Raft log applied it (durable).
    pub views: BTreeMap<Vec<u8>, KeyConfig>,
    /// Every ring change in the order applied: a restart hands all of them in again, as a Raft
    /// node replays its log, so an acceptor sees each change it was not part of (and drops).
    view_log: Vec<(Vec<u8>, KeyConfig)>,
    /// Every this many ticks the shell lets idle per-key state go (`Proposer::forget_idle`,
    /// `Acceptor::forget_views_without_state`); 0: never. Drawn from the seed.
    forget_every_ticks: u64,
    ticks: u64,
    /// Configurations the two cores forgot (and were handed in again on their next use).
    pub forgotten: u64,
}

/// What the shell does with one drained pair of Readies.
pub struct Drained {
    pub now: Vec<Message>,
    pub answers: Vec<Answer>,
    /// A batch to fsync, by id.
    pub batch: Option<u64>,
    pub records: Vec<Record>,
}

fn config(id: NodeId, seed: u64, incarnation: u64, mutant: Option<Mutant>) -> Config {
    let mut config = Config::new(id);
    config.seed = seed ^ (id << 32) ^ incarnation;
    // A quarter of the runs prepare in every round (the daemon's setting while requests are
    // not forwarded to the key's owner); chosen from the seed so the run's draws stay the same.
    config.one_round_trip = !seed.is_multiple_of(4);
    // A quarter of the runs (other bits of the seed than above and than `forget_every_ticks`)
    // run one operation per round, as before batching.
    if (seed / 16).is_multiple_of(4) {
        config.batch_ops_max = 1;
    }
    config.mutant = mutant;
    config
}

impl Node {
    pub fn new(id: NodeId, seed: u64, tick_interval: u64, mutant: Option<Mutant>) -> Node {
        Node {
            id,
            up: true,
            incarnation: 0,
            tick_interval,
            proposer: Proposer::new(config(id, seed, 0, mutant)),
            acceptor: Acceptor::new(config(id, seed, 0, mutant)),
            mutant,
            seed,
            durable: Vec::new(),
            unsynced: VecDeque::new(),
            next_batch: 1,
            durable_keys: BTreeMap::new(),
            durable_floor: Ballot::ZERO,
            views: BTreeMap::new(),
            view_log: Vec::new(),
            // Independent of the world's RNG, so the run's other draws stay what they were.
            forget_every_ticks: [0, 1, 10, 100][((seed / 4) % 4) as usize],
            ticks: 0,
            forgotten: 0,
        }
    }

    /// One tick of the proposer's clock, and now and then the shell's sweep of idle state.
    pub fn tick(&mut self) {
        self.proposer.tick();
        self.ticks += 1;
        if self.forget_every_ticks > 0 && self.ticks.is_multiple_of(self.forget_every_ticks) {
            let forgotten =
                self.proposer.forget_idle() + self.acceptor.forget_views_without_state();
            self.forgotten += forgotten as u64;
        }
    }

    /// What the daemon's `configure` does before every step and operation: hand both cores the
    /// key's configuration as this node applied it, if they do not hold it (they may have
    /// forgotten it). Never older than what they had: `views` only moves forward.
    pub fn configure(&mut self, key: &[u8]) -> Result<(), String> {
        let Some(view) = self.views.get(key) else {
            return Ok(());
        };
        if self.acceptor.key_config(key) != Some(view) {
            self.acceptor
                .set_key_config(key, view.clone())
                .map_err(|e| e.to_string())?;
        }
        if self.proposer.key_config(key) != Some(view) {
            self.proposer
                .set_key_config(key, view.clone())
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Takes both cores' Readies: messages to send now, answers, and one batch to fsync.
    pub fn drain(&mut self) -> Drained {
        let p = self.proposer.ready();
        let a = self.acceptor.ready();
        let mut now = p.messages;
        now.extend(a.messages);
        let mut answers = p.answers;
        answers.extend(a.answers);
        let mut records = p.records;
        records.extend(a.records);
        let mut persisted_messages = p.persisted_messages;
        persisted_messages.extend(a.persisted_messages);
        let batch = if records.is_empty() && persisted_messages.is_empty() {
            None
        } else {
            let id = self.next_batch;
            self.next_batch += 1;
            self.unsynced.push_back(Batch {
                id,
                records: records.clone(),
                persisted_messages,
                proposer_ready: p.number,
            });
            Some(id)
        };
        Drained {
            now,
            answers,
            batch,
            records,
        }
    }

    /// The fsync of batch `id` completed: it and every earlier batch are durable. Returns the
    /// messages that were waiting for it.
    /// Each batch's messages are checked against the disk as of that batch: a later batch may
    /// legitimately drop the key (the node left its set).
    pub fn synced(&mut self, id: u64) -> Result<Vec<Message>, String> {
        let mut out = Vec::new();
        while self.unsynced.front().is_some_and(|b| b.id <= id) {
            let Some(batch) = self.unsynced.pop_front() else {
                break;
            };
            for record in &batch.records {
                self.apply_durable(record);
            }
            self.durable.extend(batch.records);
            self.proposer.advance(batch.proposer_ready);
            for message in &batch.persisted_messages {
                self.check_durable(message)?;
            }
            out.extend(batch.persisted_messages);
        }
        Ok(out)
    }

    fn apply_durable(&mut self, record: &Record) {
        match record {
            Record::Key { key, state } => {
                self.durable_keys.insert(key.clone(), state.clone());
            }
            Record::Forgot { key, floor } => {
                self.durable_keys.remove(key);
                self.durable_floor = self.durable_floor.max(*floor);
            }
            Record::BallotsReserved { .. } => {}
        }
    }

    /// The durability rule, checked as a reply leaves: what it promises is on disk.
    pub fn check_durable(&self, message: &Message) -> Result<(), String> {
        let state = self.durable_keys.get(&message.key);
        let covered = match (&message.body, state) {
            (Body::Promise { ballot, .. }, Some(s)) => {
                s.promised >= *ballot && s.epoch >= message.epoch
            }
            (Body::Accepted { ballot }, Some(s)) => {
                s.accepted.as_ref().is_some_and(|(b, _)| b >= ballot) && s.epoch >= message.epoch
            }
            (Body::Promise { ballot, .. } | Body::Accepted { ballot }, None) => {
                self.durable_floor >= *ballot
            }
            _ => true,
        };
        if covered {
            Ok(())
        } else {
            Err(format!(
                "node {} sent {:?} for key {:?} before it was durable (durable: {state:?})",
                self.id, message.body, message.key
            ))
        }
    }

    /// Power loss: unsynced batches are lost, except a prefix the disk happened to write.
    pub fn crash(&mut self, keep_prefix: usize) -> u64 {
        let kept: Vec<Batch> = self.unsynced.drain(..).take(keep_prefix).collect();
        for batch in kept {
            for record in &batch.records {
                self.apply_durable(record);
            }
            self.durable.extend(batch.records);
        }
        self.up = false;
        self.incarnation += 1;
        self.incarnation
    }

    /// Restart from the disk and the applied ring.
    pub fn restart(&mut self) -> Result<(), String> {
        let c = config(self.id, self.seed, self.incarnation, self.mutant);
        self.proposer = Proposer::restore(c.clone(), &self.durable).map_err(|e| e.to_string())?;
        self.acceptor = Acceptor::restore(c, &self.durable).map_err(|e| e.to_string())?;
        for (key, view) in &self.view_log {
            self.proposer
                .set_key_config(key, view.clone())
                .map_err(|e| e.to_string())?;
            self.acceptor
                .set_key_config(key, view.clone())
                .map_err(|e| e.to_string())?;
        }
        self.up = true;
        Ok(())
    }

    /// The node's Raft log applied a ring change for `key`.
    pub fn learn_view(&mut self, key: &[u8], view: KeyConfig) -> Result<(), String> {
        self.views.insert(key.to_vec(), view.clone());
        self.view_log.push((key.to_vec(), view.clone()));
        if self.up {
            self.proposer
                .set_key_config(key, view.clone())
                .map_err(|e| e.to_string())?;
            self.acceptor
                .set_key_config(key, view)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}
