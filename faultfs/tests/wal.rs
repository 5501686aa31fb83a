//! ringraft's own WAL (`ringraft-storage`) on top of the layer: after a power loss exactly what the
//! storage synced is there, and recovery follows docs/storage.md. This is what the fault campaign
//! relies on: the layer really forgets what a missing fsync would lose, and nothing more.
//! Needs root and /dev/fuse; skips without them.

mod common;

use std::path::Path;

use common::*;
use ringraft_raft::{ConfState, Entry, EntryPayload, HardState, Snapshot, SnapshotMeta};
use ringraft_storage::{segment_file_name, Recovered, Storage, StorageOptions};

fn options(segment_bytes_max: u64) -> StorageOptions {
    StorageOptions {
        segment_bytes_max,
        record_bytes_max: 64 << 10,
        snapshot_bytes_max: 1 << 20,
        // Small, so that unsynced appends are written to the filesystem (not just buffered in the
        // process) before the power loss.
        write_buffer_bytes: 512,
    }
}

fn entries(first: u64, last: u64, term: u64) -> Vec<Entry> {
    (first..=last)
        .map(|index| Entry {
            term,
            index,
            payload: EntryPayload::Normal(format!("entry {index} of term {term}").into_bytes()),
        })
        .collect()
}

fn open(dir: &Path, options: &StorageOptions) -> (Storage, Recovered) {
    Storage::open(dir, options.clone()).unwrap_or_else(|e| panic!("opening the WAL: {e}"))
}

fn len(path: &Path) -> u64 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .len()
}

#[test]
fn after_power_loss_the_wal_holds_exactly_the_synced_records() {
    let Some(m) = mount("after_power_loss_the_wal_holds_exactly_the_synced_records") else {
        return;
    };
    let options = options(64 << 20);
    let dir = m.mnt.join("raft");
    let (mut storage, recovered) = open(&dir, &options);
    assert_eq!(recovered, Recovered::default());
    let synced_state = HardState {
        term: 1,
        vote: Some(1),
        commit: 20,
    };
    storage.append(&entries(1, 20, 1)).unwrap();
    storage.save_hard_state(&synced_state).unwrap();
    storage.sync().unwrap();
    storage.append(&entries(21, 60, 1)).unwrap();
    storage
        .save_hard_state(&HardState {
            commit: 60,
            ..synced_state
        })
        .unwrap();
    // The unsynced records reached the filesystem (readers see them) but not the disk.
    let segment = segment_file_name(1);
    let visible = len(&dir.join(&segment));
    let durable = len(&m.backing.join("raft").join(&segment));
    assert!(
        visible > durable,
        "unsynced appends must be in the page cache: visible {visible} bytes, durable {durable}"
    );
    // The process dies (its buffer is lost with it), then the power goes.
    drop(storage);
    let report = m.fs.power_loss();
    assert!(report.dropped_cache_bytes > 0, "{report:?}");
    assert_eq!(len(&dir.join(&segment)), durable);

    let (mut storage, recovered) = open(&dir, &options);
    assert_eq!(recovered.entries, entries(1, 20, 1));
    assert_eq!(recovered.hard_state, synced_state);
    assert_eq!(recovered.snapshot, None);
    // Appends continue at the end of what survived, and survive the next power loss once synced.
    storage.append(&entries(21, 25, 2)).unwrap();
    storage.sync().unwrap();
    drop(storage);
    m.fs.power_loss();
    let (_, recovered) = open(&dir, &options);
    let mut expected = entries(1, 20, 1);
    expected.extend(entries(21, 25, 2));
    assert_eq!(recovered.entries, expected);
}

#[test]
fn after_power_loss_across_segment_rotation_every_synced_record_survives_and_the_tail_is_lost() {
    let Some(m) = mount(
        "after_power_loss_across_segment_rotation_every_synced_record_survives_and_the_tail_is_lost",
    ) else {
        return;
    };
    // Small segments: rotation happens inside the unsynced appends. Rotation itself syncs the
    // segment it closes and creates the next one durably (docs/storage.md, "Writing").
    let options = options(1024);
    let dir = m.mnt.join("raft");
    let (mut storage, _) = open(&dir, &options);
    storage.append(&entries(1, 30, 1)).unwrap();
    storage.sync().unwrap();
    storage.append(&entries(31, 80, 1)).unwrap();
    let segments_before = storage.segment_count();
    drop(storage);
    // What reached the filesystem, as a restart without power loss would recover it.
    let (storage, visible) = open(&dir, &options);
    let last_visible = visible.entries.last().map_or(0, |e| e.index);
    assert!(
        last_visible > 30,
        "unsynced appends must reach the filesystem"
    );
    drop(storage);
    m.fs.power_loss();
    let (storage, recovered) = open(&dir, &options);
    let last = recovered.entries.last().map_or(0, |e| e.index);
    assert_eq!(
        recovered.entries,
        entries(1, last, 1),
        "recovered entries must be a prefix of what was appended"
    );
    assert!(
        last >= 30,
        "a synced entry was lost: recovered up to {last}"
    );
    assert!(
        last < last_visible,
        "the unsynced tail of the active segment (up to {last_visible}) survived the power loss"
    );
    assert!(storage.segment_count() <= segments_before);
}

#[test]
fn a_snapshot_saved_without_a_wal_sync_is_completed_by_recovery() {
    let Some(m) = mount("a_snapshot_saved_without_a_wal_sync_is_completed_by_recovery") else {
        return;
    };
    let options = options(64 << 20);
    let dir = m.mnt.join("raft");
    let (mut storage, _) = open(&dir, &options);
    storage.append(&entries(1, 20, 1)).unwrap();
    storage.sync().unwrap();
    let snapshot = Snapshot {
        meta: SnapshotMeta {
            index: 10,
            term: 1,
            conf_state: ConfState {
                voters: vec![1, 2, 3],
                ..ConfState::default()
            },
        },
        data: b"state machine at 10".to_vec(),
    };
    // save_snapshot makes the file durable itself (temp file, fsync, rename, directory fsync);
    // its WAL marker waits for the next sync, which never comes.
    storage.save_snapshot(&snapshot).unwrap();
    // More entries reach the filesystem unsynced; the power loss must take them.
    storage.append(&entries(21, 60, 1)).unwrap();
    drop(storage);
    m.fs.power_loss();
    // docs/storage.md, recovery step 7: the snapshot file is there, its marker is not; the log
    // holds entry 10 of term 1, so the entries after it stay.
    let (_, recovered) = open(&dir, &options);
    assert_eq!(recovered.snapshot, Some(snapshot));
    assert_eq!(recovered.entries, entries(11, 20, 1));
}
