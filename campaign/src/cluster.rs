//! A cluster of real `ringraftd` processes for the campaign: node i keeps its state under
//! `DIR/n<i>/` (the layout of `ringraftd dev`, so the README's restart command
//! `ringraftd run --config DIR/n<i>/ringraftd.toml --pid-file DIR/n<i>/ringraftd.pid` is the one
//! used), runs in its own network namespace with its QUIC address there, and keeps its Raft data
//! in `DIR/n<i>/data`, a fault filesystem mounted over `DIR/n<i>/data.backing` when FUSE is
//! available. The local sockets live on the host filesystem, so clients run in this process.
//!
//! Every process is started by one spawner thread that lives as long as the cluster, with
//! PR_SET_PDEATHSIG: if the harness dies, so do its nodes (the kernel ties the signal to the
//! thread that forked). Dropping the cluster kills every node, unmounts every fault filesystem
//! and deletes every namespace, also on panic.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ringraft_client::{Client, Error as ClientError};
use ringraft_daemon::certs::{self, CertificateAuthority, Overwrite, TlsFiles};
use ringraft_daemon::config::{Config, InitialMember, TlsConfig};
use ringraft_daemon::dev;
use ringraft_faultfs::FaultFs;
use ringraft_proto::{Member, MemberRole, NodeRole, Request, Response, StatusInfo};

use crate::history::{data_string, FinalLog, Record};
use crate::net::{self, Network, Rules};
use crate::proxy::Proxy;

/// The QUIC port every node listens on, at its own address.
pub const PEER_PORT: u16 = 7000;
/// How long a SIGTERMed node gets before it is killed.
pub const STOP_DEADLINE: Duration = Duration::from_secs(20);

/// Settings every node of the cluster shares.
#[derive(Debug, Clone)]
pub struct NodeSettings {
    pub snapshot_every_entries: u64,
    pub down_after_ms: u64,
}

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// The one thread that forks node processes (see the module docs).
struct Spawner {
    requests: Option<Mutex<mpsc::Sender<SpawnRequest>>>,
    thread: Option<JoinHandle<()>>,
}

impl Spawner {
    fn start() -> Spawner {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        let thread = std::thread::Builder::new()
            .name("campaign-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("start the spawner thread");
        Spawner {
            requests: Some(Mutex::new(tx)),
            thread: Some(thread),
        }
    }

    fn spawn(&self, command: Command) -> std::io::Result<Child> {
        let (reply, answer) = mpsc::channel();
        let sent = self
            .requests
            .as_ref()
            .map(|tx| lock(tx).send((command, reply)).is_ok())
            .unwrap_or(false);
        if !sent {
            return Err(std::io::Error::other("the spawner thread is gone"));
        }
        answer
            .recv()
            .unwrap_or_else(|_| Err(std::io::Error::other("the spawner thread is gone")))
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        self.requests.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why a node is not running when it is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Nothing: if it is down, it died by itself.
    None,
    /// A fault stopped it (kill, SIGTERM, power loss) and will restart it.
    Fault,
    /// A disk fault is on: the node may stop by itself, and the fault's heal restarts it.
    Disk,
    /// A worker thread waits for this node's exit itself (`reap` leaves it alone).
    Worker,
    /// Its storage was damaged on purpose: down until it is removed, never restarted, not a
    /// target for clients.
    Damaged,
}

pub struct Node {
    pub id: u64,
    child: Option<Child>,
    pub paused: bool,
    pub removed: bool,
    pub hold: Hold,
    pub started_once: bool,
    fs: Option<FaultFs>,
    last_start: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    TornTail,
    BitFlip,
}

/// What `reap` found: a node process that ended.
#[derive(Debug, Clone)]
pub struct Exit {
    pub node: u64,
    pub status: String,
    pub code: Option<i32>,
    pub hold: Hold,
}

pub struct Cluster {
    pub dir: PathBuf,
    exe: PathBuf,
    settings: NodeSettings,
    pub use_faultfs: bool,
    net: Mutex<Network>,
    pub proxy: Proxy,
    nodes: Mutex<BTreeMap<u64, Node>>,
    spawner: Spawner,
    /// Keep the directory after drop (a failed run's logs).
    pub keep_dir: std::sync::atomic::AtomicBool,
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        _ => status.to_string(),
    }
}

pub fn connect(socket: &Path, timeout: Duration) -> Result<Client, ClientError> {
    Client::connect(socket, Some(timeout))
}

impl Cluster {
    /// Creates namespaces, certificates and configurations for voters `1..=size` and starts
    /// them; returns once the cluster exists (not necessarily with a leader).
    pub fn create(
        dir: &Path,
        exe: &Path,
        run: u64,
        size: u64,
        settings: NodeSettings,
        use_faultfs: bool,
    ) -> Result<Cluster, String> {
        net::remove_stale();
        if let Some(parent) = dir.parent() {
            remove_stale_mounts(parent);
        }
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let dir = dir
            .canonicalize()
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        let network = Network::create(run)?;
        let proxy = Proxy::start(network.hub_file(), PEER_PORT, run ^ 0x5eed)?;
        let cluster = Cluster {
            dir: dir.clone(),
            exe: exe.to_path_buf(),
            settings,
            use_faultfs,
            net: Mutex::new(network),
            proxy,
            nodes: Mutex::new(BTreeMap::new()),
            spawner: Spawner::start(),
            keep_dir: std::sync::atomic::AtomicBool::new(false),
        };
        let ids: Vec<u64> = (1..=size).collect();
        for id in &ids {
            lock(&cluster.net).add_node(*id)?;
            cluster.proxy.add_node(*id)?;
        }
        let members: Vec<InitialMember> = ids
            .iter()
            .map(|id| InitialMember {
                id: *id,
                address: peer_address(*id),
                name: format!("n{id}"),
                zone: String::new(),
                weight: 1,
            })
            .collect();
        let tls: BTreeMap<u64, TlsFiles> = certs::dev_certs(&dir.join("certs"), &ids)
            .map_err(|e| format!("generating certificates: {e}"))?
            .into_iter()
            .collect();
        for id in &ids {
            let config = cluster.config(*id, &tls[id], members.clone(), Vec::new());
            cluster.write_config(*id, &config)?;
            cluster.add_node_entry(*id)?;
        }
        for id in &ids {
            cluster.start(*id)?;
        }
        Ok(cluster)
    }

    fn config(
        &self,
        id: u64,
        tls: &TlsFiles,
        initial_members: Vec<InitialMember>,
        join: Vec<SocketAddr>,
    ) -> Config {
        Config {
            node_id: id,
            name: format!("n{id}"),
            data_dir: data_dir(&self.dir, id),
            socket_path: dev::socket_path(&self.dir, id),
            listen: SocketAddr::from((net::real_ip(id), PEER_PORT)),
            advertise: Some(peer_address(id)),
            tls: TlsConfig {
                ca: tls.ca_cert.clone(),
                cert: tls.node_cert.clone(),
                key: tls.node_key.clone(),
            },
            initial_members,
            join,
            down_after_ms: self.settings.down_after_ms,
            snapshot_every_entries: self.settings.snapshot_every_entries,
            // The checker reads every node's whole log at the end.
            log_retention_records: 100_000_000,
            log_retention_bytes: 1 << 32,
            ..Config::default()
        }
    }

    fn write_config(&self, id: u64, config: &Config) -> Result<(), String> {
        let node = dev::node_dir(&self.dir, id);
        std::fs::create_dir_all(data_dir(&self.dir, id))
            .map_err(|e| format!("{}: {e}", node.display()))?;
        let text = toml::to_string_pretty(config).map_err(|e| e.to_string())?;
        let path = dev::config_path(&self.dir, id);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Mounts the node's fault filesystem (once) and records the node.
    fn add_node_entry(&self, id: u64) -> Result<(), String> {
        let fs = if self.use_faultfs {
            let backing = dev::node_dir(&self.dir, id).join("data.backing");
            std::fs::create_dir_all(&backing).map_err(|e| format!("{}: {e}", backing.display()))?;
            Some(
                FaultFs::mount(&backing, data_dir(&self.dir, id))
                    .map_err(|e| format!("n{id}: mounting the fault filesystem: {e}"))?,
            )
        } else {
            None
        };
        lock(&self.nodes).insert(
            id,
            Node {
                id,
                child: None,
                paused: false,
                removed: false,
                hold: Hold::None,
                started_once: false,
                fs,
                last_start: None,
            },
        );
        Ok(())
    }

    /// Prepares node `id` to join: its namespace, certificate, fault filesystem and a config that
    /// asks the given members for admission. Does not start it.
    pub fn prepare_joiner(&self, id: u64, via: &[u64]) -> Result<String, String> {
        lock(&self.net).add_node(id)?;
        self.proxy.add_node(id)?;
        let certs_dir = self.dir.join("certs");
        let ca = CertificateAuthority::load(&certs_dir).map_err(|e| e.to_string())?;
        let node_certs = certs_dir.join(format!("node-{id}"));
        ca.issue_node(id, &[])
            .and_then(|cert| cert.write(&node_certs, Overwrite::Replace))
            .map_err(|e| format!("n{id}: certificate: {e}"))?;
        let files = TlsFiles::in_dir(&node_certs);
        std::fs::copy(certs_dir.join("ca.pem"), &files.ca_cert)
            .map_err(|e| format!("n{id}: copy the CA: {e}"))?;
        let join = via.iter().map(|peer| peer_address(*peer)).collect();
        let config = self.config(id, &files, Vec::new(), join);
        self.write_config(id, &config)?;
        self.add_node_entry(id)?;
        Ok(peer_address(id).to_string())
    }

    /// Starts node `id` with the README's restart command, inside its namespace. A node already
    /// running, or removed, is left alone.
    pub fn start(&self, id: u64) -> Result<(), String> {
        self.start_with_hold(id, Hold::None)
    }

    /// `start`, with the node held as given (a node started on damaged storage is expected to
    /// stop: the supervisor must not restart it).
    pub fn start_with_hold(&self, id: u64, hold: Hold) -> Result<(), String> {
        let mut nodes = lock(&self.nodes);
        let Some(node) = nodes.get_mut(&id) else {
            return Err(format!("n{id} does not exist"));
        };
        if node.removed || node.child.is_some() || node.hold == Hold::Damaged {
            return Ok(());
        }
        let ns_file = lock(&self.net)
            .namespace_file(id)
            .ok_or_else(|| format!("n{id} has no namespace"))?;
        let ns =
            std::fs::File::open(&ns_file).map_err(|e| format!("{}: {e}", ns_file.display()))?;
        let log_path = dev::node_dir(&self.dir, id).join("ringraftd.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("{}: {e}", log_path.display()))?;
        let log_err = log.try_clone().map_err(|e| e.to_string())?;
        let _ = std::fs::remove_file(dev::pid_path(&self.dir, id));
        let mut command = dev::node_command(&self.exe, &self.dir, id);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        // SAFETY: setns(2) and prctl(2) are async-signal-safe system calls; `ns` is an open file
        // moved into the closure, so its descriptor is valid in the child.
        unsafe {
            command.pre_exec(move || {
                if libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = self
            .spawner
            .spawn(command)
            .map_err(|e| format!("cannot start n{id}: {e}"))?;
        node.child = Some(child);
        node.paused = false;
        node.hold = hold;
        node.started_once = true;
        node.last_start = Some(Instant::now());
        Ok(())
    }

    fn pid(&self, id: u64) -> Option<i32> {
        lock(&self.nodes)
            .get(&id)
            .and_then(|n| n.child.as_ref())
            .and_then(|c| i32::try_from(c.id()).ok())
    }

    /// SIGKILL and wait; the node is held down until `start`.
    pub fn kill9(&self, id: u64) -> Option<Exit> {
        let mut nodes = lock(&self.nodes);
        let node = nodes.get_mut(&id)?;
        node.hold = Hold::Fault;
        let mut child = node.child.take()?;
        let _ = child.kill();
        let status = child.wait().ok()?;
        node.paused = false;
        Some(Exit {
            node: id,
            status: describe(status),
            code: status.code(),
            hold: Hold::Fault,
        })
    }

    /// SIGTERM; the node is held down until `start`. `wait_exit` collects it.
    pub fn terminate(&self, id: u64) -> bool {
        let mut nodes = lock(&self.nodes);
        let Some(node) = nodes.get_mut(&id) else {
            return false;
        };
        let Some(child) = node.child.as_ref() else {
            return false;
        };
        node.hold = Hold::Fault;
        if node.paused {
            // SAFETY: kill(2) on our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGCONT) };
            node.paused = false;
        }
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        true
    }

    /// Waits (bounded) for node `id` to exit by itself; kills it at the deadline. Returns how it
    /// ended and whether it needed the kill.
    pub fn wait_exit(&self, id: u64, deadline: Duration) -> Option<(Exit, bool)> {
        let until = Instant::now() + deadline;
        loop {
            {
                let mut nodes = lock(&self.nodes);
                let node = nodes.get_mut(&id)?;
                let hold = node.hold;
                let child = node.child.as_mut()?;
                if let Ok(Some(status)) = child.try_wait() {
                    node.child = None;
                    return Some((
                        Exit {
                            node: id,
                            status: describe(status),
                            code: status.code(),
                            hold,
                        },
                        false,
                    ));
                }
                if Instant::now() >= until {
                    let _ = child.kill();
                    let status = child.wait().ok()?;
                    node.child = None;
                    node.paused = false;
                    return Some((
                        Exit {
                            node: id,
                            status: describe(status),
                            code: status.code(),
                            hold,
                        },
                        true,
                    ));
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pause(&self, id: u64) -> bool {
        let Some(pid) = self.pid(id) else {
            return false;
        };
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        if let Some(node) = lock(&self.nodes).get_mut(&id) {
            node.paused = true;
        }
        true
    }

    pub fn resume(&self, id: u64) {
        let mut nodes = lock(&self.nodes);
        if let Some(node) = nodes.get_mut(&id) {
            if let Some(child) = &node.child {
                // SAFETY: kill(2) on our own child.
                unsafe { libc::kill(child.id() as i32, libc::SIGCONT) };
            }
            node.paused = false;
        }
    }

    /// Drops everything node `id`'s filesystem holds that was not fsynced. Kill it first.
    pub fn power_loss(&self, id: u64) -> Option<String> {
        let nodes = lock(&self.nodes);
        let fs = nodes.get(&id)?.fs.as_ref()?;
        let loss = fs.power_loss();
        Some(format!(
            "dropped_cache_bytes={} reverted_files={} reverted_dirs={} removed_inodes={}",
            loss.dropped_cache_bytes, loss.reverted_files, loss.reverted_dirs, loss.removed_inodes
        ))
    }

    /// Runs `f` on node `id`'s fault filesystem controller, if it has one.
    pub fn with_fs(&self, id: u64, f: impl FnOnce(&ringraft_faultfs::Controller)) -> bool {
        let nodes = lock(&self.nodes);
        match nodes.get(&id).and_then(|n| n.fs.as_ref()) {
            Some(fs) => {
                f(&fs.controller());
                true
            }
            None => false,
        }
    }

    /// Ends a fault's hold on node `id` (a damaged node stays down).
    pub fn release(&self, id: u64) {
        if let Some(node) = lock(&self.nodes).get_mut(&id) {
            if node.hold != Hold::Damaged {
                node.hold = Hold::None;
            }
        }
    }

    pub fn set_hold(&self, id: u64, hold: Hold) {
        if let Some(node) = lock(&self.nodes).get_mut(&id) {
            node.hold = hold;
        }
    }

    pub fn mark_removed(&self, id: u64) {
        if let Some(node) = lock(&self.nodes).get_mut(&id) {
            node.removed = true;
        }
    }

    /// Node processes that ended since the last call.
    pub fn reap(&self) -> Vec<Exit> {
        let mut exits = Vec::new();
        for node in lock(&self.nodes).values_mut() {
            if node.hold == Hold::Worker {
                continue;
            }
            let Some(child) = node.child.as_mut() else {
                continue;
            };
            if let Ok(Some(status)) = child.try_wait() {
                node.child = None;
                node.paused = false;
                if status.code() == Some(ringraft_daemon::run::EXIT_REMOVED) {
                    node.removed = true;
                }
                exits.push(Exit {
                    node: node.id,
                    status: describe(status),
                    code: status.code(),
                    hold: node.hold,
                });
            }
        }
        exits
    }

    /// Nodes that should run but do not, and are not held down by a fault; restarted at most
    /// once a second each (a node that keeps dying is reported every time by `reap`).
    pub fn restart_unheld(&self) -> Vec<u64> {
        let due: Vec<u64> = lock(&self.nodes)
            .values()
            .filter(|n| {
                n.started_once
                    && !n.removed
                    && n.child.is_none()
                    && n.hold == Hold::None
                    && n.last_start
                        .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
            })
            .map(|n| n.id)
            .collect();
        due.into_iter()
            .filter(|id| self.start(*id).is_ok())
            .collect()
    }

    /// Damages the storage of node `id` (stopped) through its data directory: a torn tail (a few
    /// bytes of a record that never completed, appended to the last WAL segment), or one bit
    /// flipped well inside a WAL segment or in the snapshot file. Returns the file and what was
    /// done to it.
    pub fn damage(
        &self,
        id: u64,
        damage: Damage,
        rng: &mut impl rand::Rng,
    ) -> Result<(PathBuf, String), String> {
        use std::os::unix::fs::FileExt;
        let raft = data_dir(&self.dir, id).join("raft");
        let mut segments = Vec::new();
        let mut snapshots = Vec::new();
        for entry in std::fs::read_dir(&raft).map_err(|e| format!("{}: {e}", raft.display()))? {
            let path = entry.map_err(|e| e.to_string())?.path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.starts_with("wal-") && name.ends_with(".seg") {
                segments.push(path);
            } else if name.starts_with("snap-") && name.ends_with(".snap") {
                snapshots.push(path);
            }
        }
        segments.sort();
        let open = |path: &Path| {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .map_err(|e| format!("{}: {e}", path.display()))
        };
        match damage {
            Damage::TornTail => {
                let last = segments.last().ok_or("no WAL segment")?.clone();
                let file = open(&last)?;
                let len = file.metadata().map_err(|e| e.to_string())?.len();
                let count = rng.gen_range(1..16usize);
                let mut bytes = vec![0u8; count];
                rng.fill(&mut bytes[..]);
                bytes[0] |= 1;
                file.write_all_at(&bytes, len).map_err(|e| e.to_string())?;
                file.sync_all().map_err(|e| e.to_string())?;
                Ok((last, format!("appended {count} bytes at offset {len}")))
            }
            Damage::BitFlip => {
                let candidates: Vec<(PathBuf, u64, u64)> = snapshots
                    .iter()
                    .map(|p| (p, 0u64))
                    .chain(segments.iter().enumerate().map(|(i, p)| {
                        // The last segment's last records could pass for a torn tail
                        // (docs/storage.md, "Known limits"): stay well before its end.
                        let margin = if i + 1 == segments.len() { 4096 } else { 0 };
                        (p, margin)
                    }))
                    .filter_map(|(p, margin)| {
                        let len = std::fs::metadata(p).ok()?.len();
                        (len > margin + 32).then(|| (p.clone(), len, margin))
                    })
                    .collect();
                let (path, len, margin) = candidates
                    .get(rng.gen_range(0..candidates.len().max(1)))
                    .cloned()
                    .ok_or("no file large enough to damage")?;
                let offset = rng.gen_range(16..len - margin);
                let bit = rng.gen_range(0..8);
                let file = open(&path)?;
                let mut byte = [0u8; 1];
                file.read_exact_at(&mut byte, offset)
                    .map_err(|e| e.to_string())?;
                byte[0] ^= 1 << bit;
                file.write_all_at(&byte, offset)
                    .map_err(|e| e.to_string())?;
                file.sync_all().map_err(|e| e.to_string())?;
                Ok((
                    path,
                    format!("flipped bit {bit} of byte {offset} (of {len})"),
                ))
            }
        }
    }

    pub fn log_path(&self, id: u64) -> PathBuf {
        dev::node_dir(&self.dir, id).join("ringraftd.log")
    }

    pub fn socket(&self, id: u64) -> PathBuf {
        dev::socket_path(&self.dir, id)
    }

    /// Nodes clients may talk to: started, not removed.
    pub fn targets(&self) -> Vec<u64> {
        lock(&self.nodes)
            .values()
            .filter(|n| n.started_once && !n.removed && n.hold != Hold::Damaged)
            .map(|n| n.id)
            .collect()
    }

    /// Nodes running and not paused.
    pub fn live(&self) -> Vec<u64> {
        lock(&self.nodes)
            .values()
            .filter(|n| n.child.is_some() && !n.paused && !n.removed)
            .map(|n| n.id)
            .collect()
    }

    pub fn is_running(&self, id: u64) -> bool {
        lock(&self.nodes)
            .get(&id)
            .is_some_and(|n| n.child.is_some())
    }

    pub fn is_removed(&self, id: u64) -> bool {
        lock(&self.nodes).get(&id).is_some_and(|n| n.removed)
    }

    pub fn is_paused(&self, id: u64) -> bool {
        lock(&self.nodes).get(&id).is_some_and(|n| n.paused)
    }

    pub fn status(&self, id: u64, timeout: Duration) -> Result<StatusInfo, ClientError> {
        connect(&self.socket(id), timeout)?.status()
    }

    /// The leader as the live node with the highest term that says it leads sees it.
    pub fn leader(&self) -> Option<u64> {
        let mut best: Option<(u64, u64)> = None;
        for id in self.live() {
            if let Ok(status) = self.status(id, Duration::from_millis(800)) {
                if status.role == NodeRole::Leader
                    && best.is_none_or(|(term, _)| status.term > term)
                {
                    best = Some((status.term, id));
                }
            }
        }
        best.map(|(_, id)| id)
    }

    /// The members as some live node sees them.
    pub fn members(&self) -> Option<(u64, Vec<Member>)> {
        for id in self.live() {
            let answer = connect(&self.socket(id), Duration::from_secs(2)).and_then(|c| {
                c.call(Request::Members {
                    linearizable: false,
                })
            });
            if let Ok(Response::Members { epoch, members }) = answer {
                return Some((epoch, members));
            }
        }
        None
    }

    pub fn voters(&self) -> Vec<u64> {
        self.members()
            .map(|(_, members)| {
                members
                    .iter()
                    .filter(|m| m.role == MemberRole::Voter)
                    .map(|m| m.id)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn set_rules(&self, id: u64, rules: Rules) -> Result<(), String> {
        lock(&self.net).set_rules(id, rules)
    }

    pub fn rules(&self, id: u64) -> Rules {
        lock(&self.net).rules(id)
    }

    pub fn heal_network(&self) -> Result<(), String> {
        lock(&self.net).heal_all()
    }

    /// Node `id`'s whole application log through its socket.
    pub fn final_log(&self, id: u64) -> FinalLog {
        let mut log = FinalLog {
            node: id,
            ..FinalLog::default()
        };
        let result = (|| -> Result<(), ClientError> {
            let client = connect(&self.socket(id), Duration::from_secs(10))?;
            let mut from = 1;
            loop {
                match client.call(Request::ReadLog { from, max: 4096 })? {
                    Response::LogRecords {
                        records,
                        first_index,
                        last_index,
                    } => {
                        if from == 1 {
                            log.first_index = first_index;
                        }
                        log.last_index = last_index;
                        let Some(last) = records.last().map(|r| r.index) else {
                            return Ok(());
                        };
                        from = last + 1;
                        log.records.extend(
                            records
                                .into_iter()
                                .map(|r| Record(r.index, data_string(&r.data))),
                        );
                    }
                    other => {
                        return Err(ClientError::new(
                            ringraft_proto::Status::Malformed,
                            format!("unexpected answer to ReadLog: {other:?}"),
                        ))
                    }
                }
            }
        })();
        if let Err(err) = result {
            log.records.clear();
            log.error = Some(err.to_string());
        }
        log
    }

    /// Kills every node and waits for each.
    pub fn kill_all(&self) {
        for node in lock(&self.nodes).values_mut() {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill_all();
        // Unmount (every process using the mounts is gone), then the namespaces go with the
        // network.
        for node in lock(&self.nodes).values_mut() {
            node.fs.take();
        }
        lock(&self.nodes).clear();
        if !self.keep_dir.load(std::sync::atomic::Ordering::Relaxed) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Detaches fault filesystems left mounted under `campaigns` (`<pid>-<run>/n<i>/data`) by a
/// campaign process that is gone: its FUSE session died with it, and the mount answers ENOTCONN.
fn remove_stale_mounts(campaigns: &Path) {
    let Ok(mounts) = std::fs::read_to_string("/proc/mounts") else {
        return;
    };
    let Ok(campaigns) = campaigns.canonicalize() else {
        return;
    };
    for line in mounts.lines() {
        let mut fields = line.split_whitespace();
        let (Some(_), Some(point), Some(kind)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if !kind.starts_with("fuse") {
            continue;
        }
        let point = Path::new(point);
        let Ok(rest) = point.strip_prefix(&campaigns) else {
            continue;
        };
        let pid: Option<i32> = rest
            .iter()
            .next()
            .and_then(|run| run.to_str()?.split('-').next()?.parse().ok());
        if let Some(pid) = pid {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                if let Ok(path) = std::ffi::CString::new(point.as_os_str().as_encoded_bytes()) {
                    // SAFETY: umount2(2) with a NUL-terminated path.
                    unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
                }
            }
        }
    }
}

/// Node `id`'s QUIC address as the cluster knows it (its service address, through the proxy).
pub fn peer_address(id: u64) -> SocketAddr {
    SocketAddr::from((net::node_ip(id), PEER_PORT))
}

pub fn data_dir(dir: &Path, id: u64) -> PathBuf {
    dev::node_dir(dir, id).join("data")
}
