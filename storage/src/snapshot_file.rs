//! Snapshot files: one header record, then the data in chunk records. Written to a temp file,
//! fsynced, renamed into place and the directory fsynced, so a snapshot file that exists under
//! its final name is complete; any damage to it is corruption, never a torn write.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use ringraft_raft::Snapshot;

use crate::codec::{decode_snapshot_header, encode_snapshot_header, SnapshotFileHeader};
use crate::error::StorageError;
use crate::fs::{fsync_dir, snapshot_file_name, TEMP_SUFFIX};
use crate::record::{decode_record, encode_record, record_type, FrameError, RECORD_HEADER_BYTES};

/// Data is cut into records of at most this many bytes so no single record needs a huge buffer.
pub const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;

/// Writes `snapshot` durably under its final name and returns that path.
pub fn write_snapshot_file(dir: &Path, snapshot: &Snapshot) -> Result<PathBuf, StorageError> {
    let mut header_payload = Vec::new();
    encode_snapshot_header(
        &SnapshotFileHeader {
            meta: snapshot.meta.clone(),
            data_bytes: snapshot.data.len() as u64,
        },
        &mut header_payload,
    );
    let name = snapshot_file_name(snapshot.meta.index);
    write_file_durably(dir, &name, FileKind::Snapshot, |writer| {
        let mut record = Vec::with_capacity(SNAPSHOT_CHUNK_BYTES + RECORD_HEADER_BYTES);
        encode_record(record_type::SNAPSHOT_META, &header_payload, &mut record);
        writer.write_all(&record)?;
        for chunk in snapshot.data.chunks(SNAPSHOT_CHUNK_BYTES) {
            record.clear();
            encode_record(record_type::SNAPSHOT_CHUNK, chunk, &mut record);
            writer.write_all(&record)?;
        }
        Ok(())
    })
}

/// Writes a file so that it exists under `name` only complete: `write` fills `<name>.tmp`, which
/// is fsynced, renamed to `name`, and the directory fsynced. Used for snapshot files and register
/// checkpoints. On error the temp file may stay behind (open deletes it).
pub(crate) fn write_file_durably(
    dir: &Path,
    name: &str,
    what: FileKind,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<PathBuf, StorageError> {
    write_temp_file(dir, name, what, write)?;
    rename_into_place(dir, name, what)
}

/// The first half of `write_file_durably`: `<name>.tmp` written and fsynced.
pub(crate) fn write_temp_file(
    dir: &Path,
    name: &str,
    what: FileKind,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<PathBuf, StorageError> {
    let temp_path = dir.join(format!("{name}{TEMP_SUFFIX}"));
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temp_path)
        .map_err(|e| StorageError::io(what.action("create"), &temp_path, e))?;
    let mut writer = BufWriter::with_capacity(SNAPSHOT_CHUNK_BYTES + RECORD_HEADER_BYTES, file);
    let write_err = |e| StorageError::io(what.action("write"), &temp_path, e);
    write(&mut writer).map_err(write_err)?;
    let file = writer.into_inner().map_err(|e| write_err(e.into_error()))?;
    file.sync_all()
        .map_err(|e| StorageError::io(what.action("fsync"), &temp_path, e))?;
    Ok(temp_path)
}

/// The second half: `<name>.tmp` renamed to `name`, and the directory fsynced.
pub(crate) fn rename_into_place(
    dir: &Path,
    name: &str,
    what: FileKind,
) -> Result<PathBuf, StorageError> {
    let final_path = dir.join(name);
    let temp_path = dir.join(format!("{name}{TEMP_SUFFIX}"));
    std::fs::rename(&temp_path, &final_path)
        .map_err(|e| StorageError::io(what.action("rename"), &final_path, e))?;
    fsync_dir(dir)?;
    Ok(final_path)
}

/// Which kind of file `write_file_durably` and `RecordReader` handle: it names the file in
/// errors (`StorageError::Io` holds a `&'static str` action).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    Snapshot,
    Checkpoint,
}

impl FileKind {
    fn action(self, verb: &str) -> &'static str {
        match (self, verb) {
            (FileKind::Snapshot, "create") => "creating snapshot temp file",
            (FileKind::Snapshot, "write") => "writing snapshot temp file",
            (FileKind::Snapshot, "fsync") => "fsyncing snapshot temp file",
            (FileKind::Snapshot, "rename") => "renaming snapshot into place",
            (FileKind::Snapshot, _) => "reading snapshot",
            (FileKind::Checkpoint, "create") => "creating checkpoint temp file",
            (FileKind::Checkpoint, "write") => "writing checkpoint temp file",
            (FileKind::Checkpoint, "fsync") => "fsyncing checkpoint temp file",
            (FileKind::Checkpoint, "rename") => "renaming checkpoint into place",
            (FileKind::Checkpoint, _) => "reading checkpoint",
        }
    }

    fn label(self) -> &'static str {
        match self {
            FileKind::Snapshot => "snapshot",
            FileKind::Checkpoint => "checkpoint",
        }
    }
}

/// Reads and verifies a snapshot file. `data_bytes_max` bounds the allocation for the data.
pub fn read_snapshot_file(path: &Path, data_bytes_max: u64) -> Result<Snapshot, StorageError> {
    let file = File::open(path).map_err(|e| StorageError::io("opening snapshot", path, e))?;
    let mut reader = RecordReader::new(
        path,
        file,
        SNAPSHOT_CHUNK_BYTES as u32 * 16,
        FileKind::Snapshot,
    );
    let (kind, payload) = reader
        .next_record()?
        .ok_or_else(|| StorageError::corrupt(path, 0, "snapshot file is empty"))?;
    if kind != record_type::SNAPSHOT_META {
        return Err(StorageError::corrupt(
            path,
            0,
            format!("snapshot file starts with record type {kind}, not a snapshot header"),
        ));
    }
    let header = decode_snapshot_header(&payload)
        .map_err(|e| StorageError::corrupt(path, 0, e.to_string()))?;
    if header.data_bytes > data_bytes_max {
        return Err(StorageError::corrupt(
            path,
            0,
            format!(
                "snapshot announces {} data bytes, above the limit of {data_bytes_max}",
                header.data_bytes
            ),
        ));
    }
    let mut data = Vec::with_capacity(header.data_bytes as usize);
    loop {
        let record_offset = reader.offset;
        let Some((kind, chunk)) = reader.next_record()? else {
            break;
        };
        if kind != record_type::SNAPSHOT_CHUNK {
            return Err(StorageError::corrupt(
                path,
                record_offset,
                format!("unexpected record type {kind} in snapshot data"),
            ));
        }
        if data.len() as u64 + chunk.len() as u64 > header.data_bytes {
            return Err(StorageError::corrupt(
                path,
                record_offset,
                "snapshot holds more data than its header announces",
            ));
        }
        data.extend_from_slice(&chunk);
    }
    if data.len() as u64 != header.data_bytes {
        return Err(StorageError::corrupt(
            path,
            reader.offset,
            format!(
                "snapshot data is {} bytes, its header announces {}",
                data.len(),
                header.data_bytes
            ),
        ));
    }
    Ok(Snapshot {
        meta: header.meta,
        data,
    })
}

/// Reads a file of records one at a time (snapshot files, register checkpoints), so a large file
/// never has to fit in memory at once.
pub(crate) struct RecordReader<'p> {
    path: &'p Path,
    reader: BufReader<File>,
    /// Where the next record starts.
    pub(crate) offset: u64,
    buffer: Vec<u8>,
    payload_bytes_max: u32,
    what: FileKind,
}

impl<'p> RecordReader<'p> {
    pub(crate) fn new(
        path: &'p Path,
        file: File,
        payload_bytes_max: u32,
        what: FileKind,
    ) -> RecordReader<'p> {
        RecordReader {
            path,
            reader: BufReader::new(file),
            offset: 0,
            buffer: Vec::new(),
            payload_bytes_max,
            what,
        }
    }

    /// The next record, or `None` at a clean end of file. The header's checksum is verified before
    /// its length is used to size the read. Any damage, a cut-short record included, is `Corrupt`:
    /// these files are complete before they get their names.
    pub(crate) fn next_record(&mut self) -> Result<Option<(u8, Vec<u8>)>, StorageError> {
        let read_action = self.what.action("read");
        let mut header = [0u8; RECORD_HEADER_BYTES];
        let got = read_full(&mut self.reader, &mut header)
            .map_err(|e| StorageError::io(read_action, self.path, e))?;
        if got == 0 {
            return Ok(None);
        }
        let payload_limit = self.payload_bytes_max;
        let corrupt = |cause: FrameError, offset| {
            StorageError::corrupt(
                self.path,
                offset,
                format!("{} record: {cause}", self.what.label()),
            )
        };
        match decode_record(&header[..got], payload_limit) {
            Err(FrameError::Incomplete) if got == RECORD_HEADER_BYTES => {}
            Err(cause) => return Err(corrupt(cause, self.offset)),
            Ok(_) => {}
        }
        let payload_bytes = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        self.buffer.clear();
        self.buffer.extend_from_slice(&header);
        self.buffer
            .resize(RECORD_HEADER_BYTES + payload_bytes as usize, 0);
        let got_payload = read_full(&mut self.reader, &mut self.buffer[RECORD_HEADER_BYTES..])
            .map_err(|e| StorageError::io(read_action, self.path, e))?;
        self.buffer.truncate(RECORD_HEADER_BYTES + got_payload);
        let record = decode_record(&self.buffer, payload_limit)
            .map_err(|cause| corrupt(cause, self.offset))?;
        self.offset += record.encoded_len() as u64;
        Ok(Some((record.record_type, record.payload.to_vec())))
    }
}

fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
