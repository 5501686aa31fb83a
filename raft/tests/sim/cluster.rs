//! One simulated run: nodes, network, clients and the nemesis on a virtual clock, all randomness
//! from one seeded RNG. A safety phase with faults, then a liveness phase in a calm world that must
//! converge within a bounded number of ticks; invariants are checked after every event.

use std::collections::{BTreeMap, VecDeque};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use ringraft_raft::{
    ConfChange, ConfChangeStep, ConfState, Config, LogIndex, Message, MessageBody, Mutant, NodeId,
    Role, Snapshot, SnapshotMeta, Term,
};

use super::checkers::{FailureKind, Invariants};
use super::client::{Attempt, Workload};
use super::clock::{EventQueue, Micros, MICROS_PER_MILLI};
use super::disk::DurableState;
use super::linearizability::{check_history, Input, Verdict};
use super::network::{Network, NetworkFaults};
use super::node::{Effects, NodeShell, Observation, ShellBug};
use super::scenario::{Scenario, TICK_SKEW_MAX};

const MS: Micros = MICROS_PER_MILLI;
/// Once faults stop, a leader must be elected and every pending operation done within this many
/// ticks (election timeouts are 10 ticks).
pub const LIVENESS_TICKS_MAX: u64 = 800;
/// Hard bound on events per run; a run that needs more is stuck in a message storm.
const EVENTS_MAX: u64 = 200_000;
/// Ids ever handed out, initial nodes included.
const NODES_MAX: u64 = 9;
const TRACE_LINES_MAX: usize = 400;
/// Search steps per key for the linearizability checker.
const LINEARIZABILITY_BUDGET: u64 = 2_000_000;

#[derive(Debug)]
enum Event {
    Tick(NodeId),
    Deliver(Message),
    FsyncDone(NodeId, u32),
    Crash(NodeId, u32),
    Restart(NodeId, u32),
    Client(usize, u64),
    Nemesis,
    Heal,
    EndOfFaults,
    LivenessCheck,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Faults,
    Liveness { deadline: Micros },
    Done,
}

#[derive(Debug, Default, Clone)]
pub struct RunSummary {
    pub seed: u64,
    pub virtual_ms: u64,
    pub events: u64,
    pub messages: u64,
    pub dropped: u64,
    pub duplicated: u64,
    pub crashes: u64,
    pub partitions: u64,
    pub conf_changes: u64,
    /// Accepted membership changes that went through joint consensus.
    pub joint_changes: u64,
    pub snapshots_installed: u64,
    pub reads_completed: u64,
    /// Unsynced writes that crashes destroyed.
    pub writes_lost: u64,
    /// Virtual time from the end of the faults to convergence.
    pub liveness_ms: u64,
    pub transfers: u64,
    pub compactions: u64,
    pub elections: u64,
    pub ops_completed: u64,
    pub ops_given_up: u64,
    pub final_commit: LogIndex,
    pub linearizability_inconclusive: bool,
}

#[derive(Debug)]
pub struct RunFailure {
    pub seed: u64,
    pub kind: FailureKind,
    pub reason: String,
    pub virtual_ms: u64,
    /// The last events before the failure (only when tracing).
    pub trace: Vec<String>,
}

struct Sim {
    scenario: Scenario,
    rng: ChaCha8Rng,
    queue: EventQueue<Event>,
    network: Network,
    nodes: BTreeMap<NodeId, NodeShell>,
    next_node_id: NodeId,
    workload: Workload,
    /// Per client, the sequence number reached when the faults stopped.
    seq_at_end_of_faults: Vec<u64>,
    invariants: Invariants,
    phase: Phase,
    summary: RunSummary,
    last_role: BTreeMap<NodeId, (Role, Term)>,
    /// Per leader: (life, term, commit index) last checked for durability on a quorum.
    commit_checked: BTreeMap<NodeId, (u32, Term, LogIndex)>,
    /// Each node's tick interval: its clock's rate.
    tick_intervals: BTreeMap<NodeId, Micros>,
    trace: Option<VecDeque<String>>,
    failure: Option<(FailureKind, String)>,
}

/// Runs one seed, with `mutant` switched on in every core. With `trace`, a failure comes with
/// the last few hundred events. A panic (an assertion of the core, or a bug of the simulator) is
/// a failure of the run like any other, with the place it happened.
pub fn run(
    seed: u64,
    bug: ShellBug,
    mutant: Option<Mutant>,
    trace: bool,
) -> Result<RunSummary, RunFailure> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut scenario = Scenario::draw(seed, &mut rng, bug);
    scenario.mutant = mutant;
    let mut sim = Sim::new(scenario, rng, trace);
    let result =
        panics::catch(|| sim.run()).unwrap_or_else(|panic| Err((FailureKind::Panic, panic)));
    let virtual_ms = sim.queue.now() / MS;
    result.map_err(|(kind, reason)| RunFailure {
        seed,
        kind,
        reason,
        virtual_ms,
        trace: sim.trace.take().map(Vec::from).unwrap_or_default(),
    })
}

/// Panics inside a run become failures: caught, and kept off stderr (a mutant may trip a core
/// assertion in every seed); panics elsewhere in the test binary print as usual.
mod panics {
    use std::cell::{Cell, RefCell};
    use std::panic::{self, AssertUnwindSafe};
    use std::sync::Once;

    thread_local! {
        static CATCHING: Cell<bool> = const { Cell::new(false) };
        static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
    }

    static QUIET_HOOK: Once = Once::new();

    fn install_quiet_hook() {
        QUIET_HOOK.call_once(|| {
            let previous = panic::take_hook();
            panic::set_hook(Box::new(move |info| {
                if CATCHING.with(Cell::get) {
                    let location = info.location().map(|l| l.to_string());
                    LOCATION.with(|l| *l.borrow_mut() = location);
                } else {
                    previous(info);
                }
            }));
        });
    }

    /// Runs `f`; a panic comes back as "panicked at <place>: <message>".
    pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
        install_quiet_hook();
        CATCHING.with(|c| c.set(true));
        let result = panic::catch_unwind(AssertUnwindSafe(f));
        CATCHING.with(|c| c.set(false));
        result.map_err(|payload| {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".into());
            let location = LOCATION
                .with(|l| l.borrow_mut().take())
                .unwrap_or_else(|| "an unknown place".into());
            format!("panicked at {location}: {message}")
        })
    }
    #[cfg(test)]
    mod tests {
        #[test]
        fn a_panic_becomes_its_place_and_message() {
            assert_eq!(super::catch(|| 7), Ok(7));
            let caught = super::catch(|| -> u32 { panic!("broken invariant {}", 3) });
            let reason = caught.unwrap_err();
            assert!(reason.contains("cluster.rs"), "{reason}");
            assert!(reason.ends_with(": broken invariant 3"), "{reason}");
        }
    }
}

impl Sim {
    fn new(scenario: Scenario, rng: ChaCha8Rng, trace: bool) -> Sim {
        let clients = scenario.clients;
        Sim {
            network: Network::new(scenario.network.clone()),
            workload: Workload::new(clients, scenario.keys),
            seq_at_end_of_faults: vec![0; clients],
            summary: RunSummary {
                seed: scenario.seed,
                ..RunSummary::default()
            },
            scenario,
            rng,
            queue: EventQueue::new(),
            nodes: BTreeMap::new(),
            next_node_id: 1,
            invariants: Invariants::default(),
            phase: Phase::Faults,
            last_role: BTreeMap::new(),
            tick_intervals: BTreeMap::new(),
            commit_checked: BTreeMap::new(),
            trace: trace.then(VecDeque::new),
            failure: None,
        }
    }

    fn note(&mut self, line: impl FnOnce() -> String) {
        if let Some(trace) = &mut self.trace {
            let lines_max = std::env::var("RINGRAFT_SIM_TRACE_LINES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(TRACE_LINES_MAX);
            if trace.len() >= lines_max {
                trace.pop_front();
            }
            trace.push_back(format!(
                "{:>8.3}ms {}",
                self.queue.now() as f64 / 1e3,
                line()
            ));
        }
    }

    fn fail(&mut self, kind: FailureKind, reason: String) {
        self.failure.get_or_insert((kind, reason));
    }

    fn config(&mut self, id: NodeId, incarnation: u32) -> Config {
        let s = &self.scenario;
        let mut config = Config::new(id);
        config.election_timeout_ticks = s.election_timeout_ticks;
        config.heartbeat_interval_ticks = s.heartbeat_interval_ticks;
        config.pre_vote = s.pre_vote;
        config.check_quorum = s.check_quorum;
        config.lease_read = s.lease_read;
        config.clock_drift_percent_max = (TICK_SKEW_MAX * 100.0).ceil() as u32;
        config.inflight_msgs_max = s.inflight_msgs_max;
        config.inflight_bytes_max = s.inflight_msgs_max * s.append_bytes_max;
        config.append_bytes_max = s.append_bytes_max;
        config.snapshot_chunk_bytes_max = s.snapshot_chunk_bytes_max;
        config.uncommitted_bytes_max = 1 << 20;
        config.mutant = s.mutant;
        config.seed = s
            .seed
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .wrapping_add(id << 20)
            .wrapping_add(incarnation as u64);
        config
    }

    /// Creates node `id` with `durable` on its disk, starts it and its ticker.
    fn spawn(&mut self, durable: DurableState) -> NodeId {
        let id = self.next_node_id;
        self.next_node_id += 1;
        let shell = NodeShell::new(
            id,
            durable,
            self.scenario.bug,
            self.scenario.compaction_threshold,
        );
        self.nodes.insert(id, shell);
        let skew = self.scenario.tick_skew;
        let rate = 1.0 + self.rng.gen_range(-skew..=skew);
        let interval = (self.scenario.tick_interval as f64 * rate) as Micros;
        self.tick_intervals.insert(id, interval);
        let phase = self.rng.gen_range(0..interval);
        self.queue.schedule_in(phase, Event::Tick(id));
        self.start_node(id);
        id
    }

    fn start_node(&mut self, id: NodeId) {
        let incarnation = self.nodes[&id].incarnation + 1;
        let config = self.config(id, incarnation);
        let mut effects = Effects::default();
        let node = self.nodes.get_mut(&id).expect("known node");
        if let Err(e) = node.restart(config, &mut effects) {
            self.fail(FailureKind::Contract, e);
            return;
        }
        self.note(|| format!("node {id} starts (life {incarnation})"));
        self.drive(id, &mut effects);
        self.settle(effects, &[id]);
    }

    fn run(&mut self) -> Result<RunSummary, (FailureKind, String)> {
        let initial = ConfState {
            voters: (1..=self.scenario.voters as u64).collect(),
            learners: (1..=self.scenario.learners as u64)
                .map(|i| i + self.scenario.voters as u64)
                .collect(),
            ..ConfState::default()
        };
        let bootstrap = DurableState {
            snapshot: Some(Snapshot {
                meta: SnapshotMeta {
                    index: 0,
                    term: 0,
                    conf_state: initial,
                },
                data: Vec::new(),
            }),
            ..DurableState::default()
        };
        for _ in 0..self.scenario.voters + self.scenario.learners {
            self.spawn(bootstrap.clone());
        }
        for client in 0..self.scenario.clients {
            let think = self.rng.gen_range(0..=self.scenario.think_time_max);
            self.queue.schedule_in(think, Event::Client(client, 0));
        }
        self.queue
            .schedule_in(self.scenario.nemesis_interval, Event::Nemesis);
        self.queue
            .schedule_in(self.scenario.fault_duration, Event::EndOfFaults);
        if self.trace.is_some() {
            let scenario = format!("{:?}", self.scenario);
            self.note(|| scenario);
        }

        while self.phase != Phase::Done {
            if let Some(reason) = self.failure.take() {
                return Err(reason);
            }
            if let Some(violation) = self.invariants.take_violation() {
                return Err(violation);
            }
            self.summary.events += 1;
            if self.summary.events > EVENTS_MAX {
                let reason = format!("more than {EVENTS_MAX} events: message storm");
                return Err((FailureKind::Stuck, reason));
            }
            let Some((_, event)) = self.queue.pop() else {
                return Err((FailureKind::Stuck, "event queue ran dry".into()));
            };
            self.handle(event);
        }
        if let Some(failure) = self.failure.take() {
            return Err(failure);
        }
        if let Some(violation) = self.invariants.take_violation() {
            return Err(violation);
        }
        self.final_checks().map_err(|e| (FailureKind::Safety, e))?;
        self.summary.virtual_ms = self.queue.now() / MS;
        let stats = self.network.stats;
        self.summary.messages = stats.sent;
        self.summary.dropped = stats.dropped;
        self.summary.duplicated = stats.duplicated;
        self.summary.compactions = self.nodes.values().map(|n| n.compactions).sum();
        self.summary.elections = self.invariants.leader_elections;
        self.summary.ops_completed = self.workload.completed;
        self.summary.ops_given_up = self.workload.given_up;
        self.summary.reads_completed = self.workload.reads_completed;
        Ok(self.summary.clone())
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Tick(id) => {
                self.queue
                    .schedule_in(self.tick_intervals[&id], Event::Tick(id));
                let mut effects = Effects::default();
                if let Some(raw) = self.nodes.get_mut(&id).and_then(|n| n.raw_mut()) {
                    raw.tick();
                    self.drive(id, &mut effects);
                    self.settle(effects, &[id]);
                }
            }
            Event::Deliver(message) => self.deliver(message),
            Event::FsyncDone(id, incarnation) => {
                let node = self.nodes.get_mut(&id).expect("known node");
                if node.is_up() && node.incarnation == incarnation {
                    let mut effects = Effects::default();
                    node.fsync_done(&mut effects);
                    if let Some(id) = effects.fsync_started.take() {
                        self.schedule_fsync(id);
                    }
                    self.settle(effects, &[id]);
                }
            }
            Event::Crash(id, incarnation) => {
                let node = &self.nodes[&id];
                if node.is_up() && node.incarnation == incarnation && self.phase == Phase::Faults {
                    self.crash(id);
                }
            }
            Event::Restart(id, incarnation) => {
                let node = &self.nodes[&id];
                if !node.is_up() && node.incarnation == incarnation {
                    self.start_node(id);
                }
            }
            Event::Client(index, generation) => {
                if self.workload.clients[index].wake_generation == generation {
                    self.client_wake(index);
                }
            }
            Event::Nemesis => {
                if self.phase == Phase::Faults {
                    self.nemesis();
                    self.queue
                        .schedule_in(self.scenario.nemesis_interval, Event::Nemesis);
                }
            }
            Event::Heal => {
                if self.phase == Phase::Faults {
                    self.network.heal();
                    self.note(|| "network healed".into());
                }
            }
            Event::EndOfFaults => self.end_faults(),
            Event::LivenessCheck => self.liveness_check(),
        }
    }

    fn deliver(&mut self, message: Message) {
        let (from, to) = (message.from, message.to);
        if !self.network.link_up(from, to) {
            return;
        }
        if !self.nodes.get(&to).is_some_and(|n| n.is_up()) {
            return;
        }
        if self.trace.is_some() {
            let line = format!("{from}->{to} t{} {}", message.term, brief(&message.body));
            self.note(|| line);
        }
        let raw = self
            .nodes
            .get_mut(&to)
            .and_then(|n| n.raw_mut())
            .expect("checked above");
        if let Err(e) = raw.step(message) {
            let reason = format!("node {to}: step refused a message from {from}: {e}");
            self.fail(FailureKind::Contract, reason);
            return;
        }
        let mut effects = Effects::default();
        self.drive(to, &mut effects);
        self.settle(effects, &[to]);
    }

    fn drive(&mut self, id: NodeId, effects: &mut Effects) {
        let node = self.nodes.get_mut(&id).expect("known node");
        node.drive(effects);
        if let Some(id) = effects.fsync_started.take() {
            self.schedule_fsync(id);
        }
    }

    fn schedule_fsync(&mut self, id: NodeId) {
        let latency = self.rng.gen_range(50..=self.scenario.fsync_latency_max);
        let incarnation = self.nodes[&id].incarnation;
        self.queue
            .schedule_in(latency, Event::FsyncDone(id, incarnation));
        if self.phase == Phase::Faults
            && self.rng.gen_bool(self.scenario.crash_in_fsync_probability)
        {
            let at = self.rng.gen_range(0..latency);
            self.queue.schedule_in(at, Event::Crash(id, incarnation));
        }
    }

    /// Routes what a step produced: messages onto the network, answers to clients, observations
    /// to the checkers; then checks the touched nodes' roles.
    fn settle(&mut self, mut effects: Effects, touched: &[NodeId]) {
        for round in 0.. {
            let mut unreachable: Vec<(NodeId, NodeId, bool)> = Vec::new();
            for message in effects.messages.drain(..) {
                if !self.nodes.contains_key(&message.to) {
                    continue;
                }
                let delays = self
                    .network
                    .transmit(message.from, message.to, &mut self.rng);
                let is_snapshot = matches!(message.body, MessageBody::InstallSnapshot { .. });
                if delays.is_empty()
                    && (!self.network.link_up(message.from, message.to) || is_snapshot)
                    && self.rng.gen_bool(0.5)
                {
                    unreachable.push((message.from, message.to, is_snapshot));
                }
                for delay in delays {
                    self.queue
                        .schedule_in(delay, Event::Deliver(message.clone()));
                }
            }
            self.deliver_answers(&mut effects);
            for (node, observation) in effects.observations.drain(..) {
                if let Observation::SnapshotRestored(_) = observation {
                    self.summary.snapshots_installed += 1;
                }
                let term = self.nodes[&node].raw().map_or(0, |r| r.term());
                self.invariants.observe(node, term, &observation);
            }
            if unreachable.is_empty() || round >= 8 {
                break;
            }
            // The transport tells the sender what it could not deliver.
            for (from, to, is_snapshot) in unreachable {
                if let Some(raw) = self.nodes.get_mut(&from).and_then(|n| n.raw_mut()) {
                    raw.report_unreachable(to);
                    if is_snapshot {
                        raw.report_snapshot(to, false);
                    }
                    self.drive(from, &mut effects);
                }
            }
        }
        for &id in touched {
            self.observe_role(id);
        }
    }

    fn observe_role(&mut self, id: NodeId) {
        let node = &self.nodes[&id];
        let Some(raw) = node.raw() else { return };
        let (role, term) = (raw.role(), raw.term());
        self.invariants
            .observe_role(id, node.incarnation, role, term, &node.mirror);
        if role == Role::Leader {
            self.check_commit_durable(id);
        }
        if self.last_role.get(&id) != Some(&(role, term)) {
            self.last_role.insert(id, (role, term));
            self.note(|| format!("node {id} is {role:?} in term {term}"));
        }
    }

    /// What a leader has committed must be on the disks of a quorum (of both halves of a joint
    /// configuration), so no crash can lose it.
    fn check_commit_durable(&mut self, id: NodeId) {
        let node = &self.nodes[&id];
        let raw = node.raw().expect("observed leaders are up");
        let status = raw.status();
        let checked = (node.incarnation, status.term, status.commit);
        let previous = self.commit_checked.insert(id, checked);
        // Only an advance made as this leader, under its configuration, is checked: what it
        // found committed when elected was committed under older configurations.
        match previous {
            Some((life, term, commit))
                if (life, term) == (node.incarnation, status.term) && commit < status.commit => {}
            _ => return,
        }
        let commit = status.commit;
        let Some(term) = node.mirror.term_at(commit) else {
            return;
        };
        let holders = |voters: &[NodeId]| {
            voters
                .iter()
                .filter(|v| {
                    self.nodes
                        .get(v)
                        .is_some_and(|n| n.durable().holds(commit, term))
                })
                .count()
        };
        let conf = &status.conf_state;
        for voters in [&conf.voters, &conf.voters_outgoing] {
            let held = holders(voters);
            if !voters.is_empty() && held * 2 <= voters.len() {
                self.invariants.fail(format!(
                    "durability: leader {id} committed index {commit} (term {term}) but only \
                     {held} of voters {voters:?} hold it on disk"
                ));
            }
        }
    }

    fn deliver_answers(&mut self, effects: &mut Effects) {
        let mut completed = Vec::new();
        for (node, outcome) in effects.writes.drain(..) {
            let incarnation = self.nodes[&node].incarnation;
            completed.extend(self.workload.on_write_applied(
                node,
                incarnation,
                outcome.id,
                outcome.value,
            ));
        }
        for (node, context, value) in effects.reads.drain(..) {
            let incarnation = self.nodes[&node].incarnation;
            completed.extend(self.workload.on_read(node, incarnation, &context, value));
        }
        for index in completed {
            self.note(|| format!("client {} completed an operation", index + 1));
            self.schedule_client(index, self.scenario.think_time_max);
        }
    }

    fn schedule_client(&mut self, index: usize, within: Micros) {
        let delay = self.rng.gen_range(0..=within);
        let generation = self.workload.clients[index].wake_generation;
        self.queue
            .schedule_in(delay, Event::Client(index, generation));
    }

    fn client_wake(&mut self, index: usize) {
        let now = self.queue.now();
        match self.phase {
            Phase::Done => return,
            Phase::Liveness { .. } if self.client_done_with_liveness(index) => return,
            _ => {}
        }
        match &self.workload.clients[index].current {
            None => {
                let give_up_at = match self.phase {
                    Phase::Faults => now + self.scenario.op_timeout,
                    _ => Micros::MAX,
                };
                self.workload.start(index, give_up_at, &mut self.rng);
            }
            Some(op) if now >= op.give_up_at => {
                self.workload.give_up(index);
                self.note(|| format!("client {} gave up", index + 1));
                self.schedule_client(index, self.scenario.think_time_max);
                return;
            }
            Some(_) => {}
        }
        self.submit(index);
    }

    fn client_done_with_liveness(&self, index: usize) -> bool {
        let client = &self.workload.clients[index];
        client.current.is_none() && client.last_completed_seq > self.seq_at_end_of_faults[index]
    }

    /// Sends client `index`'s pending operation to a node: often the leader some node believes
    /// in, else any node that is up.
    fn submit(&mut self, index: usize) {
        let up: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.is_up())
            .map(|(&id, _)| id)
            .collect();
        let retry = self.scenario.retry_interval;
        if up.is_empty() {
            self.workload.clients[index].wake_generation += 1;
            self.schedule_client(index, retry / 4);
            return;
        }
        let mut target = up[self.rng.gen_range(0..up.len())];
        if self.rng.gen_bool(0.6) {
            if let Some(leader) = self.nodes[&target].raw().and_then(|r| r.leader()) {
                if self.nodes.get(&leader).is_some_and(|n| n.is_up()) {
                    target = leader;
                }
            }
        }
        let client_id = self.workload.clients[index].id;
        let op = self.workload.clients[index]
            .current
            .as_mut()
            .expect("submitting a pending operation");
        let node = self.nodes.get_mut(&target).expect("up node");
        op.attempt = Some(Attempt {
            node: target,
            incarnation: node.incarnation,
        });
        let raw = node.raw_mut().expect("up node");
        let result = match op.command(client_id) {
            Some(command) => raw.propose(command.encode()),
            None => raw.read_index(op.read_context(client_id)),
        };
        let input = op.input;
        self.workload.clients[index].wake_generation += 1;
        match result {
            Ok(()) => {
                self.note(|| format!("client {client_id} sends {input:?} to node {target}"));
                let generation = self.workload.clients[index].wake_generation;
                self.queue
                    .schedule_in(retry, Event::Client(index, generation));
            }
            Err(e) => {
                self.note(|| format!("client {client_id}: node {target} refused: {e}"));
                if let Some(op) = self.workload.clients[index].current.as_mut() {
                    op.attempt = None;
                }
                self.schedule_client(index, 20 * MS);
            }
        }
        let mut effects = Effects::default();
        self.drive(target, &mut effects);
        self.settle(effects, &[target]);
    }

    /// The up node that is leader of the highest term, if any.
    fn leader(&self) -> Option<NodeId> {
        self.nodes
            .iter()
            .filter_map(|(&id, n)| n.raw().map(|r| (id, r)))
            .filter(|(_, r)| r.role() == Role::Leader)
            .max_by_key(|(_, r)| r.term())
            .map(|(id, _)| id)
    }

    fn nemesis(&mut self) {
        if self.rng.gen_bool(self.scenario.crash_probability) {
            self.crash_someone();
        }
        if !self.network.is_partitioned() && self.rng.gen_bool(self.scenario.partition_probability)
        {
            self.partition();
        }
        if self.rng.gen_bool(self.scenario.membership_probability) {
            self.change_membership();
        }
        if self.rng.gen_bool(self.scenario.transfer_probability) {
            self.transfer_leadership();
        }
    }

    fn crash_someone(&mut self) {
        let up: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.is_up())
            .map(|(&id, _)| id)
            .collect();
        if up.is_empty() {
            return;
        }
        let id = up[self.rng.gen_range(0..up.len())];
        self.crash(id);
    }

    fn crash(&mut self, id: NodeId) {
        let loss = self.rng.gen_range(self.scenario.unsynced_loss_min..=1.0);
        let node = self.nodes.get_mut(&id).expect("up node");
        self.summary.writes_lost += node.crash(loss) as u64;
        let incarnation = node.incarnation;
        self.summary.crashes += 1;
        self.note(|| {
            format!(
                "node {id} crashes, losing {:.0}% of unsynced writes",
                loss * 100.0
            )
        });
        let downtime = self.rng.gen_range(MS..=self.scenario.downtime_max);
        self.queue
            .schedule_in(downtime, Event::Restart(id, incarnation));
    }

    fn partition(&mut self) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        let pick = |rng: &mut ChaCha8Rng| ids[rng.gen_range(0..ids.len())];
        match self.rng.gen_range(0..6) {
            0 | 5 => {
                // Half the time the leader: a deposed leader that still serves is the classic
                // source of stale reads.
                let isolated = match self.leader() {
                    Some(leader) if self.rng.gen_bool(0.5) => leader,
                    _ => pick(&mut self.rng),
                };
                let rest: Vec<NodeId> = ids.iter().copied().filter(|&i| i != isolated).collect();
                self.network.partition(&[vec![isolated], rest]);
            }
            1 => {
                let (a, b): (Vec<NodeId>, Vec<NodeId>) =
                    ids.iter().partition(|_| self.rng.gen_bool(0.5));
                self.network.partition(&[a, b]);
            }
            2 => {
                // Asymmetric: one node can only send, or only receive.
                let node = pick(&mut self.rng);
                let deaf = self.rng.gen_bool(0.5);
                for &other in &ids {
                    if deaf {
                        self.network.cut(other, node);
                    } else {
                        self.network.cut(node, other);
                    }
                }
            }
            3 => {
                for &a in &ids {
                    for &b in &ids {
                        if self.rng.gen_bool(0.3) {
                            self.network.cut(a, b);
                        }
                    }
                }
            }
            _ => {
                // A bridge: two sides that only one node connects.
                let bridge = pick(&mut self.rng);
                let (a, b): (Vec<NodeId>, Vec<NodeId>) = ids
                    .iter()
                    .filter(|&&i| i != bridge)
                    .partition(|_| self.rng.gen_bool(0.5));
                self.network.partition(&[a, b]);
            }
        }
        self.summary.partitions += 1;
        if self.trace.is_some() {
            let cuts = self.network.describe_cuts();
            self.note(|| format!("partition: {cuts}"));
        }
        let duration = self
            .rng
            .gen_range(10 * MS..=self.scenario.partition_duration_max);
        self.queue.schedule_in(duration, Event::Heal);
    }

    fn change_membership(&mut self) {
        let Some(leader) = self.leader() else { return };
        let conf = self.nodes[&leader]
            .raw()
            .expect("leader is up")
            .conf_state()
            .clone();
        let change = if !conf.voters_outgoing.is_empty() {
            if conf.auto_leave {
                return;
            }
            ConfChange::default()
        } else {
            match self.draw_membership_change(&conf) {
                Some(change) => change,
                None => return,
            }
        };
        let raw = self
            .nodes
            .get_mut(&leader)
            .and_then(|n| n.raw_mut())
            .expect("leader is up");
        let result = raw.propose_conf_change(change.clone());
        self.note(|| format!("node {leader}: propose {change:?}: {result:?}"));
        if result.is_ok() {
            self.summary.conf_changes += 1;
            if change.changes.len() > 1 {
                self.summary.joint_changes += 1;
            }
        }
        let mut effects = Effects::default();
        self.drive(leader, &mut effects);
        self.settle(effects, &[leader]);
    }

    fn draw_membership_change(&mut self, conf: &ConfState) -> Option<ConfChange> {
        let rng = &mut self.rng;
        let voters = &conf.voters;
        let learners = &conf.learners;
        let any = |rng: &mut ChaCha8Rng, ids: &[NodeId]| ids[rng.gen_range(0..ids.len())];
        let auto_leave = rng.gen_bool(0.5);
        let steps = match rng.gen_range(0..7) {
            0 if self.next_node_id <= NODES_MAX => {
                let id = self.spawn(DurableState::default());
                vec![ConfChangeStep::AddLearner(id)]
            }
            1 if !learners.is_empty() && voters.len() < 5 => {
                vec![ConfChangeStep::AddVoter(any(rng, learners))]
            }
            2 if voters.len() > 3 => vec![ConfChangeStep::RemoveNode(any(rng, voters))],
            3 if !learners.is_empty() => vec![ConfChangeStep::RemoveNode(any(rng, learners))],
            // Joint consensus: swap a voter for a learner.
            4 if !learners.is_empty() => vec![
                ConfChangeStep::AddVoter(any(rng, learners)),
                ConfChangeStep::RemoveNode(any(rng, voters)),
            ],
            // Joint consensus: demote a voter, promote a learner.
            5 if !learners.is_empty() => vec![
                ConfChangeStep::AddLearner(any(rng, voters)),
                ConfChangeStep::AddVoter(any(rng, learners)),
            ],
            // Joint consensus: two new voters at once.
            6 if learners.len() >= 2 && voters.len() <= 3 => {
                vec![
                    ConfChangeStep::AddVoter(learners[0]),
                    ConfChangeStep::AddVoter(learners[1]),
                ]
            }
            _ => return None,
        };
        Some(ConfChange {
            changes: steps,
            auto_leave,
            context: Vec::new(),
        })
    }

    fn transfer_leadership(&mut self) {
        let Some(leader) = self.leader() else { return };
        let raw = self.nodes[&leader].raw().expect("leader is up");
        let others: Vec<NodeId> = raw
            .conf_state()
            .voters
            .iter()
            .copied()
            .filter(|&v| v != leader)
            .collect();
        if others.is_empty() {
            return;
        }
        let target = others[self.rng.gen_range(0..others.len())];
        let raw = self
            .nodes
            .get_mut(&leader)
            .and_then(|n| n.raw_mut())
            .expect("leader is up");
        let result = raw.transfer_leader(target);
        self.note(|| format!("node {leader}: transfer leadership to {target}: {result:?}"));
        if result.is_ok() {
            self.summary.transfers += 1;
        }
        let mut effects = Effects::default();
        self.drive(leader, &mut effects);
        self.settle(effects, &[leader]);
    }

    fn end_faults(&mut self) {
        self.note(|| "faults stop: liveness phase".into());
        self.network.heal();
        self.network.faults = NetworkFaults::calm();
        let deadline = self.queue.now() + LIVENESS_TICKS_MAX * self.scenario.tick_interval;
        self.phase = Phase::Liveness { deadline };
        for (i, client) in self.workload.clients.iter_mut().enumerate() {
            self.seq_at_end_of_faults[i] = client.next_seq();
            if let Some(op) = client.current.as_mut() {
                op.give_up_at = Micros::MAX;
            }
        }
        let down: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|(_, n)| !n.is_up())
            .map(|(&id, _)| id)
            .collect();
        for id in down {
            self.start_node(id);
        }
        for index in 0..self.workload.clients.len() {
            if self.workload.clients[index].current.is_none() {
                self.schedule_client(index, self.scenario.think_time_max);
            }
        }
        self.queue
            .schedule_in(self.scenario.tick_interval, Event::LivenessCheck);
    }

    fn liveness_check(&mut self) {
        let Phase::Liveness { deadline } = self.phase else {
            return;
        };
        match self.converged() {
            Ok(()) => {
                self.phase = Phase::Done;
                self.summary.liveness_ms = (self.queue.now() - self.scenario.fault_duration) / MS;
                return;
            }
            Err(waiting_for) if self.queue.now() >= deadline => {
                self.fail(
                    FailureKind::Liveness,
                    format!(
                        "liveness: no convergence within {LIVENESS_TICKS_MAX} ticks after the \
                     faults stopped: {waiting_for}\n{}",
                        self.describe_nodes()
                    ),
                );
                return;
            }
            Err(_) => {}
        }
        if let Some(leader) = self.leader() {
            let raw = self.nodes[&leader].raw().expect("leader is up");
            let conf = raw.conf_state();
            if !conf.voters_outgoing.is_empty() && !conf.auto_leave {
                let raw = self
                    .nodes
                    .get_mut(&leader)
                    .and_then(|n| n.raw_mut())
                    .expect("leader is up");
                let _ = raw.propose_conf_change(ConfChange::default());
                let mut effects = Effects::default();
                self.drive(leader, &mut effects);
                self.settle(effects, &[leader]);
            }
        }
        self.queue
            .schedule_in(self.scenario.tick_interval, Event::LivenessCheck);
    }

    /// Ok once one leader is known to every member, the configuration is settled, every client
    /// finished an operation started after the faults, and every member applied all of the log.
    fn converged(&self) -> Result<(), String> {
        for (i, _) in self.workload.clients.iter().enumerate() {
            if !self.client_done_with_liveness(i) {
                return Err(format!("client {} has not finished", i + 1));
            }
        }
        let leader = self.leader().ok_or("no leader")?;
        let raw = self.nodes[&leader].raw().expect("leader is up");
        let status = raw.status();
        if status.commit != status.last_index {
            return Err(format!(
                "leader {leader} committed {} of {}",
                status.commit, status.last_index
            ));
        }
        let conf = raw.conf_state();
        if !conf.voters_outgoing.is_empty() {
            return Err("configuration still joint".into());
        }
        for &member in conf.voters.iter().chain(&conf.learners) {
            let node = &self.nodes[&member];
            let raw = node.raw().ok_or(format!("member {member} is down"))?;
            if raw.leader() != Some(leader) || raw.term() != status.term {
                return Err(format!("member {member} does not follow {leader}"));
            }
            if node.store.applied_index != status.commit {
                return Err(format!(
                    "member {member} applied {} of {}",
                    node.store.applied_index, status.commit
                ));
            }
        }
        Ok(())
    }

    fn describe_nodes(&self) -> String {
        let mut lines = Vec::new();
        for (id, node) in &self.nodes {
            match node.raw() {
                None => lines.push(format!("  node {id}: down")),
                Some(raw) => {
                    let s = raw.status();
                    lines.push(format!(
                        "  node {id}: {:?} term {} leader {:?} commit {} applied {} last {} \
                         snapshot {} conf {:?}/{:?} learners {:?}",
                        s.role,
                        s.term,
                        s.leader,
                        s.commit,
                        node.store.applied_index,
                        s.last_index,
                        s.snapshot_index,
                        s.conf_state.voters,
                        s.conf_state.voters_outgoing,
                        s.conf_state.learners
                    ));
                }
            }
        }
        for client in &self.workload.clients {
            if let Some(op) = &client.current {
                lines.push(format!(
                    "  client {} waits on {:?} key {} via {:?}",
                    client.id, op.input, op.key, op.attempt
                ));
            }
        }
        lines.join("\n")
    }

    /// No acknowledged write lost, every member holds the same state, the history linearizes.
    fn final_checks(&mut self) -> Result<(), String> {
        let leader = self.leader().ok_or("no leader at the end")?;
        // Nothing may be acknowledged that the final state lacks.
        let store = &self.nodes[&leader].store;
        for (id, value) in &self.workload.acknowledged {
            if store.outcome(*id) != Some(*value) {
                return Err(format!(
                    "acknowledged write {id:?} with outcome {value} is missing from the final \
                     state (found {:?})",
                    store.outcome(*id)
                ));
            }
        }
        let conf = self.nodes[&leader].raw().expect("up").conf_state().clone();
        for member in conf.voters.iter().chain(&conf.learners) {
            let other = &self.nodes[member].store;
            if (other.applied_index, other.chain) != (store.applied_index, store.chain) {
                return Err(format!(
                    "member {member} ends with another state than {leader}"
                ));
            }
        }
        self.summary.final_commit = store.applied_index;
        let history = self.workload.history();
        match check_history(&history, LINEARIZABILITY_BUDGET) {
            Verdict::Linearizable => Ok(()),
            Verdict::Inconclusive { .. } => {
                self.summary.linearizability_inconclusive = true;
                Ok(())
            }
            Verdict::NotLinearizable { key, operations } => {
                let mut lines: Vec<String> = operations
                    .iter()
                    .map(|op| {
                        let ret = if op.ret == u64::MAX {
                            "?".to_string()
                        } else {
                            op.ret.to_string()
                        };
                        format!(
                            "  [{}, {}] client {} {:?} -> {:?}",
                            op.call, ret, op.client, op.input, op.output
                        )
                    })
                    .collect();
                lines.truncate(200);
                let reads = operations.iter().filter(|o| o.input == Input::Read).count();
                Err(format!(
                    "client history of key {key} is not linearizable ({} operations, {reads} \
                     reads):\n{}",
                    operations.len(),
                    lines.join("\n")
                ))
            }
        }
    }
}

fn brief(body: &MessageBody) -> String {
    match body {
        MessageBody::Append {
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit,
        } => format!(
            "Append prev ({prev_log_index}, {prev_log_term}) {} entries commit {leader_commit}",
            entries.len()
        ),
        MessageBody::InstallSnapshot {
            meta,
            offset,
            total_bytes,
            done,
            ..
        } => format!(
            "InstallSnapshot ({}, {}) at {offset}/{total_bytes} done {done}",
            meta.index, meta.term
        ),
        MessageBody::Propose { entries } => format!("Propose {} entries", entries.len()),
        MessageBody::ReadIndex { .. } => "ReadIndex".into(),
        MessageBody::ReadIndexResponse { index, .. } => format!("ReadIndexResponse {index}"),
        other => format!("{other:?}"),
    }
}
