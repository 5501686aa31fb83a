//! One task per peer owns the connection to it: dials with jittered backoff, chooses between
//! duplicate connections, and writes the Raft stream. A second task per peer sends snapshot
//! chunks, one stream each, so a long transfer never sits in front of a heartbeat.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use quinn::{Connection, SendStream};
use rand::Rng;
use ringraft_raft::{Message, MessageBody, NodeId};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::Instrument;

use super::stream::{hello_as_dialer, spawn_readers, within};
use super::wire::LinkFrame;
use super::{close_code, tls, Inbound, PeerEntry, Shared, TransportError};
use crate::certs::node_dns_name;

/// quinn sends higher priorities first: Raft traffic always goes before snapshot bytes.
const RAFT_STREAM_PRIORITY: i32 = 10;
/// Register traffic yields to Raft's (heartbeats keep the leader) but not to snapshots.
const REGISTER_STREAM_PRIORITY: i32 = 0;
const SNAPSHOT_STREAM_PRIORITY: i32 = -10;
/// One write to the Raft stream carries at most this much, so a long queue is written in
/// pieces and the task gets to look at connection changes in between.
const WRITE_BATCH_BYTES_MAX: usize = 1 << 20;
const WRITE_BATCH_MESSAGES_MAX: usize = 256;

/// An authenticated link connection offered to the peer's task.
pub(crate) struct Candidate {
    pub conn: Connection,
    pub peer_incarnation: u64,
    pub dialed_by_me: bool,
}

pub(crate) fn spawn_link(
    shared: &Arc<Shared>,
    peer: NodeId,
    addr: Option<SocketAddr>,
) -> PeerEntry {
    let config = &shared.config;
    let (raft_tx, raft_rx) = mpsc::channel(config.peer_queue_max);
    let (snapshot_tx, snapshot_rx) = mpsc::channel(config.snapshot_queue_max);
    let (register_tx, register_rx) = mpsc::channel(config.register_peer_queue_max);
    let (candidate_tx, candidate_rx) = mpsc::channel(4);
    let (dial_tx, dial_rx) = mpsc::channel(1);
    let (addr_tx, addr_rx) = watch::channel(addr);
    let (current_tx, current_rx) = watch::channel(None);
    let span = tracing::info_span!("link", node = shared.node_id, peer);
    let link = Link {
        shared: shared.clone(),
        peer,
        raft_rx,
        candidate_rx,
        dial_tx,
        dial_rx,
        addr_rx,
        current_tx,
        current: None,
        raft_stream: None,
        dialing: false,
        backoff: Backoff::new(config.backoff_min, config.backoff_max),
    };
    let link_task = tokio::spawn(link.run().instrument(span.clone()));
    let snapshot_task = tokio::spawn(
        send_snapshots(shared.clone(), peer, snapshot_rx, current_rx.clone())
            .instrument(span.clone()),
    );
    let register_task = tokio::spawn(
        send_registers(shared.clone(), peer, register_rx, current_rx.clone()).instrument(span),
    );
    PeerEntry {
        heard: std::sync::Mutex::new((0, std::time::Instant::now())),
        raft_tx,
        snapshot_tx,
        register_tx,
        candidate_tx,
        addr_tx,
        tasks: vec![link_task, snapshot_task, register_task],
        current: current_rx,
    }
}

struct Link {
    shared: Arc<Shared>,
    peer: NodeId,
    raft_rx: mpsc::Receiver<LinkFrame>,
    candidate_rx: mpsc::Receiver<Candidate>,
    dial_tx: mpsc::Sender<(SocketAddr, Result<Candidate, TransportError>)>,
    dial_rx: mpsc::Receiver<(SocketAddr, Result<Candidate, TransportError>)>,
    addr_rx: watch::Receiver<Option<SocketAddr>>,
    current_tx: watch::Sender<Option<Connection>>,
    current: Option<Candidate>,
    raft_stream: Option<SendStream>,
    dialing: bool,
    backoff: Backoff,
}

impl Link {
    async fn run(mut self) {
        let mut shutdown = self.shared.shutdown_rx.clone();
        let mut next_dial_at = Instant::now();
        loop {
            if self.forget_if_closed() {
                next_dial_at = Instant::now() + self.backoff.next_delay();
            }
            let alive = self.current.is_some();
            let addr = *self.addr_rx.borrow();
            let want_dial = !alive && !self.dialing && addr.is_some();
            tokio::select! {
                _ = super::until_shutdown(&mut shutdown) => break,
                changed = self.addr_rx.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let new_addr = *self.addr_rx.borrow_and_update();
                    self.on_address_change(new_addr);
                    self.backoff.reset();
                    next_dial_at = Instant::now();
                }
                Some(candidate) = self.candidate_rx.recv() => self.consider(candidate),
                Some((dialed_addr, outcome)) = self.dial_rx.recv() => {
                    self.dialing = false;
                    match outcome {
                        Ok(candidate) if Some(dialed_addr) == *self.addr_rx.borrow() => {
                            self.backoff.reset();
                            self.consider(candidate);
                        }
                        Ok(stale) => {
                            stale.conn.close(close_code::PEER_REMOVED.into(), b"address changed");
                        }
                        Err(e) => {
                            let delay = self.backoff.next_delay();
                            tracing::debug!("dial {dialed_addr} failed, retry in {delay:?}: {e}");
                            next_dial_at = Instant::now() + delay;
                            self.drop_queued(None);
                        }
                    }
                }
                _ = tokio::time::sleep_until(next_dial_at), if want_dial => {
                    if let Some(addr) = addr {
                        self.start_dial(addr);
                    }
                }
                reason = closed(&self.current) => {
                    tracing::info!("connection to node {} closed: {reason}", self.peer);
                    self.set_current(None);
                    // Not at once: if both ends ever disagreed about which duplicate to keep,
                    // this keeps the churn slow instead of a hot loop.
                    next_dial_at = Instant::now() + self.backoff.next_delay();
                }
                msg = self.raft_rx.recv(), if alive || !self.dialing => match msg {
                    None => break,
                    Some(msg) if alive => self.write_batch(msg).await,
                    Some(msg) => self.drop_queued(Some(msg)),
                },
            }
        }
        if let Some(current) = self.current.take() {
            current
                .conn
                .close(close_code::PEER_REMOVED.into(), b"link closed");
        }
    }

    fn forget_if_closed(&mut self) -> bool {
        let closed = self
            .current
            .as_ref()
            .is_some_and(|c| c.conn.close_reason().is_some());
        if closed {
            self.set_current(None);
        }
        closed
    }

    fn set_current(&mut self, candidate: Option<Candidate>) {
        self.raft_stream = None;
        let _ = self
            .current_tx
            .send(candidate.as_ref().map(|c| c.conn.clone()));
        self.current = candidate;
    }

    fn on_address_change(&mut self, new_addr: Option<SocketAddr>) {
        let stale = self
            .current
            .as_ref()
            .is_some_and(|c| Some(c.conn.remote_address()) != new_addr);
        if stale {
            if let Some(old) = &self.current {
                tracing::info!(
                    "address of node {} changed to {new_addr:?}; reconnecting",
                    self.peer
                );
                old.conn
                    .close(close_code::PEER_REMOVED.into(), b"address changed");
            }
            self.set_current(None);
        }
    }

    /// Keeps one of the current connection and `candidate`, by the rule in the module docs of
    /// `transport`; both ends reach the same choice.
    fn consider(&mut self, candidate: Candidate) {
        let take = match &self.current {
            None => true,
            Some(current) => prefer_candidate(current, &candidate, self.shared.node_id, self.peer),
        };
        if take {
            if let Some(old) = &self.current {
                old.conn
                    .close(close_code::DUPLICATE.into(), b"duplicate connection");
            }
            tracing::info!(
                "connected to node {} at {} ({})",
                self.peer,
                candidate.conn.remote_address(),
                if candidate.dialed_by_me {
                    "dialed"
                } else {
                    "accepted"
                }
            );
            self.set_current(Some(candidate));
        } else {
            candidate
                .conn
                .close(close_code::DUPLICATE.into(), b"duplicate connection");
        }
    }

    fn start_dial(&mut self, addr: SocketAddr) {
        self.dialing = true;
        let shared = self.shared.clone();
        let peer = self.peer;
        let results = self.dial_tx.clone();
        tokio::spawn(
            async move {
                let outcome = dial(&shared, peer, addr).await;
                let _ = results.send((addr, outcome)).await;
            }
            .in_current_span(),
        );
    }

    async fn write_batch(&mut self, first: LinkFrame) {
        let frame_bytes_max = self.shared.config.frame_bytes_max;
        let mut buf = Vec::new();
        let mut next = Some(first);
        let mut count = 0;
        while let Some(msg) = next.take() {
            if let Err(e) = ringraft_proto::encode_frame_into(&msg, frame_bytes_max, &mut buf) {
                tracing::error!("cannot send a message to node {}: {e}", self.peer);
            }
            count += 1;
            if count < WRITE_BATCH_MESSAGES_MAX && buf.len() < WRITE_BATCH_BYTES_MAX {
                next = self.raft_rx.try_recv().ok();
            }
        }
        if buf.is_empty() {
            return;
        }
        if let Err(e) = self.write_raft_stream(&buf).await {
            tracing::debug!("write to node {} failed: {e}", self.peer);
            self.raft_stream = None;
            self.shared.report(Inbound::Unreachable(self.peer));
        }
    }

    async fn write_raft_stream(&mut self, bytes: &[u8]) -> Result<(), String> {
        let Some(current) = &self.current else {
            return Err("not connected".into());
        };
        if self.raft_stream.is_none() {
            let stream = current.conn.open_uni().await.map_err(|e| e.to_string())?;
            let _ = stream.set_priority(RAFT_STREAM_PRIORITY);
            self.raft_stream = Some(stream);
        }
        let Some(stream) = self.raft_stream.as_mut() else {
            return Err("no stream".into());
        };
        stream.write_all(bytes).await.map_err(|e| e.to_string())
    }

    /// Drops `first` and everything queued behind it, reporting the peer unreachable once.
    fn drop_queued(&mut self, first: Option<LinkFrame>) {
        let mut dropped = usize::from(first.is_some());
        while self.raft_rx.try_recv().is_ok() {
            dropped += 1;
        }
        if dropped > 0 {
            tracing::debug!("node {} unreachable, dropped {dropped} messages", self.peer);
            self.shared.report(Inbound::Unreachable(self.peer));
        }
    }
}

fn prefer_candidate(current: &Candidate, candidate: &Candidate, me: NodeId, peer: NodeId) -> bool {
    if candidate.peer_incarnation != current.peer_incarnation {
        // The peer restarted: whatever we hold from before is dead even if not timed out yet.
        return true;
    }
    if candidate.dialed_by_me == current.dialed_by_me {
        // The same side dialed again, so it had given the older one up.
        return true;
    }
    let lower_is_me = me < peer;
    candidate.dialed_by_me == lower_is_me
}

async fn closed(current: &Option<Candidate>) -> quinn::ConnectionError {
    match current {
        Some(current) => current.conn.closed().await,
        None => std::future::pending().await,
    }
}

/// Connects to `peer` at `addr`, checks its certificate names `peer`, and exchanges Hellos.
async fn dial(
    shared: &Arc<Shared>,
    peer: NodeId,
    addr: SocketAddr,
) -> Result<Candidate, TransportError> {
    let limit = shared.config.connect_timeout;
    let connect_error = |reason: String| TransportError::Connect { addr, reason };
    let connecting = shared
        .endpoint
        .connect_with(shared.link_client.clone(), addr, &node_dns_name(peer))
        .map_err(|e| connect_error(e.to_string()))?;
    let conn = within(limit, addr, async {
        connecting.await.map_err(|e| connect_error(e.to_string()))
    })
    .await?;
    // The TLS name check already bound the certificate to `peer`; check again from the
    // certificate itself so a verifier change can never silently widen who we talk to.
    let certified = tls::peer_node_id(&conn)?;
    if certified != peer {
        conn.close(close_code::WRONG_PEER.into(), b"unexpected node");
        return Err(TransportError::IdentityMismatch {
            certificate: certified,
            configured: peer,
        });
    }
    let incarnation = match within(limit, addr, hello_as_dialer(shared, &conn, peer)).await {
        Ok(incarnation) => incarnation,
        Err(e) => {
            conn.close(close_code::PROTOCOL.into(), b"handshake failed");
            return Err(e);
        }
    };
    spawn_readers(shared, conn.clone(), peer);
    Ok(Candidate {
        conn,
        peer_incarnation: incarnation,
        dialed_by_me: true,
    })
}

async fn send_snapshots(
    shared: Arc<Shared>,
    peer: NodeId,
    mut queue: mpsc::Receiver<Message>,
    current: watch::Receiver<Option<Connection>>,
) {
    while let Some(msg) = queue.recv().await {
        let done = matches!(msg.body, MessageBody::InstallSnapshot { done: true, .. });
        let conn = current.borrow().clone();
        let limit = shared.config.snapshot_chunk_timeout;
        let result = match conn {
            None => Err("not connected".to_string()),
            Some(conn) => tokio::time::timeout(limit, send_chunk(&shared, &conn, msg))
                .await
                .unwrap_or_else(|_| Err(format!("not delivered within {limit:?}"))),
        };
        match result {
            Ok(()) if done => shared.report(Inbound::SnapshotSent { to: peer, ok: true }),
            Ok(()) => {}
            Err(e) => {
                // Later chunks of this transfer would arrive out of order; the leader restarts
                // the transfer after report_snapshot(false).
                let mut dropped = 1;
                while queue.try_recv().is_ok() {
                    dropped += 1;
                }
                tracing::warn!("snapshot to node {peer} failed ({dropped} chunks dropped): {e}");
                shared.report(Inbound::SnapshotSent {
                    to: peer,
                    ok: false,
                });
            }
        }
    }
}

/// Register messages have their own queue, task and stream: however they back up (a slow peer,
/// many rounds resending), they never hold up a Raft message or take its place in a queue.
/// Undeliverable ones are dropped; proposers resend.
async fn send_registers(
    shared: Arc<Shared>,
    peer: NodeId,
    mut queue: mpsc::Receiver<LinkFrame>,
    mut current: watch::Receiver<Option<Connection>>,
) {
    let frame_bytes_max = shared.config.frame_bytes_max;
    let mut stream: Option<(usize, SendStream)> = None;
    let mut buf = Vec::new();
    while let Some(first) = queue.recv().await {
        let conn = current.borrow_and_update().clone();
        let Some(conn) = conn else {
            while queue.try_recv().is_ok() {}
            continue;
        };
        buf.clear();
        let mut next = Some(first);
        let mut count = 0;
        while let Some(frame) = next.take() {
            if let Err(e) = ringraft_proto::encode_frame_into(&frame, frame_bytes_max, &mut buf) {
                tracing::error!("cannot send a register message to node {peer}: {e}");
            }
            count += 1;
            if count < WRITE_BATCH_MESSAGES_MAX && buf.len() < WRITE_BATCH_BYTES_MAX {
                next = queue.try_recv().ok();
            }
        }
        // A stream belongs to one connection: a new connection gets a new stream.
        if stream
            .as_ref()
            .is_some_and(|(id, _)| *id != conn.stable_id())
        {
            stream = None;
        }
        if stream.is_none() {
            match conn.open_uni().await {
                Ok(opened) => {
                    let _ = opened.set_priority(REGISTER_STREAM_PRIORITY);
                    stream = Some((conn.stable_id(), opened));
                }
                Err(e) => {
                    tracing::debug!("no register stream to node {peer}: {e}");
                    continue;
                }
            }
        }
        if let Some((_, open)) = stream.as_mut() {
            if let Err(e) = open.write_all(&buf).await {
                tracing::debug!("register stream to node {peer} failed: {e}");
                stream = None;
            }
        }
    }
}

async fn send_chunk(shared: &Shared, conn: &Connection, msg: Message) -> Result<(), String> {
    let frame = ringraft_proto::encode_frame(&LinkFrame::Raft(msg), shared.config.frame_bytes_max)
        .map_err(|e| e.to_string())?;
    let mut stream = conn.open_uni().await.map_err(|e| e.to_string())?;
    let _ = stream.set_priority(SNAPSHOT_STREAM_PRIORITY);
    stream.write_all(&frame).await.map_err(|e| e.to_string())?;
    stream.finish().map_err(|e| e.to_string())?;
    match stream.stopped().await {
        Ok(None) => Ok(()),
        Ok(Some(code)) => Err(format!("peer stopped the stream (code {code})")),
        Err(e) => Err(e.to_string()),
    }
}

/// Jittered exponential backoff: each delay is drawn from [d/2, d], d doubling up to `max`.
struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max,
            current: min,
        }
    }

    fn reset(&mut self) {
        self.current = self.min;
    }

    fn next_delay(&mut self) -> Duration {
        let ceiling = self.current;
        self.current = (self.current * 2).min(self.max);
        let nanos = ceiling.as_nanos().min(u64::MAX as u128) as u64;
        let jittered = rand::rngs::OsRng.gen_range(nanos / 2..=nanos.max(1));
        Duration::from_nanos(jittered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_bound_with_jitter() {
        let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(100));
        let delays: Vec<Duration> = (0..8).map(|_| backoff.next_delay()).collect();
        for (i, delay) in delays.iter().enumerate() {
            let ceiling = Duration::from_millis((10u64 << i).min(100));
            assert!(*delay <= ceiling && *delay >= ceiling / 2, "{i}: {delay:?}");
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(10));
    }
}
