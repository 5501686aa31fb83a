//! A real cluster of ringraftd processes on loopback, started through the public
//! `ringraftd dev --nodes N --dir DIR` command, with helpers to kill, restart and query nodes.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ringraft_client::{Client, Error as ClientError};
use ringraft_daemon::dev;
use ringraft_proto::{LogRecord, Member, Request, Response, Status, StatusInfo};

pub const RINGRAFTD: &str = env!("CARGO_BIN_EXE_ringraftd");
/// Generous: CI machines are slow and shared; every wait ends as soon as its condition holds.
pub const WAIT: Duration = Duration::from_secs(60);

pub struct Cluster {
    pub dir: PathBuf,
    pub size: u64,
    launcher: Child,
    /// Nodes this test (re)started itself, to reap them.
    restarted: std::sync::Mutex<Vec<Child>>,
    _tmp: TempDir,
}

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let base = std::env::var_os("CARGO_TARGET_TMPDIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let unique = format!(
            "{tag}-{}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos() ^ rand_suffix()
        );
        let path = base.join(unique);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Cluster {
    /// Starts `ringraftd dev` and waits for its "ready" line (printed once there is a leader).
    pub fn start(tag: &str, size: u64, extra: &[&str]) -> Cluster {
        Cluster::start_with_env(tag, size, extra, &[])
    }

    pub fn start_with_env(tag: &str, size: u64, extra: &[&str], env: &[(&str, &Path)]) -> Cluster {
        let tmp = TempDir::new(tag);
        let dir = tmp.0.join("cluster");
        let mut launcher = Command::new(RINGRAFTD)
            .arg("dev")
            .arg("--nodes")
            .arg(size.to_string())
            .arg("--dir")
            .arg(&dir)
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start ringraftd dev");
        let stdout = launcher.stdout.take().expect("launcher stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = lines
            .next()
            .expect("ringraftd dev printed nothing")
            .expect("read launcher output");
        assert!(
            first.starts_with("ringraft dev cluster ready"),
            "unexpected first line from ringraftd dev: {first}"
        );
        let mut sockets = Vec::new();
        for _ in 0..size {
            let line = lines.next().expect("socket line").expect("read");
            sockets.push(line);
        }
        for id in 1..=size {
            let expected = dev::socket_path(&dir, id);
            assert!(
                sockets
                    .iter()
                    .any(|line| line.ends_with(&*expected.to_string_lossy())),
                "socket of n{id} not printed: {sockets:?}"
            );
        }
        // Keep draining the launcher's stdout so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let canonical = dir.canonicalize().expect("cluster dir");
        Cluster {
            dir: canonical,
            size,
            launcher,
            restarted: std::sync::Mutex::new(Vec::new()),
            _tmp: tmp,
        }
    }

    pub fn socket(&self, id: u64) -> PathBuf {
        dev::socket_path(&self.dir, id)
    }

    pub fn client(&self, id: u64) -> Result<Client, ClientError> {
        Client::connect(&self.socket(id), Some(Duration::from_secs(10)))
    }

    pub fn pid(&self, id: u64) -> Option<i32> {
        std::fs::read_to_string(dev::pid_path(&self.dir, id))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    pub fn kill9(&self, id: u64) {
        let pid = self.pid(id).expect("node pid");
        unsafe { libc::kill(pid, libc::SIGKILL) };
        self.reap();
        wait_until(&format!("node {id} (pid {pid}) to die"), || {
            !dev::process_alive(pid)
        });
        let _ = std::fs::remove_file(dev::pid_path(&self.dir, id));
    }

    /// Restarts node `id` with the same command the launcher used, and waits until it serves.
    pub fn restart(&self, id: u64) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dev::node_dir(&self.dir, id).join("ringraftd.log"))
            .expect("node log");
        let err = log.try_clone().expect("clone log");
        let child = dev::node_command(Path::new(RINGRAFTD), &self.dir, id)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .expect("restart node");
        self.restarted.lock().unwrap().push(child);
        wait_until(&format!("node {id} to serve again"), || {
            self.client(id).and_then(|c| c.status()).is_ok()
        });
    }

    /// SIGTERM to a node this test restarted itself; returns its exit status.
    pub fn terminate(&self, id: u64) -> std::process::ExitStatus {
        let pid = self.pid(id).expect("node pid") as u32;
        let mut restarted = self.restarted.lock().unwrap();
        let position = restarted
            .iter()
            .position(|child| child.id() == pid)
            .expect("terminate() needs a node this test restarted");
        let mut child = restarted.remove(position);
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        child.wait().expect("wait for the node")
    }

    /// Waits for a node this test restarted to exit by itself; returns its exit status.
    pub fn wait_exit(&self, id: u64, pid: i32) -> std::process::ExitStatus {
        let mut restarted = self.restarted.lock().unwrap();
        let position = restarted
            .iter()
            .position(|child| child.id() as i32 == pid)
            .unwrap_or_else(|| panic!("node {id} (pid {pid}) was not restarted by this test"));
        let mut child = restarted.remove(position);
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = child.try_wait().expect("wait for the node") {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("node {id} (pid {pid}) did not exit within {WAIT:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self, id: u64) -> String {
        std::fs::read_to_string(dev::node_dir(&self.dir, id).join("ringraftd.log"))
            .unwrap_or_default()
    }

    /// Collects restarted nodes that have exited.
    fn reap(&self) {
        self.restarted
            .lock()
            .unwrap()
            .retain_mut(|child| !matches!(child.try_wait(), Ok(Some(_))));
    }

    pub fn status(&self, id: u64) -> Result<StatusInfo, ClientError> {
        self.client(id)?.status()
    }

    /// A leader among `ids` that every node in `ids` agrees on.
    pub fn wait_for_leader(&self, ids: &[u64]) -> u64 {
        let mut leader = 0;
        wait_until("one agreed leader", || {
            let leaders: Vec<u64> = ids
                .iter()
                .filter_map(|id| self.status(*id).ok().map(|s| s.leader_id))
                .collect();
            leader = leaders.first().copied().unwrap_or(0);
            leaders.len() == ids.len()
                && ids.contains(&leader)
                && leaders.iter().all(|l| *l == leader)
        });
        leader
    }

    pub fn propose(&self, id: u64, data: &[u8]) -> Result<u64, ClientError> {
        match self.client(id)?.call(Request::Propose {
            data: data.to_vec(),
            timeout_ms: 10_000,
        })? {
            Response::Proposed { index } => Ok(index),
            other => panic!("unexpected answer to propose: {other:?}"),
        }
    }

    /// Proposes until acknowledged, retrying on errors that leave nothing committed for sure
    /// (no leader yet). Timeouts are returned: they may or may not have committed.
    pub fn propose_retrying(&self, id: u64, data: &[u8]) -> u64 {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.propose(id, data) {
                Ok(index) => return index,
                Err(err)
                    if Instant::now() < deadline
                        && matches!(
                            err.status,
                            Status::NoLeader
                                | Status::NotLeader
                                | Status::TransferInProgress
                                | Status::Unavailable
                                | Status::Busy
                        ) =>
                {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Err(err) => panic!("propose through n{id} failed: {err}"),
            }
        }
    }

    /// Every record of node `id`'s application log, from index 1.
    pub fn read_all(&self, id: u64) -> Vec<LogRecord> {
        let client = self.client(id).expect("connect");
        let mut records = Vec::new();
        let mut from = 1;
        loop {
            match client
                .call(Request::ReadLog { from, max: 1000 })
                .expect("read log")
            {
                Response::LogRecords { records: batch, .. } => {
                    let Some(last) = batch.last().map(|r| r.index) else {
                        return records;
                    };
                    from = last + 1;
                    records.extend(batch);
                }
                other => panic!("unexpected answer to ReadLog: {other:?}"),
            }
        }
    }

    pub fn members(&self, id: u64) -> (u64, Vec<Member>) {
        match self
            .client(id)
            .expect("connect")
            .call(Request::Members {
                linearizable: false,
            })
            .expect("members")
        {
            Response::Members { epoch, members } => (epoch, members),
            other => panic!("unexpected answer to Members: {other:?}"),
        }
    }
}

impl Cluster {
    /// Stops the launcher, which stops its nodes, and waits for it.
    pub fn stop(&mut self) {
        unsafe { libc::kill(self.launcher.id() as i32, libc::SIGTERM) };
        let _ = self.launcher.wait();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
        // Nodes the test started itself are not the launcher's: stop them too.
        for child in self.restarted.lock().unwrap().iter_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Gives node `id` a certificate from the dev cluster's CA and a config that joins through node
/// 1 (`tweak` may change it further); returns the address it will listen on. Start it with
/// `cluster.restart(id)`.
pub fn prepare_joiner_with(
    cluster: &Cluster,
    id: u64,
    tweak: impl FnOnce(&mut ringraft_daemon::config::Config),
) -> String {
    use ringraft_daemon::certs::{CertificateAuthority, Overwrite, TlsFiles};
    use ringraft_daemon::config::{Config, TlsConfig};

    let dir = dev::node_dir(&cluster.dir, id);
    let ca = CertificateAuthority::load(&cluster.dir.join("certs")).expect("dev CA");
    ca.issue_node(id, &["127.0.0.1".to_string()])
        .expect("issue")
        .write(&dir, Overwrite::Replace)
        .expect("write node certificate");
    let files = TlsFiles::in_dir(&dir);
    std::fs::copy(cluster.dir.join("certs").join("ca.pem"), &files.ca_cert).expect("copy CA");
    let first = Config::load(&dev::config_path(&cluster.dir, 1)).expect("n1 config");
    let listen = unused_udp_address();
    let mut config = Config {
        node_id: id,
        name: format!("n{id}"),
        data_dir: dir.clone(),
        socket_path: dev::socket_path(&cluster.dir, id),
        listen,
        tls: TlsConfig {
            ca: files.ca_cert,
            cert: files.node_cert,
            key: files.node_key,
        },
        initial_members: Vec::new(),
        join: vec![first.listen],
        ..first
    };
    tweak(&mut config);
    std::fs::write(
        dev::config_path(&cluster.dir, id),
        toml::to_string_pretty(&config).expect("config"),
    )
    .expect("write config");
    listen.to_string()
}

pub fn prepare_joiner(cluster: &Cluster, id: u64) -> String {
    prepare_joiner_with(cluster, id, |_| {})
}

/// A loopback address no one listens on (UDP port picked by the kernel, then released).
pub fn unused_udp_address() -> std::net::SocketAddr {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free port")
}

/// Polls `condition` until it holds, panicking with `what` after `WAIT`.
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
