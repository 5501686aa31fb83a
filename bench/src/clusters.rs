//! Both clusters up at once, measured phase by phase in turns (ringraft, then etcd, with a disk
//! probe before each pair), so that the machine's drifting load falls on both sides alike.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cpu;
use crate::etcd::{EtcdCluster, EtcdPutClient};
use crate::load::{run_load, LoadResult};
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

struct RingraftSide {
    cluster: DevCluster,
    leader: usize,
    pids: Vec<i32>,
    sockets: Vec<PathBuf>,
}

struct EtcdSide {
    cluster: EtcdCluster,
    leader: usize,
    pids: Vec<i32>,
    addrs: Vec<SocketAddr>,
}

pub fn run_clusters(plan: &ClusterPlan, report: &mut Vec<Measurement>) {
    let mut ringraft = plan.ringraftd.and_then(|ringraftd| {
        start_ringraft(ringraftd, plan.dir)
            .map_err(|err| report.push(failed(System::Ringraft, err)))
            .ok()
    });
    let mut etcd = plan.etcd.and_then(|etcd| {
        start_etcd(etcd, plan.dir)
            .map_err(|err| report.push(failed(System::Etcd, err)))
            .ok()
    });
    if let Some(side) = &ringraft {
        report.push(idle_phase(System::Ringraft, &side.pids));
    }
    if let Some(side) = &etcd {
        report.push(idle_phase(System::Etcd, &side.pids));
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

fn start_ringraft(ringraftd: &Path, dir: &Path) -> Result<RingraftSide, String> {
    progress("ringraft: starting `ringraftd dev --nodes 3`");
    let cluster = DevCluster::start(ringraftd, &dir.join("ringraft"), 3, FORMATION_DEADLINE)?;
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

fn start_etcd(etcd: &Path, dir: &Path) -> Result<EtcdSide, String> {
    progress("etcd: starting 3 members");
    let mut cluster = EtcdCluster::start(etcd, &dir.join("etcd"), 3)?;
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

/// CPU the three idle nodes spend together (ticks, heartbeats) over a quiet window: the floor
/// under every per-operation CPU figure at low rates.
fn idle_phase(system: System, pids: &[i32]) -> Measurement {
    progress("measuring idle CPU");
    let window = Duration::from_secs(2);
    let outcome = (|| {
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
            elapsed: started.elapsed(),
            server_cpu: Some(after.saturating_sub(before)),
            client_cpu: None,
        })
    })();
    Measurement {
        system,
        test: Test::Idle,
        clients: 0,
        placement: None,
        outcome,
        disk_sync_p50: None,
    }
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
