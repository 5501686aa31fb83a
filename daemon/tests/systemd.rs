//! The daemon speaks sd_notify: READY=1 once recovered and listening, STATUS= with role, term and
//! leader, STOPPING=1 on SIGTERM. The test plays systemd's part with its own NOTIFY_SOCKET.

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use common::{Cluster, TempDir, WAIT};

fn next_message(socket: &UnixDatagram, deadline: Instant) -> Option<String> {
    let mut buffer = [0u8; 4096];
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return None;
    }
    socket.set_read_timeout(Some(left)).ok()?;
    let len = socket.recv(&mut buffer).ok()?;
    Some(String::from_utf8_lossy(&buffer[..len]).into_owned())
}

#[test]
fn node_reports_ready_status_and_stopping() {
    let tmp = TempDir::new("notify");
    let path = tmp.0.join("notify.sock");
    let socket = UnixDatagram::bind(&path).expect("bind notify socket");
    let mut cluster = Cluster::start_with_env("notify", 1, &[], &[("NOTIFY_SOCKET", &path)]);

    let deadline = Instant::now() + WAIT;
    let mut ready = false;
    let mut leader_status = false;
    while !(ready && leader_status) {
        let message = next_message(&socket, deadline).expect("READY=1 and a leader STATUS=");
        ready |= message.lines().any(|line| line == "READY=1");
        leader_status |= message
            .lines()
            .any(|line| line.starts_with("STATUS=leader, term "));
    }

    cluster.stop();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let message = next_message(&socket, deadline).expect("STOPPING=1 on SIGTERM");
        if message.lines().any(|line| line == "STOPPING=1") {
            break;
        }
    }
}
