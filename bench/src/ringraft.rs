//! A `ringraftd dev` cluster started as a child process, and clients of its local socket API.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ringraft_client::Client;
use ringraft_proto::{Request, Response, Status};

use crate::cas::{CasAnswer, CasStore};
use crate::load::Operation;
use crate::procs::{process_exists, spawn_tied, stop_child, stop_pid};

const READY_PREFIX: &str = "ringraft dev cluster ready";
/// The launcher itself gives its nodes 15 s to stop after SIGTERM.
const LAUNCHER_STOP_GRACE: Duration = Duration::from_secs(25);
const NODE_STOP_GRACE: Duration = Duration::from_secs(5);
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The Propose timeout the daemon is given; longer than any healthy commit.
const PROPOSE_TIMEOUT_MS: u32 = 5_000;
/// The deadline of a register operation (its rounds, retries and backoffs) in the daemon.
const KV_TIMEOUT_MS: u32 = 5_000;

pub struct DevCluster {
    launcher: Child,
    dir: PathBuf,
    /// Node i+1's socket, as the launcher printed it.
    pub sockets: Vec<PathBuf>,
    launcher_log: PathBuf,
}

impl DevCluster {
    /// Runs `ringraftd dev --nodes N --dir DIR` and waits for its ready line and socket paths.
    pub fn start(
        ringraftd: &Path,
        dir: &Path,
        nodes: usize,
        deadline: Duration,
    ) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|err| format!("{}: {err}", dir.display()))?;
        let launcher_log = dir.join("dev-launcher.log");
        let log = std::fs::File::create(&launcher_log)
            .map_err(|err| format!("{}: {err}", launcher_log.display()))?;
        let mut command = Command::new(ringraftd);
        command
            .arg("dev")
            .arg("--nodes")
            .arg(nodes.to_string())
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        let mut launcher = spawn_tied(&mut command)
            .map_err(|err| format!("cannot start {}: {err}", ringraftd.display()))?;
        let lines = read_lines_in_background(&mut launcher)?;
        let mut cluster = DevCluster {
            launcher,
            dir: dir.to_path_buf(),
            sockets: Vec::new(),
            launcher_log,
        };
        match read_sockets(&lines, nodes, Instant::now() + deadline) {
            Ok(sockets) => {
                cluster.sockets = sockets;
                Ok(cluster)
            }
            Err(err) => Err(format!(
                "{err}; launcher log: {}, node logs: {}/n*/ringraftd.log",
                cluster.launcher_log.display(),
                cluster.dir.display()
            )),
        }
    }

    /// Index (0-based) of the node every node names as leader.
    pub fn leader(&self) -> Result<usize, String> {
        let mut node_ids = Vec::new();
        let mut leaders = Vec::new();
        for socket in &self.sockets {
            let status = Client::connect(socket, Some(REQUEST_TIMEOUT))
                .and_then(|client| client.status())
                .map_err(|err| format!("{}: {err}", socket.display()))?;
            node_ids.push(status.node_id);
            leaders.push(status.leader_id);
        }
        let leader = leaders.first().copied().unwrap_or(0);
        if leader == 0 || leaders.iter().any(|l| *l != leader) {
            return Err(format!("the nodes do not agree on a leader: {leaders:?}"));
        }
        node_ids
            .iter()
            .position(|id| *id == leader)
            .ok_or_else(|| format!("leader {leader} is not one of {node_ids:?}"))
    }

    /// Pids of the node processes, from `DIR/n<i>/ringraftd.pid`.
    pub fn node_pids(&self) -> Result<Vec<i32>, String> {
        (1..=self.sockets.len())
            .map(|i| {
                let path = self.dir.join(format!("n{i}")).join("ringraftd.pid");
                let text = std::fs::read_to_string(&path)
                    .map_err(|err| format!("{}: {err}", path.display()))?;
                let pid: i32 = text
                    .trim()
                    .parse()
                    .map_err(|_| format!("{}: not a pid: {text:?}", path.display()))?;
                if !process_exists(pid) {
                    return Err(format!("node {i} (pid {pid}) is not running"));
                }
                Ok(pid)
            })
            .collect()
    }

    /// SIGTERM to the launcher, which stops its nodes; any node still running afterwards is
    /// stopped by its pid file.
    pub fn stop(&mut self) {
        let node_pids: Vec<i32> = (1..=self.sockets.len().max(3))
            .filter_map(|i| {
                std::fs::read_to_string(self.dir.join(format!("n{i}")).join("ringraftd.pid")).ok()
            })
            .filter_map(|text| text.trim().parse().ok())
            .collect();
        stop_child(&mut self.launcher, LAUNCHER_STOP_GRACE);
        for pid in node_pids {
            stop_pid(pid, NODE_STOP_GRACE);
        }
    }
}

impl Drop for DevCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The launcher's stdout, line by line, through a channel (so waiting can time out). The
/// thread ends when the launcher closes its stdout.
fn read_lines_in_background(launcher: &mut Child) -> Result<mpsc::Receiver<String>, String> {
    let stdout = launcher
        .stdout
        .take()
        .ok_or_else(|| "the launcher has no stdout pipe".to_string())?;
    let (sender, receiver) = mpsc::channel();
    std::thread::Builder::new()
        .name("dev-stdout".into())
        .spawn(move || {
            let reader = BufReader::new(stdout);
            // Lines are short; a runaway line is cut by the bound on lines read below.
            for line in reader.lines().take(10_000) {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        })
        .map_err(|err| err.to_string())?;
    Ok(receiver)
}

fn read_sockets(
    lines: &mpsc::Receiver<String>,
    nodes: usize,
    deadline: Instant,
) -> Result<Vec<PathBuf>, String> {
    let next_line = |what: &str| -> Result<String, String> {
        let wait = deadline.saturating_duration_since(Instant::now());
        lines.recv_timeout(wait).map_err(|err| match err {
            mpsc::RecvTimeoutError::Timeout => format!("no {what} before the deadline"),
            mpsc::RecvTimeoutError::Disconnected => {
                format!("the launcher exited before printing {what}")
            }
        })
    };
    loop {
        let line = next_line("ready line")?;
        if line.starts_with(READY_PREFIX) {
            break;
        }
    }
    let mut sockets = Vec::with_capacity(nodes);
    for i in 1..=nodes {
        let line = next_line("socket line")?;
        sockets.push(parse_socket_line(&line, i)?);
    }
    Ok(sockets)
}

/// `n<i> <socket path>`.
pub fn parse_socket_line(line: &str, node: usize) -> Result<PathBuf, String> {
    let expected = format!("n{node} ");
    match line.strip_prefix(&expected) {
        Some(path) if !path.trim().is_empty() => Ok(PathBuf::from(path.trim())),
        _ => Err(format!("expected `n{node} <socket path>`, got {line:?}")),
    }
}

/// Sequential Propose of a fixed payload.
pub struct ProposeClient {
    client: Client,
    data: Vec<u8>,
}

impl ProposeClient {
    pub fn connect(socket: &Path, data: &[u8]) -> Result<Self, String> {
        let client =
            Client::connect(socket, Some(REQUEST_TIMEOUT)).map_err(|err| err.to_string())?;
        Ok(ProposeClient {
            client,
            data: data.to_vec(),
        })
    }
}

impl Operation for ProposeClient {
    fn run(&mut self, _sequence: u64) -> Result<(), String> {
        let request = Request::Propose {
            data: self.data.clone(),
            timeout_ms: PROPOSE_TIMEOUT_MS,
        };
        match self.client.call(request) {
            Ok(Response::Proposed { index }) if index > 0 => Ok(()),
            Ok(other) => Err(format!("unexpected answer to Propose: {other:?}")),
            Err(err) => Err(err.to_string()),
        }
    }
}

/// Owner lookups of distinct keys, answered from the node's applied state.
pub struct OwnerClient {
    client: Client,
}

impl OwnerClient {
    pub fn connect(socket: &Path) -> Result<Self, String> {
        let client =
            Client::connect(socket, Some(REQUEST_TIMEOUT)).map_err(|err| err.to_string())?;
        Ok(OwnerClient { client })
    }
}

impl Operation for OwnerClient {
    fn run(&mut self, sequence: u64) -> Result<(), String> {
        let request = Request::Owner {
            key: format!("user:{sequence}").into_bytes(),
            linearizable: false,
        };
        match self.client.call(request) {
            Ok(Response::Owner { epoch, .. }) if epoch > 0 => Ok(()),
            Ok(other) => Err(format!("unexpected answer to Owner: {other:?}")),
            Err(err) => Err(err.to_string()),
        }
    }
}

impl DevCluster {
    /// Waits until every node answers a register read (a node serves registers only once it has
    /// applied what the cluster committed before it started).
    pub fn wait_for_registers(&self, deadline: Duration) -> Result<(), String> {
        let give_up = Instant::now() + deadline;
        for socket in &self.sockets {
            loop {
                let answer = Client::connect(socket, Some(REQUEST_TIMEOUT))
                    .and_then(|client| client.kv_get(b"bench/ready", KV_TIMEOUT_MS));
                match answer {
                    Ok(_) => break,
                    Err(err) if Instant::now() >= give_up => {
                        return Err(format!(
                            "{} serves no registers after {deadline:?}: {err}",
                            socket.display()
                        ))
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        }
        Ok(())
    }
}

/// One connection to a node's registers (`kv_cas`, `kv_get`); the node proposes every request
/// itself.
pub struct RegisterStore {
    client: Client,
}

impl RegisterStore {
    pub fn connect(socket: &Path) -> Result<Self, String> {
        let client =
            Client::connect(socket, Some(REQUEST_TIMEOUT)).map_err(|err| err.to_string())?;
        Ok(RegisterStore { client })
    }
}

impl CasStore for RegisterStore {
    fn cas(&mut self, key: &[u8], expected: u64, value: &[u8]) -> CasAnswer {
        match self.client.kv_cas(key, expected, value, KV_TIMEOUT_MS) {
            Ok(written) => CasAnswer::Written(written.version),
            Err(err) => match (err.status, err.current_version) {
                (Status::Conflict, Some(current)) => CasAnswer::Conflict(current),
                (Status::Timeout, _) => CasAnswer::Unknown(err.to_string()),
                (Status::Busy, _) => CasAnswer::Busy(err.to_string()),
                _ => CasAnswer::Failed(err.to_string()),
            },
        }
    }

    fn version(&mut self, key: &[u8]) -> Result<u64, String> {
        self.client
            .kv_get(key, KV_TIMEOUT_MS)
            .map(|entry| entry.version)
            .map_err(|err| err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_lines_name_their_node() {
        assert_eq!(
            parse_socket_line("n2 /tmp/x/n2/ringraftd.sock", 2),
            Ok(PathBuf::from("/tmp/x/n2/ringraftd.sock"))
        );
        assert!(parse_socket_line("n3 /tmp/x/n3/ringraftd.sock", 2).is_err());
        assert!(parse_socket_line("n2 ", 2).is_err());
        assert!(parse_socket_line("try: ringraftctl", 1).is_err());
    }

    #[test]
    fn ready_then_sockets_are_read_in_order() {
        let (sender, receiver) = mpsc::channel();
        for line in [
            "some log line",
            "ringraft dev cluster ready: 2 nodes in /d, leader n1",
            "n1 /d/n1/ringraftd.sock",
            "n2 /d/n2/ringraftd.sock",
        ] {
            sender.send(line.to_string()).expect("send");
        }
        let sockets =
            read_sockets(&receiver, 2, Instant::now() + Duration::from_secs(5)).expect("sockets");
        assert_eq!(
            sockets,
            vec![
                PathBuf::from("/d/n1/ringraftd.sock"),
                PathBuf::from("/d/n2/ringraftd.sock")
            ]
        );
    }

    #[test]
    fn a_launcher_that_exits_early_is_an_error() {
        let (sender, receiver) = mpsc::channel::<String>();
        sender
            .send("ringraftd dev: no leader".to_string())
            .expect("send");
        drop(sender);
        let err = read_sockets(&receiver, 3, Instant::now() + Duration::from_secs(5)).unwrap_err();
        assert!(err.contains("exited"), "{err}");
    }
}
