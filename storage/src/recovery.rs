//! Rebuilding the log from the newest snapshot file and the WAL segments (docs/storage.md,
//! "Recovery").
//!
//! Replay starts from the snapshot file's index rather than from zero, because compaction may have
//! removed the segments holding everything below it. Records from before the snapshot was saved
//! are still replayed for their effect on the entries above it (a conflicting append below the
//! snapshot index truncated them, an older snapshot marker cut them off).

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use ringraft_raft::{Entry, HardState, LogIndex, SnapshotMeta, Term};

use crate::codec::{decode_wal_record, SegmentHeader, SnapshotMarker, WalRecord};
use crate::error::StorageError;
use crate::fs::{fsync_dir, read_file_limited, snapshot_file_name};
use crate::record::{scan_records, ScanEnd, RECORD_HEADER_BYTES};

/// A segment that survived recovery, as the writer needs to know it.
#[derive(Debug, Clone)]
pub(crate) struct SegmentInfo {
    pub seq: u64,
    pub path: PathBuf,
    /// The highest entry index any record in the segment carries: the segment may be dropped once
    /// the snapshot covers it.
    pub max_entry_index: LogIndex,
    /// Bytes of valid records (after any torn tail was cut off).
    pub valid_bytes: u64,
    /// Ends with a seal record: the next segment was created.
    pub sealed: bool,
}

pub(crate) struct Replayed {
    pub base_index: LogIndex,
    pub base_term: Term,
    pub entries: Vec<Entry>,
    pub hard_state: HardState,
    /// Segments in order. Empty if there were none, or the only one had no complete header.
    pub segments: Vec<SegmentInfo>,
    /// The snapshot file is durable but its WAL marker is not: the interrupted `save_snapshot` was
    /// completed here, and its marker must be written before anything else is appended.
    pub snapshot_marker_missing: bool,
}

struct ReplayState<'a> {
    dir: &'a Path,
    base_index: LogIndex,
    base_term: Term,
    /// Whether the snapshot file's own marker (or a segment header naming it) has been replayed.
    snapshot_seen: bool,
    /// While `!snapshot_seen`: the term of the entry the log held at `base_index`, needed to apply
    /// the snapshot at the end if its marker never became durable.
    term_at_base: Option<Term>,
    entries: Vec<Entry>,
    hard_state: HardState,
}

struct Location<'a> {
    path: &'a Path,
    offset: u64,
}

impl ReplayState<'_> {
    fn last_index(&self) -> LogIndex {
        self.base_index + self.entries.len() as u64
    }

    fn truncate_after(&mut self, last_kept: LogIndex) {
        let keep = last_kept.saturating_sub(self.base_index);
        self.entries
            .truncate(keep.min(self.entries.len() as u64) as usize);
    }

    fn apply(&mut self, record: WalRecord, at: &Location) -> Result<(), StorageError> {
        match record {
            WalRecord::Entry(entry) => self.apply_entry(entry, at),
            WalRecord::HardState(hard_state) => {
                self.hard_state = hard_state;
                Ok(())
            }
            WalRecord::SnapshotMarker(marker) => self.apply_marker(marker, at),
            WalRecord::SegmentHeader(_) | WalRecord::SegmentSeal { .. } => Err(
                StorageError::corrupt(at.path, at.offset, "segment header or seal out of place"),
            ),
        }
    }

    fn apply_entry(&mut self, entry: Entry, at: &Location) -> Result<(), StorageError> {
        if entry.index <= self.base_index {
            if self.snapshot_seen {
                return Err(StorageError::corrupt(
                    at.path,
                    at.offset,
                    format!(
                        "entry {} written after the snapshot at index {} was saved",
                        entry.index, self.base_index
                    ),
                ));
            }
            // Written before the snapshot: it truncated everything above it, including what is
            // above the snapshot index.
            self.entries.clear();
            self.term_at_base = (entry.index == self.base_index).then_some(entry.term);
            return Ok(());
        }
        if entry.index > self.last_index() + 1 {
            return Err(StorageError::corrupt(
                at.path,
                at.offset,
                format!(
                    "entry {} leaves a gap after the log's last index {}",
                    entry.index,
                    self.last_index()
                ),
            ));
        }
        self.truncate_after(entry.index - 1);
        self.entries.push(entry);
        Ok(())
    }

    fn apply_marker(&mut self, marker: SnapshotMarker, at: &Location) -> Result<(), StorageError> {
        if marker.index > self.base_index {
            return Err(missing_snapshot(self.dir, marker.index, at));
        }
        if marker.index == self.base_index {
            if marker.term != self.base_term {
                return Err(StorageError::corrupt(
                    at.path,
                    at.offset,
                    format!(
                        "snapshot marker at index {} has term {}, the snapshot file term {}",
                        marker.index, marker.term, self.base_term
                    ),
                ));
            }
            self.snapshot_seen = true;
        } else if self.snapshot_seen {
            return Err(StorageError::corrupt(
                at.path,
                at.offset,
                format!(
                    "snapshot marker at index {} follows a newer snapshot at index {}",
                    marker.index, self.base_index
                ),
            ));
        } else if marker.last_index_after < self.base_index {
            self.term_at_base = None;
        }
        self.truncate_after(marker.last_index_after);
        Ok(())
    }

    fn apply_header(
        &mut self,
        header: SegmentHeader,
        first_segment: bool,
        at: &Location,
    ) -> Result<(), StorageError> {
        if header.base_index > self.base_index {
            return Err(missing_snapshot(self.dir, header.base_index, at));
        }
        if header.base_index == self.base_index {
            if header.base_term != self.base_term {
                return Err(StorageError::corrupt(
                    at.path,
                    at.offset,
                    "segment header names the snapshot with a different term than its file",
                ));
            }
            self.snapshot_seen = true;
        }
        if first_segment && header.last_index > self.last_index() {
            return Err(StorageError::Missing {
                path: at.path.to_path_buf(),
                reason: format!(
                    "this is the first WAL segment, but its header says entries up to {} were \
                     written before it and the snapshot covers only up to {}: an earlier segment \
                     is missing",
                    header.last_index, self.base_index
                ),
            });
        }
        // The header was written with everything before it flushed, so it states the log as it
        // stood: entries above its last index were cut off by a change not yet recorded. That
        // change is a snapshot whose marker the rotation pushed into this segment (and a crash may
        // have lost), or an append whose first conflicting entry opens this segment.
        if header.last_index < self.base_index {
            self.term_at_base = None;
        }
        self.truncate_after(header.last_index);
        self.hard_state = header.hard_state;
        Ok(())
    }
}

fn missing_snapshot(dir: &Path, index: LogIndex, at: &Location) -> StorageError {
    StorageError::Missing {
        path: dir.join(snapshot_file_name(index)),
        reason: format!(
            "the WAL records a snapshot at index {index} ({} at byte offset {}) but its file is \
             absent",
            at.path.display(),
            at.offset
        ),
    }
}

/// Replays `segments` (sorted, contiguous sequence numbers) on top of `snapshot`. Cuts off a torn
/// tail of the last segment and removes a last segment whose header never became complete.
pub(crate) fn replay(
    dir: &Path,
    segments: &[(u64, PathBuf)],
    snapshot: Option<&SnapshotMeta>,
    record_bytes_max: u32,
    segment_read_bytes_max: u64,
) -> Result<Replayed, StorageError> {
    let mut state = ReplayState {
        dir,
        base_index: snapshot.map_or(0, |meta| meta.index),
        base_term: snapshot.map_or(0, |meta| meta.term),
        snapshot_seen: snapshot.is_none(),
        // Index 0 is the empty prefix: its term is 0 without any entry saying so.
        term_at_base: snapshot.filter(|meta| meta.index == 0).map(|_| 0),
        entries: Vec::new(),
        hard_state: HardState::default(),
    };
    let mut infos = Vec::with_capacity(segments.len());
    for (position, (seq, path)) in segments.iter().enumerate() {
        let is_last = position + 1 == segments.len();
        let bytes = read_file_limited(path, segment_read_bytes_max)?;
        match replay_segment(
            &mut state,
            *seq,
            path,
            &bytes,
            position == 0,
            is_last,
            record_bytes_max,
        )? {
            Some(info) => infos.push(info),
            None if infos
                .last()
                .is_some_and(|previous: &SegmentInfo| previous.sealed) =>
            {
                return Err(StorageError::corrupt(
                    path,
                    0,
                    "the segment header is damaged (the previous segment says it was complete)",
                ));
            }
            None => {
                tracing::warn!(path = %path.display(), "removing the last WAL segment: its header was never completely written");
                std::fs::remove_file(path)
                    .map_err(|e| StorageError::io("removing incomplete segment", path, e))?;
                fsync_dir(dir)?;
            }
        }
    }
    if let Some(last) = infos.last().filter(|last| last.sealed) {
        return Err(StorageError::Missing {
            path: dir.join(crate::fs::segment_file_name(last.seq + 1)),
            reason: format!(
                "{} is sealed, so the segment after it was created, but it is absent",
                last.path.display()
            ),
        });
    }
    if infos.is_empty() {
        if let Some(meta) = snapshot {
            return Err(StorageError::Missing {
                path: dir.to_path_buf(),
                reason: format!(
                    "a snapshot at index {} exists but no WAL segment does",
                    meta.index
                ),
            });
        }
    }
    let snapshot_marker_missing = !state.snapshot_seen;
    if let (false, Some(meta)) = (state.snapshot_seen, snapshot) {
        tracing::warn!(
            index = meta.index,
            "completing a snapshot save interrupted before its WAL marker was durable"
        );
        if state.term_at_base != Some(meta.term) {
            state.entries.clear();
        }
    }
    if state.hard_state.commit > state.last_index() {
        return Err(StorageError::Missing {
            path: infos
                .last()
                .map_or_else(|| dir.to_path_buf(), |info| info.path.clone()),
            reason: format!(
                "the hard state says entries up to {} are committed but the log ends at {}: \
                 WAL data after this file is missing",
                state.hard_state.commit,
                state.last_index()
            ),
        });
    }
    Ok(Replayed {
        base_index: state.base_index,
        base_term: state.base_term,
        entries: state.entries,
        hard_state: state.hard_state,
        segments: infos,
        snapshot_marker_missing,
    })
}

/// Returns `None` for a last segment without a complete header (to be removed).
fn replay_segment(
    state: &mut ReplayState,
    seq: u64,
    path: &Path,
    bytes: &[u8],
    first_segment: bool,
    is_last: bool,
    record_bytes_max: u32,
) -> Result<Option<SegmentInfo>, StorageError> {
    let mut failure = None;
    let mut max_entry_index = 0;
    let mut saw_header = false;
    let mut sealed = false;
    let end = scan_records(bytes, record_bytes_max, |offset, raw| {
        let at = Location { path, offset };
        let result = decode_wal_record(raw.record_type, raw.payload)
            .map_err(|e| StorageError::corrupt(path, offset, e.to_string()))
            .and_then(|record| match (saw_header, record) {
                (false, WalRecord::SegmentHeader(header)) if header.seq == seq => {
                    saw_header = true;
                    state.apply_header(header, first_segment, &at)
                }
                (false, WalRecord::SegmentHeader(header)) => Err(StorageError::corrupt(
                    path,
                    offset,
                    format!(
                        "segment header says sequence {}, the file name {seq}",
                        header.seq
                    ),
                )),
                (false, _) => Err(StorageError::corrupt(
                    path,
                    offset,
                    "segment does not start with a segment header",
                )),
                (true, _) if sealed => Err(StorageError::corrupt(
                    path,
                    offset,
                    "record after the segment's seal",
                )),
                (true, WalRecord::SegmentSeal { next_seq }) if next_seq == seq + 1 => {
                    sealed = true;
                    Ok(())
                }
                (true, record) => {
                    if let WalRecord::Entry(entry) = &record {
                        max_entry_index = max_entry_index.max(entry.index);
                    }
                    state.apply(record, &at)
                }
            });
        match result {
            Ok(()) => true,
            Err(e) => {
                failure = Some(e);
                false
            }
        }
    });
    if let Some(e) = failure {
        return Err(e);
    }
    let valid_bytes = segment_valid_bytes(path, bytes.len() as u64, end, is_last)?;
    if !saw_header {
        return if is_last {
            Ok(None)
        } else {
            Err(StorageError::corrupt(path, 0, "segment has no header"))
        };
    }
    if valid_bytes < bytes.len() as u64 {
        truncate_file(path, valid_bytes)?;
    }
    Ok(Some(SegmentInfo {
        seq,
        path: path.to_path_buf(),
        max_entry_index,
        valid_bytes,
        sealed,
    }))
}

/// How many bytes of a segment stand, given how its scan ended (docs/storage.md, "Recovery",
/// step 5): all of them, all but a torn tail (only in the last segment), or none (`Corrupt`).
/// Shared by the Raft WAL and the register store's log.
pub(crate) fn segment_valid_bytes(
    path: &Path,
    file_bytes: u64,
    end: ScanEnd,
    is_last: bool,
) -> Result<u64, StorageError> {
    match end {
        ScanEnd::Clean => Ok(file_bytes),
        ScanEnd::Corrupt { offset, cause } => {
            Err(StorageError::corrupt(path, offset, cause.to_string()))
        }
        ScanEnd::TornTail { offset, cause } if !is_last => Err(StorageError::corrupt(
            path,
            offset,
            format!("{cause} in a segment that is not the last one"),
        )),
        ScanEnd::TornTail { offset, cause } => {
            tracing::warn!(path = %path.display(), offset, %cause, discarded_bytes = file_bytes - offset, "cutting off a torn WAL tail");
            Ok(offset)
        }
    }
}

pub(crate) fn truncate_file(path: &Path, len: u64) -> Result<(), StorageError> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| StorageError::io("opening for truncation", path, e))?;
    file.set_len(len)
        .map_err(|e| StorageError::io("truncating torn tail of", path, e))?;
    file.sync_all()
        .map_err(|e| StorageError::io("fsyncing after truncation", path, e))
}

/// Bytes a segment header record takes on disk.
pub(crate) const SEGMENT_HEADER_RECORD_BYTES: u64 = RECORD_HEADER_BYTES as u64 + 8 + 4 + 8 * 4 + 25;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::encode_wal_record;
    use crate::record::record_type;

    #[test]
    fn segment_header_record_size_matches_encoding() {
        let mut payload = Vec::new();
        let kind = encode_wal_record(
            &WalRecord::SegmentHeader(SegmentHeader {
                seq: 1,
                base_index: 0,
                base_term: 0,
                last_index: 0,
                hard_state: HardState::default(),
            }),
            &mut payload,
        );
        assert_eq!(kind, record_type::SEGMENT_HEADER);
        assert_eq!(
            RECORD_HEADER_BYTES as u64 + payload.len() as u64,
            SEGMENT_HEADER_RECORD_BYTES
        );
    }
}
