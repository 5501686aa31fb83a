//! The registers workload: clients on every node's socket increment counters in registers, a
//! few hot keys every client shares and cold keys each client has to itself. An increment is a
//! read-modify-write: `kv_get`, then `kv_cas(key, version, "<count + 1> <tag>")`; a conflict
//! reads again (a few times); a write whose outcome is unknown (a timeout, a lost answer) is
//! recorded as such and never sent again. After the calm phase, `final_reads` reads every key
//! on every node. src/kv_checker.rs judges the history.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use ringraft_client::Client;
use ringraft_proto::{Request, Response, Status};

use crate::cluster::{connect, Cluster};
use crate::history::{data_string, Answer, Call, Line, Op, Outcome, Recorder};
use crate::kv_checker::{parse_value, CONFLICT, FINAL_READ_CLIENT};
use crate::workload::{call, mutation_outcome, read_outcome, Reply, CLIENT_WAIT};

/// How long the daemon may take over one register operation (it answers `timeout` after).
pub const KV_TIMEOUT_MS: u32 = 2_000;
/// Read-modify-write attempts of one increment that keep meeting conflicts.
const ATTEMPTS_MAX: u32 = 4;

/// The shape of the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvPlan {
    pub clients: u32,
    /// Keys every client increments.
    pub hot_keys: u32,
    /// Keys of each client's own.
    pub cold_keys_per_client: u32,
    /// Percent of increments on a hot key.
    pub hot_percent: u32,
}

impl KvPlan {
    pub fn for_nodes(nodes: u64) -> KvPlan {
        KvPlan {
            clients: 2 * nodes as u32,
            hot_keys: 3,
            cold_keys_per_client: 16,
            hot_percent: 50,
        }
    }

    fn hot(i: u32) -> String {
        format!("hot-{i}")
    }

    fn cold(client: u32, i: u32) -> String {
        format!("cold-{client}-{i}")
    }

    /// Every key the workload may touch.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = (0..self.hot_keys).map(KvPlan::hot).collect();
        for client in 0..self.clients {
            keys.extend((0..self.cold_keys_per_client).map(|i| KvPlan::cold(client, i)));
        }
        keys
    }
}

struct Shared {
    cluster: Arc<Cluster>,
    recorder: Recorder,
    stop: AtomicBool,
}

pub struct KvWorkload {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl KvWorkload {
    pub fn start(cluster: Arc<Cluster>, recorder: Recorder, seed: u64, plan: KvPlan) -> KvWorkload {
        let shared = Arc::new(Shared {
            cluster,
            recorder,
            stop: AtomicBool::new(false),
        });
        let threads = (0..plan.clients)
            .map(|client| {
                let shared = shared.clone();
                let rng = ChaCha8Rng::seed_from_u64(seed ^ (0x2545_f491 * u64::from(client + 1)));
                std::thread::Builder::new()
                    .name(format!("kv-client-{client}"))
                    .spawn(move || {
                        KvClient {
                            shared,
                            client,
                            plan,
                            rng,
                            connection: None,
                            attempts: client as usize,
                            sequence: 0,
                        }
                        .run()
                    })
                    .expect("start a register client thread")
            })
            .collect();
        KvWorkload { shared, threads }
    }

    /// Stops every client after its current call (each call is bounded by `CLIENT_WAIT`).
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for KvWorkload {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// What a read or a write came to, for the client's next step.
enum Step {
    /// Read `(count, version)`.
    Read(u64, u64),
    Written,
    Conflict,
    /// Anything else: give up this increment (after an unknown write, never resend it).
    GiveUp {
        keep: bool,
        answered: bool,
    },
}

struct KvClient {
    shared: Arc<Shared>,
    client: u32,
    plan: KvPlan,
    rng: ChaCha8Rng,
    connection: Option<(u64, Client)>,
    attempts: usize,
    sequence: u64,
}

impl KvClient {
    fn stopped(&self) -> bool {
        self.shared.stop.load(Ordering::Relaxed)
    }

    /// A connection to some node: this client's own first, then the others in turn.
    fn connect(&mut self) -> bool {
        let targets = self.shared.cluster.targets();
        if targets.is_empty() {
            return false;
        }
        let node = targets[self.attempts % targets.len()];
        self.attempts += 1;
        match connect(&self.shared.cluster.socket(node), CLIENT_WAIT) {
            Ok(client) => {
                self.connection = Some((node, client));
                true
            }
            Err(_) => false,
        }
    }

    fn run(mut self) {
        while !self.stopped() {
            if self.connection.is_none() && !self.connect() {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            let key = if self.rng.gen_range(0..100) < self.plan.hot_percent {
                KvPlan::hot(self.rng.gen_range(0..self.plan.hot_keys))
            } else {
                KvPlan::cold(
                    self.client,
                    self.rng.gen_range(0..self.plan.cold_keys_per_client),
                )
            };
            let answered = self.increment(&key);
            // After a refusal (no quorum yet, say) back off a little: the cluster needs time.
            let pause = if answered {
                self.rng.gen_range(1..8)
            } else {
                self.rng.gen_range(50..150)
            };
            std::thread::sleep(Duration::from_millis(pause));
        }
    }

    /// One increment of `key`; whether the cluster answered it.
    fn increment(&mut self, key: &str) -> bool {
        for _ in 0..ATTEMPTS_MAX {
            let (count, version) = match self.get(key) {
                Step::Read(count, version) => (count, version),
                Step::GiveUp { keep, answered } => return self.give_up(keep, answered),
                Step::Written | Step::Conflict => unreachable!("a read answers a read"),
            };
            if self.stopped() {
                return true;
            }
            match self.cas(key, version, count + 1) {
                Step::Written => return true,
                Step::Conflict => continue,
                Step::GiveUp { keep, answered } => return self.give_up(keep, answered),
                Step::Read(..) => unreachable!("a write answers a write"),
            }
        }
        true
    }

    fn give_up(&mut self, keep: bool, answered: bool) -> bool {
        if !keep {
            self.connection = None;
        }
        answered
    }

    fn record(&self, node: u64, invoke_us: u64, call: Call, outcome: Outcome) {
        let recorder = &self.shared.recorder;
        recorder.write(&Line::Op(Op {
            id: recorder.next_op_id(),
            client: self.client,
            node,
            invoke_us,
            complete_us: recorder.now_us(),
            call,
            outcome,
        }));
    }

    fn get(&mut self, key: &str) -> Step {
        let Some((node, client)) = self.connection.as_mut() else {
            return Step::GiveUp {
                keep: false,
                answered: false,
            };
        };
        let node = *node;
        let invoke_us = self.shared.recorder.now_us();
        let reply = call(client, kv_get(key));
        let outcome = read_outcome(&reply, entry_answer);
        let step = match &outcome {
            Outcome::Ok(answer) => match answer.value.as_deref() {
                None => Step::Read(0, 0),
                // A value the workload did not write: the checker reports it; nothing to add.
                Some(value) => match parse_value(value) {
                    Some((count, _)) => Step::Read(count, answer.version.unwrap_or(0)),
                    None => Step::GiveUp {
                        keep: true,
                        answered: true,
                    },
                },
            },
            _ => Step::GiveUp {
                keep: keeps_connection(&reply),
                answered: false,
            },
        };
        self.record(
            node,
            invoke_us,
            Call::KvGet {
                key: key.to_string(),
            },
            outcome,
        );
        step
    }

    fn cas(&mut self, key: &str, expected_version: u64, count: u64) -> Step {
        self.sequence += 1;
        let value = format!("{count} c{}.{}", self.client, self.sequence);
        let Some((node, client)) = self.connection.as_mut() else {
            return Step::GiveUp {
                keep: false,
                answered: false,
            };
        };
        let node = *node;
        let invoke_us = self.shared.recorder.now_us();
        let reply = call(
            client,
            Request::KvCas {
                key: key.as_bytes().to_vec(),
                expected_version,
                value: value.clone().into_bytes(),
                timeout_ms: KV_TIMEOUT_MS,
            },
        );
        let outcome = cas_outcome(&reply);
        let step = match &outcome {
            Outcome::Ok(_) => Step::Written,
            Outcome::Fail { status, .. } if status == CONFLICT => Step::Conflict,
            Outcome::Fail { .. } => Step::GiveUp {
                keep: keeps_connection(&reply),
                answered: false,
            },
            Outcome::Unknown { .. } => Step::GiveUp {
                keep: keeps_connection(&reply),
                answered: true,
            },
        };
        self.record(
            node,
            invoke_us,
            Call::KvCas {
                key: key.to_string(),
                expected_version,
                value,
            },
            outcome,
        );
        step
    }
}

fn kv_get(key: &str) -> Request {
    Request::KvGet {
        key: key.as_bytes().to_vec(),
        timeout_ms: KV_TIMEOUT_MS,
    }
}

/// After anything but an answer the connection is in doubt: start a new one.
fn keeps_connection(reply: &Reply) -> bool {
    match reply {
        Reply::Answered(_) => true,
        Reply::Refused(status, _) => !matches!(
            status,
            Status::Removed | Status::ShuttingDown | Status::Malformed
        ),
        _ => false,
    }
}

fn entry_answer(response: &Response) -> Option<Answer> {
    match response {
        Response::KvEntry {
            value,
            version,
            epoch,
        } => Some(Answer {
            version: Some(*version),
            value: value.as_deref().map(data_string),
            epoch: Some(*epoch),
            ..Answer::default()
        }),
        _ => None,
    }
}

/// A kv_cas's outcome: written, a conflict (a definite failure naming the current version), a
/// refusal, or unknown (a timeout: the daemon's own or ours, a lost connection).
fn cas_outcome(reply: &Reply) -> Outcome {
    if let Reply::Answered(Response::KvConflict {
        current_version,
        epoch,
    }) = reply
    {
        return Outcome::Fail {
            status: CONFLICT.to_string(),
            message: format!("version mismatch (epoch {epoch})"),
            current_version: Some(*current_version),
        };
    }
    mutation_outcome(reply, |response| match response {
        Response::KvWritten { version, epoch } => Some(Answer {
            version: Some(*version),
            epoch: Some(*epoch),
            ..Answer::default()
        }),
        _ => None,
    })
}

/// Reads every key on every node the clients may use, each until it answers or `deadline`
/// passes; every attempt is in the history (client `FINAL_READ_CLIENT`). Returns how many
/// (node, key) pairs never answered.
pub fn final_reads(
    cluster: &Cluster,
    recorder: &Recorder,
    keys: &[String],
    deadline: Instant,
) -> u64 {
    let mut missing = 0;
    for node in cluster.targets() {
        let mut connection: Option<Client> = None;
        for key in keys {
            let answered = loop {
                if connection.is_none() {
                    connection = connect(&cluster.socket(node), CLIENT_WAIT).ok();
                }
                let invoke_us = recorder.now_us();
                let outcome = match connection.as_mut() {
                    None => Outcome::Fail {
                        status: Status::Unavailable.name().to_string(),
                        message: "could not connect".to_string(),
                        current_version: None,
                    },
                    Some(client) => {
                        let reply = call(client, kv_get(key));
                        if !keeps_connection(&reply) {
                            connection = None;
                        }
                        read_outcome(&reply, entry_answer)
                    }
                };
                let ok = matches!(outcome, Outcome::Ok(_));
                recorder.write(&Line::Op(Op {
                    id: recorder.next_op_id(),
                    client: FINAL_READ_CLIENT,
                    node,
                    invoke_us,
                    complete_us: recorder.now_us(),
                    call: Call::KvGet { key: key.clone() },
                    outcome,
                }));
                if ok {
                    break true;
                }
                if Instant::now() >= deadline {
                    break false;
                }
                std::thread::sleep(Duration::from_millis(100));
            };
            if !answered {
                missing += 1;
            }
        }
    }
    missing
}
