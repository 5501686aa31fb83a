//! Hostile and broken clients get a clear answer and lose only their own connection.

mod api_support;

use std::time::Duration;

use api_support::*;
use ringraft_daemon::api::ApiConfig;
use ringraft_proto::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// After each bad client, a good one on a fresh connection must still be served.
async fn assert_still_serving(server: &Server) {
    let mut client = Client::connect(server).await;
    client.owner(1, "ok").await;
    assert_eq!(owner_name(&client.recv().await.response), "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_protocol_version_is_told_both_versions_then_closed() {
    let server = start(ApiConfig::default()).await;
    let mut client = Client::raw(&server).await;
    let answer = client.hello(PROTOCOL_VERSION + 1).await;
    assert_eq!(answer.status(), Some(Status::UnsupportedVersion));
    assert_eq!(answer.version, PROTOCOL_VERSION);
    client.expect_closed().await;
    assert_still_serving(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_magic_is_closed_without_an_answer() {
    let server = start(ApiConfig::default()).await;
    let mut client = Client::raw(&server).await;
    client.send_raw(b"GET / HTTP/1.1\r\n\r\n").await;
    let mut rest = Vec::new();
    // The server leaves the rest of the request unread, so Linux may report the close as a
    // reset; either way nothing may have been sent back.
    match within("the server to close", client.stream.read_to_end(&mut rest)).await {
        Ok(_) => {}
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
    }
    assert!(rest.is_empty(), "server answered a non-client: {rest:?}");
    assert_still_serving(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_client_is_dropped_after_the_handshake_timeout() {
    let config = ApiConfig {
        handshake_timeout: Duration::from_millis(100),
        ..ApiConfig::default()
    };
    let server = start(config).await;
    let mut client = Client::raw(&server).await;
    // Never send a hello: the server must give up on its own.
    client.expect_closed().await;
    assert_still_serving(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_a_frame_then_silence_is_dropped_after_the_frame_read_timeout() {
    let config = ApiConfig {
        frame_read_timeout: Duration::from_millis(100),
        ..ApiConfig::default()
    };
    let server = start(config).await;
    let mut client = Client::connect(&server).await;
    // A length prefix for 64 bytes, then only 10 of them, then silence.
    let mut frame = 64u32.to_le_bytes().to_vec();
    frame.extend([0u8; 10]);
    client.send_raw(&frame).await;
    let answer = client.recv().await;
    assert_eq!(answer.id, 0);
    assert_eq!(error_status(&answer.response), Status::Malformed);
    client.expect_closed().await;
    assert_still_serving(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frame_gets_malformed_then_close() {
    let server = start(ApiConfig::default()).await;
    let mut client = Client::connect(&server).await;
    let mut frame = 64u32.to_le_bytes().to_vec();
    frame.extend([0xFF; 64]);
    client.send_raw(&frame).await;
    let answer = client.recv().await;
    assert_eq!(answer.id, 0);
    assert_eq!(error_status(&answer.response), Status::Malformed);
    // Said in our words: which type, how many bytes; never rkyv's "enable debug assertions".
    let Response::Error { message, .. } = &answer.response else {
        unreachable!()
    };
    assert!(
        message.starts_with("malformed RequestFrame (64 bytes): "),
        "{message}"
    );
    assert!(!message.contains("debug assertions"), "{message}");
    client.expect_closed().await;
    assert_still_serving(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_payload_is_malformed() {
    let server = start(ApiConfig::default()).await;
    let mut client = Client::connect(&server).await;
    let good = encode_request_frame(&RequestFrame {
        id: 3,
        request: Request::Owner {
            key: b"some key".to_vec(),
            linearizable: false,
        },
    })
    .unwrap();
    // A consistent length prefix around a payload cut to 3 bytes: too short for any archive.
    let mut frame = 3u32.to_le_bytes().to_vec();
    frame.extend(&good[4..7]);
    client.send_raw(&frame).await;
    assert_eq!(
        error_status(&client.recv().await.response),
        Status::Malformed
    );
    client.expect_closed().await;
    assert_still_serving(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_cut_off_by_disconnect_leaves_the_server_serving() {
    let server = start(ApiConfig::default()).await;
    let mut client = Client::connect(&server).await;
    client.send_raw(&100u32.to_le_bytes()).await;
    client.send_raw(&[1, 2, 3]).await;
    client.stream.shutdown().await.unwrap();
    client.expect_closed().await;
    assert_still_serving(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frame_is_refused_from_its_header() {
    let config = ApiConfig {
        frame_bytes_max: 1024,
        ..ApiConfig::default()
    };
    let server = start(config).await;
    let mut client = Client::connect(&server).await;
    // Only the header: the server must not wait for (or allocate) the 1 MiB it announces.
    client.send_raw(&(1024u32 * 1024).to_le_bytes()).await;
    let answer = client.recv().await;
    match &answer.response {
        Response::Error { status, message } => {
            assert_eq!(*status, Status::TooLarge);
            assert!(
                message.contains("1024"),
                "message names the limit: {message}"
            );
        }
        other => panic!("expected too_large, got {other:?}"),
    }
    client.expect_closed().await;
    assert_still_serving(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_already_due_still_arrive_before_a_malformed_close() {
    let server = start(ApiConfig::default()).await;
    let mut client = Client::connect(&server).await;
    client.owner(1, "first").await;
    assert_eq!(owner_name(&client.recv().await.response), "first");
    client.send_raw(&[0, 0, 0, 0]).await;
    assert_eq!(
        error_status(&client.recv().await.response),
        Status::Malformed
    );
    client.expect_closed().await;
}
