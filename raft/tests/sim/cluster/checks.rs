//! The checks a run makes beyond the incremental invariants: a leader's commit on the disks of a
//! quorum, and at the end the acknowledged writes, the members' final states and the client
//! history's linearizability.

use ringraft_raft::{NodeId, Role};

use super::{check_history, CommitCheck, FailureKind, Input, Sim, Verdict, LINEARIZABILITY_BUDGET};

impl Sim {
    /// A leadership transfer completes (the leader steps down) or is abandoned within an
    /// election timeout of the leader's ticks (thesis §3.10), so proposals are not refused
    /// forever with `TransferInProgress`.
    pub(super) fn check_transfer_ends(&mut self, id: NodeId) {
        let Some(&(term, target, ticks)) = self.pending_transfers.get(&id) else {
            return;
        };
        let Some(raw) = self.nodes[&id].raw() else {
            self.pending_transfers.remove(&id);
            return;
        };
        if raw.role() != Role::Leader || raw.term() != term {
            self.pending_transfers.remove(&id);
            return;
        }
        if raw.status().lead_transferee != Some(target) {
            self.pending_transfers.remove(&id);
            return;
        }
        let ticks = ticks + 1;
        if ticks > self.scenario.election_timeout_ticks + 1 {
            self.fail(
                FailureKind::Liveness,
                format!(
                    "leader {id} of term {term} still transfers to {target} {ticks} ticks after \
                     it began (an election timeout is {})",
                    self.scenario.election_timeout_ticks
                ),
            );
        }
        self.pending_transfers.insert(id, (term, target, ticks));
    }

    /// What a leader has committed must be on the disks of a quorum (of both halves of a joint
    /// configuration), so no crash can lose it; and it stays there while that leader leads under
    /// that configuration (a follower that dropped entries it acknowledged breaks this).
    pub(super) fn check_commit_durable(&mut self, id: NodeId) {
        let node = &self.nodes[&id];
        let raw = node.raw().expect("observed leaders are up");
        let status = raw.status();
        let (life, term) = (node.incarnation, status.term);
        let previous = self.commit_checked.remove(&id);
        let mut check = CommitCheck {
            life,
            term,
            commit: status.commit,
            verified: None,
        };
        // Only an advance made as this leader, under its configuration, is checked: what it
        // found committed when elected was committed under older configurations.
        let Some(previous) = previous.filter(|p| (p.life, p.term) == (life, term)) else {
            self.commit_checked.insert(id, check);
            return;
        };
        let target = if previous.commit < status.commit {
            node.mirror
                .term_at(status.commit)
                .map(|t| (status.commit, t, status.conf_state.clone()))
        } else {
            check.commit = previous.commit;
            previous
                .verified
                .filter(|(_, _, conf)| *conf == status.conf_state)
        };
        let Some((commit, commit_term, conf)) = target else {
            self.commit_checked.insert(id, check);
            return;
        };
        let holders = |voters: &[NodeId]| {
            voters
                .iter()
                .filter(|v| {
                    self.nodes
                        .get(v)
                        .is_some_and(|n| n.durable().holds(commit, commit_term))
                })
                .count()
        };
        for voters in [&conf.voters, &conf.voters_outgoing] {
            let held = holders(voters);
            if !voters.is_empty() && held * 2 <= voters.len() {
                self.invariants.fail(format!(
                    "durability: leader {id} committed index {commit} (term {commit_term}) but \
                     only {held} of voters {voters:?} hold it on disk"
                ));
            }
        }
        check.verified = Some((commit, commit_term, conf));
        self.commit_checked.insert(id, check);
    }

    /// No acknowledged write lost, every member holds the same state, the history linearizes.
    pub(super) fn final_checks(&mut self) -> Result<(), String> {
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
        let healthy = conf
            .voters
            .iter()
            .chain(&conf.learners)
            .filter(|m| !self.faulty.contains(m));
        for member in healthy {
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
