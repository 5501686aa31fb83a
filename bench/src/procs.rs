//! Child processes the bench starts: spawned so that they die with the bench, stopped with
//! SIGTERM and a bounded wait, then SIGKILL.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Spawns `command` so that the kernel sends it SIGTERM if this process dies first (Ctrl-C, a
/// crash): an interrupted bench leaves no cluster behind.
pub fn spawn_tied(command: &mut Command) -> std::io::Result<Child> {
    // SAFETY: prctl is async-signal-safe and touches nothing of the parent's state.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command.spawn()
}

/// SIGTERM, then up to `grace` for it to exit, then SIGKILL. Always reaps the child.
pub fn stop_child(child: &mut Child, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) on our own child, which has not been reaped (try_wait said so).
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Whether a process with this pid exists (it may be a zombie).
pub fn process_exists(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence and permission.
    pid > 0 && unsafe { libc::kill(pid, 0) } == 0
}

/// SIGTERM to a process that is not our child (a dev-cluster node, by its pid file), then
/// SIGKILL if it is still there after `grace`.
pub fn stop_pid(pid: i32, grace: Duration) {
    if !process_exists(pid) {
        return;
    }
    // SAFETY: kill(2) on a pid from our own cluster's pid file.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + grace;
    while process_exists(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if process_exists(pid) {
        // SAFETY: as above.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// TCP ports on 127.0.0.1 the kernel just handed out, released for a server to bind. Another
/// process could take one in between; the server then fails to start and says so.
pub fn free_tcp_ports(count: usize) -> Result<Vec<u16>, String> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()
        .map_err(|err| format!("cannot find free TCP ports: {err}"))?;
    listeners
        .iter()
        .map(|listener| {
            listener
                .local_addr()
                .map(|addr| addr.port())
                .map_err(|err| err.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct() {
        let ports = free_tcp_ports(6).expect("ports");
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 6);
    }

    #[test]
    fn stop_child_ends_a_process_that_ignores_nothing() {
        let mut child = spawn_tied(Command::new("sleep").arg("600")).expect("sleep");
        let pid = child.id() as i32;
        assert!(process_exists(pid));
        stop_child(&mut child, Duration::from_secs(10));
        assert!(child.try_wait().expect("reaped").is_some());
        assert!(!process_exists(pid));
    }

    #[test]
    fn stop_child_kills_a_process_that_ignores_sigterm() {
        use std::io::BufRead;
        use std::os::unix::process::ExitStatusExt;
        use std::process::Stdio;
        let mut child = spawn_tied(
            Command::new("sh")
                .args(["-c", "trap '' TERM; echo ready; read line"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped()),
        )
        .expect("sh");
        let mut ready = String::new();
        let stdout = child.stdout.take().expect("stdout");
        std::io::BufReader::new(stdout)
            .read_line(&mut ready)
            .expect("ready line");
        assert_eq!(ready.trim(), "ready");
        stop_child(&mut child, Duration::from_millis(200));
        let status = child.try_wait().expect("reaped").expect("exited");
        assert_eq!(status.signal(), Some(libc::SIGKILL));
    }
}
