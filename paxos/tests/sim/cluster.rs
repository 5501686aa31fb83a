//! The driver: one event queue in virtual time over nodes, network, clients, the ring controller
//! (standing in for the Raft log: ring changes, handoff completion) and the nemesis; checks at
//! every send and every record, and the linearizability of every key's history at the end.

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use ringraft_paxos::{Ballot, Body, KeyConfig, Message, Mutant, NodeId, OpId, Record, Register};

use super::linearizability::{check_history, Operation, Verdict};
use super::network::Network;
use super::node::Node;
use super::scenario::{Micros, Scenario, MS};

/// Steps of the linearizability search per key before it is called inconclusive.
const CHECK_BUDGET_STEPS: u64 = 100_000;

/// Final reads get at least this long after the last ring change reached every node.
pub const FINAL_READS_SETTLED_MIN: Micros = 1500 * MS;

/// The run's end moves at most this far past the planned end of the calm phase.
const END_POSTPONED_MAX: Micros = 5000 * MS;

/// `RINGRAFT_PAXOS_CHECK_BUDGET` overrides the search budget (to settle an inconclusive seed).
fn check_budget() -> u64 {
    std::env::var("RINGRAFT_PAXOS_CHECK_BUDGET")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CHECK_BUDGET_STEPS)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    Safety,
    Liveness,
    Panic,
}

#[derive(Debug, Clone)]
pub struct RunFailure {
    pub seed: u64,
    pub kind: FailureKind,
    pub reason: String,
    pub virtual_ms: u64,
}

#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    pub seed: u64,
    pub trace_hash: u64,
    pub events: u64,
    pub messages: u64,
    pub dropped: u64,
    pub duplicated: u64,
    pub crashes: u64,
    pub partitions: u64,
    pub ring_changes: u64,
    pub handoffs: u64,
    pub collected: u64,
    pub ops_ok: u64,
    pub ops_unknown: u64,
    pub ops_retried: u64,
    pub hostile: u64,
    pub forgotten: u64,
    pub inconclusive: bool,
}

#[derive(Debug, Clone)]
pub enum Event {
    Deliver(Message),
    Tick(NodeId, u64),
    Fsync(NodeId, u64, u64),
    Restart(NodeId, u64),
    ClientWake(usize),
    ViewArrives(NodeId, usize, KeyConfig),
    RingChange,
    Handoff(usize),
    Crash,
    Partition,
    Heal,
    Garbage,
    Calm,
    FinalRead(usize),
    End,
}

#[derive(Debug, Clone, Copy)]
pub enum Who {
    Client(usize, usize),
    Handoff(usize),
    Collect,
    Final(usize, usize),
}

pub struct Client {
    pub busy: bool,
    pub versions: BTreeMap<usize, u64>,
}

pub struct KeyRing {
    pub config: KeyConfig,
    pub handoff_pending: bool,
    /// Every node has applied the key's latest change by then (garbage collection waits).
    pub settled_at: Micros,
}

pub struct World {
    pub seed: u64,
    pub s: Scenario,
    pub rng: ChaCha8Rng,
    pub now: Micros,
    pub seq: u64,
    pub queue: BTreeMap<(Micros, u64), Event>,
    pub nodes: Vec<Node>,
    pub net: Network,
    pub clients: Vec<Client>,
    pub ring: Vec<KeyRing>,
    pub next_epoch: u64,
    pub view_at: Vec<Micros>,
    pub history: Vec<Operation>,
    pub failed: Vec<bool>,
    pub inflight: BTreeMap<OpId, (NodeId, Who)>,
    pub next_op: OpId,
    pub next_value: u64,
    pub calm: bool,
    pub finals_done: Vec<bool>,
    /// Every (key, ballot) an acceptor accepted, with the register: one value per ballot.
    pub accepted: BTreeMap<(Vec<u8>, Ballot), Register>,
    pub hasher: DefaultHasher,
    pub summary: RunSummary,
}

pub fn key_name(k: usize) -> Vec<u8> {
    format!("key-{k}").into_bytes()
}

pub fn value_bytes(id: u64, pad: usize) -> Vec<u8> {
    let mut v = id.to_le_bytes().to_vec();
    v.resize(8 + pad, 0xAB);
    v
}

pub fn value_id(value: &Option<Vec<u8>>) -> Result<Option<u64>, String> {
    match value {
        None => Ok(None),
        Some(v) => v
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map(|b| Some(u64::from_le_bytes(b)))
            .ok_or_else(|| format!("a value no client wrote: {v:?}")),
    }
}

impl World {
    fn new(seed: u64, mutant: Option<Mutant>) -> World {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let s = Scenario::draw(&mut rng);
        let nodes: Vec<Node> = (1..=s.nodes)
            .map(|id| Node::new(id, seed, s.tick_interval[id as usize - 1], mutant))
            .collect();
        let ids: Vec<NodeId> = (1..=s.nodes).collect();
        let ring = (0..s.keys)
            .map(|_| {
                let mut set: Vec<NodeId> = ids
                    .choose_multiple(&mut rng, s.replication)
                    .copied()
                    .collect();
                set.sort_unstable();
                KeyRing {
                    config: KeyConfig::stable(1, set),
                    handoff_pending: false,
                    settled_at: 0,
                }
            })
            .collect();
        let clients = (0..s.clients)
            .map(|_| Client {
                busy: false,
                versions: BTreeMap::new(),
            })
            .collect();
        World {
            seed,
            net: Network::new(&s),
            view_at: vec![0; s.nodes as usize + 1],
            finals_done: vec![false; s.keys as usize],
            s,
            rng,
            now: 0,
            seq: 0,
            queue: BTreeMap::new(),
            nodes,
            clients,
            ring,
            next_epoch: 2,
            history: Vec::new(),
            failed: Vec::new(),
            inflight: BTreeMap::new(),
            next_op: 1,
            next_value: 1,
            calm: false,
            accepted: BTreeMap::new(),
            hasher: DefaultHasher::new(),
            summary: RunSummary {
                seed,
                ..RunSummary::default()
            },
        }
    }

    pub fn at(&mut self, delay: Micros, event: Event) {
        self.seq += 1;
        self.queue.insert((self.now + delay, self.seq), event);
    }

    pub fn node(&mut self, id: NodeId) -> &mut Node {
        &mut self.nodes[id as usize - 1]
    }

    pub fn ids(&self) -> Vec<NodeId> {
        (1..=self.s.nodes).collect()
    }

    pub fn every(&mut self, mean: Micros) -> Micros {
        self.rng.gen_range(mean / 2..=mean * 3 / 2)
    }

    fn start(&mut self) -> Result<(), String> {
        for k in 0..self.ring.len() {
            let view = self.ring[k].config.clone();
            for n in self.ids() {
                self.node(n).learn_view(&key_name(k), view.clone())?;
            }
        }
        for n in self.ids() {
            let interval = self.node(n).tick_interval;
            let first = self.rng.gen_range(0..interval);
            self.at(first, Event::Tick(n, 0));
        }
        for c in 0..self.clients.len() {
            let d = self.rng.gen_range(0..10 * MS);
            self.at(d, Event::ClientWake(c));
        }
        for (mean, event) in [
            (self.s.ring_change_every, Event::RingChange),
            (self.s.crash_every, Event::Crash),
            (self.s.partition_every, Event::Partition),
            (self.s.garbage_every, Event::Garbage),
        ] {
            if mean > 0 {
                let d = self.every(mean);
                self.at(d, event);
            }
        }
        self.at(self.s.fault_phase, Event::Calm);
        self.at(self.s.fault_phase + self.s.calm_phase, Event::End);
        Ok(())
    }

    fn run(&mut self) -> Result<(), (FailureKind, String)> {
        self.start().map_err(|e| (FailureKind::Safety, e))?;
        while let Some(((time, seq), event)) = self.queue.pop_first() {
            self.now = time;
            self.summary.events += 1;
            (time, seq, format!("{event:?}").len()).hash(&mut self.hasher);
            if let Event::End = event {
                if let Some(later) = self.end_postponed_to() {
                    self.at(later - self.now, Event::End);
                    continue;
                }
                return self.finish();
            }
            self.handle(event)?;
        }
        Err((FailureKind::Liveness, "the event queue ran dry".into()))
    }

    fn handle(&mut self, event: Event) -> Result<(), (FailureKind, String)> {
        let safety = |e: String| (FailureKind::Safety, e);
        match event {
            Event::Deliver(m) => self.deliver(m).map_err(safety)?,
            Event::Tick(n, inc) => {
                let node = self.node(n);
                if node.up && node.incarnation == inc {
                    node.tick();
                    let interval = node.tick_interval;
                    self.at(interval, Event::Tick(n, inc));
                    self.drain(n).map_err(safety)?;
                }
            }
            Event::Fsync(n, inc, batch) => {
                if self.node(n).up && self.node(n).incarnation == inc {
                    let messages = self.node(n).synced(batch).map_err(safety)?;
                    self.send_checked(n, messages).map_err(safety)?;
                }
            }
            Event::Restart(n, inc) => {
                if !self.node(n).up && self.node(n).incarnation == inc {
                    self.restart(n).map_err(safety)?;
                }
            }
            Event::ClientWake(c) => self.client_wake(c).map_err(safety)?,
            Event::ViewArrives(n, k, view) => {
                self.node(n)
                    .learn_view(&key_name(k), view)
                    .map_err(safety)?;
                if self.node(n).up {
                    self.drain(n).map_err(safety)?;
                }
            }
            Event::RingChange => self.ring_change().map_err(safety)?,
            Event::Handoff(k) => self.handoff(k).map_err(safety)?,
            Event::Crash => self.crash(),
            Event::Partition => self.partition(),
            Event::Heal => self.net.heal(),
            Event::Garbage => self.garbage().map_err(safety)?,
            Event::Calm => self.calm().map_err(safety)?,
            Event::FinalRead(k) => self.final_read(k).map_err(safety)?,
            Event::End => {}
        }
        Ok(())
    }

    fn deliver(&mut self, m: Message) -> Result<(), String> {
        let n = m.to;
        if !self.node(n).up {
            return Ok(());
        }
        let is_request = matches!(
            m.body,
            Body::Prepare { .. } | Body::Accept { .. } | Body::Forget { .. }
        );
        self.node(n).configure(&m.key)?;
        if is_request {
            self.node(n).acceptor.step(m);
        } else {
            self.node(n).proposer.step(m);
        }
        self.drain(n)
    }

    /// Carries out a node's Readies: checks records, sends, answers, schedules the fsync.
    pub fn drain(&mut self, n: NodeId) -> Result<(), String> {
        let drained = self.node(n).drain();
        for record in &drained.records {
            self.check_record(record)?;
        }
        self.send(n, drained.now)?;
        if let Some(batch) = drained.batch {
            let inc = self.node(n).incarnation;
            let d = self.rng.gen_range(50..=self.s.fsync_delay_max);
            self.at(d, Event::Fsync(n, inc, batch));
        }
        for answer in drained.answers {
            self.on_answer(n, answer)?;
        }
        Ok(())
    }

    /// Paxos's core invariant, checked on every accept: at most one register per ballot.
    fn check_record(&mut self, record: &Record) -> Result<(), String> {
        let Record::Key { key, state } = record else {
            return Ok(());
        };
        let Some((ballot, register)) = &state.accepted else {
            return Ok(());
        };
        match self.accepted.get(&(key.clone(), *ballot)) {
            Some(earlier) if earlier != register => Err(format!(
                "two registers accepted at {ballot:?} for {key:?}: {earlier:?} and {register:?}"
            )),
            Some(_) => Ok(()),
            None => {
                self.accepted
                    .insert((key.clone(), *ballot), register.clone());
                Ok(())
            }
        }
    }

    /// Messages that may leave before the fsync: what they say must already be on disk (only
    /// refusals and proposer requests; a mutant's early replies fail here).
    fn send(&mut self, from: NodeId, messages: Vec<Message>) -> Result<(), String> {
        for m in &messages {
            self.node(from).check_durable(m)?;
        }
        self.send_checked(from, messages)
    }

    fn send_checked(&mut self, from: NodeId, messages: Vec<Message>) -> Result<(), String> {
        for m in messages {
            self.summary.messages += 1;
            if m.to == from {
                self.at(0, Event::Deliver(m));
                continue;
            }
            let delays = self.net.send(&mut self.rng, &m);
            for d in delays {
                self.at(d, Event::Deliver(m.clone()));
            }
        }
        Ok(())
    }

    pub fn restart(&mut self, n: NodeId) -> Result<(), String> {
        self.node(n).restart()?;
        let inc = self.node(n).incarnation;
        let interval = self.node(n).tick_interval;
        self.at(interval, Event::Tick(n, inc));
        self.drain(n)
    }

    /// The run may end only once every node has known every key's latest ring change for
    /// `FINAL_READS_SETTLED_MIN` (a handoff completing in the calm phase reaches slow learners up
    /// to 2 s later: until then their stale joint views fail rounds `NotAcceptor` and contend
    /// with the rest). `None`: end now. Ring changes stop in the calm phase and each key has at
    /// most one transition pending, so this moves the end a bounded number of times, never past
    /// `END_POSTPONED_MAX` (a handoff that slow is a liveness failure of its own).
    fn end_postponed_to(&self) -> Option<Micros> {
        let settled = self.ring.iter().map(|r| r.settled_at).max().unwrap_or(0);
        let planned = self.s.fault_phase + self.s.calm_phase;
        let end = (settled + FINAL_READS_SETTLED_MIN).min(planned + END_POSTPONED_MAX);
        (end > self.now).then_some(end)
    }

    fn finish(&mut self) -> Result<(), (FailureKind, String)> {
        self.summary.trace_hash = self.hasher.finish();
        self.summary.dropped = self.net.stats.dropped;
        self.summary.duplicated = self.net.stats.duplicated;
        self.summary.forgotten = self.nodes.iter().map(|n| n.forgotten).sum();
        let history: Vec<Operation> = self
            .history
            .iter()
            .zip(&self.failed)
            .filter(|(_, failed)| !**failed)
            .map(|(op, _)| op.clone())
            .collect();
        match check_history(&history, check_budget()) {
            Verdict::Linearizable => {}
            Verdict::Inconclusive { .. } => self.summary.inconclusive = true,
            Verdict::NotLinearizable { key, operations } => {
                let ops: Vec<String> = history
                    .iter()
                    .filter(|o| o.key == key)
                    .map(|o| format!("  {o:?}"))
                    .collect();
                let shown = ops.len().min(60);
                return Err((
                    FailureKind::Safety,
                    format!(
                        "history of key {key} ({operations} operations) is not linearizable; last \
                         {shown}:\n{}",
                        ops[ops.len() - shown..].join("\n")
                    ),
                ));
            }
        }
        if let Some(k) = self.finals_done.iter().position(|d| !d) {
            return Err((
                FailureKind::Liveness,
                format!("no final read of key {k} succeeded"),
            ));
        }
        if let Some(k) = self.ring.iter().position(|r| r.config.previous.is_some()) {
            return Err((
                FailureKind::Liveness,
                format!("the handoff of key {k} never completed"),
            ));
        }
        Ok(())
    }
}

/// Runs one seed; a panic anywhere comes back as a failure of the seed.
pub fn run(seed: u64, mutant: Option<Mutant>) -> Result<RunSummary, RunFailure> {
    let mut virtual_ms = 0;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut world = World::new(seed, mutant);
        let outcome = world.run();
        (outcome, world.now / MS, world.summary.clone())
    }));
    let fail = |kind, reason, virtual_ms| RunFailure {
        seed,
        kind,
        reason,
        virtual_ms,
    };
    match result {
        Ok((Ok(()), _, summary)) => Ok(summary),
        Ok((Err((kind, reason)), ms, _)) => {
            virtual_ms = ms;
            Err(fail(kind, reason, virtual_ms))
        }
        Err(panic) => {
            let reason = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(fail(FailureKind::Panic, reason, virtual_ms))
        }
    }
}
