//! The application log: committed proposals in their one order, each known by its Raft index, kept
//! for reading over a bounded window and carried in snapshots.

use std::collections::VecDeque;

use ringraft_proto::LogRecord;

/// How much of the application log stays readable: the newest records up to both bounds (the
/// window travels in every snapshot, so its size is bounded in bytes too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub records: usize,
    pub bytes: usize,
}

impl Default for Retention {
    fn default() -> Retention {
        Retention {
            records: 100_000,
            bytes: 64 << 20,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppLog {
    records: VecDeque<LogRecord>,
    retention: Retention,
    /// Data bytes of the records in the window.
    bytes: usize,
    /// Highest Raft index applied into this log (proposal or not): readers wait on it.
    applied_index: u64,
    /// Every record below this index has been dropped from the window.
    first_index: u64,
}

impl AppLog {
    pub fn new(retention: Retention) -> AppLog {
        AppLog {
            records: VecDeque::new(),
            retention,
            bytes: 0,
            applied_index: 0,
            first_index: 1,
        }
    }

    pub fn from_parts(
        retention: Retention,
        first_index: u64,
        applied_index: u64,
        records: Vec<LogRecord>,
    ) -> AppLog {
        let mut log = AppLog {
            bytes: records.iter().map(|record| record.data.len()).sum(),
            records: records.into(),
            retention,
            applied_index,
            first_index,
        };
        log.trim();
        log
    }

    pub fn push(&mut self, record: LogRecord) {
        debug_assert!(record.index > self.applied_index);
        self.applied_index = record.index;
        self.bytes += record.data.len();
        self.records.push_back(record);
        self.trim();
    }

    /// Notes that entry `index` was applied even though it carried no proposal.
    pub fn mark_applied(&mut self, index: u64) {
        self.applied_index = self.applied_index.max(index);
    }

    fn trim(&mut self) {
        // The newest record always stays, whatever its size.
        while self.records.len() > 1
            && (self.records.len() > self.retention.records || self.bytes > self.retention.bytes)
        {
            if let Some(dropped) = self.records.pop_front() {
                self.bytes -= dropped.data.len();
                self.first_index = dropped.index + 1;
            }
        }
    }

    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// The lowest index a reader may still ask for.
    pub fn first_index(&self) -> u64 {
        self.first_index
    }

    pub fn records(&self) -> impl Iterator<Item = &LogRecord> {
        self.records.iter()
    }

    /// Up to `max` records with index >= `from`, or `Err(first_index)` when `from` fell out of the
    /// window (a reader must not silently miss records).
    pub fn read(&self, from: u64, max: usize) -> Result<Vec<LogRecord>, u64> {
        if from < self.first_index {
            return Err(self.first_index);
        }
        let start = self.records.partition_point(|record| record.index < from);
        Ok(self.records.range(start..).take(max).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(index: u64) -> LogRecord {
        LogRecord {
            index,
            data: index.to_le_bytes().to_vec(),
        }
    }

    #[test]
    fn reads_from_an_index_across_gaps() {
        let mut log = AppLog::new(Retention::default());
        for index in [2, 3, 7, 9] {
            log.push(record(index));
        }
        log.mark_applied(11);
        let got: Vec<u64> = log.read(4, 10).unwrap().iter().map(|r| r.index).collect();
        assert_eq!(got, vec![7, 9]);
        assert_eq!(log.read(1, 2).unwrap().len(), 2);
        assert!(log.read(12, 10).unwrap().is_empty());
        assert_eq!(log.applied_index(), 11);
    }

    #[test]
    fn retention_drops_the_oldest_and_reports_compaction() {
        let mut log = AppLog::new(Retention {
            records: 3,
            bytes: usize::MAX,
        });
        for index in 1..=5 {
            log.push(record(index));
        }
        assert_eq!(log.first_index(), 3);
        assert_eq!(log.read(2, 10), Err(3));
        let got: Vec<u64> = log.read(3, 10).unwrap().iter().map(|r| r.index).collect();
        assert_eq!(got, vec![3, 4, 5]);
    }

    #[test]
    fn retention_bounds_bytes_but_keeps_the_newest_record() {
        let mut log = AppLog::new(Retention {
            records: 100,
            bytes: 20,
        });
        for index in 1..=5 {
            log.push(record(index));
        }
        // Eight bytes each: two fit in twenty.
        assert_eq!(log.first_index(), 4);
        log.push(LogRecord {
            index: 6,
            data: vec![0; 100],
        });
        assert_eq!(log.first_index(), 6);
        assert_eq!(log.read(6, 10).unwrap().len(), 1);
    }
}
