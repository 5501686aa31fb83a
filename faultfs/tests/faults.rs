//! Injected faults through a real mount: errors come back to the caller, a stall holds only
//! fsync, the memory bound gives ENOSPC. Needs root and /dev/fuse; skips without them.
//!
//! No test sleeps or asserts a duration: each waits for a condition the filesystem reports
//! (`FaultFs::wait_for`) and asserts the order of events.

mod common;

use std::os::unix::fs::FileExt;
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use ringraft_faultfs::{Errno, Limits};

/// Generous bound for a condition that should hold at once; only reached if the layer is broken.
const WAIT: Duration = Duration::from_secs(60);
/// A stall that only `heal` (or a power loss) can end within the test.
const FOREVER: Duration = Duration::from_secs(24 * 3600);

fn os_error(result: std::io::Result<()>) -> Option<i32> {
    result.err().and_then(|e| e.raw_os_error())
}

#[test]
fn injected_eio_comes_back_from_fsync_fdatasync_and_directory_fsync() {
    let Some(m) = mount("injected_eio_comes_back_from_fsync_fdatasync_and_directory_fsync") else {
        return;
    };
    let path = m.mnt.join("f");
    durable_file(&path, b"x");
    let file = open_rw(&path);
    file.write_all_at(b"y", 0).unwrap();
    m.fs.fail_fsync(Errno::EIO);
    assert_eq!(os_error(file.sync_all()), Some(libc::EIO));
    assert_eq!(os_error(file.sync_data()), Some(libc::EIO));
    assert_eq!(os_error(try_fsync_dir(&m.mnt)), Some(libc::EIO));
    // Other operations are unaffected.
    file.write_all_at(b"z", 1).unwrap();
    assert_eq!(read(&path).unwrap(), b"yz");
    m.fs.heal();
    file.sync_all().unwrap();
    try_fsync_dir(&m.mnt).unwrap();
    assert_eq!(m.fs.stats().injected_fsync_errors, 3);
}

#[test]
fn injected_enospc_comes_back_from_fsync() {
    let Some(m) = mount("injected_enospc_comes_back_from_fsync") else {
        return;
    };
    let path = m.mnt.join("f");
    durable_file(&path, b"x");
    let file = open_rw(&path);
    file.write_all_at(b"more", 1).unwrap();
    m.fs.fail_fsync(Errno::ENOSPC);
    assert_eq!(os_error(file.sync_all()), Some(libc::ENOSPC));
    assert_eq!(os_error(try_fsync_dir(&m.mnt)), Some(libc::ENOSPC));
}

#[test]
fn injected_enospc_comes_back_from_write_and_changes_nothing() {
    let Some(m) = mount("injected_enospc_comes_back_from_write_and_changes_nothing") else {
        return;
    };
    let path = m.mnt.join("f");
    durable_file(&path, b"before");
    let file = open_rw(&path);
    m.fs.fail_write(Errno::ENOSPC);
    let error = file.write_all_at(b"after!", 0).unwrap_err();
    assert_eq!(error.raw_os_error(), Some(libc::ENOSPC));
    assert_eq!(read(&path).unwrap(), b"before");
    // fsync still works while writes fail.
    file.sync_all().unwrap();
    m.fs.heal();
    file.write_all_at(b"after!", 0).unwrap();
    assert_eq!(read(&path).unwrap(), b"after!");
}

#[test]
fn an_o_dsync_write_fails_with_the_injected_fsync_error() {
    let Some(m) = mount("an_o_dsync_write_fails_with_the_injected_fsync_error") else {
        return;
    };
    use std::os::unix::fs::OpenOptionsExt;
    let path = m.mnt.join("f");
    durable_file(&path, b"old");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DSYNC)
        .open(&path)
        .unwrap();
    m.fs.fail_fsync(Errno::EIO);
    let error = file.write_all_at(b"new", 0).unwrap_err();
    assert_eq!(error.raw_os_error(), Some(libc::EIO));
    m.fs.heal();
    drop(file);
    m.fs.power_loss();
    assert_eq!(read(&path).unwrap(), b"old");
}

/// The fsyncgate trap: after an fsync fails, retrying it succeeds, yet the data it covered is not
/// durable (Linux marks the pages clean after a failed writeback).
#[test]
fn after_a_failed_fsync_a_retry_succeeds_but_the_data_is_lost() {
    let Some(m) = mount("after_a_failed_fsync_a_retry_succeeds_but_the_data_is_lost") else {
        return;
    };
    let path = m.mnt.join("f");
    durable_file(&path, b"old");
    let file = open_rw(&path);
    file.write_all_at(b"new", 0).unwrap();
    m.fs.fail_fsync(Errno::EIO);
    assert_eq!(os_error(file.sync_all()), Some(libc::EIO));
    m.fs.heal();
    file.sync_all().unwrap();
    assert_eq!(read(&path).unwrap(), b"new", "readers still see the pages");
    drop(file);
    m.fs.power_loss();
    assert_eq!(read(&path).unwrap(), b"old");
}

#[test]
fn unsynced_data_past_the_memory_bound_is_refused_with_enospc() {
    let limits = Limits {
        cache_bytes_max: 64 * 1024,
        ..Limits::default()
    };
    let Some(m) = mount_with(
        "unsynced_data_past_the_memory_bound_is_refused_with_enospc",
        limits,
    ) else {
        return;
    };
    let path = m.mnt.join("f");
    durable_file(&path, b"");
    let file = open_rw(&path);
    file.write_all_at(&[1; 64 * 1024], 0).unwrap();
    let error = file.write_all_at(&[2; 4096], 64 * 1024).unwrap_err();
    assert_eq!(error.raw_os_error(), Some(libc::ENOSPC));
    assert_eq!(m.fs.stats().cache_bytes, 64 * 1024);
    // An fsync frees the memory; the write then fits.
    file.sync_all().unwrap();
    assert_eq!(m.fs.stats().cache_bytes, 0);
    file.write_all_at(&[2; 4096], 64 * 1024).unwrap();
}

/// Starts an fsync of `path` on a thread; its result arrives on the returned channel.
fn fsync_in_background(path: std::path::PathBuf) -> mpsc::Receiver<std::io::Result<()>> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let result = open_rw(&path).sync_all();
        let _ = sender.send(result);
    });
    receiver
}

#[test]
fn a_stalled_fsync_stalls_only_fsync() {
    let Some(m) = mount("a_stalled_fsync_stalls_only_fsync") else {
        return;
    };
    let path = m.mnt.join("wal");
    durable_file(&path, b"synced");
    open_rw(&path).write_all_at(b" pending", 6).unwrap();
    durable_file(&m.mnt.join("other"), b"other");
    m.fs.stall_fsync(FOREVER);
    let fsync = fsync_in_background(path.clone());
    m.fs.wait_for(WAIT, |s| s.stalled_fsyncs == 1)
        .expect("the fsync reached the filesystem and is held");
    // While it is held, reads of the same file and work on other files all return. They run on
    // a thread so that a layer that blocks them fails this test instead of hanging it.
    let mnt = m.mnt.clone();
    let others = std::thread::spawn(move || {
        let seen = read(&mnt.join("wal")).unwrap();
        std::fs::write(mnt.join("other"), b"rewritten").unwrap();
        let other = read(&mnt.join("other")).unwrap();
        std::fs::create_dir(mnt.join("dir")).unwrap();
        (seen, other, names(&mnt))
    });
    let (sender, done) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(others.join());
    });
    let (seen, other, listing) = done
        .recv_timeout(WAIT)
        .expect("reads and writes must go on while an fsync is stalled")
        .expect("the reading thread panicked");
    assert_eq!(seen, b"synced pending");
    assert_eq!(other, b"rewritten");
    assert!(listing.contains(&"dir".to_string()), "{listing:?}");
    // ... and the fsync has still not returned.
    assert!(
        fsync.try_recv().is_err(),
        "the fsync returned while stalled"
    );
    assert_eq!(m.fs.stats().stalled_fsyncs, 1);
    m.fs.heal();
    fsync
        .recv_timeout(WAIT)
        .expect("heal releases the stalled fsync")
        .expect("the released fsync succeeds");
    m.fs.power_loss();
    assert_eq!(
        read(&path).unwrap(),
        b"synced pending",
        "it made the data durable"
    );
}

#[test]
fn a_stall_ends_by_itself_and_the_fsync_then_succeeds() {
    let Some(m) = mount("a_stall_ends_by_itself_and_the_fsync_then_succeeds") else {
        return;
    };
    let path = m.mnt.join("f");
    durable_file(&path, b"x");
    m.fs.stall_fsync(Duration::from_millis(50));
    let fsync = fsync_in_background(path);
    fsync
        .recv_timeout(WAIT)
        .expect("a short stall ends without heal")
        .expect("the fsync succeeds after its stall");
    let stats = m.fs.stats();
    assert_eq!(stats.stalled_fsyncs, 0);
    assert!(
        stats.faults.fsync_stall.is_some(),
        "the stall is still in force"
    );
}

#[test]
fn a_power_loss_during_a_stall_fails_the_fsync_and_keeps_nothing_of_it() {
    let Some(m) = mount("a_power_loss_during_a_stall_fails_the_fsync_and_keeps_nothing_of_it")
    else {
        return;
    };
    let path = m.mnt.join("f");
    durable_file(&path, b"old");
    open_rw(&path).write_all_at(b"new", 0).unwrap();
    m.fs.stall_fsync(FOREVER);
    let fsync = fsync_in_background(path.clone());
    m.fs.wait_for(WAIT, |s| s.stalled_fsyncs == 1)
        .expect("the fsync is held");
    m.fs.power_loss();
    let result = fsync.recv_timeout(WAIT).expect("the fsync is answered");
    assert_eq!(os_error(result), Some(libc::EIO));
    m.fs.heal();
    assert_eq!(read(&path).unwrap(), b"old");
}
