//! The `Storage` handle: group-committed appends, hard state, snapshots and compaction.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use ringraft_raft::{Entry, HardState, InitialState, LogIndex, Snapshot, Term};

use crate::codec::{
    encode_entry, encode_wal_record, entry_payload_bytes, SegmentHeader, SnapshotMarker, WalRecord,
};
use crate::error::StorageError;
use crate::fs::{
    fsync_dir, parse_segment_file_name, parse_snapshot_file_name, segment_file_name, DirLock,
    TEMP_SUFFIX,
};
use crate::record::{encode_record, RECORD_HEADER_BYTES};
use crate::recovery::{replay, SegmentInfo, SEGMENT_HEADER_RECORD_BYTES};
use crate::snapshot_file::{read_snapshot_file, write_snapshot_file, SNAPSHOT_CHUNK_BYTES};

/// Limits and sizes. Every limit also bounds what recovery will believe from disk.
#[derive(Debug, Clone)]
pub struct StorageOptions {
    /// A segment is closed and a new one started before a record would take it past this size
    /// (a single record larger than this still gets a segment of its own).
    pub segment_bytes_max: u64,
    /// Largest record payload accepted when writing and when reading back: bounds one entry.
    pub record_bytes_max: u32,
    /// Largest snapshot data accepted when writing and when reading back.
    pub snapshot_bytes_max: u64,
    /// Encoded records are buffered in memory and written out once the buffer holds this much
    /// (and on `sync`).
    pub write_buffer_bytes: usize,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            segment_bytes_max: 64 << 20,
            record_bytes_max: 16 << 20,
            snapshot_bytes_max: 1 << 30,
            write_buffer_bytes: 1 << 20,
        }
    }
}

/// Segments at least this large are read back even if `segment_bytes_max` was lowered since.
pub(crate) const SEGMENT_READ_FLOOR_BYTES: u64 = 1 << 30;
const OPTION_BYTES_MIN: u64 = 256;

impl StorageOptions {
    fn validate(&self) -> Result<(), StorageError> {
        if self.segment_bytes_max < OPTION_BYTES_MIN
            || u64::from(self.record_bytes_max) < OPTION_BYTES_MIN
        {
            return Err(StorageError::InvalidRequest(format!(
                "segment_bytes_max and record_bytes_max must be at least {OPTION_BYTES_MIN}"
            )));
        }
        if self.record_bytes_max > u32::MAX - RECORD_HEADER_BYTES as u32 {
            return Err(StorageError::InvalidRequest(
                "record_bytes_max too large".into(),
            ));
        }
        Ok(())
    }

    fn segment_read_bytes_max(&self) -> u64 {
        self.segment_bytes_max.max(SEGMENT_READ_FLOOR_BYTES)
            + u64::from(self.record_bytes_max)
            + 2 * RECORD_HEADER_BYTES as u64
    }
}

/// What was durable when the directory was opened; maps onto the Raft core's `InitialState`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recovered {
    pub hard_state: HardState,
    pub snapshot: Option<Snapshot>,
    /// Entries after the snapshot (or from index 1), contiguous, in index order.
    pub entries: Vec<Entry>,
}

impl Recovered {
    /// The core's start-up state. `applied` is what the application's state machine has already
    /// applied (at least the snapshot index, which this raises it to).
    pub fn into_initial_state(self, applied: LogIndex) -> InitialState {
        let (snapshot, snapshot_data) = match self.snapshot {
            Some(snapshot) => (Some(snapshot.meta), snapshot.data),
            None => (None, Vec::new()),
        };
        let snapshot_index = snapshot.as_ref().map_or(0, |meta| meta.index);
        InitialState {
            hard_state: self.hard_state,
            snapshot,
            snapshot_data,
            entries: self.entries,
            applied: applied.max(snapshot_index),
        }
    }
}

/// The segment appends go to (the register store's log uses it too, with `max_entry_index` 0).
pub(crate) struct ActiveSegment {
    pub(crate) info: SegmentInfo,
    file: File,
    /// Encoded records not yet handed to the kernel.
    pub(crate) buffer: Vec<u8>,
}

impl ActiveSegment {
    pub(crate) fn bytes(&self) -> u64 {
        self.info.valid_bytes + self.buffer.len() as u64
    }

    pub(crate) fn flush(&mut self) -> Result<(), StorageError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.file
            .write_all(&self.buffer)
            .map_err(|e| StorageError::io("writing", &self.info.path, e))?;
        self.info.valid_bytes += self.buffer.len() as u64;
        self.buffer.clear();
        Ok(())
    }

    pub(crate) fn flush_and_sync(&mut self) -> Result<(), StorageError> {
        self.flush()?;
        self.file
            .sync_data()
            .map_err(|e| StorageError::io("fdatasyncing", &self.info.path, e))
    }
}

/// Durable storage for one node's Raft log, in one directory that it locks.
///
/// Writes are group-committed: `append`, `save_hard_state` and the WAL marker of `save_snapshot`
/// are buffered, and `sync` makes all of them durable with one fdatasync. After any I/O failure
/// the handle is poisoned and every later call fails: the node must stop.
pub struct Storage {
    dir: PathBuf,
    options: StorageOptions,
    _lock: DirLock,
    closed_segments: Vec<SegmentInfo>,
    active: ActiveSegment,
    base_index: LogIndex,
    base_term: Term,
    /// Terms of the entries `base_index + 1 ..= last_index`.
    terms: Vec<Term>,
    snapshot_index: Option<LogIndex>,
    hard_state: HardState,
    written_hard_state: HardState,
    /// Something was written since the last fdatasync.
    dirty: bool,
    poisoned: Option<String>,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("dir", &self.dir)
            .field("first_index", &self.first_index())
            .field("last_index", &self.last_index())
            .field("snapshot_index", &self.snapshot_index)
            .field("active_segment", &self.active.info.path)
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

struct Listing {
    segments: Vec<(u64, PathBuf)>,
    snapshots: Vec<(LogIndex, PathBuf)>,
}

fn list_dir(dir: &Path) -> Result<Listing, StorageError> {
    let mut listing = Listing {
        segments: Vec::new(),
        snapshots: Vec::new(),
    };
    let reader = std::fs::read_dir(dir).map_err(|e| StorageError::io("listing", dir, e))?;
    for item in reader {
        let item = item.map_err(|e| StorageError::io("listing", dir, e))?;
        let name = item.file_name();
        let Some(name) = name.to_str() else { continue };
        let path = item.path();
        if let Some(seq) = parse_segment_file_name(name) {
            listing.segments.push((seq, path));
        } else if let Some(index) = parse_snapshot_file_name(name) {
            listing.snapshots.push((index, path));
        } else if name.starts_with("snap-") && name.ends_with(TEMP_SUFFIX) {
            tracing::info!(path = %path.display(), "removing a snapshot temp file left by a crash");
            std::fs::remove_file(&path)
                .map_err(|e| StorageError::io("removing temp file", &path, e))?;
        }
    }
    listing.segments.sort_unstable();
    listing.snapshots.sort_unstable();
    for pair in listing.segments.windows(2) {
        if pair[1].0 != pair[0].0 + 1 {
            return Err(StorageError::Missing {
                path: dir.join(segment_file_name(pair[0].0 + 1)),
                reason: format!(
                    "WAL segments {} and {} exist but not the ones between",
                    pair[0].0, pair[1].0
                ),
            });
        }
    }
    Ok(listing)
}

impl Storage {
    /// Opens (creating if needed) and locks `dir`, recovers its contents and returns them.
    pub fn open(dir: &Path, options: StorageOptions) -> Result<(Storage, Recovered), StorageError> {
        options.validate()?;
        if !dir.exists() {
            std::fs::create_dir_all(dir)
                .map_err(|e| StorageError::io("creating data directory", dir, e))?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                fsync_dir(parent)?;
            }
        }
        let lock = DirLock::acquire(dir)?;
        let listing = list_dir(dir)?;
        let snapshot = match listing.snapshots.last() {
            Some((index, path)) => {
                let snapshot = read_snapshot_file(path, options.snapshot_bytes_max)?;
                if snapshot.meta.index != *index {
                    return Err(StorageError::corrupt(
                        path,
                        0,
                        format!(
                            "file name says index {index}, contents {}",
                            snapshot.meta.index
                        ),
                    ));
                }
                Some(snapshot)
            }
            None => None,
        };
        let replayed = replay(
            dir,
            &listing.segments,
            snapshot.as_ref().map(|s| &s.meta),
            options.record_bytes_max,
            options.segment_read_bytes_max(),
        )?;
        let mut closed_segments = replayed.segments;
        let last_seq = listing.segments.last().map_or(0, |(seq, _)| *seq);
        let mut storage_parts = (replayed.base_index, replayed.base_term, replayed.hard_state);
        let terms = replayed.entries.iter().map(|e| e.term).collect();
        let active = match closed_segments.pop() {
            Some(info) => open_for_append(info)?,
            None => {
                let header = SegmentHeader {
                    seq: last_seq + 1,
                    base_index: storage_parts.0,
                    base_term: storage_parts.1,
                    last_index: storage_parts.0 + replayed.entries.len() as u64,
                    hard_state: storage_parts.2,
                };
                create_segment(dir, &header)?
            }
        };
        let mut storage = Storage {
            dir: dir.to_path_buf(),
            options,
            _lock: lock,
            closed_segments,
            active,
            base_index: storage_parts.0,
            base_term: storage_parts.1,
            terms,
            snapshot_index: snapshot.as_ref().map(|s| s.meta.index),
            hard_state: storage_parts.2,
            written_hard_state: storage_parts.2,
            dirty: false,
            poisoned: None,
            scratch: Vec::new(),
        };
        if replayed.snapshot_marker_missing {
            let marker = SnapshotMarker {
                index: storage.base_index,
                term: storage.base_term,
                last_index_after: storage.last_index(),
            };
            storage.write_record(&WalRecord::SnapshotMarker(marker))?;
            storage.sync_now()?;
        }
        for (index, path) in &listing.snapshots {
            if Some(*index) != storage.snapshot_index {
                std::fs::remove_file(path)
                    .map_err(|e| StorageError::io("removing an old snapshot", path, e))?;
            }
        }
        storage_parts.2 = storage.hard_state;
        let recovered = Recovered {
            hard_state: storage_parts.2,
            snapshot,
            entries: replayed.entries,
        };
        tracing::info!(
            dir = %dir.display(),
            first_index = storage.first_index(),
            last_index = storage.last_index(),
            snapshot_index = ?storage.snapshot_index,
            segments = storage.closed_segments.len() + 1,
            "storage recovered"
        );
        Ok((storage, recovered))
    }

    /// The index of the first entry the WAL holds after the snapshot.
    pub fn first_index(&self) -> LogIndex {
        self.base_index + 1
    }

    pub fn last_index(&self) -> LogIndex {
        self.base_index + self.terms.len() as u64
    }

    pub fn snapshot_index(&self) -> Option<LogIndex> {
        self.snapshot_index
    }

    /// The latest hard state passed to `save_hard_state` (durable only after `sync`).
    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    /// The term of the entry at `index`, if the log (or the snapshot boundary) knows it.
    pub fn term(&self, index: LogIndex) -> Option<Term> {
        if index == self.base_index {
            return Some(self.base_term);
        }
        let offset = index.checked_sub(self.base_index + 1)?;
        self.terms.get(usize::try_from(offset).ok()?).copied()
    }

    /// Number of WAL segment files, the active one included.
    pub fn segment_count(&self) -> usize {
        self.closed_segments.len() + 1
    }

    /// Appends `entries` (contiguous indices), first truncating any stored entries from
    /// `entries[0].index` on. Entries at or below the snapshot index are skipped: the snapshot
    /// already covers them. Durable after the next `sync`.
    pub fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        self.guarded(|storage| storage.append_inner(entries))
    }

    /// Records the hard state; it is written at the next `sync`, after that batch's entries.
    pub fn save_hard_state(&mut self, hard_state: &HardState) -> Result<(), StorageError> {
        self.guarded(|storage| {
            storage.hard_state = *hard_state;
            Ok(())
        })
    }

    /// Makes everything appended or saved so far durable (one fdatasync, none if nothing changed).
    pub fn sync(&mut self) -> Result<(), StorageError> {
        self.guarded(Storage::sync_now)
    }

    /// Stores a snapshot. The snapshot file is durable when this returns; the log change it implies
    /// is durable after the next `sync` (recovery completes it if the node stops in between).
    ///
    /// If the log holds an entry at `meta.index` with `meta.term`, the entries after it are kept;
    /// otherwise the whole log is discarded (Raft figure 13, InstallSnapshot steps 6 and 7).
    pub fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
        self.guarded(|storage| storage.save_snapshot_inner(snapshot))
    }

    /// Deletes WAL segments all of whose entries are at or below both `index` and the snapshot
    /// index. Syncs first, so the snapshot these segments are traded for is in the WAL for good.
    pub fn compact(&mut self, index: LogIndex) -> Result<(), StorageError> {
        self.guarded(|storage| storage.compact_inner(index))
    }

    fn guarded<T>(
        &mut self,
        operation: impl FnOnce(&mut Storage) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        if let Some(reason) = &self.poisoned {
            return Err(StorageError::Poisoned(reason.clone()));
        }
        let result = operation(self);
        if let Err(error) = &result {
            if error.is_fatal() {
                tracing::error!(%error, dir = %self.dir.display(), "storage failed; refusing all further writes");
                self.poisoned = Some(error.to_string());
            }
        }
        result
    }

    fn append_inner(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        for (position, entry) in entries.iter().enumerate() {
            if entry.index != first.index + position as u64 {
                return Err(StorageError::InvalidRequest(format!(
                    "entries are not contiguous: index {} at position {position} after {}",
                    entry.index, first.index
                )));
            }
            if entry_payload_bytes(entry) > self.options.record_bytes_max as usize {
                return Err(StorageError::InvalidRequest(format!(
                    "entry {} encodes to {} bytes, above record_bytes_max {}",
                    entry.index,
                    entry_payload_bytes(entry),
                    self.options.record_bytes_max
                )));
            }
        }
        if first.index == 0 || first.index > self.last_index() + 1 {
            return Err(StorageError::InvalidRequest(format!(
                "append starting at index {} would leave a gap after the last index {}",
                first.index,
                self.last_index()
            )));
        }
        let skip = self.base_index.saturating_sub(first.index - 1) as usize;
        let Some(kept) = entries.get(skip..).filter(|kept| !kept.is_empty()) else {
            return Ok(());
        };
        for (position, entry) in kept.iter().enumerate() {
            self.scratch.clear();
            let kind = encode_entry(entry, &mut self.scratch);
            self.write_scratch(kind)?;
            // Truncated only once the first entry is written: a rotation inside `write_scratch`
            // states the log in the new segment's header, and a crash may lose the entry that
            // follows it, so the header must not yet know of the truncation that entry makes.
            if position == 0 {
                self.terms
                    .truncate((entry.index - self.base_index - 1) as usize);
            }
            self.terms.push(entry.term);
            self.active.info.max_entry_index = self.active.info.max_entry_index.max(entry.index);
        }
        Ok(())
    }

    fn save_snapshot_inner(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
        let meta = &snapshot.meta;
        if let Some(stored) = self.snapshot_index.filter(|stored| meta.index < *stored) {
            return Err(StorageError::StaleSnapshot {
                given: meta.index,
                stored,
            });
        }
        if meta.index < self.base_index || (meta.index == 0 && meta.term != 0) {
            return Err(StorageError::InvalidRequest(format!(
                "snapshot at index {} term {} is below the log's start {}",
                meta.index, meta.term, self.base_index
            )));
        }
        if snapshot.data.len() as u64 > self.options.snapshot_bytes_max
            || meta.conf_state.voters.len()
                + meta.conf_state.voters_outgoing.len()
                + meta.conf_state.learners.len()
                + meta.conf_state.learners_next.len()
                > SNAPSHOT_CHUNK_BYTES / 8
        {
            return Err(StorageError::InvalidRequest(format!(
                "snapshot data of {} bytes (limit {}) or its configuration is too large",
                snapshot.data.len(),
                self.options.snapshot_bytes_max
            )));
        }
        let keep_suffix = self.term(meta.index) == Some(meta.term);
        let path = write_snapshot_file(&self.dir, snapshot)?;
        if let Some(old_index) = self.snapshot_index.filter(|old| *old != meta.index) {
            let old_path = self.dir.join(crate::fs::snapshot_file_name(old_index));
            std::fs::remove_file(&old_path)
                .map_err(|e| StorageError::io("removing the previous snapshot", old_path, e))?;
        }
        tracing::debug!(path = %path.display(), index = meta.index, keep_suffix, "snapshot saved");
        let last_index_after = if keep_suffix {
            let last_index = self.last_index();
            self.terms.drain(..(meta.index - self.base_index) as usize);
            last_index
        } else {
            self.terms.clear();
            meta.index
        };
        self.base_index = meta.index;
        self.base_term = meta.term;
        self.snapshot_index = Some(meta.index);
        self.write_record(&WalRecord::SnapshotMarker(SnapshotMarker {
            index: meta.index,
            term: meta.term,
            last_index_after,
        }))
    }

    fn compact_inner(&mut self, index: LogIndex) -> Result<(), StorageError> {
        self.sync_now()?;
        let Some(snapshot_index) = self.snapshot_index else {
            return Ok(());
        };
        let limit = index.min(snapshot_index);
        let removable = self
            .closed_segments
            .iter()
            .take_while(|segment| segment.max_entry_index <= limit)
            .count();
        if removable == 0 {
            return Ok(());
        }
        // Oldest first, so a crash part-way leaves a contiguous run of segments behind.
        for segment in &self.closed_segments[..removable] {
            std::fs::remove_file(&segment.path)
                .map_err(|e| StorageError::io("removing compacted segment", &segment.path, e))?;
        }
        fsync_dir(&self.dir)?;
        tracing::debug!(removed = removable, limit, "WAL compacted");
        self.closed_segments.drain(..removable);
        Ok(())
    }

    fn sync_now(&mut self) -> Result<(), StorageError> {
        if self.hard_state != self.written_hard_state {
            let hard_state = self.hard_state;
            self.write_record(&WalRecord::HardState(hard_state))?;
            self.written_hard_state = hard_state;
        }
        if self.dirty {
            self.active.flush_and_sync()?;
            self.dirty = false;
        }
        Ok(())
    }

    fn write_record(&mut self, record: &WalRecord) -> Result<(), StorageError> {
        self.scratch.clear();
        let kind = encode_wal_record(record, &mut self.scratch);
        self.write_scratch(kind)
    }

    /// Frames the payload in `self.scratch` into the active segment, rotating first if it would
    /// not fit.
    fn write_scratch(&mut self, kind: u8) -> Result<(), StorageError> {
        let record_bytes = (RECORD_HEADER_BYTES + self.scratch.len()) as u64;
        if self.active.bytes() + record_bytes > self.options.segment_bytes_max
            && self.active.bytes() > SEGMENT_HEADER_RECORD_BYTES
        {
            self.rotate()?;
        }
        encode_record(kind, &self.scratch, &mut self.active.buffer);
        self.dirty = true;
        if self.active.buffer.len() >= self.options.write_buffer_bytes {
            self.active.flush()?;
        }
        Ok(())
    }

    /// Closes the active segment (durably) and starts the next one. The next segment is durable
    /// before the seal that announces it, so a sealed last segment always means a lost file.
    fn rotate(&mut self) -> Result<(), StorageError> {
        self.active.flush_and_sync()?;
        let header = SegmentHeader {
            seq: self.active.info.seq + 1,
            base_index: self.base_index,
            base_term: self.base_term,
            last_index: self.last_index(),
            hard_state: self.written_hard_state,
        };
        let next = create_segment(&self.dir, &header)?;
        let mut seal = Vec::new();
        let kind = encode_wal_record(
            &WalRecord::SegmentSeal {
                next_seq: header.seq,
            },
            &mut seal,
        );
        encode_record(kind, &seal, &mut self.active.buffer);
        self.active.flush_and_sync()?;
        self.active.info.sealed = true;
        let previous = std::mem::replace(&mut self.active, next);
        self.closed_segments.push(previous.info);
        Ok(())
    }
}

pub(crate) fn open_for_append(info: SegmentInfo) -> Result<ActiveSegment, StorageError> {
    let mut file = OpenOptions::new()
        .write(true)
        .open(&info.path)
        .map_err(|e| StorageError::io("opening segment for append", &info.path, e))?;
    file.seek(SeekFrom::Start(info.valid_bytes))
        .map_err(|e| StorageError::io("seeking in", &info.path, e))?;
    Ok(ActiveSegment {
        info,
        file,
        buffer: Vec::new(),
    })
}

/// Creates a Raft WAL segment whose header is durable, and makes its directory entry durable.
fn create_segment(dir: &Path, header: &SegmentHeader) -> Result<ActiveSegment, StorageError> {
    let mut payload = Vec::new();
    let kind = encode_wal_record(&WalRecord::SegmentHeader(*header), &mut payload);
    create_segment_file(dir, header.seq, kind, &payload)
}

/// Creates segment `seq` (`O_EXCL`) holding one header record of type `header_kind`, fdatasyncs
/// it and fsyncs the directory: the segment and its header are durable when this returns.
pub(crate) fn create_segment_file(
    dir: &Path,
    seq: u64,
    header_kind: u8,
    header_payload: &[u8],
) -> Result<ActiveSegment, StorageError> {
    let path = dir.join(segment_file_name(seq));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| StorageError::io("creating segment", &path, e))?;
    let mut record = Vec::new();
    encode_record(header_kind, header_payload, &mut record);
    file.write_all(&record)
        .map_err(|e| StorageError::io("writing segment header", &path, e))?;
    file.sync_data()
        .map_err(|e| StorageError::io("fdatasyncing new segment", &path, e))?;
    fsync_dir(dir)?;
    Ok(ActiveSegment {
        info: SegmentInfo {
            seq,
            path,
            max_entry_index: 0,
            valid_bytes: record.len() as u64,
            sealed: false,
        },
        file,
        buffer: Vec::new(),
    })
}
