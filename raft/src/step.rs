//! Dispatch of peer messages: the term rules common to every message (thesis §3.3), then the
//! handler of the current role. Everything here treats the message as untrusted.

use crate::raw_node::RawNode;
use crate::types::{Message, MessageBody, Role};

impl RawNode {
    pub(crate) fn step_message(&mut self, msg: Message) {
        if msg.to != self.id() || msg.from == self.id() || msg.from == 0 {
            return;
        }
        if msg.term > self.term {
            if self.in_leader_lease(&msg) {
                return;
            }
            match msg.body {
                // A PreVote asks about a future term; a granted answer carries that future term.
                MessageBody::PreVote { .. } | MessageBody::PreVoteResponse { reject: false } => {}
                MessageBody::Append { .. }
                | MessageBody::Heartbeat { .. }
                | MessageBody::InstallSnapshot { .. } => {
                    self.become_follower(msg.term, Some(msg.from))
                }
                _ => self.become_follower(msg.term, None),
            }
        } else if msg.term < self.term {
            self.answer_stale(&msg);
            return;
        }
        self.dispatch(msg);
    }

    /// A message from an older term. Tell a stale leader or (pre-)candidate about our term, so
    /// that it steps down or catches up (Raft §5.1: a reply always carries the receiver's term).
    /// Whatever the settings: without PreVote and CheckQuorum a stale leader that is never
    /// answered keeps sending, and our own campaigns may never reach it; a candidate without
    /// PreVote among nodes with it hears their campaigns only as PreVotes, which move no term,
    /// so unanswered it would stay behind their terms for good.
    fn answer_stale(&mut self, msg: &Message) {
        match msg.body {
            MessageBody::Append { .. } | MessageBody::Heartbeat { .. } => {
                self.send(msg.from, MessageBody::HeartbeatResponse { read_round: 0 });
            }
            MessageBody::PreVote { .. } => {
                self.send(msg.from, MessageBody::PreVoteResponse { reject: true });
            }
            MessageBody::Vote { .. } => {
                self.send(msg.from, MessageBody::VoteResponse { reject: true });
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, msg: Message) {
        let from = msg.from;
        match msg.body {
            MessageBody::PreVote {
                last_log_index,
                last_log_term,
            } => self.handle_vote_request(from, msg.term, last_log_index, last_log_term, true),
            MessageBody::Vote {
                last_log_index,
                last_log_term,
                ..
            } => self.handle_vote_request(from, msg.term, last_log_index, last_log_term, false),
            MessageBody::PreVoteResponse { reject } => {
                let current_round = msg.term == self.term + 1 || (reject && msg.term == self.term);
                if self.role == Role::PreCandidate && current_round {
                    self.handle_vote_response(from, reject);
                }
            }
            MessageBody::VoteResponse { reject } => {
                if self.role == Role::Candidate {
                    self.handle_vote_response(from, reject);
                }
            }
            MessageBody::Append {
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
            } => {
                if self.accept_leader(from) {
                    self.handle_append(
                        from,
                        msg.term,
                        prev_log_index,
                        prev_log_term,
                        entries,
                        leader_commit,
                    );
                }
            }
            MessageBody::Heartbeat {
                leader_commit,
                read_round,
            } => {
                if self.accept_leader(from) {
                    self.handle_heartbeat(from, leader_commit, read_round);
                }
            }
            MessageBody::InstallSnapshot {
                meta,
                offset,
                total_bytes,
                chunk,
                done,
            } => {
                if self.accept_leader(from) && meta.term <= msg.term {
                    self.handle_snapshot_chunk(from, meta, offset, total_bytes, chunk, done);
                }
            }
            MessageBody::AppendResponse {
                index,
                reject,
                reject_hint_index,
                reject_hint_term,
            } => {
                if self.role == Role::Leader {
                    self.handle_append_response(
                        from,
                        index,
                        reject,
                        reject_hint_index,
                        reject_hint_term,
                    );
                }
            }
            MessageBody::HeartbeatResponse { read_round } => {
                if self.role == Role::Leader {
                    self.handle_heartbeat_response(from, read_round);
                }
            }
            MessageBody::InstallSnapshotResponse {
                snapshot_index,
                next_offset,
                reject,
            } => {
                if self.role == Role::Leader {
                    self.handle_snapshot_response(from, snapshot_index, next_offset, reject);
                }
            }
            MessageBody::TimeoutNow => {
                if self.role != Role::Leader && self.leader == Some(from) {
                    self.start_election(true);
                }
            }
            MessageBody::Propose { entries } => {
                if self.role == Role::Leader {
                    self.handle_forwarded_proposal(entries);
                }
            }
            MessageBody::ReadIndex { context } => {
                if self.role == Role::Leader {
                    self.leader_read_index(from, context);
                }
            }
            MessageBody::ReadIndexResponse { context, index } => {
                if self.role != Role::Leader && self.leader == Some(from) {
                    self.read_states
                        .push(crate::types::ReadState { context, index });
                }
            }
        }
    }

    /// A message only a leader sends arrived in our term: its sender is the leader.
    fn accept_leader(&mut self, from: crate::types::NodeId) -> bool {
        match self.role {
            // Two leaders in one term cannot happen; a peer claiming it is faulty.
            Role::Leader => false,
            Role::Candidate | Role::PreCandidate => {
                let term = self.term;
                self.become_follower(term, Some(from));
                true
            }
            Role::Follower | Role::Learner => {
                if self.leader.is_some_and(|leader| leader != from) {
                    return false;
                }
                self.leader = Some(from);
                self.refused_staler_candidate = false;
                self.election_elapsed = 0;
                true
            }
        }
    }
}
