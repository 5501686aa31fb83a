//! The node's log in memory: everything after the latest snapshot, with the markers that say how
//! far it is committed, applied, handed to the shell and durable.
//!
//! The shell keeps the same log on disk; the core keeps a full copy of the tail after the snapshot
//! (the application compacts it regularly with `RawNode::compact`).

use crate::conf_change::ConfLog;
use crate::types::{ConfState, Entry, LogIndex, SnapshotMeta, Term};

/// Why an AppendEntries could not be applied to the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AppendRefusal {
    /// No entry at `prev_log_index` with `prev_log_term`: the leader must back off.
    Mismatch,
    /// The leader's entries conflict with committed ones: only a faulty peer sends that.
    ConflictsWithCommitted,
}

#[derive(Debug)]
pub(crate) struct RaftLog {
    snapshot_index: LogIndex,
    snapshot_term: Term,
    /// `entries[i].index == snapshot_index + 1 + i`.
    entries: Vec<Entry>,
    /// The flow-control size of `entries`, summed (what bounds the log's memory).
    bytes: usize,
    pub committed: LogIndex,
    /// The shell has applied everything up to here (acknowledged through `advance`).
    pub applied: LogIndex,
    /// Entries from this index on have not yet been handed to the shell in a Ready.
    unstable_from: LogIndex,
    /// Entries up to this index are durable on this node.
    pub persisted: LogIndex,
    pub confs: ConfLog,
}

impl RaftLog {
    /// A log restored from storage: `entries` follow the snapshot and are all durable.
    pub fn new(
        snapshot: &SnapshotMeta,
        entries: Vec<Entry>,
        committed: LogIndex,
        applied: LogIndex,
    ) -> Result<RaftLog, String> {
        for (offset, entry) in entries.iter().enumerate() {
            if entry.index != snapshot.index + 1 + offset as u64 {
                return Err(format!("entry {} is out of place", entry.index));
            }
            let previous_term = if offset == 0 {
                snapshot.term
            } else {
                entries[offset - 1].term
            };
            if entry.term < previous_term {
                return Err(format!("entry {} has a decreasing term", entry.index));
            }
        }
        let last = snapshot.index + entries.len() as u64;
        if committed > last {
            return Err(format!("commit {committed} is past the last index {last}"));
        }
        if applied < snapshot.index || applied > committed.max(snapshot.index) {
            return Err(format!(
                "applied {applied} is outside [snapshot {}, commit {committed}]",
                snapshot.index
            ));
        }
        let mut confs = ConfLog::new(snapshot.conf_state.clone());
        confs.on_append(&entries);
        Ok(RaftLog {
            snapshot_index: snapshot.index,
            snapshot_term: snapshot.term,
            bytes: bytes_of(&entries),
            entries,
            committed: committed.max(snapshot.index),
            applied,
            unstable_from: last + 1,
            persisted: last,
            confs,
        })
    }

    /// Bytes of entries held in memory (what a shell compacts by, besides their number).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// What every change to the log keeps true. The O(1) checks always run (a broken log must
    /// stop the node, not spread); the byte count is recounted in debug builds only.
    fn assert_invariants(&self) {
        let last = self.last_index();
        assert!(
            self.committed <= last,
            "commit {} past the last index {last}",
            self.committed
        );
        assert!(
            self.applied <= self.committed.max(self.snapshot_index),
            "applied {} past commit {}",
            self.applied,
            self.committed
        );
        assert!(
            self.persisted <= last,
            "persisted {} past {last}",
            self.persisted
        );
        assert!(
            self.unstable_from <= last + 1,
            "unstable entries past the log"
        );
        debug_assert_eq!(self.bytes, bytes_of(&self.entries), "log byte count");
    }

    pub fn conf_state(&self) -> &ConfState {
        self.confs.current()
    }

    pub fn snapshot_index(&self) -> LogIndex {
        self.snapshot_index
    }

    pub fn first_index(&self) -> LogIndex {
        self.snapshot_index + 1
    }

    pub fn last_index(&self) -> LogIndex {
        self.snapshot_index + self.entries.len() as u64
    }

    pub fn last_term(&self) -> Term {
        self.entries
            .last()
            .map(|e| e.term)
            .unwrap_or(self.snapshot_term)
    }

    /// The term of the entry at `index`, if the log still knows it.
    pub fn term(&self, index: LogIndex) -> Option<Term> {
        if index == self.snapshot_index {
            return Some(self.snapshot_term);
        }
        if index < self.snapshot_index || index > self.last_index() {
            return None;
        }
        Some(self.entries[(index - self.snapshot_index - 1) as usize].term)
    }

    pub fn matches(&self, index: LogIndex, term: Term) -> bool {
        self.term(index) == Some(term)
    }

    /// The election restriction (thesis §3.6.1): is a log ending at (`index`, `term`) at least as
    /// up to date as ours?
    pub fn is_up_to_date(&self, index: LogIndex, term: Term) -> bool {
        term > self.last_term() || (term == self.last_term() && index >= self.last_index())
    }

    /// Entries from `from` on, at most `bytes_max` bytes but at least one entry.
    pub fn entries_from(&self, from: LogIndex, bytes_max: usize) -> Vec<Entry> {
        if from < self.first_index() || from > self.last_index() {
            return Vec::new();
        }
        let start = (from - self.first_index()) as usize;
        take_bytes(&self.entries[start..], bytes_max)
    }

    /// The leader appends its own entries.
    pub fn append(&mut self, entries: Vec<Entry>) {
        for (offset, entry) in entries.iter().enumerate() {
            assert_eq!(
                entry.index,
                self.last_index() + 1 + offset as u64,
                "appended entries must follow the log"
            );
        }
        self.confs.on_append(&entries);
        self.bytes += bytes_of(&entries);
        self.entries.extend(entries);
        self.assert_invariants();
    }

    /// A follower appends the leader's entries after (`prev_index`, `prev_term`), truncating a
    /// conflicting suffix (thesis §3.5). Entries are contiguous from `prev_index + 1` (checked by
    /// the caller). Returns the last index known to match the leader.
    ///
    /// `mutant_truncate_matching` (only the `StaleAppendTruncates` mutant sets it) treats every
    /// entry as conflicting, so a stale append erases the suffix after it.
    pub fn try_append(
        &mut self,
        prev_index: LogIndex,
        prev_term: Term,
        entries: &[Entry],
        mutant_truncate_matching: bool,
    ) -> Result<LogIndex, AppendRefusal> {
        if !self.matches(prev_index, prev_term) {
            return Err(AppendRefusal::Mismatch);
        }
        let last_new = prev_index + entries.len() as u64;
        let conflict = entries
            .iter()
            .find(|e| mutant_truncate_matching || !self.matches(e.index, e.term))
            .map(|e| e.index);
        if let Some(from) = conflict {
            if from <= self.committed {
                return Err(AppendRefusal::ConflictsWithCommitted);
            }
            if from <= self.last_index() {
                self.truncate_from(from);
            }
            let start = (from - prev_index - 1) as usize;
            self.append(entries[start..].to_vec());
        }
        Ok(last_new)
    }

    fn truncate_from(&mut self, from: LogIndex) {
        assert!(from > self.committed, "never truncate committed entries");
        assert!(from > self.snapshot_index);
        let keep = (from - self.first_index()) as usize;
        self.bytes -= bytes_of(&self.entries[keep..]);
        self.entries.truncate(keep);
        self.unstable_from = self.unstable_from.min(from);
        self.persisted = self.persisted.min(from - 1);
        self.confs.truncate_from(from);
        self.assert_invariants();
    }

    /// The largest index at or below `index` whose term is at most `term`, with its term: where a
    /// log ending in `term` may agree with ours (fast back-off, thesis §5.3 and etcd raft).
    pub fn find_conflict_by_term(&self, index: LogIndex, term: Term) -> (LogIndex, Term) {
        let mut index = index.min(self.last_index());
        while index > self.snapshot_index {
            match self.term(index) {
                Some(t) if t <= term => return (index, t),
                _ => index -= 1,
            }
        }
        (index, self.term(index).unwrap_or(0))
    }

    /// Bytes of the entries of `term` in `from..=to`.
    pub fn term_bytes(&self, from: LogIndex, to: LogIndex, term: Term) -> usize {
        let from = from.max(self.first_index());
        let to = to.min(self.last_index());
        if from > to {
            return 0;
        }
        let start = (from - self.first_index()) as usize;
        let end = (to - self.first_index() + 1) as usize;
        self.entries[start..end]
            .iter()
            .filter(|e| e.term == term)
            .map(Entry::size_bytes)
            .sum()
    }

    pub fn commit_to(&mut self, index: LogIndex) {
        if index <= self.committed {
            return;
        }
        assert!(
            index <= self.last_index(),
            "commit {index} past the last index {}",
            self.last_index()
        );
        self.committed = index;
    }

    /// Entries not yet handed to the shell.
    pub fn unstable_entries(&self) -> &[Entry] {
        let last = self.last_index();
        if self.unstable_from > last {
            return &[];
        }
        let start = (self.unstable_from.max(self.first_index()) - self.first_index()) as usize;
        &self.entries[start..]
    }

    pub fn has_unstable(&self) -> bool {
        self.unstable_from <= self.last_index()
    }

    pub fn mark_handed_out(&mut self) {
        self.unstable_from = self.last_index() + 1;
    }

    /// The shell made entries up to (`index`, `term`) durable. If the log changed there since the
    /// Ready was cut, the durable copy was replaced and nothing is learned.
    pub fn stable_to(&mut self, index: LogIndex, term: Term) {
        if self.matches(index, term) && index < self.unstable_from {
            self.persisted = self.persisted.max(index);
        }
    }

    /// Committed entries the shell may apply now: durable here too, so that the applied state
    /// never runs ahead of this node's durable log.
    pub fn next_committed_entries(&self, bytes_max: usize) -> Vec<Entry> {
        let from = (self.applied + 1).max(self.first_index());
        let to = self.committed.min(self.persisted);
        if from > to {
            return Vec::new();
        }
        let start = (from - self.first_index()) as usize;
        let end = (to - self.first_index() + 1) as usize;
        take_bytes(&self.entries[start..end], bytes_max)
    }

    pub fn has_committed_to_apply(&self) -> bool {
        self.committed.min(self.persisted) > self.applied.max(self.snapshot_index)
    }

    pub fn applied_to(&mut self, index: LogIndex) {
        assert!(index >= self.applied, "applied index never decreases");
        assert!(index <= self.committed, "applied past commit");
        self.applied = index;
    }

    /// The flow-control size of the entry at `index` (0 if the log no longer holds it).
    pub fn entry_bytes(&self, index: LogIndex) -> usize {
        if index <= self.snapshot_index || index > self.last_index() {
            return 0;
        }
        self.entries[(index - self.snapshot_index - 1) as usize].size_bytes()
    }

    /// Drop entries up to `index`, which a snapshot now covers.
    pub fn compact_to(&mut self, index: LogIndex) {
        assert!(index > self.snapshot_index && index <= self.persisted.min(self.applied));
        let term = self.term(index).expect("compaction index is in the log");
        let dropped = (index - self.snapshot_index) as usize;
        self.bytes -= bytes_of(&self.entries[..dropped]);
        self.entries.drain(..dropped);
        self.confs.compact_to(index);
        self.snapshot_index = index;
        self.snapshot_term = term;
        self.assert_invariants();
    }

    /// Replace the whole log with a snapshot received from the leader.
    pub fn restore(&mut self, meta: &SnapshotMeta) {
        // Equal only for the configuration-only snapshot a joining node receives first.
        assert!(
            meta.index > self.committed
                || (meta.index == self.committed && self.last_index() == self.committed),
            "never restore behind the commit index"
        );
        self.entries.clear();
        self.bytes = 0;
        self.snapshot_index = meta.index;
        self.snapshot_term = meta.term;
        self.committed = meta.index;
        self.unstable_from = meta.index + 1;
        self.persisted = self.persisted.min(meta.index);
        self.confs.restore(meta.conf_state.clone());
    }

    /// The snapshot handed out in a Ready is durable and applied.
    pub fn snapshot_persisted(&mut self, index: LogIndex) {
        if index == self.snapshot_index {
            self.persisted = self.persisted.max(index);
            self.applied = self.applied.max(index);
        }
    }
}

fn bytes_of(entries: &[Entry]) -> usize {
    entries.iter().map(Entry::size_bytes).sum()
}

fn take_bytes(entries: &[Entry], bytes_max: usize) -> Vec<Entry> {
    let mut bytes = 0;
    let mut taken = Vec::new();
    for entry in entries {
        bytes += entry.size_bytes();
        if !taken.is_empty() && bytes > bytes_max {
            break;
        }
        taken.push(entry.clone());
    }
    taken
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::EntryPayload;

    fn entries(terms: &[(LogIndex, Term)]) -> Vec<Entry> {
        terms
            .iter()
            .map(|&(index, term)| Entry {
                index,
                term,
                payload: EntryPayload::Empty,
            })
            .collect()
    }

    fn log_with_terms(terms: &[Term]) -> RaftLog {
        let list: Vec<(LogIndex, Term)> = terms
            .iter()
            .enumerate()
            .map(|(i, &t)| (i as u64 + 1, t))
            .collect();
        RaftLog::new(&SnapshotMeta::default(), entries(&list), 0, 0).unwrap()
    }

    #[test]
    fn conflicting_suffix_is_truncated_and_replaced() {
        let mut log = log_with_terms(&[1, 1, 2, 2]);
        let last = log.try_append(2, 1, &entries(&[(3, 3), (4, 3), (5, 3)]), false);
        assert_eq!(last, Ok(5));
        assert_eq!(log.term(3), Some(3));
        assert_eq!(log.last_index(), 5);
        assert_eq!(log.persisted, 2, "truncated entries are no longer durable");
        assert_eq!(log.unstable_entries().len(), 3);
    }

    #[test]
    fn matching_prefix_keeps_later_entries() {
        let mut log = log_with_terms(&[1, 1, 2, 2]);
        // An old, shorter append must not truncate what follows it (log matching).
        assert_eq!(log.try_append(1, 1, &entries(&[(2, 1)]), false), Ok(2));
        assert_eq!(log.last_index(), 4);
        assert_eq!(
            log.try_append(4, 3, &entries(&[(5, 3)]), false),
            Err(AppendRefusal::Mismatch)
        );
    }

    #[test]
    fn never_truncates_committed_entries() {
        let mut log = log_with_terms(&[1, 1, 2]);
        log.commit_to(3);
        assert_eq!(
            log.try_append(1, 1, &entries(&[(2, 5)]), false),
            Err(AppendRefusal::ConflictsWithCommitted)
        );
        assert_eq!(log.term(2), Some(1));
    }

    #[test]
    fn find_conflict_by_term_skips_a_whole_term() {
        let log = log_with_terms(&[1, 1, 2, 2, 2, 4]);
        assert_eq!(log.find_conflict_by_term(6, 3), (5, 2));
        assert_eq!(log.find_conflict_by_term(10, 1), (2, 1));
        assert_eq!(log.find_conflict_by_term(6, 0), (0, 0));
    }

    #[test]
    fn up_to_date_compares_last_term_then_index() {
        let log = log_with_terms(&[1, 2, 2]);
        assert!(log.is_up_to_date(3, 2));
        assert!(log.is_up_to_date(1, 3));
        assert!(!log.is_up_to_date(5, 1));
        assert!(!log.is_up_to_date(2, 2));
    }
}
