//! Rebuilding the register records from the newest checkpoint and the log segments after it
//! (docs/storage.md, "Register store", "Recovery"). The torn-tail and corruption rules are the
//! Raft WAL's, through the same code (`scan_records`, `segment_valid_bytes`).

use std::fs::File;
use std::path::{Path, PathBuf};

use ringraft_paxos::Record;

use super::format::{decode_checkpoint_record, decode_log_record, CheckpointRecord, LogRecord};
use super::RegisterStoreOptions;
use crate::error::StorageError;
use crate::fs::{
    checkpoint_file_name, fsync_dir, is_checkpoint_temp_name, parse_checkpoint_file_name,
    parse_segment_file_name, read_file_limited, segment_file_name,
};
use crate::record::scan_records;
use crate::recovery::{segment_valid_bytes, truncate_file, SegmentInfo};
use crate::snapshot_file::{FileKind, RecordReader};

pub(super) struct Recovered {
    /// The checkpoint's records, then the log's.
    pub records: Vec<Record>,
    pub checkpoint_seq: Option<u64>,
    /// The first segment of the log: the checkpoint's sequence number, or 1.
    pub log_start_seq: u64,
    /// The surviving segments from `log_start_seq` on, in order; the last becomes the active one.
    /// Empty for a new directory (or one whose only segment never got a complete header).
    pub segments: Vec<SegmentInfo>,
}

struct Listing {
    segments: Vec<(u64, PathBuf)>,
    checkpoints: Vec<(u64, PathBuf)>,
}

fn list_dir(dir: &Path) -> Result<Listing, StorageError> {
    let mut listing = Listing {
        segments: Vec::new(),
        checkpoints: Vec::new(),
    };
    let reader = std::fs::read_dir(dir).map_err(|e| StorageError::io("listing", dir, e))?;
    for item in reader {
        let item = item.map_err(|e| StorageError::io("listing", dir, e))?;
        let name = item.file_name();
        let Some(name) = name.to_str() else { continue };
        let path = item.path();
        if let Some(seq) = parse_segment_file_name(name) {
            listing.segments.push((seq, path));
        } else if let Some(seq) = parse_checkpoint_file_name(name) {
            listing.checkpoints.push((seq, path));
        } else if is_checkpoint_temp_name(name) {
            tracing::info!(path = %path.display(), "removing a checkpoint temp file left by a crash");
            std::fs::remove_file(&path)
                .map_err(|e| StorageError::io("removing temp file", &path, e))?;
        }
    }
    listing.segments.sort_unstable();
    listing.checkpoints.sort_unstable();
    Ok(listing)
}

pub(super) fn recover(
    dir: &Path,
    options: &RegisterStoreOptions,
) -> Result<Recovered, StorageError> {
    let listing = list_dir(dir)?;
    let checkpoint = listing.checkpoints.last();
    let log_start_seq = checkpoint.map_or(1, |(seq, _)| *seq);
    let mut records = match checkpoint {
        Some((seq, path)) => read_checkpoint(path, *seq, options.record_bytes_max_u32())?,
        None => Vec::new(),
    };
    let (covered, live): (Vec<_>, Vec<_>) = listing
        .segments
        .iter()
        .cloned()
        .partition(|(seq, _)| *seq < log_start_seq);
    check_contiguous(dir, &live, log_start_seq, checkpoint.is_some())?;
    let mut infos: Vec<SegmentInfo> = Vec::with_capacity(live.len());
    for (position, (seq, path)) in live.iter().enumerate() {
        let is_last = position + 1 == live.len();
        let bytes = read_file_limited(path, options.segment_read_bytes_max())?;
        match replay_segment(
            *seq,
            path,
            &bytes,
            is_last,
            options.record_bytes_max_u32(),
            &mut records,
        )? {
            Some(info) => infos.push(info),
            None => remove_headerless_last(dir, path, infos.last(), checkpoint.is_some())?,
        }
    }
    if let Some(last) = infos.last().filter(|last| last.sealed) {
        return Err(StorageError::Missing {
            path: dir.join(segment_file_name(last.seq + 1)),
            reason: format!(
                "{} is sealed, so the segment after it was created, but it is absent",
                last.path.display()
            ),
        });
    }
    remove_leftovers(dir, &covered, &listing.checkpoints)?;
    Ok(Recovered {
        records,
        checkpoint_seq: checkpoint.map(|(seq, _)| *seq),
        log_start_seq,
        segments: infos,
    })
}

/// The log must be segments `log_start_seq, log_start_seq + 1, ...` with no gap. With a
/// checkpoint, its first segment must exist: compaction creates it before the checkpoint.
fn check_contiguous(
    dir: &Path,
    live: &[(u64, PathBuf)],
    log_start_seq: u64,
    has_checkpoint: bool,
) -> Result<(), StorageError> {
    let first_missing = match live.first() {
        None if has_checkpoint => Some(log_start_seq),
        Some((first, _)) if *first != log_start_seq => Some(log_start_seq),
        _ => live
            .windows(2)
            .find(|pair| pair[1].0 != pair[0].0 + 1)
            .map(|pair| pair[0].0 + 1),
    };
    let Some(seq) = first_missing else {
        return Ok(());
    };
    let reason = if seq == log_start_seq && has_checkpoint {
        format!(
            "{} says the log continues in segment {seq}, which is absent",
            dir.join(checkpoint_file_name(log_start_seq)).display()
        )
    } else if seq == log_start_seq {
        "there is no checkpoint, so the log must start at segment 1".to_string()
    } else {
        format!("register log segments on both sides of {seq} exist but not {seq}")
    };
    Err(StorageError::Missing {
        path: dir.join(segment_file_name(seq)),
        reason,
    })
}

/// A last segment without a complete header is a crash while it was being created: removed,
/// unless something proves its header was durable (the previous segment's seal, or a
/// checkpoint naming it), and then it is damaged.
fn remove_headerless_last(
    dir: &Path,
    path: &Path,
    previous: Option<&SegmentInfo>,
    has_checkpoint: bool,
) -> Result<(), StorageError> {
    if previous.is_some_and(|p| p.sealed) {
        return Err(StorageError::corrupt(
            path,
            0,
            "the segment header is damaged (the previous segment says it was complete)",
        ));
    }
    if previous.is_none() && has_checkpoint {
        return Err(StorageError::corrupt(
            path,
            0,
            "the segment header is damaged (the checkpoint was written after it was complete)",
        ));
    }
    tracing::warn!(path = %path.display(), "removing the last register log segment: its header was never completely written");
    std::fs::remove_file(path)
        .map_err(|e| StorageError::io("removing incomplete segment", path, e))?;
    fsync_dir(dir)
}

/// What an interrupted compaction left: segments the newest checkpoint covers, and older
/// checkpoints. Removed only once everything else recovered.
fn remove_leftovers(
    dir: &Path,
    covered: &[(u64, PathBuf)],
    checkpoints: &[(u64, PathBuf)],
) -> Result<(), StorageError> {
    let old_checkpoints = &checkpoints[..checkpoints.len().saturating_sub(1)];
    if covered.is_empty() && old_checkpoints.is_empty() {
        return Ok(());
    }
    tracing::info!(
        segments = covered.len(),
        checkpoints = old_checkpoints.len(),
        "removing what an interrupted register compaction left behind"
    );
    for (_, path) in covered.iter().chain(old_checkpoints) {
        std::fs::remove_file(path)
            .map_err(|e| StorageError::io("removing a compacted file", path, e))?;
    }
    fsync_dir(dir)
}

/// Reads a whole checkpoint: header naming `seq`, register records, end record with their
/// count, nothing after. It was renamed into place only after its fsync, so any damage is
/// `Corrupt`.
fn read_checkpoint(
    path: &Path,
    seq: u64,
    record_bytes_max: u32,
) -> Result<Vec<Record>, StorageError> {
    let file = File::open(path).map_err(|e| StorageError::io("opening checkpoint", path, e))?;
    let mut reader = RecordReader::new(path, file, record_bytes_max, FileKind::Checkpoint);
    let mut records = Vec::new();
    let mut header_seen = false;
    loop {
        let offset = reader.offset;
        let corrupt = |reason: String| StorageError::corrupt(path, offset, reason);
        let Some((kind, payload)) = reader.next_record()? else {
            return Err(corrupt(if header_seen {
                "checkpoint ends without its end record".into()
            } else {
                "checkpoint file is empty".into()
            }));
        };
        let record =
            decode_checkpoint_record(kind, &payload).map_err(|e| corrupt(e.to_string()))?;
        match (header_seen, record) {
            (false, CheckpointRecord::Header { log_seq }) if log_seq == seq => header_seen = true,
            (false, CheckpointRecord::Header { log_seq }) => {
                return Err(corrupt(format!(
                    "checkpoint header says segment {log_seq}, the file name {seq}"
                )))
            }
            (false, _) => return Err(corrupt("checkpoint does not start with its header".into())),
            (true, CheckpointRecord::Paxos(record)) => records.push(record),
            (true, CheckpointRecord::End { record_count }) => {
                if record_count != records.len() as u64 {
                    return Err(corrupt(format!(
                        "checkpoint end record counts {record_count} records, the file holds {}",
                        records.len()
                    )));
                }
                let end = reader.offset;
                if reader.next_record()?.is_some() {
                    return Err(StorageError::corrupt(
                        path,
                        end,
                        "data after the checkpoint's end record",
                    ));
                }
                return Ok(records);
            }
            (true, CheckpointRecord::Header { .. }) => {
                return Err(corrupt("a second checkpoint header".into()))
            }
        }
    }
}

/// Replays one segment into `records`. Returns `None` for a last segment without a complete
/// header (the caller decides whether to remove it).
fn replay_segment(
    seq: u64,
    path: &Path,
    bytes: &[u8],
    is_last: bool,
    record_bytes_max: u32,
    records: &mut Vec<Record>,
) -> Result<Option<SegmentInfo>, StorageError> {
    let mut failure = None;
    let mut saw_header = false;
    let mut sealed = false;
    let end = scan_records(bytes, record_bytes_max, |offset, raw| {
        let corrupt = |reason: String| StorageError::corrupt(path, offset, reason);
        let result = decode_log_record(raw.record_type, raw.payload)
            .map_err(|e| corrupt(e.to_string()))
            .and_then(|record| match (saw_header, record) {
                (false, LogRecord::SegmentHeader { seq: got }) if got == seq => {
                    saw_header = true;
                    Ok(())
                }
                (false, LogRecord::SegmentHeader { seq: got }) => Err(corrupt(format!(
                    "segment header says sequence {got}, the file name {seq}"
                ))),
                (false, _) => Err(corrupt(
                    "segment does not start with a segment header".into(),
                )),
                (true, _) if sealed => Err(corrupt("record after the segment's seal".into())),
                (true, LogRecord::SegmentSeal { next_seq }) if next_seq == seq + 1 => {
                    sealed = true;
                    Ok(())
                }
                (true, LogRecord::Paxos(record)) => {
                    records.push(record);
                    Ok(())
                }
                (true, other) => Err(corrupt(format!("record out of place: {other:?}"))),
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
        max_entry_index: 0,
        valid_bytes,
        sealed,
    }))
}
