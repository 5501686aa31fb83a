//! The peer transport: Raft messages and daemon-level calls between ringraftd processes, over
//! QUIC (quinn) with mutual TLS under the cluster CA.
//!
//! Shape:
//! - One endpoint per daemon, serving and dialing.
//! - One *link* connection per peer (ALPN `ringraft-link/2`). Its first bidirectional stream is a
//!   handshake where each side sends a [`wire::Hello`] with its id and incarnation. Raft messages
//!   go on one long-lived unidirectional stream in each direction; every `InstallSnapshot`
//!   message goes on a fresh unidirectional stream of lower priority, so a snapshot never holds
//!   up heartbeats.
//!   Per-key register messages (`LinkFrame::Registers`) have their own queue, task and
//!   unidirectional stream per peer, so they never delay or displace a Raft message; on receipt
//!   they go to the registers' own channel ([`TransportHandle::take_register_inbound`]), never
//!   to the node loop, and are dropped, not waited for, when a queue is full (proposers resend).
//! - Calls ([`PeerRequest`]) use short connections with ALPN `ringraft-call/2`, one
//!   bidirectional stream per call.
//!
//! Identity: the peer's node id is the `node-<id>.ringraft` name in its CA-verified certificate.
//! A dialed peer whose certificate names another node fails verification; an accepted peer whose
//! Hello claims another id than its certificate is closed; a Raft message whose `from` is not the
//! connection's certified id is dropped.
//!
//! Duplicate connections (both sides dialed at once): when a second link to the same peer comes
//! up, the peer's incarnation decides first (a new incarnation means the peer restarted, so the
//! new connection wins); with the same incarnation, the connection dialed by the lower node id
//! wins on both sides, so both keep the same one; two dialed by the same side: the newer wins.
//!
//! Delivery: at most once, no retries. A message for a peer that is not connected, or whose
//! queue is full, is dropped and reported as [`Inbound::Unreachable`]; Raft retries.

mod accept;
mod call;
mod link;
pub mod register_wire;
mod stream;
pub mod tls;
pub mod wire;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::RngCore;
use ringraft_raft::{Message, MessageBody, NodeId};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::certs::TlsMaterial;
pub use ringraft_proto::CodecError;
pub use tls::QuicLimits;
use wire::LinkFrame;
pub use wire::{PeerRequest, PeerResponse};

/// QUIC application close codes, so a peer's logs say why a connection ended.
pub mod close_code {
    pub const SHUTDOWN: u32 = 0;
    /// Another connection to the same peer was kept.
    pub const DUPLICATE: u32 = 1;
    /// The certificate, the Hello and the expected peer disagree about who this is.
    pub const WRONG_PEER: u32 = 2;
    /// The peer broke the protocol (bad handshake, bad frame where none may be lost).
    pub const PROTOCOL: u32 = 3;
    /// The peer was removed or its address changed.
    pub const PEER_REMOVED: u32 = 4;
    /// A call connection is done.
    pub const CALL_DONE: u32 = 5;
    /// Stream stop code for a frame that was too large or failed its check.
    pub const BAD_FRAME: u32 = 6;
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("invalid transport configuration: {0}")]
    Config(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("the certificate is for node {certificate} but the transport is configured as node {configured}")]
    IdentityMismatch {
        certificate: NodeId,
        configured: NodeId,
    },
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("connecting to {addr}: {reason}")]
    Connect { addr: SocketAddr, reason: String },
    #[error("call failed: {0}")]
    Call(String),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Frame(#[from] CodecError),
    #[error("the transport is shut down")]
    Shutdown,
}

/// What the transport hands to the node loop.
#[derive(Debug)]
pub enum Inbound {
    /// A Raft message from a peer; `from` is the peer's certified id and `to` is this node.
    Raft(Message),
    /// Messages for this peer were dropped (not connected, or queue full): call
    /// `report_unreachable`.
    Unreachable(NodeId),
    /// A snapshot transfer to `to` ended: `ok` once the chunk with `done` was delivered to the
    /// peer's transport, `!ok` as soon as any chunk could not be. For `report_snapshot`.
    SnapshotSent { to: NodeId, ok: bool },
    /// A daemon-level request from the node `from` (its certified id). Answer through `reply`;
    /// dropping `reply` fails the caller's call.
    Call {
        from: NodeId,
        request: PeerRequest,
        reply: oneshot::Sender<PeerResponse>,
    },
}

/// What the transport hands to the registers (never to the node loop). `from` is the peer's
/// certified id.
#[derive(Debug)]
pub enum RegisterInbound {
    Message(ringraft_paxos::Message),
    /// A register request forwarded by `from` to this node as the key's owner.
    Call {
        from: NodeId,
        call: u64,
        request: ringraft_proto::Request,
    },
    /// The owner's answer to a call this node forwarded.
    Answer {
        from: NodeId,
        call: u64,
        response: ringraft_proto::Response,
    },
}

#[derive(Debug, Clone)]
pub struct TransportConfig {
    pub node_id: NodeId,
    /// Where to listen (UDP). Port 0 picks one; see [`TransportHandle::local_addr`].
    pub listen_addr: SocketAddr,
    pub tls: TlsMaterial,
    /// Largest frame accepted or sent; must hold the largest Append batch and snapshot chunk.
    pub frame_bytes_max: usize,
    /// Raft messages waiting for one peer; beyond it, messages are dropped (Unreachable).
    pub peer_queue_max: usize,
    /// InstallSnapshot messages waiting for one peer.
    pub snapshot_queue_max: usize,
    /// Capacity of the channel to the node loop; when full, readers wait (QUIC flow control
    /// then slows the peers down).
    pub inbound_queue_max: usize,
    /// Capacity of the channel to the registers; when full, register messages are dropped.
    pub register_queue_max: usize,
    /// Register messages waiting for one peer (their own queue and stream, apart from Raft's);
    /// beyond it they are dropped.
    pub register_peer_queue_max: usize,
    pub keep_alive_interval: Duration,
    /// A peer silent this long is considered gone and its connection closed.
    pub idle_timeout: Duration,
    /// Limit on the QUIC+TLS handshake and the Hello exchange.
    pub connect_timeout: Duration,
    /// Limit on a whole call (connect, request, answer), and on the node loop's answer.
    pub call_timeout: Duration,
    /// Limit on delivering one snapshot chunk.
    pub snapshot_chunk_timeout: Duration,
    /// Reconnect backoff: jittered, doubling from `backoff_min` up to `backoff_max`.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl TransportConfig {
    /// Defaults sized for a LAN: a dead peer is noticed within about 5 s.
    pub fn new(node_id: NodeId, listen_addr: SocketAddr, tls: TlsMaterial) -> TransportConfig {
        TransportConfig {
            node_id,
            listen_addr,
            tls,
            frame_bytes_max: 16 << 20,
            peer_queue_max: 4096,
            snapshot_queue_max: 16,
            inbound_queue_max: 8192,
            register_queue_max: 8192,
            register_peer_queue_max: 1024,
            keep_alive_interval: Duration::from_millis(1000),
            idle_timeout: Duration::from_millis(5000),
            connect_timeout: Duration::from_millis(5000),
            call_timeout: Duration::from_secs(10),
            snapshot_chunk_timeout: Duration::from_secs(30),
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(2),
        }
    }

    fn validate(&self) -> Result<(), TransportError> {
        let bad = |what: &str| Err(TransportError::Config(what.to_string()));
        if self.node_id == 0 {
            return bad("node_id must be at least 1");
        }
        if self.frame_bytes_max == 0 || self.frame_bytes_max > u32::MAX as usize {
            return bad("frame_bytes_max must be in 1..=u32::MAX");
        }
        if self.peer_queue_max == 0
            || self.snapshot_queue_max == 0
            || self.inbound_queue_max == 0
            || self.register_queue_max == 0
            || self.register_peer_queue_max == 0
        {
            return bad("queue sizes must be at least 1");
        }
        if self.keep_alive_interval >= self.idle_timeout {
            return bad("keep_alive_interval must be shorter than idle_timeout");
        }
        if self.backoff_min.is_zero() || self.backoff_min > self.backoff_max {
            return bad("backoff_min must be positive and at most backoff_max");
        }
        Ok(())
    }

    fn quic_limits(&self) -> QuicLimits {
        QuicLimits {
            keep_alive_interval: self.keep_alive_interval,
            idle_timeout: self.idle_timeout,
            // One Raft stream plus one snapshot stream at a time per direction; headroom for
            // streams of a connection that is being replaced.
            max_concurrent_uni_streams: 16,
            max_concurrent_bidi_streams: 8,
        }
    }
}

/// Starts transports. See [`Transport::start`].
pub struct Transport;

impl Transport {
    /// Binds the endpoint and starts accepting. Must be called inside a tokio runtime.
    /// The receiver yields everything that arrives; the node loop must keep draining it.
    pub fn start(
        config: TransportConfig,
    ) -> Result<(TransportHandle, mpsc::Receiver<Inbound>), TransportError> {
        config.validate()?;
        let certificate = config
            .tls
            .node_id()
            .map_err(|e| TransportError::Tls(format!("own certificate: {e}")))?;
        if certificate != config.node_id {
            return Err(TransportError::IdentityMismatch {
                certificate,
                configured: config.node_id,
            });
        }
        let limits = config.quic_limits();
        let server = tls::server_config(&config.tls, &limits)?;
        let endpoint = quinn::Endpoint::server(server, config.listen_addr).map_err(|source| {
            TransportError::Bind {
                addr: config.listen_addr,
                source,
            }
        })?;
        let local_addr = endpoint
            .local_addr()
            .map_err(|source| TransportError::Bind {
                addr: config.listen_addr,
                source,
            })?;
        let (inbound_tx, inbound_rx) = mpsc::channel(config.inbound_queue_max);
        let (register_tx, register_rx) = mpsc::channel(config.register_queue_max);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            node_id: config.node_id,
            incarnation: rand::rngs::OsRng.next_u64(),
            link_client: tls::link_client_config(&config.tls, &limits)?,
            call_client: tls::call_client_config(&config.tls, &limits)?,
            endpoint,
            local_addr,
            inbound_tx,
            register_tx,
            register_rx: Mutex::new(Some(register_rx)),
            peers: Mutex::new(HashMap::new()),
            shutdown_tx,
            shutdown_rx,
            accept_task: Mutex::new(None),
            config,
        });
        let span = tracing::info_span!("transport", node = shared.node_id);
        let task = tokio::spawn(accept::run_accept_loop(shared.clone()).instrument(span));
        *lock(&shared.accept_task) = Some(task);
        tracing::info!(node = shared.node_id, %local_addr, "peer transport listening");
        Ok((TransportHandle { shared }, inbound_rx))
    }
}

/// Cheap to clone; every clone drives the same transport.
#[derive(Clone)]
pub struct TransportHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for TransportHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransportHandle")
            .field("node_id", &self.shared.node_id)
            .field("local_addr", &self.shared.local_addr)
            .finish()
    }
}

impl TransportHandle {
    pub fn node_id(&self) -> NodeId {
        self.shared.node_id
    }

    /// The bound UDP address (with the real port when the config asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// Adds a peer or changes its address. A changed address drops the current connection and
    /// dials the new one. Setting this node's own id is ignored.
    pub fn set_peer(&self, id: NodeId, addr: SocketAddr) {
        if id == self.shared.node_id || id == 0 || self.shared.is_shut_down() {
            return;
        }
        let mut peers = lock(&self.shared.peers);
        match peers.get(&id) {
            Some(entry) => {
                entry.addr_tx.send_if_modified(|current| {
                    let changed = *current != Some(addr);
                    *current = Some(addr);
                    changed
                });
            }
            None => {
                peers.insert(id, link::spawn_link(&self.shared, id, Some(addr)));
            }
        }
    }

    /// Forgets a peer: closes its connection and drops what is queued for it.
    pub fn remove_peer(&self, id: NodeId) {
        let entry = lock(&self.shared.peers).remove(&id);
        if let Some(entry) = entry {
            entry.abort();
        }
    }

    /// Queues `msg` for `msg.to` without waiting. If it cannot be queued the message is dropped
    /// and reported: `Inbound::Unreachable(to)`, or `Inbound::SnapshotSent { ok: false }` for
    /// an InstallSnapshot.
    pub fn send(&self, msg: Message) {
        let to = msg.to;
        let is_snapshot = matches!(msg.body, MessageBody::InstallSnapshot { .. });
        let queued = {
            let peers = lock(&self.shared.peers);
            match peers.get(&to) {
                None => false,
                Some(entry) if is_snapshot => entry.snapshot_tx.try_send(msg).is_ok(),
                Some(entry) => entry.raft_tx.try_send(LinkFrame::Raft(msg)).is_ok(),
            }
        };
        if !queued {
            tracing::debug!(
                node = self.shared.node_id,
                peer = to,
                "dropping message: peer queue full or unknown"
            );
            if is_snapshot {
                self.shared.report(Inbound::SnapshotSent { to, ok: false });
            } else {
                self.shared.report(Inbound::Unreachable(to));
            }
        }
    }

    /// Queues a register message for `msg.to` without waiting; dropped if the peer is unknown
    /// or its queue is full (the proposer resends, so nothing is reported).
    pub fn send_register(&self, msg: ringraft_paxos::Message) {
        let to = msg.to;
        if !self.queue_register(to, LinkFrame::Registers(msg.into())) {
            tracing::debug!(
                node = self.shared.node_id,
                peer = to,
                "dropping register message: peer queue full or unknown"
            );
        }
    }

    /// Forwards a register request to `to` (the key's owner). False if it was not sent: no
    /// link to that peer, nothing heard from it within `PEER_FRESH_WITHIN` (QUIC keep-alives
    /// arrive every `keep_alive_interval` from a live peer), or its queue is full; then it
    /// certainly never arrives and the caller may do the work itself.
    pub fn send_register_call(
        &self,
        to: NodeId,
        call: u64,
        request: ringraft_proto::Request,
    ) -> bool {
        let fresh = lock(&self.shared.peers)
            .get(&to)
            .is_some_and(|entry| entry.heard_within(self.shared.config.keep_alive_interval * 2));
        fresh && self.queue_register(to, LinkFrame::RegisterCall { call, request })
    }

    /// Answers a forwarded register request; lost if `to` is gone (the caller times out).
    pub fn send_register_answer(&self, to: NodeId, call: u64, response: ringraft_proto::Response) {
        self.queue_register(to, LinkFrame::RegisterAnswer { call, response });
    }

    fn queue_register(&self, to: NodeId, frame: LinkFrame) -> bool {
        lock(&self.shared.peers)
            .get(&to)
            .is_some_and(|entry| entry.register_tx.try_send(frame).is_ok())
    }

    /// What peers send this node's registers. Given once; `None` after.
    pub fn take_register_inbound(&self) -> Option<mpsc::Receiver<RegisterInbound>> {
        lock(&self.shared.register_rx).take()
    }

    /// Sends `request` to the daemon at `addr` and waits for its answer. The server is verified
    /// against the cluster CA; any node id is accepted (the caller may not know it).
    pub async fn call(
        &self,
        addr: SocketAddr,
        request: PeerRequest,
    ) -> Result<PeerResponse, TransportError> {
        if self.shared.is_shut_down() {
            return Err(TransportError::Shutdown);
        }
        let limit = self.shared.config.call_timeout;
        tokio::time::timeout(limit, call::call(&self.shared, addr, request))
            .await
            .map_err(|_| TransportError::Timeout(limit))?
    }

    /// Closes every connection and stops every task. Idempotent.
    pub async fn shutdown(&self) {
        let _ = self.shared.shutdown_tx.send(true);
        self.shared
            .endpoint
            .close(close_code::SHUTDOWN.into(), b"shutdown");
        let entries: Vec<PeerEntry> = lock(&self.shared.peers).drain().map(|(_, e)| e).collect();
        for entry in entries {
            entry.abort();
        }
        if let Some(task) = lock(&self.shared.accept_task).take() {
            task.abort();
        }
        // Lets the close frames go out; a peer that does not answer is not waited for.
        let _ =
            tokio::time::timeout(Duration::from_secs(1), self.shared.endpoint.wait_idle()).await;
        tracing::info!(node = self.shared.node_id, "peer transport stopped");
    }
}

struct Shared {
    node_id: NodeId,
    incarnation: u64,
    config: TransportConfig,
    endpoint: quinn::Endpoint,
    local_addr: SocketAddr,
    link_client: quinn::ClientConfig,
    call_client: quinn::ClientConfig,
    inbound_tx: mpsc::Sender<Inbound>,
    register_tx: mpsc::Sender<RegisterInbound>,
    register_rx: Mutex<Option<mpsc::Receiver<RegisterInbound>>>,
    peers: Mutex<HashMap<NodeId, PeerEntry>>,
    shutdown_tx: watch::Sender<bool>,
    shutdown_rx: watch::Receiver<bool>,
    accept_task: Mutex<Option<JoinHandle<()>>>,
}

impl Shared {
    fn is_shut_down(&self) -> bool {
        *self.shutdown_rx.borrow()
    }

    /// Reports without waiting: the node loop calls `send`, so waiting here could deadlock it.
    /// A report lost to a full channel is harmless (Raft retries on its own).
    fn report(&self, event: Inbound) {
        if let Err(e) = self.inbound_tx.try_send(event) {
            tracing::debug!(
                node = self.node_id,
                "inbound channel full, report dropped: {e}"
            );
        }
    }

    /// Never waits: a full registers channel must not hold up the Raft messages behind it on
    /// the same stream.
    fn deliver_register(&self, inbound: RegisterInbound) {
        if self.register_tx.try_send(inbound).is_err() {
            tracing::debug!(
                node = self.node_id,
                "registers channel full, message dropped"
            );
        }
    }

    /// Hands an authenticated link connection to the peer's link task, creating the peer
    /// (without an address) if it is unknown.
    fn offer_connection(self: &Arc<Self>, peer: NodeId, candidate: link::Candidate) {
        if self.is_shut_down() {
            candidate
                .conn
                .close(close_code::SHUTDOWN.into(), b"shutdown");
            return;
        }
        let mut peers = lock(&self.peers);
        let entry = peers
            .entry(peer)
            .or_insert_with(|| link::spawn_link(self, peer, None));
        if let Err(e) = entry.candidate_tx.try_send(candidate) {
            let candidate = match e {
                mpsc::error::TrySendError::Full(c) | mpsc::error::TrySendError::Closed(c) => c,
            };
            candidate.conn.close(close_code::DUPLICATE.into(), b"busy");
        }
    }
}

struct PeerEntry {
    /// (datagrams received on the current connection, when that count last grew).
    heard: Mutex<(u64, std::time::Instant)>,
    raft_tx: mpsc::Sender<LinkFrame>,
    snapshot_tx: mpsc::Sender<Message>,
    register_tx: mpsc::Sender<LinkFrame>,
    candidate_tx: mpsc::Sender<link::Candidate>,
    addr_tx: watch::Sender<Option<SocketAddr>>,
    tasks: Vec<JoinHandle<()>>,
    current: watch::Receiver<Option<quinn::Connection>>,
}

impl PeerEntry {
    /// True if a datagram arrived from the peer within `window` (as far as the last calls saw).
    fn heard_within(&self, window: Duration) -> bool {
        let Some(conn) = self.current.borrow().clone() else {
            return false;
        };
        let received = conn.stats().udp_rx.datagrams;
        let now = std::time::Instant::now();
        let mut heard = lock(&self.heard);
        if received != heard.0 {
            *heard = (received, now);
        }
        now.duration_since(heard.1) <= window
    }

    fn abort(self) {
        if let Some(conn) = self.current.borrow().as_ref() {
            conn.close(close_code::PEER_REMOVED.into(), b"peer removed");
        }
        for task in self.tasks {
            task.abort();
        }
    }
}

/// Completes once shutdown has begun (or the transport is gone).
async fn until_shutdown(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|down| *down).await;
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind, still consistent.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
