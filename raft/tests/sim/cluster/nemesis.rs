//! The nemesis. At random times it crashes nodes, cuts the network, changes the membership,
//! transfers leadership, pauses processes and disturbs clocks. It also reacts to protocol events
//! (TigerBeetle's VOPR and openraft's turmoil suite draw faults per seed; etcd's figure-8 tests
//! line events up by hand): random schedules are blind to rules that matter only in one order of
//! events, so the nemesis strikes at the moments those rules guard. A new leader may be crashed,
//! cut off alone or with a minority, handed a membership change before its term's first commit,
//! or sent the clients' reads; a leader that appended a configuration entry may be crashed or cut
//! off; a leader that sends older terms' entries may lose its own new entries for a while (they
//! stay with it while the older ones reach the others, as in the paper's figure 8) and then go
//! down; the last chunk of a snapshot may be replayed after the follower moved on.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use ringraft_raft::{ConfChange, ConfChangeStep, ConfState, NodeId, Role};

use super::{DurableState, Effects, Event, Home, Paused, Phase, Sim, MS, NODES_MAX};

/// A paused process's socket buffer: messages beyond this many are lost.
const PAUSE_BACKLOG_MAX: usize = 4_096;
/// Voters of a cluster the nemesis grows or shrinks to.
const VOTERS_MAX: usize = 7;

impl Sim {
    /// A visit of the nemesis at a random time.
    pub(super) fn nemesis(&mut self) {
        if self.rng.gen_bool(self.scenario.crash_probability) {
            self.crash_someone();
        }
        if self.queue.now() >= self.periodic_cut_until
            && self.rng.gen_bool(self.scenario.partition_probability)
        {
            self.partition();
        }
        if self.queue.now() >= self.failover_until
            && self.rng.gen_bool(self.scenario.membership_probability)
        {
            if let Some(leader) = self.leader() {
                self.change_membership(leader);
            }
        }
        if self.rng.gen_bool(self.scenario.transfer_probability) {
            self.transfer_leadership();
        }
        if self.rng.gen_bool(self.scenario.pause_probability) {
            self.pause_someone();
        }
        if self.rng.gen_bool(self.scenario.clock_fault_probability) {
            self.disturb_a_clock();
        }
        if self.scenario.lease_read && self.rng.gen_bool(self.scenario.lease_attack_probability) {
            self.attack_the_lease();
        }
        if self
            .rng
            .gen_bool(self.scenario.lagging_follower_probability)
        {
            self.cut_off_a_follower();
        }
        if self.rng.gen_bool(self.scenario.hostile_probability) {
            self.send_hostile_message();
        }
        if self.rng.gen_bool(self.scenario.disk_stall_probability) {
            self.stall_a_disk();
        }
    }

    /// Cuts a follower off for a while: it falls behind, and needs a snapshot if the leader
    /// compacts meanwhile.
    fn cut_off_a_follower(&mut self) {
        let Some(leader) = self.leader() else { return };
        let followers: Vec<NodeId> = self
            .running_nodes()
            .into_iter()
            .filter(|&id| id != leader)
            .collect();
        if followers.is_empty() {
            return;
        }
        let follower = followers[self.rng.gen_range(0..followers.len())];
        let rest: Vec<NodeId> = self
            .nodes
            .keys()
            .copied()
            .filter(|&o| o != follower)
            .collect();
        let links = self.network.partition(&[vec![follower], rest]);
        let duration = self.rng.gen_range(50 * MS..=800 * MS);
        self.note(|| format!("follower {follower} cut off for {} ms", duration / MS));
        self.queue.schedule_in(duration, Event::HealLinks(links));
    }

    /// A disk stops completing writes for a while (a failing drive retrying, a saturated
    /// volume) while the node's network stays up: it takes messages and ticks, but answers
    /// nothing that needs its disk, so the others must carry on without it.
    fn stall_a_disk(&mut self) {
        let running = self.running_nodes();
        if running.is_empty() {
            return;
        }
        let id = running[self.rng.gen_range(0..running.len())];
        let duration = self.rng.gen_range(10 * MS..=self.scenario.disk_stall_max);
        self.disk_stalled_until
            .insert(id, self.queue.now() + duration);
        self.summary.disk_stalls += 1;
        self.note(|| format!("disk of node {id} stalls for {} ms", duration / MS));
    }

    pub(super) fn running_nodes(&self) -> Vec<NodeId> {
        self.nodes
            .keys()
            .copied()
            .filter(|&id| self.is_running(id))
            .collect()
    }

    pub(super) fn crash_someone(&mut self) {
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

    pub(super) fn crash(&mut self, id: NodeId) {
        let loss = self.rng.gen_range(self.scenario.unsynced_loss_min..=1.0);
        self.paused.remove(&id);
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

    /// Heals `links` after a random partition duration (at least `min`).
    pub(super) fn heal_later(&mut self, links: Vec<(NodeId, NodeId)>, min: u64) -> u64 {
        let max = self.scenario.partition_duration_max.max(min);
        let duration = self.rng.gen_range(min.max(10 * MS)..=max);
        if self.trace.is_some() {
            let cuts: Vec<String> = links.iter().map(|(a, b)| format!("{a}->{b}")).collect();
            let cuts = cuts.join(" ");
            self.note(|| format!("cut for {} ms: {cuts}", duration / MS));
        }
        self.queue.schedule_in(duration, Event::HealLinks(links));
        duration
    }

    fn partition(&mut self) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        let pick = |rng: &mut ChaCha8Rng| ids[rng.gen_range(0..ids.len())];
        let mut links = Vec::new();
        match self.rng.gen_range(0..6) {
            0 | 5 => {
                // Half the time the leader: a deposed leader that still serves is the classic
                // source of stale reads.
                let isolated = match self.leader() {
                    Some(leader) if self.rng.gen_bool(0.5) => leader,
                    _ => pick(&mut self.rng),
                };
                let rest: Vec<NodeId> = ids.iter().copied().filter(|&i| i != isolated).collect();
                links = self.network.partition(&[vec![isolated], rest]);
            }
            1 => {
                let (a, b): (Vec<NodeId>, Vec<NodeId>) =
                    ids.iter().partition(|_| self.rng.gen_bool(0.5));
                links = self.network.partition(&[a, b]);
            }
            2 => {
                // Asymmetric: one node can only send, or only receive.
                let node = pick(&mut self.rng);
                let deaf = self.rng.gen_bool(0.5);
                for &other in &ids {
                    if deaf {
                        links.extend(self.network.cut(other, node));
                    } else {
                        links.extend(self.network.cut(node, other));
                    }
                }
            }
            3 => {
                for &a in &ids {
                    for &b in &ids {
                        if self.rng.gen_bool(0.3) {
                            links.extend(self.network.cut(a, b));
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
                links = self.network.partition(&[a, b]);
            }
        }
        self.summary.partitions += 1;
        let duration = self.heal_later(links, 0);
        self.periodic_cut_until = self.queue.now() + duration;
    }

    /// Proposes a membership change on `leader`: leaves a joint configuration, or draws a change.
    pub(super) fn change_membership(&mut self, leader: NodeId) {
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
            match self.draw_membership_change(leader, &conf) {
                Some(change) => change,
                None => return,
            }
        };
        self.propose_conf_change(leader, change);
    }

    pub(super) fn propose_conf_change(&mut self, leader: NodeId, change: ConfChange) {
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

    fn draw_membership_change(&mut self, leader: NodeId, conf: &ConfState) -> Option<ConfChange> {
        let rng = &mut self.rng;
        let voters = &conf.voters;
        let learners = &conf.learners;
        let any = |rng: &mut ChaCha8Rng, ids: &[NodeId]| ids[rng.gen_range(0..ids.len())];
        let auto_leave = rng.gen_bool(0.5);
        // Single-voter changes between 3 and 4 voters: removing one of 4 (not the leader) makes
        // the changes whose quorums can miss each other when two leaders each make one.
        if self.scenario.prefer_removals && rng.gen_bool(0.8) {
            let others: Vec<NodeId> = voters.iter().copied().filter(|&v| v != leader).collect();
            let step = if voters.len() >= 4 {
                ConfChangeStep::RemoveNode(any(rng, &others))
            } else if !learners.is_empty() {
                ConfChangeStep::AddVoter(any(rng, learners))
            } else if self.next_node_id <= NODES_MAX {
                ConfChangeStep::AddLearner(self.spawn(DurableState::default()))
            } else {
                return None;
            };
            return Some(ConfChange {
                changes: vec![step],
                auto_leave,
                context: Vec::new(),
            });
        }
        let kind = rng.gen_range(0..7);
        let steps = match kind {
            0 if self.next_node_id <= NODES_MAX => {
                let id = self.spawn(DurableState::default());
                vec![ConfChangeStep::AddLearner(id)]
            }
            1 if !learners.is_empty() && voters.len() < VOTERS_MAX => {
                vec![ConfChangeStep::AddVoter(any(rng, learners))]
            }
            2 if voters.len() > 2 => vec![ConfChangeStep::RemoveNode(any(rng, voters))],
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
            6 if learners.len() >= 2 && voters.len() + 2 <= VOTERS_MAX => {
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
            let term = self.nodes[&leader].raw().expect("leader is up").term();
            self.pending_transfers.insert(leader, (term, target, 0));
        }
        let mut effects = Effects::default();
        self.drive(leader, &mut effects);
        self.settle(effects, &[leader]);
    }

    /// A process stops (SIGSTOP): no ticks, and what reaches it waits until it resumes.
    fn pause_someone(&mut self) {
        let candidates: Vec<NodeId> = self
            .running_nodes()
            .into_iter()
            // With lease reads, a paused leader breaks the clock bound the lease assumes.
            .filter(|&id| {
                !self.scenario.lease_read
                    || self.nodes[&id]
                        .raw()
                        .is_some_and(|r| r.role() != Role::Leader)
            })
            .collect();
        if candidates.is_empty() {
            return;
        }
        let id = candidates[self.rng.gen_range(0..candidates.len())];
        let incarnation = self.nodes[&id].incarnation;
        self.paused.insert(
            id,
            Paused {
                incarnation,
                backlog: Vec::new(),
            },
        );
        let duration = self
            .rng
            .gen_range(10 * MS..=self.scenario.pause_duration_max);
        self.summary.pauses += 1;
        self.note(|| format!("node {id} pauses for {} ms", duration / MS));
        self.queue
            .schedule_in(duration, Event::Resume(id, incarnation));
    }

    /// Holds what reaches a paused node (a message, an fsync completion) until it resumes.
    pub(super) fn hold_if_paused(&mut self, event: Event) -> Option<Event> {
        let id = match &event {
            Event::Deliver(message) => message.to,
            Event::FsyncDone(id, _) => *id,
            _ => return Some(event),
        };
        if !self.paused.contains_key(&id) {
            return Some(event);
        }
        if let Event::Deliver(message) = &event {
            if !self.network.link_up(message.from, message.to) {
                return None;
            }
        }
        let paused = self.paused.get_mut(&id).expect("checked above");
        if paused.backlog.len() < PAUSE_BACKLOG_MAX {
            paused.backlog.push(event);
        }
        None
    }

    pub(super) fn resume(&mut self, id: NodeId, incarnation: u32) {
        if self.paused.get(&id).map(|p| p.incarnation) != Some(incarnation) {
            return;
        }
        let paused = self.paused.remove(&id).expect("checked above");
        self.note(|| format!("node {id} resumes ({} events held)", paused.backlog.len()));
        for event in paused.backlog {
            self.handle(event);
        }
    }

    /// A clock jumps ahead (a burst of ticks at once) or runs at another rate for a while.
    fn disturb_a_clock(&mut self) {
        let running = self.running_nodes();
        if running.is_empty() {
            return;
        }
        let id = running[self.rng.gen_range(0..running.len())];
        self.summary.clock_faults += 1;
        if self.rng.gen_bool(0.5) {
            let ticks = self
                .rng
                .gen_range(1..=2 * self.scenario.election_timeout_ticks);
            self.note(|| format!("node {id}: clock jumps {ticks} ticks ahead"));
            for _ in 0..ticks {
                let Some(raw) = self.nodes.get_mut(&id).and_then(|n| n.raw_mut()) else {
                    return;
                };
                raw.tick();
                let mut effects = Effects::default();
                self.drive(id, &mut effects);
                self.settle(effects, &[id]);
            }
        } else {
            let factor = if self.rng.gen_bool(0.5) {
                self.rng.gen_range(0.2..0.5)
            } else {
                self.rng.gen_range(2.0..5.0)
            };
            let interval = (self.nominal_tick_intervals[&id] as f64 * factor) as u64;
            let duration = self.rng.gen_range(100 * MS..=1_000 * MS);
            self.note(|| {
                format!(
                    "node {id}: clock runs at {factor:.2}x for {} ms",
                    duration / MS
                )
            });
            self.tick_intervals.insert(id, interval.max(1));
            self.queue.schedule_in(duration, Event::ClockRestore(id));
        }
    }

    /// Arms a lease attack on the leader: it strikes right after the leader's next CheckQuorum
    /// round, once a quorum answered again, so that the leader keeps leading (and serving reads
    /// from its lease) as long as CheckQuorum lets it.
    fn attack_the_lease(&mut self) {
        if self.lease_attack_armed.is_some()
            || self
                .lease_attack
                .is_some_and(|(_, until)| self.queue.now() < until)
        {
            return;
        }
        let Some(leader) = self.leader() else { return };
        let term = self.nodes[&leader].raw().expect("leader is up").term();
        self.lease_attack_armed = Some((leader, term, false));
    }

    /// Called after every input to `id`: springs an armed lease attack at its moment.
    pub(super) fn maybe_spring_lease_attack(&mut self, id: NodeId) {
        let Some((leader, term, round_passed)) = self.lease_attack_armed else {
            return;
        };
        if leader != id {
            return;
        }
        if self.phase != Phase::Faults || !self.leads(leader, term) {
            self.lease_attack_armed = None;
            return;
        }
        let status = self.nodes[&leader].raw().expect("leader is up").status();
        let voters: Vec<NodeId> = status
            .conf_state
            .voters
            .iter()
            .copied()
            .filter(|&v| v != leader)
            .collect();
        let active = voters
            .iter()
            .filter(|v| status.progress.get(v).is_some_and(|p| p.recent_active))
            .count();
        if !round_passed {
            // CheckQuorum clears every follower's activity when its round ends.
            if active == 0 {
                self.lease_attack_armed = Some((leader, term, true));
            }
            return;
        }
        if 2 * (active + 1) <= voters.len() + 1 {
            return; // not yet a quorum heard from in the new round
        }
        self.lease_attack_armed = None;
        self.summary.lease_attacks += 1;
        self.note(|| format!("lease attack on leader {leader}"));
        let until = self.queue.now() + self.isolate(leader, false, 4);
        self.lease_attack = Some((leader, until));
        // One follower campaigns as early as it may (several would split the vote).
        if !voters.is_empty() {
            let eager = voters[self.rng.gen_range(0..voters.len())];
            let ticks = 3 * self.scenario.election_timeout_ticks;
            self.queue
                .schedule_in(0, Event::EagerCampaign(eager, ticks));
        }
        for index in 0..self.workload.clients.len() {
            if self.rng.gen_bool(0.5) {
                self.workload.clients[index].home = Some(Home {
                    node: leader,
                    until,
                    reads_only: true,
                });
            }
        }
    }

    /// Cuts `id` off from every other node for a while, at least `timeouts_min` election
    /// timeouts (two: the others elect a leader meanwhile; four: and get something done); with
    /// `eager`, the others then campaign as early as they may. Returns how long the cut lasts.
    pub(super) fn isolate(&mut self, id: NodeId, eager: bool, timeouts_min: u64) -> u64 {
        let rest: Vec<NodeId> = self.nodes.keys().copied().filter(|&o| o != id).collect();
        let links = self.network.partition(&[vec![id], rest.clone()]);
        let timeout = u64::from(self.scenario.election_timeout_ticks) * self.scenario.tick_interval;
        let duration = self.heal_later(links, timeouts_min * timeout);
        if eager {
            let ticks = 3 * self.scenario.election_timeout_ticks;
            for other in rest {
                self.queue
                    .schedule_in(0, Event::EagerCampaign(other, ticks));
            }
        }
        duration
    }

    /// A follower campaigns as soon as it has not heard from a leader for the election timeout
    /// (as if its randomized timer drew its minimum; earlier would be a clock running fast, which
    /// lease reads exclude), checked every tick while it has ticks left.
    pub(super) fn eager_campaign(&mut self, id: NodeId, ticks_left: u32) {
        if self.phase != Phase::Faults || !self.is_running(id) {
            return;
        }
        let raw = self
            .nodes
            .get_mut(&id)
            .and_then(|n| n.raw_mut())
            .expect("running");
        let timeout = self.scenario.election_timeout_ticks;
        let quiet = self
            .ticks_since_leader
            .get(&id)
            .is_some_and(|&t| t >= timeout);
        if raw.role() == Role::Follower && quiet {
            let _ = raw.campaign();
            let mut effects = Effects::default();
            self.drive(id, &mut effects);
            self.settle(effects, &[id]);
        }
        if ticks_left > 0 {
            let interval = self.tick_intervals[&id];
            self.queue
                .schedule_in(interval, Event::EagerCampaign(id, ticks_left - 1));
        }
    }
}
