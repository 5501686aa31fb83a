//! The register store on the fault filesystem (ringraft-faultfs): a power loss drops everything
//! not fsynced (file data, and directory entries not covered by a directory fsync). Synced
//! records survive, unsynced ones are lost entirely or as a prefix, and a power loss after any
//! step of a compaction recovers the state: the fsync discipline, not the page cache, carries it.
//! Needs root and /dev/fuse; skips (saying so) without them.

mod common;

use std::io::Write;

use common::registers::*;
use ringraft_faultfs::FaultFs;
use ringraft_paxos::Record;
use ringraft_storage::{RegisterStore, StorageError};

struct Mounted {
    fs: FaultFs,
    mnt: std::path::PathBuf,
    _holder: tempfile::TempDir,
}

fn mount(test: &str) -> Option<Mounted> {
    if let Some(reason) = ringraft_faultfs::mount_unavailable() {
        let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
        return None;
    }
    let holder = tempfile::tempdir().unwrap();
    let backing = holder.path().join("backing");
    let mnt = holder.path().join("mnt");
    std::fs::create_dir(&backing).unwrap();
    std::fs::create_dir(&mnt).unwrap();
    let fs = FaultFs::mount(&backing, &mnt).unwrap_or_else(|e| {
        panic!("{test}: root and /dev/fuse are here, yet mounting failed: {e}")
    });
    let mnt = fs.mountpoint().to_path_buf();
    // The store's directory is created (and its parent fsynced) by open.
    Some(Mounted {
        fs,
        mnt,
        _holder: holder,
    })
}

#[test]
fn after_a_power_loss_synced_records_survive_and_unsynced_ones_are_a_prefix() {
    let Some(m) = mount("after_a_power_loss_synced_records_survive_and_unsynced_ones_are_a_prefix")
    else {
        return;
    };
    let dir = m.mnt.join("registers");
    let mut driver = Driver::new(31);
    let mut synced = Vec::new();
    let mut unsynced = Vec::new();
    {
        let (mut store, _) = open(&dir);
        for _ in 0..10 {
            let batch = driver.batch(4);
            store.append(&batch).unwrap();
            synced.extend(batch);
            store.sync().unwrap();
        }
        // Rotation (1 KiB segments) writes and fsyncs parts of these; the rest is lost.
        for _ in 0..10 {
            let batch = driver.batch(4);
            store.append(&batch).unwrap();
            unsynced.extend(batch);
        }
    }
    m.fs.power_loss();
    let (_, recovered) = open(&dir);
    assert!(recovered.starts_with(&synced), "a synced record was lost");
    let tail = &recovered[synced.len()..];
    assert!(
        unsynced.starts_with(tail),
        "what survived is no prefix of the unsynced records"
    );
    assert!(
        tail.len() < unsynced.len(),
        "unsynced records were not all durable"
    );
}

#[test]
fn a_power_loss_after_any_step_of_compaction_recovers_the_state() {
    let Some(m) = mount("a_power_loss_after_any_step_of_compaction_recovers_the_state") else {
        return;
    };
    let mut steps = 1;
    loop {
        let dir = m.mnt.join(format!("registers-{steps}"));
        let mut driver = Driver::new(32);
        let (mut store, _) = open(&dir);
        let mut appended = Vec::new();
        for round in 0..2 {
            for _ in 0..20 {
                let batch = driver.batch(4);
                store.append(&batch).unwrap();
                appended.extend(batch);
                store.sync().unwrap();
            }
            if round == 0 {
                store.compact(State::of(&appended).live()).unwrap();
            }
        }
        let expected = State::of(&appended);
        store.inject_crash_in_compaction(steps);
        let done = match store.compact(expected.live()) {
            Ok(()) => true,
            Err(error) => {
                assert!(matches!(error, StorageError::Poisoned(_)), "{error}");
                false
            }
        };
        drop(store);
        m.fs.power_loss();
        let (mut store, recovered) = RegisterStore::open(&dir, small_options())
            .unwrap_or_else(|e| panic!("power loss after compaction step {steps}: {e}"));
        assert_eq!(
            State::of(&recovered),
            expected,
            "power loss after step {steps}"
        );
        let more = [Record::BallotsReserved {
            counter_below: 1 << 50,
        }];
        let mut expected_after = expected.clone();
        expected_after.apply(&more[0]);
        store.append(&more).unwrap();
        store.compact(expected_after.live()).unwrap();
        drop(store);
        m.fs.power_loss();
        assert_eq!(
            State::of(&open(&dir).1),
            expected_after,
            "a compaction after recovery, then a power loss (step {steps})"
        );
        if done {
            break;
        }
        steps += 1;
    }
    assert!(steps > 8, "{steps}");
}
