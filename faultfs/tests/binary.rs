//! The `ringraft-faultfs` binary, driven from outside as a campaign harness would: mount in the
//! foreground, faults through the control socket (and the `ctl` subcommand), stop on SIGTERM or
//! `unmount`, nothing left mounted. Needs root and /dev/fuse; skips without them.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use ringraft_faultfs::socket;

const BIN: &str = env!("CARGO_BIN_EXE_ringraft-faultfs");
const WAIT: Duration = Duration::from_secs(60);

struct Daemon {
    child: Child,
    mnt: PathBuf,
    backing: PathBuf,
    control: PathBuf,
    _holder: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Only if a test failed midway: do not leave the process or its mount behind.
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let path = std::ffi::CString::new(self.mnt.to_str().unwrap()).unwrap();
            // SAFETY: valid NUL-terminated path.
            unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

/// Starts `ringraft-faultfs mount` and waits for its `mounted` line.
fn start(test: &str) -> Option<Daemon> {
    if let Some(reason) = ringraft_faultfs::mount_unavailable() {
        skip(test, &reason);
        return None;
    }
    let holder = tempfile::tempdir().unwrap();
    let backing = holder.path().join("backing");
    let mnt = holder.path().join("mnt");
    let control = holder.path().join("control.sock");
    std::fs::create_dir(&backing).unwrap();
    std::fs::create_dir(&mnt).unwrap();
    let mut child = Command::new(BIN)
        .arg("mount")
        .arg("--backing")
        .arg(&backing)
        .arg("--mountpoint")
        .arg(&mnt)
        .arg("--control")
        .arg(&control)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("start ringraft-faultfs");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let mnt = mnt.canonicalize().unwrap();
    assert_eq!(
        line.trim(),
        format!("mounted {}", mnt.display()),
        "first line"
    );
    Some(Daemon {
        child,
        mnt,
        backing,
        control,
        _holder: holder,
    })
}

fn ctl(control: &Path, command: &str) -> String {
    let answer = socket::send(control, command).unwrap_or_else(|e| panic!("{command}: {e}"));
    assert!(answer.starts_with("ok"), "{command}: {answer}");
    answer
}

fn status_field(control: &Path, key: &str) -> String {
    let status = ctl(control, "status");
    status
        .split_whitespace()
        .find_map(|pair| pair.strip_prefix(&format!("{key}=")).map(str::to_string))
        .unwrap_or_else(|| panic!("no {key} in {status}"))
}

/// Waits for the process to exit, without sleeping blindly: the exit status is polled against a
/// deadline that only a hung process reaches.
fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ringraft-faultfs did not exit"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_binary_is_driven_through_its_control_socket_and_stops_on_sigterm() {
    let Some(mut d) = start("the_binary_is_driven_through_its_control_socket_and_stops_on_sigterm")
    else {
        return;
    };
    assert!(in_proc_mounts(&d.mnt));
    let path = d.mnt.join("f");
    durable_file(&path, b"synced");
    open_rw(&path).write_all_at(b"SYNCED?", 0).unwrap();
    assert_eq!(status_field(&d.control, "unsynced_files"), "1");
    let answer = ctl(&d.control, "power-loss");
    assert!(answer.contains("reverted_files=1"), "{answer}");
    assert_eq!(read(&path).unwrap(), b"synced");

    ctl(&d.control, "fail-fsync eio");
    assert_eq!(
        open_rw(&path)
            .sync_all()
            .err()
            .and_then(|e| e.raw_os_error()),
        Some(libc::EIO)
    );
    ctl(&d.control, "fail-write enospc");
    assert_eq!(
        open_rw(&path)
            .write_all_at(b"x", 0)
            .err()
            .and_then(|e| e.raw_os_error()),
        Some(libc::ENOSPC)
    );
    assert_eq!(status_field(&d.control, "fsync_fault"), "eio");
    ctl(&d.control, "heal");
    assert_eq!(status_field(&d.control, "fsync_fault"), "none");
    open_rw(&path).sync_all().unwrap();

    // A stall, through the ctl subcommand as a shell harness would use it.
    let out = Command::new(BIN)
        .arg("ctl")
        .arg("--control")
        .arg(&d.control)
        .args(["stall-fsync", "3600000"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    let stalled_path = path.clone();
    let (sender, fsync) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(open_rw(&stalled_path).sync_all());
    });
    let deadline = std::time::Instant::now() + WAIT;
    while status_field(&d.control, "stalled_fsyncs") != "1" {
        assert!(
            std::time::Instant::now() < deadline,
            "the fsync never stalled"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        read(&path).unwrap(),
        b"synced",
        "reads go on during the stall"
    );
    assert!(
        fsync.try_recv().is_err(),
        "the fsync returned while stalled"
    );
    ctl(&d.control, "heal");
    fsync.recv_timeout(WAIT).unwrap().unwrap();

    let bad = socket::send(&d.control, "explode").unwrap();
    assert!(bad.starts_with("err "), "{bad}");

    // SIGTERM: unmount, exit 0, socket removed.
    // SAFETY: kill on the child's pid.
    assert_eq!(
        unsafe { libc::kill(d.child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let status = wait_exit(&mut d.child);
    assert!(status.success(), "{status}");
    assert!(!in_proc_mounts(&d.mnt), "still mounted after SIGTERM");
    assert!(!d.control.exists(), "control socket left behind");
    assert_eq!(read(&d.backing.join("f")).unwrap(), b"synced");
}

#[test]
fn the_unmount_command_stops_the_binary() {
    let Some(mut d) = start("the_unmount_command_stops_the_binary") else {
        return;
    };
    ctl(&d.control, "unmount");
    let status = wait_exit(&mut d.child);
    assert!(status.success(), "{status}");
    assert!(!in_proc_mounts(&d.mnt));
}

#[test]
fn an_unmount_from_outside_ends_the_binary_with_an_error() {
    let Some(mut d) = start("an_unmount_from_outside_ends_the_binary_with_an_error") else {
        return;
    };
    let path = std::ffi::CString::new(d.mnt.to_str().unwrap()).unwrap();
    // SAFETY: valid NUL-terminated path.
    assert_eq!(unsafe { libc::umount2(path.as_ptr(), 0) }, 0);
    let status = wait_exit(&mut d.child);
    assert!(!status.success(), "{status}");
    assert!(!in_proc_mounts(&d.mnt));
}
