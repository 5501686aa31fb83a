//! Damaged directories: torn tails are cut off, everything else stops recovery with an error that
//! names the file and the offset.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use ringraft_raft::HardState;
use ringraft_storage::StorageError;

/// Writes entries 1..=`last` (synced) and returns the directory.
fn populated(last: u64) -> tempfile::TempDir {
    let temp = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(temp.path());
    storage.append(&entries(1, last, 1)).unwrap();
    storage.sync().unwrap();
    temp
}

fn copy_dir(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for item in std::fs::read_dir(from).unwrap() {
        let path = item.unwrap().path();
        std::fs::copy(&path, to.path().join(path.file_name().unwrap())).unwrap();
    }
    to
}

fn last_segment(dir: &Path) -> PathBuf {
    segment_files(dir).pop().unwrap()
}

fn expect_corrupt_at(error: StorageError, file: &Path, at: u64) {
    match &error {
        StorageError::Corrupt { path, offset, .. } => {
            assert_eq!(path, file, "{error}");
            assert_eq!(*offset, at, "{error}");
        }
        other => panic!(
            "expected Corrupt at {} offset {at}, got {other}",
            file.display()
        ),
    }
    let message = error.to_string();
    assert!(message.contains(&file.display().to_string()), "{message}");
    assert!(message.contains(&format!("offset {at}")), "{message}");
}

#[test]
fn cut_anywhere_in_the_last_record_drops_only_that_record() {
    let original = populated(40);
    let segment = last_segment(original.path());
    let bytes = std::fs::read(&segment).unwrap();
    let last_record = *record_offsets(&bytes).last().unwrap();
    assert!(last_record > 0, "last segment must hold entries");
    for cut in last_record..bytes.len() {
        let copy = copy_dir(original.path());
        let file = copy.path().join(segment.file_name().unwrap());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&file)
            .unwrap()
            .set_len(cut as u64)
            .unwrap();
        let (mut storage, recovered) = try_open(copy.path())
            .unwrap_or_else(|e| panic!("cut at {cut} of {}: {e}", bytes.len()));
        assert_eq!(recovered.entries, entries(1, 39, 1), "cut at {cut}");
        assert_eq!(
            std::fs::metadata(&file).unwrap().len(),
            last_record as u64,
            "torn tail cut off at {cut}"
        );
        storage.append(&entries(40, 41, 2)).unwrap();
        storage.sync().unwrap();
        drop(storage);
        let (_, again) = open(copy.path());
        assert_eq!(again.entries.len(), 41, "cut at {cut}");
    }
}

#[test]
fn zero_filled_last_record_is_a_torn_tail() {
    let original = populated(40);
    let segment = last_segment(original.path());
    let bytes = std::fs::read(&segment).unwrap();
    let last_record = *record_offsets(&bytes).last().unwrap();
    let payload_start = last_record + ringraft_storage::record::RECORD_HEADER_BYTES;
    // Whole record zeroed, payload partly zeroed, and zeroes running past the end (a file whose
    // size reached the disk before its data).
    for (zero_from, extra_zeros) in [
        (last_record, 0),
        (payload_start + 5, 0),
        (last_record, 4096),
    ] {
        let copy = copy_dir(original.path());
        let file = copy.path().join(segment.file_name().unwrap());
        let mut damaged = bytes.clone();
        damaged[zero_from..].fill(0);
        damaged.extend(std::iter::repeat_n(0, extra_zeros));
        std::fs::write(&file, &damaged).unwrap();
        let (_, recovered) = try_open(copy.path())
            .unwrap_or_else(|e| panic!("zeros from {zero_from} (+{extra_zeros}): {e}"));
        assert_eq!(recovered.entries, entries(1, 39, 1));
    }
}

#[test]
fn bit_flips_before_the_tail_name_file_and_offset() {
    let original = populated(40);
    let files = segment_files(original.path());
    assert!(files.len() >= 2);
    let last = files.last().unwrap();
    let last_bytes = std::fs::read(last).unwrap();
    let last_offsets = record_offsets(&last_bytes);
    let first_bytes = std::fs::read(&files[0]).unwrap();
    let first_offsets = record_offsets(&first_bytes);
    // A record in the middle of the last segment, and the last record of a closed segment
    // (closed segments were synced whole, so their ends are not torn tails either).
    let targets = [
        (
            last,
            last_offsets[last_offsets.len() / 2],
            last_offsets[last_offsets.len() / 2 + 1],
        ),
        (&files[0], *first_offsets.last().unwrap(), first_bytes.len()),
    ];
    for (file, start, end) in targets {
        for bit in start * 8..end * 8 {
            let copy = copy_dir(original.path());
            let damaged_file = copy.path().join(file.file_name().unwrap());
            let mut bytes = std::fs::read(&damaged_file).unwrap();
            bytes[bit / 8] ^= 1 << (bit % 8);
            std::fs::write(&damaged_file, &bytes).unwrap();
            let error = try_open(copy.path()).expect_err("a flipped bit must stop recovery");
            expect_corrupt_at(error, &damaged_file, start as u64);
        }
    }
}

#[test]
fn closed_segment_cut_short_is_corruption() {
    let original = populated(40);
    let first = segment_files(original.path()).remove(0);
    let len = std::fs::metadata(&first).unwrap().len();
    let copy = copy_dir(original.path());
    let file = copy.path().join(first.file_name().unwrap());
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let error = try_open(copy.path()).unwrap_err();
    assert!(
        matches!(&error, StorageError::Corrupt { path, .. } if *path == file),
        "{error}"
    );
}

#[test]
fn missing_middle_segment_is_named() {
    let original = populated(60);
    let files = segment_files(original.path());
    assert!(files.len() >= 3);
    std::fs::remove_file(&files[1]).unwrap();
    let error = try_open(original.path()).unwrap_err();
    match &error {
        StorageError::Missing { path, .. } => assert_eq!(path, &files[1], "{error}"),
        other => panic!("expected Missing, got {other}"),
    }
}

#[test]
fn missing_first_segment_is_detected() {
    let original = populated(60);
    let files = segment_files(original.path());
    std::fs::remove_file(&files[0]).unwrap();
    let error = try_open(original.path()).unwrap_err();
    assert!(matches!(error, StorageError::Missing { .. }), "{error}");
}

#[test]
fn missing_last_segment_is_named() {
    let original = populated(60);
    let last = last_segment(original.path());
    std::fs::remove_file(&last).unwrap();
    let error = try_open(original.path()).unwrap_err();
    match &error {
        StorageError::Missing { path, .. } => assert_eq!(path, &last, "{error}"),
        other => panic!("expected Missing, got {other}"),
    }
}

#[test]
fn commit_beyond_the_log_is_detected() {
    let temp = tempfile::tempdir().unwrap();
    {
        let (mut storage, _) = open(temp.path());
        storage.append(&entries(1, 60, 1)).unwrap();
        storage
            .save_hard_state(&HardState {
                term: 1,
                vote: Some(1),
                commit: 60,
            })
            .unwrap();
        storage.sync().unwrap();
    }
    // Cut the entries away but keep the hard state that promises them.
    let last = last_segment(temp.path());
    let bytes = std::fs::read(&last).unwrap();
    let offsets = record_offsets(&bytes);
    let hard_state_record = bytes[*offsets.last().unwrap()..].to_vec();
    let mut damaged = bytes[..offsets[1]].to_vec();
    damaged.extend_from_slice(&hard_state_record);
    std::fs::write(&last, &damaged).unwrap();
    let error = try_open(temp.path()).unwrap_err();
    assert!(matches!(error, StorageError::Missing { .. }), "{error}");
}

#[test]
fn missing_snapshot_file_is_named() {
    let temp = tempfile::tempdir().unwrap();
    {
        let (mut storage, _) = open(temp.path());
        storage.append(&entries(1, 30, 1)).unwrap();
        storage.save_snapshot(&snapshot(20, 1, b"s")).unwrap();
        storage.sync().unwrap();
    }
    let snapshot_path = temp.path().join(ringraft_storage::snapshot_file_name(20));
    std::fs::remove_file(&snapshot_path).unwrap();
    let error = try_open(temp.path()).unwrap_err();
    match &error {
        StorageError::Missing { path, .. } => assert_eq!(path, &snapshot_path, "{error}"),
        other => panic!("expected Missing, got {other}"),
    }
}

#[test]
fn damaged_snapshot_file_is_corruption() {
    let temp = tempfile::tempdir().unwrap();
    {
        let (mut storage, _) = open(temp.path());
        storage.append(&entries(1, 30, 1)).unwrap();
        storage
            .save_snapshot(&snapshot(20, 1, &[5u8; 3000]))
            .unwrap();
        storage.sync().unwrap();
    }
    let snapshot_path = temp.path().join(ringraft_storage::snapshot_file_name(20));
    let mut bytes = std::fs::read(&snapshot_path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(&snapshot_path, &bytes).unwrap();
    let error = try_open(temp.path()).unwrap_err();
    assert!(
        matches!(&error, StorageError::Corrupt { path, .. } if *path == snapshot_path),
        "{error}"
    );
}

#[test]
fn snapshot_whose_marker_was_not_synced_is_completed_on_recovery() {
    for (snapshot_term, expected) in [(1, entries(21, 30, 1)), (7, Vec::new())] {
        let temp = tempfile::tempdir().unwrap();
        {
            let (mut storage, _) = open(temp.path());
            storage.append(&entries(1, 30, 1)).unwrap();
            storage.sync().unwrap();
            // The snapshot file is durable at once; its marker waits for a sync that never comes.
            storage
                .save_snapshot(&snapshot(20, snapshot_term, b"s"))
                .unwrap();
        }
        for _ in 0..2 {
            let (mut storage, recovered) = open(temp.path());
            assert_eq!(recovered.snapshot.unwrap().meta.term, snapshot_term);
            assert_eq!(recovered.entries, expected, "snapshot term {snapshot_term}");
            assert_eq!(storage.first_index(), 21);
            // Appends after recovery must not be undone by the completed snapshot next time.
            if storage.last_index() == 20 {
                storage.append(&entries(21, 30, snapshot_term)).unwrap();
                storage.append(&entries(21, 21, snapshot_term)).unwrap();
                storage.append(&entries(22, 30, snapshot_term)).unwrap();
                storage.sync().unwrap();
                drop(storage);
                let (_, again) = open(temp.path());
                assert_eq!(again.entries, entries(21, 30, snapshot_term));
                break;
            }
        }
    }
}

/// Writes entries 1..=`last` of term 1 (synced) in a fresh directory, then runs `change`; if that
/// rotated to a new segment, drops the storage without a sync (the records after the new header
/// are lost) and returns what recovery finds. `None` when no rotation happened.
fn crash_after_change_that_rotates(
    last: u64,
    change: impl FnOnce(&mut ringraft_storage::Storage),
) -> Option<ringraft_storage::Recovered> {
    let temp = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(temp.path());
    storage.append(&entries(1, last, 1)).unwrap();
    storage.sync().unwrap();
    let segments_before = storage.segment_count();
    change(&mut storage);
    let rotated = storage.segment_count() > segments_before;
    drop(storage);
    rotated.then(|| open(temp.path()).1)
}

#[test]
fn snapshot_marker_that_opens_a_segment_and_is_lost_still_cuts_the_suffix() {
    // The snapshot's term differs from the log's at its index, so it drops entries above it. The
    // marker saying so can be the record that rotates: the new segment's header then names the
    // snapshot, and the marker after it is lost in the crash.
    let mut rotations = 0;
    for last in 20..120 {
        let Some(recovered) = crash_after_change_that_rotates(last, |storage| {
            storage.save_snapshot(&snapshot(10, 2, b"s")).unwrap();
        }) else {
            continue;
        };
        rotations += 1;
        assert_eq!(recovered.snapshot.unwrap().meta.index, 10);
        assert_eq!(recovered.entries, Vec::new(), "log of {last} entries");
    }
    assert!(
        rotations > 0,
        "no marker opened a segment: the case went untested"
    );
}

#[test]
fn conflicting_entry_that_opens_a_segment_and_is_lost_leaves_the_old_suffix() {
    // A crash after the rotation loses the conflicting entry; the log it was to truncate must then
    // come back whole (the durable state), not cut short without the entry that cut it.
    let mut rotations = 0;
    for last in 20..120 {
        let Some(recovered) = crash_after_change_that_rotates(last, |storage| {
            storage.append(&entries(last - 5, last - 5, 2)).unwrap();
        }) else {
            continue;
        };
        rotations += 1;
        assert_eq!(
            recovered.entries,
            entries(1, last, 1),
            "log of {last} entries"
        );
    }
    assert!(
        rotations > 0,
        "no conflicting entry opened a segment: the case went untested"
    );
}

#[test]
fn headerless_last_segment_from_a_crash_during_rotation_is_removed() {
    let original = populated(40);
    let files = segment_files(original.path());
    let next_seq = files.len() as u64 + 1;
    let partial = original
        .path()
        .join(ringraft_storage::segment_file_name(next_seq));
    std::fs::write(&partial, [1u8, 0, 0]).unwrap();
    let (mut storage, recovered) = open(original.path());
    assert_eq!(recovered.entries, entries(1, 40, 1));
    storage.append(&entries(41, 45, 1)).unwrap();
    storage.sync().unwrap();
    drop(storage);
    assert_eq!(open(original.path()).1.entries, entries(1, 45, 1));
}

#[test]
fn compaction_interrupted_after_removing_some_segments_recovers() {
    let temp = tempfile::tempdir().unwrap();
    {
        let (mut storage, _) = open(temp.path());
        storage.append(&entries(1, 80, 1)).unwrap();
        storage.save_snapshot(&snapshot(70, 1, b"at 70")).unwrap();
        storage.sync().unwrap();
    }
    // compact() removes oldest first; a crash after the first unlink leaves a contiguous suffix.
    let files = segment_files(temp.path());
    assert!(files.len() >= 4);
    std::fs::remove_file(&files[0]).unwrap();
    let (mut storage, recovered) = open(temp.path());
    assert_eq!(recovered.entries, entries(71, 80, 1));
    storage.compact(70).unwrap();
    assert!(storage.segment_count() < files.len() - 1);
    drop(storage);
    assert_eq!(open(temp.path()).1.entries, entries(71, 80, 1));
}

#[test]
fn storage_can_move_to_another_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<ringraft_storage::Storage>();
    assert_send::<StorageError>();
}
