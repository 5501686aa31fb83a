//! Helpers shared by the transport tests: certificates, nodes on 127.0.0.1 port 0, and waiting
//! for messages with a deadline.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use ringraft_daemon::certs::{CertificateAuthority, TlsMaterial};
use ringraft_daemon::transport::wire::{Hello, LinkFrame, PEER_PROTOCOL_VERSION};
use ringraft_daemon::transport::{
    tls, Inbound, QuicLimits, Transport, TransportConfig, TransportHandle,
};
use ringraft_raft::{Message, MessageBody, NodeId};
use tokio::sync::mpsc;
use tokio::time::{timeout_at, Instant};

/// Generous: only a failing test ever waits this long.
pub const DEADLINE: Duration = Duration::from_secs(60);
pub const FRAME_BYTES_MAX: usize = 1 << 20;

pub struct Node {
    pub id: NodeId,
    pub handle: TransportHandle,
    pub inbound: mpsc::Receiver<Inbound>,
}

pub fn new_ca() -> CertificateAuthority {
    CertificateAuthority::generate("transport test CA").expect("CA")
}

pub fn material(ca: &CertificateAuthority, cert_id: NodeId) -> TlsMaterial {
    let cert = ca.issue_node(cert_id, &[]).expect("issue");
    TlsMaterial::from_pem(&ca.cert_pem, &cert.cert_pem, &cert.key_pem).expect("material")
}

pub fn config(id: NodeId, tls: TlsMaterial) -> TransportConfig {
    let mut config = TransportConfig::new(id, loopback(), tls);
    config.frame_bytes_max = FRAME_BYTES_MAX;
    config.backoff_min = Duration::from_millis(10);
    config.backoff_max = Duration::from_millis(200);
    config.keep_alive_interval = Duration::from_millis(300);
    config.idle_timeout = Duration::from_secs(3);
    config
}

pub fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("addr")
}

pub fn start(ca: &CertificateAuthority, id: NodeId) -> Node {
    start_with(config(id, material(ca, id)))
}

pub fn start_with(config: TransportConfig) -> Node {
    let id = config.node_id;
    let (handle, inbound) = Transport::start(config).expect("start transport");
    Node {
        id,
        handle,
        inbound,
    }
}

/// Every node knows every other's address.
pub fn mesh(nodes: &[&Node]) {
    for a in nodes {
        for b in nodes {
            if a.id != b.id {
                a.handle.set_peer(b.id, b.handle.local_addr());
            }
        }
    }
}

pub fn heartbeat(from: NodeId, to: NodeId, round: u64) -> Message {
    Message {
        from,
        to,
        term: 1,
        body: MessageBody::Heartbeat {
            leader_commit: 0,
            read_round: round,
        },
    }
}

pub fn round_of(msg: &Message) -> Option<u64> {
    match msg.body {
        MessageBody::Heartbeat { read_round, .. } => Some(read_round),
        _ => None,
    }
}

/// The next Raft message on `inbound` that satisfies `wanted`, skipping reports and other
/// messages; `None` if none comes before `deadline`.
pub async fn next_raft(
    inbound: &mut mpsc::Receiver<Inbound>,
    deadline: Instant,
    mut wanted: impl FnMut(&Message) -> bool,
) -> Option<Message> {
    loop {
        match timeout_at(deadline, inbound.recv()).await {
            Ok(Some(Inbound::Raft(msg))) if wanted(&msg) => return Some(msg),
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => return None,
        }
    }
}

/// Sends `msg` from `from` again and again until `to` receives it (messages sent before the
/// link is up are dropped by design). Panics after [`DEADLINE`].
pub async fn deliver(from: &Node, to: &mut Node, msg: Message) -> Message {
    let deadline = Instant::now() + DEADLINE;
    loop {
        from.handle.send(msg.clone());
        let attempt = (Instant::now() + Duration::from_millis(200)).min(deadline);
        if let Some(got) = next_raft(&mut to.inbound, attempt, |m| *m == msg).await {
            return got;
        }
        assert!(Instant::now() < deadline, "message {msg:?} never arrived");
    }
}

/// A hand-made link connection for tests that play a misbehaving peer: dials `target` with
/// certificate `tls`, expecting the server to be node `target_id`, and says Hello as
/// `claimed_id`.
pub async fn raw_link(
    tls_material: &TlsMaterial,
    target: SocketAddr,
    target_id: NodeId,
    claimed_id: NodeId,
    incarnation: u64,
) -> Result<(quinn::Endpoint, quinn::Connection), String> {
    let limits = QuicLimits {
        keep_alive_interval: Duration::from_millis(300),
        idle_timeout: Duration::from_secs(3),
        max_concurrent_uni_streams: 16,
        max_concurrent_bidi_streams: 8,
    };
    let client = tls::link_client_config(tls_material, &limits).map_err(|e| e.to_string())?;
    let endpoint = quinn::Endpoint::client(loopback()).map_err(|e| e.to_string())?;
    let conn = endpoint
        .connect_with(client, target, &format!("node-{target_id}.ringraft"))
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| e.to_string())?;
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
    let hello = LinkFrame::Hello(Hello {
        version: PEER_PROTOCOL_VERSION,
        node_id: claimed_id,
        incarnation,
    });
    let frame = ringraft_proto::encode_frame(&hello, FRAME_BYTES_MAX).map_err(|e| e.to_string())?;
    send.write_all(&frame).await.map_err(|e| e.to_string())?;
    let _ = send.finish();
    let answer = recv
        .read_to_end(FRAME_BYTES_MAX + 4)
        .await
        .map_err(|e| e.to_string())?;
    let mut frames = ringraft_proto::FrameDecoder::new(FRAME_BYTES_MAX);
    frames.feed(&answer);
    let body = frames
        .next_frame()
        .map_err(|e| e.to_string())?
        .ok_or("no Hello in answer")?;
    match ringraft_proto::codec::decode::<LinkFrame>(&body).map_err(|e| e.to_string())? {
        LinkFrame::Hello(_) => Ok((endpoint, conn)),
        _ => Err("expected Hello".into()),
    }
}

/// Writes raw bytes on a new unidirectional stream, finishes it, and waits until the peer
/// either read them all (`Ok(None)`) or stopped the stream (`Ok(Some(code))`).
pub async fn write_raw_stream(
    conn: &quinn::Connection,
    bytes: &[u8],
) -> Result<Option<u64>, String> {
    write_stream(conn, bytes, true).await
}

/// Writes raw bytes on a new unidirectional stream and leaves it open, so the only answer can
/// be the peer stopping it: `Ok(Some(code))`.
pub async fn write_unfinished_stream(
    conn: &quinn::Connection,
    bytes: &[u8],
) -> Result<Option<u64>, String> {
    write_stream(conn, bytes, false).await
}

async fn write_stream(
    conn: &quinn::Connection,
    bytes: &[u8],
    finish: bool,
) -> Result<Option<u64>, String> {
    let mut stream = conn.open_uni().await.map_err(|e| e.to_string())?;
    // The peer may stop the stream before we finish writing: that is an answer, not a failure.
    let _ = stream.write_all(bytes).await;
    if finish {
        let _ = stream.finish();
    }
    let stopped = tokio::time::timeout(DEADLINE, stream.stopped())
        .await
        .map_err(|_| "no answer from the peer".to_string())?;
    stopped
        .map(|code| code.map(|c| c.into_inner()))
        .map_err(|e| e.to_string())
}

pub fn raft_frame(msg: Message) -> Vec<u8> {
    ringraft_proto::encode_frame(&LinkFrame::Raft(msg), FRAME_BYTES_MAX).expect("encode")
}
