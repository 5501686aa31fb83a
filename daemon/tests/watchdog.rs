//! The systemd watchdog is fed only while the node loop makes progress: a loop stuck (here on
//! purpose, through the debug-build hook `RINGRAFTD_DEBUG_STALL_FILE`) gets no WATCHDOG=1, so
//! systemd would restart it; once it runs again, WATCHDOG=1 resumes. The test plays systemd's part
//! with its own NOTIFY_SOCKET and WATCHDOG_USEC.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::Instant;

use common::{wait_until, Cluster, TempDir, WAIT};

/// Half of this is the daemon's check period.
const WATCHDOG_USEC: &str = "400000";
/// Stalled checks in a row, with no WATCHDOG=1 among them, that show the watchdog starves.
const STALLED_CHECKS: usize = 4;

fn next_message(socket: &UnixDatagram, deadline: Instant, waiting_for: &str) -> String {
    let mut buffer = [0u8; 4096];
    let left = deadline.saturating_duration_since(Instant::now());
    assert!(!left.is_zero(), "timed out waiting for {waiting_for}");
    socket.set_read_timeout(Some(left)).expect("read timeout");
    let len = socket
        .recv(&mut buffer)
        .unwrap_or_else(|err| panic!("no notification while waiting for {waiting_for}: {err}"));
    String::from_utf8_lossy(&buffer[..len]).into_owned()
}

fn is_ping(message: &str) -> bool {
    message.lines().any(|line| line == "WATCHDOG=1")
}

fn is_stalled_status(message: &str) -> bool {
    message
        .lines()
        .any(|line| line.starts_with("STATUS=stalled: the node loop made no progress"))
}

fn wait_for_ping(socket: &UnixDatagram, what: &str) {
    let deadline = Instant::now() + WAIT;
    while !is_ping(&next_message(socket, deadline, what)) {}
}

#[test]
fn watchdog_is_fed_only_while_the_node_loop_makes_progress() {
    if !cfg!(debug_assertions) {
        eprintln!("skipped: the stall hook exists in debug builds only");
        return;
    }
    let tmp = TempDir::new("watchdog");
    let notify = tmp.0.join("notify.sock");
    let stall = tmp.0.join("stall");
    let socket = UnixDatagram::bind(&notify).expect("bind notify socket");
    let cluster = Cluster::start_with_env(
        "watchdog",
        1,
        &[],
        &[
            ("NOTIFY_SOCKET", &notify),
            ("WATCHDOG_USEC", Path::new(WATCHDOG_USEC)),
            ("RINGRAFTD_DEBUG_STALL_FILE", &stall),
        ],
    );
    cluster.wait_for_leader(&[1]);
    wait_for_ping(&socket, "WATCHDOG=1 from a healthy node loop");

    // Block the node loop and wait until it says it is blocked.
    std::fs::write(&stall, b"").expect("create the stall file");
    wait_until("the node loop to block", || {
        cluster
            .log(1)
            .contains("debug hook: the node loop is blocked")
    });
    // From the first check that finds no progress on, no WATCHDOG=1 may arrive while the loop
    // stays blocked: count stalled checks in a row; any ping starts the count again.
    let deadline = Instant::now() + WAIT;
    let mut in_a_row = 0;
    while in_a_row < STALLED_CHECKS {
        let message = next_message(
            &socket,
            deadline,
            &format!("{STALLED_CHECKS} stalled watchdog checks in a row without WATCHDOG=1"),
        );
        if is_ping(&message) {
            in_a_row = 0;
        } else if is_stalled_status(&message) {
            in_a_row += 1;
        }
    }

    // Unblocked, the loop feeds the watchdog again.
    std::fs::remove_file(&stall).expect("remove the stall file");
    wait_for_ping(&socket, "WATCHDOG=1 once the node loop runs again");
    wait_until("the node loop to say it runs again", || {
        cluster
            .log(1)
            .contains("debug hook: the node loop runs again")
    });
    assert!(
        cluster.status(1).is_ok_and(|s| s.leader_id == 1),
        "the node serves again"
    );
}
