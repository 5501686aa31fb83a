//! Each durability rule through a real mount: what a power loss keeps and what it drops.
//! Needs root and /dev/fuse; skips (and says so) without them.

mod common;

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;

use common::*;

#[test]
fn write_without_fsync_is_gone_after_power_loss() {
    let Some(m) = mount("write_without_fsync_is_gone_after_power_loss") else {
        return;
    };
    let path = m.mnt.join("f");
    durable_file(&path, b"synced");
    let mut file = open_rw(&path);
    file.seek(SeekFrom::End(0)).unwrap();
    file.write_all(b" and unsynced").unwrap();
    // Reads see the unsynced data, through this handle and through a new open.
    let mut seen = Vec::new();
    file.read_at(&mut [0; 0], 0).unwrap();
    std::fs::File::open(&path)
        .unwrap()
        .read_to_end(&mut seen)
        .unwrap();
    assert_eq!(seen, b"synced and unsynced");
    drop(file);
    let report = m.fs.power_loss();
    assert_eq!(report.reverted_files, 1, "{report:?}");
    assert_eq!(read(&path).unwrap(), b"synced");
    m.fs.check_invariants_or_panic();
}

#[test]
fn write_with_fsync_survives_power_loss() {
    let Some(m) = mount("write_with_fsync_survives_power_loss") else {
        return;
    };
    let path = m.mnt.join("f");
    durable_file(&path, b"first");
    let file = open_rw(&path);
    file.write_all_at(b"FIRST, then more", 0).unwrap();
    file.sync_all().unwrap();
    drop(file);
    m.fs.power_loss();
    assert_eq!(read(&path).unwrap(), b"FIRST, then more");
    assert_eq!(read(&m.backing.join("f")).unwrap(), b"FIRST, then more");
}

#[test]
fn fdatasync_counts_as_fsync_for_data_and_size() {
    let Some(m) = mount("fdatasync_counts_as_fsync_for_data_and_size") else {
        return;
    };
    let path = m.mnt.join("f");
    durable_file(&path, b"");
    let file = open_rw(&path);
    file.write_all_at(&[7; 10_000], 0).unwrap();
    file.sync_data().unwrap();
    file.write_all_at(&[8; 10], 10_000).unwrap();
    drop(file);
    m.fs.power_loss();
    assert_eq!(read(&path).unwrap(), vec![7; 10_000]);
}

#[test]
fn rename_without_directory_fsync_is_undone_after_power_loss() {
    let Some(m) = mount("rename_without_directory_fsync_is_undone_after_power_loss") else {
        return;
    };
    durable_file(&m.mnt.join("current"), b"old");
    durable_file(&m.mnt.join("next.tmp"), b"new");
    std::fs::rename(m.mnt.join("next.tmp"), m.mnt.join("current")).unwrap();
    assert_eq!(names(&m.mnt), ["current"]);
    assert_eq!(read(&m.mnt.join("current")).unwrap(), b"new");
    m.fs.power_loss();
    assert_eq!(names(&m.mnt), ["current", "next.tmp"]);
    assert_eq!(read(&m.mnt.join("current")).unwrap(), b"old");
    assert_eq!(read(&m.mnt.join("next.tmp")).unwrap(), b"new");
}

#[test]
fn rename_with_directory_fsync_survives_power_loss() {
    let Some(m) = mount("rename_with_directory_fsync_survives_power_loss") else {
        return;
    };
    durable_file(&m.mnt.join("current"), b"old");
    durable_file(&m.mnt.join("next.tmp"), b"new");
    std::fs::rename(m.mnt.join("next.tmp"), m.mnt.join("current")).unwrap();
    fsync_dir(&m.mnt);
    m.fs.power_loss();
    assert_eq!(names(&m.mnt), ["current"]);
    assert_eq!(read(&m.mnt.join("current")).unwrap(), b"new");
}

#[test]
fn create_without_directory_fsync_vanishes_even_if_the_file_was_fsynced() {
    let Some(m) = mount("create_without_directory_fsync_vanishes_even_if_the_file_was_fsynced")
    else {
        return;
    };
    write_file(&m.mnt.join("fsynced"), b"data", true);
    write_file(&m.mnt.join("not-fsynced"), b"data", false);
    assert_eq!(names(&m.mnt), ["fsynced", "not-fsynced"]);
    let report = m.fs.power_loss();
    assert_eq!(report.removed_inodes, 2, "{report:?}");
    assert!(names(&m.mnt).is_empty(), "{:?}", names(&m.mnt));
    // With the directory fsynced the file stays, with the data of its last fsync.
    write_file(&m.mnt.join("fsynced"), b"data", true);
    fsync_dir(&m.mnt);
    m.fs.power_loss();
    assert_eq!(read(&m.mnt.join("fsynced")).unwrap(), b"data");
}

#[test]
fn unlink_without_directory_fsync_is_undone() {
    let Some(m) = mount("unlink_without_directory_fsync_is_undone") else {
        return;
    };
    let path = m.mnt.join("f");
    durable_file(&path, b"still here");
    std::fs::remove_file(&path).unwrap();
    assert_eq!(read(&path), None);
    m.fs.power_loss();
    assert_eq!(read(&path).unwrap(), b"still here");
    std::fs::remove_file(&path).unwrap();
    fsync_dir(&m.mnt);
    m.fs.power_loss();
    assert_eq!(read(&path), None);
}

#[test]
fn truncation_without_fsync_is_undone() {
    let Some(m) = mount("truncation_without_fsync_is_undone") else {
        return;
    };
    let path = m.mnt.join("f");
    durable_file(&path, b"0123456789");
    open_rw(&path).set_len(4).unwrap();
    assert_eq!(read(&path).unwrap(), b"0123");
    m.fs.power_loss();
    assert_eq!(read(&path).unwrap(), b"0123456789");
    // Extending without fsync is undone too.
    open_rw(&path).set_len(20).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 20);
    m.fs.power_loss();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 10);
}

#[test]
fn truncation_with_fsync_survives() {
    let Some(m) = mount("truncation_with_fsync_survives") else {
        return;
    };
    let path = m.mnt.join("f");
    durable_file(&path, b"0123456789");
    let file = open_rw(&path);
    file.set_len(4).unwrap();
    file.sync_all().unwrap();
    drop(file);
    m.fs.power_loss();
    assert_eq!(read(&path).unwrap(), b"0123");
}

#[test]
fn a_directory_created_without_parent_fsync_vanishes_with_its_files() {
    let Some(m) = mount("a_directory_created_without_parent_fsync_vanishes_with_its_files") else {
        return;
    };
    let dir = m.mnt.join("d");
    std::fs::create_dir(&dir).unwrap();
    durable_file(&dir.join("f"), b"x");
    m.fs.power_loss();
    assert!(names(&m.mnt).is_empty());
    std::fs::create_dir(&dir).unwrap();
    durable_file(&dir.join("f"), b"x");
    fsync_dir(&m.mnt);
    m.fs.power_loss();
    assert_eq!(read(&dir.join("f")).unwrap(), b"x");
}

#[test]
fn the_backing_directory_holds_the_durable_state_and_a_new_mount_starts_from_it() {
    let Some(m) =
        mount("the_backing_directory_holds_the_durable_state_and_a_new_mount_starts_from_it")
    else {
        return;
    };
    durable_file(&m.mnt.join("kept"), b"durable");
    let file = open_rw(&m.mnt.join("kept"));
    file.write_all_at(b"DURABLE?", 0).unwrap();
    drop(file);
    write_file(&m.mnt.join("lost"), b"never linked", true);
    let common::Mounted {
        fs,
        backing,
        mnt,
        holder: _holder,
    } = m;
    fs.unmount().unwrap();
    assert_eq!(names(&backing), [ringraft_faultfs::ORPHANS_DIR, "kept"]);
    assert_eq!(read(&backing.join("kept")).unwrap(), b"durable");
    let again = ringraft_faultfs::FaultFs::mount(&backing, &mnt).unwrap();
    assert_eq!(names(&mnt), ["kept"]);
    assert_eq!(read(&mnt.join("kept")).unwrap(), b"durable");
    drop(again);
}

/// Writes crossing page boundaries, sparse extension and overwrites read back as written, and the
/// durable state after fsync equals them byte for byte.
#[test]
fn reads_see_every_write_and_fsync_persists_exactly_them() {
    let Some(m) = mount("reads_see_every_write_and_fsync_persists_exactly_them") else {
        return;
    };
    let path = m.mnt.join("f");
    durable_file(&path, &[1; 5000]);
    let file = open_rw(&path);
    let mut expected = vec![1u8; 5000];
    for (offset, len, byte) in [(4090usize, 20usize, 2u8), (12_000, 100, 3), (0, 1, 4)] {
        file.write_all_at(&vec![byte; len], offset as u64).unwrap();
        if expected.len() < offset + len {
            expected.resize(offset + len, 0);
        }
        expected[offset..offset + len].fill(byte);
    }
    assert_eq!(read(&path).unwrap(), expected);
    file.sync_all().unwrap();
    drop(file);
    m.fs.power_loss();
    assert_eq!(read(&path).unwrap(), expected);
    assert_eq!(read(&m.backing.join("f")).unwrap(), expected);
}

/// The kernel sends no fsync for an O_DSYNC write to a direct-I/O FUSE file; the layer must make
/// such a write durable itself (and O_SYNC, and pwritev2 with RWF_DSYNC).
#[test]
fn an_o_dsync_write_is_durable_when_it_returns() {
    let Some(m) = mount("an_o_dsync_write_is_durable_when_it_returns") else {
        return;
    };
    use std::os::unix::fs::OpenOptionsExt;
    let path = m.mnt.join("f");
    durable_file(&path, b"");
    for (flag, text) in [(libc::O_DSYNC, "dsync "), (libc::O_SYNC, "sync")] {
        let file = std::fs::OpenOptions::new()
            .append(true)
            .custom_flags(flag)
            .open(&path)
            .unwrap();
        (&file).write_all(text.as_bytes()).unwrap();
    }
    m.fs.power_loss();
    assert_eq!(read(&path).unwrap(), b"dsync sync");
}

trait CheckInvariants {
    fn check_invariants_or_panic(&self);
}

impl CheckInvariants for ringraft_faultfs::FaultFs {
    fn check_invariants_or_panic(&self) {
        if let Err(broken) = self.controller().check_invariants() {
            panic!("model invariant broken: {broken}");
        }
    }
}
