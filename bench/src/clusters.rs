//! Both clusters up at once, measured phase by phase in turns (ringraft, then etcd, with a disk
//! probe before each pair), so that the machine's drifting load falls on both sides alike.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cpu;
use crate::etcd::{EtcdCluster, EtcdPutClient};
use crate::load::{run_load, LoadResult, OpCounts};
use crate::ringraft::{DevCluster, OwnerClient, ProposeClient};
use crate::suite::{
    disk_probe, failed, progress, Measurement, PhaseBounds, Placement, System, Test,
};

const FORMATION_DEADLINE: Duration = Duration::from_secs(90);

pub struct ClusterPlan<'a> {
    /// `None` skips ringraft.
    pub ringraftd: Option<&'a Path>,
    /// `None` skips etcd.
    pub etcd: Option<&'a Path>,
    pub dir: &'a Path,
    pub bounds: PhaseBounds,
    pub concurrency: &'a [usize],
    pub placements: &'a [Placement],
    /// Each proposal's data and each etcd value.
    pub payload: &'a [u8],
}

/// A running `ringraftd dev` cluster and what the phases need of it.
pub struct RingraftSide {
    pub cluster: DevCluster,
    /// Index (0-based) of the Raft leader in `sockets`.
    pub leader: usize,
    pub pids: Vec<i32>,
    pub sockets: Vec<PathBuf>,
}

/// A running etcd cluster and what the phases need of it.
pub struct EtcdSide {
    pub cluster: EtcdCluster,
    /// Index (0-based) of the leader in `addrs`.
    pub leader: usize,
    pub pids: Vec<i32>,
    pub addrs: Vec<SocketAddr>,
}

pub fn run_clusters(plan: &ClusterPlan, report: &mut Vec<Measurement>) {
    let mut ringraft = plan.ringraftd.and_then(|ringraftd| {
        start_ringraft(ringraftd, &plan.dir.join("ringraft"), 3)
            .map_err(|err| report.push(failed(System::Ringraft, err)))
            .ok()
    });
    let mut etcd = plan.etcd.and_then(|etcd| {
        start_etcd(etcd, &plan.dir.join("etcd"), 3)
            .map_err(|err| report.push(failed(System::Etcd, err)))
            .ok()
    });
    if let Some(side) = &ringraft {
        report.push(idle_measurement(System::Ringraft, &side.pids));
    }
    if let Some(side) = &etcd {
        report.push(idle_measurement(System::Etcd, &side.pids));
    }
    let mut phases = vec![
        (Test::Write, 1, Placement::Leader),
        (Test::Owner, 1, Placement::Leader),
    ];
    for clients in plan.concurrency {
        for placement in plan.placements {
            phases.push((Test::Write, *clients, *placement));
        }
    }
    for (test, clients, placement) in phases {
        let disk_sync_p50 = disk_probe(plan.dir);
        if let Some(side) = &ringraft {
            let mut measurement = ringraft_phase(side, plan, test, clients, placement);
            measurement.disk_sync_p50 = disk_sync_p50;
            report.push(measurement);
        }
        if let (Some(side), Test::Write) = (&etcd, test) {
            let mut measurement = etcd_phase(side, plan, clients, placement);
            measurement.disk_sync_p50 = disk_sync_p50;
            report.push(measurement);
        }
    }
    if let Some(side) = ringraft.as_mut() {
        progress("ringraft: stopping the dev cluster");
        side.cluster.stop();
    }
    if let Some(side) = etcd.as_mut() {
        progress("etcd: stopping");
        side.cluster.stop();
    }
}

/// `ringraftd dev --nodes N` in `dir`, once every node agrees on a leader.
pub fn start_ringraft(ringraftd: &Path, dir: &Path, nodes: usize) -> Result<RingraftSide, String> {
    progress(&format!(
        "ringraft: starting `ringraftd dev --nodes {nodes}`"
    ));
    let cluster = DevCluster::start(ringraftd, dir, nodes, FORMATION_DEADLINE)?;
    let leader = cluster.leader()?;
    let pids = cluster.node_pids()?;
    let sockets = cluster.sockets.clone();
    progress(&format!(
        "ringraft: leader n{}, node pids {pids:?}",
        leader + 1
    ));
    Ok(RingraftSide {
        cluster,
        leader,
        pids,
        sockets,
    })
}

/// An etcd cluster of `members` in `dir`, once every member agrees on a leader.
pub fn start_etcd(etcd: &Path, dir: &Path, members: usize) -> Result<EtcdSide, String> {
    progress(&format!("etcd: starting {members} members"));
    let mut cluster = EtcdCluster::start(etcd, dir, members)?;
    let leader = cluster.wait_for_leader(FORMATION_DEADLINE)?;
    let pids = cluster.pids();
    let addrs = cluster.client_addrs();
    progress(&format!(
        "etcd: leader etcd{}, member pids {pids:?}",
        leader + 1
    ));
    Ok(EtcdSide {
        cluster,
        leader,
        pids,
        addrs,
    })
}

fn ringraft_phase(
    side: &RingraftSide,
    plan: &ClusterPlan,
    test: Test,
    clients: usize,
    placement: Placement,
) -> Measurement {
    progress(&format!(
        "ringraft: {}, {clients} clients, {}",
        test.name(),
        placement.name()
    ));
    let spec = plan.bounds.spec(clients);
    let nodes = side.sockets.len();
    let socket_for = |index| &side.sockets[placement.node_for(index, side.leader, nodes)];
    let result = match test {
        Test::Owner => run_load(&spec, &side.pids, |index| {
            OwnerClient::connect(socket_for(index))
        }),
        _ => run_load(&spec, &side.pids, |index| {
            ProposeClient::connect(socket_for(index), plan.payload)
        }),
    };
    measurement(System::Ringraft, test, clients, placement, result)
}

fn etcd_phase(
    side: &EtcdSide,
    plan: &ClusterPlan,
    clients: usize,
    placement: Placement,
) -> Measurement {
    progress(&format!(
        "etcd: put, {clients} clients, {}",
        placement.name()
    ));
    let spec = plan.bounds.spec(clients);
    let result = run_load(&spec, &side.pids, |index| {
        let member = placement.node_for(index, side.leader, side.addrs.len());
        EtcdPutClient::connect(side.addrs[member], index, plan.payload)
    });
    measurement(System::Etcd, Test::Write, clients, placement, result)
}

fn idle_measurement(system: System, pids: &[i32]) -> Measurement {
    Measurement {
        system,
        test: Test::Idle,
        clients: 0,
        placement: None,
        outcome: idle_phase(pids),
        disk_sync_p50: None,
    }
}

/// CPU the idle nodes spend together (ticks, heartbeats) over a quiet window of 2 s: the floor
/// under every per-operation CPU figure at low rates.
pub fn idle_phase(pids: &[i32]) -> Result<LoadResult, String> {
    progress("measuring idle CPU");
    let window = Duration::from_secs(2);
    (|| {
        let before = cpu::processes_cpu(pids)?;
        let started = Instant::now();
        std::thread::sleep(window);
        let after = cpu::processes_cpu(pids)?;
        Ok(LoadResult {
            clients: 0,
            latency: None,
            ops: 0,
            errors: 0,
            first_error: None,
            counts: OpCounts::default(),
            elapsed: started.elapsed(),
            server_cpu: Some(after.saturating_sub(before)),
            client_cpu: None,
        })
    })()
}

fn measurement(
    system: System,
    test: Test,
    clients: usize,
    placement: Placement,
    result: crate::load::LoadResult,
) -> Measurement {
    Measurement {
        system,
        test,
        clients,
        placement: Some(placement),
        outcome: Ok(result),
        disk_sync_p50: None,
    }
}
