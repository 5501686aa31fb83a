//! Helpers shared by the storage integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use ringraft_raft::{ConfState, Entry, EntryPayload, Snapshot, SnapshotMeta};
use ringraft_storage::{Recovered, Storage, StorageError, StorageOptions};

/// Small segments so that a few dozen entries already span several files.
pub fn small_options() -> StorageOptions {
    StorageOptions {
        segment_bytes_max: 1024,
        record_bytes_max: 64 << 10,
        snapshot_bytes_max: 1 << 20,
        write_buffer_bytes: 512,
    }
}

pub fn open(dir: &Path) -> (Storage, Recovered) {
    Storage::open(dir, small_options()).expect("open storage")
}

pub fn try_open(dir: &Path) -> Result<(Storage, Recovered), StorageError> {
    Storage::open(dir, small_options())
}

pub fn entry(index: u64, term: u64) -> Entry {
    Entry {
        term,
        index,
        payload: EntryPayload::Normal(format!("entry {index} of term {term}").into_bytes()),
    }
}

pub fn entries(first: u64, last: u64, term: u64) -> Vec<Entry> {
    (first..=last).map(|index| entry(index, term)).collect()
}

pub fn snapshot(index: u64, term: u64, data: &[u8]) -> Snapshot {
    Snapshot {
        meta: SnapshotMeta {
            index,
            term,
            conf_state: ConfState {
                voters: vec![1, 2, 3],
                ..ConfState::default()
            },
        },
        data: data.to_vec(),
    }
}

/// WAL segment files in sequence order.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|item| item.unwrap().path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_str().unwrap();
            name.starts_with("wal-") && name.ends_with(".seg")
        })
        .collect();
    files.sort();
    files
}

/// Byte offsets at which each record of a file starts.
pub fn record_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut offset = 0;
    while offset < bytes.len() {
        let record = ringraft_storage::record::decode_record(&bytes[offset..], u32::MAX)
            .expect("intact file");
        offsets.push(offset);
        offset += record.encoded_len();
    }
    offsets
}

pub mod registers;
