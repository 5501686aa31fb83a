//! Turns the measurements of a run into the tables the bench prints.

use crate::load::LoadResult;
use crate::report::{duration_cell, rate_cell, ratio_cell, seconds, thousands, Table};
use crate::stats::format_duration;
use crate::suite::{Measurement, Placement, System, Test};

pub fn render(measurements: &[Measurement]) -> String {
    let mut out = String::new();
    out.push_str("### Raw limits (same machine, same run)\n\n");
    out.push_str(&reference_table(measurements).render());
    out.push_str("\n### ringraft and etcd, 3 nodes on loopback, fsync on\n\n");
    out.push_str(&results_table(measurements).render());
    out.push_str("\n### Idle CPU of the 3 nodes together (share of one core)\n\n");
    out.push_str(&idle_table(measurements).render());
    out.push_str("\n### ringraft / etcd\n\n");
    out.push_str(&ratio_table(measurements).render());
    out.push_str("\n### Targets (issue 5)\n\n");
    out.push_str(&targets_table(measurements).render());
    out.push_str("\n### Against the raw limits\n\n");
    out.push_str(&limits_table(measurements).render());
    let failures = failures(measurements);
    if !failures.is_empty() {
        out.push_str("\n### Errors\n\n");
        for line in failures {
            out.push_str(&format!("- {line}\n"));
        }
    }
    out
}

fn find(
    measurements: &[Measurement],
    system: System,
    test: Test,
    clients: usize,
    placement: Option<Placement>,
) -> Option<&LoadResult> {
    measurements
        .iter()
        .find(|m| {
            m.system == system
                && m.test == test
                && m.clients == clients
                && (placement.is_none() || m.placement == placement)
        })
        .and_then(Measurement::result)
}

fn system_name(system: System) -> &'static str {
    match system {
        System::Reference => "raw",
        System::Ringraft => "ringraft",
        System::Etcd => "etcd",
    }
}

fn reference_table(measurements: &[Measurement]) -> Table {
    let mut table = Table::new(&[
        "measurement",
        ">count",
        ">p50",
        ">p99",
        ">max",
        ">per second",
    ]);
    for m in measurements
        .iter()
        .filter(|m| m.system == System::Reference)
    {
        let Some(result) = m.result() else { continue };
        let latency = result.latency;
        table.row(vec![
            m.test.name().to_string(),
            thousands(result.ops),
            duration_cell(latency.map(|l| l.p50)),
            duration_cell(latency.map(|l| l.p99)),
            duration_cell(latency.map(|l| l.max)),
            rate_cell(result),
        ]);
    }
    table
}

fn results_table(measurements: &[Measurement]) -> Table {
    let mut table = Table::new(&[
        "system",
        "operation",
        ">clients",
        "placement",
        ">ops",
        ">errors",
        ">ops/s",
        ">p50",
        ">p99",
        ">server CPU/op",
        ">bench CPU/op",
        ">fdatasync p50 just before",
    ]);
    for m in measurements
        .iter()
        .filter(|m| m.system != System::Reference && m.test != Test::Idle)
    {
        let Some(result) = m.result() else { continue };
        let latency = result.latency;
        table.row(vec![
            system_name(m.system).to_string(),
            m.test.name().to_string(),
            m.clients.to_string(),
            m.placement.map(Placement::name).unwrap_or("-").to_string(),
            thousands(result.ops),
            thousands(result.errors),
            rate_cell(result),
            duration_cell(latency.map(|l| l.p50)),
            duration_cell(latency.map(|l| l.p99)),
            duration_cell(result.server_cpu_per_op()),
            duration_cell(result.client_cpu_per_op()),
            duration_cell(m.disk_sync_p50),
        ]);
    }
    table
}

fn idle_table(measurements: &[Measurement]) -> Table {
    let mut table = Table::new(&["system", ">window", ">CPU", ">share of one core"]);
    for m in measurements.iter().filter(|m| m.test == Test::Idle) {
        let Some(result) = m.result() else { continue };
        let cpu = result.server_cpu.unwrap_or_default();
        let share = cpu.as_secs_f64() / result.elapsed.as_secs_f64().max(1e-9);
        table.row(vec![
            system_name(m.system).to_string(),
            format!("{:.1} s", result.elapsed.as_secs_f64()),
            format_duration(cpu),
            format!("{:.1}%", share * 100.0),
        ]);
    }
    table
}

fn ratio_table(measurements: &[Measurement]) -> Table {
    let mut table = Table::new(&[
        ">clients",
        "placement",
        ">throughput",
        ">p50",
        ">p99",
        ">server CPU/op",
    ]);
    for m in measurements
        .iter()
        .filter(|m| m.system == System::Ringraft && m.test == Test::Write)
    {
        let Some(ours) = m.result() else { continue };
        let Some(theirs) = find(
            measurements,
            System::Etcd,
            Test::Write,
            m.clients,
            m.placement,
        ) else {
            continue;
        };
        let p50 = |r: &LoadResult| seconds(r.latency.map(|l| l.p50));
        let p99 = |r: &LoadResult| seconds(r.latency.map(|l| l.p99));
        let cpu = |r: &LoadResult| seconds(r.server_cpu_per_op());
        table.row(vec![
            m.clients.to_string(),
            m.placement.map(Placement::name).unwrap_or("-").to_string(),
            ratio_cell(Some(ours.ops_per_second()), Some(theirs.ops_per_second())),
            ratio_cell(p50(ours), p50(theirs)),
            ratio_cell(p99(ours), p99(theirs)),
            ratio_cell(cpu(ours), cpu(theirs)),
        ]);
    }
    table
}

fn targets_table(measurements: &[Measurement]) -> Table {
    let mut table = Table::new(&["target", ">measured", "met"]);
    let verdict = |met: Option<bool>| match met {
        Some(true) => "met",
        Some(false) => "NOT met",
        None => "not measured",
    };
    let single = find(measurements, System::Ringraft, Test::Write, 1, None)
        .and_then(|r| r.latency)
        .map(|l| l.p50);
    table.row(vec![
        "single-client propose p50 ≤ 300 µs".into(),
        duration_cell(single),
        verdict(single.map(|p50| p50.as_micros() <= 300)).into(),
    ]);
    for placement in [Placement::Leader, Placement::Spread] {
        let Some(result) = find(
            measurements,
            System::Ringraft,
            Test::Write,
            64,
            Some(placement),
        ) else {
            continue;
        };
        let rate = result.ops_per_second();
        table.row(vec![
            format!("≥ 20,000 proposals/s at 64 clients ({})", placement.name()),
            format!("{}/s", thousands(rate.round() as u64)),
            verdict(Some(rate >= 20_000.0)).into(),
        ]);
    }
    let owner = find(measurements, System::Ringraft, Test::Owner, 1, None)
        .and_then(|r| r.latency)
        .map(|l| l.p50);
    table.row(vec![
        "owner through the socket p50 ≤ 25 µs".into(),
        duration_cell(owner),
        verdict(owner.map(|p50| p50.as_micros() <= 25)).into(),
    ]);
    table
}

fn limits_table(measurements: &[Measurement]) -> Table {
    let mut table = Table::new(&["ratio", ">value"]);
    let p50 = |system, test| {
        find(measurements, system, test, 1, None)
            .and_then(|r| r.latency)
            .map(|l| l.p50)
    };
    let ping = p50(System::Reference, Test::UnixPingPong);
    let sync_start = p50(System::Reference, Test::WriteFdatasyncAppend);
    let sync_end = p50(System::Reference, Test::WriteFdatasyncAppendAfter);
    let sync_busy = p50(System::Reference, Test::WriteFdatasyncAppendBusyCpus);
    let probe = |system| {
        measurements
            .iter()
            .find(|m| m.system == system && m.test == Test::Write && m.clients == 1)
            .and_then(|m| m.disk_sync_p50)
    };
    let propose = p50(System::Ringraft, Test::Write);
    let put = p50(System::Etcd, Test::Write);
    let rows = [
        (
            "ringraft propose p50 / fdatasync p50 just before",
            propose,
            probe(System::Ringraft),
        ),
        (
            "ringraft propose p50 / fdatasync p50 at the start",
            propose,
            sync_start,
        ),
        (
            "ringraft propose p50 / fdatasync p50 at the end",
            propose,
            sync_end,
        ),
        (
            "ringraft propose p50 / fdatasync p50, CPUs kept busy",
            propose,
            sync_busy,
        ),
        (
            "etcd put p50 / fdatasync p50 just before",
            put,
            probe(System::Etcd),
        ),
        (
            "etcd put p50 / fdatasync p50, CPUs kept busy",
            put,
            sync_busy,
        ),
        (
            "ringraft owner p50 / Unix ping-pong p50",
            p50(System::Ringraft, Test::Owner),
            ping,
        ),
    ];
    for (name, ours, limit) in rows {
        let mut cell = ratio_cell(seconds(ours), seconds(limit));
        if let (Some(ours), Some(limit)) = (ours, limit) {
            cell = format!(
                "{cell} ({} / {})",
                format_duration(ours),
                format_duration(limit)
            );
        }
        table.row(vec![name.to_string(), cell]);
    }
    table
}

fn failures(measurements: &[Measurement]) -> Vec<String> {
    measurements
        .iter()
        .filter_map(|m| {
            let what = format!(
                "{} {} ({} clients)",
                system_name(m.system),
                m.test.name(),
                m.clients
            );
            match &m.outcome {
                Err(err) => Some(format!("{what}: failed: {err}")),
                Ok(result) if result.errors > 0 => Some(format!(
                    "{what}: {} errors, first: {}",
                    result.errors,
                    result.first_error.as_deref().unwrap_or("?")
                )),
                Ok(_) => None,
            }
        })
        .collect()
}
