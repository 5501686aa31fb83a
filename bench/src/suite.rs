//! The phases of one bench run and what they produced, in the order they ran.

use std::path::Path;
use std::time::Duration;

use crate::load::{LoadResult, LoadSpec};
use crate::reference::{unix_ping_pong, with_busy_cpus, write_fdatasync, WritePattern};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    Reference,
    Ringraft,
    Etcd,
}

/// Where concurrent clients connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Every client on the leader.
    Leader,
    /// Client i on node i mod 3: followers forward to the leader.
    Spread,
}

impl Placement {
    pub fn name(self) -> &'static str {
        match self {
            Placement::Leader => "all on leader",
            Placement::Spread => "spread over 3",
        }
    }

    /// As `name`, for a cluster of `nodes`.
    pub fn label(self, nodes: usize) -> String {
        match self {
            Placement::Leader => "all on leader".to_string(),
            Placement::Spread => format!("spread over {nodes}"),
        }
    }

    /// The node (0-based) client `index` talks to.
    pub fn node_for(self, index: usize, leader: usize, nodes: usize) -> usize {
        match self {
            Placement::Leader => leader,
            Placement::Spread => index % nodes.max(1),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Test {
    UnixPingPong,
    WriteFdatasyncAppend,
    WriteFdatasyncOverwrite,
    /// Appending again, with every CPU kept busy by idle-priority spinners.
    WriteFdatasyncAppendBusyCpus,
    /// The appending write again, once both clusters have stopped: the disk is shared and its
    /// latency drifts with the rest of the machine's load.
    WriteFdatasyncAppendAfter,
    /// Ringraft Propose or etcd put: the replicated, fsynced write.
    Write,
    /// Ringraft Owner through the socket (no etcd equivalent).
    Owner,
    /// No load at all: what the cluster burns doing nothing.
    Idle,
}

impl Test {
    pub fn name(self) -> &'static str {
        match self {
            Test::UnixPingPong => "Unix socket ping-pong (64 B)",
            Test::WriteFdatasyncAppend => "4 KiB write+fdatasync, appending",
            Test::WriteFdatasyncOverwrite => "4 KiB write+fdatasync, overwriting",
            Test::WriteFdatasyncAppendBusyCpus => {
                "4 KiB write+fdatasync, appending, CPUs kept busy"
            }
            Test::WriteFdatasyncAppendAfter => "4 KiB write+fdatasync, appending, at the end",
            Test::Write => "propose / put",
            Test::Owner => "owner (local state)",
            Test::Idle => "idle",
        }
    }
}

pub struct Measurement {
    pub system: System,
    pub test: Test,
    pub clients: usize,
    pub placement: Option<Placement>,
    pub outcome: Result<LoadResult, String>,
    /// p50 of a short 4 KiB write+fdatasync probe run just before this phase: the shared disk's
    /// latency drifts during a run, and this is what the phase was up against.
    pub disk_sync_p50: Option<Duration>,
}

impl Measurement {
    pub fn result(&self) -> Option<&LoadResult> {
        self.outcome.as_ref().ok()
    }
}

/// Bounds of one phase, shared by every system so the numbers compare.
#[derive(Debug, Clone, Copy)]
pub struct PhaseBounds {
    pub duration: Duration,
    pub ops_total_max: u64,
    pub warmup_ops_per_client: u64,
}

impl PhaseBounds {
    pub fn spec(&self, clients: usize) -> LoadSpec {
        LoadSpec {
            clients,
            duration: self.duration,
            ops_per_client_max: (self.ops_total_max / clients.max(1) as u64).max(1),
            warmup_ops_per_client: self.warmup_ops_per_client,
        }
    }
}

fn reference(test: Test, outcome: Result<LoadResult, String>) -> Measurement {
    Measurement {
        system: System::Reference,
        test,
        clients: 1,
        placement: None,
        outcome,
        disk_sync_p50: None,
    }
}

/// fdatasync is slow: a few thousand are plenty, and the scratch file stays small (20 MiB).
fn sync_bounds(bounds: &PhaseBounds) -> PhaseBounds {
    PhaseBounds {
        ops_total_max: 5_000,
        ..*bounds
    }
}

pub fn run_references(dir: &Path, bounds: &PhaseBounds, report: &mut Vec<Measurement>) {
    progress("reference: Unix socket ping-pong");
    let ping_pong = unix_ping_pong(dir, 64, &bounds.spec(1));
    report.push(reference(Test::UnixPingPong, ping_pong));
    for (test, pattern) in [
        (Test::WriteFdatasyncAppend, WritePattern::Append),
        (Test::WriteFdatasyncOverwrite, WritePattern::Overwrite),
    ] {
        progress(&format!("reference: {}", test.name()));
        let outcome = write_fdatasync(dir, 4096, pattern, &sync_bounds(bounds).spec(1));
        report.push(reference(test, outcome));
    }
    let test = Test::WriteFdatasyncAppendBusyCpus;
    progress(&format!("reference: {}", test.name()));
    let spec = sync_bounds(bounds).spec(1);
    let outcome = with_busy_cpus(|| write_fdatasync(dir, 4096, WritePattern::Append, &spec));
    report.push(reference(test, outcome));
}

/// p50 of up to 300 appending 4 KiB write+fdatasync in at most one second.
pub fn disk_probe(dir: &Path) -> Option<Duration> {
    let spec = LoadSpec {
        clients: 1,
        duration: Duration::from_secs(1),
        ops_per_client_max: 300,
        warmup_ops_per_client: 2,
    };
    write_fdatasync(dir, 4096, WritePattern::Append, &spec)
        .ok()
        .and_then(|result| result.latency)
        .map(|latency| latency.p50)
}

pub fn run_closing_reference(dir: &Path, bounds: &PhaseBounds, report: &mut Vec<Measurement>) {
    let test = Test::WriteFdatasyncAppendAfter;
    progress(&format!("reference: {}", test.name()));
    let spec = sync_bounds(bounds).spec(1);
    report.push(reference(
        test,
        write_fdatasync(dir, 4096, WritePattern::Append, &spec),
    ));
}

pub fn progress(message: &str) {
    eprintln!("bench: {message}");
}

/// The first three fields of /proc/loadavg: the machine is shared, and its load moves the numbers.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_string())
}

/// The program `name` from the same directory as this one (the target directory).
pub fn sibling_binary(name: &str) -> std::path::PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(name)))
        .unwrap_or_else(|| std::path::PathBuf::from(name))
}

/// A system that could not be measured at all (it did not start, say).
pub fn failed(system: System, err: String) -> Measurement {
    Measurement {
        system,
        test: Test::Write,
        clients: 1,
        placement: None,
        outcome: Err(err),
        disk_sync_p50: None,
    }
}
