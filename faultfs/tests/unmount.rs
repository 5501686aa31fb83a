//! Unmounting leaves nothing mounted, also with files still open and when mounted over its own
//! backing directory. Needs root and /dev/fuse; skips without them.

mod common;

use std::io::Write;

use common::*;
use ringraft_faultfs::FaultFs;

#[test]
fn nothing_is_left_mounted_after_drop() {
    let Some(m) = mount("nothing_is_left_mounted_after_drop") else {
        return;
    };
    let mnt = m.mnt.clone();
    durable_file(&mnt.join("f"), b"x");
    assert!(in_proc_mounts(&mnt), "mounted while the handle lives");
    assert!(m.fs.is_mounted());
    let common::Mounted { fs, holder, .. } = m;
    drop(fs);
    assert!(!in_proc_mounts(&mnt), "still in /proc/mounts after drop");
    drop(holder);
}

#[test]
fn nothing_is_left_mounted_even_with_files_open() {
    let Some(m) = mount("nothing_is_left_mounted_even_with_files_open") else {
        return;
    };
    let mnt = m.mnt.clone();
    let mut open = std::fs::File::create(mnt.join("busy")).unwrap();
    open.write_all(b"x").unwrap();
    let common::Mounted { fs, holder, .. } = m;
    fs.unmount().unwrap();
    assert!(
        !in_proc_mounts(&mnt),
        "still in /proc/mounts with a file open"
    );
    // The connection was aborted (where the FUSE control filesystem can be mounted): the open
    // file no longer reaches the filesystem, and nothing hangs.
    let late = open.write_all(b"y");
    let fusectl = std::fs::read_to_string("/proc/mounts")
        .unwrap()
        .lines()
        .any(|line| line.split(' ').nth(2) == Some("fusectl"));
    if fusectl {
        assert_eq!(
            late.err().and_then(|e| e.raw_os_error()),
            Some(libc::ENOTCONN),
            "a write after the forced unmount must fail"
        );
    }
    drop(open);
    drop(holder);
}

#[test]
fn it_can_be_mounted_over_its_own_backing_directory() {
    if let Some(reason) = ringraft_faultfs::mount_unavailable() {
        skip("it_can_be_mounted_over_its_own_backing_directory", &reason);
        return;
    }
    let holder = tempfile::tempdir().unwrap();
    let dir = holder.path().join("data");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("before"), b"on disk before the mount").unwrap();
    let fs = FaultFs::mount(&dir, &dir).unwrap();
    let dir = fs.mountpoint().to_path_buf();
    assert!(in_proc_mounts(&dir));
    assert_eq!(
        read(&dir.join("before")).unwrap(),
        b"on disk before the mount"
    );
    durable_file(&dir.join("synced"), b"kept");
    write_file(&dir.join("unsynced"), b"lost", false);
    drop(fs);
    assert!(!in_proc_mounts(&dir));
    assert_eq!(
        names(&dir),
        [ringraft_faultfs::ORPHANS_DIR, "before", "synced"]
    );
}

#[test]
fn a_mount_point_inside_its_backing_directory_is_refused() {
    // Refused before anything that needs root, so this runs everywhere.
    let holder = tempfile::tempdir().unwrap();
    let inner = holder.path().join("mnt");
    std::fs::create_dir(&inner).unwrap();
    let error = FaultFs::mount(holder.path(), &inner).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput, "{error}");
    assert!(
        error.to_string().contains("inside the backing directory"),
        "{error}"
    );
    assert!(!in_proc_mounts(&inner));
}
