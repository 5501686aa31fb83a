//! The deterministic simulator of the CASPaxos core (see `sim/`).
//!
//! `cargo test -p ringraft-paxos --test simulation` runs 500 seeds of mixed faults.
//! `RINGRAFT_PAXOS_SEEDS=N` runs N seeds, `RINGRAFT_PAXOS_BASE_SEED=S` starts them at S,
//! `RINGRAFT_PAXOS_MUTANT=<name>` runs a core that breaks one rule (`ringraft_paxos::Mutant`).
//! `every_mutant_is_caught_by_the_default_seeds` fails unless the default seeds catch every
//! mutant; `RINGRAFT_MUTANT_TABLE=1` makes it run every seed for every mutant and print how many
//! caught each. A failing seed prints the command that reproduces it.

mod sim;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use ringraft_paxos::Mutant;
use sim::cluster::{run, FailureKind, RunFailure, RunSummary};

const DEFAULT_SEEDS: u64 = 500;
const DETERMINISM_SEEDS: u64 = 20;

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got {value:?}")),
        Err(_) => default,
    }
}

fn reproduce_command(seed: u64, mutant: Option<Mutant>) -> String {
    let mutant = mutant.map_or(String::new(), |m| format!("RINGRAFT_PAXOS_MUTANT={m:?} "));
    format!(
        "{mutant}RINGRAFT_PAXOS_BASE_SEED={seed} RINGRAFT_PAXOS_SEEDS=1 cargo test -p \
         ringraft-paxos --test simulation simulated_registers"
    )
}

struct Outcome {
    summaries: Vec<RunSummary>,
    failures: Vec<RunFailure>,
}

/// Runs seeds `base..base + count` on all cores; with `stop_at_first`, seeds above the lowest
/// failing one are skipped.
fn run_seeds(base: u64, count: u64, mutant: Option<Mutant>, stop_at_first: bool) -> Outcome {
    let next = AtomicU64::new(0);
    let stop_after = AtomicU64::new(u64::MAX);
    let outcome = Mutex::new(Outcome {
        summaries: Vec::new(),
        failures: Vec::new(),
    });
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count || base + i > stop_after.load(Ordering::Relaxed) {
                    return;
                }
                let result = run(base + i, mutant);
                let mut outcome = outcome.lock().expect("no worker panics while holding it");
                match result {
                    Ok(summary) => outcome.summaries.push(summary),
                    Err(failure) => {
                        if stop_at_first && catches(&failure) {
                            stop_after.fetch_min(failure.seed, Ordering::Relaxed);
                        }
                        outcome.failures.push(failure);
                    }
                }
            });
        }
    });
    let mut outcome = outcome.into_inner().expect("workers are done");
    let stop_after = stop_after.into_inner();
    outcome.summaries.retain(|s| s.seed <= stop_after);
    outcome.failures.retain(|f| f.seed <= stop_after);
    outcome.summaries.sort_by_key(|s| s.seed);
    outcome.failures.sort_by_key(|f| f.seed);
    outcome
}

fn print_totals(summaries: &[RunSummary]) {
    let total = |f: fn(&RunSummary) -> u64| summaries.iter().map(f).sum::<u64>();
    eprintln!(
        "  {} runs: {} events, {} messages ({} dropped, {} duplicated), {} crashes, {} \
         partitions, {} ring changes, {} handoffs, {} tombstones collected, {} hostile messages, {} \
         configurations forgotten; operations: {} answered, {} unknown, {} retried; {} \
         inconclusive checks",
        summaries.len(),
        total(|s| s.events),
        total(|s| s.messages),
        total(|s| s.dropped),
        total(|s| s.duplicated),
        total(|s| s.crashes),
        total(|s| s.partitions),
        total(|s| s.ring_changes),
        total(|s| s.handoffs),
        total(|s| s.collected),
        total(|s| s.hostile),
        total(|s| s.forgotten),
        total(|s| s.ops_ok),
        total(|s| s.ops_unknown),
        total(|s| s.ops_retried),
        summaries.iter().filter(|s| s.inconclusive).count(),
    );
}

fn mutant_named(name: &str) -> Mutant {
    Mutant::ALL
        .into_iter()
        .find(|m| format!("{m:?}") == name)
        .unwrap_or_else(|| panic!("no mutant {name:?}; they are {:?}", Mutant::ALL))
}

fn report_failure(failure: &RunFailure, mutant: Option<Mutant>) {
    eprintln!(
        "\nseed {} failed at {} virtual ms ({:?}): {}",
        failure.seed, failure.virtual_ms, failure.kind, failure.reason
    );
    eprintln!(
        "reproduce with: {}",
        reproduce_command(failure.seed, mutant)
    );
}

#[test]
fn simulated_registers_stay_linearizable_and_live() {
    let count = env_u64("RINGRAFT_PAXOS_SEEDS", DEFAULT_SEEDS);
    let base = env_u64("RINGRAFT_PAXOS_BASE_SEED", 0);
    let mutant = std::env::var("RINGRAFT_PAXOS_MUTANT")
        .ok()
        .map(|name| mutant_named(&name));
    let started = Instant::now();
    let outcome = run_seeds(base, count, mutant, false);
    let wall = started.elapsed().as_secs_f64();
    eprintln!(
        "simulated seeds {base}..{} in {wall:.1}s wall time ({:.0} seeds/s)",
        base + count,
        count as f64 / wall
    );
    print_totals(&outcome.summaries);
    for failure in &outcome.failures {
        report_failure(failure, mutant);
    }
    assert!(
        outcome.failures.is_empty(),
        "{} of {count} seeds failed: {:?}",
        outcome.failures.len(),
        outcome.failures.iter().map(|f| f.seed).collect::<Vec<_>>()
    );
}

/// A run is a function of its seed: the same seed twice handles the same events at the same
/// virtual times (the trace hash).
#[test]
fn same_seed_same_run() {
    for seed in 0..DETERMINISM_SEEDS {
        let fingerprint = |r: Result<RunSummary, RunFailure>| match r {
            Ok(s) => (s.trace_hash, s.events, String::new()),
            Err(f) => (0, f.virtual_ms, f.reason),
        };
        let first = fingerprint(run(seed, None));
        let second = fingerprint(run(seed, None));
        assert_eq!(first, second, "seed {seed} ran differently twice");
    }
}

/// A mutant is caught by a safety checker, or by a panic inside the core's own code.
fn catches(failure: &RunFailure) -> bool {
    match failure.kind {
        FailureKind::Safety => true,
        FailureKind::Panic => failure.reason.contains("paxos/src/"),
        FailureKind::Liveness => false,
    }
}

/// The simulator's power, measured: every mutant (see `paxos/src/mutants.rs`) must be caught by
/// the default seeds. `RINGRAFT_MUTANT_TABLE=1` runs every seed for every mutant and prints how
/// many catch it.
#[test]
fn every_mutant_is_caught_by_the_default_seeds() {
    let count = env_u64("RINGRAFT_PAXOS_SEEDS", DEFAULT_SEEDS);
    let base = env_u64("RINGRAFT_PAXOS_BASE_SEED", 0);
    let table = std::env::var_os("RINGRAFT_MUTANT_TABLE").is_some();
    let mut missed = Vec::new();
    if table {
        eprintln!("| mutant | seeds caught | of | first seed | first reason |");
        eprintln!("|---|---|---|---|---|");
    }
    for mutant in Mutant::ALL {
        let outcome = run_seeds(base, count, Some(mutant), !table);
        let caught: Vec<&RunFailure> = outcome.failures.iter().filter(|f| catches(f)).collect();
        let ran = outcome.summaries.len() + outcome.failures.len();
        let Some(first) = caught.first() else {
            eprintln!("{mutant:?}: 0 / {ran} seeds caught");
            missed.push(mutant);
            continue;
        };
        let reason = first.reason.lines().next().unwrap_or_default();
        if table {
            eprintln!(
                "| {mutant:?} | {} | {ran} | {} | {reason} |",
                caught.len(),
                first.seed
            );
        } else {
            eprintln!("{mutant:?} caught by seed {}: {reason}", first.seed);
        }
        eprintln!(
            "  reproduce with: {}",
            reproduce_command(first.seed, Some(mutant))
        );
    }
    assert!(missed.is_empty(), "mutants no seed caught: {missed:?}");
}
