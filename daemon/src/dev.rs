//! `ringraftd dev --nodes N --dir DIR`: a working local cluster from nothing, in the foreground.
//!
//! Node i (1-based) keeps its state in `DIR/n<i>/`, listens on `DIR/n<i>/ringraftd.sock`, and is
//! its own `ringraftd run` child process with its pid in `DIR/n<i>/ringraftd.pid` and its log in
//! `DIR/n<i>/ringraftd.log`. Certificates come from a CA generated in `DIR/certs/`. The socket paths
//! are printed once the cluster has a leader; SIGINT or SIGTERM stops every node. Running it again
//! on the same directory restarts the same cluster with its data.

use std::io::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Args;
use tokio::signal::unix::{signal, SignalKind};

use crate::certs;
use crate::config::{Config, InitialMember, RaftSettings};
use ringraft_client::Client;

/// How long the cluster may take to elect its first leader before `dev` gives up.
const FORMATION_DEADLINE: Duration = Duration::from_secs(60);
/// How long nodes get to stop after SIGTERM before they are killed.
const STOP_DEADLINE: Duration = Duration::from_secs(15);
/// How often the launcher looks for nodes that died.
const CHILD_POLL_INTERVAL: Duration = Duration::from_millis(200);
/// The most nodes `--nodes` allows.
const MAX_DEV_NODES: u64 = 9;

#[derive(Debug, Args, Clone)]
pub struct DevArgs {
    /// Number of nodes, all voters.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=MAX_DEV_NODES))]
    pub nodes: u64,
    /// State directory; a new temporary directory when omitted.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Snapshot and compact each node's log after this many applied entries.
    #[arg(long, default_value_t = 10_000)]
    pub snapshot_every_entries: u64,
    /// Entries a compaction keeps before its snapshot for followers a little behind.
    #[arg(long, default_value_t = 5_000)]
    pub snapshot_catch_up_entries: u64,
    /// The leader marks a silent node down after this long (0 disables).
    #[arg(long, default_value_t = 5_000)]
    pub down_after_ms: u64,
}

pub fn node_dir(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("n{id}"))
}

pub fn config_path(dir: &Path, id: u64) -> PathBuf {
    node_dir(dir, id).join("ringraftd.toml")
}

pub fn pid_path(dir: &Path, id: u64) -> PathBuf {
    node_dir(dir, id).join("ringraftd.pid")
}

pub fn socket_path(dir: &Path, id: u64) -> PathBuf {
    node_dir(dir, id).join("ringraftd.sock")
}

/// Runs the dev cluster until a signal; returns the exit code.
pub fn dev(args: DevArgs) -> i32 {
    match run_dev(args) {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("ringraftd dev: {err}");
            1
        }
    }
}

fn run_dev(args: DevArgs) -> Result<(), String> {
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("ringraft-dev-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).map_err(|err| format!("{}: {err}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .map_err(|err| format!("{}: {err}", dir.display()))?;
    let ids: Vec<u64> = (1..=args.nodes).collect();
    // Held until we exit: a second launcher on the same directory stops here, touching nothing.
    let _launcher_lock = lock_dev_dir(&dir)?;
    refuse_running_nodes(&dir)?;
    prepare(&dir, &ids, &args)?;
    let exe = std::env::current_exe().map_err(|err| format!("cannot find ringraftd: {err}"))?;
    let mut children = Vec::new();
    for id in &ids {
        children.push(spawn_node(&exe, &dir, *id)?);
    }
    let leader = match wait_for_leader(&dir, &ids, &mut children) {
        Ok(leader) => leader,
        Err(err) => {
            stop_all(&dir, &ids, &mut children);
            return Err(err);
        }
    };
    // The handlers are in place before "ready" is printed: a caller may send SIGTERM the moment
    // it reads that line, and without them the default action would kill this launcher and
    // leave its nodes to stop on their own, unwaited for.
    let signals = match Signals::install() {
        Ok(signals) => signals,
        Err(err) => {
            stop_all(&dir, &ids, &mut children);
            return Err(err);
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "ringraft dev cluster ready: {} nodes in {}, leader n{leader}",
        ids.len(),
        dir.display()
    );
    for id in &ids {
        let _ = writeln!(out, "n{id} {}", socket_path(&dir, *id).display());
    }
    let _ = writeln!(
        out,
        "try: {} --socket {} status    (Ctrl-C stops the cluster)",
        ctl_command(&exe),
        socket_path(&dir, 1).display()
    );
    let _ = out.flush();
    drop(out);

    signals.wait(&ids, &mut children)?;
    stop_all(&dir, &ids, &mut children);
    Ok(())
}

/// How to run ringraftctl from here: the binary next to this one if it was built, else the
/// cargo command that builds and runs it.
fn ctl_command(exe: &Path) -> String {
    let sibling = exe.with_file_name("ringraftctl");
    if sibling.is_file() {
        return sibling.display().to_string();
    }
    "cargo run --release -p ringraft-daemon --bin ringraftctl --".to_string()
}

/// Takes the launcher's lock on `dir`, or says which launcher holds it.
fn lock_dev_dir(dir: &Path) -> Result<ringraft_storage::DirLock, String> {
    ringraft_storage::DirLock::acquire(dir).map_err(|err| match err {
        ringraft_storage::StorageError::Locked { holder_pid, .. } => {
            let holder = holder_pid.map_or(String::new(), |pid| format!(", pid {pid}"));
            format!(
                "{} is in use by a running dev cluster{holder}; stop it first or use another --dir",
                dir.display()
            )
        }
        other => other.to_string(),
    })
}

/// Nodes of this directory may run without a launcher (restarted by hand with the README's
/// restart command): starting a second copy of them would only fail on their locks.
fn refuse_running_nodes(dir: &Path) -> Result<(), String> {
    for id in 1..=MAX_DEV_NODES {
        let Some(pid) = read_pid_file(&pid_path(dir, id)) else {
            continue;
        };
        if process_alive(pid) && is_ringraftd(pid) {
            return Err(format!(
                "node n{id} of {} is still running (pid {pid}); stop it first or use another --dir",
                dir.display()
            ));
        }
    }
    Ok(())
}

fn read_pid_file(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.trim().parse::<i32>().ok())
}

/// A pid file outlives its process, and the kernel may reuse the number for something else.
fn is_ringraftd(pid: i32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
        cmdline.split(|b| *b == 0).next().is_some_and(|argv0| {
            Path::new(std::str::from_utf8(argv0).unwrap_or_default())
                .file_name()
                .is_some_and(|name| name == "ringraftd")
        })
    })
}

/// How a node process ended, as an operator reads it.
fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        _ => status.to_string(),
    }
}

/// Creates certificates and configuration files that do not exist yet; keeps existing ones, so a
/// second run restarts the same cluster.
fn prepare(dir: &Path, ids: &[u64], args: &DevArgs) -> Result<(), String> {
    let existing = ids
        .iter()
        .filter(|id| config_path(dir, **id).exists())
        .count();
    if existing == ids.len() {
        return Ok(());
    }
    if existing > 0 || config_path(dir, ids.len() as u64 + 1).exists() {
        return Err(format!(
            "{} holds a dev cluster of another size; use a new --dir (or the same --nodes)",
            dir.display()
        ));
    }
    let ports = free_udp_ports(ids.len())?;
    let members: Vec<InitialMember> = ids
        .iter()
        .zip(&ports)
        .map(|(id, port)| InitialMember {
            id: *id,
            address: SocketAddr::from(([127, 0, 0, 1], *port)),
            name: format!("n{id}"),
            zone: String::new(),
            weight: 1,
        })
        .collect();
    let tls: std::collections::BTreeMap<u64, certs::TlsFiles> =
        certs::dev_certs(&dir.join("certs"), ids)
            .map_err(|err| format!("generating certificates: {err}"))?
            .into_iter()
            .collect();
    for member in &members {
        let node = node_dir(dir, member.id);
        std::fs::create_dir_all(&node).map_err(|err| format!("{}: {err}", node.display()))?;
        let files = &tls[&member.id];
        let config = Config {
            node_id: member.id,
            name: member.name.clone(),
            data_dir: node.clone(),
            socket_path: socket_path(dir, member.id),
            listen: member.address,
            tls: crate::config::TlsConfig {
                ca: files.ca_cert.clone(),
                cert: files.node_cert.clone(),
                key: files.node_key.clone(),
            },
            initial_members: members.clone(),
            raft: RaftSettings::default(),
            down_after_ms: args.down_after_ms,
            snapshot_every_entries: args.snapshot_every_entries,
            snapshot_catch_up_entries: args.snapshot_catch_up_entries,
            ..Config::default()
        };
        let text = toml::to_string_pretty(&config).map_err(|err| err.to_string())?;
        std::fs::write(config_path(dir, member.id), text)
            .map_err(|err| format!("{}: {err}", config_path(dir, member.id).display()))?;
    }
    Ok(())
}

/// Ports the kernel just handed out, released for the nodes to bind. Another process could take
/// one in between; the node then fails to start with a clear error and `dev` reports it.
fn free_udp_ports(count: usize) -> Result<Vec<u16>, String> {
    let sockets: Vec<UdpSocket> = (0..count)
        .map(|_| UdpSocket::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()
        .map_err(|err| format!("cannot find free UDP ports: {err}"))?;
    sockets
        .iter()
        .map(|socket| {
            socket
                .local_addr()
                .map(|addr| addr.port())
                .map_err(|err| err.to_string())
        })
        .collect()
}

/// The command that (re)starts node `id` of a dev cluster; tests use the same one.
pub fn node_command(exe: &Path, dir: &Path, id: u64) -> Command {
    let mut command = Command::new(exe);
    command
        .arg("run")
        .arg("--config")
        .arg(config_path(dir, id))
        .arg("--pid-file")
        .arg(pid_path(dir, id));
    command
}

fn spawn_node(exe: &Path, dir: &Path, id: u64) -> Result<Child, String> {
    let log_path = node_dir(dir, id).join("ringraftd.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|err| format!("{}: {err}", log_path.display()))?;
    let log_err = log.try_clone().map_err(|err| err.to_string())?;
    let mut command = node_command(exe, dir, id);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err));
    // SAFETY: prctl is async-signal-safe; it only asks the kernel to SIGTERM the child when this
    // launcher dies, so a killed launcher leaves no orphan nodes behind.
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command
        .spawn()
        .map_err(|err| format!("cannot start node {id}: {err}"))
}

fn wait_for_leader(dir: &Path, ids: &[u64], children: &mut [Child]) -> Result<u64, String> {
    let deadline = Instant::now() + FORMATION_DEADLINE;
    loop {
        for (id, child) in ids.iter().zip(children.iter_mut()) {
            if let Ok(Some(exit)) = child.try_wait() {
                return Err(format!(
                    "n{id} exited: {}; see {}",
                    describe_exit(exit),
                    node_dir(dir, *id).join("ringraftd.log").display()
                ));
            }
        }
        let statuses: Vec<_> = ids
            .iter()
            .map(|id| {
                Client::connect(&socket_path(dir, *id), Some(Duration::from_secs(1)))
                    .and_then(|client| client.status())
                    .ok()
            })
            .collect();
        if statuses.iter().all(Option::is_some) {
            let leaders: Vec<u64> = statuses
                .iter()
                .flatten()
                .map(|status| status.leader_id)
                .collect();
            if leaders[0] != 0 && leaders.iter().all(|leader| *leader == leaders[0]) {
                return Ok(leaders[0]);
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "no leader within {FORMATION_DEADLINE:?}; logs are in {}/n*/ringraftd.log",
                dir.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// SIGINT and SIGTERM, caught from the moment `install` returns.
struct Signals {
    runtime: tokio::runtime::Runtime,
    sigterm: tokio::signal::unix::Signal,
    sigint: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Signals, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|err| err.to_string())?;
        let _entered = runtime.enter();
        let sigterm = signal(SignalKind::terminate()).map_err(|err| err.to_string())?;
        let sigint = signal(SignalKind::interrupt()).map_err(|err| err.to_string())?;
        drop(_entered);
        Ok(Signals {
            runtime,
            sigterm,
            sigint,
        })
    }

    /// Waits for SIGINT or SIGTERM, telling the operator about every node that dies meanwhile.
    fn wait(self, ids: &[u64], children: &mut [Child]) -> Result<(), String> {
        let Signals {
            runtime,
            mut sigterm,
            mut sigint,
        } = self;
        let mut reported = vec![false; children.len()];
        runtime.block_on(async {
            let mut poll = tokio::time::interval(CHILD_POLL_INTERVAL);
            loop {
                tokio::select! {
                    _ = sigterm.recv() => return Ok(()),
                    _ = sigint.recv() => return Ok(()),
                    _ = poll.tick() => {
                        for ((id, child), reported) in ids.iter().zip(children.iter_mut()).zip(&mut reported) {
                            if let (false, Ok(Some(exit))) = (*reported, child.try_wait()) {
                                *reported = true;
                                eprintln!("ringraftd dev: n{id} exited: {}", describe_exit(exit));
                            }
                        }
                    }
                }
            }
        })
    }
}

/// SIGTERM to every node (by pid file, so nodes a test restarted are stopped too), then SIGKILL
/// to whatever is still running at the deadline.
fn stop_all(dir: &Path, ids: &[u64], children: &mut [Child]) {
    let mut pids: Vec<i32> = children
        .iter()
        .filter_map(|child| i32::try_from(child.id()).ok())
        .collect();
    for id in ids {
        if let Some(pid) = read_pid_file(&pid_path(dir, *id)) {
            if !pids.contains(&pid) {
                pids.push(pid);
            }
        }
    }
    for pid in &pids {
        // SAFETY: kill(2) with a pid we started or read from our own cluster's pid file.
        unsafe { libc::kill(*pid, libc::SIGTERM) };
    }
    let deadline = Instant::now() + STOP_DEADLINE;
    for child in children.iter_mut() {
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Ok(None) = child.try_wait() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
    for pid in &pids {
        // Restarted nodes are not our children: check they are gone.
        while process_alive(*pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if process_alive(*pid) {
            // SAFETY: kill(2) on a pid of our own cluster that outlived its SIGTERM.
            unsafe { libc::kill(*pid, libc::SIGKILL) };
        }
    }
}

/// Whether `pid` runs. A zombie (dead, not yet reaped by its parent) counts as gone.
pub fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the parenthesized command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}
