//! The clients' side of a run: waking them, sending their operations to nodes, and telling them
//! what the nodes answered.

use rand::Rng;
use ringraft_raft::NodeId;

use super::{Attempt, Effects, Event, Input, Micros, Phase, Sim, MS};

impl Sim {
    pub(super) fn deliver_answers(&mut self, effects: &mut Effects) {
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

    pub(super) fn schedule_client(&mut self, index: usize, within: Micros) {
        let delay = self.rng.gen_range(0..=within);
        let generation = self.workload.clients[index].wake_generation;
        self.queue
            .schedule_in(delay, Event::Client(index, generation));
    }

    pub(super) fn client_wake(&mut self, index: usize) {
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

    pub(super) fn client_done_with_liveness(&self, index: usize) -> bool {
        let client = &self.workload.clients[index];
        client.current.is_none() && client.last_completed_seq > self.seq_at_end_of_faults[index]
    }

    /// Sends client `index`'s pending operation to a node: often the leader some node believes
    /// in, else any node that is up.
    pub(super) fn submit(&mut self, index: usize) {
        let up: Vec<NodeId> = self
            .nodes
            .keys()
            .copied()
            .filter(|&id| self.is_running(id))
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
                if self.is_running(leader) {
                    target = leader;
                }
            }
        }
        let reading = self.workload.clients[index]
            .current
            .as_ref()
            .is_some_and(|op| op.input == Input::Read);
        match self.workload.clients[index].home {
            Some(home) if self.queue.now() >= home.until => {
                self.workload.clients[index].home = None;
            }
            Some(home) if self.is_running(home.node) && (reading || !home.reads_only) => {
                target = home.node;
            }
            _ => {}
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
}
