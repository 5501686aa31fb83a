//! The shell's view of a core's log, rebuilt from what the core hands out (`Ready::entries`,
//! `Ready::snapshot`, compaction), with the chain hash of every prefix. Checkers compare these
//! chain hashes across nodes instead of walking whole logs.

use ringraft_raft::{Entry, LogIndex, Term};

use super::state_machine::chain_hash;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MirroredEntry {
    pub index: LogIndex,
    pub term: Term,
    /// Chain hash of the log prefix ending here.
    pub chain: u64,
}

#[derive(Debug, Clone, Default)]
pub struct LogMirror {
    base_index: LogIndex,
    base_term: Term,
    base_chain: u64,
    /// Entries `base_index + 1 ..`.
    entries: Vec<MirroredEntry>,
}

impl LogMirror {
    /// A log that starts after the prefix (`index`, `term`) whose chain hash is `chain`.
    pub fn starting_at(index: LogIndex, term: Term, chain: u64) -> LogMirror {
        LogMirror {
            base_index: index,
            base_term: term,
            base_chain: chain,
            entries: Vec::new(),
        }
    }

    pub fn last_index(&self) -> LogIndex {
        self.base_index + self.entries.len() as u64
    }

    pub fn last_term(&self) -> Term {
        self.entries.last().map_or(self.base_term, |e| e.term)
    }

    /// The chain hash of the prefix ending at `index`, if the mirror still covers it.
    pub fn chain_at(&self, index: LogIndex) -> Option<u64> {
        if index == self.base_index {
            return Some(self.base_chain);
        }
        if index < self.base_index {
            return None;
        }
        self.entries
            .get((index - self.base_index - 1) as usize)
            .map(|e| e.chain)
    }

    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index == self.base_index {
            return Some(self.base_term);
        }
        self.entries
            .get(index.checked_sub(self.base_index + 1)? as usize)
            .map(|e| e.term)
    }

    /// Replaces the log from `entries[0].index` on, as the shell's storage does. Returns the new
    /// entries with their chain hashes, or why the batch breaks the storage contract.
    pub fn append(&mut self, entries: &[Entry]) -> Result<Vec<MirroredEntry>, String> {
        let Some(first) = entries.first() else {
            return Ok(Vec::new());
        };
        if first.index <= self.base_index {
            return Err(format!(
                "Ready entries start at {} but the log is compacted through {}",
                first.index, self.base_index
            ));
        }
        if first.index > self.last_index() + 1 {
            return Err(format!(
                "Ready entries start at {} after a gap (last index {})",
                first.index,
                self.last_index()
            ));
        }
        self.entries
            .truncate((first.index - self.base_index - 1) as usize);
        let mut added = Vec::with_capacity(entries.len());
        for entry in entries {
            if entry.index != self.last_index() + 1 {
                return Err(format!(
                    "Ready entries not contiguous: {} after {}",
                    entry.index,
                    self.last_index()
                ));
            }
            if entry.term < self.last_term() {
                return Err(format!(
                    "entry ({}, term {}) follows an entry of term {}",
                    entry.index,
                    entry.term,
                    self.last_term()
                ));
            }
            let chain = chain_hash(
                self.chain_at(entry.index - 1)
                    .expect("previous entry is covered"),
                entry.index,
                entry.term,
                &entry.payload,
            );
            let mirrored = MirroredEntry {
                index: entry.index,
                term: entry.term,
                chain,
            };
            self.entries.push(mirrored);
            added.push(mirrored);
        }
        Ok(added)
    }

    /// A snapshot replaced the whole log.
    pub fn install_snapshot(&mut self, index: LogIndex, term: Term, chain: u64) {
        *self = LogMirror::starting_at(index, term, chain);
    }

    /// Compaction dropped the entries through `index` (which the mirror covers).
    pub fn compact(&mut self, index: LogIndex) {
        if index <= self.base_index {
            return;
        }
        let (Some(term), Some(chain)) = (self.term_at(index), self.chain_at(index)) else {
            return;
        };
        self.entries.drain(..(index - self.base_index) as usize);
        self.base_index = index;
        self.base_term = term;
        self.base_chain = chain;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringraft_raft::EntryPayload;

    fn entry(index: LogIndex, term: Term) -> Entry {
        Entry {
            index,
            term,
            payload: EntryPayload::Empty,
        }
    }

    #[test]
    fn same_prefix_same_chain_and_truncation_replaces_the_suffix() {
        let mut a = LogMirror::default();
        let mut b = LogMirror::default();
        a.append(&[entry(1, 1), entry(2, 1), entry(3, 1)]).unwrap();
        b.append(&[entry(1, 1), entry(2, 1)]).unwrap();
        assert_eq!(a.chain_at(2), b.chain_at(2));
        b.append(&[entry(2, 2)]).unwrap();
        assert_ne!(a.chain_at(2), b.chain_at(2));
        assert_eq!(b.last_index(), 2);
        a.compact(2);
        assert_eq!(a.chain_at(1), None);
        assert!(a.chain_at(3).is_some());
    }

    #[test]
    fn contract_violations_are_reported() {
        let mut log = LogMirror::default();
        assert!(log.append(&[entry(2, 1)]).is_err(), "gap");
        log.append(&[entry(1, 2)]).unwrap();
        assert!(log.append(&[entry(2, 1)]).is_err(), "term went down");
        assert!(log.append(&[entry(2, 2), entry(4, 2)]).is_err(), "holes");
        log.install_snapshot(10, 3, 77);
        assert!(log.append(&[entry(10, 3)]).is_err(), "below the snapshot");
        assert_eq!(log.chain_at(10), Some(77));
    }
}
