//! Requests on one connection: pipelining, out-of-order answers, the in-flight bound, a backend
//! that panics.

mod api_support;

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use api_support::*;
use ringraft_daemon::api::ApiConfig;
use ringraft_proto::*;
use tokio::io::AsyncWriteExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_request_is_overtaken_by_a_fast_one() {
    let server = start(ApiConfig::default()).await;
    let mut client = Client::connect(&server).await;
    client.owner(1, "wait:slow").await;
    server.backend.wait_arrived(1).await;
    client.owner(2, "fast").await;

    let first = client.recv().await;
    assert_eq!(first.id, 2);
    assert_eq!(owner_name(&first.response), "fast");

    server.backend.gate.add_permits(1);
    let second = client.recv().await;
    assert_eq!(second.id, 1);
    assert_eq!(owner_name(&second.response), "wait:slow");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_pipelined_requests_each_get_their_own_answer() {
    let server = start(ApiConfig::default()).await;
    let mut client = Client::connect(&server).await;
    let count = 2000u64;
    // One write for all of them: the server must split the stream itself.
    let mut stream = Vec::new();
    for id in 1..=count {
        let request = Request::Owner {
            key: format!("key-{id}").into_bytes(),
            linearizable: false,
        };
        stream.extend(encode_request_frame(&RequestFrame { id, request }).unwrap());
    }
    client.send_raw(&stream).await;
    let mut seen = HashSet::new();
    for _ in 0..count {
        let frame = client.recv().await;
        assert_eq!(owner_name(&frame.response), format!("key-{}", frame.id));
        assert!(seen.insert(frame.id), "answered twice: {}", frame.id);
    }
    assert_eq!(seen.len() as u64, count);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_bound_holds_back_reading_instead_of_failing() {
    let config = ApiConfig {
        in_flight_per_connection_max: 2,
        ..ApiConfig::default()
    };
    let server = start(config).await;
    let mut client = Client::connect(&server).await;
    for id in 1..=6 {
        client.owner(id, &format!("wait:{id}")).await;
    }
    server.backend.wait_arrived(2).await;
    let mut answered = HashSet::new();
    for released in 1..=6 {
        server.backend.gate.add_permits(1);
        let frame = client.recv().await;
        assert!(answered.insert(frame.id));
        if released < 5 {
            // Each answer frees one slot, which lets exactly one more request in.
            server.backend.wait_arrived(released + 2).await;
        }
    }
    assert_eq!(answered.len(), 6);
    assert_eq!(server.backend.active_max.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_panic_costs_one_answer_not_the_connection() {
    let server = start(ApiConfig::default()).await;
    let mut client = Client::connect(&server).await;
    client.owner(5, "panic").await;
    let frame = client.recv().await;
    assert_eq!(frame.id, 5);
    assert_eq!(error_status(&frame.response), Status::Internal);

    client.owner(6, "still-here").await;
    assert_eq!(owner_name(&client.recv().await.response), "still-here");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_already_sent_are_answered_after_the_client_half_closes() {
    let server = start(ApiConfig::default()).await;
    let mut client = Client::connect(&server).await;
    client.owner(1, "wait:a").await;
    server.backend.wait_arrived(1).await;
    client.stream.shutdown().await.unwrap();
    server.backend.gate.add_permits(1);
    assert_eq!(owner_name(&client.recv().await.response), "wait:a");
    client.expect_closed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_connections_and_serve_returns() {
    let server = start(ApiConfig::default()).await;
    let mut client = Client::connect(&server).await;
    client.owner(1, "wait:forever").await;
    server.backend.wait_arrived(1).await;
    server.shutdown.send(true).unwrap();
    client.expect_closed().await;
    within("serve to return", server.task).await.unwrap();
}
