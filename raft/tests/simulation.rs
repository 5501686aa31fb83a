//! The deterministic simulator of the Raft core (see `sim/`).
//!
//! `cargo test -p ringraft-raft --test simulation` runs 500 seeds of mixed faults.
//! `RINGRAFT_SIM_SEEDS=N` runs N seeds, `RINGRAFT_SIM_BASE_SEED=S` starts them at S, and
//! `RINGRAFT_SIM_TRACE=1` prints the last events before a failure (on by default for one seed;
//! `RINGRAFT_SIM_TRACE_LINES=N` keeps N of them, `RINGRAFT_SIM_TRACE_PASSING=1` with `--nocapture`
//! prints them for a seed that passes too).
//! `RINGRAFT_SIM_SHELL_BUG=ack-before-fsync|apply-uncommitted|read-without-waiting`
//! runs a deliberately broken shell, `RINGRAFT_SIM_MUTANT=<name>` a core that breaks one rule
//! (`ringraft_raft::Mutant`). `every_mutant_is_caught_by_the_default_seeds` fails unless the
//! default seeds catch every mutant; `RINGRAFT_MUTANT_TABLE=1` makes it run every seed for every
//! mutant and print how many caught each.
//! A failing seed prints the command that reproduces it.
//!
//! `sim/scripted.rs` runs hand-written schedules (the paper's figure 8, a follower holding an old
//! leader's suffix) under the same shells and checkers: `cargo test -p ringraft-raft --test
//! simulation scripted`.

mod sim;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use ringraft_raft::Mutant;
use sim::checkers::FailureKind;
use sim::cluster::{run, RunFailure, RunSummary};
use sim::node::ShellBug;

const DEFAULT_SEEDS: u64 = 500;
const DEFAULT_BASE_SEED: u64 = 0;
/// Seeds run twice by the determinism check.
const DETERMINISM_SEEDS: u64 = 20;
/// The broken shells must be caught within this many seeds.
const SELF_TEST_SEEDS_MAX: u64 = 300;

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got {value:?}")),
        Err(_) => default,
    }
}

fn reproduce_command(seed: u64, mutant: Option<Mutant>) -> String {
    let mutant = mutant.map_or(String::new(), |m| format!("RINGRAFT_SIM_MUTANT={m:?} "));
    format!(
        "{mutant}RINGRAFT_SIM_BASE_SEED={seed} RINGRAFT_SIM_SEEDS=1 cargo test -p ringraft-raft \
         --test simulation simulated_clusters"
    )
}

struct Outcome {
    summaries: Vec<RunSummary>,
    failures: Vec<RunFailure>,
}

/// Runs seeds `base..base + count` on all cores. With `stop_at`, the seeds after the lowest one
/// whose failure `stop_at` accepts are skipped (every seed below it still runs, so the lowest
/// such seed is found whatever the number of cores).
fn run_seeds(
    base: u64,
    count: u64,
    bug: ShellBug,
    mutant: Option<Mutant>,
    trace: bool,
    stop_at: Option<fn(&RunFailure) -> bool>,
) -> Outcome {
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
                // A panic is caught inside `run` and comes back as a failure of the seed.
                let result = run(base + i, bug, mutant, trace);
                let mut outcome = outcome.lock().expect("no worker panics while holding it");
                match result {
                    Ok(summary) => outcome.summaries.push(summary),
                    Err(failure) => {
                        if stop_at.is_some_and(|accepts| accepts(&failure)) {
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
    let max = |f: fn(&RunSummary) -> u64| summaries.iter().map(f).max().unwrap_or(0);
    eprintln!(
        "  busiest run: {} events; slowest convergence after the faults: {} virtual ms",
        max(|s| s.events),
        max(|s| s.liveness_ms)
    );
    eprintln!(
        "  {} joint changes, {} snapshots installed, {} appends from a retained tail, {} reads \
         done, {} unsynced writes lost",
        total(|s| s.joint_changes),
        total(|s| s.snapshots_installed),
        total(|s| s.tail_catch_ups),
        total(|s| s.reads_completed),
        total(|s| s.writes_lost)
    );
    eprintln!(
        "  {} reactions to protocol events, {} pauses, {} clock faults, {} lease attacks, {} \
         malformed messages, {} disk stalls, {} voters left faulty in the liveness phase",
        total(|s| s.reactions),
        total(|s| s.pauses),
        total(|s| s.clock_faults),
        total(|s| s.lease_attacks),
        total(|s| s.hostile_messages),
        total(|s| s.disk_stalls),
        total(|s| s.faulty_in_liveness)
    );
    eprintln!(
        "  {} runs: {} virtual s, {} events, {} messages ({} dropped, {} duplicated), {} crashes, \
         {} partitions, {} conf changes, {} transfers, {} compactions, {} elections, {} client \
         operations done, {} given up, {} inconclusive linearizability checks",
        summaries.len(),
        total(|s| s.virtual_ms) / 1000,
        total(|s| s.events),
        total(|s| s.messages),
        total(|s| s.dropped),
        total(|s| s.duplicated),
        total(|s| s.crashes),
        total(|s| s.partitions),
        total(|s| s.conf_changes),
        total(|s| s.transfers),
        total(|s| s.compactions),
        total(|s| s.elections),
        total(|s| s.ops_completed),
        total(|s| s.ops_given_up),
        summaries
            .iter()
            .filter(|s| s.linearizability_inconclusive)
            .count(),
    );
}

fn mutant_named(name: &str) -> Mutant {
    Mutant::ALL
        .into_iter()
        .chain(Mutant::LIVENESS)
        .find(|m| format!("{m:?}") == name)
        .unwrap_or_else(|| {
            panic!(
                "no mutant {name:?}; they are {:?} and {:?}",
                Mutant::ALL,
                Mutant::LIVENESS
            )
        })
}

fn report_failure(failure: &RunFailure, mutant: Option<Mutant>) {
    eprintln!(
        "\nseed {} failed at {} virtual ms ({:?}): {} [{:?} focus]",
        failure.seed,
        failure.virtual_ms,
        failure.kind,
        failure.reason.lines().next().unwrap_or_default(),
        failure.focus
    );
    for line in failure.reason.lines().skip(1) {
        eprintln!("{line}");
    }
    if !failure.trace.is_empty() {
        eprintln!("last events:\n{}", failure.trace.join("\n"));
    }
    eprintln!(
        "reproduce with: {}",
        reproduce_command(failure.seed, mutant)
    );
}

#[test]
fn simulated_clusters_stay_safe_and_live() {
    let count = env_u64("RINGRAFT_SIM_SEEDS", DEFAULT_SEEDS);
    let base = env_u64("RINGRAFT_SIM_BASE_SEED", DEFAULT_BASE_SEED);
    let trace = count == 1 || std::env::var_os("RINGRAFT_SIM_TRACE").is_some();
    let started = Instant::now();
    // For debugging the checkers themselves: run a deliberately broken shell, or core.
    let bug = match std::env::var("RINGRAFT_SIM_SHELL_BUG").as_deref() {
        Ok("ack-before-fsync") => ShellBug::AckBeforeFsync,
        Ok("apply-uncommitted") => ShellBug::ApplyUncommitted,
        Ok("read-without-waiting") => ShellBug::ReadWithoutWaiting,
        _ => ShellBug::None,
    };
    let mutant = std::env::var("RINGRAFT_SIM_MUTANT")
        .ok()
        .map(|name| mutant_named(&name));
    let outcome = run_seeds(base, count, bug, mutant, trace, None);
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

fn is_safety_failure(failure: &RunFailure) -> bool {
    failure.kind == FailureKind::Safety
}

/// Runs broken shells until the checkers catch one; a checker that cannot fail proves nothing.
fn assert_caught(bug: ShellBug) {
    let outcome = run_seeds(
        0,
        SELF_TEST_SEEDS_MAX,
        bug,
        None,
        false,
        Some(is_safety_failure),
    );
    let Some(first) = outcome.failures.iter().find(|f| is_safety_failure(f)) else {
        panic!(
            "{bug:?} went unnoticed for {} seeds (other failures: {:?})",
            outcome.summaries.len(),
            outcome
                .failures
                .iter()
                .map(|f| &f.reason)
                .collect::<Vec<_>>()
        );
    };
    eprintln!("{bug:?} caught by seed {}: {}", first.seed, first.reason);
}

#[test]
fn checkers_catch_a_shell_that_acknowledges_before_fsync() {
    assert_caught(ShellBug::AckBeforeFsync);
}

#[test]
fn checkers_catch_a_shell_that_applies_uncommitted_entries() {
    assert_caught(ShellBug::ApplyUncommitted);
}

#[test]
fn checkers_catch_a_shell_that_reads_before_applying_up_to_the_read_index() {
    assert_caught(ShellBug::ReadWithoutWaiting);
}

/// A run is a function of its seed: the same seed twice handles the same events at the same
/// virtual times (the trace hash) and ends in the same state.
#[test]
fn same_seed_same_run() {
    for seed in 0..DETERMINISM_SEEDS {
        let first = run(seed, ShellBug::None, None, false);
        let second = run(seed, ShellBug::None, None, false);
        let fingerprint = |r: &Result<RunSummary, RunFailure>| match r {
            Ok(s) => (s.trace_hash, s.events, s.final_commit, String::new()),
            Err(f) => (0, f.virtual_ms, 0, f.reason.clone()),
        };
        assert_eq!(
            fingerprint(&first),
            fingerprint(&second),
            "seed {seed} ran differently twice"
        );
    }
}

/// A mutant is caught when a checker sees a broken safety property, or when one of the core's
/// own assertions stops it (a panic in `raft/src`; a panic of the simulator is a bug of ours).
fn catches_mutant(failure: &RunFailure) -> bool {
    match failure.kind {
        FailureKind::Safety => true,
        FailureKind::Panic => failure.reason.contains("raft/src/"),
        _ => false,
    }
}

/// The simulator's power, measured: every mutant (a core that breaks one protocol rule, see
/// `raft/src/mutants.rs`) must be caught by the default seeds, the very schedules
/// `simulated_clusters_stay_safe_and_live` runs. Each mutant stops at its first catch;
/// `RINGRAFT_MUTANT_TABLE=1` runs every seed for every mutant and prints how many catch it.
#[test]
fn every_mutant_is_caught_by_the_default_seeds() {
    let count = env_u64("RINGRAFT_SIM_SEEDS", DEFAULT_SEEDS);
    let base = env_u64("RINGRAFT_SIM_BASE_SEED", DEFAULT_BASE_SEED);
    let table = std::env::var_os("RINGRAFT_MUTANT_TABLE").is_some();
    let stop_at = (!table).then_some(catches_mutant as fn(&RunFailure) -> bool);
    let started = Instant::now();
    let mut missed = Vec::new();
    for mutant in Mutant::ALL {
        let outcome = run_seeds(base, count, ShellBug::None, Some(mutant), false, stop_at);
        let caught: Vec<&RunFailure> = outcome
            .failures
            .iter()
            .filter(|f| catches_mutant(f))
            .collect();
        let run = outcome.summaries.len() + outcome.failures.len();
        let other = outcome.failures.len() - caught.len();
        match caught.first() {
            Some(first) => {
                let reason = first.reason.lines().next().unwrap_or_default();
                if table {
                    eprintln!(
                        "{mutant:?}: {} / {run} seeds caught ({other} other failures); first by \
                         seed {} ({:?}): {reason}",
                        caught.len(),
                        first.seed,
                        first.kind
                    );
                } else {
                    eprintln!(
                        "{mutant:?} caught by seed {} ({:?}): {reason}",
                        first.seed, first.kind
                    );
                }
                eprintln!(
                    "  reproduce with: {}",
                    reproduce_command(first.seed, Some(mutant))
                );
            }
            None => {
                eprintln!("{mutant:?}: 0 / {run} seeds caught ({other} other failures)");
                missed.push(mutant);
            }
        }
    }
    eprintln!(
        "mutants over seeds {base}..{} in {:.1}s wall time",
        base + count,
        started.elapsed().as_secs_f64()
    );
    assert!(
        missed.is_empty(),
        "mutants no seed of {base}..{} caught: {missed:?}",
        base + count
    );
}
