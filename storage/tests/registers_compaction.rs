//! Compaction of the register store: a checkpoint holding the live records replaces the log's
//! prefix; a crash after any of its steps recovers the same state.

mod common;

use common::registers::*;
use ringraft_paxos::{Acceptor, Config, Record};
use ringraft_storage::{RegisterStore, StorageError};

/// Writes a history (synced turns, one earlier compaction, more turns, and a last batch that is
/// appended but not synced) and returns the store and every record appended.
pub fn history(dir: &std::path::Path, seed: u64) -> (RegisterStore, Driver, Vec<Record>) {
    let mut driver = Driver::new(seed);
    let (mut store, _) = open(dir);
    let mut appended = Vec::new();
    for round in 0..2 {
        for _ in 0..25 {
            let batch = driver.batch(4);
            store.append(&batch).unwrap();
            appended.extend(batch);
            store.sync().unwrap();
        }
        if round == 0 {
            store.compact(State::of(&appended).live()).unwrap();
        }
    }
    let batch = driver.batch(4);
    store.append(&batch).unwrap();
    appended.extend(batch);
    (store, driver, appended)
}

#[test]
fn after_compaction_reopen_gives_the_same_state_and_old_segments_are_gone() {
    let temp = tempfile::tempdir().unwrap();
    let (mut store, driver, mut appended) = history(temp.path(), 21);
    let state = State::of(&appended);
    assert_eq!(
        (state.keys.clone(), state.floor),
        acceptor_state(&driver.acceptor),
        "the test's fold is the acceptor's"
    );
    let before = register_segments(temp.path());
    assert!(before.len() > 3, "{before:?}");
    assert!(store.needs_compaction(), "{} log bytes", store.log_bytes());
    store.compact(state.live()).unwrap();
    assert!(!store.needs_compaction());
    let after = register_segments(temp.path());
    assert_eq!(after.len(), 1, "only the new active segment: {after:?}");
    assert!(!before.contains(&after[0]));
    let checkpoints = checkpoints(temp.path());
    assert_eq!(checkpoints.len(), 1, "the previous checkpoint is removed");
    // The checkpoint names the segment the log continues in.
    let active_seq: u64 = after[0].file_name().unwrap().to_str().unwrap()[4..24]
        .parse()
        .unwrap();
    assert!(checkpoints[0].ends_with(ringraft_storage::checkpoint_file_name(active_seq)));
    // Records after the checkpoint go to the log and come back after the checkpoint's.
    let more = [Record::BallotsReserved {
        counter_below: 1 << 40,
    }];
    store.append(&more).unwrap();
    store.sync().unwrap();
    appended.extend(more);
    drop(store);
    let (_, recovered) = open(temp.path());
    assert_eq!(recovered[..state.live().len()], state.live()[..]);
    assert_eq!(State::of(&recovered), State::of(&appended));
    let restored = Acceptor::restore(Config::new(NODE), &recovered).unwrap();
    assert_eq!(acceptor_state(&restored), acceptor_state(&driver.acceptor));
}

#[test]
fn a_crash_after_any_step_of_compaction_recovers_the_state() {
    let mut steps = 1;
    loop {
        let temp = tempfile::tempdir().unwrap();
        let (mut store, _, appended) = history(temp.path(), 22);
        let expected = State::of(&appended);
        store.inject_crash_in_compaction(steps);
        let done = match store.compact(expected.live()) {
            Ok(()) => true,
            Err(error) => {
                assert!(matches!(error, StorageError::Poisoned(_)), "{error}");
                assert!(
                    matches!(store.sync(), Err(StorageError::Poisoned(_))),
                    "a failed compaction poisons the store"
                );
                false
            }
        };
        drop(store);
        let (mut store, recovered) = try_open(temp.path())
            .unwrap_or_else(|e| panic!("crash after compaction step {steps}: {e}"));
        assert_eq!(State::of(&recovered), expected, "crash after step {steps}");
        assert!(checkpoints(temp.path()).len() <= 1, "step {steps}");
        // The recovered directory works on: append, compact, reopen.
        let more = [Record::BallotsReserved {
            counter_below: 1 << 50,
        }];
        let mut expected_after = expected.clone();
        expected_after.apply(&more[0]);
        store.append(&more).unwrap();
        store.compact(expected_after.live()).unwrap();
        drop(store);
        let (_, again) = open(temp.path());
        assert_eq!(State::of(&again), expected_after, "after step {steps}");
        if done {
            break;
        }
        steps += 1;
    }
    // Rotation (2), temp written, renamed, old checkpoint removed, at least 4 segments removed.
    assert!(
        steps > 8,
        "compaction has more steps than the test saw: {steps}"
    );
}

#[test]
fn a_refused_checkpoint_record_leaves_the_old_state() {
    let temp = tempfile::tempdir().unwrap();
    let (mut store, _, appended) = history(temp.path(), 23);
    let mut live = State::of(&appended).live();
    live.push(Record::Forgot {
        key: vec![1; 70 << 10],
        floor: Default::default(),
    });
    let error = store.compact(live).unwrap_err();
    assert!(matches!(error, StorageError::InvalidRequest(_)), "{error}");
    store.sync().unwrap();
    drop(store);
    assert_eq!(State::of(&open(temp.path()).1), State::of(&appended));
    assert!(std::fs::read_dir(temp.path()).unwrap().all(|item| !item
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".tmp")));
}
