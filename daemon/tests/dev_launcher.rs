//! `ringraftd dev` as an operator runs it: a second launcher on a directory in use refuses and
//! touches nothing; a node that dies under a running launcher is reported.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use common::{wait_until, Cluster, TempDir, RINGRAFTD, WAIT};
use ringraft_daemon::dev;

#[test]
fn a_second_launcher_on_a_directory_in_use_refuses_and_touches_nothing() {
    let cluster = Cluster::start("dev-in-use", 3, &[]);
    let leader = cluster.wait_for_leader(&[1, 2, 3]);
    let pids: Vec<i32> = (1..=3)
        .map(|id| cluster.pid(id).expect("node pid"))
        .collect();
    let second = Command::new(RINGRAFTD)
        .args(["dev", "--nodes", "3", "--dir"])
        .arg(&cluster.dir)
        .stdin(Stdio::null())
        .output()
        .expect("run a second launcher");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "the second launcher must refuse");
    assert!(
        stderr.contains("is in use by a running dev cluster, pid"),
        "unexpected refusal: {stderr}"
    );
    for (id, pid) in (1..=3).zip(&pids) {
        assert!(dev::process_alive(*pid), "n{id} (pid {pid}) was stopped");
        assert_eq!(cluster.pid(id), Some(*pid), "n{id} was restarted");
    }
    assert_eq!(cluster.wait_for_leader(&[1, 2, 3]), leader);
}

#[test]
fn node_logs_written_to_a_file_are_plain_text() {
    let cluster = Cluster::start("dev-plain-logs", 1, &[]);
    cluster.wait_for_leader(&[1]);
    let log = cluster.log(1);
    assert!(log.contains("INFO"), "the node logged nothing: {log}");
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escape codes in a log file: {log}"
    );
}

#[test]
fn a_launcher_reports_a_node_that_dies() {
    let tmp = TempDir::new("dev-death");
    let dir = tmp.0.join("cluster");
    let mut launcher = Command::new(RINGRAFTD)
        .args(["dev", "--nodes", "3", "--dir"])
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ringraftd dev");
    let stdout = launcher.stdout.take().expect("stdout");
    let ready = BufReader::new(stdout)
        .lines()
        .next()
        .and_then(Result::ok)
        .unwrap_or_default();
    assert!(ready.starts_with("ringraft dev cluster ready"), "{ready}");
    let (lines_tx, lines) = mpsc::channel();
    let stderr = launcher.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let pid_of_n3 = || {
        std::fs::read_to_string(dev::pid_path(&dir, 3))
            .ok()
            .and_then(|text| text.trim().parse::<i32>().ok())
    };
    wait_until("n3 writes its pid file", || pid_of_n3().is_some());
    let pid = pid_of_n3().expect("pid");
    // SAFETY: kill(2) on the pid of a node this test's launcher started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let deadline = Instant::now() + WAIT;
    let reported = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains("n3 exited") => break line,
            Ok(_) => continue,
            Err(err) => panic!("the launcher never reported n3's death: {err}"),
        }
    };
    assert!(reported.contains("n3 exited: signal 9"), "{reported}");
    // SAFETY: kill(2) on the launcher this test started.
    unsafe { libc::kill(launcher.id() as i32, libc::SIGTERM) };
    let _ = launcher.wait();
}

/// SIGTERM the moment "ready" is read (as a test harness does) stops the cluster cleanly: the
/// launcher catches it (exit 0, not killed by the signal) and waits for its nodes, so none
/// outlives it.
#[test]
fn sigterm_right_after_ready_stops_every_node_before_the_launcher_exits() {
    let tmp = TempDir::new("dev-early-sigterm");
    let dir = tmp.0.join("cluster");
    let mut launcher = Command::new(RINGRAFTD)
        .args(["dev", "--nodes", "1", "--dir"])
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ringraftd dev");
    let stdout = launcher.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let ready = lines.next().and_then(Result::ok).unwrap_or_default();
    // SAFETY: kill(2) on the launcher this test started.
    unsafe { libc::kill(launcher.id() as i32, libc::SIGTERM) };
    assert!(ready.starts_with("ringraft dev cluster ready"), "{ready}");
    let pid: i32 = std::fs::read_to_string(dev::pid_path(&dir, 1))
        .expect("n1 pid file")
        .trim()
        .parse()
        .expect("pid");
    let status = launcher.wait().expect("launcher exit");
    assert_eq!(status.code(), Some(0), "launcher: {status:?}");
    // SAFETY: kill(pid, 0) only asks whether the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    assert!(!alive, "node pid {pid} outlived the launcher");
}
