//! The nemesis's reactions to protocol events (see `nemesis.rs` for why): the events spotted in
//! what nodes send and how their roles and commits move, and the faults set off in response.

use rand::Rng;
use ringraft_raft::{ConfChange, ConfChangeStep, Message, MessageBody, NodeId, Role, Term};

use super::{Event, Focus, Home, Input, Phase, Sim, Trigger, MS};

/// Bound on rounds of reactions to one event (a reaction's own events may trigger more).
const REACTION_ROUNDS_MAX: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reaction {
    Crash,
    Isolate,
    /// Cut off for at least four election timeouts (`Isolate`: two): long enough for a failover
    /// to play out.
    IsolateLong,
    LeaderWithMinority,
    ConfChange,
    Reads,
    LoneLeader,
}

impl Sim {
    /// Notes the protocol events in a message the shell of `message.from` just sent.
    pub(super) fn spot_triggers(&mut self, message: &Message) {
        if self.phase != Phase::Faults {
            return;
        }
        match &message.body {
            MessageBody::Append { entries, .. }
                if self.scenario.on_old_term_append_probability > 0.0
                    && !entries.is_empty()
                    && entries.iter().all(|e| e.term < message.term)
                    && self.spotted.insert((message.from, message.term)) =>
            {
                self.triggers
                    .push(Trigger::OldTermAppend(message.from, message.term));
            }
            MessageBody::InstallSnapshot { offset, done, .. }
                if self.scenario.on_snapshot_probability > 0.0 && (*offset == 0 || *done) =>
            {
                self.triggers.push(Trigger::SnapshotSent(message.clone()));
            }
            _ => {}
        }
    }

    /// Notes when `commit` covers a configuration entry that a reaction had leader `id` of `term`
    /// propose (the failover's second change: its leader then goes away in turn).
    pub(super) fn spot_conf_commits(&mut self, id: NodeId, term: Term, commit: u64) {
        if self.uncommitted_confs.is_empty() {
            return;
        }
        let mut committed = false;
        let proposed_by_reaction = &self.reaction_conf_entries;
        self.uncommitted_confs.retain(|&(leader, t, index)| {
            if leader != id {
                return true;
            }
            let done = t == term && index <= commit;
            committed |= done && proposed_by_reaction.contains(&(leader, index));
            t == term && index > commit
        });
        if committed {
            self.triggers.push(Trigger::ConfCommitted(id, term));
        }
    }

    /// Reacts to the protocol events noted since the last call.
    pub(super) fn react(&mut self) {
        for _ in 0..REACTION_ROUNDS_MAX {
            if self.triggers.is_empty() || self.phase != Phase::Faults {
                break;
            }
            for trigger in std::mem::take(&mut self.triggers) {
                self.react_to(trigger);
            }
        }
        self.triggers.clear();
    }

    pub(super) fn leads(&self, id: NodeId, term: Term) -> bool {
        self.is_running(id)
            && self.nodes[&id]
                .raw()
                .is_some_and(|r| r.role() == Role::Leader && r.term() == term)
    }

    pub(super) fn pick(&mut self, options: &[(bool, Reaction)]) -> Option<Reaction> {
        let enabled: Vec<Reaction> = options
            .iter()
            .filter(|(on, _)| *on)
            .map(|&(_, r)| r)
            .collect();
        if enabled.is_empty() {
            return None;
        }
        Some(enabled[self.rng.gen_range(0..enabled.len())])
    }

    pub(super) fn react_to(&mut self, trigger: Trigger) {
        let r = self.scenario.reactions.clone();
        match trigger {
            Trigger::Elected(id, term) => {
                if let Some((old, until)) = self.lease_attack {
                    if id != old && self.queue.now() < until {
                        // The clients the attack did not send to the old leader write here.
                        for client in &mut self.workload.clients {
                            if client.home.is_none() {
                                client.home = Some(Home {
                                    node: id,
                                    until,
                                    reads_only: false,
                                });
                            }
                        }
                    }
                }
                if !self.leads(id, term) || !self.rng.gen_bool(self.scenario.on_elected_probability)
                {
                    return;
                }
                // In a failover episode's focus, a new leader changes the membership only while
                // the episode runs.
                let failover = self.queue.now() < self.failover_until;
                let conf_change = r.conf_change && (failover || !self.scenario.prefer_removals);
                let options = [
                    (r.crash, Reaction::Crash),
                    (r.isolate && r.isolate_new_leaders, Reaction::Isolate),
                    (r.leader_with_minority, Reaction::LeaderWithMinority),
                    (conf_change, Reaction::ConfChange),
                    (r.reads, Reaction::Reads),
                    (r.lone_leader, Reaction::LoneLeader),
                ];
                if let Some(reaction) = self.pick(&options) {
                    self.note(|| format!("on the election of {id}: {reaction:?}"));
                    self.apply_reaction(reaction, id, term);
                }
            }
            Trigger::ConfAppended(id, index) => {
                let Some(term) = self.nodes[&id].raw().map(|r| r.term()) else {
                    return;
                };
                if self.reaction_conf_entries.contains(&(id, index)) {
                    return;
                }
                if !self.leads(id, term)
                    || !self
                        .rng
                        .gen_bool(self.scenario.on_conf_appended_probability)
                {
                    return;
                }
                let options = [
                    (r.crash, Reaction::Crash),
                    (r.isolate, Reaction::IsolateLong),
                    (r.leader_with_minority, Reaction::LeaderWithMinority),
                ];
                if let Some(reaction) = self.pick(&options) {
                    self.note(|| format!("on a conf entry appended by {id}: {reaction:?}"));
                    self.apply_reaction(reaction, id, term);
                    self.failover_until = self.queue.now() + 1_500 * MS;
                }
            }
            Trigger::ConfCommitted(id, term) => {
                // The leader that just changed the membership goes away: the next election
                // runs under the new configuration, with whoever was cut off back.
                if !self.leads(id, term)
                    || !self
                        .rng
                        .gen_bool(self.scenario.on_conf_appended_probability)
                {
                    return;
                }
                let options = [
                    (r.crash, Reaction::Crash),
                    (r.isolate, Reaction::IsolateLong),
                ];
                if let Some(reaction) = self.pick(&options) {
                    // After a few heartbeats, so that the followers learn of the commit.
                    let delay = 3
                        * u64::from(self.scenario.heartbeat_interval_ticks)
                        * self.scenario.tick_interval;
                    self.note(|| format!("on a conf entry of {id} committed: {reaction:?} soon"));
                    self.queue
                        .schedule_in(delay, Event::Delayed(reaction, id, term));
                }
            }
            Trigger::OldTermAppend(id, term) => {
                if !self.leads(id, term)
                    || self.network.is_losing_own_entries(id)
                    || !self
                        .rng
                        .gen_bool(self.scenario.on_old_term_append_probability)
                {
                    return;
                }
                let options = [
                    (r.crash, Reaction::Crash),
                    (r.isolate, Reaction::Isolate),
                    (r.lone_leader, Reaction::LoneLeader),
                ];
                if let Some(reaction) = self.pick(&options) {
                    self.note(|| format!("on an append of older entries by {id}: {reaction:?}"));
                    self.apply_reaction(reaction, id, term);
                }
            }
            Trigger::SnapshotSent(message) => {
                if !self.rng.gen_bool(self.scenario.on_snapshot_probability) {
                    return;
                }
                self.react_to_snapshot(message);
            }
        }
    }

    pub(super) fn apply_reaction(&mut self, reaction: Reaction, id: NodeId, term: Term) {
        self.summary.reactions += 1;
        match reaction {
            Reaction::Crash => self.crash(id),
            Reaction::Isolate => {
                let eager = self.rng.gen_bool(0.5);
                self.isolate(id, eager, 2);
            }
            Reaction::IsolateLong => {
                self.isolate(id, false, 4);
            }
            Reaction::LeaderWithMinority => self.cut_with_minority(id),
            Reaction::ConfChange => self.conf_change_now(id),
            Reaction::Reads => self.reads_to(id),
            Reaction::LoneLeader => {
                self.network.lose_own_entries(id, term);
                let incarnation = self.nodes[&id].incarnation;
                let window = self.rng.gen_range(50 * MS..=400 * MS);
                self.queue
                    .schedule_in(window, Event::EndLoneLeader(id, incarnation, term));
            }
        }
    }

    /// The end of a leader's window of lost new entries: it crashes or is cut off, so that
    /// another node, whose log lacks them, leads next.
    pub(super) fn end_lone_leader(&mut self, id: NodeId, incarnation: u32, term: Term) {
        self.network.stop_losing_own_entries(id, term);
        if self.phase != Phase::Faults
            || self.nodes[&id].incarnation != incarnation
            || !self.leads(id, term)
        {
            return;
        }
        if self.rng.gen_bool(0.5) {
            self.note(|| format!("lone leader {id} crashes"));
            self.crash(id);
        } else {
            self.note(|| format!("lone leader {id} is cut off"));
            self.isolate(id, false, 2);
        }
    }

    /// Partitions `leader` together with a minority of its voters (possibly none).
    pub(super) fn cut_with_minority(&mut self, leader: NodeId) {
        let voters = self.nodes[&leader]
            .raw()
            .expect("leader is up")
            .conf_state()
            .voters
            .clone();
        let mut others: Vec<NodeId> = voters.into_iter().filter(|&v| v != leader).collect();
        // The side holds at most (n - 1) / 2 of the n voters, the leader included.
        let side_max = others.len() / 2;
        let companions = self.rng.gen_range(0..=side_max.saturating_sub(1));
        let mut side = vec![leader];
        for _ in 0..companions {
            let i = self.rng.gen_range(0..others.len());
            side.push(others.swap_remove(i));
        }
        let rest: Vec<NodeId> = self
            .nodes
            .keys()
            .copied()
            .filter(|id| !side.contains(id))
            .collect();
        let links = self.network.partition(&[side, rest]);
        self.heal_later(links, 0);
    }

    /// Proposes a membership change on a new leader before its term's first commit (which the
    /// core refuses; only a mutant takes it). Half the time it removes a voter the leader has
    /// just been cut off from, as an operator removes a node that died in a failover.
    pub(super) fn conf_change_now(&mut self, leader: NodeId) {
        let conf = self.nodes[&leader]
            .raw()
            .expect("leader is up")
            .conf_state()
            .clone();
        // A voter the leader still reaches: cutting one already cut off changes nothing.
        let others: Vec<NodeId> = conf
            .voters
            .iter()
            .copied()
            .filter(|&v| v != leader && self.network.link_up(leader, v))
            .collect();
        let cut_first = self.scenario.prefer_removals || self.rng.gen_bool(0.5);
        if !others.is_empty() && conf.voters_outgoing.is_empty() && cut_first {
            let gone = others[self.rng.gen_range(0..others.len())];
            let mut links = self.network.cut(leader, gone);
            links.extend(self.network.cut(gone, leader));
            // As long as an isolation, so that it may outlast one that began before.
            let min =
                4 * u64::from(self.scenario.election_timeout_ticks) * self.scenario.tick_interval;
            self.heal_later(links, min);
            let change = ConfChange {
                changes: vec![ConfChangeStep::RemoveNode(gone)],
                auto_leave: false,
                context: Vec::new(),
            };
            self.propose_conf_change(leader, change);
        } else {
            self.change_membership(leader);
        }
        // The entry this reaction appended is not one to react to again.
        if let Some(raw) = self.nodes[&leader].raw() {
            let last = raw.status().last_index;
            self.reaction_conf_entries.insert((leader, last));
        }
    }

    /// Sends the clients' pending reads to `leader` at once, and their next operations too.
    pub(super) fn reads_to(&mut self, leader: NodeId) {
        let until = self.queue.now() + 100 * MS;
        for index in 0..self.workload.clients.len() {
            let client = &mut self.workload.clients[index];
            client.home = Some(Home {
                node: leader,
                until,
                reads_only: false,
            });
            let reading = client
                .current
                .as_ref()
                .is_some_and(|op| op.input == Input::Read);
            if reading {
                self.submit(index);
            }
        }
    }

    pub(super) fn react_to_snapshot(&mut self, message: Message) {
        let MessageBody::InstallSnapshot { offset, done, .. } = &message.body else {
            return;
        };
        let (leader, follower) = (message.from, message.to);
        let replay_probability = if self.scenario.focus == Focus::Snapshots {
            1.0
        } else {
            0.5
        };
        if *done && self.scenario.reactions.snapshot_replay && self.rng.gen_bool(replay_probability)
        {
            // Replays of the last chunk, after the follower installed it and moved on.
            for _ in 0..self.rng.gen_range(1..=3) {
                let delay = self.rng.gen_range(20 * MS..=300 * MS);
                self.summary.reactions += 1;
                self.note(|| {
                    format!(
                        "snapshot {leader}->{follower} replayed in {} ms",
                        delay / MS
                    )
                });
                self.queue
                    .schedule_in(delay, Event::Deliver(message.clone()));
            }
            return;
        }
        if *offset != 0 {
            return;
        }
        let r = self.scenario.reactions.clone();
        let options = [(r.crash, 0), (r.crash, 1), (r.isolate, 2)];
        let enabled: Vec<u8> = options
            .iter()
            .filter(|(on, _)| *on)
            .map(|&(_, k)| k)
            .collect();
        if enabled.is_empty() {
            return;
        }
        self.summary.reactions += 1;
        match enabled[self.rng.gen_range(0..enabled.len())] {
            0 if self.is_running(leader) => {
                self.note(|| format!("leader {leader} crashes as its snapshot starts"));
                self.crash(leader);
            }
            1 if self.nodes.get(&follower).is_some_and(|n| n.is_up()) => {
                self.note(|| format!("follower {follower} crashes as a snapshot starts"));
                self.crash(follower);
            }
            2 => {
                self.note(|| format!("follower {follower} is cut off as a snapshot starts"));
                self.isolate(follower, false, 0);
            }
            _ => {}
        }
    }
}
