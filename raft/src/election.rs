//! Leader election (Raft thesis §3.4), PreVote (§9.6) and the leader lease that CheckQuorum gives
//! followers (§6.2, §9.6): role transitions, campaigns, and answering (pre)vote requests.

use crate::quorum::{self, VoteResult};
use crate::raw_node::RawNode;
use crate::read_only::ReadOnly;
use crate::types::{EntryPayload, LogIndex, Message, MessageBody, NodeId, Role, Term};

impl RawNode {
    pub(crate) fn tick_election(&mut self) {
        self.election_elapsed = self.election_elapsed.saturating_add(1);
        if self.is_promotable() && self.election_elapsed >= self.randomized_election_timeout {
            self.start_election(false);
        }
    }

    /// Campaign: through PreVote unless disabled or this is a leadership transfer (the current
    /// leader asked us to, so there is nothing to protect it from).
    pub(crate) fn start_election(&mut self, leader_transfer: bool) {
        if !self.is_promotable() {
            return;
        }
        if self.config.pre_vote && !leader_transfer {
            self.become_pre_candidate();
        } else {
            self.become_candidate(leader_transfer);
        }
    }

    /// Forget everything tied to the current role; a new term also forgets the vote.
    fn reset(&mut self, term: Term) {
        if term != self.term {
            assert!(term > self.term, "the term never decreases");
            self.term = term;
            self.vote = None;
        }
        self.leader = None;
        self.votes.clear();
        self.reset_election_timer();
        self.heartbeat_elapsed = 0;
        self.lead_transferee = None;
        self.transfer_elapsed = 0;
        self.progress.clear();
        self.read_only = ReadOnly::default();
        self.uncommitted_bytes = 0;
        self.broadcast_pending = false;
    }

    pub(crate) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        self.reset(term);
        self.leader = leader;
        if leader.is_some() {
            self.refused_staler_candidate = false;
        }
        self.role = self.follower_role();
    }

    fn become_pre_candidate(&mut self) {
        // The term stays: a failed pre-election disturbs nobody.
        let term = self.term;
        self.reset(term);
        self.role = Role::PreCandidate;
        self.votes.insert(self.id(), true);
        let body = MessageBody::PreVote {
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
        };
        for id in self.other_voters() {
            self.send_with_term(id, term + 1, body.clone());
        }
        self.poll();
    }

    fn become_candidate(&mut self, leader_transfer: bool) {
        let term = self.term + 1;
        self.reset(term);
        self.role = Role::Candidate;
        self.vote = Some(self.id());
        let body = MessageBody::Vote {
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
            leader_transfer,
        };
        for id in self.other_voters() {
            self.send(id, body.clone());
        }
        // Our own vote counts once it is durable (see `advance`).
        self.count_own_durable_vote();
    }

    /// The candidate's vote for itself counts only once its hard state is on disk: a candidate
    /// that crashed before that could otherwise vote twice in the term.
    pub(crate) fn count_own_durable_vote(&mut self) {
        let durable = self.persisted_hard_state;
        if self.role == Role::Candidate
            && durable.term == self.term
            && durable.vote == Some(self.id())
            && !self.votes.contains_key(&self.id())
        {
            self.votes.insert(self.id(), true);
            self.poll();
        }
    }

    fn become_leader(&mut self) {
        assert_eq!(
            self.role,
            Role::Candidate,
            "only a candidate becomes leader"
        );
        let term = self.term;
        self.reset(term);
        self.role = Role::Leader;
        self.leader = Some(self.id());
        self.refused_staler_candidate = false;
        let next_index = self.log.last_index() + 1;
        for id in quorum::members(self.log.conf_state()) {
            if id != self.id() {
                self.progress.insert(id, self.new_progress(next_index));
            }
        }
        // A leader commits entries of earlier terms only through one of its own (thesis §3.6.2),
        // and serves reads only after that (§6.4): append it right away.
        self.append_entries(vec![EntryPayload::Empty]);
    }

    fn other_voters(&self) -> Vec<NodeId> {
        quorum::voters(&self.election_conf())
            .into_iter()
            .filter(|&id| id != self.id())
            .collect()
    }

    fn poll(&mut self) {
        match quorum::vote_result(&self.election_conf(), &self.votes) {
            VoteResult::Won if self.role == Role::PreCandidate => self.become_candidate(false),
            VoteResult::Won => self.become_leader(),
            VoteResult::Lost => {
                let term = self.term;
                self.become_follower(term, None);
            }
            VoteResult::Pending => {}
        }
    }

    pub(crate) fn handle_vote_response(&mut self, from: NodeId, reject: bool) {
        if !quorum::is_voter(&self.election_conf(), from) {
            return;
        }
        self.votes.entry(from).or_insert(!reject);
        self.poll();
    }

    /// True if a (pre)vote request must be ignored because we have a live leader: a node that
    /// heard from a leader within the minimum election timeout disregards it (thesis §4.2.3),
    /// whatever the settings, so that a removed server that never learns of its removal cannot
    /// depose every leader with ever higher terms; a campaign that follows a leadership transfer
    /// is exempt. With CheckQuorum this is also the follower's half of the leader lease (§6.2).
    /// With lease reads, a node that started less than an election timeout ago counts as having
    /// heard from a leader: before its restart it may have acknowledged a heartbeat on which
    /// that leader's read lease rests.
    pub(crate) fn in_leader_lease(&self, msg: &Message) -> bool {
        let campaign = match msg.body {
            MessageBody::PreVote { .. } => true,
            MessageBody::Vote {
                leader_transfer, ..
            } => !leader_transfer,
            _ => false,
        };
        let timeout = self.config.election_timeout_ticks;
        let heard_from_leader = self.leader.is_some() && self.election_elapsed < timeout;
        let just_started = self.config.lease_read && self.ticks < u64::from(timeout);
        campaign && (heard_from_leader || just_started)
    }

    /// Answer a (pre)vote request. A node that is a learner in its own configuration still
    /// answers when asked: the candidate asks only the voters of ITS configuration, which may
    /// already include a promotion we have not received yet (etcd raft does the same).
    pub(crate) fn handle_vote_request(
        &mut self,
        from: NodeId,
        msg_term: Term,
        last_log_index: LogIndex,
        last_log_term: Term,
        pre_vote: bool,
    ) {
        let can_vote = self.vote == Some(from)
            || (self.vote.is_none() && self.leader.is_none())
            || (pre_vote && msg_term > self.term);
        let up_to_date = self.log.is_up_to_date(last_log_index, last_log_term);
        let grant = can_vote && up_to_date;
        if !up_to_date && self.role == Role::Learner {
            self.refused_staler_candidate = true;
        }
        if pre_vote {
            // A granted PreVote carries the term it was asked for; a refusal carries ours.
            let term = if grant { msg_term } else { self.term };
            self.send_with_term(from, term, MessageBody::PreVoteResponse { reject: !grant });
        } else {
            if grant {
                self.vote = Some(from);
                self.reset_election_timer();
            }
            self.send_after_persist(from, MessageBody::VoteResponse { reject: !grant });
        }
    }
}
