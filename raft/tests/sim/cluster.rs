//! One simulated run: nodes, network, clients and the nemesis on a virtual clock, all randomness
//! from one seeded RNG. A safety phase with faults, then a liveness phase in a calm world (but for
//! a minority left faulty) that must converge within a bounded number of ticks; invariants are
//! checked after every event.
//!
//! This file is the driver (events, delivery, the Ready loop's effects, role changes); the rest is
//! split by concern: `nemesis` (faults at random times), `reactions` (faults in reaction to
//! protocol events), `clients`, `liveness`, `checks` (durability of commits, the final checks) and
//! `panics` (a panic in a run is a failure of that run).

mod checks;
mod clients;
mod hostile;
mod liveness;
mod nemesis;
mod panics;
mod reactions;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use ringraft_raft::{
    ConfState, Config, LogIndex, Message, MessageBody, Mutant, NodeId, Role, Snapshot,
    SnapshotMeta, Term,
};

use super::checkers::{FailureKind, Invariants};
use super::client::{Attempt, Home, Workload};
use super::clock::{EventQueue, Micros, MICROS_PER_MILLI};
use super::disk::DurableState;
use super::linearizability::{check_history, Input, Verdict};
use super::network::{Network, NetworkFaults};
use super::node::{is_leader_message, Effects, NodeShell, Observation, ShellBug};
use super::scenario::{Focus, Scenario, TICK_SKEW_MAX};

const MS: Micros = MICROS_PER_MILLI;
/// Once faults stop, a leader must be elected and every pending operation done within this many
/// ticks (election timeouts are 10 ticks).
pub const LIVENESS_TICKS_MAX: u64 = 800;
/// Hard bound on events per run; a run that needs more is stuck in a message storm.
const EVENTS_MAX: u64 = 200_000;
/// Ids ever handed out, initial nodes included.
const NODES_MAX: u64 = 12;
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
    /// The end of one cut of the network (see `Network::heal_links`).
    HealLinks(Vec<(NodeId, NodeId)>),
    /// A paused node (of that life) resumes.
    Resume(NodeId, u32),
    /// A node's clock runs at its own rate again.
    ClockRestore(NodeId),
    /// A follower campaigns as early as it may, for this many more ticks.
    EagerCampaign(NodeId, u32),
    /// The end of a leader's (node, life, term) lost-own-entries window.
    EndLoneLeader(NodeId, u32, Term),
    /// A reaction to a protocol event that waits a little (if the node still leads that term).
    Delayed(reactions::Reaction, NodeId, Term),
    EndOfFaults,
    LivenessCheck,
}

/// A protocol event the nemesis may react to (see `Scenario::reactions`).
#[derive(Debug)]
enum Trigger {
    Elected(NodeId, Term),
    /// A leader appended a configuration entry at this index.
    ConfAppended(NodeId, LogIndex),
    /// A configuration entry a leader appended in this term committed.
    ConfCommitted(NodeId, Term),
    /// A leader sent an append carrying entries of earlier terms only.
    OldTermAppend(NodeId, Term),
    /// A leader sent a snapshot chunk: the first (offset 0) or the last.
    SnapshotSent(Message),
}

/// A leader's (life, term), its commit index when last seen, and the committed entry last
/// verified to be on a quorum under the configuration then in effect.
struct CommitCheck {
    life: u32,
    term: Term,
    commit: LogIndex,
    verified: Option<(LogIndex, Term, ConfState)>,
}

/// A paused node: its life, and what reached it meanwhile (handled when it resumes).
struct Paused {
    incarnation: u32,
    backlog: Vec<Event>,
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
    /// Faults the nemesis set off in reaction to protocol events.
    pub reactions: u64,
    pub pauses: u64,
    pub clock_faults: u64,
    pub lease_attacks: u64,
    /// Malformed messages handed to nodes (see `hostile.rs`).
    pub hostile_messages: u64,
    /// Disks that stalled while their node's network stayed up.
    pub disk_stalls: u64,
    /// Appends that reached below their leader's snapshot: a follower caught up from the tail a
    /// compaction retained instead of a snapshot.
    pub tail_catch_ups: u64,
    /// Voters left faulty through the liveness phase.
    pub faulty_in_liveness: u64,
    pub final_commit: LogIndex,
    pub linearizability_inconclusive: bool,
    /// A hash of every event handled, with its time: two runs of one seed must agree on it.
    pub trace_hash: u64,
}

#[derive(Debug)]
pub struct RunFailure {
    pub seed: u64,
    /// What the seed's scenario concentrates on.
    pub focus: Focus,
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
    /// Per leader: what was last checked for durability on a quorum.
    commit_checked: BTreeMap<NodeId, CommitCheck>,
    /// Each node's tick interval: its clock's rate (the nominal one may be changed for a while).
    tick_intervals: BTreeMap<NodeId, Micros>,
    nominal_tick_intervals: BTreeMap<NodeId, Micros>,
    /// (pre_vote, check_quorum) of each node, when they differ per node.
    node_settings: BTreeMap<NodeId, (bool, bool)>,
    triggers: Vec<Trigger>,
    paused: BTreeMap<NodeId, Paused>,
    /// Nodes left down or cut off through the liveness phase.
    faulty: BTreeSet<NodeId>,
    /// When the last partition of the periodic nemesis heals (one at a time).
    periodic_cut_until: Micros,
    /// Until when each node's disk is stalled: an fsync started before then ends no earlier.
    disk_stalled_until: BTreeMap<NodeId, Micros>,
    /// (leader, term) whose first append of older entries was noted.
    spotted: BTreeSet<(NodeId, Term)>,
    /// (leader, index) of configuration entries a reaction proposed (not to react to again).
    reaction_conf_entries: BTreeSet<(NodeId, LogIndex)>,
    /// Configuration entries leaders appended, (leader, term, index), until they commit.
    uncommitted_confs: Vec<(NodeId, Term, LogIndex)>,
    /// Leadership transfers under way: leader -> (term, target, the leader's ticks since).
    pending_transfers: BTreeMap<NodeId, (Term, NodeId, u32)>,
    /// A failover under way since a leader was cut off as it changed the membership: until then
    /// the periodic nemesis proposes no other change, so that the episode can play out.
    failover_until: Micros,
    /// Per node, its ticks since a leader's message last reached it: a node may campaign early
    /// (as its randomized timer may fire at its minimum) only once this reaches the timeout.
    ticks_since_leader: BTreeMap<NodeId, u32>,
    /// A lease attack under way: the leader cut off, and until when.
    lease_attack: Option<(NodeId, Micros)>,
    /// A lease attack waiting for its moment: (leader, term, whether its CheckQuorum round
    /// just passed).
    lease_attack_armed: Option<(NodeId, Term, bool)>,
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
    let focus = scenario.focus;
    let mut sim = Sim::new(scenario, rng, trace);
    let result =
        panics::catch(|| sim.run()).unwrap_or_else(|panic| Err((FailureKind::Panic, panic)));
    let virtual_ms = sim.queue.now() / MS;
    if result.is_ok() && std::env::var_os("RINGRAFT_SIM_TRACE_PASSING").is_some() {
        for line in sim.trace.iter().flatten() {
            eprintln!("{line}");
        }
    }
    result.map_err(|(kind, reason)| RunFailure {
        seed,
        focus,
        kind,
        reason,
        virtual_ms,
        trace: sim.trace.take().map(Vec::from).unwrap_or_default(),
    })
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
            nominal_tick_intervals: BTreeMap::new(),
            node_settings: BTreeMap::new(),
            triggers: Vec::new(),
            paused: BTreeMap::new(),
            faulty: BTreeSet::new(),
            periodic_cut_until: 0,
            disk_stalled_until: BTreeMap::new(),
            spotted: BTreeSet::new(),
            reaction_conf_entries: BTreeSet::new(),
            uncommitted_confs: Vec::new(),
            failover_until: 0,
            pending_transfers: BTreeMap::new(),
            ticks_since_leader: BTreeMap::new(),
            lease_attack: None,
            lease_attack_armed: None,
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
        (config.pre_vote, config.check_quorum) = self
            .node_settings
            .get(&id)
            .copied()
            .unwrap_or((s.pre_vote, s.check_quorum));
        config.lease_read = s.lease_read;
        config.clock_drift_percent_max = (TICK_SKEW_MAX * 100.0).ceil() as u32;
        config.inflight_msgs_max = s.inflight_msgs_max;
        config.inflight_bytes_max = s.inflight_msgs_max * s.append_bytes_max;
        config.append_bytes_max = s.append_bytes_max;
        config.snapshot_chunk_bytes_max = s.snapshot_chunk_bytes_max;
        config.uncommitted_bytes_max = 1 << 20;
        config.snapshot_catch_up_entries = s.snapshot_catch_up_entries;
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
            self.scenario.snapshot_ballast_bytes,
        );
        self.nodes.insert(id, shell);
        let skew = self.scenario.tick_skew;
        let rate = 1.0 + self.rng.gen_range(-skew..=skew);
        let interval = (self.scenario.tick_interval as f64 * rate) as Micros;
        self.tick_intervals.insert(id, interval);
        self.nominal_tick_intervals.insert(id, interval);
        if self.scenario.mixed_settings {
            let settings = (self.rng.gen_bool(0.5), self.rng.gen_bool(0.5));
            self.node_settings.insert(id, settings);
        }
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
        self.ticks_since_leader.insert(id, 0);
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
            self.summary.trace_hash = mix(self.summary.trace_hash, self.queue.now());
            self.summary.trace_hash = mix(self.summary.trace_hash, event_code(&event));
            self.handle(event);
            self.react();
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
        self.summary.faulty_in_liveness = self.faulty.len() as u64;
        Ok(self.summary.clone())
    }

    fn handle(&mut self, event: Event) {
        let event = match self.hold_if_paused(event) {
            Some(event) => event,
            None => return,
        };
        match event {
            Event::Tick(id) => {
                self.queue
                    .schedule_in(self.tick_intervals[&id], Event::Tick(id));
                if self.paused.contains_key(&id) {
                    return; // a paused process misses its ticks
                }
                let mut effects = Effects::default();
                if let Some(raw) = self.nodes.get_mut(&id).and_then(|n| n.raw_mut()) {
                    raw.tick();
                    *self.ticks_since_leader.entry(id).or_insert(0) += 1;
                    self.drive(id, &mut effects);
                    self.settle(effects, &[id]);
                    self.maybe_spring_lease_attack(id);
                    self.check_transfer_ends(id);
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
                if !node.is_up() && node.incarnation == incarnation && !self.faulty.contains(&id) {
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
            Event::HealLinks(links) => {
                if self.phase == Phase::Faults {
                    self.network.heal_links(&links);
                    self.note(|| format!("{} links healed", links.len()));
                }
            }
            Event::Resume(id, incarnation) => self.resume(id, incarnation),
            Event::ClockRestore(id) => {
                self.tick_intervals
                    .insert(id, self.nominal_tick_intervals[&id]);
            }
            Event::EagerCampaign(id, ticks_left) => self.eager_campaign(id, ticks_left),
            Event::EndLoneLeader(id, incarnation, term) => {
                self.end_lone_leader(id, incarnation, term)
            }
            Event::Delayed(reaction, id, term) => {
                if self.phase == Phase::Faults && self.leads(id, term) {
                    self.apply_reaction(reaction, id, term);
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
        if let MessageBody::Append { prev_log_index, .. } = &message.body {
            let below_compaction = self
                .nodes
                .get(&from)
                .is_some_and(|leader| *prev_log_index < leader.last_compaction);
            if below_compaction {
                self.summary.tail_catch_ups += 1;
            }
        }
        let raw = self
            .nodes
            .get_mut(&to)
            .and_then(|n| n.raw_mut())
            .expect("checked above");
        if is_leader_message(&message.body) && message.term >= raw.term() {
            self.ticks_since_leader.insert(to, 0);
        }
        raw.step(message);
        let mut effects = Effects::default();
        self.drive(to, &mut effects);
        self.settle(effects, &[to]);
        self.maybe_spring_lease_attack(to);
    }

    fn drive(&mut self, id: NodeId, effects: &mut Effects) {
        let node = self.nodes.get_mut(&id).expect("known node");
        node.drive(effects);
        if let Some(id) = effects.fsync_started.take() {
            self.schedule_fsync(id);
        }
    }

    fn schedule_fsync(&mut self, id: NodeId) {
        let mut latency = self.rng.gen_range(50..=self.scenario.fsync_latency_max);
        if let Some(&until) = self.disk_stalled_until.get(&id) {
            latency = latency.max(until.saturating_sub(self.queue.now()));
        }
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
            for (id, index) in effects.conf_appended.drain(..) {
                self.triggers.push(Trigger::ConfAppended(id, index));
                if self.phase == Phase::Faults {
                    let term = self.nodes[&id].raw().map_or(0, |r| r.term());
                    self.uncommitted_confs.push((id, term, index));
                }
            }
            for message in effects.messages.drain(..) {
                if !self.nodes.contains_key(&message.to) {
                    continue;
                }
                self.spot_triggers(&message);
                let delays = self.network.transmit(&message, &mut self.rng);
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
        let commit = if role == Role::Leader && !self.uncommitted_confs.is_empty() {
            raw.status().commit
        } else {
            0
        };
        self.invariants
            .observe_role(id, node.incarnation, role, term, &node.mirror);
        if role == Role::Leader {
            self.check_commit_durable(id);
            self.spot_conf_commits(id, term, commit);
        }
        if self.last_role.get(&id) != Some(&(role, term)) {
            self.last_role.insert(id, (role, term));
            self.note(|| format!("node {id} is {role:?} in term {term}"));
            if role == Role::Leader {
                self.triggers.push(Trigger::Elected(id, term));
            }
        }
    }

    /// The running node that is leader of the highest term, if any.
    fn leader(&self) -> Option<NodeId> {
        self.nodes
            .iter()
            .filter(|(id, _)| !self.paused.contains_key(id))
            .filter_map(|(&id, n)| n.raw().map(|r| (id, r)))
            .filter(|(_, r)| r.role() == Role::Leader)
            .max_by_key(|(_, r)| r.term())
            .map(|(id, _)| id)
    }

    /// Up and not paused: the node takes input now.
    fn is_running(&self, id: NodeId) -> bool {
        self.nodes.get(&id).is_some_and(|n| n.is_up()) && !self.paused.contains_key(&id)
    }
}

/// One step of FNV-1a over the bytes of `word`.
fn mix(hash: u64, word: u64) -> u64 {
    word.to_le_bytes()
        .iter()
        .fold(hash ^ 0xcbf2_9ce4_8422_2325, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

/// A summary of an event for the trace hash: its kind and the nodes and numbers it names.
fn event_code(event: &Event) -> u64 {
    let (kind, a, b) = match event {
        Event::Tick(id) => (1, *id, 0),
        Event::Deliver(m) => (2, m.from << 16 | m.to, m.term),
        Event::FsyncDone(id, life) => (3, *id, u64::from(*life)),
        Event::Crash(id, life) => (4, *id, u64::from(*life)),
        Event::Restart(id, life) => (5, *id, u64::from(*life)),
        Event::Client(index, generation) => (6, *index as u64, *generation),
        Event::Nemesis => (7, 0, 0),
        Event::HealLinks(links) => (8, links.len() as u64, 0),
        Event::Resume(id, life) => (9, *id, u64::from(*life)),
        Event::ClockRestore(id) => (10, *id, 0),
        Event::EagerCampaign(id, ticks) => (11, *id, u64::from(*ticks)),
        Event::EndLoneLeader(id, life, term) => (12, *id << 32 | u64::from(*life), *term),
        Event::Delayed(_, id, term) => (13, *id, *term),
        Event::EndOfFaults => (14, 0, 0),
        Event::LivenessCheck => (15, 0, 0),
    };
    kind << 56 ^ a << 24 ^ b
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
