//! The endpoint's accept loop: authenticates each incoming connection and routes it by ALPN to
//! the peer's link task or to the call server.

use std::sync::Arc;

use tracing::Instrument;

use super::link::Candidate;
use super::stream::{hello_as_acceptor, spawn_readers, within};
use super::wire::{CALL_ALPN, LINK_ALPN};
use super::{call, close_code, tls, Shared, TransportError};

pub(crate) async fn run_accept_loop(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown_rx.clone();
    loop {
        let incoming = tokio::select! {
            _ = super::until_shutdown(&mut shutdown) => return,
            incoming = shared.endpoint.accept() => incoming,
        };
        let Some(incoming) = incoming else {
            return;
        };
        let shared = shared.clone();
        tokio::spawn(
            async move {
                let addr = incoming.remote_address();
                if let Err(e) = accept_one(&shared, incoming).await {
                    tracing::warn!("refused connection from {addr}: {e}");
                }
            }
            .in_current_span(),
        );
    }
}

async fn accept_one(shared: &Arc<Shared>, incoming: quinn::Incoming) -> Result<(), TransportError> {
    let addr = incoming.remote_address();
    let limit = shared.config.connect_timeout;
    // A client certificate that does not chain to the cluster CA fails here, in the handshake.
    let conn = within(limit, addr, async {
        incoming.await.map_err(|e| TransportError::Connect {
            addr,
            reason: e.to_string(),
        })
    })
    .await?;
    let peer = match tls::peer_node_id(&conn) {
        Ok(peer) => peer,
        Err(e) => {
            conn.close(close_code::WRONG_PEER.into(), b"no node identity");
            return Err(e);
        }
    };
    match tls::negotiated_alpn(&conn).as_deref() {
        Some(LINK_ALPN) => {
            if peer == shared.node_id {
                conn.close(close_code::WRONG_PEER.into(), b"same node id");
                return Err(TransportError::Tls(format!(
                    "peer at {addr} presents our own id {peer}"
                )));
            }
            match within(limit, addr, hello_as_acceptor(shared, &conn, peer)).await {
                Ok(incarnation) => {
                    spawn_readers(shared, conn.clone(), peer);
                    shared.offer_connection(
                        peer,
                        Candidate {
                            conn,
                            peer_incarnation: incarnation,
                            dialed_by_me: false,
                        },
                    );
                    Ok(())
                }
                Err(e) => {
                    let code = match e {
                        TransportError::IdentityMismatch { .. } => close_code::WRONG_PEER,
                        _ => close_code::PROTOCOL,
                    };
                    conn.close(code.into(), b"handshake refused");
                    Err(e)
                }
            }
        }
        Some(CALL_ALPN) => {
            call::serve_calls(shared.clone(), conn, peer).await;
            Ok(())
        }
        _ => {
            conn.close(close_code::PROTOCOL.into(), b"unknown protocol");
            Err(TransportError::Tls(format!(
                "connection from {addr} without a known ALPN"
            )))
        }
    }
}
