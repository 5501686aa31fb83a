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
    let final_path = dir.join(snapshot_file_name(snapshot.meta.index));
    let temp_path = dir.join(format!(
        "{}{TEMP_SUFFIX}",
        snapshot_file_name(snapshot.meta.index)
    ));
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temp_path)
        .map_err(|e| StorageError::io("creating snapshot temp file", &temp_path, e))?;
    let mut writer = BufWriter::with_capacity(SNAPSHOT_CHUNK_BYTES + RECORD_HEADER_BYTES, file);
    let mut record = Vec::with_capacity(SNAPSHOT_CHUNK_BYTES + RECORD_HEADER_BYTES);
    let mut header_payload = Vec::new();
    encode_snapshot_header(
        &SnapshotFileHeader {
            meta: snapshot.meta.clone(),
            data_bytes: snapshot.data.len() as u64,
        },
        &mut header_payload,
    );
    encode_record(record_type::SNAPSHOT_META, &header_payload, &mut record);
    let write_err = |e| StorageError::io("writing snapshot temp file", &temp_path, e);
    writer.write_all(&record).map_err(write_err)?;
    for chunk in snapshot.data.chunks(SNAPSHOT_CHUNK_BYTES) {
        record.clear();
        encode_record(record_type::SNAPSHOT_CHUNK, chunk, &mut record);
        writer.write_all(&record).map_err(write_err)?;
    }
    let file = writer.into_inner().map_err(|e| write_err(e.into_error()))?;
    file.sync_all()
        .map_err(|e| StorageError::io("fsyncing snapshot temp file", &temp_path, e))?;
    drop(file);
    std::fs::rename(&temp_path, &final_path)
        .map_err(|e| StorageError::io("renaming snapshot into place", &final_path, e))?;
    fsync_dir(dir)?;
    Ok(final_path)
}

/// Reads and verifies a snapshot file. `data_bytes_max` bounds the allocation for the data.
pub fn read_snapshot_file(path: &Path, data_bytes_max: u64) -> Result<Snapshot, StorageError> {
    let file = File::open(path).map_err(|e| StorageError::io("opening snapshot", path, e))?;
    let mut reader = SnapshotReader {
        path,
        reader: BufReader::new(file),
        offset: 0,
        buffer: Vec::new(),
    };
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

struct SnapshotReader<'p> {
    path: &'p Path,
    reader: BufReader<File>,
    offset: u64,
    buffer: Vec<u8>,
}

impl SnapshotReader<'_> {
    /// The next record, or `None` at a clean end of file. The header's checksum is verified before
    /// its length is used to size the read.
    fn next_record(&mut self) -> Result<Option<(u8, Vec<u8>)>, StorageError> {
        let mut header = [0u8; RECORD_HEADER_BYTES];
        let got = read_full(&mut self.reader, &mut header)
            .map_err(|e| StorageError::io("reading snapshot", self.path, e))?;
        if got == 0 {
            return Ok(None);
        }
        let payload_limit = SNAPSHOT_CHUNK_BYTES as u32 * 16;
        let corrupt = |cause: FrameError, offset| {
            StorageError::corrupt(self.path, offset, format!("snapshot record: {cause}"))
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
            .map_err(|e| StorageError::io("reading snapshot", self.path, e))?;
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
