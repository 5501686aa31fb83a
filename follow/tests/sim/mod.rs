//! A deterministic simulation of the follow plane at scale: the real tree, fetch sessions and
//! liveness code of every member, a virtual network of 1 ms links with drops, cut links, paused
//! members and tampered responses, and the voters' log modelled simply (the leader commits
//! batches; membership changes are entries in it). Seeded by ChaCha: a seed reproduces a run.
#![allow(dead_code)]

pub mod checks;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use ringraft_follow::{
    Config, Entry, LivenessStatus, LogIndex, MembershipChange, Message, Mutant, Node, NodeId,
    Output, Role, Snapshot, Start, Topology,
};

pub const TICK_MS: u64 = 10;
const LINK_MS: u64 = 1;
const BUCKETS: usize = 8;
const FIRST_OBSERVER: NodeId = 1000;
const CUT_MS: u64 = 3000;
const PAUSE_MS: u64 = 4000;

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    pub observers: usize,
    pub voters: usize,
    pub learners: usize,
    pub changes: usize,
    pub change_every_ms: u64,
    pub batch_every_ms: u64,
    pub drop_per_mille: u32,
    pub tamper_per_mille: u32,
    pub cuts: usize,
    pub pauses: usize,
    pub quiet_ms: u64,
    pub idle_ms: u64,
    /// Members that compute their own tree from the changes they apply (the rest share the
    /// simulator's copy per epoch, which keeps 10,000 members in memory); the check compares.
    pub self_computing: usize,
    pub follow: Config,
}

impl SimConfig {
    /// Faults drawn from the seed (swarm testing): each run gets its own mix.
    pub fn swarm(seed: u64, observers: usize) -> SimConfig {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_5eed);
        SimConfig {
            seed,
            observers,
            voters: 5,
            learners: 1,
            changes: rng.gen_range(8..=16),
            change_every_ms: 500,
            batch_every_ms: 50,
            drop_per_mille: [0, 0, 10, 30][rng.gen_range(0..4)],
            tamper_per_mille: [0, 2, 10][rng.gen_range(0..3)],
            cuts: rng.gen_range(1..=3),
            pauses: rng.gen_range(1..=3),
            quiet_ms: 3000,
            idle_ms: 1000,
            self_computing: 8,
            // A shorter served tail than the default keeps 10,000 simulated members in memory and
            // cache, and makes snapshot transfers more frequent.
            follow: Config {
                tail_entries_max: 64,
                ..Config::default()
            },
        }
    }

    pub fn without_mutant(mut self) -> SimConfig {
        self.follow.mutant = None;
        self
    }

    /// A run with every fault the checks need (cut links, paused members, tampered responses, no
    /// drops so the timing bounds are strict) and one rule broken.
    pub fn for_mutant(seed: u64, observers: usize, mutant: Mutant) -> SimConfig {
        let mut cfg = SimConfig::swarm(seed, observers);
        cfg.drop_per_mille = 0;
        cfg.tamper_per_mille = 10;
        cfg.cuts = 2;
        cfg.pauses = 2;
        cfg.follow.mutant = Some(mutant);
        cfg
    }
}

#[derive(Debug, Clone, Default)]
pub struct SimStats {
    /// Per change: virtual ms from the leader's commit until the last member that had it applied.
    pub change_reach_ms: Vec<u64>,
    pub batches: u64,
    /// Follow-plane messages the leader sent per committed batch, plus the modelled Raft appends.
    pub leader_msgs_per_batch_max: u64,
    pub leader_msgs_total: u64,
    pub idle_msgs_per_member_per_s: f64,
    pub down_detect_ms: Vec<u64>,
    pub down_bound_ms: u64,
    pub depth: u32,
    pub tree_apply_us: Vec<f64>,
    pub reparented_max: usize,
    pub tampered: u64,
    pub refused: u64,
    pub snapshots_installed: u64,
    pub messages: u64,
    pub virtual_ms: u64,
}

#[derive(Debug)]
pub struct SimReport {
    pub violations: Vec<String>,
    pub stats: SimStats,
}

impl SimReport {
    pub fn has(&self, tag: &str) -> bool {
        self.violations.iter().any(|v| v.starts_with(tag))
    }
}

struct Member {
    node: Node,
    removed: bool,
    paused: bool,
    ever_paused: bool,
    self_computing: bool,
    last_applied: LogIndex,
    joined_epoch: u64,
}

struct Envelope {
    from: NodeId,
    to: NodeId,
    message: Message,
}

#[derive(Clone, Copy)]
struct Cut {
    member: NodeId,
    primary: NodeId,
    start_ms: u64,
    /// The commit index half-way through the re-attach window: the member must have reached it
    /// by the window's end (it keeps receiving, through its fallback).
    commit_at_mid: LogIndex,
    returned: bool,
}

#[derive(Clone, Copy)]
struct Pause {
    member: NodeId,
    start_ms: u64,
    down_at_ms: Option<u64>,
    resumed: bool,
    active_after_resume: bool,
}

struct Sim {
    cfg: SimConfig,
    rng: ChaCha8Rng,
    now_ms: u64,
    members: Vec<Member>,
    index: HashMap<NodeId, usize>,
    leader: NodeId,
    log: Vec<Entry>,
    epochs: BTreeMap<u64, Arc<Topology>>,
    snapshot_bytes: BTreeMap<u64, Arc<[u8]>>,
    master: Topology,
    buckets: Vec<Vec<Envelope>>,
    /// Members cut from their primary upstream, whichever it is at the time (the tree may change
    /// during the cut).
    cut_members: BTreeSet<NodeId>,
    cuts: Vec<Cut>,
    pauses: Vec<Pause>,
    faults_on: bool,
    next_id: NodeId,
    change_commit_ms: BTreeMap<u64, u64>,
    change_reach: BTreeMap<u64, u64>,
    leader_children: Vec<NodeId>,
    window_sends: u64,
    window_immediate: u64,
    window_adoptees: BTreeSet<NodeId>,
    messages_sent: u64,
    /// FOLLOW_SIM_TRACE=<id>: print the messages to and from one member and the digests about it.
    trace: Option<NodeId>,
    violations: Vec<String>,
    stats: SimStats,
}

fn encode_change(change: MembershipChange) -> Arc<[u8]> {
    let (op, id) = match change {
        MembershipChange::Set(id, Role::Observer) => (0u8, id),
        MembershipChange::Remove(id) => (1, id),
        MembershipChange::Set(id, Role::Learner) => (2, id),
        MembershipChange::Set(id, Role::Voter) => (3, id),
    };
    let mut bytes = vec![1u8, op];
    bytes.extend_from_slice(&id.to_le_bytes());
    bytes.into()
}

fn decode_change(data: &[u8]) -> Option<MembershipChange> {
    if data.len() != 10 || data[0] != 1 {
        return None;
    }
    let id = u64::from_le_bytes(data[2..10].try_into().ok()?);
    Some(match data[1] {
        0 => MembershipChange::Set(id, Role::Observer),
        1 => MembershipChange::Remove(id),
        2 => MembershipChange::Set(id, Role::Learner),
        _ => MembershipChange::Set(id, Role::Voter),
    })
}

fn encode_membership(epoch: u64, topology: &Topology) -> Arc<[u8]> {
    let mut members: Vec<(NodeId, u8)> = topology
        .voters()
        .iter()
        .map(|&v| (v, 0))
        .chain(topology.learners().iter().map(|&l| (l, 1)))
        .chain(topology.observers().map(|o| (o, 2)))
        .collect();
    members.sort_unstable();
    let mut bytes = epoch.to_le_bytes().to_vec();
    for (id, role) in members {
        bytes.extend_from_slice(&id.to_le_bytes());
        bytes.push(role);
    }
    bytes.into()
}

fn decode_membership(config: &Config, data: &[u8]) -> Option<(u64, Topology)> {
    let epoch = u64::from_le_bytes(data.get(..8)?.try_into().ok()?);
    let members = data[8..].chunks(9).map(|c| {
        let id = u64::from_le_bytes(c[..8].try_into().expect("9-byte chunk"));
        let role = match c[8] {
            0 => Role::Voter,
            1 => Role::Learner,
            _ => Role::Observer,
        };
        (id, role)
    });
    Some((epoch, Topology::from_members(config, members).ok()?))
}

impl Sim {
    fn new(cfg: SimConfig) -> Sim {
        let rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let mut master = Topology::new(&cfg.follow);
        let voters: Vec<NodeId> = (1..=cfg.voters as NodeId).collect();
        let learners: Vec<NodeId> = (0..cfg.learners as NodeId).map(|i| 100 + i).collect();
        let observers: Vec<NodeId> = (0..cfg.observers as NodeId)
            .map(|i| FIRST_OBSERVER + i)
            .collect();
        for &v in &voters {
            master
                .apply(MembershipChange::Set(v, Role::Voter))
                .expect("voter");
        }
        for &l in &learners {
            master
                .apply(MembershipChange::Set(l, Role::Learner))
                .expect("learner");
        }
        for &o in &observers {
            master
                .apply(MembershipChange::Set(o, Role::Observer))
                .expect("observer");
        }
        // Index 1 is the bootstrap: every member starts from its snapshot.
        let bootstrap_epoch = 1;
        let boot_bytes = encode_membership(bootstrap_epoch, &master);
        let boot = Snapshot {
            index: 1,
            term: 1,
            data: boot_bytes.clone(),
        };
        let shared = Arc::new(master.clone());
        let mut sim = Sim {
            rng,
            now_ms: 0,
            members: Vec::new(),
            index: HashMap::new(),
            leader: 1,
            log: vec![Entry {
                index: 1,
                term: 1,
                data: boot_bytes.clone(),
            }],
            epochs: BTreeMap::from([(bootstrap_epoch, shared.clone())]),
            snapshot_bytes: BTreeMap::from([(bootstrap_epoch, boot_bytes)]),
            master,
            buckets: (0..BUCKETS).map(|_| Vec::new()).collect(),
            cut_members: BTreeSet::new(),
            cuts: Vec::new(),
            pauses: Vec::new(),
            faults_on: true,
            next_id: FIRST_OBSERVER + cfg.observers as NodeId,
            change_commit_ms: BTreeMap::new(),
            change_reach: BTreeMap::new(),
            leader_children: Vec::new(),
            window_sends: 0,
            window_immediate: 0,
            window_adoptees: BTreeSet::new(),
            messages_sent: 0,
            trace: std::env::var("FOLLOW_SIM_TRACE")
                .ok()
                .and_then(|t| t.parse().ok()),
            violations: Vec::new(),
            stats: SimStats::default(),
            cfg,
        };
        let all: Vec<NodeId> = voters
            .iter()
            .chain(&learners)
            .chain(&observers)
            .copied()
            .collect();
        let sample_every = (observers.len() / sim.cfg.self_computing.max(1)).max(1);
        for (i, id) in all.into_iter().enumerate() {
            let self_computing = id >= FIRST_OBSERVER
                && sim.cfg.self_computing > 0
                && ((id - FIRST_OBSERVER) as usize).is_multiple_of(sample_every);
            let topology = if self_computing {
                Arc::new(sim.master.clone())
            } else {
                shared.clone()
            };
            let start = Start {
                applied_index: 1,
                applied_term: 1,
                snapshot: Some(boot.clone()),
            };
            sim.add_member(id, bootstrap_epoch, topology, start, self_computing);
            let _ = i;
        }
        for &v in &voters {
            let at = sim.index[&v];
            sim.members[at].node.set_leader(Some(sim.leader));
        }
        sim.leader_children = sim.epochs[&bootstrap_epoch].children(sim.leader);
        sim.stats.depth = sim.master.depth();
        sim
    }

    fn add_member(
        &mut self,
        id: NodeId,
        epoch: u64,
        topology: Arc<Topology>,
        start: Start,
        self_computing: bool,
    ) {
        let last_applied = start.applied_index;
        let node =
            Node::new(id, self.cfg.follow.clone(), epoch, topology, start).expect("valid config");
        self.index.insert(id, self.members.len());
        self.members.push(Member {
            node,
            removed: false,
            paused: false,
            ever_paused: false,
            self_computing,
            last_applied,
            joined_epoch: epoch,
        });
        let at = self.members.len() - 1;
        self.drain(at);
    }

    fn violation(&mut self, text: String) {
        if self.violations.len() < 50 {
            self.violations.push(format!(
                "{text} (seed {}, t={} ms)",
                self.cfg.seed, self.now_ms
            ));
        }
    }

    fn commit_index(&self) -> LogIndex {
        self.log.len() as LogIndex
    }

    fn epoch_at(&self, index: LogIndex) -> u64 {
        *self
            .epochs
            .range(..=index)
            .next_back()
            .expect("bootstrap epoch")
            .0
    }

    // ---- the voters' log, modelled -------------------------------------------------------

    fn commit_batch(&mut self, change: Option<MembershipChange>) {
        self.check_leader_window();
        let mut entries = Vec::new();
        let count = self.rng.gen_range(1..=3);
        for _ in 0..count {
            let index = self.commit_index() + 1;
            let payload: [u8; 8] = self.rng.gen();
            let mut data = vec![0u8];
            data.extend_from_slice(&payload);
            let entry = Entry {
                index,
                term: 2,
                data: data.into(),
            };
            self.log.push(entry.clone());
            entries.push(entry);
        }
        if let Some(change) = change {
            let index = self.commit_index() + 1;
            let entry = Entry {
                index,
                term: 2,
                data: encode_change(change),
            };
            self.log.push(entry.clone());
            entries.push(entry);
            let started = Instant::now();
            if self.master.apply(change).is_ok() {
                self.stats
                    .tree_apply_us
                    .push(started.elapsed().as_secs_f64() * 1e6);
                let before = self.epochs.values().next_back().expect("epoch").clone();
                let after = Arc::new(self.master.clone());
                self.check_tree(&before, &after);
                self.epochs.insert(index, after.clone());
                self.change_commit_ms.insert(index, self.now_ms);
                self.leader_children = after.children(self.leader);
                if let MembershipChange::Set(id, Role::Observer) = change {
                    // The joiner learns its epoch's membership from the join answer (the shell
                    // owes that) and fetches everything else, starting from nothing.
                    let self_computing = false;
                    self.add_member(id, index, after, Start::default(), self_computing);
                }
            }
        }
        self.stats.batches += 1;
        let raft_ids: Vec<NodeId> = self
            .members
            .iter()
            .filter(|m| matches!(m.node.role(), Some(Role::Voter | Role::Learner)))
            .map(|m| m.node.id())
            .collect();
        for id in raft_ids {
            let at = self.index[&id];
            if let Err(e) = self.members[at].node.commit(&entries) {
                panic!("voter {id} refused a commit: {e}");
            }
            for entry in &entries {
                self.members[at].last_applied = entry.index;
                self.apply_membership_entry(at, entry);
            }
            self.drain(at);
        }
    }

    fn check_tree(&mut self, before: &Topology, after: &Topology) {
        let mut found = Vec::new();
        if let Err(e) = after.check_invariants() {
            found.push(format!("tree-invariants: {e}"));
        }
        if let Err(e) = checks::check_fan_out(after) {
            found.push(e);
        }
        if let Err(e) = checks::check_fallbacks(after) {
            found.push(e);
        }
        let bound = checks::reparent_bound(before, after);
        match checks::check_stability(&checks::upstreams(before), &checks::upstreams(after), bound)
        {
            Ok(moved) => self.stats.reparented_max = self.stats.reparented_max.max(moved),
            Err(e) => found.push(e),
        }
        self.stats.depth = self.stats.depth.max(after.depth());
        for f in found {
            self.violation(f);
        }
    }

    /// A member applied a committed entry: a membership change moves it to the next epoch.
    fn apply_membership_entry(&mut self, at: usize, entry: &Entry) {
        let Some(change) = decode_change(&entry.data) else {
            return;
        };
        if let Some(&start) = self.change_commit_ms.get(&entry.index) {
            // Only members that were members when the change committed (a joiner catching up
            // on older changes is not the change reaching it).
            if !self.members[at].ever_paused && entry.index > self.members[at].joined_epoch {
                let reach = self.now_ms - start;
                let slot = self.change_reach.entry(entry.index).or_insert(0);
                *slot = (*slot).max(reach);
            }
        }
        let member = &mut self.members[at];
        if member.self_computing {
            if let Err(e) = member.node.apply_membership(entry.index, change) {
                let id = member.node.id();
                self.violation(format!("self-computed-tree: {id} refused change: {e}"));
            }
        } else if let Some(t) = self.epochs.get(&entry.index) {
            member.node.set_topology(entry.index, t.clone());
        }
        if change == MembershipChange::Remove(self.members[at].node.id()) {
            self.members[at].removed = true;
        }
    }

    // ---- members' outputs ------------------------------------------------------------------

    fn drain(&mut self, at: usize) {
        while let Some(output) = self.members[at].node.poll_output() {
            match output {
                Output::Send { to, message } => self.send(at, to, message),
                Output::Apply(entries) => self.on_apply(at, entries),
                Output::InstallSnapshot(snapshot) => self.on_install(at, snapshot),
                Output::SnapshotWanted { applied_index } => {
                    if applied_index > self.commit_index() {
                        let id = self.members[at].node.id();
                        self.violation(format!(
                            "above-commit: {id} serves up to {applied_index} above commit {}",
                            self.commit_index()
                        ));
                        continue;
                    }
                    let epoch = self.epoch_at(applied_index);
                    let data = self.snapshot_data(epoch);
                    let term = self.log[applied_index as usize - 1].term;
                    self.members[at].node.set_snapshot(Snapshot {
                        index: applied_index,
                        term,
                        data,
                    });
                }
                Output::Liveness(decision) => self.on_liveness(at, decision),
            }
        }
    }

    fn snapshot_data(&mut self, epoch: u64) -> Arc<[u8]> {
        if let Some(d) = self.snapshot_bytes.get(&epoch) {
            return d.clone();
        }
        let data = encode_membership(epoch, &self.epochs[&epoch]);
        self.snapshot_bytes.insert(epoch, data.clone());
        data
    }

    fn on_apply(&mut self, at: usize, entries: Vec<Entry>) {
        let id = self.members[at].node.id();
        for entry in entries {
            let expected = self.members[at].last_applied + 1;
            if entry.index != expected {
                self.violation(format!(
                    "order: {id} applied {} after {}",
                    entry.index,
                    expected - 1
                ));
            }
            if entry.index > self.commit_index() {
                self.violation(format!(
                    "above-commit: {id} applied {} above commit {}",
                    entry.index,
                    self.commit_index()
                ));
            } else if self.log[entry.index as usize - 1] != entry {
                self.violation(format!(
                    "content: {id} applied a different entry {}",
                    entry.index
                ));
            }
            self.members[at].last_applied = entry.index;
            self.apply_membership_entry(at, &entry);
        }
    }

    fn on_install(&mut self, at: usize, snapshot: Snapshot) {
        let id = self.members[at].node.id();
        if snapshot.index > self.commit_index() || snapshot.index < self.members[at].last_applied {
            self.violation(format!(
                "order: {id} installed a snapshot at {} (applied {}, commit {})",
                snapshot.index,
                self.members[at].last_applied,
                self.commit_index()
            ));
            return;
        }
        let epoch = self.epoch_at(snapshot.index);
        if snapshot.data != self.snapshot_data(epoch) {
            self.violation(format!("content: {id} installed a wrong snapshot"));
            return;
        }
        self.members[at].last_applied = snapshot.index;
        for (&e, &start) in self.change_commit_ms.range(..=snapshot.index) {
            if e > self.members[at].joined_epoch && !self.members[at].ever_paused {
                let slot = self.change_reach.entry(e).or_insert(0);
                *slot = (*slot).max(self.now_ms - start);
            }
        }
        let topology = if self.members[at].self_computing {
            match decode_membership(&self.cfg.follow, &snapshot.data) {
                Some((_, t)) => Arc::new(t),
                None => {
                    self.violation(format!("self-computed-tree: {id} cannot decode"));
                    return;
                }
            }
        } else {
            self.epochs[&epoch].clone()
        };
        self.members[at].node.set_topology(epoch, topology);
    }

    fn on_liveness(&mut self, at: usize, decision: ringraft_follow::LivenessDecision) {
        if self.members[at].node.id() != self.leader {
            self.violation("liveness: a non-leader decided".to_string());
        }
        let now = self.now_ms;
        match decision.status {
            LivenessStatus::Down => {
                match self
                    .pauses
                    .iter_mut()
                    .find(|p| p.member == decision.member && !p.resumed)
                {
                    Some(p) => {
                        if p.down_at_ms.is_none() {
                            p.down_at_ms = Some(now);
                        }
                    }
                    None => {
                        let removed = self
                            .index
                            .get(&decision.member)
                            .is_some_and(|&i| self.members[i].removed);
                        if !removed {
                            let upstream = self.index.get(&decision.member).map(|&i| {
                                let n = &self.members[i].node;
                                (
                                    n.current_upstream(),
                                    n.topology().candidates(n.id()),
                                    n.epoch(),
                                )
                            });
                            self.violation(format!(
                                "false-down: {} decided down ({} ticks silent, on {:?}) but never went silent; cuts {:?} pauses {:?}",
                                decision.member, decision.silent_ticks, upstream,
                                self.cuts.iter().map(|c| (c.member, c.primary, c.start_ms)).collect::<Vec<_>>(),
                                self.pauses.iter().map(|p| (p.member, p.start_ms)).collect::<Vec<_>>()
                            ));
                        }
                    }
                }
            }
            LivenessStatus::Active => {
                if let Some(p) = self
                    .pauses
                    .iter_mut()
                    .find(|p| p.member == decision.member && p.resumed)
                {
                    p.active_after_resume = true;
                }
            }
        }
    }

    fn send(&mut self, from_at: usize, to: NodeId, mut message: Message) {
        let from = self.members[from_at].node.id();
        self.messages_sent += 1;
        if let Some(trace) = self.trace {
            let digest = match &message {
                Message::Fetch {
                    digest: Some(d), ..
                } => Some(d),
                Message::DigestOnly { digest } => Some(digest),
                _ => None,
            };
            if let Some(d) = digest {
                let silent = d.silent.iter().find(|r| r.member == trace);
                let alive = d.adopted_alive.iter().find(|(m, _)| *m == trace);
                if silent.is_some() || alive.is_some() {
                    eprintln!(
                        "t={} {from}->{to} silent={silent:?} alive={alive:?}",
                        self.now_ms
                    );
                }
            }
            if from == trace || to == trace {
                eprintln!(
                    "t={} {from}->{to} {}",
                    self.now_ms,
                    format!("{message:?}").chars().take(90).collect::<String>()
                );
            }
        }
        if from == self.leader {
            match &message {
                Message::SnapshotChunk { .. } | Message::ProbeAck { .. } => {}
                _ => {
                    self.window_sends += 1;
                    if !self.leader_children.contains(&to) {
                        self.window_adoptees.insert(to);
                    }
                }
            }
        }
        if self.faults_on {
            if self.cfg.drop_per_mille > 0 && self.rng.gen_range(0..1000) < self.cfg.drop_per_mille
            {
                return;
            }
            if self.is_cut(from, to) || self.is_cut(to, from) {
                return;
            }
            if self.cfg.tamper_per_mille > 0
                && self.rng.gen_range(0..1000) < self.cfg.tamper_per_mille
            {
                self.tamper(&mut message);
            }
        }
        let bucket = ((self.now_ms + LINK_MS) % BUCKETS as u64) as usize;
        self.buckets[bucket].push(Envelope { from, to, message });
    }

    /// A hostile upstream: entries shifted past the index asked, an entry above the commit
    /// stated, or a commit stated below the entries sent.
    fn tamper(&mut self, message: &mut Message) {
        let Message::Entries {
            entries, commit, ..
        } = message
        else {
            return;
        };
        if entries.is_empty() {
            return;
        }
        self.stats.tampered += 1;
        match self.rng.gen_range(0..3) {
            0 if entries.len() >= 2 => {
                entries.remove(0);
            }
            1 | 0 => {
                let last = entries.last().expect("non-empty").clone();
                entries.push(Entry {
                    index: last.index + 1,
                    term: last.term,
                    data: Arc::from(&b"forged"[..]),
                });
            }
            _ => {
                *commit = entries[0].index.saturating_sub(1);
            }
        }
    }

    fn is_cut(&self, member: NodeId, peer: NodeId) -> bool {
        if self.cut_members.is_empty() || !self.cut_members.contains(&member) {
            return false;
        }
        let at = self.index[&member];
        self.members[at].node.topology().upstream(member) == Some(peer)
    }

    fn deliver_due(&mut self) {
        let bucket = (self.now_ms % BUCKETS as u64) as usize;
        let due = std::mem::take(&mut self.buckets[bucket]);
        for envelope in due {
            let Some(&at) = self.index.get(&envelope.to) else {
                continue;
            };
            let member = &self.members[at];
            if member.removed || member.paused {
                continue;
            }
            self.members[at].node.step(envelope.from, envelope.message);
            self.drain(at);
        }
    }

    fn tick_due(&mut self) {
        let phase = (self.now_ms % TICK_MS) as usize;
        let mut at = phase;
        while at < self.members.len() {
            let member = &self.members[at];
            if !member.removed && !member.paused {
                let before = self.members[at].node.counters().immediate_responses_sent;
                self.members[at].node.tick();
                if self.members[at].node.id() == self.leader {
                    self.window_immediate +=
                        self.members[at].node.counters().immediate_responses_sent - before;
                }
                self.drain(at);
            }
            at += TICK_MS as usize;
        }
    }

    /// Between two committed batches the leader answers each downstream's long poll once: at most
    /// (voters - 1) + learners (modelled Raft appends) + its direct downstreams (tree children and
    /// members on their fallback) + the downstreams catching up (answered at once).
    fn check_leader_window(&mut self) {
        let leader_at = self.index[&self.leader];
        let immediate = self.members[leader_at]
            .node
            .counters()
            .immediate_responses_sent;
        let catching_up = immediate - self.window_immediate;
        self.window_immediate = immediate;
        let raft = (self.cfg.voters - 1 + self.cfg.learners) as u64;
        let total = raft + self.window_sends;
        let bound = raft
            + self.leader_children.len() as u64
            + self.window_adoptees.len() as u64
            + catching_up;
        self.stats.leader_msgs_per_batch_max = self.stats.leader_msgs_per_batch_max.max(total);
        self.stats.leader_msgs_total += total;
        if total > bound {
            self.violation(format!(
                "leader-messages: {total} in one batch > bound {bound}"
            ));
        }
        if self.leader_children.len() > self.cfg.follow.fan_out as usize {
            self.violation(format!(
                "leader-messages: the leader has {} direct downstreams > fan-out",
                self.leader_children.len()
            ));
        }
        self.window_sends = 0;
        self.window_adoptees.clear();
    }

    // ---- faults ----------------------------------------------------------------------------

    fn faulted(&self) -> BTreeSet<NodeId> {
        let mut ids = BTreeSet::new();
        for c in &self.cuts {
            ids.insert(c.member);
            ids.insert(c.primary);
        }
        for p in &self.pauses {
            ids.insert(p.member);
        }
        ids
    }

    fn pick_observer(&mut self) -> Option<NodeId> {
        let faulted = self.faulted();
        let topology = self.epochs.values().next_back().expect("epoch").clone();
        for _ in 0..100 {
            let at = self.rng.gen_range(0..self.members.len());
            let m = &self.members[at];
            let id = m.node.id();
            if m.removed || m.paused || m.node.role() != Some(Role::Observer) {
                continue;
            }
            let near = topology
                .candidates(id)
                .into_iter()
                .take(2)
                .chain(topology.children(id))
                .any(|n| faulted.contains(&n));
            if !faulted.contains(&id) && !near && m.last_applied == self.commit_index() {
                return Some(id);
            }
        }
        None
    }

    fn start_cut(&mut self) {
        let Some(member) = self.pick_observer() else {
            return;
        };
        let topology = self.epochs.values().next_back().expect("epoch").clone();
        let Some(primary) = topology.upstream(member) else {
            return;
        };
        self.cut_members.insert(member);
        self.cuts.push(Cut {
            member,
            primary,
            start_ms: self.now_ms,
            commit_at_mid: 0,
            returned: false,
        });
    }

    fn start_pause(&mut self) {
        let Some(member) = self.pick_observer() else {
            return;
        };
        let at = self.index[&member];
        self.members[at].paused = true;
        self.members[at].ever_paused = true;
        self.pauses.push(Pause {
            member,
            start_ms: self.now_ms,
            down_at_ms: None,
            resumed: false,
            active_after_resume: false,
        });
    }

    fn reattach_ms(&self) -> u64 {
        5 * self.cfg.follow.upstream_timeout_ticks as u64 * TICK_MS
    }

    fn return_ms(&self) -> u64 {
        2 * (self.cfg.follow.primary_probe_ticks + self.cfg.follow.upstream_timeout_ticks) as u64
            * TICK_MS
    }

    fn check_faults(&mut self) {
        let now = self.now_ms;
        let reattach = self.reattach_ms();
        let return_ms = self.return_ms();
        for i in 0..self.cuts.len() {
            let cut = self.cuts[i];
            let at = self.index[&cut.member];
            if self.members[at].removed {
                continue;
            }
            if now == cut.start_ms + reattach / 2 {
                self.cuts[i].commit_at_mid = self.commit_index();
            }
            if now == cut.start_ms + reattach
                && self.members[at].last_applied < self.cuts[i].commit_at_mid
            {
                self.violation(format!(
                    "reattach: {} cut from {} applied {} < {} (the commit {} ms earlier) after {reattach} ms",
                    cut.member,
                    cut.primary,
                    self.members[at].last_applied,
                    self.cuts[i].commit_at_mid,
                    reattach / 2
                ));
            }
            if now == cut.start_ms + CUT_MS {
                self.cut_members.remove(&cut.member);
            }
            let healed = cut.start_ms + CUT_MS;
            if now > healed && now <= healed + return_ms && !cut.returned {
                let node = &self.members[at].node;
                let primary = node.topology().upstream(cut.member);
                self.cuts[i].returned = node.current_upstream() == primary;
            }
            if now == healed + return_ms && !self.cuts[i].returned {
                let node = &self.members[at].node;
                let primary = node.topology().upstream(cut.member);
                self.violation(format!(
                    "return-to-primary: {} fetches from {:?}, not its primary {:?}, and did not return within {return_ms} ms of the heal",
                    cut.member,
                    node.current_upstream(),
                    primary
                ));
            }
        }
        let bound_ms = self.cfg.follow.down_bound_ticks(self.stats.depth) * TICK_MS + TICK_MS;
        self.stats.down_bound_ms = bound_ms;
        for i in 0..self.pauses.len() {
            let p = self.pauses[i];
            if p.resumed {
                continue;
            }
            let strict = self.cfg.drop_per_mille == 0;
            if strict && now == p.start_ms + bound_ms && p.down_at_ms.is_none() {
                self.violation(format!(
                    "down-bound: {} silent for {bound_ms} ms and not decided down",
                    p.member
                ));
            }
            if now == p.start_ms + PAUSE_MS {
                if p.down_at_ms.is_none() {
                    self.violation(format!(
                        "down-missed: {} silent {PAUSE_MS} ms, never down",
                        p.member
                    ));
                }
                if let Some(d) = p.down_at_ms {
                    self.stats.down_detect_ms.push(d - p.start_ms);
                }
                self.resume(i);
            }
        }
    }

    fn resume(&mut self, i: usize) {
        let member = self.pauses[i].member;
        let at = self.index[&member];
        self.members[at].paused = false;
        self.pauses[i].resumed = true;
    }

    // ---- the run ---------------------------------------------------------------------------

    fn step_ms(&mut self, commits: bool, change: Option<MembershipChange>) {
        if commits && self.now_ms.is_multiple_of(self.cfg.batch_every_ms) {
            self.commit_batch(change);
        }
        self.deliver_due();
        self.tick_due();
        self.check_faults();
        self.now_ms += 1;
    }

    fn draw_change(&mut self) -> MembershipChange {
        if self.rng.gen_bool(0.5) {
            let id = self.next_id;
            self.next_id += 1;
            MembershipChange::Set(id, Role::Observer)
        } else {
            match self.pick_observer() {
                Some(id) => MembershipChange::Remove(id),
                None => {
                    let id = self.next_id;
                    self.next_id += 1;
                    MembershipChange::Set(id, Role::Observer)
                }
            }
        }
    }

    fn run(mut self) -> SimReport {
        let warm_ms = 500;
        let fault_ms = (self.cfg.changes as u64 * self.cfg.change_every_ms)
            .max(CUT_MS + self.return_ms() + 500)
            .max(PAUSE_MS + 500);
        let mut fault_times: BTreeMap<u64, bool> = BTreeMap::new();
        let span = fault_ms - (CUT_MS + self.return_ms()).max(PAUSE_MS);
        for _ in 0..self.cfg.cuts {
            fault_times.insert(warm_ms + self.rng.gen_range(0..span), true);
        }
        for _ in 0..self.cfg.pauses {
            fault_times.insert(warm_ms + self.rng.gen_range(0..span) + 1, false);
        }
        let mut pending_change: Option<MembershipChange> = None;
        let mut changes_made = 0;
        let end_faults = warm_ms + fault_ms;
        while self.now_ms < end_faults + self.return_ms() + 10 {
            if let Some(cut) = fault_times.remove(&self.now_ms) {
                if cut {
                    self.start_cut();
                } else {
                    self.start_pause();
                }
            }
            if self.now_ms >= warm_ms
                && changes_made < self.cfg.changes
                && (self.now_ms - warm_ms).is_multiple_of(self.cfg.change_every_ms)
            {
                pending_change = Some(self.draw_change());
                changes_made += 1;
            }
            let change = if self.now_ms.is_multiple_of(self.cfg.batch_every_ms) {
                pending_change.take()
            } else {
                None
            };
            self.step_ms(true, change);
            if self.now_ms == end_faults {
                self.faults_on = false;
            }
        }
        // Quiet: no faults; everyone (the paused resumed) must converge.
        self.faults_on = false;
        self.cut_members.clear();
        let quiet_end = self.now_ms + self.cfg.quiet_ms;
        while self.now_ms < quiet_end {
            self.step_ms(true, None);
        }
        self.check_converged();
        // Idle: no commits; count the plane's own traffic.
        let before = self.messages_sent;
        let idle_end = self.now_ms + self.cfg.idle_ms;
        while self.now_ms < idle_end {
            self.step_ms(false, None);
        }
        let live = self.members.iter().filter(|m| !m.removed).count() as f64;
        self.stats.idle_msgs_per_member_per_s =
            (self.messages_sent - before) as f64 / live / (self.cfg.idle_ms as f64 / 1000.0);
        self.stats.change_reach_ms = self.change_reach.values().copied().collect();
        self.stats.messages = self.messages_sent;
        self.stats.virtual_ms = self.now_ms;
        for m in &self.members {
            self.stats.refused += m.node.fetch_counters().refused_total();
            self.stats.snapshots_installed += m.node.fetch_counters().snapshots_installed;
        }
        SimReport {
            violations: self.violations,
            stats: self.stats,
        }
    }

    fn check_converged(&mut self) {
        let commit = self.commit_index();
        let epoch = *self.epochs.keys().next_back().expect("epoch");
        let last = self.epochs[&epoch].clone();
        let mut found = Vec::new();
        for m in &self.members {
            if m.removed {
                continue;
            }
            let id = m.node.id();
            if m.last_applied != commit || m.node.epoch() != epoch {
                found.push(format!(
                    "converge: {id} at index {} epoch {}, expected {commit} / {epoch} (upstream {:?})",
                    m.last_applied,
                    m.node.epoch(),
                    m.node.current_upstream()
                ));
            } else if m.self_computing && **m.node.topology() != *last {
                found.push(format!(
                    "self-computed-tree: {id} holds a different tree at {epoch}"
                ));
            }
        }
        for p in &self.pauses {
            if !p.active_after_resume {
                found.push(format!(
                    "active-missed: {} resumed, never active again",
                    p.member
                ));
            }
        }
        for f in found {
            self.violation(f);
        }
    }
}

pub fn run(cfg: SimConfig) -> SimReport {
    Sim::new(cfg).run()
}
