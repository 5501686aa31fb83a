//! Membership changes (Raft thesis §4: one voter at a time, or joint consensus §4.3 for several)
//! and leadership transfer (§3.10).

use crate::conf_change::apply_conf_change;
use crate::errors::ProposeError;
use crate::mutants::Mutant;
use crate::quorum;
use crate::raw_node::RawNode;
use crate::types::{ConfChange, ConfState, EntryPayload, MessageBody, NodeId, Role};

impl RawNode {
    pub(crate) fn propose_conf_change_on_leader(
        &mut self,
        change: ConfChange,
    ) -> Result<(), ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader,
            });
        }
        if self.lead_transferee.is_some() {
            return Err(ProposeError::TransferInProgress);
        }
        // A new leader may not append a configuration change until an entry of its own term has
        // committed (thesis errata, raft-dev 2015): before that, a change it appends and one an
        // earlier leader left uncommitted can each commit on a quorum that the other never saw.
        let own_term_committed = self.log.term(self.log.committed) == Some(self.term);
        if !own_term_committed && !self.config.mutated(Mutant::ConfChangeBeforeTermCommit) {
            return Err(ProposeError::ConfChangePending);
        }
        // One change at a time: the previous one must be committed (thesis §4.1).
        if self.log.confs.latest_index() > self.log.committed {
            return Err(ProposeError::ConfChangePending);
        }
        let conf = self.log.conf_state();
        if !conf.voters_outgoing.is_empty() && !change.changes.is_empty() {
            return Err(ProposeError::ConfChangePending);
        }
        let next = apply_conf_change(conf, &change).map_err(ProposeError::InvalidConfChange)?;
        if quorum::is_learner(&next, self.id()) && !self.config.mutated(Mutant::LeaderDemotesItself)
        {
            return self.hand_over_before_own_demotion(&next);
        }
        self.append_proposals(vec![EntryPayload::ConfChange(change)])
    }

    /// A leader never appends a configuration that makes it a learner: if it crashed before the
    /// entry left, it would hold the freshest log as a learner that never campaigns, refusing
    /// the shorter logs of the voters that need its vote (a two-voter outgoing half, or a faulty
    /// voter). It hands leadership to the most caught-up voter of that configuration instead,
    /// which then makes the change (the caller retries there; an automatic leave step is taken
    /// by the next leader as its first commit lands). A leader that removes itself altogether
    /// may go on: see `RawNode::election_conf`.
    fn hand_over_before_own_demotion(&mut self, next: &ConfState) -> Result<(), ProposeError> {
        if self.lead_transferee.is_some() {
            return Err(ProposeError::TransferInProgress);
        }
        let successor = self
            .progress
            .iter()
            .filter(|(id, _)| quorum::is_voter(next, **id))
            // One we heard from lately first, then the most caught up.
            .max_by_key(|(id, pr)| (pr.recent_active, pr.match_index, std::cmp::Reverse(**id)))
            .map(|(id, _)| *id)
            .ok_or_else(|| {
                ProposeError::InvalidConfChange(
                    "the change demotes the leader and no voter of the new configuration can take \
                     over"
                        .into(),
                )
            })?;
        self.start_leader_transfer(successor)?;
        Err(ProposeError::TransferInProgress)
    }

    /// The configuration in effect changed (an entry was appended, truncated, or a snapshot
    /// installed): adjust roles and, on the leader, the set of followers.
    pub(crate) fn on_conf_changed(&mut self) {
        match self.role {
            Role::Leader => self.leader_on_conf_changed(),
            Role::Candidate | Role::PreCandidate if !self.is_promotable() => {
                let term = self.term;
                self.become_follower(term, None);
            }
            Role::Follower | Role::Learner => self.role = self.follower_role(),
            _ => {}
        }
    }

    fn leader_on_conf_changed(&mut self) {
        let members = quorum::members(self.log.conf_state());
        let me = self.id();
        self.progress.retain(|id, _| members.contains(id));
        let next_index = self.log.last_index() + 1;
        for id in members {
            if id != me && !self.progress.contains_key(&id) {
                let mut pr = self.new_progress(next_index);
                // A new member counts as active until the next CheckQuorum round.
                pr.recent_active = true;
                self.progress.insert(id, pr);
                self.broadcast_pending = true;
            }
        }
        if let Some(to) = self.lead_transferee {
            if !quorum::is_voter(self.log.conf_state(), to) {
                self.abort_leader_transfer();
            }
        }
        // A smaller quorum may already hold more.
        self.maybe_commit_and_broadcast();
    }

    /// After the commit index moved on the leader: leave a joint configuration automatically if
    /// asked to, and step down once a configuration without us is committed.
    /// On the leader's heartbeat: a leave step it could not take itself (it would demote it) is
    /// handed over again if the last hand-over was abandoned; nothing else commits meanwhile to
    /// bring it back here.
    pub(crate) fn retry_leave_hand_over(&mut self) {
        if self.lead_transferee.is_some() || self.log.confs.latest_index() > self.log.committed {
            return;
        }
        let conf = self.log.conf_state();
        if conf.voters_outgoing.is_empty() || !conf.auto_leave {
            return;
        }
        if let Ok(next) = apply_conf_change(conf, &ConfChange::default()) {
            if quorum::is_learner(&next, self.id())
                && !self.config.mutated(Mutant::LeaderDemotesItself)
            {
                let _handing_over = self.hand_over_before_own_demotion(&next);
            }
        }
    }

    pub(crate) fn on_commit_membership(&mut self) {
        if self.role != Role::Leader || self.log.confs.latest_index() > self.log.committed {
            return;
        }
        let conf = self.log.conf_state();
        if !conf.voters_outgoing.is_empty() && conf.auto_leave {
            let leave = ConfChange::default();
            let demotes_me = apply_conf_change(conf, &leave)
                .map(|next| quorum::is_learner(&next, self.id()))
                .unwrap_or(false);
            if !demotes_me || self.config.mutated(Mutant::LeaderDemotesItself) {
                self.append_entries(vec![EntryPayload::ConfChange(leave)]);
            } else if let Ok(next) = apply_conf_change(conf, &leave) {
                let _handing_over = self.hand_over_before_own_demotion(&next);
            }
            return;
        }
        if !quorum::is_voter(conf, self.id()) {
            // Hand over to the most up-to-date voter to shorten the leaderless gap.
            let last_index = self.log.last_index();
            let successor = self
                .progress
                .iter()
                .filter(|(id, pr)| quorum::is_voter(conf, **id) && pr.match_index == last_index)
                .map(|(id, _)| *id)
                .next();
            let term = self.term;
            if let Some(to) = successor {
                self.send_timeout_now(to);
            }
            self.become_follower(term, None);
        }
    }

    pub(crate) fn start_leader_transfer(&mut self, to: NodeId) -> Result<(), ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader,
            });
        }
        if to == self.id() {
            // Asking to transfer to ourselves cancels a transfer under way (as in etcd raft).
            self.abort_leader_transfer();
            return Ok(());
        }
        if !quorum::is_voter(self.log.conf_state(), to) {
            return Err(ProposeError::NotVoter(to));
        }
        if self.lead_transferee == Some(to) {
            return Ok(());
        }
        self.lead_transferee = Some(to);
        self.transfer_elapsed = 0;
        // The transferee campaigns once it has our whole log (thesis §3.10 step 1).
        self.send_appends(to);
        self.maybe_send_timeout_now(to);
        Ok(())
    }

    /// If `to` is the transferee and holds our whole log, tell it to campaign. Called whenever
    /// we learn more about its log: append and heartbeat answers, a completed snapshot.
    pub(crate) fn maybe_send_timeout_now(&mut self, to: NodeId) {
        let caught_up = self
            .progress
            .get(&to)
            .is_some_and(|pr| pr.match_index == self.log.last_index());
        if self.role == Role::Leader && self.lead_transferee == Some(to) && caught_up {
            self.send_timeout_now(to);
        }
    }

    /// Tell `to` to campaign now. Its voters will ignore their stickiness toward us (a campaign
    /// after TimeoutNow), so our lease can no longer be trusted this term.
    pub(crate) fn send_timeout_now(&mut self, to: NodeId) {
        self.read_only.forfeit_lease();
        self.send(to, MessageBody::TimeoutNow);
    }

    pub(crate) fn abort_leader_transfer(&mut self) {
        self.lead_transferee = None;
        self.transfer_elapsed = 0;
    }
}
