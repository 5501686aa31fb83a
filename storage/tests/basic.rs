//! Behaviour of the storage API across clean restarts.

mod common;

use common::*;
use ringraft_raft::HardState;
use ringraft_storage::{Storage, StorageError, StorageOptions};

#[test]
fn fresh_directory_recovers_empty_and_is_created() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("node");
    let (storage, recovered) = open(&dir);
    assert_eq!(recovered, Default::default());
    assert_eq!((storage.first_index(), storage.last_index()), (1, 0));
    assert_eq!(segment_files(&dir).len(), 1);
}

#[test]
fn synced_entries_and_hard_state_survive_restart() {
    let temp = tempfile::tempdir().unwrap();
    let hard_state = HardState {
        term: 2,
        vote: Some(3),
        commit: 40,
    };
    {
        let (mut storage, _) = open(temp.path());
        storage.append(&entries(1, 30, 1)).unwrap();
        storage.append(&entries(31, 50, 2)).unwrap();
        storage.save_hard_state(&hard_state).unwrap();
        storage.sync().unwrap();
        assert!(storage.segment_count() > 1, "small segments must rotate");
    }
    let (storage, recovered) = open(temp.path());
    assert_eq!(recovered.hard_state, hard_state);
    let mut expected = entries(1, 30, 1);
    expected.extend(entries(31, 50, 2));
    assert_eq!(recovered.entries, expected);
    assert_eq!(storage.last_index(), 50);
    assert_eq!(storage.term(31), Some(2));
}

#[test]
fn unsynced_writes_below_the_buffer_size_are_not_recovered() {
    let temp = tempfile::tempdir().unwrap();
    {
        let (mut storage, _) = open(temp.path());
        storage.append(&entries(1, 3, 1)).unwrap();
        storage.sync().unwrap();
        storage.append(&entries(4, 4, 1)).unwrap();
        storage
            .save_hard_state(&HardState {
                term: 9,
                vote: None,
                commit: 4,
            })
            .unwrap();
    }
    let (_, recovered) = open(temp.path());
    assert_eq!(recovered.entries, entries(1, 3, 1));
    assert_eq!(recovered.hard_state, HardState::default());
}

#[test]
fn conflicting_append_truncates_the_stored_suffix() {
    let temp = tempfile::tempdir().unwrap();
    {
        let (mut storage, _) = open(temp.path());
        storage.append(&entries(1, 40, 1)).unwrap();
        storage.sync().unwrap();
        storage.append(&entries(12, 15, 3)).unwrap();
        storage.sync().unwrap();
        assert_eq!(storage.last_index(), 15);
    }
    let (_, recovered) = open(temp.path());
    let mut expected = entries(1, 11, 1);
    expected.extend(entries(12, 15, 3));
    assert_eq!(recovered.entries, expected);
}

#[test]
fn invalid_appends_are_refused_without_poisoning() {
    let temp = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(temp.path());
    storage.append(&entries(1, 5, 1)).unwrap();
    let gap = storage.append(&entries(7, 8, 1)).unwrap_err();
    assert!(matches!(gap, StorageError::InvalidRequest(_)), "{gap}");
    let mut holes = entries(6, 7, 1);
    holes[1].index = 9;
    assert!(matches!(
        storage.append(&holes),
        Err(StorageError::InvalidRequest(_))
    ));
    storage.append(&entries(6, 6, 1)).unwrap();
    storage.sync().unwrap();
    assert_eq!(storage.last_index(), 6);
}

#[test]
fn snapshot_with_matching_entry_keeps_the_suffix() {
    let temp = tempfile::tempdir().unwrap();
    {
        let (mut storage, _) = open(temp.path());
        storage.append(&entries(1, 30, 1)).unwrap();
        storage
            .save_snapshot(&snapshot(20, 1, b"state at 20"))
            .unwrap();
        storage.sync().unwrap();
        assert_eq!(storage.first_index(), 21);
    }
    let (_, recovered) = open(temp.path());
    assert_eq!(recovered.snapshot, Some(snapshot(20, 1, b"state at 20")));
    assert_eq!(recovered.entries, entries(21, 30, 1));
}

#[test]
fn snapshot_without_matching_entry_discards_the_log() {
    let temp = tempfile::tempdir().unwrap();
    {
        let (mut storage, _) = open(temp.path());
        storage.append(&entries(1, 30, 1)).unwrap();
        storage
            .save_snapshot(&snapshot(25, 4, b"leader's state"))
            .unwrap();
        storage.append(&entries(26, 28, 4)).unwrap();
        storage.sync().unwrap();
    }
    let (_, recovered) = open(temp.path());
    assert_eq!(recovered.snapshot.unwrap().meta.index, 25);
    assert_eq!(recovered.entries, entries(26, 28, 4));
}

#[test]
fn snapshot_beyond_the_log_then_appends() {
    let temp = tempfile::tempdir().unwrap();
    {
        let (mut storage, _) = open(temp.path());
        storage.append(&entries(1, 5, 1)).unwrap();
        storage.sync().unwrap();
        storage
            .save_snapshot(&snapshot(100, 3, b"far ahead"))
            .unwrap();
        storage.append(&entries(95, 105, 3)).unwrap();
        storage.sync().unwrap();
        assert_eq!((storage.first_index(), storage.last_index()), (101, 105));
    }
    let (_, recovered) = open(temp.path());
    assert_eq!(recovered.entries, entries(101, 105, 3));
}

#[test]
fn stale_snapshot_is_refused_and_storage_stays_usable() {
    let temp = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(temp.path());
    storage.append(&entries(1, 10, 1)).unwrap();
    storage.save_snapshot(&snapshot(8, 1, b"x")).unwrap();
    let stale = storage.save_snapshot(&snapshot(5, 1, b"y")).unwrap_err();
    assert!(matches!(
        stale,
        StorageError::StaleSnapshot {
            given: 5,
            stored: 8
        }
    ));
    storage.append(&entries(11, 11, 1)).unwrap();
    storage.sync().unwrap();
}

#[test]
fn compaction_drops_only_segments_wholly_behind_the_snapshot() {
    let temp = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(temp.path());
    storage.append(&entries(1, 60, 1)).unwrap();
    storage.sync().unwrap();
    let before = segment_files(temp.path()).len();
    assert!(before >= 4, "{before} segments");
    storage.save_snapshot(&snapshot(40, 1, b"at 40")).unwrap();
    storage.compact(40).unwrap();
    let after = segment_files(temp.path()).len();
    assert!(after < before, "nothing compacted");
    assert_eq!(after, storage.segment_count());
    drop(storage);
    let (storage, recovered) = open(temp.path());
    assert_eq!(recovered.entries, entries(41, 60, 1));
    assert_eq!(storage.first_index(), 41);
}

#[test]
fn compaction_index_below_the_snapshot_keeps_more() {
    let temp = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(temp.path());
    storage.append(&entries(1, 60, 1)).unwrap();
    storage.save_snapshot(&snapshot(50, 1, b"s")).unwrap();
    storage.compact(0).unwrap();
    let kept_all = storage.segment_count();
    storage.compact(50).unwrap();
    assert!(storage.segment_count() < kept_all);
}

#[test]
fn second_open_of_a_locked_directory_fails_clearly() {
    let temp = tempfile::tempdir().unwrap();
    let (first, _) = open(temp.path());
    let error = try_open(temp.path()).unwrap_err();
    match &error {
        StorageError::Locked { dir, holder_pid } => {
            assert_eq!(dir, temp.path());
            assert_eq!(*holder_pid, Some(std::process::id()));
        }
        other => panic!("expected Locked, got {other}"),
    }
    let message = error.to_string();
    assert!(message.contains("already in use"), "{message}");
    assert!(
        message.contains(&format!("pid {}", std::process::id())),
        "{message}"
    );
    drop(first);
    open(temp.path());
}

#[test]
fn oversized_entry_is_refused() {
    let temp = tempfile::tempdir().unwrap();
    let options = StorageOptions {
        record_bytes_max: 300,
        ..small_options()
    };
    let (mut storage, _) = Storage::open(temp.path(), options).unwrap();
    let mut big = entry(1, 1);
    big.payload = ringraft_raft::EntryPayload::Normal(vec![7; 400]);
    assert!(matches!(
        storage.append(&[big]),
        Err(StorageError::InvalidRequest(_))
    ));
}

#[test]
fn recovered_state_maps_onto_the_core_initial_state() {
    let temp = tempfile::tempdir().unwrap();
    {
        let (mut storage, _) = open(temp.path());
        storage.append(&entries(1, 30, 1)).unwrap();
        storage.save_snapshot(&snapshot(20, 1, b"image")).unwrap();
        storage.sync().unwrap();
    }
    let (_, recovered) = open(temp.path());
    let initial = recovered.into_initial_state(5);
    assert_eq!(initial.snapshot.unwrap().index, 20);
    assert_eq!(initial.snapshot_data, b"image");
    assert_eq!(
        initial.applied, 20,
        "applied is at least the snapshot index"
    );
    assert_eq!(initial.entries, entries(21, 30, 1));
}
