//! What the leader knows about each follower's log, and the flow control toward it.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::types::{LogIndex, Snapshot};

/// How the leader replicates to one follower (etcd raft's design, thesis §10.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressState {
    /// The follower's position is unknown: one AppendEntries at a time until it answers.
    Probe,
    /// The follower accepts our entries: send optimistically, within the in-flight bounds.
    Replicate,
    /// The follower needs entries we compacted: a snapshot is on its way.
    Snapshot,
}

/// AppendEntries sent but not yet acknowledged: (last index carried, entry bytes).
#[derive(Debug, Clone)]
pub(crate) struct Inflights {
    sent: VecDeque<(LogIndex, usize)>,
    bytes: usize,
    msgs_max: usize,
    bytes_max: usize,
}

impl Inflights {
    pub fn new(msgs_max: usize, bytes_max: usize) -> Inflights {
        Inflights {
            sent: VecDeque::new(),
            bytes: 0,
            msgs_max: msgs_max.max(1),
            bytes_max,
        }
    }

    pub fn is_full(&self) -> bool {
        self.sent.len() >= self.msgs_max || self.bytes >= self.bytes_max
    }

    pub fn add(&mut self, last_index: LogIndex, bytes: usize) {
        assert!(
            self.sent.back().is_none_or(|&(last, _)| last < last_index),
            "in-flight appends must carry increasing indexes"
        );
        self.sent.push_back((last_index, bytes));
        self.bytes += bytes;
    }

    /// The follower has everything up to `index`: those messages are no longer in flight.
    pub fn free_to(&mut self, index: LogIndex) {
        while let Some(&(last, bytes)) = self.sent.front() {
            if last > index {
                break;
            }
            self.sent.pop_front();
            self.bytes -= bytes;
        }
    }

    pub fn reset(&mut self) {
        self.sent.clear();
        self.bytes = 0;
    }

    pub fn count(&self) -> usize {
        self.sent.len()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Progress {
    pub match_index: LogIndex,
    pub next_index: LogIndex,
    pub state: ProgressState,
    /// In Probe: an append is outstanding, wait for an answer (or the next heartbeat response).
    pub probe_sent: bool,
    /// In Snapshot: the index of the snapshot being sent (kept after the transfer ends, to probe
    /// from behind it).
    pub snapshot_index: LogIndex,
    /// In Snapshot: the snapshot being sent. A transfer keeps the snapshot it started with until
    /// it completes or fails, even if the leader compacts again meanwhile: restarting from byte 0
    /// at every compaction would never finish under steady writes.
    pub snapshot: Option<Arc<Snapshot>>,
    /// In Snapshot: where the next chunk starts (the follower has the bytes before it).
    pub snapshot_offset: u64,
    /// In Snapshot: the offset the follower acknowledges once the chunk in flight arrives. Only
    /// that acknowledgement sends the next chunk: duplicates of older ones would otherwise each
    /// start a chain of chunks of their own.
    pub snapshot_ack_expected: u64,
    /// In Snapshot: heartbeats since the last chunk was acknowledged (to resend a lost chunk).
    pub snapshot_idle_heartbeats: u32,
    /// Heard from since the last CheckQuorum round.
    pub recent_active: bool,
    pub inflights: Inflights,
    /// In Replicate: `match_index` at the previous heartbeat response, and how many heartbeat
    /// responses in a row came back without progress while appends were in flight.
    match_at_heartbeat: LogIndex,
    stalled_heartbeats: u32,
}

impl Progress {
    pub fn new(next_index: LogIndex, msgs_max: usize, bytes_max: usize) -> Progress {
        Progress {
            match_index: 0,
            next_index,
            state: ProgressState::Probe,
            probe_sent: false,
            snapshot_index: 0,
            snapshot: None,
            snapshot_offset: 0,
            snapshot_ack_expected: 0,
            snapshot_idle_heartbeats: 0,
            recent_active: false,
            inflights: Inflights::new(msgs_max, bytes_max),
            match_at_heartbeat: 0,
            stalled_heartbeats: 0,
        }
    }

    /// What every change keeps true: the leader never sends below what the follower matched,
    /// only a snapshot transfer holds a snapshot, and only replication has appends in flight.
    fn assert_invariants(&self) {
        assert!(
            self.match_index < self.next_index,
            "match {} not below next {}",
            self.match_index,
            self.next_index
        );
        assert_eq!(
            self.snapshot.is_some(),
            self.state == ProgressState::Snapshot,
            "a snapshot is held exactly in the Snapshot state ({:?})",
            self.state
        );
        if self.state != ProgressState::Replicate {
            assert_eq!(
                self.inflights.count(),
                0,
                "appends in flight in {:?}",
                self.state
            );
        }
    }

    fn reset_state(&mut self, state: ProgressState) {
        self.state = state;
        self.probe_sent = false;
        self.snapshot_index = 0;
        self.snapshot = None;
        self.snapshot_offset = 0;
        self.snapshot_ack_expected = 0;
        self.snapshot_idle_heartbeats = 0;
        self.inflights.reset();
        self.match_at_heartbeat = self.match_index;
        self.stalled_heartbeats = 0;
    }

    pub fn become_probe(&mut self) {
        // After a snapshot, continue right after it (the follower has at least that much).
        let after_snapshot = self.snapshot_index + 1;
        let was_snapshot = self.state == ProgressState::Snapshot;
        self.reset_state(ProgressState::Probe);
        self.next_index = if was_snapshot {
            (self.match_index + 1).max(after_snapshot)
        } else {
            self.match_index + 1
        };
        self.assert_invariants();
    }

    pub fn become_replicate(&mut self) {
        self.reset_state(ProgressState::Replicate);
        self.next_index = self.match_index + 1;
        self.assert_invariants();
    }

    pub fn become_snapshot(&mut self, snapshot: Arc<Snapshot>) {
        self.reset_state(ProgressState::Snapshot);
        self.snapshot_index = snapshot.meta.index;
        self.snapshot = Some(snapshot);
        self.assert_invariants();
    }

    /// The follower acknowledged everything up to `index`. Returns true if `match_index` grew.
    pub fn maybe_update(&mut self, index: LogIndex) -> bool {
        let grew = index > self.match_index;
        if grew {
            self.match_index = index;
            self.probe_sent = false;
        }
        self.next_index = self.next_index.max(index + 1);
        self.assert_invariants();
        grew
    }

    /// The follower rejected an append at `rejected` (its prev_log_index); `probe_hint` is where
    /// our logs may agree. Returns false if the rejection is stale.
    pub fn maybe_decrease_to(&mut self, rejected: LogIndex, probe_hint: LogIndex) -> bool {
        if self.state == ProgressState::Replicate {
            if rejected <= self.match_index {
                return false;
            }
            self.next_index = self.match_index + 1;
            self.assert_invariants();
            return true;
        }
        if self.next_index == 0 || self.next_index - 1 != rejected {
            return false;
        }
        self.next_index = rejected.min(probe_hint + 1).max(self.match_index + 1);
        self.probe_sent = false;
        self.assert_invariants();
        true
    }

    /// Called on each heartbeat response in Replicate. True when appends are in flight but the
    /// follower made no progress over two heartbeat round trips: they (or their answers) were
    /// probably lost, and the leader should fall back to probing.
    pub fn replication_stalled(&mut self) -> bool {
        if self.match_index != self.match_at_heartbeat || self.inflights.count() == 0 {
            self.match_at_heartbeat = self.match_index;
            self.stalled_heartbeats = 0;
            return false;
        }
        self.stalled_heartbeats += 1;
        self.stalled_heartbeats >= 2
    }

    /// Whether the leader should hold back new appends to this follower.
    pub fn is_paused(&self) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => self.inflights.is_full(),
            ProgressState::Snapshot => true,
        }
    }

    /// Record that an append carrying entries up to `last_index` went out.
    pub fn on_append_sent(&mut self, entry_count: usize, last_index: LogIndex, bytes: usize) {
        match self.state {
            ProgressState::Replicate => {
                if entry_count > 0 {
                    self.next_index = last_index + 1;
                    self.inflights.add(last_index, bytes);
                }
            }
            ProgressState::Probe => self.probe_sent = true,
            ProgressState::Snapshot => {}
        }
        self.assert_invariants();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inflights_bound_messages_and_bytes() {
        let mut inflights = Inflights::new(2, 100);
        inflights.add(1, 10);
        assert!(!inflights.is_full());
        inflights.add(2, 10);
        assert!(inflights.is_full());
        inflights.free_to(1);
        assert!(!inflights.is_full());
        inflights.add(3, 95);
        assert!(inflights.is_full());
        inflights.free_to(3);
        assert_eq!(inflights.count(), 0);
    }

    #[test]
    fn probe_backs_off_to_the_hint_but_never_below_match() {
        let mut progress = Progress::new(11, 4, 1000);
        progress.match_index = 3;
        assert!(!progress.maybe_decrease_to(7, 2), "stale reject");
        assert!(progress.maybe_decrease_to(10, 5));
        assert_eq!(progress.next_index, 6);
        assert!(progress.maybe_decrease_to(5, 0));
        assert_eq!(progress.next_index, 4);
    }
}
