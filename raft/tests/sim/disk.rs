//! A simulated disk: writes land in a volatile queue and become durable only at fsync. A crash
//! keeps a prefix of the queued writes (a write-ahead log recovers up to its first torn record, so
//! what survives is always a prefix) and loses the rest.
//!
//! Snapshots made by compaction take a separate path, like the daemon's snapshot files (temp file,
//! fsync, rename): they are durable as soon as they are written, independently of the log.

use std::collections::VecDeque;

use ringraft_raft::{Entry, HardState, LogIndex, Snapshot};

/// One unit of the write-ahead log; a crash keeps or loses each unit as a whole.
#[derive(Debug, Clone)]
enum LogWrite {
    /// A snapshot received from the leader: replaces the whole log.
    InstallSnapshot(Snapshot),
    /// An entry; `truncate` drops the stored entries from `entry.index` on first.
    Entry {
        entry: Entry,
        truncate: bool,
    },
    HardState(HardState),
}

/// What a node finds on its disk when it starts.
#[derive(Debug, Clone, Default)]
pub struct DurableState {
    pub hard_state: HardState,
    pub snapshot: Option<Snapshot>,
    /// Entries after the snapshot's index, contiguous.
    pub entries: Vec<Entry>,
}

impl DurableState {
    fn snapshot_index(&self) -> LogIndex {
        self.snapshot.as_ref().map_or(0, |s| s.meta.index)
    }

    /// Whether some entry at `index` survives a crash (for indices the shell compacted away).
    pub fn holds_index(&self, index: LogIndex) -> bool {
        index <= self.snapshot_index() + self.entries.len() as u64
    }

    /// Whether the entry (`index`, `term`) survives a crash: it is in the durable log, or a
    /// durable snapshot covers its index (snapshots hold committed state only).
    pub fn holds(&self, index: LogIndex, term: u64) -> bool {
        if index <= self.snapshot_index() {
            return true;
        }
        self.entries
            .get((index - self.snapshot_index() - 1) as usize)
            .is_some_and(|e| e.term == term)
    }

    fn apply(&mut self, write: LogWrite) {
        match write {
            LogWrite::InstallSnapshot(snapshot) => {
                if snapshot.meta.index >= self.snapshot_index() || self.snapshot.is_none() {
                    self.entries.clear();
                    self.snapshot = Some(snapshot);
                }
            }
            LogWrite::Entry { entry, truncate } => {
                if truncate {
                    self.entries.retain(|e| e.index < entry.index);
                }
                if entry.index <= self.snapshot_index() {
                    return;
                }
                let expected = self.snapshot_index() + self.entries.len() as u64 + 1;
                if entry.index == expected {
                    self.entries.push(entry);
                }
                // An entry that would leave a gap follows a snapshot that replaced the log while
                // it was queued; the core sends what follows the snapshot again.
            }
            LogWrite::HardState(hard_state) => self.hard_state = hard_state,
        }
    }

    /// A compaction snapshot: entries up to its index are covered by it.
    fn compact(&mut self, snapshot: Snapshot) {
        if snapshot.meta.index <= self.snapshot_index() && self.snapshot.is_some() {
            return;
        }
        let index = snapshot.meta.index;
        let matches = self
            .entries
            .iter()
            .any(|e| e.index == index && e.term == snapshot.meta.term);
        if matches {
            self.entries.retain(|e| e.index > index);
        } else {
            self.entries.clear();
        }
        self.snapshot = Some(snapshot);
    }
}

#[derive(Debug, Default)]
pub struct SimDisk {
    durable: DurableState,
    volatile: VecDeque<LogWrite>,
    /// Durable writes so far, for statistics.
    pub fsyncs: u64,
}

impl SimDisk {
    pub fn new(initial: DurableState) -> SimDisk {
        SimDisk {
            durable: initial,
            ..SimDisk::default()
        }
    }

    pub fn write_snapshot(&mut self, snapshot: Snapshot) {
        self.volatile.push_back(LogWrite::InstallSnapshot(snapshot));
    }

    /// Queues `entries`, which replace the stored log from `entries[0].index` on.
    pub fn write_entries(&mut self, entries: &[Entry]) {
        for (i, entry) in entries.iter().enumerate() {
            self.volatile.push_back(LogWrite::Entry {
                entry: entry.clone(),
                truncate: i == 0,
            });
        }
    }

    pub fn write_hard_state(&mut self, hard_state: HardState) {
        self.volatile.push_back(LogWrite::HardState(hard_state));
    }

    pub fn fsync(&mut self) {
        while let Some(write) = self.volatile.pop_front() {
            self.durable.apply(write);
        }
        self.fsyncs += 1;
    }

    pub fn unsynced_writes(&self) -> usize {
        self.volatile.len()
    }

    /// Writes a compaction snapshot durably (its own file) and drops the log behind it.
    pub fn persist_compaction(&mut self, snapshot: Snapshot) {
        self.durable.compact(snapshot);
    }

    /// The power goes out: the first `keep` queued writes reached the platter, the rest are lost.
    /// Returns what the node will find when it restarts.
    pub fn crash(&mut self, keep: usize) -> DurableState {
        for write in self.volatile.drain(..).take(keep) {
            self.durable.apply(write);
        }
        self.durable.clone()
    }

    pub fn durable(&self) -> &DurableState {
        &self.durable
    }
}

/// The shell hands each Ready's writes over through the core's own types: the acknowledgements
/// come out only after `sync`, so the shell cannot break the durability rule by mistake.
impl ringraft_raft::DurableLog for SimDisk {
    type Error = std::convert::Infallible;

    fn write(&mut self, batch: ringraft_raft::WriteBatch<'_>) -> Result<(), Self::Error> {
        if let Some(snapshot) = batch.snapshot {
            self.write_snapshot(snapshot.clone());
        }
        self.write_entries(batch.entries);
        if let Some(hard_state) = batch.hard_state {
            self.write_hard_state(hard_state);
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), Self::Error> {
        self.fsync();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringraft_raft::{EntryPayload, SnapshotMeta};

    fn entry(index: LogIndex, term: u64) -> Entry {
        Entry {
            index,
            term,
            payload: EntryPayload::Empty,
        }
    }

    fn indices(state: &DurableState) -> Vec<(LogIndex, u64)> {
        state.entries.iter().map(|e| (e.index, e.term)).collect()
    }

    fn snapshot(index: LogIndex, term: u64) -> Snapshot {
        Snapshot {
            meta: SnapshotMeta {
                index,
                term,
                ..SnapshotMeta::default()
            },
            data: vec![],
        }
    }

    #[test]
    fn unsynced_writes_are_lost_and_synced_ones_kept() {
        let mut disk = SimDisk::default();
        disk.write_entries(&[entry(1, 1), entry(2, 1)]);
        disk.write_hard_state(HardState {
            term: 1,
            vote: Some(1),
            commit: 0,
        });
        disk.fsync();
        disk.write_entries(&[entry(3, 1)]);
        disk.write_hard_state(HardState {
            term: 2,
            vote: None,
            commit: 2,
        });
        assert_eq!(disk.unsynced_writes(), 2);
        let after = disk.crash(0);
        assert_eq!(indices(&after), vec![(1, 1), (2, 1)]);
        assert_eq!(after.hard_state.term, 1);
    }

    #[test]
    fn crash_keeps_a_prefix_of_queued_writes() {
        let mut disk = SimDisk::default();
        disk.write_entries(&[entry(1, 1), entry(2, 1), entry(3, 1)]);
        disk.write_hard_state(HardState {
            term: 1,
            vote: None,
            commit: 3,
        });
        let after = disk.crash(2);
        assert_eq!(indices(&after), vec![(1, 1), (2, 1)]);
        assert_eq!(
            after.hard_state,
            HardState::default(),
            "written after the lost entry"
        );
    }

    #[test]
    fn conflicting_entries_truncate_the_stored_suffix() {
        let mut disk = SimDisk::default();
        disk.write_entries(&[entry(1, 1), entry(2, 1), entry(3, 1)]);
        disk.fsync();
        disk.write_entries(&[entry(2, 2)]);
        disk.fsync();
        assert_eq!(indices(disk.durable()), vec![(1, 1), (2, 2)]);
    }

    #[test]
    fn installed_snapshot_replaces_log_and_compaction_keeps_the_tail() {
        let mut disk = SimDisk::default();
        disk.write_entries(&[entry(1, 1), entry(2, 1), entry(3, 1)]);
        disk.fsync();
        disk.persist_compaction(snapshot(2, 1));
        assert_eq!(indices(disk.durable()), vec![(3, 1)]);
        disk.write_snapshot(snapshot(10, 3));
        disk.write_entries(&[entry(11, 3)]);
        disk.fsync();
        assert_eq!(indices(disk.durable()), vec![(11, 3)]);
        assert_eq!(
            disk.durable().snapshot.as_ref().map(|s| s.meta.index),
            Some(10)
        );
    }

    #[test]
    fn compaction_is_durable_without_fsync() {
        let mut disk = SimDisk::default();
        disk.write_entries(&[entry(1, 1), entry(2, 1)]);
        disk.persist_compaction(snapshot(2, 1));
        let after = disk.crash(0);
        assert_eq!(after.snapshot.map(|s| s.meta.index), Some(2));
        assert!(after.entries.is_empty());
    }
}
