//! The register store round trip: a real acceptor's Ready records, appended batch by batch and
//! synced, come back in order and rebuild the same acceptor.

mod common;

use common::registers::*;
use ringraft_paxos::{Acceptor, Config, KeyState, Proposer, Record};
use ringraft_storage::{RegisterStore, StorageError};

#[test]
fn records_come_back_in_order_and_rebuild_the_acceptor() {
    let temp = tempfile::tempdir().unwrap();
    let mut driver = Driver::new(7);
    let mut appended = Vec::new();
    {
        let (mut store, recovered) = open(temp.path());
        assert!(recovered.is_empty());
        for turn in 0..60 {
            // Several Readys per turn, one sync per turn (group commit).
            for _ in 0..3 {
                let records = driver.batch(4);
                store.append(&records).unwrap();
                appended.extend(records);
            }
            if turn % 10 == 0 {
                let reservation = [Record::BallotsReserved {
                    counter_below: (turn + 1) << 16,
                }];
                store.append(&reservation).unwrap();
                appended.extend(reservation);
            }
            store.sync().unwrap();
        }
    }
    assert!(appended.len() > 100, "the driver must produce records");
    assert!(
        appended.iter().any(|r| matches!(r, Record::Forgot { .. })),
        "the driver must garbage-collect some tombstones"
    );
    assert!(register_segments(temp.path()).len() > 3, "segments rotate");
    let (_, recovered) = open(temp.path());
    assert_eq!(recovered, appended);
    let restored = Acceptor::restore(Config::new(NODE), &recovered).unwrap();
    assert_eq!(acceptor_state(&restored), acceptor_state(&driver.acceptor));
    assert!(!acceptor_state(&restored).0.is_empty());
    Proposer::restore(Config::new(NODE), &recovered).unwrap();
    assert_eq!(State::of(&recovered).counter_below, 51 << 16);
}

#[test]
fn a_second_open_of_the_directory_is_refused() {
    let temp = tempfile::tempdir().unwrap();
    let (_store, _) = open(temp.path());
    match try_open(temp.path()) {
        Err(StorageError::Locked { holder_pid, .. }) => {
            assert_eq!(holder_pid, Some(std::process::id()))
        }
        other => panic!("expected Locked, got {other:?}"),
    }
}

#[test]
fn an_oversized_record_is_refused_and_nothing_of_its_batch_is_written() {
    let temp = tempfile::tempdir().unwrap();
    let small = Record::BallotsReserved { counter_below: 5 };
    let huge = Record::Forgot {
        key: vec![7; 70 << 10],
        floor: Default::default(),
    };
    {
        let (mut store, _) = open(temp.path());
        let error = store.append(&[small.clone(), huge]).unwrap_err();
        assert!(
            matches!(error, StorageError::InvalidRequest(_)) && !error.is_fatal(),
            "{error}"
        );
        store.append(std::slice::from_ref(&small)).unwrap();
        store.sync().unwrap();
    }
    assert_eq!(open(temp.path()).1, vec![small]);
}

#[test]
fn sync_without_appends_writes_nothing_and_the_directory_is_created() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data").join("registers");
    let (mut store, _) = RegisterStore::open(&dir, small_options()).unwrap();
    let before = store.log_bytes();
    store.sync().unwrap();
    store.append(&[]).unwrap();
    store.sync().unwrap();
    assert_eq!(store.log_bytes(), before);
    assert!(!store.needs_compaction());
    let state = KeyState {
        epoch: 1,
        promised: Default::default(),
        accepted: None,
    };
    let record = Record::Key {
        key: b"k".to_vec(),
        state,
    };
    for _ in 0..100 {
        store.append(std::slice::from_ref(&record)).unwrap();
    }
    assert!(store.log_bytes() > before);
    assert!(store.needs_compaction(), "{} bytes", store.log_bytes());
}
