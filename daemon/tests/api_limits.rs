//! The connection limit, and admin permission by the peer's uid (SO_PEERCRED).

mod api_support;

use api_support::*;
use ringraft_daemon::api::ApiConfig;
use ringraft_proto::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_past_the_connection_limit_is_told_busy_and_a_freed_slot_is_reused() {
    let config = ApiConfig {
        connections_max: 2,
        ..ApiConfig::default()
    };
    let server = start(config).await;
    let first = Client::connect(&server).await;
    let mut second = Client::connect(&server).await;

    let mut third = Client::raw(&server).await;
    let answer = third.hello(PROTOCOL_VERSION).await;
    assert_eq!(answer.status(), Some(Status::Busy));
    third.expect_closed().await;

    // The open connections are unaffected.
    second.owner(1, "still").await;
    assert_eq!(owner_name(&second.recv().await.response), "still");

    // Once a connection closes its slot frees; the server notices asynchronously, so retry
    // until accepted (bounded by the test deadline).
    drop(first);
    within("a slot to free", async {
        loop {
            let mut client = Client::raw(&server).await;
            if client.hello(PROTOCOL_VERSION).await.status() == Some(Status::Ok) {
                client.owner(2, "in").await;
                assert_eq!(owner_name(&client.recv().await.response), "in");
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
}

fn own_uid() -> u32 {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_requests_depend_on_the_peer_uid() {
    let uid = own_uid();
    // Same client, same request: only the server's admin list changes the answer, so the uid
    // it compares can only have come from the socket.
    let denied = start(ApiConfig {
        admin_uids: vec![uid.wrapping_add(1)],
        ..ApiConfig::default()
    })
    .await;
    let mut client = Client::connect(&denied).await;
    client.send(1, Request::Snapshot).await;
    match client.recv().await.response {
        Response::Error { status, message } => {
            assert_eq!(status, Status::PermissionDenied);
            assert!(message.contains(&format!("uid {uid}")), "{message}");
        }
        other => panic!("expected permission_denied, got {other:?}"),
    }
    // Not admin requests: still allowed, on the same connection.
    client.owner(2, "k").await;
    assert_eq!(owner_name(&client.recv().await.response), "k");
    assert_eq!(*denied.backend.handled.lock().unwrap(), vec!["owner"]);

    let allowed = start(ApiConfig {
        admin_uids: vec![uid],
        ..ApiConfig::default()
    })
    .await;
    let mut client = Client::connect(&allowed).await;
    client.send(1, Request::Snapshot).await;
    assert_eq!(client.recv().await.response, Response::Done { index: 42 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handshake_tells_the_client_the_configured_limits() {
    let config = ApiConfig {
        frame_bytes_max: 4096,
        proposal_bytes_max: 1000,
        kv_value_bytes_max: 2000,
        ..ApiConfig::default()
    };
    let server = start(config).await;
    let client = Client::connect(&server).await;
    assert_eq!(
        client.limits,
        Some(ServerLimits {
            frame_bytes_max: 4096,
            proposal_bytes_max: 1000,
            kv_value_bytes_max: 2000,
        })
    );
    // A limit above what the protocol allows is told as the protocol's cap.
    let config = ApiConfig {
        frame_bytes_max: usize::MAX,
        ..ApiConfig::default()
    };
    let server = start(config).await;
    let client = Client::connect(&server).await;
    assert_eq!(
        client.limits.map(|l| l.frame_bytes_max as usize),
        Some(FRAME_BYTES_MAX)
    );
}
