//! Reading and writing frames on quinn streams, the Hello exchange, and the readers that turn a
//! link connection's unidirectional streams into `Inbound::Raft`.

use std::sync::Arc;
use std::time::Duration;

use quinn::{Connection, RecvStream, SendStream};
use ringraft_proto::codec::{self, Encode, Encoded};
use ringraft_proto::frame::{self, ReadFrameError};
use ringraft_raft::NodeId;
use tracing::Instrument;

use super::close_code;
use super::wire::{Hello, LinkFrame, PEER_PROTOCOL_VERSION};
use super::RegisterInbound;
use super::{Inbound, Shared, TransportError};

/// Reads one frame body. `Ok(None)` when the stream ends cleanly between frames. The length is
/// checked before the body buffer is allocated.
pub(crate) async fn read_frame(
    recv: &mut RecvStream,
    frame_bytes_max: usize,
) -> Result<Option<Encoded>, ReadFrameError> {
    frame::read_frame(recv, frame_bytes_max).await
}

pub(crate) async fn write_frame<T: Encode>(
    send: &mut SendStream,
    value: &T,
    frame_bytes_max: usize,
) -> Result<(), TransportError> {
    frame::write_frame(send, value, frame_bytes_max)
        .await
        .map_err(|e| match e {
            ReadFrameError::Frame(e) => TransportError::Frame(e),
            ReadFrameError::Io(e) => TransportError::Call(format!("write: {e}")),
        })
}

/// The dialer's side of the handshake: send our Hello, read theirs. Returns the peer's
/// incarnation once its Hello names `expected_peer`.
pub(crate) async fn hello_as_dialer(
    shared: &Shared,
    conn: &Connection,
    expected_peer: NodeId,
) -> Result<u64, TransportError> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| TransportError::Connect {
        addr: conn.remote_address(),
        reason: format!("handshake stream: {e}"),
    })?;
    write_frame(
        &mut send,
        &LinkFrame::Hello(own_hello(shared)),
        shared.config.frame_bytes_max,
    )
    .await?;
    let _ = send.finish();
    let hello = read_hello(&mut recv, shared.config.frame_bytes_max).await?;
    check_hello(&hello, expected_peer)?;
    Ok(hello.incarnation)
}

/// The acceptor's side: read the dialer's Hello, check it against the certificate, answer.
pub(crate) async fn hello_as_acceptor(
    shared: &Shared,
    conn: &Connection,
    certified_peer: NodeId,
) -> Result<u64, TransportError> {
    let (mut send, mut recv) = conn
        .accept_bi()
        .await
        .map_err(|e| TransportError::Connect {
            addr: conn.remote_address(),
            reason: format!("handshake stream: {e}"),
        })?;
    let hello = read_hello(&mut recv, shared.config.frame_bytes_max).await?;
    check_hello(&hello, certified_peer)?;
    write_frame(
        &mut send,
        &LinkFrame::Hello(own_hello(shared)),
        shared.config.frame_bytes_max,
    )
    .await?;
    let _ = send.finish();
    Ok(hello.incarnation)
}

fn own_hello(shared: &Shared) -> Hello {
    Hello {
        version: PEER_PROTOCOL_VERSION,
        node_id: shared.node_id,
        incarnation: shared.incarnation,
    }
}

async fn read_hello(
    recv: &mut RecvStream,
    frame_bytes_max: usize,
) -> Result<Hello, TransportError> {
    let protocol = |what: String| TransportError::Call(format!("handshake: {what}"));
    let body = read_frame(recv, frame_bytes_max)
        .await
        .map_err(|e| protocol(e.to_string()))?
        .ok_or_else(|| protocol("stream ended before Hello".into()))?;
    match codec::decode::<LinkFrame>(&body)? {
        LinkFrame::Hello(hello) => Ok(hello),
        _ => Err(protocol(
            "expected Hello, got a Raft or register message".into(),
        )),
    }
}

fn check_hello(hello: &Hello, certified_peer: NodeId) -> Result<(), TransportError> {
    if hello.version != PEER_PROTOCOL_VERSION {
        return Err(TransportError::Call(format!(
            "peer speaks protocol version {}, we speak {PEER_PROTOCOL_VERSION}",
            hello.version
        )));
    }
    if hello.node_id != certified_peer {
        return Err(TransportError::IdentityMismatch {
            certificate: certified_peer,
            configured: hello.node_id,
        });
    }
    Ok(())
}

/// Runs for the life of a link connection: every unidirectional stream the peer opens gets a
/// reader. Each stream fails alone: a bad frame stops that stream, not the connection.
pub(crate) fn spawn_readers(shared: &Arc<Shared>, conn: Connection, peer: NodeId) {
    let shared = shared.clone();
    let span = tracing::debug_span!("link_readers", node = shared.node_id, peer);
    tokio::spawn(
        async move {
            let mut shutdown = shared.shutdown_rx.clone();
            loop {
                let recv = tokio::select! {
                    _ = super::until_shutdown(&mut shutdown) => return,
                    accepted = conn.accept_uni() => accepted,
                };
                match recv {
                    Ok(recv) => {
                        let stream_shared = shared.clone();
                        tokio::spawn(read_raft_stream(stream_shared, recv, peer).in_current_span());
                    }
                    Err(e) => {
                        tracing::debug!("link connection ended: {e}");
                        return;
                    }
                }
            }
        }
        .instrument(span),
    );
}

async fn read_raft_stream(shared: Arc<Shared>, mut recv: RecvStream, peer: NodeId) {
    let frame_bytes_max = shared.config.frame_bytes_max;
    loop {
        let body = match read_frame(&mut recv, frame_bytes_max).await {
            Ok(Some(body)) => body,
            Ok(None) => return,
            Err(ReadFrameError::Io(e)) => {
                tracing::debug!("raft stream ended: {e}");
                return;
            }
            Err(ReadFrameError::Frame(e)) => {
                tracing::warn!("bad frame from node {peer}, closing the stream: {e}");
                let _ = recv.stop(close_code::BAD_FRAME.into());
                return;
            }
        };
        let msg = match codec::decode::<LinkFrame>(&body) {
            Ok(LinkFrame::Raft(msg)) => msg,
            Ok(LinkFrame::Registers(msg)) => {
                if msg.from != peer || msg.to != shared.node_id {
                    tracing::warn!(
                        "dropping register message from={} to={} on the link certified for node {peer}",
                        msg.from,
                        msg.to
                    );
                } else {
                    shared.deliver_register(RegisterInbound::Message(msg.into()));
                }
                continue;
            }
            Ok(LinkFrame::RegisterCall { call, request }) => {
                shared.deliver_register(RegisterInbound::Call {
                    from: peer,
                    call,
                    request,
                });
                continue;
            }
            Ok(LinkFrame::RegisterAnswer { call, response }) => {
                shared.deliver_register(RegisterInbound::Answer {
                    from: peer,
                    call,
                    response,
                });
                continue;
            }
            Ok(LinkFrame::Hello(_)) => {
                tracing::warn!("Hello outside the handshake from node {peer}, closing the stream");
                let _ = recv.stop(close_code::BAD_FRAME.into());
                return;
            }
            Err(e) => {
                tracing::warn!("bad frame from node {peer}, closing the stream: {e}");
                let _ = recv.stop(close_code::BAD_FRAME.into());
                return;
            }
        };
        drop(body);
        if msg.from != peer || msg.to != shared.node_id {
            tracing::warn!(
                "dropping message from={} to={} on the link certified for node {peer}",
                msg.from,
                msg.to
            );
            continue;
        }
        if shared.inbound_tx.send(Inbound::Raft(msg)).await.is_err() {
            return;
        }
    }
}

/// Bounded wait for one handshake step.
pub(crate) async fn within<T>(
    limit: Duration,
    addr: std::net::SocketAddr,
    step: impl std::future::Future<Output = Result<T, TransportError>>,
) -> Result<T, TransportError> {
    tokio::time::timeout(limit, step)
        .await
        .map_err(|_| TransportError::Connect {
            addr,
            reason: format!("handshake did not finish within {limit:?}"),
        })?
}
