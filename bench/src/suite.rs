//! The phases of one bench run and what they produced, in the order they ran.

use std::path::Path;
use std::time::Duration;

use crate::etcd::{EtcdCluster, EtcdPutClient};
use crate::load::{run_load, LoadResult, LoadSpec};
use crate::reference::{unix_ping_pong, write_fdatasync, WritePattern};
use crate::ringraft::{DevCluster, OwnerClient, ProposeClient};

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
    /// The appending write again, once both clusters have stopped: the disk is shared and its
    /// latency drifts with the rest of the machine's load.
    WriteFdatasyncAppendAfter,
    /// Ringraft Propose or etcd put: the replicated, fsynced write.
    Write,
    /// Ringraft Owner through the socket (no etcd equivalent).
    Owner,
}

impl Test {
    pub fn name(self) -> &'static str {
        match self {
            Test::UnixPingPong => "Unix socket ping-pong (64 B)",
            Test::WriteFdatasyncAppend => "4 KiB write+fdatasync, appending",
            Test::WriteFdatasyncOverwrite => "4 KiB write+fdatasync, overwriting",
            Test::WriteFdatasyncAppendAfter => "4 KiB write+fdatasync, appending, at the end",
            Test::Write => "propose / put",
            Test::Owner => "owner (local state)",
        }
    }
}

pub struct Measurement {
    pub system: System,
    pub test: Test,
    pub clients: usize,
    pub placement: Option<Placement>,
    pub outcome: Result<LoadResult, String>,
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

pub struct RingraftPlan<'a> {
    pub ringraftd: &'a Path,
    pub dir: &'a Path,
    pub bounds: PhaseBounds,
    pub concurrency: &'a [usize],
    pub placements: &'a [Placement],
    pub payload: &'a [u8],
}

pub fn run_ringraft(plan: &RingraftPlan, report: &mut Vec<Measurement>) -> Result<(), String> {
    progress("ringraft: starting `ringraftd dev --nodes 3`");
    let cluster_dir = plan.dir.join("ringraft");
    let mut cluster = DevCluster::start(plan.ringraftd, &cluster_dir, 3, Duration::from_secs(90))?;
    let leader = cluster.leader()?;
    let pids = cluster.node_pids()?;
    let sockets = cluster.sockets.clone();
    progress(&format!(
        "ringraft: leader n{}, node pids {pids:?}",
        leader + 1
    ));
    let mut phase = |test: Test, clients: usize, placement: Placement| {
        progress(&format!(
            "ringraft: {}, {clients} clients, {}",
            test.name(),
            placement.name()
        ));
        let spec = plan.bounds.spec(clients);
        let socket_for = |index| &sockets[placement.node_for(index, leader, sockets.len())];
        let result = match test {
            Test::Owner => run_load(&spec, &pids, |index| {
                OwnerClient::connect(socket_for(index))
            }),
            _ => run_load(&spec, &pids, |index| {
                ProposeClient::connect(socket_for(index), plan.payload)
            }),
        };
        report.push(Measurement {
            system: System::Ringraft,
            test,
            clients,
            placement: Some(placement),
            outcome: Ok(result),
        });
    };
    phase(Test::Write, 1, Placement::Leader);
    phase(Test::Owner, 1, Placement::Leader);
    for clients in plan.concurrency {
        for placement in plan.placements {
            phase(Test::Write, *clients, *placement);
        }
    }
    progress("ringraft: stopping the dev cluster");
    cluster.stop();
    Ok(())
}

pub struct EtcdPlan<'a> {
    pub etcd: &'a Path,
    pub dir: &'a Path,
    pub bounds: PhaseBounds,
    pub concurrency: &'a [usize],
    pub placements: &'a [Placement],
    pub value: &'a [u8],
}

pub fn run_etcd(plan: &EtcdPlan, report: &mut Vec<Measurement>) -> Result<(), String> {
    progress("etcd: starting 3 members");
    let mut cluster = EtcdCluster::start(plan.etcd, &plan.dir.join("etcd"), 3)?;
    let leader = cluster.wait_for_leader(Duration::from_secs(60))?;
    let addrs = cluster.client_addrs();
    let pids = cluster.pids();
    let mut phase = |clients: usize, placement: Placement| {
        progress(&format!(
            "etcd: put, {clients} clients, {}",
            placement.name()
        ));
        let result = run_load(&plan.bounds.spec(clients), &pids, |index| {
            let node = placement.node_for(index, leader, addrs.len());
            EtcdPutClient::connect(addrs[node], index, plan.value)
        });
        report.push(Measurement {
            system: System::Etcd,
            test: Test::Write,
            clients,
            placement: Some(placement),
            outcome: Ok(result),
        });
    };
    phase(1, Placement::Leader);
    for clients in plan.concurrency {
        for placement in plan.placements {
            phase(*clients, *placement);
        }
    }
    progress("etcd: stopping");
    cluster.stop();
    Ok(())
}

pub fn progress(message: &str) {
    eprintln!("cluster_load: {message}");
}

/// A system that could not be measured at all (it did not start, say).
pub fn failed(system: System, err: String) -> Measurement {
    Measurement {
        system,
        test: Test::Write,
        clients: 1,
        placement: None,
        outcome: Err(err),
    }
}
