//! Crashes of the register log: records appended but not synced are lost entirely or as a prefix,
//! never corrupt; synced ones always survive. The crash is simulated the way tests/crash.rs does
//! it (the file cut at every byte of the unsynced tail, or zero-filled), by dropping the store
//! without a sync (the process dies), and on the fault filesystem (tests/registers_power_loss.rs).

mod common;

use common::record_offsets;
use common::registers::*;
use ringraft_paxos::Record;
use ringraft_storage::{RegisterStore, RegisterStoreOptions};

/// One big segment, so the whole history is one file to cut.
fn one_segment() -> RegisterStoreOptions {
    RegisterStoreOptions {
        segment_bytes: 1 << 20,
        ..small_options()
    }
}

/// Synced records `a`, then `b` appended and synced too (so their bytes are on disk to cut).
/// Returns the directory, the segment's length after `a`, and both batches.
fn history() -> (tempfile::TempDir, u64, Vec<Record>, Vec<Record>) {
    let temp = tempfile::tempdir().unwrap();
    let mut driver = Driver::new(11);
    let (mut store, _) = RegisterStore::open(temp.path(), one_segment()).unwrap();
    let mut a = Vec::new();
    for _ in 0..10 {
        a.extend(driver.batch(5));
    }
    store.append(&a).unwrap();
    store.sync().unwrap();
    let synced = std::fs::metadata(&register_segments(temp.path())[0])
        .unwrap()
        .len();
    let mut b = Vec::new();
    while b.len() < 6 {
        b.extend(driver.batch(3));
    }
    store.append(&b).unwrap();
    store.sync().unwrap();
    assert_eq!(register_segments(temp.path()).len(), 1);
    (temp, synced, a, b)
}

/// How many records of the unsynced batch lie wholly below `len`.
fn whole_records_below(bytes: &[u8], synced: u64, len: u64) -> usize {
    record_offsets(bytes)
        .iter()
        .zip(record_offsets(bytes).iter().skip(1).chain([&bytes.len()]))
        .filter(|(start, end)| **start as u64 >= synced && **end as u64 <= len)
        .count()
}

#[test]
fn a_cut_anywhere_in_the_unsynced_tail_keeps_the_synced_records_and_a_prefix() {
    let (original, synced, a, b) = history();
    let segment = register_segments(original.path()).remove(0);
    let bytes = std::fs::read(&segment).unwrap();
    for cut in synced..=bytes.len() as u64 {
        let copy = copy_dir(original.path());
        let file = copy.path().join(segment.file_name().unwrap());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&file)
            .unwrap()
            .set_len(cut)
            .unwrap();
        let kept = whole_records_below(&bytes, synced, cut);
        let (mut store, recovered) = RegisterStore::open(copy.path(), one_segment())
            .unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        let expected: Vec<Record> = a.iter().chain(&b[..kept]).cloned().collect();
        assert_eq!(recovered, expected, "cut at {cut}");
        // The torn tail is gone: appends continue after the last whole record.
        store.append(&b[kept..]).unwrap();
        store.sync().unwrap();
        drop(store);
        let (_, again) = RegisterStore::open(copy.path(), one_segment()).unwrap();
        let all: Vec<Record> = a.iter().chain(&b).cloned().collect();
        assert_eq!(again, all, "cut at {cut}, then the rest appended");
    }
}

#[test]
fn a_zero_filled_unsynced_tail_is_a_torn_tail() {
    let (original, synced, a, b) = history();
    let segment = register_segments(original.path()).remove(0);
    let bytes = std::fs::read(&segment).unwrap();
    let starts: Vec<usize> = record_offsets(&bytes)
        .into_iter()
        .filter(|start| *start as u64 >= synced)
        .collect();
    for (kept, start) in starts.iter().enumerate() {
        // Zeros over the rest of the file, over a record's payload only, and past the end.
        for (zero_from, extra) in [(*start, 0), (*start + 17, 0), (*start, 4096)] {
            let copy = copy_dir(original.path());
            let file = copy.path().join(segment.file_name().unwrap());
            let mut damaged = bytes.clone();
            damaged[zero_from..].fill(0);
            damaged.extend(std::iter::repeat_n(0, extra));
            std::fs::write(&file, &damaged).unwrap();
            let (_, recovered) = RegisterStore::open(copy.path(), one_segment())
                .unwrap_or_else(|e| panic!("zeros from {zero_from} (+{extra}): {e}"));
            let expected: Vec<Record> = a.iter().chain(&b[..kept]).cloned().collect();
            assert_eq!(recovered, expected, "zeros from {zero_from} (+{extra})");
        }
    }
}

#[test]
fn a_process_crash_loses_unsynced_records_entirely_or_as_a_prefix() {
    for segment_bytes in [1 << 20, 1024] {
        let options = RegisterStoreOptions {
            segment_bytes,
            ..small_options()
        };
        let temp = tempfile::tempdir().unwrap();
        let mut driver = Driver::new(segment_bytes);
        let mut synced = Vec::new();
        let mut unsynced = Vec::new();
        {
            let (mut store, _) = RegisterStore::open(temp.path(), options.clone()).unwrap();
            for _ in 0..5 {
                synced.extend(driver.batch(5));
            }
            store.append(&synced).unwrap();
            store.sync().unwrap();
            for _ in 0..20 {
                let batch = driver.batch(5);
                store.append(&batch).unwrap();
                unsynced.extend(batch);
            }
            // Dropped without sync: the process dies with its buffer.
        }
        let (_, recovered) = RegisterStore::open(temp.path(), options).unwrap();
        assert!(
            recovered.starts_with(&synced),
            "segment_bytes {segment_bytes}: a synced record was lost"
        );
        let tail = &recovered[synced.len()..];
        assert!(
            unsynced.starts_with(tail),
            "segment_bytes {segment_bytes}: what survived is no prefix of the unsynced records"
        );
        if segment_bytes == 1 << 20 {
            assert!(tail.is_empty(), "nothing was written out before the sync");
        } else {
            assert!(!tail.is_empty(), "rotation wrote out part of the batch");
        }
    }
}
