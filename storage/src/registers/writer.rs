//! Writing: group-committed appends, segment rotation, and compaction into a checkpoint
//! (docs/storage.md, "Register store", "Writing" and "Compaction").

use std::io::Write;
use std::path::Path;

use ringraft_paxos::Record;

use super::format::{
    encode_checkpoint_record, encode_log_record, paxos_record_payload_bytes, CheckpointRecord,
    LogRecord,
};
use super::{RegisterStore, WRITE_BUFFER_BYTES};
use crate::error::StorageError;
use crate::fs::{checkpoint_file_name, fsync_dir};
use crate::record::{encode_record, RECORD_HEADER_BYTES};
use crate::snapshot_file::{rename_into_place, write_temp_file, FileKind};
use crate::storage::{create_segment_file, ActiveSegment};

/// Creates log segment `seq` with its header, durable (file and directory entry).
pub(super) fn create_log_segment(dir: &Path, seq: u64) -> Result<ActiveSegment, StorageError> {
    let mut payload = Vec::new();
    let kind = encode_log_record(&LogRecord::SegmentHeader { seq }, &mut payload);
    create_segment_file(dir, seq, kind, &payload)
}

/// The steps of a compaction, in order; a crash after any of them recovers (tested through
/// `inject_crash_in_compaction`).
#[derive(Debug, Clone, Copy)]
enum CompactionStep {
    NextSegmentCreated,
    PreviousSegmentSealed,
    CheckpointTempWritten,
    CheckpointRenamed,
    OldCheckpointRemoved,
    CoveredSegmentRemoved,
}

impl RegisterStore {
    pub(super) fn append_inner(&mut self, records: &[Record]) -> Result<(), StorageError> {
        // Checked before anything is written, so a refused batch leaves no part behind.
        for (position, record) in records.iter().enumerate() {
            self.check_size(record, position)?;
        }
        for record in records {
            self.scratch.clear();
            let kind = encode_log_record(&LogRecord::Paxos(record.clone()), &mut self.scratch);
            self.write_scratch(kind)?;
        }
        Ok(())
    }

    fn check_size(&self, record: &Record, position: usize) -> Result<(), StorageError> {
        let bytes = paxos_record_payload_bytes(record);
        if bytes > self.options.record_bytes_max {
            return Err(StorageError::InvalidRequest(format!(
                "register record at position {position} encodes to {bytes} bytes, above \
                 record_bytes_max {}",
                self.options.record_bytes_max
            )));
        }
        Ok(())
    }

    pub(super) fn sync_inner(&mut self) -> Result<(), StorageError> {
        if self.dirty {
            self.active.flush_and_sync()?;
            self.dirty = false;
        }
        Ok(())
    }

    /// Frames the payload in `self.scratch` into the active segment, rotating first if it would
    /// not fit (the Raft WAL's rule).
    fn write_scratch(&mut self, kind: u8) -> Result<(), StorageError> {
        let record_bytes = (RECORD_HEADER_BYTES + self.scratch.len()) as u64;
        let header_bytes = segment_header_record_bytes();
        if self.active.bytes() + record_bytes > self.options.segment_bytes
            && self.active.bytes() > header_bytes
        {
            self.rotate(None)?;
        }
        encode_record(kind, &self.scratch, &mut self.active.buffer);
        self.dirty = true;
        if self.active.buffer.len() >= WRITE_BUFFER_BYTES {
            self.active.flush()?;
        }
        Ok(())
    }

    /// Closes the active segment durably and starts the next one, which is durable before the
    /// seal that names it: a sealed last segment always means a lost file.
    fn rotate(&mut self, mut steps: Option<&mut u32>) -> Result<(), StorageError> {
        self.active.flush_and_sync()?;
        self.dirty = false;
        let next_seq = self.active.info.seq + 1;
        let next = create_log_segment(&self.dir, next_seq)?;
        if let Some(steps) = steps.as_deref_mut() {
            self.step(steps, CompactionStep::NextSegmentCreated)?;
        }
        let mut seal = Vec::new();
        let kind = encode_log_record(&LogRecord::SegmentSeal { next_seq }, &mut seal);
        encode_record(kind, &seal, &mut self.active.buffer);
        self.active.flush_and_sync()?;
        self.active.info.sealed = true;
        let previous = std::mem::replace(&mut self.active, next);
        self.closed_bytes += previous.info.valid_bytes;
        self.closed_segments.push(previous.info);
        if let Some(steps) = steps {
            self.step(steps, CompactionStep::PreviousSegmentSealed)?;
        }
        Ok(())
    }

    /// The steps, in order:
    ///
    /// 1. rotate: everything appended so far is durable in segments below the new one, `N`;
    /// 2. write `ckpt-N.ckpt.tmp` and fsync it;
    /// 3. rename it to `ckpt-N.ckpt` and fsync the directory;
    /// 4. remove the old checkpoint and the segments below `N` (oldest first), fsync the
    ///    directory.
    pub(super) fn compact_inner(
        &mut self,
        live: impl Iterator<Item = Record>,
    ) -> Result<(), StorageError> {
        let mut steps = 0u32;
        self.rotate(Some(&mut steps))?;
        let seq = self.active.info.seq;
        let name = checkpoint_file_name(seq);
        let mut refused = None;
        let written = write_temp_file(&self.dir, &name, FileKind::Checkpoint, |writer| {
            write_checkpoint(
                writer,
                seq,
                live,
                self.options.record_bytes_max,
                &mut refused,
            )
        });
        if let Some(refusal) = refused {
            let temp = self.dir.join(format!("{name}{}", crate::fs::TEMP_SUFFIX));
            // Best effort: open deletes checkpoint temp files anyway.
            let _ = std::fs::remove_file(temp);
            return Err(refusal);
        }
        written?;
        self.step(&mut steps, CompactionStep::CheckpointTempWritten)?;
        rename_into_place(&self.dir, &name, FileKind::Checkpoint)?;
        let old_checkpoint = self.checkpoint_seq.replace(seq);
        self.step(&mut steps, CompactionStep::CheckpointRenamed)?;
        if let Some(old) = old_checkpoint {
            let path = self.dir.join(checkpoint_file_name(old));
            std::fs::remove_file(&path)
                .map_err(|e| StorageError::io("removing the previous checkpoint", &path, e))?;
            self.step(&mut steps, CompactionStep::OldCheckpointRemoved)?;
        }
        // Oldest first, so a crash part-way leaves segments that recovery knows are covered.
        let covered = std::mem::take(&mut self.closed_segments);
        self.closed_bytes = 0;
        for segment in &covered {
            std::fs::remove_file(&segment.path)
                .map_err(|e| StorageError::io("removing compacted segment", &segment.path, e))?;
            self.step(&mut steps, CompactionStep::CoveredSegmentRemoved)?;
        }
        fsync_dir(&self.dir)?;
        tracing::debug!(
            checkpoint_seq = seq,
            removed_segments = covered.len(),
            "register store compacted"
        );
        Ok(())
    }

    /// Counts a compaction step; under the test hook, fails after the chosen number of them.
    fn step(&mut self, steps: &mut u32, step: CompactionStep) -> Result<(), StorageError> {
        *steps += 1;
        if self.crash_after_compaction_steps == Some(*steps) {
            self.crash_after_compaction_steps = None;
            return Err(StorageError::Poisoned(format!(
                "crash injected after compaction step {steps} ({step:?})"
            )));
        }
        Ok(())
    }
}

/// Header, the live records, end record with their count. A record above `record_bytes_max`
/// stops the write: `refused` says why (the io error only aborts the writer).
fn write_checkpoint(
    writer: &mut impl Write,
    log_seq: u64,
    live: impl Iterator<Item = Record>,
    record_bytes_max: usize,
    refused: &mut Option<StorageError>,
) -> std::io::Result<()> {
    let mut payload = Vec::new();
    let mut framed = Vec::new();
    let mut put = |writer: &mut dyn Write, record: &CheckpointRecord| {
        payload.clear();
        framed.clear();
        let kind = encode_checkpoint_record(record, &mut payload);
        encode_record(kind, &payload, &mut framed);
        writer.write_all(&framed)
    };
    put(writer, &CheckpointRecord::Header { log_seq })?;
    let mut record_count = 0u64;
    for record in live {
        let bytes = paxos_record_payload_bytes(&record);
        if bytes > record_bytes_max {
            *refused = Some(StorageError::InvalidRequest(format!(
                "checkpoint record {record_count} encodes to {bytes} bytes, above \
                 record_bytes_max {record_bytes_max}"
            )));
            return Err(std::io::Error::other("checkpoint record too large"));
        }
        put(writer, &CheckpointRecord::Paxos(record))?;
        record_count += 1;
    }
    put(writer, &CheckpointRecord::End { record_count })
}

/// Bytes a log segment's header record takes on disk.
pub(super) fn segment_header_record_bytes() -> u64 {
    (RECORD_HEADER_BYTES + 8 + 4 + 8) as u64
}
