//! One campaign run: a cluster, the workload, the nemesis injecting faults at random from the
//! seed (one at a time or overlapping, each healed after a few seconds), a final heal, a quiet
//! stretch, the final logs of every member, and the checker's verdict over the saved history.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use ringraft_faultfs::Errno;
use ringraft_proto::{Request, Response, Status};

use crate::checker::{self, Report};
use crate::cluster::{connect, Cluster, Damage, Exit, Hold, NodeSettings, STOP_DEADLINE};
use crate::history::{
    Answer, Call, End, FaultRecord, History, Line, Meta, Op, Outcome, Recorder, FORMAT,
};
use crate::kv_checker;
use crate::kv_workload::{self, KvPlan, KvWorkload};
use crate::proxy::{Faults, Stats as ProxyStats};
use crate::workload::{call, mutation_outcome, Workload};

/// How long the cluster may take to elect its first leader, to serve after the final heal, and
/// to converge once the workload stopped.
pub const WAIT: Duration = Duration::from_secs(60);
/// How long one membership step (remove, join, promote) is retried.
const ADMIN_DEADLINE: Duration = Duration::from_secs(60);
/// Client id of the membership worker's admin calls and of the final probes in the history.
const ADMIN_CLIENT: u32 = 900;
const PROBE_CLIENT: u32 = 1000;

#[derive(Debug, Clone)]
pub struct Settings {
    pub seed: u64,
    pub nodes: u64,
    /// How long the workload runs (faults stop a little before it ends).
    pub duration: Duration,
    /// Where histories and run directories go (`<target>/campaign/`).
    pub target_dir: PathBuf,
    pub ringraftd: PathBuf,
    /// Only these fault kinds (their names as the summary prints them); all when empty.
    pub only: Vec<String>,
    /// Half way through, kill every node and delete its Raft data (a cluster that forgets
    /// everything; in a registers run, its register store): the campaign must then fail. Shows
    /// that it can.
    pub sabotage: bool,
    pub workload: WorkloadKind,
    /// One membership change (remove a voter, join and promote a fresh node) a third of the way
    /// into the faults, whatever `only` says.
    pub membership_once: bool,
}

/// What the clients do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadKind {
    /// Proposals, log reads, ring reads and watches (src/workload.rs), judged by src/checker.rs.
    Log,
    /// Counter increments in the per-key registers (src/kv_workload.rs), judged by
    /// src/kv_checker.rs besides src/checker.rs (which then sees only the final probes).
    Registers(KvPlan),
}

#[derive(Debug)]
pub struct RunResult {
    pub report: Report,
    /// The summary line, with the history's path.
    pub summary: String,
    pub history: PathBuf,
    /// The run's directory (node logs), kept when the run failed.
    pub kept_dir: Option<PathBuf>,
    /// The registers' verdict, in a registers run.
    pub registers: Option<kv_checker::Report>,
}

impl RunResult {
    pub fn passed(&self) -> bool {
        self.report.passed() && self.registers.as_ref().is_none_or(|r| r.passed())
    }

    /// Every violation, registers' first, one per line (at most `limit` of each).
    pub fn details(&self, limit: usize) -> String {
        let registers = self
            .registers
            .as_ref()
            .map(|r| r.details(limit))
            .unwrap_or_default();
        format!("{registers}{}", self.report.details(limit))
    }
}

/// Why the campaign cannot run here (printed as a skip), or `None`.
pub fn skip_reason() -> Option<String> {
    crate::net::unavailable()
}

/// The cargo target directory and the `ringraftd` next to the running executable (a test binary
/// in `target/<profile>/deps/`, or a binary in `target/<profile>/`). `RINGRAFTD` overrides the
/// daemon.
pub fn locate() -> Result<(PathBuf, PathBuf), String> {
    let exe = std::env::current_exe().map_err(|e| format!("current executable: {e}"))?;
    let mut profile = exe
        .parent()
        .ok_or("the executable has no directory")?
        .to_path_buf();
    if profile.file_name().is_some_and(|name| name == "deps") {
        profile.pop();
    }
    let target = profile
        .parent()
        .ok_or("the profile directory has no parent")?
        .to_path_buf();
    let ringraftd = match std::env::var_os("RINGRAFTD") {
        Some(path) => PathBuf::from(path),
        None => profile.join("ringraftd"),
    };
    if !ringraftd.is_file() {
        return Err(format!(
            "{} does not exist: build it first (cargo build -p ringraft-daemon --bin ringraftd) \
             or set RINGRAFTD",
            ringraftd.display()
        ));
    }
    Ok((target, ringraftd))
}

pub fn reproduce_command(settings: &Settings) -> String {
    let only = if settings.only.is_empty() {
        String::new()
    } else {
        format!("RINGRAFT_CAMPAIGN_FAULTS={} ", settings.only.join(","))
    };
    let test = match settings.workload {
        WorkloadKind::Log => "campaign",
        WorkloadKind::Registers(_) => "registers_campaign",
    };
    format!(
        "{only}RINGRAFT_CAMPAIGN_SEED={} RINGRAFT_CAMPAIGN_NODES={} RINGRAFT_CAMPAIGN_SECONDS={} \
         cargo test -p ringraft-campaign --test {test} -- --nocapture",
        settings.seed,
        settings.nodes,
        settings.duration.as_secs()
    )
}

/// Every fault kind's name, as `RINGRAFT_CAMPAIGN_FAULTS` and the summary line spell them.
pub fn fault_kinds() -> Vec<&'static str> {
    MENU.iter().map(|(kind, _)| kind.name()).collect()
}

static RUNS: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Kill9,
    Kill9Leader,
    Pause,
    PauseLeader,
    Terminate,
    KillAll,
    PowerLoss,
    PowerLossAll,
    IsolateOne,
    IsolateLeader,
    SplitMinority,
    Bridge,
    OneWay,
    Loss,
    UdpDelay,
    UdpDuplicate,
    UdpReorder,
    DiskStall,
    DiskEio,
    DiskFull,
    StorageTorn,
    StorageFlip,
    Membership,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Kill9 => "kill9",
            Kind::Kill9Leader => "kill9_leader",
            Kind::Pause => "pause",
            Kind::PauseLeader => "pause_leader",
            Kind::Terminate => "sigterm_restart",
            Kind::KillAll => "kill9_all",
            Kind::PowerLoss => "power_loss",
            Kind::PowerLossAll => "power_loss_all",
            Kind::IsolateOne => "partition_one",
            Kind::IsolateLeader => "partition_leader",
            Kind::SplitMinority => "partition_minority",
            Kind::Bridge => "partition_bridge",
            Kind::OneWay => "partition_one_way",
            Kind::Loss => "packet_loss",
            Kind::UdpDelay => "udp_delay",
            Kind::UdpDuplicate => "udp_duplicate",
            Kind::UdpReorder => "udp_reorder",
            Kind::DiskStall => "disk_stall",
            Kind::DiskEio => "disk_eio",
            Kind::DiskFull => "disk_full",
            Kind::StorageTorn => "storage_torn_tail",
            Kind::StorageFlip => "storage_bit_flip",
            Kind::Membership => "membership",
        }
    }

    fn is_network(self) -> bool {
        matches!(
            self,
            Kind::IsolateOne
                | Kind::IsolateLeader
                | Kind::SplitMinority
                | Kind::Bridge
                | Kind::OneWay
                | Kind::Loss
        )
    }

    fn is_proxy(self) -> bool {
        matches!(self, Kind::UdpDelay | Kind::UdpDuplicate | Kind::UdpReorder)
    }

    /// Faults that take the whole cluster and run alone.
    fn is_exclusive(self) -> bool {
        matches!(self, Kind::KillAll | Kind::PowerLossAll)
    }

    fn needs_faultfs(self) -> bool {
        matches!(
            self,
            Kind::PowerLoss | Kind::PowerLossAll | Kind::DiskStall | Kind::DiskEio | Kind::DiskFull
        )
    }
}

/// Relative weights of the fault kinds.
const MENU: &[(Kind, u32)] = &[
    (Kind::Kill9, 6),
    (Kind::Kill9Leader, 6),
    (Kind::Pause, 4),
    (Kind::PauseLeader, 4),
    (Kind::Terminate, 4),
    (Kind::KillAll, 3),
    (Kind::PowerLoss, 5),
    (Kind::PowerLossAll, 3),
    (Kind::IsolateOne, 4),
    (Kind::IsolateLeader, 5),
    (Kind::SplitMinority, 4),
    (Kind::Bridge, 3),
    (Kind::OneWay, 4),
    (Kind::Loss, 3),
    (Kind::UdpDelay, 3),
    (Kind::UdpDuplicate, 3),
    (Kind::UdpReorder, 3),
    (Kind::DiskStall, 3),
    (Kind::DiskEio, 3),
    (Kind::DiskFull, 2),
    (Kind::StorageTorn, 3),
    (Kind::StorageFlip, 2),
    (Kind::Membership, 4),
];

enum Undo {
    /// Start these nodes again.
    Restart(Vec<u64>),
    Resume(u64),
    /// Wait for the SIGTERMed node to exit (killing it at the deadline), then start it.
    Terminate {
        node: u64,
        sent: Instant,
    },
    Network,
    /// End the proxy's faults (the stats when they began).
    Proxy(ProxyStats),
    Disk {
        node: u64,
        kind: Kind,
    },
    Membership(JoinHandle<String>),
}

struct Active {
    kind: Kind,
    detail: String,
    start_us: u64,
    heal_at: Instant,
    nodes: Vec<u64>,
    undo: Undo,
}

struct Nemesis {
    cluster: Arc<Cluster>,
    recorder: Recorder,
    rng: ChaCha8Rng,
    active: Vec<Active>,
    max_overlap: usize,
    faultfs: bool,
    next_id: Arc<AtomicU64>,
    terminating: BTreeSet<u64>,
    /// Nodes restarted on a torn WAL tail, and when: they must come up.
    torn: BTreeMap<u64, Instant>,
    only: Vec<String>,
}

impl Nemesis {
    fn busy(&self) -> BTreeSet<u64> {
        self.active.iter().flat_map(|a| a.nodes.clone()).collect()
    }

    /// A running node no fault holds, or the leader if `leader` (when it is free).
    fn pick(&mut self, leader: bool) -> Option<u64> {
        let busy = self.busy();
        if leader {
            return self.cluster.leader().filter(|id| !busy.contains(id));
        }
        let free: Vec<u64> = self
            .cluster
            .live()
            .into_iter()
            .filter(|id| !busy.contains(id))
            .collect();
        free.choose(&mut self.rng).copied()
    }

    fn heal_delay(&mut self) -> Duration {
        Duration::from_millis(self.rng.gen_range(1_500..5_000))
    }

    /// Notes node exits, and restarts nodes that died without a fault holding them.
    fn supervise(&mut self) {
        for exit in self.cluster.reap() {
            self.note_exit(&exit);
        }
        for id in self.cluster.restart_unheld() {
            self.recorder.event(id, "restarted by the supervisor");
        }
    }

    fn note_exit(&mut self, exit: &Exit) {
        let id = exit.node;
        let removed = exit.code == Some(ringraft_daemon::run::EXIT_REMOVED);
        let torn = self
            .torn
            .remove(&id)
            .is_some_and(|since| since.elapsed() < Duration::from_secs(30));
        let what = if removed {
            format!("exited: {} (removed from the cluster)", exit.status)
        } else if self.terminating.remove(&id) {
            if exit.code == Some(0) {
                format!("exited after SIGTERM: {}", exit.status)
            } else if exit.status == "signal 15" {
                // A SIGTERM that arrives before the daemon installed its handler (it was still
                // starting) ends it by the default action: a stop, as systemd counts it.
                format!("note: n{id} ended by SIGTERM's default action (still starting)")
            } else {
                format!("crash: n{id} exited after SIGTERM with {}", exit.status)
            }
        } else {
            match exit.hold {
                Hold::Fault => format!("exited: {} (a fault stopped it)", exit.status),
                // A node must stop when its disk fails (exit code 1: fatal, logged).
                Hold::Disk if exit.code == Some(1) => {
                    format!("exited during a disk fault: {}", exit.status)
                }
                Hold::Disk => format!(
                    "crash: n{id} exited during a disk fault with {} (expected exit code 1)",
                    exit.status
                ),
                Hold::None if torn => format!(
                    "storage: n{id} did not come up on a WAL with a torn tail: {}",
                    exit.status
                ),
                Hold::None | Hold::Worker | Hold::Damaged => {
                    format!("crash: n{id} exited by itself: {}", exit.status)
                }
            }
        };
        self.recorder.event(id, what);
    }

    fn try_start_fault(&mut self) {
        if self.active.iter().any(|a| a.kind.is_exclusive()) {
            return;
        }
        // Membership changes run for long (catching up, retries): they do not count.
        let transient = self
            .active
            .iter()
            .filter(|a| !matches!(a.undo, Undo::Membership(_)))
            .count();
        if transient >= self.max_overlap {
            return;
        }
        let menu: Vec<(Kind, u32)> = MENU
            .iter()
            .copied()
            .filter(|(kind, _)| self.faultfs || !kind.needs_faultfs())
            .filter(|(kind, _)| self.only.is_empty() || self.only.iter().any(|o| o == kind.name()))
            .collect();
        if menu.is_empty() {
            return;
        }
        for _ in 0..5 {
            let kind = menu
                .choose_weighted(&mut self.rng, |(_, weight)| *weight)
                .expect("a non-empty menu")
                .0;
            // The whole cluster at once: nothing else may hold a node (a membership change may
            // go on, its calls are retried; a damaged node must not be restarted).
            let holds_nodes =
                |a: &Active| !matches!(a.undo, Undo::Membership(_)) || a.kind == Kind::StorageFlip;
            if kind.is_exclusive() && self.active.iter().any(holds_nodes) {
                continue;
            }
            if kind.is_network() && self.active.iter().any(|a| a.kind.is_network()) {
                continue;
            }
            if kind.is_proxy() && self.active.iter().any(|a| a.kind.is_proxy()) {
                continue;
            }
            // One membership change at a time (a damaged node is down until it is replaced).
            let changes_members = |k: Kind| matches!(k, Kind::Membership | Kind::StorageFlip);
            if changes_members(kind) && self.active.iter().any(|a| changes_members(a.kind)) {
                continue;
            }

            if self.start_kind(kind) {
                return;
            }
        }
    }

    /// Injects one fault of `kind`; whether it could.
    fn start_kind(&mut self, kind: Kind) -> bool {
        let Some(active) = self.inject(kind) else {
            return false;
        };
        self.recorder.event(
            active.nodes.first().copied().unwrap_or(0),
            format!("fault {}: {}", kind.name(), active.detail),
        );
        self.active.push(active);
        true
    }

    /// The scheduled membership change: when no other one (nor a replacement) is under way and
    /// no fault takes the whole cluster. Whether it started.
    fn start_membership(&mut self) -> bool {
        let busy = self.active.iter().any(|a| {
            a.kind.is_exclusive() || matches!(a.kind, Kind::Membership | Kind::StorageFlip)
        });
        !busy && self.start_kind(Kind::Membership)
    }

    fn inject(&mut self, kind: Kind) -> Option<Active> {
        let start_us = self.recorder.now_us();
        let heal_at = Instant::now() + self.heal_delay();
        let active = |detail: String, nodes: Vec<u64>, undo: Undo| Active {
            kind,
            detail,
            start_us,
            heal_at,
            nodes,
            undo,
        };
        match kind {
            Kind::Kill9 | Kind::Kill9Leader => {
                let id = self.pick(kind == Kind::Kill9Leader)?;
                self.cluster.kill9(id)?;
                Some(active(format!("n{id}"), vec![id], Undo::Restart(vec![id])))
            }
            Kind::Pause | Kind::PauseLeader => {
                let id = self.pick(kind == Kind::PauseLeader)?;
                self.cluster.pause(id).then_some(())?;
                Some(active(format!("n{id}"), vec![id], Undo::Resume(id)))
            }
            Kind::Terminate => {
                // A node that serves: one still starting may not handle SIGTERM yet.
                let id = self.pick(false)?;
                self.cluster.status(id, Duration::from_millis(500)).ok()?;
                self.cluster.terminate(id).then_some(())?;
                self.terminating.insert(id);
                Some(active(
                    format!("n{id}"),
                    vec![id],
                    Undo::Terminate {
                        node: id,
                        sent: Instant::now(),
                    },
                ))
            }
            Kind::KillAll | Kind::PowerLossAll => {
                let ids = self.cluster.targets();
                let mut details = Vec::new();
                for id in &ids {
                    self.cluster.kill9(*id);
                }
                if kind == Kind::PowerLossAll {
                    for id in &ids {
                        if let Some(loss) = self.cluster.power_loss(*id) {
                            details.push(format!("n{id}: {loss}"));
                        }
                    }
                }
                let detail = if details.is_empty() {
                    format!("{ids:?}")
                } else {
                    details.join("; ")
                };
                Some(active(detail, ids.clone(), Undo::Restart(ids)))
            }
            Kind::PowerLoss => {
                let leader = self.rng.gen_bool(0.3);
                let id = self.pick(leader)?;
                self.cluster.kill9(id)?;
                let loss = self.cluster.power_loss(id)?;
                Some(active(
                    format!("n{id}: {loss}"),
                    vec![id],
                    Undo::Restart(vec![id]),
                ))
            }
            Kind::IsolateOne | Kind::IsolateLeader => {
                let id = self.pick(kind == Kind::IsolateLeader)?;
                let others: Vec<u64> = self
                    .cluster
                    .targets()
                    .into_iter()
                    .filter(|o| *o != id)
                    .collect();
                self.block(&[id], &others, true)?;
                Some(active(
                    format!("n{id} from {others:?}"),
                    Vec::new(),
                    Undo::Network,
                ))
            }
            Kind::SplitMinority => {
                let mut ids = self.cluster.targets();
                ids.shuffle(&mut self.rng);
                // Two nodes (a removal before its join): one each side.
                let minority = self
                    .rng
                    .gen_range(1..=(ids.len().saturating_sub(1) / 2).max(1));
                let (a, b) = ids.split_at(minority.min(ids.len()));
                self.block(a, b, true)?;
                Some(active(format!("{a:?} | {b:?}"), Vec::new(), Undo::Network))
            }
            Kind::Bridge => {
                let mut ids = self.cluster.targets();
                if ids.len() < 3 {
                    return None;
                }
                ids.shuffle(&mut self.rng);
                let bridge = ids[0];
                let rest = &ids[1..];
                let cut = self.rng.gen_range(1..rest.len());
                let (a, b) = rest.split_at(cut);
                self.block(a, b, true)?;
                Some(active(
                    format!("{a:?} | {b:?}, n{bridge} sees both"),
                    Vec::new(),
                    Undo::Network,
                ))
            }
            Kind::OneWay => {
                let leader = self.rng.gen_bool(0.5);
                let id = self.pick(leader).or_else(|| self.pick(false))?;
                let others: Vec<u64> = self
                    .cluster
                    .targets()
                    .into_iter()
                    .filter(|o| *o != id)
                    .collect();
                if self.rng.gen_bool(0.5) {
                    // n hears nobody (its messages still go out).
                    self.block(&others, &[id], false)?;
                    Some(active(
                        format!("n{id} hears nobody"),
                        Vec::new(),
                        Undo::Network,
                    ))
                } else {
                    self.block(&[id], &others, false)?;
                    Some(active(
                        format!("nobody hears n{id}"),
                        Vec::new(),
                        Undo::Network,
                    ))
                }
            }
            Kind::Loss => {
                let percent = self.rng.gen_range(10..45);
                for id in self.cluster.targets() {
                    let mut rules = self.cluster.rules(id);
                    rules.loss_percent = percent;
                    self.cluster.set_rules(id, rules).ok()?;
                }
                Some(active(
                    format!("{percent}% of packets dropped"),
                    Vec::new(),
                    Undo::Network,
                ))
            }
            Kind::UdpDelay | Kind::UdpDuplicate | Kind::UdpReorder => {
                // One node's traffic (to and from it) or everyone's.
                let nodes: BTreeSet<u64> = if self.rng.gen_bool(0.5) {
                    self.pick(false).into_iter().collect()
                } else {
                    BTreeSet::new()
                };
                let faults = match kind {
                    Kind::UdpDelay => {
                        let low = self.rng.gen_range(20..150);
                        Faults {
                            nodes: nodes.clone(),
                            delay_ms: (low, low + self.rng.gen_range(0..100)),
                            ..Faults::default()
                        }
                    }
                    Kind::UdpDuplicate => Faults {
                        nodes: nodes.clone(),
                        duplicate_percent: self.rng.gen_range(10..60),
                        delay_ms: (0, self.rng.gen_range(0..5)),
                        ..Faults::default()
                    },
                    _ => Faults {
                        nodes: nodes.clone(),
                        delay_ms: (0, self.rng.gen_range(5..40)),
                        ..Faults::default()
                    },
                };
                let detail = format!(
                    "{} delay {:?}ms, {}% duplicated",
                    if nodes.is_empty() {
                        "all traffic:".to_string()
                    } else {
                        format!("traffic of {nodes:?}:")
                    },
                    faults.delay_ms,
                    faults.duplicate_percent
                );
                self.cluster.proxy.set_faults(faults);
                Some(active(
                    detail,
                    Vec::new(),
                    Undo::Proxy(self.cluster.proxy.stats()),
                ))
            }
            Kind::DiskStall | Kind::DiskEio | Kind::DiskFull => {
                let leader = self.rng.gen_bool(0.3);
                let id = self.pick(leader)?;
                let stall = Duration::from_millis(self.rng.gen_range(1_000..4_000));
                self.cluster.set_hold(id, Hold::Disk);
                let applied = self.cluster.with_fs(id, |fs| match kind {
                    Kind::DiskStall => fs.stall_fsync(stall),
                    Kind::DiskEio => fs.fail_fsync(Errno::EIO),
                    _ => fs.fail_write(Errno::ENOSPC),
                });
                if !applied {
                    self.cluster.set_hold(id, Hold::None);
                    return None;
                }
                let detail = match kind {
                    Kind::DiskStall => format!("n{id}: fsync stalls {}ms", stall.as_millis()),
                    Kind::DiskEio => format!("n{id}: fsync fails with EIO"),
                    _ => format!("n{id}: writes fail with ENOSPC"),
                };
                Some(active(detail, vec![id], Undo::Disk { node: id, kind }))
            }
            Kind::StorageTorn => {
                let id = self.pick(false)?;
                self.cluster.kill9(id)?;
                let (file, what) = self
                    .cluster
                    .damage(id, Damage::TornTail, &mut self.rng)
                    .ok()?;
                self.torn.insert(id, Instant::now());
                Some(active(
                    format!("n{id}: {what} to {}", file.display()),
                    vec![id],
                    Undo::Restart(vec![id]),
                ))
            }
            Kind::StorageFlip => {
                let voters = self.cluster.voters();
                let busy = self.busy();
                let candidates: Vec<u64> = self
                    .cluster
                    .live()
                    .into_iter()
                    .filter(|id| voters.contains(id) && !busy.contains(id))
                    .collect();
                if voters.len() < 3 {
                    return None;
                }
                let id = candidates.choose(&mut self.rng).copied()?;
                self.cluster.kill9(id)?;
                let Ok((file, what)) = self.cluster.damage(id, Damage::BitFlip, &mut self.rng)
                else {
                    self.cluster.set_hold(id, Hold::None);
                    self.cluster.start(id).ok()?;
                    return None;
                };
                let cluster = self.cluster.clone();
                let recorder = self.recorder.clone();
                let new_id = self.next_id.fetch_add(1, Ordering::Relaxed);
                let seed = self.rng.gen();
                let detail = format!("n{id}: {what} in {}", file.display());
                let handle = std::thread::Builder::new()
                    .name("damaged".into())
                    .spawn(move || damaged(&cluster, &recorder, id, &file, new_id, seed))
                    .ok()?;
                Some(active(detail, vec![id], Undo::Membership(handle)))
            }
            Kind::Membership => {
                let cluster = self.cluster.clone();
                let recorder = self.recorder.clone();
                let new_id = self.next_id.fetch_add(1, Ordering::Relaxed);
                let remove_first = self.rng.gen_bool(0.5);
                let remove_leader = self.rng.gen_bool(0.4);
                let seed = self.rng.gen();
                let handle = std::thread::Builder::new()
                    .name("membership".into())
                    .spawn(move || {
                        let plan = Plan {
                            new_id,
                            remove_first,
                            remove_leader,
                            target: None,
                        };
                        membership(&cluster, &recorder, plan, seed)
                    })
                    .ok()?;
                Some(active(
                    format!(
                        "{}remove a voter{}, join and promote n{new_id}",
                        if remove_first { "" } else { "after " },
                        if remove_leader { " (the leader)" } else { "" }
                    ),
                    Vec::new(),
                    Undo::Membership(handle),
                ))
            }
        }
    }

    /// Drops packets from every node in `a` to every node in `b` (and back if `both`).
    fn block(&mut self, a: &[u64], b: &[u64], both: bool) -> Option<()> {
        if a.is_empty() || b.is_empty() {
            return None;
        }
        for to in b {
            let mut rules = self.cluster.rules(*to);
            rules.drop_from.extend(a.iter().copied());
            self.cluster.set_rules(*to, rules).ok()?;
        }
        if both {
            for to in a {
                let mut rules = self.cluster.rules(*to);
                rules.drop_from.extend(b.iter().copied());
                self.cluster.set_rules(*to, rules).ok()?;
            }
        }
        Some(())
    }

    /// Heals the faults that are due (all of them if `force`).
    fn heal_due(&mut self, force: bool) {
        let now = Instant::now();
        let mut keep = Vec::new();
        let mut faults = std::mem::take(&mut self.active);
        // Membership workers last: the faults they may be waiting on must heal first.
        faults.sort_by_key(|a| matches!(a.undo, Undo::Membership(_)));
        for active in faults {
            if !force && now < active.heal_at {
                keep.push(active);
                continue;
            }
            if let Some(still) = self.heal(active, force) {
                keep.push(still);
            }
        }
        self.active = keep;
    }

    /// Heals one fault, or gives it back if it cannot be healed yet.
    fn heal(&mut self, active: Active, force: bool) -> Option<Active> {
        match &active.undo {
            Undo::Restart(ids) => {
                for id in ids {
                    self.start(*id);
                }
            }
            Undo::Resume(id) => self.cluster.resume(*id),
            Undo::Terminate { node, sent } => {
                let node = *node;
                if self.cluster.is_running(node) {
                    if sent.elapsed() < STOP_DEADLINE && !force {
                        return Some(active);
                    }
                    if let Some((exit, killed)) = self
                        .cluster
                        .wait_exit(node, STOP_DEADLINE.saturating_sub(sent.elapsed()))
                    {
                        if killed {
                            self.terminating.remove(&node);
                            self.recorder.event(
                                node,
                                format!(
                                    "note: n{node} did not stop within {STOP_DEADLINE:?} of \
                                     SIGTERM; killed ({})",
                                    exit.status
                                ),
                            );
                        } else {
                            self.note_exit(&exit);
                        }
                    }
                }
                self.terminating.remove(&node);
                self.start(node);
            }
            Undo::Network => {
                if let Err(err) = self.cluster.heal_network() {
                    self.recorder
                        .event(0, format!("note: healing the network: {err}"));
                }
            }
            Undo::Proxy(before) => {
                self.cluster.proxy.heal();
                let now = self.cluster.proxy.stats();
                let detail = format!(
                    "{} (forwarded {}, delayed {}, duplicated {})",
                    active.detail,
                    now.forwarded - before.forwarded,
                    now.delayed - before.delayed,
                    now.duplicated - before.duplicated
                );
                self.finish(active.kind, detail, active.start_us);
                return None;
            }
            Undo::Disk { node, kind } => {
                let node = *node;
                self.cluster.with_fs(node, |fs| fs.heal());
                match kind {
                    Kind::DiskEio => {
                        // The failed fsyncs' data was never written: it is gone at the next
                        // power loss, which comes now.
                        if self.cluster.is_running(node) {
                            self.recorder.event(
                                node,
                                "note: still running after its fsyncs failed with EIO; killed",
                            );
                            self.cluster.kill9(node);
                        }
                        if let Some(loss) = self.cluster.power_loss(node) {
                            self.recorder
                                .event(node, format!("power loss after EIO: {loss}"));
                        }
                    }
                    Kind::DiskFull if self.cluster.is_running(node) => {
                        self.recorder
                            .event(node, "note: still running after ENOSPC");
                    }
                    _ => {}
                }
                self.cluster.release(node);
                self.start(node);
            }
            Undo::Membership(handle) => {
                if !handle.is_finished() && !force {
                    return Some(active);
                }
                let Undo::Membership(handle) = active.undo else {
                    unreachable!()
                };
                let detail = handle
                    .join()
                    .unwrap_or_else(|_| "the membership worker panicked".to_string());
                self.finish(
                    active.kind,
                    format!("{}: {detail}", active.detail),
                    active.start_us,
                );
                return None;
            }
        }
        self.finish(active.kind, active.detail, active.start_us);
        None
    }

    fn finish(&mut self, kind: Kind, detail: String, start_us: u64) {
        let end_us = self.recorder.now_us();
        self.recorder.write(&Line::Fault(FaultRecord {
            kind: kind.name().to_string(),
            detail,
            start_us,
            end_us,
        }));
    }

    fn start(&mut self, id: u64) {
        if self.cluster.is_removed(id) {
            return;
        }
        self.cluster.release(id);
        if let Err(err) = self.cluster.start(id) {
            self.recorder
                .event(id, format!("note: restart failed: {err}"));
        }
    }
}

/// A node started on a file with a flipped bit must stop with the error naming the file and the
/// offset (docs/storage.md, "Recovery"); it is then replaced: removed, and a fresh node joined
/// and promoted.
fn damaged(
    cluster: &Arc<Cluster>,
    recorder: &Recorder,
    id: u64,
    file: &Path,
    new_id: u64,
    seed: u64,
) -> String {
    let log_path = cluster.log_path(id);
    let before = std::fs::metadata(&log_path).map(|m| m.len()).unwrap_or(0) as usize;
    let mut outcome = String::new();
    match cluster.start_with_hold(id, Hold::Worker) {
        Err(err) => outcome.push_str(&format!("could not start n{id}: {err}")),
        Ok(()) => match cluster.wait_exit(id, Duration::from_secs(20)) {
            None => outcome.push_str("no process to wait for"),
            Some((exit, killed)) => {
                let log = std::fs::read(&log_path).unwrap_or_default();
                let log = String::from_utf8_lossy(log.get(before..).unwrap_or_default());
                let wanted = format!("corrupt data in {} at byte offset", file.display());
                let named = log.lines().find(|line| line.contains(&wanted));
                match (killed, exit.code, named) {
                    (false, Some(1), Some(line)) => {
                        let at = line.find("corrupt data").unwrap_or(0);
                        outcome.push_str(&format!("stopped: {}", &line[at..]));
                    }
                    (true, _, _) => recorder.event(
                        id,
                        format!(
                            "storage: n{id} still ran 20s after starting on {} with a flipped                              bit; killed",
                            file.display()
                        ),
                    ),
                    _ => recorder.event(
                        id,
                        format!(
                            "storage: n{id} on {} with a flipped bit ended with {} without                              naming the file and offset (log: {:?})",
                            file.display(),
                            exit.status,
                            log.lines().rev().take(3).collect::<Vec<_>>()
                        ),
                    ),
                }
            }
        },
    }
    // Down for good: it is replaced, never restarted.
    cluster.set_hold(id, Hold::Damaged);
    let plan = Plan {
        new_id,
        remove_first: true,
        remove_leader: false,
        target: Some(id),
    };
    format!("{outcome}; {}", membership(cluster, recorder, plan, seed))
}

struct Plan {
    new_id: u64,
    remove_first: bool,
    remove_leader: bool,
    /// The voter to remove (else one at random, or the leader).
    target: Option<u64>,
}

/// Membership churn: remove a voter (the leader if `remove_leader`), join a fresh node `new_id`
/// and promote it, in either order. Refusals the admin path gives while another change is in
/// flight or the leader moves are expected: each step is retried until it succeeds or its
/// deadline passes. Returns what happened.
fn membership(cluster: &Arc<Cluster>, recorder: &Recorder, plan: Plan, seed: u64) -> String {
    let Plan {
        new_id,
        remove_first,
        remove_leader,
        target,
    } = plan;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut steps = Vec::new();
    let remove = |steps: &mut Vec<String>, rng: &mut ChaCha8Rng| {
        let all_voters = cluster.voters();
        // The node this change joins is not the one it removes.
        let voters: Vec<u64> = all_voters
            .iter()
            .copied()
            .filter(|v| *v != new_id)
            .collect();
        if all_voters.len() < 3 && target.is_none() {
            steps.push(format!("no removal ({} voters)", all_voters.len()));
            return;
        }
        let leader = if remove_leader {
            cluster.leader()
        } else {
            None
        };
        let target = target.or_else(|| {
            leader
                .filter(|l| voters.contains(l))
                .or_else(|| voters.choose(rng).copied())
        });
        let Some(target) = target else {
            steps.push("no removal (no voter known)".into());
            return;
        };
        match admin(
            cluster,
            recorder,
            rng,
            Request::Remove { id: target },
            Some(target),
        ) {
            Ok(index) => {
                cluster.mark_removed(target);
                // It learns it was removed and exits (EXIT_REMOVED); a paused or cut-off node
                // may not learn it soon.
                let exited = cluster
                    .wait_exit(target, Duration::from_secs(20))
                    .map(|(exit, killed)| {
                        if killed {
                            "still running 20s later, killed".to_string()
                        } else {
                            exit.status
                        }
                    })
                    .unwrap_or_else(|| "not running".into());
                steps.push(format!("removed n{target} at {index} ({exited})"));
            }
            Err(err) => steps.push(format!("remove n{target}: {err}")),
        }
    };
    if remove_first {
        remove(&mut steps, &mut rng);
    }
    // Where the new node asks to be admitted: the voters, or every node we know when no node
    // answered just now (an empty list is not a valid configuration).
    let mut via = cluster.voters();
    if via.is_empty() {
        via = cluster.targets();
    }
    match cluster.prepare_joiner(new_id, &via) {
        Err(err) => steps.push(format!("join n{new_id}: preparing: {err}")),
        Ok(address) => {
            let join = Request::Join {
                id: new_id,
                name: format!("n{new_id}"),
                address,
                zone: String::new(),
                weight: 1,
            };
            match admin(cluster, recorder, &mut rng, join, None) {
                Err(err) => {
                    steps.push(format!("join n{new_id}: {err}"));
                    // Unknown whether it joined: start it anyway, it asks to be admitted itself.
                    let _ = cluster.start(new_id);
                }
                Ok(index) => {
                    steps.push(format!("joined n{new_id} at {index}"));
                    if let Err(err) = cluster.start(new_id) {
                        steps.push(format!("start n{new_id}: {err}"));
                    }
                    match admin(
                        cluster,
                        recorder,
                        &mut rng,
                        Request::Promote { id: new_id },
                        None,
                    ) {
                        Ok(index) => steps.push(format!("promoted n{new_id} at {index}")),
                        Err(err) => steps.push(format!("promote n{new_id}: {err}")),
                    }
                }
            }
        }
    }
    if !remove_first {
        remove(&mut steps, &mut rng);
    }
    steps.join("; ")
}

/// One admin request, retried through live nodes (never through `avoid`) until it succeeds or
/// the deadline passes; every attempt is in the history.
fn admin(
    cluster: &Cluster,
    recorder: &Recorder,
    rng: &mut ChaCha8Rng,
    request: Request,
    avoid: Option<u64>,
) -> Result<u64, String> {
    let deadline = Instant::now() + ADMIN_DEADLINE;
    let history_call = match &request {
        Request::Join { id, .. } => Call::Join { id: *id },
        Request::Remove { id } => Call::Remove { id: *id },
        Request::Promote { id } => Call::Promote { id: *id },
        other => unreachable!("not a membership request: {other:?}"),
    };
    let mut uncertain = false;
    let mut last_error = String::from("no live node to ask");
    while Instant::now() < deadline {
        let vias: Vec<u64> = cluster
            .live()
            .into_iter()
            .filter(|id| Some(*id) != avoid)
            .collect();
        let Some(via) = vias.choose(rng).copied() else {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        };
        let Ok(mut client) = connect(&cluster.socket(via), Duration::from_secs(30)) else {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        };
        let invoke_us = recorder.now_us();
        let reply = call(&mut client, request.clone());
        let outcome = mutation_outcome(&reply, |response| match response {
            Response::Done { index } => Some(Answer {
                index: Some(*index),
                ..Answer::default()
            }),
            _ => None,
        });
        recorder.write(&Line::Op(Op {
            id: recorder.next_op_id(),
            client: ADMIN_CLIENT,
            node: via,
            invoke_us,
            complete_us: recorder.now_us(),
            call: history_call.clone(),
            outcome: outcome.clone(),
        }));
        match outcome {
            Outcome::Ok(answer) => return Ok(answer.index.unwrap_or(0)),
            Outcome::Fail {
                status, message, ..
            } => {
                // A removal that an earlier, unanswered attempt already made.
                if uncertain
                    && status == Status::NotFound.name()
                    && matches!(request, Request::Remove { .. })
                {
                    return Ok(0);
                }
                last_error = format!("{status}: {message}");
            }
            Outcome::Unknown { reason } => {
                uncertain = true;
                last_error = reason;
            }
        }
        std::thread::sleep(Duration::from_millis(rng.gen_range(200..1_000)));
    }
    Err(format!("gave up after {ADMIN_DEADLINE:?}: {last_error}"))
}

/// Kills every node, deletes its data directory's `what` (`raft`, `registers`) and starts it
/// again: everything acknowledged there is gone.
fn sabotage(cluster: &Cluster, recorder: &Recorder, what: &str) {
    let start_us = recorder.now_us();
    let ids = cluster.targets();
    cluster.kill_all();
    for id in &ids {
        let data = crate::cluster::data_dir(&cluster.dir, *id).join(what);
        let _ = std::fs::remove_dir_all(&data);
    }
    for id in &ids {
        cluster.release(*id);
        let _ = cluster.start(*id);
    }
    recorder.write(&Line::Fault(FaultRecord {
        kind: "sabotage_wipe_all".to_string(),
        detail: format!("deleted {what} in the data directories of {ids:?}"),
        start_us,
        end_us: recorder.now_us(),
    }));
}

/// Proposes through node `id` until acknowledged or the deadline passes; every attempt is in
/// the history. Returns the index.
fn probe(cluster: &Cluster, recorder: &Recorder, id: u64, deadline: Instant) -> Option<u64> {
    let mut attempt = 0;
    while Instant::now() < deadline {
        attempt += 1;
        let payload = format!("probe.n{id}.{attempt}");
        let Ok(mut client) = connect(&cluster.socket(id), Duration::from_secs(15)) else {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        };
        let invoke_us = recorder.now_us();
        let reply = call(
            &mut client,
            Request::Propose {
                data: payload.clone().into_bytes(),
                timeout_ms: 5_000,
            },
        );
        let outcome = mutation_outcome(&reply, |response| match response {
            Response::Proposed { index } => Some(Answer {
                index: Some(*index),
                ..Answer::default()
            }),
            _ => None,
        });
        recorder.write(&Line::Op(Op {
            id: recorder.next_op_id(),
            client: PROBE_CLIENT,
            node: id,
            invoke_us,
            complete_us: recorder.now_us(),
            call: Call::Propose { payload },
            outcome: outcome.clone(),
        }));
        if let Outcome::Ok(Answer {
            index: Some(index), ..
        }) = outcome
        {
            return Some(index);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

fn wait_for_leader(cluster: &Cluster) -> Option<u64> {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if let Some(leader) = cluster.leader() {
            return Some(leader);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// Runs one campaign; `Err` when the harness itself could not run it (the cluster never formed,
/// a namespace could not be made).
pub fn run(settings: &Settings) -> Result<RunResult, String> {
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
    let campaign_dir = settings.target_dir.join("campaign");
    let dir = campaign_dir.join(format!("{}-{run}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let faultfs = ringraft_faultfs::mount_unavailable().is_none();
    let node_settings = NodeSettings {
        snapshot_every_entries: *[200u64, 1_000, 5_000].choose(&mut rng).expect("choices"),
        down_after_ms: rng.gen_range(3_000..6_000),
    };
    let cluster = Arc::new(Cluster::create(
        &dir,
        &settings.ringraftd,
        run,
        settings.nodes,
        node_settings.clone(),
        faultfs,
    )?);
    cluster.keep_dir.store(true, Ordering::Relaxed);
    if wait_for_leader(&cluster).is_none() {
        return Err(format!(
            "the cluster elected no leader within {WAIT:?}; logs in {}/n*/ringraftd.log",
            cluster.dir.display()
        ));
    }
    let history_path = campaign_dir.join(format!(
        "history-seed{}-{}n.jsonl",
        settings.seed, settings.nodes
    ));
    let recorder = Recorder::create(
        &history_path,
        Meta {
            format: FORMAT.to_string(),
            seed: settings.seed,
            nodes: settings.nodes,
            duration_s: settings.duration.as_secs(),
            faultfs,
            reproduce: format!(
                "{} (snapshot_every_entries={}, down_after_ms={})",
                reproduce_command(settings),
                node_settings.snapshot_every_entries,
                node_settings.down_after_ms
            ),
        },
    )
    .map_err(|e| format!("{}: {e}", history_path.display()))?;
    let workload = match settings.workload {
        WorkloadKind::Log => Running::Log(Workload::start(
            cluster.clone(),
            recorder.clone(),
            settings.seed,
            2 * settings.nodes as u32,
            2,
        )),
        WorkloadKind::Registers(plan) => Running::Registers(KvWorkload::start(
            cluster.clone(),
            recorder.clone(),
            settings.seed,
            plan,
        )),
    };
    let started = Instant::now();
    let quiet = (settings.duration / 5).clamp(Duration::from_secs(3), Duration::from_secs(10));
    let faults_until = started + settings.duration.saturating_sub(quiet);
    let mut membership_at = settings
        .membership_once
        .then(|| started + settings.duration.saturating_sub(quiet) / 3);
    let mut nemesis = Nemesis {
        cluster: cluster.clone(),
        recorder: recorder.clone(),
        max_overlap: rng.gen_range(1..=3),
        rng,
        active: Vec::new(),
        faultfs,
        next_id: Arc::new(AtomicU64::new(settings.nodes + 1)),
        terminating: BTreeSet::new(),
        torn: BTreeMap::new(),
        only: settings.only.clone(),
    };
    let mut next_fault = started + Duration::from_secs(2);
    let mut sabotage_at = settings.sabotage.then(|| started + settings.duration / 2);
    while Instant::now() < faults_until {
        if sabotage_at.is_some_and(|at| Instant::now() >= at) {
            sabotage_at = None;
            let what = match settings.workload {
                WorkloadKind::Log => "raft",
                WorkloadKind::Registers(_) => "registers",
            };
            sabotage(&cluster, &recorder, what);
        }
        nemesis.supervise();
        nemesis.heal_due(false);
        if membership_at.is_some_and(|at| Instant::now() >= at) && nemesis.start_membership() {
            membership_at = None;
        }
        if Instant::now() >= next_fault {
            nemesis.try_start_fault();
            next_fault = Instant::now() + Duration::from_millis(nemesis.rng.gen_range(500..2_500));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // The final heal: every fault ends, every node runs.
    nemesis.heal_due(true);
    cluster.heal_network().ok();
    cluster.proxy.heal();
    for id in cluster.targets() {
        if cluster.is_paused(id) {
            cluster.resume(id);
        }
        cluster.release(id);
    }
    let quiet_until = Instant::now() + quiet;
    while Instant::now() < quiet_until {
        nemesis.supervise();
        std::thread::sleep(Duration::from_millis(100));
    }
    let workload_end_us = recorder.now_us();
    workload.stop();
    nemesis.supervise();

    // The cluster must serve through every node again, and converge.
    let deadline = Instant::now() + WAIT;
    let mut highest = 0;
    for id in cluster.targets() {
        match probe(&cluster, &recorder, id, deadline) {
            Some(index) => highest = highest.max(index),
            None => recorder.event(
                id,
                format!(
                    "no_recovery: n{id} acknowledged no proposal within {WAIT:?} of the final heal"
                ),
            ),
        }
        nemesis.supervise();
    }
    let members: Vec<u64> = cluster
        .members()
        .map(|(_, members)| members.iter().map(|m| m.id).collect())
        .unwrap_or_else(|| cluster.targets());
    let readers: Vec<u64> = members
        .into_iter()
        .filter(|id| cluster.targets().contains(id))
        .collect();
    let deadline = Instant::now() + WAIT;
    loop {
        let applied: Vec<Option<u64>> = readers
            .iter()
            .map(|id| {
                cluster
                    .status(*id, Duration::from_secs(2))
                    .ok()
                    .map(|s| s.applied_index)
            })
            .collect();
        let converged = applied.iter().all(|a| a.is_some_and(|a| a >= highest))
            && applied.windows(2).all(|w| w[0] == w[1]);
        if converged {
            break;
        }
        if Instant::now() >= deadline {
            recorder.event(
                0,
                format!("note: members {readers:?} did not converge within {WAIT:?}: applied {applied:?}"),
            );
            break;
        }
        nemesis.supervise();
        std::thread::sleep(Duration::from_millis(200));
    }
    if let WorkloadKind::Registers(plan) = settings.workload {
        let missing =
            kv_workload::final_reads(&cluster, &recorder, &plan.keys(), Instant::now() + WAIT);
        if missing > 0 {
            recorder.event(
                0,
                format!("note: {missing} final register reads never answered within {WAIT:?}"),
            );
        }
    }
    if membership_at.is_some() {
        recorder.event(
            0,
            "note: the scheduled membership change never found a moment to start",
        );
    }
    for id in &readers {
        recorder.write(&Line::FinalLog(cluster.final_log(*id)));
    }
    recorder.write(&Line::End(End { workload_end_us }));
    recorder.flush();
    drop(nemesis);

    let history = History::load(&history_path)?;
    let report = checker::check(&history);
    let registers = matches!(settings.workload, WorkloadKind::Registers(_))
        .then(|| kv_checker::check(&history));
    let summary = match &registers {
        None => format!(
            "{} history={}",
            report.summary_line(),
            history_path.display()
        ),
        Some(registers) => format!(
            "{} | {} history={}",
            registers.summary_line(),
            report.summary_line(),
            history_path.display()
        ),
    };
    let passed = report.passed() && registers.as_ref().is_none_or(|r| r.passed());
    let kept_dir = if passed {
        cluster.keep_dir.store(false, Ordering::Relaxed);
        None
    } else {
        Some(cluster.dir.clone())
    };
    drop(cluster);
    Ok(RunResult {
        report,
        summary,
        history: history_path,
        kept_dir,
        registers,
    })
}

/// The workload of a run.
enum Running {
    Log(Workload),
    Registers(KvWorkload),
}

impl Running {
    fn stop(self) {
        match self {
            Running::Log(workload) => workload.stop(),
            Running::Registers(workload) => workload.stop(),
        }
    }
}

/// Runs `runs` one after the other and prints each summary line (directly to stderr, so
/// cargo's capture does not hide it); returns the failed ones' descriptions.
pub fn run_all(runs: &[Settings]) -> Vec<String> {
    use std::io::Write as _;
    let mut failures = Vec::new();
    for settings in runs {
        let mut err = std::io::stderr();
        let _ = writeln!(
            err,
            "campaign: seed {} with {} nodes for {}s; reproduce: {}",
            settings.seed,
            settings.nodes,
            settings.duration.as_secs(),
            reproduce_command(settings)
        );
        match run(settings) {
            Ok(result) => {
                let _ = writeln!(err, "{}", result.summary);
                if !result.passed() {
                    let _ = write!(err, "{}", result.details(40));
                    failures.push(format!(
                        "seed {} ({} nodes): {}; reproduce: {}{}",
                        settings.seed,
                        settings.nodes,
                        result.summary,
                        reproduce_command(settings),
                        result
                            .kept_dir
                            .map(|d| format!("; node logs in {}", d.display()))
                            .unwrap_or_default()
                    ));
                }
            }
            Err(error) => {
                let _ = writeln!(
                    err,
                    "campaign seed {} could not run: {error}",
                    settings.seed
                );
                failures.push(format!("seed {}: harness: {error}", settings.seed));
            }
        }
    }
    failures
}

/// A seed from the clock, for the run the test command adds to its fixed seeds.
pub fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    // splitmix64, so nearby clocks give unrelated seeds
    let mut z = nanos ^ u64::from(std::process::id()).rotate_left(32);
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) % 1_000_000_000
}
