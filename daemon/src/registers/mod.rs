//! Per-key linearizable registers: the `ringraft-paxos` cores run on each key's ring replicas,
//! beside the Raft node but not on its thread (per-key state must scale past one Raft leader).
//!
//! Data flow: socket request (`KvGet`, `KvCas`, `KvDelete`) → [`RegistersHandle`] → the
//! registers' loop (`runtime`) → this node's proposer → the key's acceptors on their nodes
//! (over the peer links, `LinkFrame::Registers`) → the register store (`ringraft_storage`,
//! `<data_dir>/registers`) → the answer. The Raft log contributes only who the acceptors are
//! (`state::registers`, published in the node's view) and the handoff reports.
//!
//! A request is forwarded over the link to the key's owner (on the newest acceptor ring), which
//! proposes it: one proposer per key keeps its ballot's successor promised on the acceptors, so
//! an uncontended write takes one round trip. A node proposes itself when the owner is down (as
//! the failure detector says), unconnected, or the request was forwarded to it already.

mod acceptor_sets;
mod handoff;
mod ops;
mod runtime;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringraft_paxos::{Acceptor, Op, Proposer};
use ringraft_proto::limits::KV_ANY_VERSION;
use ringraft_proto::{Request, Response, Status};
use ringraft_storage::{RegisterStore, RegisterStoreOptions};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{info, Instrument};

use crate::api::backend::ResponseFuture;
use crate::config::Limits;
use crate::node::view::error;
use crate::node::{ClusterView, CommandSubmitter};
use crate::transport::TransportHandle;
use ops::ClientOp;
use runtime::{Runtime, TICK};

/// Client operations queued for the registers' loop; one more is answered Busy.
const REQUESTS_QUEUED_MAX: usize = 4096;

/// Counters the registers publish for `/metrics`.
#[derive(Debug, Default)]
pub struct RegisterMetrics {
    pub ops: AtomicU64,
    pub ops_waiting: AtomicU64,
    pub keys_held: AtomicU64,
    pub handoff_keys_remaining: AtomicU64,
    pub plane_epoch: AtomicU64,
    /// Requests this node forwarded to their key's owner, and forwarded requests it answered.
    pub forwarded: AtomicU64,
    pub answered_for_peers: AtomicU64,
    pub store_log_bytes: AtomicU64,
}

impl RegisterMetrics {
    fn publish(&self, waiting: usize, held: usize, handoff: usize, log_bytes: u64) {
        self.ops_waiting.store(waiting as u64, Ordering::Relaxed);
        self.keys_held.store(held as u64, Ordering::Relaxed);
        self.handoff_keys_remaining
            .store(handoff as u64, Ordering::Relaxed);
        self.store_log_bytes.store(log_bytes, Ordering::Relaxed);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistersError {
    #[error("register store: {0}")]
    Storage(#[from] ringraft_storage::StorageError),
    #[error("register records: {0}")]
    Records(#[from] ringraft_paxos::PaxosError),
    #[error("cannot start the registers thread: {0}")]
    Thread(std::io::Error),
}

/// The API's way into the registers. Cheap to clone.
#[derive(Clone)]
pub struct RegistersHandle {
    requests: mpsc::Sender<ClientOp>,
    limits: Limits,
    metrics: Arc<RegisterMetrics>,
}

/// What the registers need from the rest of the node.
pub struct RegistersSetup<'a> {
    pub id: u64,
    pub data_dir: &'a Path,
    pub limits: Limits,
    pub transport: TransportHandle,
    pub node: CommandSubmitter,
    pub view: watch::Receiver<Arc<ClusterView>>,
    pub serve_from_index: u64,
}

/// Recovers the register store and starts the registers' thread.
pub fn start(setup: RegistersSetup<'_>) -> Result<RegistersHandle, RegistersError> {
    let (store, records) = RegisterStore::open(
        &setup.data_dir.join("registers"),
        RegisterStoreOptions::default(),
    )?;
    let config = core_config(setup.id, &setup.limits);
    let acceptor = Acceptor::restore(config.clone(), &records)?;
    let proposer = Proposer::restore(config, &records)?;
    info!(
        records = records.len(),
        keys = acceptor.held_keys().len(),
        "register store recovered"
    );
    let inbound = setup.transport.take_register_inbound().ok_or_else(|| {
        RegistersError::Thread(std::io::Error::other(
            "the transport's register messages are already taken",
        ))
    })?;
    let metrics = Arc::new(RegisterMetrics::default());
    let runtime = Runtime {
        id: setup.id,
        limits: setup.limits.clone(),
        acceptor,
        proposer,
        store,
        transport: setup.transport,
        node: setup.node,
        view: setup.view,
        serve_from_index: setup.serve_from_index,
        metrics: metrics.clone(),
    };
    let (requests_tx, requests_rx) = mpsc::channel(REQUESTS_QUEUED_MAX);
    let span = tracing::info_span!("registers", node = setup.id);
    std::thread::Builder::new()
        .name(format!("ringraft-registers-{}", setup.id))
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(err) => {
                    tracing::error!(%err, "cannot start the registers' runtime");
                    return;
                }
            };
            rt.block_on(runtime.run(requests_rx, inbound).instrument(span));
        })
        .map_err(RegistersError::Thread)?;
    Ok(RegistersHandle {
        requests: requests_tx,
        limits: setup.limits,
        metrics,
    })
}

fn core_config(id: u64, limits: &Limits) -> ringraft_paxos::Config {
    let mut config = ringraft_paxos::Config::new(id);
    config.value_bytes_max = limits.kv_value_bytes_max;
    // A round not answered within a second is given up (and the op retried while its request
    // deadline allows): on a LAN an answer takes well under a tick.
    config.op_timeout_ticks = (1000 / TICK.as_millis() as u64).max(1);
    config.resend_interval_ticks = 5;
    // Requests are forwarded to the key's owner, so one proposer writes each key and its cached
    // promise holds: an uncontended write takes one round trip. (A node proposes itself only
    // when the owner is down or unreachable; then a refused cached accept is an unknown outcome.)
    config.one_round_trip = true;
    config.seed = rand::RngCore::next_u64(&mut rand::rngs::OsRng);
    config
}

impl RegistersHandle {
    pub fn metrics(&self) -> &Arc<RegisterMetrics> {
        &self.metrics
    }

    /// Answers `KvGet`, `KvCas` and `KvDelete`.
    pub fn handle(&self, request: Request) -> ResponseFuture {
        let (key, op, timeout_ms) = match parse_request(&self.limits, request) {
            Ok(parsed) => parsed,
            Err(response) => return ready(response),
        };
        let deadline = Instant::now() + Duration::from_millis(u64::from(timeout_ms));
        let (reply, answer) = oneshot::channel();
        let sent = self.requests.try_send(ClientOp {
            key,
            op,
            deadline,
            reply,
            forwarded_to: None,
        });
        Box::pin(async move {
            match sent {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    return error(Status::Busy, "the registers are saturated; retry shortly")
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    return error(Status::ShuttingDown, "the registers have stopped")
                }
            }
            answer.await.unwrap_or_else(|_| {
                error(
                    Status::ShuttingDown,
                    "the registers stopped before answering",
                )
            })
        })
    }
}

/// A register request as (key, operation, timeout), checked against the limits: from the local
/// socket, or forwarded by a peer (which checked it too, but is not trusted).
// The error is the answer itself, sent once: its size does not matter (as in `node`).
#[allow(clippy::result_large_err)]
pub(crate) fn parse_request(
    limits: &Limits,
    request: Request,
) -> Result<(Vec<u8>, Op, u32), Response> {
    let (key, op, timeout_ms) = match request {
        Request::KvGet { key, timeout_ms } => (key, Op::Get, timeout_ms),
        Request::KvCas {
            key,
            expected_version,
            value,
            timeout_ms,
        } => (
            key,
            Op::Cas {
                expected_version,
                value,
            },
            timeout_ms,
        ),
        Request::KvDelete {
            key,
            expected_version,
            timeout_ms,
        } => (
            key,
            Op::Delete {
                expected_version: (expected_version != KV_ANY_VERSION).then_some(expected_version),
            },
            timeout_ms,
        ),
        other => {
            return Err(error(
                Status::Internal,
                format!("the registers cannot answer {}", other.name()),
            ))
        }
    };
    limits.check_key(&key)?;
    if let Op::Cas { value, .. } = &op {
        if value.len() > limits.kv_value_bytes_max {
            return Err(error(
                Status::TooLarge,
                format!(
                    "value of {} bytes exceeds the limit of {}",
                    value.len(),
                    limits.kv_value_bytes_max
                ),
            ));
        }
    }
    limits.check_timeout_ms(timeout_ms)?;
    Ok((key, op, timeout_ms))
}

fn ready(response: Response) -> ResponseFuture {
    Box::pin(async move { response })
}
