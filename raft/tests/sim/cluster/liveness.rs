//! The liveness phase: the faults stop (but for a minority left faulty), and within a bound the
//! cluster must elect a leader, settle its configuration, finish every client's operation and
//! apply the whole log everywhere.

use rand::Rng;
use ringraft_raft::{ConfChange, ConfState, NodeId};

use super::{
    Effects, Event, FailureKind, Micros, NetworkFaults, Phase, Sim, LIVENESS_TICKS_MAX, MS,
};

impl Sim {
    pub(super) fn end_faults(&mut self) {
        self.note(|| "faults stop: liveness phase".into());
        self.network.heal();
        self.network.faults = NetworkFaults::calm();
        let paused: Vec<(NodeId, u32)> = self
            .paused
            .iter()
            .map(|(&id, p)| (id, p.incarnation))
            .collect();
        for (id, incarnation) in paused {
            self.resume(id, incarnation);
        }
        self.tick_intervals = self.nominal_tick_intervals.clone();
        for client in &mut self.workload.clients {
            client.home = None;
        }
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
        if self.scenario.faulty_minority {
            self.leave_a_minority_faulty();
        }
        for index in 0..self.workload.clients.len() {
            if self.workload.clients[index].current.is_none() {
                self.schedule_client(index, self.scenario.think_time_max);
            }
        }
        self.queue
            .schedule_in(self.scenario.tick_interval, Event::LivenessCheck);
    }

    pub(super) fn liveness_check(&mut self) {
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
    pub(super) fn converged(&self) -> Result<(), String> {
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
        let healthy = conf
            .voters
            .iter()
            .chain(&conf.learners)
            .filter(|m| !self.faulty.contains(m));
        for &member in healthy {
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

    pub(super) fn describe_nodes(&self) -> String {
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

    /// The liveness phase begins with a minority of every voter set (old and new halves of a
    /// joint configuration alike, in every node's view) down or cut off for good: the others
    /// must converge without them.
    pub(super) fn leave_a_minority_faulty(&mut self) {
        let confs: Vec<ConfState> = self
            .nodes
            .values()
            .filter_map(|n| n.raw().map(|r| r.conf_state().clone()))
            .collect();
        let mut candidates: Vec<NodeId> = self.nodes.keys().copied().collect();
        let wanted = self.rng.gen_range(1..=3);
        while !candidates.is_empty() && self.faulty.len() < wanted {
            let id = candidates.swap_remove(self.rng.gen_range(0..candidates.len()));
            let faulty = &self.faulty;
            let stays_a_minority = |voters: &Vec<NodeId>| {
                if !voters.contains(&id) {
                    return true;
                }
                let count = voters.iter().filter(|v| faulty.contains(v)).count() + 1;
                2 * count < voters.len()
            };
            let member = confs
                .iter()
                .any(|c| c.voters.contains(&id) || c.learners.contains(&id));
            let allowed = confs
                .iter()
                .all(|c| stays_a_minority(&c.voters) && stays_a_minority(&c.voters_outgoing));
            if member && allowed {
                self.faulty.insert(id);
            }
        }
        for id in self.faulty.clone() {
            if self.rng.gen_bool(0.5) && self.nodes[&id].is_up() {
                self.note(|| format!("node {id} stays down through the liveness phase"));
                self.crash(id);
            } else {
                self.note(|| format!("node {id} stays cut off through the liveness phase"));
                self.network.isolate_for_good(id);
            }
        }
    }
}
