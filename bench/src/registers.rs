//! The registers bench (issue 12): compare-and-swap increments on ringraft's per-key registers
//! and on etcd through Txn, beside ringraft's Raft propose, for each cluster size in turn. Both
//! clusters of one size are up at once and measured phase by phase in turns (ringraft, then
//! etcd, with a disk probe before each pair), as in `clusters.rs`.

use std::path::Path;
use std::time::Duration;

use crate::cas::{CasWorkload, Keys};
use crate::clusters::{start_etcd, start_ringraft, EtcdSide, RingraftSide};
use crate::etcd::EtcdTxnStore;
use crate::load::{run_load, LoadResult};
use crate::ringraft::{ProposeClient, RegisterStore};
use crate::suite::{disk_probe, progress, PhaseBounds, Placement, System};

const REGISTERS_READY_DEADLINE: Duration = Duration::from_secs(60);

/// What the clients of one phase do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// ringraft `kv_cas` increments (the node a client talks to proposes its requests).
    Cas(Keys),
    /// etcd Txn: compare the key's mod_revision, then put.
    TxnCas(Keys),
    /// ringraft Raft Propose (followers forward to the leader).
    Propose,
}

impl Workload {
    pub fn system(self) -> System {
        match self {
            Workload::TxnCas(_) => System::Etcd,
            Workload::Cas(_) | Workload::Propose => System::Ringraft,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Workload::Cas(_) => "CAS (kv_cas)",
            Workload::TxnCas(_) => "Txn CAS",
            Workload::Propose => "propose",
        }
    }

    pub fn keys(self) -> Option<Keys> {
        match self {
            Workload::Cas(keys) | Workload::TxnCas(keys) => Some(keys),
            Workload::Propose => None,
        }
    }
}

/// One measured phase.
pub struct Phase {
    pub nodes: usize,
    pub workload: Workload,
    pub clients: usize,
    pub placement: Placement,
    pub outcome: Result<LoadResult, String>,
    /// p50 of a short 4 KiB write+fdatasync probe just before this phase's group.
    pub disk_sync_p50: Option<Duration>,
}

impl Phase {
    pub fn result(&self) -> Option<&LoadResult> {
        self.outcome.as_ref().ok()
    }
}

pub struct RegistersPlan<'a> {
    /// `None` skips ringraft.
    pub ringraftd: Option<&'a Path>,
    /// `None` skips etcd.
    pub etcd: Option<&'a Path>,
    pub dir: &'a Path,
    pub bounds: PhaseBounds,
    /// Cluster sizes, run one after the other (ringraft nodes and etcd members alike).
    pub sizes: &'a [usize],
    /// Concurrent client counts besides the single client.
    pub concurrency: &'a [usize],
    pub hot_keys: usize,
    pub cold_keys_per_client: usize,
    pub value_bytes: usize,
}

/// Every phase of every size, in the order run. A cluster that fails to start is recorded as
/// one failed phase and its side is skipped for that size.
pub fn run_registers(plan: &RegistersPlan) -> Vec<Phase> {
    let mut phases = Vec::new();
    for &nodes in plan.sizes {
        run_size(plan, nodes, &mut phases);
    }
    phases
}

/// The phase groups of one size: each group runs on ringraft, then on etcd where it has an
/// equivalent. A single client talks to the leader (etcd's best case; any node is the same to
/// the registers); more clients are spread over all nodes, client i on node i mod N.
fn groups(plan: &RegistersPlan) -> Vec<(usize, Placement, Vec<Workload>)> {
    let hot = Keys::Hot {
        count: plan.hot_keys,
    };
    let cold = Keys::Cold {
        per_client: plan.cold_keys_per_client,
    };
    let mut groups = Vec::new();
    let counts = std::iter::once(1).chain(plan.concurrency.iter().copied().filter(|c| *c > 1));
    for clients in counts {
        let placement = if clients == 1 {
            Placement::Leader
        } else {
            Placement::Spread
        };
        groups.push((
            clients,
            placement,
            vec![Workload::Cas(cold), Workload::TxnCas(cold)],
        ));
        groups.push((
            clients,
            placement,
            vec![Workload::Cas(hot), Workload::TxnCas(hot)],
        ));
        groups.push((clients, Placement::Leader, vec![Workload::Propose]));
        if clients > 1 {
            groups.push((clients, Placement::Spread, vec![Workload::Propose]));
        }
    }
    groups
}

fn run_size(plan: &RegistersPlan, nodes: usize, phases: &mut Vec<Phase>) {
    let failed = |workload: Workload, err: String| Phase {
        nodes,
        workload,
        clients: 1,
        placement: Placement::Leader,
        outcome: Err(err),
        disk_sync_p50: None,
    };
    let ringraft = plan.ringraftd.and_then(|ringraftd| {
        let dir = plan.dir.join(format!("ringraft-{nodes}"));
        start_ringraft(ringraftd, &dir, nodes)
            .and_then(|side| {
                side.cluster.wait_for_registers(REGISTERS_READY_DEADLINE)?;
                Ok(side)
            })
            .map_err(|err| phases.push(failed(Workload::Propose, err)))
            .ok()
    });
    let etcd = plan.etcd.and_then(|etcd| {
        start_etcd(etcd, &plan.dir.join(format!("etcd-{nodes}")), nodes)
            .map_err(|err| {
                let cold = Keys::Cold { per_client: 1 };
                phases.push(failed(Workload::TxnCas(cold), err))
            })
            .ok()
    });
    for (index, (clients, placement, workloads)) in groups(plan).into_iter().enumerate() {
        let disk_sync_p50 = disk_probe(plan.dir);
        for workload in workloads {
            let tag = format!("n{nodes}-g{index}");
            let outcome = match workload.system() {
                System::Etcd => etcd
                    .as_ref()
                    .map(|side| etcd_phase(side, plan, workload, clients, placement, &tag)),
                _ => ringraft
                    .as_ref()
                    .map(|side| ringraft_phase(side, plan, workload, clients, placement, &tag)),
            };
            if let Some(outcome) = outcome {
                phases.push(Phase {
                    nodes,
                    workload,
                    clients,
                    placement,
                    outcome: Ok(outcome),
                    disk_sync_p50,
                });
            }
        }
    }
    // The guards stop the clusters when dropped, also on a panic; stopping here says so.
    if let Some(mut side) = ringraft {
        progress("ringraft: stopping the dev cluster");
        side.cluster.stop();
    }
    if let Some(mut side) = etcd {
        progress("etcd: stopping");
        side.cluster.stop();
    }
}

fn announce(nodes: usize, workload: Workload, clients: usize, placement: Placement) {
    let keys = workload
        .keys()
        .map_or(String::new(), |keys| format!(" {}", keys.name()));
    progress(&format!(
        "{nodes} nodes: {}{keys}, {clients} clients, {}",
        workload.name(),
        placement.label(nodes)
    ));
}

fn ringraft_phase(
    side: &RingraftSide,
    plan: &RegistersPlan,
    workload: Workload,
    clients: usize,
    placement: Placement,
    tag: &str,
) -> LoadResult {
    let nodes = side.sockets.len();
    announce(nodes, workload, clients, placement);
    let spec = plan.bounds.spec(clients);
    let socket_for = |index| &side.sockets[placement.node_for(index, side.leader, nodes)];
    match workload {
        Workload::Cas(keys) => run_load(&spec, &side.pids, |index| {
            let store = RegisterStore::connect(socket_for(index))?;
            Ok(CasWorkload::new(store, keys, tag, index, plan.value_bytes))
        }),
        _ => run_load(&spec, &side.pids, |index| {
            ProposeClient::connect(socket_for(index), &vec![0x42; plan.value_bytes])
        }),
    }
}

fn etcd_phase(
    side: &EtcdSide,
    plan: &RegistersPlan,
    workload: Workload,
    clients: usize,
    placement: Placement,
    tag: &str,
) -> LoadResult {
    let members = side.addrs.len();
    announce(members, workload, clients, placement);
    let keys = workload.keys().unwrap_or(Keys::Cold { per_client: 1 });
    let spec = plan.bounds.spec(clients);
    run_load(&spec, &side.pids, |index| {
        let member = placement.node_for(index, side.leader, members);
        let store = EtcdTxnStore::connect(side.addrs[member])?;
        Ok(CasWorkload::new(store, keys, tag, index, plan.value_bytes))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_client_count_has_cas_beside_txn_and_propose() {
        let plan = RegistersPlan {
            ringraftd: None,
            etcd: None,
            dir: Path::new("/nonexistent"),
            bounds: PhaseBounds {
                duration: Duration::from_secs(1),
                ops_total_max: 1,
                warmup_ops_per_client: 0,
            },
            sizes: &[3],
            concurrency: &[16, 1, 64],
            hot_keys: 4,
            cold_keys_per_client: 8,
            value_bytes: 64,
        };
        let groups = groups(&plan);
        let clients: Vec<usize> = groups.iter().map(|g| g.0).collect();
        assert_eq!(clients, [1, 1, 1, 16, 16, 16, 16, 64, 64, 64, 64]);
        assert_eq!(groups[0].1, Placement::Leader);
        assert_eq!(
            groups[3].2,
            vec![
                Workload::Cas(Keys::Cold { per_client: 8 }),
                Workload::TxnCas(Keys::Cold { per_client: 8 })
            ]
        );
        assert_eq!(groups[4].1, Placement::Spread);
        assert_eq!(
            (groups[5].1, groups[6].1),
            (Placement::Leader, Placement::Spread)
        );
        assert!(run_registers(&plan).is_empty(), "no system, no phase");
    }
}
