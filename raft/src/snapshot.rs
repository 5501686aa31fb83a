//! Log compaction and snapshot transfer (Raft thesis §5): the application hands in a snapshot,
//! the log behind it goes, and followers that need compacted entries receive the snapshot in
//! chunks of at most `snapshot_chunk_bytes_max`. The follower acknowledges each chunk with the
//! offset it has; the leader resumes from there after a loss.

use crate::errors::RaftError;
use crate::mutants::Mutant;
use crate::progress::ProgressState;
use crate::raw_node::RawNode;
use std::sync::Arc;

use crate::types::{LogIndex, MessageBody, NodeId, Snapshot, SnapshotMeta, Term};

/// A snapshot being received: the bytes so far, in order.
#[derive(Debug)]
pub(crate) struct IncomingSnapshot {
    leader: NodeId,
    leader_term: Term,
    meta: SnapshotMeta,
    total_bytes: u64,
    data: Vec<u8>,
}

/// Heartbeat intervals without an answer before the leader resends a snapshot chunk.
const SNAPSHOT_CHUNK_RESEND_HEARTBEATS: u32 = 2;

impl RawNode {
    /// The application hands in a snapshot of its state at `index` (<= applied and durable). The
    /// core keeps it to send to followers, drops log entries <= index from memory but for a
    /// retained tail (`Config::snapshot_catch_up_entries`), and returns the Snapshot for the
    /// shell to persist (then the shell compacts its WAL behind it).
    ///
    /// `Ok(None)` means there is nothing to do: a snapshot at or past `index` exists already.
    /// That happens without any fault of the shell: a snapshot from the leader may have replaced
    /// the log while the shell was busy with the previous Ready (it arrives in the next Ready, to
    /// be persisted and installed from there). Persist nothing then.
    ///
    /// An error means the shell broke the contract (`index` not yet applied or not durable).
    pub fn compact(
        &mut self,
        index: LogIndex,
        data: Vec<u8>,
    ) -> Result<Option<Snapshot>, RaftError> {
        let fail = |reason: String| Err(RaftError::Compaction { index, reason });
        if index <= self.log.snapshot_index() || index <= self.snapshot.meta.index {
            return Ok(None);
        }
        if index > self.log.applied {
            return fail(format!("only applied up to {}", self.log.applied));
        }
        if index > self.log.persisted {
            return fail(format!("only durable up to {}", self.log.persisted));
        }
        let Some(term) = self.log.term(index) else {
            return fail("not in the log".into());
        };
        let conf_state = self.log.confs.at(index).clone();
        let log_start = self.retained_tail_start(index);
        if log_start > self.log.snapshot_index() {
            self.log.compact_to(log_start);
        }
        self.snapshot = Arc::new(Snapshot {
            meta: SnapshotMeta {
                index,
                term,
                conf_state,
            },
            data,
        });
        Ok(Some(Snapshot::clone(&self.snapshot)))
    }

    /// Where the in-memory log starts after a compaction at `index`: up to
    /// `snapshot_catch_up_entries` entries and `snapshot_catch_up_bytes_max` bytes before it stay.
    fn retained_tail_start(&self, index: LogIndex) -> LogIndex {
        let entries_max = self.config.snapshot_catch_up_entries;
        let mut start = index;
        let mut bytes = 0usize;
        while start > self.log.snapshot_index() && index - start < entries_max {
            bytes = bytes.saturating_add(self.log.entry_bytes(start));
            if bytes > self.config.snapshot_catch_up_bytes_max {
                break;
            }
            start -= 1;
        }
        start
    }

    /// The shell's transport reports the outcome of a snapshot transfer it handled itself, or a
    /// failure to deliver one: go back to probing (after success, from behind the snapshot).
    pub fn report_snapshot(&mut self, id: NodeId, ok: bool) {
        let Some(pr) = self.progress.get_mut(&id) else {
            return;
        };
        if pr.state != ProgressState::Snapshot {
            return;
        }
        if !ok {
            pr.snapshot_index = 0;
        }
        pr.become_probe();
        // Wait for the next heartbeat response before probing again.
        pr.probe_sent = true;
    }

    /// Start sending our latest snapshot to `to`, unless a transfer to it is already under way
    /// (that one goes on with the snapshot it started with).
    pub(crate) fn start_snapshot(&mut self, to: NodeId) {
        let snapshot = Arc::clone(&self.snapshot);
        let Some(pr) = self.progress.get_mut(&to) else {
            return;
        };
        if pr.state == ProgressState::Snapshot {
            return;
        }
        pr.become_snapshot(snapshot);
        self.send_snapshot_chunk(to);
    }

    fn send_snapshot_chunk(&mut self, to: NodeId) {
        let chunk_bytes_max = self.config.snapshot_chunk_bytes_max;
        let Some(pr) = self.progress.get_mut(&to) else {
            return;
        };
        let Some(snapshot) = pr.snapshot.clone() else {
            return;
        };
        pr.snapshot_idle_heartbeats = 0;
        let total = snapshot.data.len();
        let start = (pr.snapshot_offset as usize).min(total);
        let end = start.saturating_add(chunk_bytes_max).min(total);
        pr.snapshot_ack_expected = end as u64;
        let body = MessageBody::InstallSnapshot {
            meta: snapshot.meta.clone(),
            offset: start as u64,
            total_bytes: total as u64,
            chunk: snapshot.data[start..end].to_vec(),
            done: end == total,
        };
        self.send(to, body);
    }

    pub(crate) fn resend_stalled_snapshot_chunks(&mut self) {
        let mut stalled = Vec::new();
        for (&id, pr) in self.progress.iter_mut() {
            if pr.state == ProgressState::Snapshot {
                pr.snapshot_idle_heartbeats += 1;
                if pr.snapshot_idle_heartbeats > SNAPSHOT_CHUNK_RESEND_HEARTBEATS {
                    stalled.push(id);
                }
            }
        }
        for id in stalled {
            self.send_snapshot_chunk(id);
        }
    }

    pub(crate) fn handle_snapshot_response(
        &mut self,
        from: NodeId,
        snapshot_index: LogIndex,
        next_offset: u64,
        reject: bool,
    ) {
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        pr.recent_active = true;
        let Some(total) = pr.snapshot.as_ref().map(|s| s.data.len() as u64) else {
            return;
        };
        if pr.state != ProgressState::Snapshot || snapshot_index != pr.snapshot_index {
            return;
        }
        if reject {
            pr.snapshot_index = 0;
            pr.become_probe();
            pr.probe_sent = true;
            return;
        }
        if next_offset >= total {
            // The follower holds the snapshot durably: it matches us up to its index. Probe from
            // there; if we compacted past it meanwhile, the probe starts the next transfer.
            pr.match_index = pr.match_index.max(snapshot_index);
            pr.become_probe();
            if self.send_append(from, true) {
                self.send_appends(from);
            }
            self.maybe_send_timeout_now(from);
            return;
        }
        // Resume from what the follower says it has. Only the acknowledgement of the chunk in
        // flight sends the next one at once; any other answer (a duplicate, a stale one, or a
        // follower that lost its partial copy in a restart) waits for the stall timer, which
        // resends from here: one chunk in flight, however many answers the network duplicates.
        pr.snapshot_offset = next_offset;
        if next_offset == pr.snapshot_ack_expected {
            self.send_snapshot_chunk(from);
        }
    }

    // ---- follower side ---------------------------------------------------------------------

    pub(crate) fn handle_snapshot_chunk(
        &mut self,
        leader: NodeId,
        meta: SnapshotMeta,
        offset: u64,
        total_bytes: u64,
        chunk: Vec<u8>,
        done: bool,
    ) {
        let leader_term = self.term;
        let committed = self.log.committed;
        let needed = meta.index > committed || (self.needs_configuration() && meta.index == 0);
        if !needed {
            // We already have everything it covers: the leader may continue after our commit.
            self.send_after_persist(
                leader,
                MessageBody::AppendResponse {
                    index: committed,
                    reject: false,
                    reject_hint_index: 0,
                    reject_hint_term: 0,
                },
            );
            return;
        }
        let chunk_end = offset.checked_add(chunk.len() as u64);
        let malformed =
            chunk_end.is_none_or(|end| end > total_bytes || (done && end != total_bytes));
        if malformed || total_bytes > self.config.snapshot_bytes_max {
            self.incoming_snapshot = None;
            self.answer_snapshot(leader, meta.index, 0, true);
            return;
        }
        // A partial snapshot continues only with chunks of the very snapshot it started with:
        // the same leader in the same term (a leader never holds two different snapshots at one
        // index), the same metadata and the same size.
        let same = |s: &IncomingSnapshot| {
            s.leader == leader
                && s.leader_term == leader_term
                && s.meta == meta
                && s.total_bytes == total_bytes
        };
        if offset == 0
            && !self
                .incoming_snapshot
                .as_ref()
                .is_some_and(|s| same(s) && s.data.is_empty())
        {
            self.incoming_snapshot = Some(IncomingSnapshot {
                leader,
                leader_term,
                meta: meta.clone(),
                total_bytes,
                data: Vec::new(),
            });
        }
        let have = match self.incoming_snapshot.as_mut() {
            Some(s) if same(s) && s.data.len() as u64 == offset => {
                s.data.extend_from_slice(&chunk);
                s.data.len() as u64
            }
            // Out of order or a different snapshot: tell the leader where we are.
            Some(s) if same(s) => {
                let have = s.data.len() as u64;
                self.answer_snapshot(leader, meta.index, have, false);
                return;
            }
            _ => {
                self.answer_snapshot(leader, meta.index, 0, false);
                return;
            }
        };
        if have < total_bytes {
            self.answer_snapshot(leader, meta.index, have, false);
            return;
        }
        let Some(incoming) = self.incoming_snapshot.take() else {
            return;
        };
        self.install_snapshot(Snapshot {
            meta: incoming.meta,
            data: incoming.data,
        });
        // The final acknowledgement promises the snapshot is durable.
        self.send_after_persist(
            leader,
            MessageBody::InstallSnapshotResponse {
                snapshot_index: meta.index,
                next_offset: total_bytes,
                reject: false,
            },
        );
    }

    fn answer_snapshot(
        &mut self,
        leader: NodeId,
        snapshot_index: LogIndex,
        next_offset: u64,
        reject: bool,
    ) {
        self.send(
            leader,
            MessageBody::InstallSnapshotResponse {
                snapshot_index,
                next_offset,
                reject,
            },
        );
    }

    fn install_snapshot(&mut self, snapshot: Snapshot) {
        let meta = &snapshot.meta;
        let keep_matching_log = !self.config.mutated(Mutant::SnapshotDiscardsMatchingLog);
        if meta.index > 0 && self.log.matches(meta.index, meta.term) && keep_matching_log {
            // Our log already holds it: keep the entries after it, just commit.
            self.log.commit_to(meta.index);
            return;
        }
        self.log.restore(meta);
        self.snapshot = Arc::new(snapshot.clone());
        self.snapshot_to_install = Some(snapshot);
    }
}
