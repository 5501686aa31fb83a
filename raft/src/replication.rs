//! Log replication (Raft thesis §3.5, §10.2): the leader's appends and heartbeats with
//! per-follower flow control, the follower's side of AppendEntries, and the commit rule (§3.6.2).

use crate::errors::ProposeError;
use crate::log::AppendRefusal;
use crate::mutants::Mutant;
use crate::progress::{Progress, ProgressState};
use crate::quorum;
use crate::raw_node::RawNode;
use crate::types::{Entry, EntryPayload, LogIndex, MessageBody, NodeId, Role, Term};

impl RawNode {
    pub(crate) fn new_progress(&self, next_index: LogIndex) -> Progress {
        Progress::new(
            next_index,
            self.config.inflight_msgs_max,
            self.config.inflight_bytes_max,
        )
    }

    pub(crate) fn tick_leader(&mut self) {
        self.heartbeat_elapsed = self.heartbeat_elapsed.saturating_add(1);
        self.election_elapsed = self.election_elapsed.saturating_add(1);
        let mut transfer_abandoned = false;
        if self.lead_transferee.is_some() {
            self.transfer_elapsed += 1;
            if self.transfer_elapsed >= self.config.election_timeout_ticks {
                self.abort_leader_transfer();
                transfer_abandoned = true;
            }
        }
        if self.election_elapsed >= self.config.election_timeout_ticks {
            self.election_elapsed = 0;
            if self.config.check_quorum && !self.quorum_recently_active() {
                // CheckQuorum (thesis §6.2): a leader cut off from a quorum steps down, so that
                // clients go elsewhere and its lease-read promise stays true.
                let term = self.term;
                self.become_follower(term, None);
                return;
            }
            for pr in self.progress.values_mut() {
                pr.recent_active = false;
            }
        }
        if self.heartbeat_elapsed >= self.config.heartbeat_interval_ticks {
            self.heartbeat_elapsed = 0;
            self.resend_stalled_snapshot_chunks();
            self.broadcast_heartbeat();
            // Not in the tick that abandoned a hand-over: the next one is a new transfer.
            if !transfer_abandoned {
                self.retry_leave_hand_over();
            }
        }
    }

    fn quorum_recently_active(&self) -> bool {
        let me = self.id();
        quorum::is_quorum(&self.voting_conf(), |id| {
            id == me || self.progress.get(&id).is_some_and(|pr| pr.recent_active)
        })
    }

    /// Every heartbeat broadcast is a new read round: its acknowledgements confirm the reads
    /// registered before it and extend the lease from the tick it started.
    pub(crate) fn broadcast_heartbeat(&mut self) {
        let read_round = self
            .read_only
            .start_round(self.ticks, self.config.lease_ticks());
        let committed = self.log.committed;
        let heartbeats: Vec<(NodeId, LogIndex)> = self
            .progress
            .iter()
            .map(|(&id, pr)| (id, pr.match_index.min(committed)))
            .collect();
        for (id, leader_commit) in heartbeats {
            // Only what the follower is known to match may be committed through a heartbeat.
            self.send(
                id,
                MessageBody::Heartbeat {
                    leader_commit,
                    read_round,
                },
            );
        }
    }

    /// Appends and read rounds collected since the last Ready go out together (batching).
    pub(crate) fn flush_broadcasts(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        if self.read_only.has_unsent_round() {
            self.broadcast_heartbeat();
        }
        if self.broadcast_pending {
            self.broadcast_pending = false;
            self.broadcast_append(false);
        }
    }

    pub(crate) fn broadcast_append(&mut self, allow_empty: bool) {
        let peers: Vec<NodeId> = self.progress.keys().copied().collect();
        for id in peers {
            if self.send_append(id, allow_empty) {
                self.send_appends(id);
            }
        }
    }

    /// Send as much as the follower's flow control allows.
    pub(crate) fn send_appends(&mut self, to: NodeId) {
        for _ in 0..=self.config.inflight_msgs_max {
            if !self.send_append(to, false) {
                break;
            }
        }
    }

    /// Send one AppendEntries (or start a snapshot if the entries are compacted). Returns true if
    /// an append went out.
    pub(crate) fn send_append(&mut self, to: NodeId, allow_empty: bool) -> bool {
        let Some(pr) = self.progress.get(&to) else {
            return false;
        };
        if pr.is_paused() {
            return false;
        }
        let prev_log_index = pr.next_index - 1;
        let Some(prev_log_term) = self.log.term(prev_log_index) else {
            self.start_snapshot(to);
            return false;
        };
        let entries = self
            .log
            .entries_from(pr.next_index, self.config.append_bytes_max);
        if entries.is_empty() && !allow_empty {
            return false;
        }
        let bytes: usize = entries.iter().map(Entry::size_bytes).sum();
        let last_index = prev_log_index + entries.len() as u64;
        if let Some(pr) = self.progress.get_mut(&to) {
            pr.on_append_sent(entries.len(), last_index, bytes);
        }
        let leader_commit = self.log.committed;
        self.send(
            to,
            MessageBody::Append {
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
            },
        );
        true
    }

    /// The leader appends entries of its term to its own log.
    pub(crate) fn append_entries(&mut self, payloads: Vec<EntryPayload>) {
        let first = self.log.last_index() + 1;
        let term = self.term;
        let entries: Vec<Entry> = payloads
            .into_iter()
            .enumerate()
            .map(|(offset, payload)| Entry {
                term,
                index: first + offset as u64,
                payload,
            })
            .collect();
        self.uncommitted_bytes += entries.iter().map(Entry::size_bytes).sum::<usize>();
        self.log.append(entries);
        self.broadcast_pending = true;
        self.check_conf_change();
    }

    pub(crate) fn append_proposals(
        &mut self,
        payloads: Vec<EntryPayload>,
    ) -> Result<(), ProposeError> {
        let bytes: usize = payloads
            .iter()
            .map(|payload| {
                Entry {
                    term: 0,
                    index: 0,
                    payload: payload.clone(),
                }
                .size_bytes()
            })
            .sum();
        if self.uncommitted_bytes > 0
            && self.uncommitted_bytes + bytes > self.config.uncommitted_bytes_max
        {
            return Err(ProposeError::TooManyUncommitted);
        }
        self.append_entries(payloads);
        Ok(())
    }

    /// A proposal a follower forwarded. Dropped if we cannot take it now: the proposer learns
    /// the outcome only by seeing its entry committed, and retries otherwise.
    pub(crate) fn handle_forwarded_proposal(&mut self, payloads: Vec<EntryPayload>) {
        if self.lead_transferee.is_some() || payloads.is_empty() {
            return;
        }
        // Membership changes go through the leader's API only, where they are validated.
        if payloads
            .iter()
            .any(|p| !matches!(p, EntryPayload::Normal(_)))
        {
            return;
        }
        let _dropped = self.append_proposals(payloads);
    }

    /// Commit the highest index a quorum holds, if it is of our term (thesis §3.6.2: entries of
    /// earlier terms are committed only indirectly; figure 3.7). The leader counts itself only up
    /// to what it has made durable.
    pub(crate) fn maybe_commit(&mut self) -> bool {
        let me = self.id();
        let persisted = if self.config.mutated(Mutant::LeaderCountsUnsyncedLog) {
            self.log.last_index()
        } else {
            self.log.persisted
        };
        let quorum_index = quorum::quorum_index(&self.voting_conf(), |id| {
            if id == me {
                persisted
            } else {
                self.progress.get(&id).map_or(0, |pr| pr.match_index)
            }
        });
        let old = self.log.committed;
        let own_term = self.log.term(quorum_index) == Some(self.term)
            || self.config.mutated(Mutant::CommitEarlierTermsByCounting);
        if quorum_index <= old || !own_term {
            return false;
        }
        self.log.commit_to(quorum_index);
        let committed_bytes = self.log.term_bytes(old + 1, quorum_index, self.term);
        self.uncommitted_bytes = self.uncommitted_bytes.saturating_sub(committed_bytes);
        true
    }

    pub(crate) fn maybe_commit_and_broadcast(&mut self) {
        if self.role == Role::Leader && self.maybe_commit() {
            self.on_commit_advanced();
            if self.role == Role::Leader {
                // Followers learn the new commit index right away, not at the next heartbeat.
                self.broadcast_append(true);
            }
        }
    }

    fn on_commit_advanced(&mut self) {
        self.release_reads_waiting_for_commit();
        self.on_commit_membership();
    }

    pub(crate) fn handle_append_response(
        &mut self,
        from: NodeId,
        index: LogIndex,
        reject: bool,
        reject_hint_index: LogIndex,
        reject_hint_term: Term,
    ) {
        if index > self.log.last_index() {
            return;
        }
        let probe_hint = if reject_hint_term > 0 {
            self.log
                .find_conflict_by_term(reject_hint_index, reject_hint_term)
                .0
        } else {
            reject_hint_index
        };
        let snapshot_index = self.log.snapshot_index();
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        pr.recent_active = true;
        if reject {
            if pr.maybe_decrease_to(index, probe_hint) {
                if pr.state == ProgressState::Replicate {
                    pr.become_probe();
                }
                if index <= snapshot_index {
                    // Everything up to our snapshot is committed; a follower that does not match
                    // there lacks it (or has no configuration yet): it needs the snapshot.
                    self.start_snapshot(from);
                } else {
                    self.send_append(from, false);
                }
            }
            return;
        }
        let grew = pr.maybe_update(index);
        match pr.state {
            ProgressState::Probe if grew || pr.match_index == index => pr.become_replicate(),
            ProgressState::Snapshot if pr.match_index >= pr.snapshot_index => pr.become_probe(),
            ProgressState::Replicate => pr.inflights.free_to(index),
            _ => {}
        }
        if grew && self.maybe_commit() {
            self.on_commit_advanced();
            if self.role == Role::Leader {
                self.broadcast_append(true);
            }
        } else {
            self.send_appends(from);
        }
        self.maybe_send_timeout_now(from);
    }

    pub(crate) fn handle_heartbeat_response(&mut self, from: NodeId, read_round: u64) {
        let last_index = self.log.last_index();
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        pr.recent_active = true;
        pr.probe_sent = false;
        if pr.match_index < last_index {
            if pr.state == ProgressState::Replicate && pr.replication_stalled() {
                pr.become_probe();
            }
            // A probe, or nothing in flight while the follower is still behind: an append at our
            // next index tells us (by its answer) where the follower stands.
            let allow_empty = match pr.state {
                ProgressState::Probe => true,
                ProgressState::Replicate => pr.inflights.count() == 0,
                ProgressState::Snapshot => false,
            };
            if self.send_append(from, allow_empty) {
                self.send_appends(from);
            }
        }
        self.on_read_ack(from, read_round);
        // A transferee that caught up without an append answer (by a snapshot, or a TimeoutNow
        // that was lost) is told again here.
        self.maybe_send_timeout_now(from);
    }

    // ---- follower side ---------------------------------------------------------------------

    pub(crate) fn handle_append(
        &mut self,
        leader: NodeId,
        msg_term: Term,
        prev_log_index: LogIndex,
        prev_log_term: Term,
        mut entries: Vec<Entry>,
        leader_commit: LogIndex,
    ) {
        if !is_well_formed_append(msg_term, prev_log_index, prev_log_term, &entries)
            && !self.config.mutated(Mutant::TrustsMalformedAppend)
        {
            return;
        }
        if self.needs_configuration() {
            // A node that never had a configuration must start from the leader's snapshot,
            // which carries it; entries alone would be read against an empty configuration.
            self.reject_append(leader, prev_log_index, 0, 0);
            return;
        }
        let committed = self.log.committed;
        let (mut prev_index, mut prev_term) = (prev_log_index, prev_log_term);
        if prev_index < committed {
            // Our log matches every leader's up to the commit index (leader completeness).
            let skip = ((committed - prev_index) as usize).min(entries.len());
            entries.drain(..skip);
            prev_index = committed;
            prev_term = self
                .log
                .term(committed)
                .expect("the commit index is in the log");
        }
        let truncate_matching = self.config.mutated(Mutant::StaleAppendTruncates);
        match self
            .log
            .try_append(prev_index, prev_term, &entries, truncate_matching)
        {
            Ok(last_new) => {
                self.log.commit_to(leader_commit.min(last_new));
                self.send_after_persist(
                    leader,
                    MessageBody::AppendResponse {
                        index: last_new,
                        reject: false,
                        reject_hint_index: 0,
                        reject_hint_term: 0,
                    },
                );
            }
            Err(AppendRefusal::Mismatch) => {
                let probe = prev_index.min(self.log.last_index());
                let (hint_index, hint_term) = self.log.find_conflict_by_term(probe, prev_term);
                self.reject_append(leader, prev_index, hint_index, hint_term);
            }
            // Only a faulty leader asks us to overwrite committed entries: ignore it.
            Err(AppendRefusal::ConflictsWithCommitted) => {}
        }
    }

    fn reject_append(
        &mut self,
        leader: NodeId,
        index: LogIndex,
        hint_index: LogIndex,
        hint_term: Term,
    ) {
        self.send_after_persist(
            leader,
            MessageBody::AppendResponse {
                index,
                reject: true,
                reject_hint_index: hint_index,
                reject_hint_term: hint_term,
            },
        );
    }

    pub(crate) fn handle_heartbeat(
        &mut self,
        leader: NodeId,
        leader_commit: LogIndex,
        read_round: u64,
    ) {
        if !self.needs_configuration() {
            self.log.commit_to(leader_commit.min(self.log.last_index()));
        }
        self.send(leader, MessageBody::HeartbeatResponse { read_round });
    }

    /// A node that joins an existing cluster starts with no configuration and no log.
    pub(crate) fn needs_configuration(&self) -> bool {
        self.log.snapshot_index() == 0
            && self.log.last_index() == 0
            && quorum::members(self.log.conf_state()).is_empty()
    }
}

/// Entries must follow `prev_log_index` contiguously with terms that never decrease and never
/// exceed the sender's term. Anything else is a faulty or hostile peer.
fn is_well_formed_append(
    msg_term: Term,
    prev_log_index: LogIndex,
    prev_log_term: Term,
    entries: &[Entry],
) -> bool {
    if prev_log_term > msg_term || prev_log_index.checked_add(entries.len() as u64).is_none() {
        return false;
    }
    let mut expected_term_min = prev_log_term;
    for (offset, entry) in entries.iter().enumerate() {
        if entry.index != prev_log_index + 1 + offset as u64
            || entry.term < expected_term_min
            || entry.term > msg_term
        {
            return false;
        }
        expected_term_min = entry.term;
    }
    true
}
