//! What an upstream serves its downstreams from: its latest snapshot plus a bounded tail of the
//! committed entries after it, in memory. A voter fills it from its Raft commits, an observer
//! from what it applied.

use std::collections::VecDeque;

use crate::types::{Entry, LogIndex, Snapshot, Term};

#[derive(Debug, Clone)]
pub(crate) struct ServedLog {
    snapshot: Option<Snapshot>,
    /// Entries after the snapshot's index (or after `base` without one), contiguous.
    tail: VecDeque<Entry>,
    tail_bytes: u64,
    /// The index the tail follows when there is no snapshot (0 for a log from the start).
    base: LogIndex,
    base_term: Term,
}

pub(crate) enum Served {
    Entries(Vec<Entry>),
    /// The tail starts after `from`: the downstream needs this snapshot.
    SnapshotNeeded(Snapshot),
    /// `from` is beyond what this log holds, or there is neither entry nor snapshot for it: hold
    /// the request until something arrives.
    Nothing,
}

impl ServedLog {
    pub(crate) fn new(base: LogIndex, base_term: Term, snapshot: Option<Snapshot>) -> ServedLog {
        let (base, base_term) = match &snapshot {
            Some(s) => (s.index, s.term),
            None => (base, base_term),
        };
        ServedLog {
            snapshot,
            tail: VecDeque::new(),
            tail_bytes: 0,
            base,
            base_term,
        }
    }

    pub(crate) fn last_index(&self) -> LogIndex {
        self.tail.back().map_or(self.base, |e| e.index)
    }

    pub(crate) fn last_term(&self) -> Term {
        self.tail.back().map_or(self.base_term, |e| e.term)
    }

    pub(crate) fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    pub(crate) fn tail_len(&self) -> usize {
        self.tail.len()
    }

    pub(crate) fn tail_bytes(&self) -> u64 {
        self.tail_bytes
    }

    /// Append committed entries; they must follow the last one (the session checked them). A
    /// non-contiguous batch is refused whole: serving a log with a hole would spread it.
    pub(crate) fn append(&mut self, entries: &[Entry]) -> Result<(), LogIndex> {
        let contiguous = (self.last_index() + 1..)
            .zip(entries)
            .all(|(expected, e)| e.index == expected);
        if !contiguous {
            return Err(self.last_index());
        }
        for entry in entries {
            self.tail_bytes += entry.size_bytes();
            self.tail.push_back(entry.clone());
        }
        Ok(())
    }

    /// Replace everything with a snapshot (an observer that installed one).
    pub(crate) fn install(&mut self, snapshot: Snapshot) {
        self.base = snapshot.index;
        self.base_term = snapshot.term;
        self.tail.clear();
        self.tail_bytes = 0;
        self.snapshot = Some(snapshot);
    }

    /// A newer snapshot of our own state (the shell's answer to `SnapshotWanted`), at or below the
    /// last index; entries it covers leave the tail once the tail is over its bounds, oldest first.
    pub(crate) fn set_snapshot(&mut self, snapshot: Snapshot) {
        if snapshot.index > self.last_index()
            || self
                .snapshot
                .as_ref()
                .is_some_and(|s| s.index >= snapshot.index)
        {
            return;
        }
        self.snapshot = Some(snapshot);
    }

    /// Drop covered entries while over the bounds; true if still over them (a newer snapshot is
    /// needed to trim further).
    pub(crate) fn trim(&mut self, entries_max: usize, bytes_max: u64) -> bool {
        let covered = self.snapshot.as_ref().map_or(0, |s| s.index);
        while (self.tail.len() > entries_max || self.tail_bytes > bytes_max)
            && self.tail.front().is_some_and(|e| e.index <= covered)
        {
            if let Some(e) = self.tail.pop_front() {
                self.tail_bytes -= e.size_bytes();
                self.base = e.index;
                self.base_term = e.term;
            }
        }
        self.tail.len() > entries_max || self.tail_bytes > bytes_max
    }

    /// What to answer a fetch from `from`, at most `max_bytes` of entries (at least one entry if
    /// any is there, so a large entry never blocks the stream).
    pub(crate) fn serve(&self, from: LogIndex, max_bytes: u64) -> Served {
        let first = self.tail.front().map_or(self.base + 1, |e| e.index);
        if from < first {
            // The entries before the tail are in the snapshot, if we have one that covers them.
            return match &self.snapshot {
                Some(s) if s.index + 1 >= first => Served::SnapshotNeeded(s.clone()),
                _ => Served::Nothing,
            };
        }
        if from > self.last_index() {
            return Served::Nothing;
        }
        let skip = (from - first) as usize;
        let mut out = Vec::new();
        let mut bytes = 0;
        for entry in self.tail.iter().skip(skip) {
            if !out.is_empty() && bytes + entry.size_bytes() > max_bytes {
                break;
            }
            bytes += entry.size_bytes();
            out.push(entry.clone());
        }
        Served::Entries(out)
    }
}
