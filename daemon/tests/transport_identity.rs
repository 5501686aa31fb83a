//! Who a peer is comes from its certificate: other CAs, borrowed certificates and forged
//! `from` fields are refused.

mod transport_support;

use std::time::Duration;

use ringraft_daemon::transport::{close_code, Inbound, Transport, TransportError};
use tokio::time::Instant;
use transport_support::*;

/// Waits until `node` reports `Unreachable(peer)`, sending to it until then.
async fn wait_unreachable(node: &mut Node, peer: u64) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        node.handle.send(heartbeat(node.id, peer, 0));
        let attempt = (Instant::now() + Duration::from_millis(200)).min(deadline);
        loop {
            match tokio::time::timeout_at(attempt, node.inbound.recv()).await {
                Ok(Some(Inbound::Unreachable(id))) if id == peer => return,
                Ok(Some(Inbound::Raft(msg))) => panic!("unexpected message {msg:?}"),
                Ok(Some(_)) => continue,
                Ok(None) => panic!("transport gone"),
                Err(_) => break,
            }
        }
        assert!(
            Instant::now() < deadline,
            "never reported Unreachable({peer})"
        );
    }
}

#[tokio::test]
async fn peer_with_a_certificate_from_another_ca_is_refused() {
    let ca = new_ca();
    let other_ca = new_ca();
    let mut a = start(&ca, 1);
    let b = start(&ca, 2);
    let mut stranger = start(&other_ca, 3);
    mesh(&[&a, &b, &stranger]);

    // The stranger's messages are dropped at its side: its dials fail (neither side trusts the
    // other), so it reports a unreachable. The same for a towards the stranger.
    wait_unreachable(&mut stranger, 1).await;
    wait_unreachable(&mut a, 3).await;

    // a still talks to b; nothing from the stranger ever reached a.
    let marker = heartbeat(2, 1, 99);
    deliver(&b, &mut a, marker.clone()).await;
    stranger.handle.send(heartbeat(3, 1, 100));
    b.handle.send(heartbeat(2, 1, 101));
    let got = next_raft(&mut a.inbound, Instant::now() + DEADLINE, |_| true)
        .await
        .expect("message from b");
    assert_eq!((got.from, round_of(&got)), (2, Some(101)));

    // A hand-made connection with the other CA's certificate fails in the TLS handshake.
    let refused = raw_link(&material(&other_ca, 3), a.handle.local_addr(), 1, 3, 1).await;
    assert!(refused.is_err(), "{refused:?}");

    for node in [&a, &b, &stranger] {
        node.handle.shutdown().await;
    }
}

#[test]
fn transport_refuses_to_start_with_another_nodes_certificate() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let _guard = runtime.enter();
    let ca = new_ca();
    let result = Transport::start(config(3, material(&ca, 2)));
    match result {
        Err(TransportError::IdentityMismatch {
            certificate: 2,
            configured: 3,
        }) => {}
        other => panic!("expected IdentityMismatch, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn node_2_certificate_cannot_pose_as_node_3() {
    let ca = new_ca();
    let mut a = start(&ca, 1);
    let b = start(&ca, 2);

    // a believes node 3 lives where node 2 listens: the TLS name check fails, nothing is sent.
    a.handle.set_peer(3, b.handle.local_addr());
    wait_unreachable(&mut a, 3).await;

    // A process holding node 2's certificate says Hello as node 3: closed by a.
    let impostor = material(&ca, 2);
    let refused = raw_link(&impostor, a.handle.local_addr(), 1, 3, 1).await;
    match refused {
        Err(_) => {}
        Ok((_endpoint, conn)) => {
            let reason = tokio::time::timeout(DEADLINE, conn.closed())
                .await
                .expect("connection must be closed");
            assert!(
                matches!(&reason, quinn::ConnectionError::ApplicationClosed(c)
                    if c.error_code.into_inner() == u64::from(close_code::WRONG_PEER)),
                "{reason:?}"
            );
        }
    }
    a.handle.shutdown().await;
    b.handle.shutdown().await;
}

#[tokio::test]
async fn message_whose_from_is_not_the_certified_id_is_dropped() {
    let ca = new_ca();
    let mut a = start(&ca, 1);
    let b = start(&ca, 2);
    mesh(&[&a, &b]);
    deliver(&b, &mut a, heartbeat(2, 1, 1)).await;

    // Same stream, in order: if the forged one were accepted it would arrive first.
    b.handle.send(heartbeat(3, 1, 2));
    b.handle.send(heartbeat(2, 1, 3));
    let got = next_raft(&mut a.inbound, Instant::now() + DEADLINE, |_| true)
        .await
        .expect("message");
    assert_eq!((got.from, round_of(&got)), (2, Some(3)));

    // And directly on a raw link certified as node 2.
    let (_endpoint, conn) = raw_link(&material(&ca, 2), a.handle.local_addr(), 1, 2, 77)
        .await
        .expect("raw link");
    let mut bytes = raft_frame(heartbeat(5, 1, 4));
    bytes.extend(raft_frame(heartbeat(2, 7, 5)));
    bytes.extend(raft_frame(heartbeat(2, 1, 6)));
    assert_eq!(write_raw_stream(&conn, &bytes).await, Ok(None));
    let got = next_raft(&mut a.inbound, Instant::now() + DEADLINE, |_| true)
        .await
        .expect("message");
    assert_eq!((got.from, got.to, round_of(&got)), (2, 1, Some(6)));
    a.handle.shutdown().await;
    b.handle.shutdown().await;
}

#[tokio::test]
async fn a_new_incarnation_of_a_peer_replaces_its_old_connection() {
    let ca = new_ca();
    let mut a = start(&ca, 1);
    let node2 = material(&ca, 2);
    let (_e1, old) = raw_link(&node2, a.handle.local_addr(), 1, 2, 100)
        .await
        .expect("first link");
    assert_eq!(
        write_raw_stream(&old, &raft_frame(heartbeat(2, 1, 1))).await,
        Ok(None)
    );
    next_raft(&mut a.inbound, Instant::now() + DEADLINE, |m| {
        round_of(m) == Some(1)
    })
    .await
    .expect("message on the first link");

    // The "restarted" node 2 connects with a new incarnation: the old link is closed as a
    // duplicate at once (not after the idle timeout), and a sends on the new one.
    let (_e2, new) = raw_link(&node2, a.handle.local_addr(), 1, 2, 101)
        .await
        .expect("second link");
    let reason = tokio::time::timeout(DEADLINE, old.closed())
        .await
        .expect("old link closed");
    assert!(
        matches!(&reason, quinn::ConnectionError::ApplicationClosed(c)
            if c.error_code.into_inner() == u64::from(close_code::DUPLICATE)),
        "{reason:?}"
    );
    a.handle.send(heartbeat(1, 2, 2));
    let mut stream = tokio::time::timeout(DEADLINE, new.accept_uni())
        .await
        .expect("a opens its Raft stream")
        .expect("stream");
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).await.expect("header");
    let len = u32::from_le_bytes(header) as usize;
    assert!(len <= FRAME_BYTES_MAX);
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await.expect("body");
    let frame: ringraft_daemon::transport::wire::LinkFrame =
        ringraft_proto::codec::decode(&body).expect("frame");
    assert_eq!(
        frame,
        ringraft_daemon::transport::wire::LinkFrame::Raft(heartbeat(1, 2, 2))
    );
    a.handle.shutdown().await;
}
