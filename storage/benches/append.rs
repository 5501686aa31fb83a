//! Group-commit throughput of the WAL against the raw write+fdatasync limit of the same disk.
//!
//! `cargo bench -p ringraft-storage --bench append`. Environment: RINGRAFT_BENCH_DIR (a directory
//! on the disk to measure, default: the system temp dir), RINGRAFT_BENCH_SECONDS (per measurement,
//! default 3).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ringraft_raft::{Entry, EntryPayload, HardState};
use ringraft_storage::{Storage, StorageOptions};

const ENTRY_DATA_BYTES: usize = 128;
const BATCH_SIZES: [usize; 3] = [1, 16, 256];

struct Measured {
    batches: u64,
    elapsed: Duration,
    disk_bytes: u64,
}

impl Measured {
    fn per_second(&self, count: u64) -> f64 {
        count as f64 / self.elapsed.as_secs_f64()
    }
}

fn wal_dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|item| item.unwrap().metadata().unwrap().len())
        .sum()
}

fn measure_storage(dir: &Path, batch_size: usize, duration: Duration) -> Measured {
    let (mut storage, _) = Storage::open(dir, StorageOptions::default()).expect("open storage");
    let start_bytes = wal_dir_bytes(dir);
    let mut next_index = 1u64;
    let mut batches = 0u64;
    let started = Instant::now();
    while started.elapsed() < duration {
        let entries: Vec<Entry> = (0..batch_size as u64)
            .map(|offset| Entry {
                term: 1,
                index: next_index + offset,
                payload: EntryPayload::Normal(vec![0xab; ENTRY_DATA_BYTES]),
            })
            .collect();
        storage.append(&entries).unwrap();
        next_index += batch_size as u64;
        storage
            .save_hard_state(&HardState {
                term: 1,
                vote: Some(1),
                commit: next_index - 1,
            })
            .unwrap();
        storage.sync().unwrap();
        batches += 1;
    }
    let elapsed = started.elapsed();
    drop(storage);
    Measured {
        batches,
        elapsed,
        disk_bytes: wal_dir_bytes(dir) - start_bytes,
    }
}

/// The same bytes per fdatasync as one storage batch, written straight to a file.
fn measure_raw(path: &Path, bytes_per_sync: usize, duration: Duration) -> Measured {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .unwrap();
    file.sync_all().unwrap();
    let buffer = vec![0xcd; bytes_per_sync.max(1)];
    let mut batches = 0u64;
    let started = Instant::now();
    while started.elapsed() < duration {
        file.write_all(&buffer).unwrap();
        file.sync_data().unwrap();
        batches += 1;
    }
    Measured {
        batches,
        elapsed: started.elapsed(),
        disk_bytes: batches * buffer.len() as u64,
    }
}

fn main() {
    let base: PathBuf = std::env::var_os("RINGRAFT_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let seconds: u64 = std::env::var("RINGRAFT_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let duration = Duration::from_secs(seconds);
    let work = tempfile::tempdir_in(&base).expect("bench directory");
    println!(
        "storage append benchmark: entries of {ENTRY_DATA_BYTES} data bytes, one sync per batch, \
         {seconds} s per measurement, in {}",
        base.display()
    );
    println!(
        "{:>6} {:>12} {:>12} {:>10} {:>12} {:>14} {:>14} {:>7}",
        "batch",
        "appends/s",
        "batches/s",
        "data MB/s",
        "disk MB/s",
        "bytes/batch",
        "raw syncs/s",
        "ratio"
    );
    for batch_size in BATCH_SIZES {
        let wal_dir = work.path().join(format!("wal-{batch_size}"));
        let storage = measure_storage(&wal_dir, batch_size, duration);
        let bytes_per_batch = (storage.disk_bytes / storage.batches.max(1)) as usize;
        let raw = measure_raw(
            &work.path().join(format!("raw-{batch_size}")),
            bytes_per_batch,
            duration,
        );
        let appends = storage.batches * batch_size as u64;
        let batches_per_second = storage.per_second(storage.batches);
        let raw_per_second = raw.per_second(raw.batches);
        println!(
            "{:>6} {:>12.0} {:>12.0} {:>10.2} {:>12.2} {:>14} {:>14.0} {:>7.2}",
            batch_size,
            storage.per_second(appends),
            batches_per_second,
            storage.per_second(appends * ENTRY_DATA_BYTES as u64) / 1e6,
            storage.per_second(storage.disk_bytes) / 1e6,
            bytes_per_batch,
            raw_per_second,
            batches_per_second / raw_per_second,
        );
    }
    println!("ratio = storage batches/s ÷ raw write+fdatasync/s of the same bytes per sync");
}
