//! Daemon-level calls between members: one short connection per call (ALPN `ringraft-call/2`),
//! one bidirectional stream carrying one request frame and one response frame.

use std::net::SocketAddr;
use std::sync::Arc;

use quinn::{Connection, RecvStream, SendStream};
use ringraft_raft::NodeId;
use tokio::sync::oneshot;
use tracing::Instrument;

use super::stream::{read_frame, write_frame};
use ringraft_proto::codec;

use super::wire::{PeerRequest, PeerResponse};
use super::{close_code, Inbound, Shared, TransportError};

/// Any syntactically valid name: the call verifier checks the certificate's own node name.
const CALL_SERVER_NAME: &str = "ringraft";

pub(crate) async fn call(
    shared: &Arc<Shared>,
    addr: SocketAddr,
    request: PeerRequest,
) -> Result<PeerResponse, TransportError> {
    let connect_error = |reason: String| TransportError::Connect { addr, reason };
    let conn = shared
        .endpoint
        .connect_with(shared.call_client.clone(), addr, CALL_SERVER_NAME)
        .map_err(|e| connect_error(e.to_string()))?
        .await
        .map_err(|e| connect_error(e.to_string()))?;
    let result = exchange(shared, &conn, &request).await;
    conn.close(close_code::CALL_DONE.into(), b"done");
    result
}

async fn exchange(
    shared: &Shared,
    conn: &Connection,
    request: &PeerRequest,
) -> Result<PeerResponse, TransportError> {
    let frame_bytes_max = shared.config.frame_bytes_max;
    let (mut send, mut recv) = conn
        .open_bi()
        .await
        .map_err(|e| TransportError::Call(e.to_string()))?;
    write_frame(&mut send, request, frame_bytes_max).await?;
    let _ = send.finish();
    let body = read_frame(&mut recv, frame_bytes_max)
        .await
        .map_err(|e| TransportError::Call(e.to_string()))?
        .ok_or_else(|| {
            TransportError::Call("the member closed the call without answering".into())
        })?;
    Ok(codec::decode::<PeerResponse>(&body)?)
}

/// Serves the calls on one accepted call connection until the caller closes it.
pub(crate) async fn serve_calls(shared: Arc<Shared>, conn: Connection, from: NodeId) {
    loop {
        let (send, recv) = match conn.accept_bi().await {
            Ok(streams) => streams,
            Err(_) => return,
        };
        let shared = shared.clone();
        tokio::spawn(
            async move {
                if let Err(e) = serve_one(&shared, from, send, recv).await {
                    tracing::warn!("call from node {from} failed: {e}");
                }
            }
            .in_current_span(),
        );
    }
}

async fn serve_one(
    shared: &Shared,
    from: NodeId,
    mut send: SendStream,
    mut recv: RecvStream,
) -> Result<(), TransportError> {
    let limit = shared.config.call_timeout;
    let frame_bytes_max = shared.config.frame_bytes_max;
    let answer = tokio::time::timeout(limit, async {
        let body = match read_frame(&mut recv, frame_bytes_max).await {
            Ok(Some(body)) => body,
            Ok(None) => return Err(TransportError::Call("empty call".into())),
            Err(e) => {
                let _ = recv.stop(close_code::BAD_FRAME.into());
                return Err(TransportError::Call(e.to_string()));
            }
        };
        let request = match codec::decode::<PeerRequest>(&body) {
            Ok(request) => request,
            Err(e) => {
                let _ = recv.stop(close_code::BAD_FRAME.into());
                return Err(e.into());
            }
        };
        let (reply, answer) = oneshot::channel();
        shared
            .inbound_tx
            .send(Inbound::Call {
                from,
                request,
                reply,
            })
            .await
            .map_err(|_| TransportError::Shutdown)?;
        answer
            .await
            .map_err(|_| TransportError::Call("the node dropped the call".into()))
    })
    .await
    .map_err(|_| TransportError::Timeout(limit))?;
    match answer {
        Ok(response) => {
            write_frame(&mut send, &response, frame_bytes_max).await?;
            let _ = send.finish();
            // Keep the stream until the caller has it, or the connection goes.
            let _ = tokio::time::timeout(limit, send.stopped()).await;
            Ok(())
        }
        Err(e) => {
            let _ = send.reset(close_code::BAD_FRAME.into());
            Err(e)
        }
    }
}
