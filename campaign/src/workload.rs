//! The workload: concurrent clients on every node's socket (each client keeps one connection,
//! moving to another node when its node goes away), and watchers that follow the log across
//! restarts. Every call is recorded in the history with its invoke and complete times.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use ringraft_client::{Client, Error as ClientError};
use ringraft_proto::{Request, Response, Status};

use crate::cluster::{connect, Cluster};
use crate::history::{data_string, Answer, Call, Line, Op, Outcome, Record, Recorder};

/// How long the daemon may take to commit a proposal.
pub const PROPOSE_TIMEOUT_MS: u32 = 3_000;
/// How long a client waits for any answer (longer than every daemon deadline, so a daemon's own
/// timeout arrives as its answer).
pub const CLIENT_WAIT: Duration = Duration::from_secs(15);
const KEYS: u32 = 16;

/// The answer to one request on a connection.
pub enum Reply {
    /// The request could not be sent: it cannot take effect.
    NotSent(ClientError),
    Answered(Response),
    /// The daemon answered with an error status.
    Refused(Status, String),
    /// Sent, but no answer came (timeout, connection lost): it may or may not take effect.
    Lost(ClientError),
}

pub fn call(client: &mut Client, request: Request) -> Reply {
    let id = match client.send(request) {
        Ok(id) => id,
        Err(err) => return Reply::NotSent(err),
    };
    match client.wait(id) {
        Ok(Response::Error { status, message }) => Reply::Refused(status, message),
        Ok(other) => Reply::Answered(other),
        Err(err) => Reply::Lost(err),
    }
}

/// Statuses after which a proposal or an admin change may still take effect.
pub fn status_is_uncertain(status: Status) -> bool {
    matches!(
        status,
        Status::Timeout
            | Status::ShuttingDown
            | Status::Removed
            | Status::Internal
            | Status::Unavailable
            | Status::Closed
            | Status::Malformed
    )
}

/// The outcome of a mutating call (a proposal, an admin change) from its reply.
pub fn mutation_outcome(reply: &Reply, ok: impl FnOnce(&Response) -> Option<Answer>) -> Outcome {
    match reply {
        Reply::NotSent(err) => Outcome::Fail {
            status: err.status.name().to_string(),
            message: format!("not sent: {}", err.message),
            current_version: None,
        },
        Reply::Answered(response) => match ok(response) {
            Some(answer) => Outcome::Ok(answer),
            None => Outcome::Unknown {
                reason: format!("unexpected answer {response:?}"),
            },
        },
        Reply::Refused(status, message) if status_is_uncertain(*status) => Outcome::Unknown {
            reason: format!("{}: {message}", status.name()),
        },
        Reply::Refused(status, message) => Outcome::Fail {
            status: status.name().to_string(),
            message: message.clone(),
            current_version: None,
        },
        Reply::Lost(err) => Outcome::Unknown {
            reason: format!("{}: {}", err.status.name(), err.message),
        },
    }
}

/// The outcome of a read from its reply (a read never takes effect, so anything but an answer
/// is a failure, except that a lost answer stays unknown).
pub fn read_outcome(reply: &Reply, ok: impl FnOnce(&Response) -> Option<Answer>) -> Outcome {
    match reply {
        Reply::Refused(status, message) => Outcome::Fail {
            status: status.name().to_string(),
            message: message.clone(),
            current_version: None,
        },
        other => mutation_outcome(other, ok),
    }
}

struct Shared {
    cluster: Arc<Cluster>,
    recorder: Recorder,
    stop: AtomicBool,
    /// The highest index acknowledged so far (where reads start looking).
    last_acked: AtomicU64,
}

pub struct Workload {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Workload {
    pub fn start(
        cluster: Arc<Cluster>,
        recorder: Recorder,
        seed: u64,
        clients: u32,
        watchers: u32,
    ) -> Workload {
        let shared = Arc::new(Shared {
            cluster,
            recorder,
            stop: AtomicBool::new(false),
            last_acked: AtomicU64::new(0),
        });
        let mut threads = Vec::new();
        for client in 0..clients {
            let shared = shared.clone();
            let rng = ChaCha8Rng::seed_from_u64(seed ^ (0x9e37_79b9 * u64::from(client + 1)));
            threads.push(
                std::thread::Builder::new()
                    .name(format!("client-{client}"))
                    .spawn(move || ClientLoop::new(shared, client, rng).run())
                    .expect("start a client thread"),
            );
        }
        for watcher in 0..watchers {
            let shared = shared.clone();
            let rng = ChaCha8Rng::seed_from_u64(seed ^ (0x5bd1_e995 * u64::from(watcher + 1)));
            threads.push(
                std::thread::Builder::new()
                    .name(format!("watcher-{watcher}"))
                    .spawn(move || watch_loop(shared, watcher, rng))
                    .expect("start a watcher thread"),
            );
        }
        Workload { shared, threads }
    }

    /// Stops every client after its current call (each call is bounded by `CLIENT_WAIT`).
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// One client: a connection to one node at a time, a mix of calls.
struct ClientLoop {
    shared: Arc<Shared>,
    client: u32,
    rng: ChaCha8Rng,
    connection: Option<(u64, Client)>,
    attempts: usize,
    sequence: u64,
}

impl ClientLoop {
    fn new(shared: Arc<Shared>, client: u32, rng: ChaCha8Rng) -> ClientLoop {
        ClientLoop {
            shared,
            client,
            rng,
            connection: None,
            attempts: client as usize,
            sequence: 0,
        }
    }

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
            let roll = self.rng.gen_range(0..100);
            let (keep, answered) = match roll {
                0..=59 => self.propose(),
                60..=69 => self.read_log(),
                70..=79 => self.lin_read(),
                80..=89 => self.owner(),
                _ => self.replicas(),
            };
            if !keep {
                self.connection = None;
            }
            // After a refusal (no leader, say) back off a little: the cluster needs time.
            let pause = if answered {
                self.rng.gen_range(2..12)
            } else {
                self.rng.gen_range(50..150)
            };
            std::thread::sleep(Duration::from_millis(pause));
        }
    }

    fn key(&mut self) -> String {
        format!("key-{}", self.rng.gen_range(0..KEYS))
    }

    /// Records one call; returns whether the connection is still good and whether the call
    /// succeeded.
    fn record(
        &self,
        node: u64,
        invoke_us: u64,
        call: Call,
        reply: &Reply,
        outcome: Outcome,
    ) -> (bool, bool) {
        let succeeded = matches!(outcome, Outcome::Ok(_));
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
        // After anything but an answer the connection is in doubt: start a new one.
        let keep = match reply {
            Reply::Answered(_) => true,
            Reply::Refused(status, _) => !matches!(
                status,
                Status::Removed | Status::ShuttingDown | Status::Malformed
            ),
            _ => false,
        };
        (keep, succeeded)
    }

    fn propose(&mut self) -> (bool, bool) {
        self.sequence += 1;
        let payload = format!("p{}.{}", self.client, self.sequence);
        let Some((node, client)) = self.connection.as_mut() else {
            return (false, false);
        };
        let node = *node;
        let invoke_us = self.shared.recorder.now_us();
        let reply = call(
            client,
            Request::Propose {
                data: payload.clone().into_bytes(),
                timeout_ms: PROPOSE_TIMEOUT_MS,
            },
        );
        let outcome = mutation_outcome(&reply, |response| match response {
            Response::Proposed { index } => Some(Answer {
                index: Some(*index),
                ..Answer::default()
            }),
            _ => None,
        });
        if let Outcome::Ok(Answer {
            index: Some(index), ..
        }) = &outcome
        {
            self.shared.last_acked.fetch_max(*index, Ordering::Relaxed);
        }
        self.record(node, invoke_us, Call::Propose { payload }, &reply, outcome)
    }

    fn read_log(&mut self) -> (bool, bool) {
        let last = self.shared.last_acked.load(Ordering::Relaxed);
        let from = self
            .rng
            .gen_range(last.saturating_sub(300).max(1)..=last + 1);
        let max = 64;
        let Some((node, client)) = self.connection.as_mut() else {
            return (false, false);
        };
        let node = *node;
        let invoke_us = self.shared.recorder.now_us();
        let reply = call(client, Request::ReadLog { from, max });
        let outcome = read_outcome(&reply, |response| match response {
            Response::LogRecords {
                records,
                last_index,
                ..
            } => Some(Answer {
                applied: Some(*last_index),
                records: Some(
                    records
                        .iter()
                        .map(|r| Record(r.index, data_string(&r.data)))
                        .collect(),
                ),
                ..Answer::default()
            }),
            _ => None,
        });
        self.record(
            node,
            invoke_us,
            Call::ReadLog { from, max },
            &reply,
            outcome,
        )
    }

    /// Owner{key, linearizable} and then, on the same connection, the node's applied index.
    fn lin_read(&mut self) -> (bool, bool) {
        let key = self.key();
        let Some((node, client)) = self.connection.as_mut() else {
            return (false, false);
        };
        let node = *node;
        let invoke_us = self.shared.recorder.now_us();
        let reply = call(
            client,
            Request::Owner {
                key: key.clone().into_bytes(),
                linearizable: true,
            },
        );
        let mut outcome = read_outcome(&reply, |response| match response {
            Response::Owner { epoch, member } => Some(Answer {
                epoch: Some(*epoch),
                owner: Some(member.id),
                ..Answer::default()
            }),
            _ => None,
        });
        let mut reply = reply;
        if let Outcome::Ok(answer) = &mut outcome {
            let applied = call(
                client,
                Request::ReadLog {
                    from: u64::MAX,
                    max: 1,
                },
            );
            if let Reply::Answered(Response::LogRecords { last_index, .. }) = &applied {
                answer.applied = Some(*last_index);
            }
            reply = applied;
        }
        self.record(node, invoke_us, Call::LinRead { key }, &reply, outcome)
    }

    fn owner(&mut self) -> (bool, bool) {
        let key = self.key();
        let linearizable = self.rng.gen_bool(0.3);
        let Some((node, client)) = self.connection.as_mut() else {
            return (false, false);
        };
        let node = *node;
        let invoke_us = self.shared.recorder.now_us();
        let reply = call(
            client,
            Request::Owner {
                key: key.clone().into_bytes(),
                linearizable,
            },
        );
        let outcome = read_outcome(&reply, |response| match response {
            Response::Owner { epoch, member } => Some(Answer {
                epoch: Some(*epoch),
                owner: Some(member.id),
                ..Answer::default()
            }),
            _ => None,
        });
        self.record(
            node,
            invoke_us,
            Call::Owner { key, linearizable },
            &reply,
            outcome,
        )
    }

    fn replicas(&mut self) -> (bool, bool) {
        let key = self.key();
        let linearizable = self.rng.gen_bool(0.3);
        let n = self.rng.gen_range(1..=3);
        let Some((node, client)) = self.connection.as_mut() else {
            return (false, false);
        };
        let node = *node;
        let invoke_us = self.shared.recorder.now_us();
        let reply = call(
            client,
            Request::Replicas {
                key: key.clone().into_bytes(),
                n,
                linearizable,
            },
        );
        let outcome = read_outcome(&reply, |response| match response {
            Response::Replicas { epoch, members } => Some(Answer {
                epoch: Some(*epoch),
                replicas: Some(members.iter().map(|m| m.id).collect()),
                ..Answer::default()
            }),
            _ => None,
        });
        self.record(
            node,
            invoke_us,
            Call::Replicas {
                key,
                n,
                linearizable,
            },
            &reply,
            outcome,
        )
    }
}

/// A watcher: sessions of WatchLog, each on one connection for a few seconds or until it
/// breaks, each starting right after the last record the watcher has seen.
fn watch_loop(shared: Arc<Shared>, watcher: u32, mut rng: ChaCha8Rng) {
    let client_id = 100 + watcher;
    let mut next = 1u64;
    let mut session = 0u32;
    let mut attempts = watcher as usize;
    while !shared.stop.load(Ordering::Relaxed) {
        let targets = shared.cluster.targets();
        if targets.is_empty() {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        let node = targets[attempts % targets.len()];
        attempts += 1;
        let Ok(client) = connect(&shared.cluster.socket(node), Duration::from_secs(3)) else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        let invoke_us = shared.recorder.now_us();
        let from = next;
        let length = Duration::from_millis(rng.gen_range(2_000..10_000));
        let started = Instant::now();
        let mut records = Vec::new();
        let mut failure = None;
        let note;
        client.set_timeout(Some(Duration::from_millis(500)));
        match client.watch_log(from) {
            Err(err) => {
                note = format!("not sent: {err}");
                failure = Some(err.status);
            }
            Ok(watch) => loop {
                if shared.stop.load(Ordering::Relaxed) {
                    note = "stopped".to_string();
                    break;
                }
                if started.elapsed() >= length {
                    note = "session ended by the watcher".to_string();
                    break;
                }
                match watch.next_response() {
                    Ok(response) => match response {
                        Response::LogRecords { records: batch, .. } => {
                            records.extend(
                                batch.iter().map(|r| Record(r.index, data_string(&r.data))),
                            );
                        }
                        Response::Error { status, message } => {
                            note = format!("{}: {message}", status.name());
                            failure = Some(status);
                            break;
                        }
                        other => {
                            note = format!("unexpected answer {other:?}");
                            break;
                        }
                    },
                    // The read timeout: nothing new; keep waiting.
                    Err(err) if err.status == Status::Timeout => {}
                    Err(err) => {
                        note = format!("connection lost: {err}");
                        break;
                    }
                }
            },
        }
        if let Some(last) = records.last() {
            next = last.0 + 1;
        }
        let outcome = match failure {
            Some(status) if records.is_empty() => Outcome::Fail {
                status: status.name().to_string(),
                message: note,
                current_version: None,
            },
            _ => Outcome::Ok(Answer {
                records: Some(records),
                note: Some(note),
                ..Answer::default()
            }),
        };
        shared.recorder.write(&Line::Op(Op {
            id: shared.recorder.next_op_id(),
            client: client_id,
            node,
            invoke_us,
            complete_us: shared.recorder.now_us(),
            call: Call::Watch {
                watcher,
                session,
                from,
            },
            outcome,
        }));
        session += 1;
    }
}
