//! The tables of the registers bench: every phase, the ratios measured in the same run, and the
//! targets of issue 12.

use std::time::Duration;

use crate::cas::Keys;
use crate::load::LoadResult;
use crate::registers::{Phase, Workload};
use crate::report::{duration_cell, rate_cell, ratio_cell, seconds, thousands, Table};
use crate::suite::Placement;

/// The size and client count the throughput targets name.
const TARGET_NODES: usize = 5;
const TARGET_CLIENTS: usize = 64;

pub fn render(phases: &[Phase]) -> String {
    let mut out = String::new();
    out.push_str("### Every phase (loopback, fsync on)\n\n");
    out.push_str(&phases_table(phases).render());
    out.push_str("\n### CAS against etcd's Txn CAS and ringraft's propose, same run\n\n");
    out.push_str(&ratio_table(phases).render());
    out.push_str("\n### Targets (issue 12)\n\n");
    out.push_str(&targets_table(phases).render());
    let failures: Vec<String> = phases.iter().filter_map(failure).collect();
    if !failures.is_empty() {
        out.push_str("\n### Errors\n\n");
        for line in failures {
            out.push_str(&format!("- {line}\n"));
        }
    }
    out
}

fn keys_cell(workload: Workload) -> String {
    match workload.keys() {
        Some(Keys::Hot { count }) => format!("hot ({count} shared)"),
        Some(Keys::Cold { per_client }) => format!("cold ({per_client} per client)"),
        None => "-".to_string(),
    }
}

fn system_cell(workload: Workload) -> &'static str {
    match workload {
        Workload::TxnCas(_) => "etcd",
        _ => "ringraft",
    }
}

fn phases_table(phases: &[Phase]) -> Table {
    let mut table = Table::new(&[
        ">nodes",
        "system",
        "operation",
        "keys",
        ">clients",
        "placement",
        ">ops",
        ">ops/s",
        ">p50",
        ">p99",
        ">conflicts",
        ">unknown",
        ">busy",
        ">errors",
        ">server CPU/op",
        ">fdatasync p50 just before",
    ]);
    for phase in phases {
        let Some(result) = phase.result() else {
            continue;
        };
        let latency = result.latency;
        table.row(vec![
            phase.nodes.to_string(),
            system_cell(phase.workload).to_string(),
            phase.workload.name().to_string(),
            keys_cell(phase.workload),
            phase.clients.to_string(),
            phase.placement.label(phase.nodes),
            thousands(result.ops),
            rate_cell(result),
            duration_cell(latency.map(|l| l.p50)),
            duration_cell(latency.map(|l| l.p99)),
            thousands(result.counts.conflicts),
            thousands(result.counts.unknown),
            thousands(result.counts.busy),
            thousands(result.errors),
            duration_cell(result.server_cpu_per_op()),
            duration_cell(phase.disk_sync_p50),
        ]);
    }
    table
}

/// The phase of `nodes` and `clients` whose workload satisfies `matches`.
fn find(
    phases: &[Phase],
    nodes: usize,
    clients: usize,
    matches: impl Fn(Workload) -> bool,
) -> Option<&LoadResult> {
    phases
        .iter()
        .find(|p| p.nodes == nodes && p.clients == clients && matches(p.workload))
        .and_then(Phase::result)
}

/// ringraft's propose at `nodes` and `clients` in the placement with the higher throughput (all
/// on the leader or spread): the stronger baseline.
fn best_propose(
    phases: &[Phase],
    nodes: usize,
    clients: usize,
) -> Option<(&LoadResult, Placement)> {
    phases
        .iter()
        .filter(|p| p.nodes == nodes && p.clients == clients && p.workload == Workload::Propose)
        .filter_map(|p| p.result().map(|r| (r, p.placement)))
        .max_by(|a, b| a.0.ops_per_second().total_cmp(&b.0.ops_per_second()))
}

fn p50(result: Option<&LoadResult>) -> Option<Duration> {
    result.and_then(|r| r.latency).map(|l| l.p50)
}

fn rate(result: Option<&LoadResult>) -> Option<f64> {
    result.map(LoadResult::ops_per_second)
}

fn rate_or_dash(result: Option<&LoadResult>) -> String {
    result.map(rate_cell).unwrap_or_else(|| "-".to_string())
}

fn ratio_table(phases: &[Phase]) -> Table {
    let mut table = Table::new(&[
        ">nodes",
        "keys",
        ">clients",
        ">CAS ops/s",
        ">etcd Txn ops/s",
        ">CAS / etcd",
        ">propose ops/s (best placement)",
        ">CAS / propose",
        ">CAS p50",
        ">etcd p50",
        ">propose p50",
        ">CAS p50 / propose p50",
    ]);
    for phase in phases {
        let Workload::Cas(keys) = phase.workload else {
            continue;
        };
        let Some(cas) = phase.result() else { continue };
        let etcd = find(phases, phase.nodes, phase.clients, |w| {
            w == Workload::TxnCas(keys)
        });
        let propose = best_propose(phases, phase.nodes, phase.clients);
        let propose_result = propose.map(|(r, _)| r);
        let propose_cell = match propose {
            Some((result, placement)) => {
                format!("{} ({})", rate_cell(result), placement.label(phase.nodes))
            }
            None => "-".to_string(),
        };
        table.row(vec![
            phase.nodes.to_string(),
            keys.name().to_string(),
            phase.clients.to_string(),
            rate_cell(cas),
            rate_or_dash(etcd),
            ratio_cell(rate(Some(cas)), rate(etcd)),
            propose_cell,
            ratio_cell(rate(Some(cas)), rate(propose_result)),
            duration_cell(p50(Some(cas))),
            duration_cell(p50(etcd)),
            duration_cell(p50(propose_result)),
            ratio_cell(seconds(p50(Some(cas))), seconds(p50(propose_result))),
        ]);
    }
    table
}

fn verdict(met: Option<bool>) -> String {
    match met {
        Some(true) => "met",
        Some(false) => "NOT met",
        None => "not measured",
    }
    .to_string()
}

/// `2.10× (12,000/s vs 5,700/s)` and whether the ratio reaches `at_least`.
fn throughput_row(
    target: String,
    ours: Option<&LoadResult>,
    theirs: Option<&LoadResult>,
    at_least: f64,
) -> Vec<String> {
    let (Some(ours), Some(theirs)) = (ours, theirs) else {
        return vec![target, "-".into(), verdict(None)];
    };
    let ratio = ours.ops_per_second() / theirs.ops_per_second().max(1e-9);
    vec![
        target,
        format!(
            "{ratio:.2}× ({}/s vs {}/s)",
            rate_cell(ours),
            rate_cell(theirs)
        ),
        verdict(Some(ratio >= at_least)),
    ]
}

fn targets_table(phases: &[Phase]) -> Table {
    let mut table = Table::new(&["target", ">measured", "met"]);
    let (nodes, clients) = (TARGET_NODES, TARGET_CLIENTS);
    for keys_name in ["cold", "hot"] {
        let is_keys = |keys: Keys| keys.name() == keys_name;
        let cas = find(
            phases,
            nodes,
            clients,
            |w| matches!(w, Workload::Cas(k) if is_keys(k)),
        );
        let etcd = find(
            phases,
            nodes,
            clients,
            |w| matches!(w, Workload::TxnCas(k) if is_keys(k)),
        );
        let propose = best_propose(phases, nodes, clients).map(|(r, _)| r);
        table.row(throughput_row(
            format!("{clients}-client CAS ≥ 2× etcd Txn CAS, {nodes} nodes, {keys_name} keys"),
            cas,
            etcd,
            2.0,
        ));
        table.row(throughput_row(
            format!("{clients}-client CAS ≥ propose, {nodes} nodes, {keys_name} keys"),
            cas,
            propose,
            1.0,
        ));
    }
    let mut sizes: Vec<usize> = phases.iter().map(|p| p.nodes).collect();
    sizes.dedup();
    for nodes in sizes {
        let cas = p50(find(phases, nodes, 1, |w| {
            matches!(w, Workload::Cas(Keys::Cold { .. }))
        }));
        let propose = p50(find(phases, nodes, 1, |w| w == Workload::Propose));
        let measured = match (cas, propose) {
            (Some(cas), Some(propose)) => format!(
                "{} ({} vs {})",
                ratio_cell(seconds(Some(cas)), seconds(Some(propose))),
                duration_cell(Some(cas)),
                duration_cell(Some(propose))
            ),
            _ => "-".to_string(),
        };
        table.row(vec![
            format!("single-client uncontended CAS p50 ≤ propose p50, {nodes} nodes"),
            measured,
            verdict(cas.zip(propose).map(|(cas, propose)| cas <= propose)),
        ]);
    }
    table
}

fn failure(phase: &Phase) -> Option<String> {
    let what = format!(
        "{} nodes, {} {}, {} clients",
        phase.nodes,
        system_cell(phase.workload),
        phase.workload.name(),
        phase.clients
    );
    match &phase.outcome {
        Err(err) => Some(format!("{what}: not measured: {err}")),
        Ok(result) if result.errors > 0 => Some(format!(
            "{what}: {} errors, first: {}",
            result.errors,
            result.first_error.as_deref().unwrap_or("?")
        )),
        Ok(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::OpCounts;
    use crate::stats::summarize;

    fn phase(nodes: usize, workload: Workload, clients: usize, ops: u64, p50_us: u64) -> Phase {
        Phase {
            nodes,
            workload,
            clients,
            placement: Placement::Spread,
            outcome: Ok(LoadResult {
                clients,
                latency: summarize(vec![p50_us * 1_000]),
                ops,
                errors: 0,
                first_error: None,
                counts: OpCounts::default(),
                elapsed: Duration::from_secs(1),
                server_cpu: None,
                client_cpu: None,
            }),
            disk_sync_p50: None,
        }
    }

    #[test]
    fn targets_compare_within_the_same_run() {
        let cold = Keys::Cold { per_client: 8 };
        let hot = Keys::Hot { count: 4 };
        let phases = vec![
            phase(5, Workload::Cas(cold), 1, 1_000, 800),
            phase(5, Workload::Propose, 1, 1_200, 700),
            phase(5, Workload::Cas(cold), 64, 30_000, 2_000),
            phase(5, Workload::TxnCas(cold), 64, 10_000, 6_000),
            phase(5, Workload::Cas(hot), 64, 3_000, 20_000),
            phase(5, Workload::TxnCas(hot), 64, 2_000, 30_000),
            phase(5, Workload::Propose, 64, 20_000, 3_000),
        ];
        let text = targets_table(&phases).render();
        let line = |start: &str| {
            text.lines()
                .find(|l| l.contains(start))
                .unwrap_or_default()
                .to_string()
        };
        assert!(
            line("etcd Txn CAS, 5 nodes, cold").contains("3.00×"),
            "{text}"
        );
        assert!(
            line("etcd Txn CAS, 5 nodes, cold").ends_with("met     |"),
            "{text}"
        );
        assert!(line("propose, 5 nodes, cold").contains("1.50×"), "{text}");
        assert!(
            line("etcd Txn CAS, 5 nodes, hot").contains("NOT met"),
            "{text}"
        );
        assert!(line("propose p50, 5 nodes").contains("NOT met"), "{text}");
        let ratios = ratio_table(&phases).render();
        assert!(ratios.contains("3.00×"), "{ratios}");
    }
}
