//! A closed-loop load driver: N client threads, one connection each, every client issuing its
//! next operation as soon as the previous one is answered. Every run is bounded both by a
//! duration and by a count of operations per client.

use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use crate::cpu;
use crate::stats::{summarize, LatencySummary};

/// One client's connection: `run` performs one complete operation (request and answer).
pub trait Operation {
    fn run(&mut self, sequence: u64) -> Result<(), String>;

    /// What this client counted so far besides completed operations (attempts refused and
    /// retried inside `run`, outcomes it could not learn). Only the growth over the measured
    /// window is reported.
    fn counts(&self) -> OpCounts {
        OpCounts::default()
    }
}

/// Attempts inside operations that did not complete them: a compare-and-swap that met another
/// version and was retried, one whose outcome is unknown (a timeout: it may have taken effect),
/// one the server refused as overloaded.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct OpCounts {
    pub conflicts: u64,
    pub unknown: u64,
    pub busy: u64,
}

impl OpCounts {
    fn since(self, earlier: OpCounts) -> OpCounts {
        OpCounts {
            conflicts: self.conflicts.saturating_sub(earlier.conflicts),
            unknown: self.unknown.saturating_sub(earlier.unknown),
            busy: self.busy.saturating_sub(earlier.busy),
        }
    }

    fn add(self, other: OpCounts) -> OpCounts {
        OpCounts {
            conflicts: self.conflicts + other.conflicts,
            unknown: self.unknown + other.unknown,
            busy: self.busy + other.busy,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct LoadSpec {
    pub clients: usize,
    pub duration: Duration,
    pub ops_per_client_max: u64,
    /// Operations each client runs before the measured window opens (not counted).
    pub warmup_ops_per_client: u64,
}

#[derive(Debug, Clone)]
pub struct LoadResult {
    pub clients: usize,
    pub latency: Option<LatencySummary>,
    pub ops: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// Over the measured window, summed over the clients.
    pub counts: OpCounts,
    pub elapsed: Duration,
    /// CPU time of the measured processes during the window, if any were given.
    pub server_cpu: Option<Duration>,
    /// CPU time of this load generator during the window.
    pub client_cpu: Option<Duration>,
}

impl LoadResult {
    pub fn ops_per_second(&self) -> f64 {
        if self.elapsed.is_zero() {
            return 0.0;
        }
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    pub fn server_cpu_per_op(&self) -> Option<Duration> {
        per_op(self.server_cpu, self.ops)
    }

    pub fn client_cpu_per_op(&self) -> Option<Duration> {
        per_op(self.client_cpu, self.ops)
    }
}

fn per_op(total: Option<Duration>, ops: u64) -> Option<Duration> {
    let ops = u32::try_from(ops).ok().filter(|ops| *ops > 0)?;
    total.map(|total| total / ops)
}

/// Errors after which a client gives up (its connection is probably unusable).
const CLIENT_ERRORS_MAX: u64 = 100;

struct ClientOutcome {
    latencies_ns: Vec<u64>,
    counts: OpCounts,
    errors: u64,
    first_error: Option<String>,
    started: Option<Instant>,
    finished: Option<Instant>,
}

/// Runs `spec.clients` threads, each with its own connection from `connect(client_index)`.
/// `server_pids` are the processes whose CPU time is charged to the operations.
pub fn run_load<C, F>(spec: &LoadSpec, server_pids: &[i32], connect: F) -> LoadResult
where
    C: Operation,
    F: Fn(usize) -> Result<C, String> + Sync,
{
    let clients = spec.clients.max(1);
    // Every client and this thread meet here once connected and warmed up.
    let window_open = Barrier::new(clients + 1);
    let outcomes: Mutex<Vec<ClientOutcome>> = Mutex::new(Vec::with_capacity(clients));
    let cpu_before = std::thread::scope(|scope| {
        for index in 0..clients {
            let connect = &connect;
            let window_open = &window_open;
            let outcomes = &outcomes;
            std::thread::Builder::new()
                .name(format!("client-{index}"))
                .spawn_scoped(scope, move || {
                    let outcome = run_client(spec, index, connect, window_open);
                    outcomes
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .push(outcome);
                })
                .expect("spawning a client thread");
        }
        window_open.wait();
        sample_cpu(server_pids)
    });
    let cpu_after = sample_cpu(server_pids);
    let outcomes = outcomes
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    combine(clients, outcomes, cpu_before, cpu_after)
}

fn run_client<C, F>(
    spec: &LoadSpec,
    index: usize,
    connect: &F,
    window_open: &Barrier,
) -> ClientOutcome
where
    C: Operation,
    F: Fn(usize) -> Result<C, String>,
{
    let mut outcome = ClientOutcome {
        latencies_ns: Vec::new(),
        counts: OpCounts::default(),
        errors: 0,
        first_error: None,
        started: None,
        finished: None,
    };
    let record_error = |outcome: &mut ClientOutcome, err: String| {
        outcome.errors += 1;
        outcome.first_error.get_or_insert(err);
    };
    let mut client = match connect(index) {
        Ok(client) => Some(client),
        Err(err) => {
            record_error(&mut outcome, format!("client {index}: {err}"));
            None
        }
    };
    let mut sequence = 0u64;
    if let Some(client) = client.as_mut() {
        for _ in 0..spec.warmup_ops_per_client {
            if let Err(err) = client.run(sequence) {
                record_error(&mut outcome, format!("client {index} warm-up: {err}"));
                break;
            }
            sequence += 1;
        }
    }
    // Warm-up errors are reported but not counted against the window.
    let warmup_errors = outcome.errors;
    window_open.wait();
    let Some(client) = client.as_mut() else {
        return outcome;
    };
    outcome.errors = 0;
    let counts_before = client.counts();
    let started = Instant::now();
    let deadline = started + spec.duration;
    outcome
        .latencies_ns
        .reserve(spec.ops_per_client_max.min(1 << 16) as usize);
    for _ in 0..spec.ops_per_client_max {
        let begin = Instant::now();
        if begin >= deadline || outcome.errors >= CLIENT_ERRORS_MAX {
            break;
        }
        match client.run(sequence) {
            Ok(()) => {
                let elapsed_ns = u64::try_from(begin.elapsed().as_nanos()).unwrap_or(u64::MAX);
                outcome.latencies_ns.push(elapsed_ns);
            }
            Err(err) => record_error(&mut outcome, format!("client {index}: {err}")),
        }
        sequence += 1;
    }
    outcome.errors += warmup_errors;
    outcome.counts = client.counts().since(counts_before);
    outcome.started = Some(started);
    outcome.finished = Some(Instant::now());
    outcome
}

fn sample_cpu(server_pids: &[i32]) -> (Option<Duration>, Option<Duration>) {
    let server = if server_pids.is_empty() {
        None
    } else {
        cpu::processes_cpu(server_pids).ok()
    };
    (server, cpu::own_cpu().ok())
}

fn combine(
    clients: usize,
    outcomes: Vec<ClientOutcome>,
    cpu_before: (Option<Duration>, Option<Duration>),
    cpu_after: (Option<Duration>, Option<Duration>),
) -> LoadResult {
    let started = outcomes.iter().filter_map(|o| o.started).min();
    let finished = outcomes.iter().filter_map(|o| o.finished).max();
    let elapsed = match (started, finished) {
        (Some(started), Some(finished)) => finished.saturating_duration_since(started),
        _ => Duration::ZERO,
    };
    let errors = outcomes.iter().map(|o| o.errors).sum();
    let first_error = outcomes.iter().find_map(|o| o.first_error.clone());
    let counts = outcomes
        .iter()
        .fold(OpCounts::default(), |sum, o| sum.add(o.counts));
    let latencies: Vec<u64> = outcomes.into_iter().flat_map(|o| o.latencies_ns).collect();
    let delta = |before: Option<Duration>, after: Option<Duration>| match (before, after) {
        (Some(before), Some(after)) => Some(after.saturating_sub(before)),
        _ => None,
    };
    LoadResult {
        clients,
        ops: latencies.len() as u64,
        latency: summarize(latencies),
        errors,
        first_error,
        counts,
        elapsed,
        server_cpu: delta(cpu_before.0, cpu_after.0),
        client_cpu: delta(cpu_before.1, cpu_after.1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    struct Counting<'a> {
        total: &'a AtomicU64,
        fail_every: u64,
    }

    impl Operation for Counting<'_> {
        fn run(&mut self, sequence: u64) -> Result<(), String> {
            self.total.fetch_add(1, Ordering::Relaxed);
            if self.fail_every > 0 && sequence % self.fail_every == self.fail_every - 1 {
                return Err(format!("failure at {sequence}"));
            }
            Ok(())
        }
    }

    fn spec(clients: usize, ops_per_client_max: u64) -> LoadSpec {
        LoadSpec {
            clients,
            duration: Duration::from_secs(600),
            ops_per_client_max,
            warmup_ops_per_client: 3,
        }
    }

    #[test]
    fn the_count_bound_stops_every_client_and_warmup_is_not_measured() {
        let total = AtomicU64::new(0);
        let result = run_load(&spec(4, 50), &[], |_| {
            Ok(Counting {
                total: &total,
                fail_every: 0,
            })
        });
        assert_eq!(result.ops, 200);
        assert_eq!(result.errors, 0);
        assert_eq!(total.load(Ordering::Relaxed), 200 + 4 * 3);
        assert_eq!(result.latency.map(|l| l.count), Some(200));
        assert!(result.client_cpu.is_some());
        assert!(result.server_cpu.is_none());
    }

    #[test]
    fn the_duration_bound_stops_clients_that_would_run_forever() {
        let total = AtomicU64::new(0);
        let mut bounded = spec(2, u64::MAX);
        bounded.duration = Duration::from_millis(50);
        let result = run_load(&bounded, &[], |_| {
            Ok(Counting {
                total: &total,
                fail_every: 0,
            })
        });
        assert!(result.ops > 0);
        assert!(result.elapsed >= Duration::from_millis(50));
    }

    /// Counts one conflict per operation, warm-up included.
    struct Conflicting(u64);

    impl Operation for Conflicting {
        fn run(&mut self, _sequence: u64) -> Result<(), String> {
            self.0 += 1;
            Ok(())
        }

        fn counts(&self) -> OpCounts {
            OpCounts {
                conflicts: self.0,
                ..OpCounts::default()
            }
        }
    }

    #[test]
    fn counts_cover_the_window_only_and_add_over_clients() {
        let result = run_load(&spec(2, 10), &[], |_| Ok(Conflicting(0)));
        assert_eq!(result.ops, 20);
        assert_eq!(
            result.counts,
            OpCounts {
                conflicts: 20,
                unknown: 0,
                busy: 0
            }
        );
    }

    #[test]
    fn errors_are_counted_and_not_measured() {
        let total = AtomicU64::new(0);
        let result = run_load(&spec(1, 10), &[], |_| {
            Ok(Counting {
                total: &total,
                fail_every: 5,
            })
        });
        // Sequences 3..13 are measured (3 warm-up); 4 and 9 fail.
        assert_eq!(result.errors, 2);
        assert_eq!(result.ops, 8);
        assert_eq!(
            result.first_error.as_deref(),
            Some("client 0: failure at 4")
        );
    }

    #[test]
    fn a_client_that_cannot_connect_is_an_error_not_a_hang() {
        let total = AtomicU64::new(0);
        let result = run_load(&spec(3, 10), &[], |index| {
            if index == 1 {
                Err("refused".to_string())
            } else {
                Ok(Counting {
                    total: &total,
                    fail_every: 0,
                })
            }
        });
        assert_eq!(result.ops, 20);
        assert_eq!(result.errors, 1);
        assert_eq!(result.first_error.as_deref(), Some("client 1: refused"));
    }
}
