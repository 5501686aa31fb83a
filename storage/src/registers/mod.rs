//! Durable acceptor and proposer state of the per-key registers (docs/storage.md, "Register
//! store"; docs/paxos.md, "Durability rule").
//!
//! A `RegisterStore` is a log of `ringraft_paxos::Record`s in the Raft WAL's segments and record
//! framing, plus a checkpoint file that replaces the log's prefix at compaction. It never looks
//! inside a record: replaying what `open` returns, in order, into `Acceptor::restore` and
//! `Proposer::restore` rebuilds the state. Deletes are the core's: a tombstone is a `Key` record
//! with an absent register; the acceptor emits `Forgot` once garbage collection saw the tombstone
//! on every acceptor, and the next checkpoint (built by the caller from the acceptor's live keys)
//! no longer holds the key.
//!
//! The shell's loop: `append` every Ready's `records` of a turn, `sync` once (one fdatasync: group
//! commit), then send the Readys' `persisted_messages`. `compact` when `needs_compaction`.
//!
//! The same fault policy as the Raft `Storage`: any I/O error poisons the store and every later
//! call fails; the node must stop.

pub mod format;
mod recovery;
mod writer;

use std::path::{Path, PathBuf};

use crate::error::StorageError;
use crate::fs::{fsync_dir, DirLock};
use crate::record::RECORD_HEADER_BYTES;
use crate::recovery::SegmentInfo;
use crate::storage::{ActiveSegment, SEGMENT_READ_FLOOR_BYTES};

/// Sizes and limits. Every limit also bounds what recovery believes from disk.
#[derive(Debug, Clone)]
pub struct RegisterStoreOptions {
    /// A log segment is closed and the next one started before a record would take it past
    /// this size (a record larger than it still gets a segment of its own).
    pub segment_bytes: u64,
    /// `needs_compaction()` once the log holds more than this many bytes since the last
    /// checkpoint.
    pub compact_after_bytes: u64,
    /// Largest record payload written or read back (one key's state: key, value and 50 bytes).
    pub record_bytes_max: usize,
}

impl Default for RegisterStoreOptions {
    fn default() -> Self {
        RegisterStoreOptions {
            segment_bytes: 64 << 20,
            compact_after_bytes: 64 << 20,
            record_bytes_max: 16 << 20,
        }
    }
}

const OPTION_BYTES_MIN: u64 = 256;
/// Appended records are handed to the kernel once this many bytes are buffered (and at `sync`).
const WRITE_BUFFER_BYTES: usize = 1 << 20;

impl RegisterStoreOptions {
    fn validate(&self) -> Result<(), StorageError> {
        if self.segment_bytes < OPTION_BYTES_MIN
            || (self.record_bytes_max as u64) < OPTION_BYTES_MIN
        {
            return Err(StorageError::InvalidRequest(format!(
                "segment_bytes and record_bytes_max must be at least {OPTION_BYTES_MIN}"
            )));
        }
        if self.record_bytes_max > (u32::MAX as usize) - RECORD_HEADER_BYTES {
            return Err(StorageError::InvalidRequest(
                "record_bytes_max too large".into(),
            ));
        }
        Ok(())
    }

    fn record_bytes_max_u32(&self) -> u32 {
        // validate() bounds it below u32::MAX.
        self.record_bytes_max as u32
    }

    /// Segments up to this size are read back even if `segment_bytes` was lowered since.
    fn segment_read_bytes_max(&self) -> u64 {
        self.segment_bytes.max(SEGMENT_READ_FLOOR_BYTES)
            + self.record_bytes_max as u64
            + 2 * RECORD_HEADER_BYTES as u64
    }
}

/// The register store of one node, in one directory (`<data_dir>/registers`) that it locks.
pub struct RegisterStore {
    dir: PathBuf,
    options: RegisterStoreOptions,
    _lock: DirLock,
    /// The newest checkpoint's sequence number: it covers every segment below it. `None`: no
    /// checkpoint yet, the log starts at segment 1.
    checkpoint_seq: Option<u64>,
    /// Closed segments at or above the checkpoint's sequence number, in order.
    closed_segments: Vec<SegmentInfo>,
    closed_bytes: u64,
    active: ActiveSegment,
    /// Something was appended since the last fdatasync.
    dirty: bool,
    poisoned: Option<String>,
    scratch: Vec<u8>,
    /// Test hook: compaction fails (as if the process died) after this many more steps.
    crash_after_compaction_steps: Option<u32>,
}

impl std::fmt::Debug for RegisterStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterStore")
            .field("dir", &self.dir)
            .field("checkpoint_seq", &self.checkpoint_seq)
            .field("active_segment", &self.active.info.path)
            .field("log_bytes", &self.log_bytes())
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

impl RegisterStore {
    /// Opens (creating if absent) `dir` (the daemon passes `<data_dir>/registers`), takes a lock
    /// file, recovers, and returns the store with the records to replay, in order, into
    /// `ringraft_paxos::Acceptor::restore` and `Proposer::restore` (the checkpoint's records
    /// first, then the log's).
    pub fn open(
        dir: &Path,
        options: RegisterStoreOptions,
    ) -> Result<(RegisterStore, Vec<ringraft_paxos::Record>), StorageError> {
        options.validate()?;
        if !dir.exists() {
            std::fs::create_dir_all(dir)
                .map_err(|e| StorageError::io("creating register directory", dir, e))?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                fsync_dir(parent)?;
            }
        }
        let lock = DirLock::acquire(dir)?;
        let recovered = recovery::recover(dir, &options)?;
        let mut segments = recovered.segments;
        let active = match segments.pop() {
            Some(info) => crate::storage::open_for_append(info)?,
            None => writer::create_log_segment(dir, recovered.log_start_seq)?,
        };
        let closed_bytes = segments.iter().map(|s| s.valid_bytes).sum();
        let store = RegisterStore {
            dir: dir.to_path_buf(),
            options,
            _lock: lock,
            checkpoint_seq: recovered.checkpoint_seq,
            closed_segments: segments,
            closed_bytes,
            active,
            dirty: false,
            poisoned: None,
            scratch: Vec::new(),
            crash_after_compaction_steps: None,
        };
        tracing::info!(
            dir = %store.dir.display(),
            records = recovered.records.len(),
            checkpoint_seq = ?store.checkpoint_seq,
            segments = store.closed_segments.len() + 1,
            "register store recovered"
        );
        Ok((store, recovered.records))
    }

    /// Buffers/writes one batch's records (a Ready's `records`). Not durable until `sync`. A
    /// record above `record_bytes_max` is refused (`InvalidRequest`) and then nothing of the
    /// batch is written.
    pub fn append(&mut self, records: &[ringraft_paxos::Record]) -> Result<(), StorageError> {
        self.guarded(|store| store.append_inner(records))
    }

    /// Makes every appended record durable with one fdatasync (none if nothing was appended):
    /// the daemon appends every Ready of a turn, then syncs once.
    pub fn sync(&mut self) -> Result<(), StorageError> {
        self.guarded(RegisterStore::sync_inner)
    }

    /// True once the log holds more than `compact_after_bytes` since the last checkpoint.
    pub fn needs_compaction(&self) -> bool {
        self.log_bytes() > self.options.compact_after_bytes
    }

    /// Writes a checkpoint holding exactly `live` (records whose replay gives the current state:
    /// `Record::Forgot { key: vec![], floor }` for the acceptor's floor, a
    /// `Record::BallotsReserved`, then one `Record::Key` per held key), makes it durable (file
    /// fsync, rename, directory fsync), then removes the log segments it covers. A crash at any
    /// point leaves either the old or the new state recoverable. Records appended before are
    /// made durable too (they are in the segments before the checkpoint's).
    pub fn compact(
        &mut self,
        live: impl IntoIterator<Item = ringraft_paxos::Record>,
    ) -> Result<(), StorageError> {
        self.guarded(|store| store.compact_inner(live.into_iter()))
    }

    /// Bytes of log (segment files, headers included, and what is buffered) since the last
    /// checkpoint.
    pub fn log_bytes(&self) -> u64 {
        self.closed_bytes + self.active.bytes()
    }

    /// Test hook: the next `compact` stops after `steps` of its durable steps, failing as a crash
    /// there would (the store is then poisoned; drop it and reopen the directory).
    #[doc(hidden)]
    pub fn inject_crash_in_compaction(&mut self, steps: u32) {
        self.crash_after_compaction_steps = Some(steps);
    }

    fn guarded<T>(
        &mut self,
        operation: impl FnOnce(&mut RegisterStore) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        if let Some(reason) = &self.poisoned {
            return Err(StorageError::Poisoned(reason.clone()));
        }
        let result = operation(self);
        if let Err(error) = &result {
            if error.is_fatal() {
                tracing::error!(%error, dir = %self.dir.display(), "register store failed; refusing all further writes");
                self.poisoned = Some(error.to_string());
            }
        }
        result
    }
}
