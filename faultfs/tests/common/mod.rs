//! Shared by the FUSE tests: mounting (or skipping when that cannot work here) and small file
//! helpers that say which syscall failed.
#![allow(dead_code)]

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use ringraft_faultfs::{FaultFs, Limits};

pub struct Mounted {
    pub fs: FaultFs,
    pub mnt: PathBuf,
    pub backing: PathBuf,
    // Declared last: dropped after the unmount.
    pub holder: tempfile::TempDir,
}

/// Prints why the test is skipped, past the test harness's output capture so that it shows in
/// the run.
pub fn skip(test: &str, reason: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
}

/// Mounts a fresh fault filesystem over an empty backing directory, or returns `None` (after
/// printing why) when not root or without /dev/fuse. Being able to try and failing is an error.
pub fn mount(test: &str) -> Option<Mounted> {
    mount_with(test, Limits::default())
}

pub fn mount_with(test: &str, limits: Limits) -> Option<Mounted> {
    if let Some(reason) = ringraft_faultfs::mount_unavailable() {
        skip(test, &reason);
        return None;
    }
    let holder = tempfile::tempdir().expect("temp dir");
    let backing = holder.path().join("backing");
    let mnt = holder.path().join("mnt");
    std::fs::create_dir(&backing).unwrap();
    std::fs::create_dir(&mnt).unwrap();
    let fs = FaultFs::mount_with(&backing, &mnt, limits).unwrap_or_else(|e| {
        panic!("{test}: root and /dev/fuse are here, yet mounting failed: {e}")
    });
    let mnt = fs.mountpoint().to_path_buf();
    Some(Mounted {
        fs,
        mnt,
        backing,
        holder,
    })
}

/// Is `path` a mount point in /proc/mounts?
pub fn in_proc_mounts(path: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/mounts").expect("/proc/mounts");
    let wanted = path.to_str().expect("UTF-8 test path");
    mounts
        .lines()
        .any(|line| line.split(' ').nth(1) == Some(wanted))
}

pub fn fsync_dir(path: &Path) {
    File::open(path)
        .and_then(|dir| dir.sync_all())
        .unwrap_or_else(|e| panic!("fsync of directory {}: {e}", path.display()));
}

pub fn try_fsync_dir(path: &Path) -> std::io::Result<()> {
    File::open(path)?.sync_all()
}

/// Creates (or truncates) `path` with `data`, fsyncs it if asked, and closes it.
pub fn write_file(path: &Path, data: &[u8], fsync: bool) {
    let mut file = File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    file.write_all(data)
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    if fsync {
        file.sync_all()
            .unwrap_or_else(|e| panic!("fsync {}: {e}", path.display()));
    }
}

/// Creates `path` durably: data fsynced, and the parent directory fsynced.
pub fn durable_file(path: &Path, data: &[u8]) {
    write_file(path, data, true);
    fsync_dir(path.parent().expect("parent"));
}

pub fn open_rw(path: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

pub fn read(path: &Path) -> Option<Vec<u8>> {
    match std::fs::read(path) {
        Ok(data) => Some(data),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("read {}: {e}", path.display()),
    }
}

pub fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
