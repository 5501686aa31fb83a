//! WatchLog streams into the connection until Cancel or disconnect.

mod api_support;

use api_support::*;
use ringraft_daemon::api::ApiConfig;
use ringraft_proto::*;

fn records(indexes: &[u64]) -> Response {
    Response::LogRecords {
        records: indexes
            .iter()
            .map(|&index| LogRecord {
                index,
                data: index.to_le_bytes().to_vec(),
            })
            .collect(),
        first_index: 1,
        last_index: *indexes.last().unwrap_or(&0),
    }
}

fn record_indexes(response: &Response) -> Vec<u64> {
    match response {
        Response::LogRecords { records, .. } => records.iter().map(|r| r.index).collect(),
        other => panic!("expected LogRecords, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_streams_records_beside_other_requests_until_cancelled() {
    let server = start(ApiConfig::default()).await;
    let mut client = Client::connect(&server).await;
    client.send(10, Request::WatchLog { from: 5 }).await;
    let feed = server.backend.wait_watch(1).await;
    assert_eq!(server.backend.watches.lock().unwrap()[0].0, 5);

    feed.send(records(&[5, 6])).await.unwrap();
    let frame = client.recv().await;
    assert_eq!(
        (frame.id, record_indexes(&frame.response)),
        (10, vec![5, 6])
    );

    // Ordinary requests share the connection with the running watch.
    client.owner(11, "meanwhile").await;
    assert_eq!(owner_name(&client.recv().await.response), "meanwhile");

    feed.send(records(&[7])).await.unwrap();
    let frame = client.recv().await;
    assert_eq!((frame.id, record_indexes(&frame.response)), (10, vec![7]));

    client.send(12, Request::Cancel { request_id: 10 }).await;
    let frame = client.recv().await;
    assert_eq!(
        (frame.id, &frame.response),
        (12, &Response::Done { index: 0 })
    );
    // The server dropped its end of the stream: the backend sees the watch gone.
    within("the watch to be dropped", feed.closed()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_ends_the_watch() {
    let server = start(ApiConfig::default()).await;
    let mut client = Client::connect(&server).await;
    client.send(1, Request::WatchLog { from: 0 }).await;
    let feed = server.backend.wait_watch(1).await;
    drop(client);
    within("the watch to be dropped", feed.closed()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_of_an_unknown_watch_is_not_found() {
    let server = start(ApiConfig::default()).await;
    let mut client = Client::connect(&server).await;
    client.send(2, Request::Cancel { request_id: 99 }).await;
    let frame = client.recv().await;
    assert_eq!(frame.id, 2);
    assert_eq!(error_status(&frame.response), Status::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_refusal_and_end_of_stream_reach_the_client() {
    let server = start(ApiConfig::default()).await;
    let mut client = Client::connect(&server).await;
    // The fake refuses `from = u64::MAX` as compacted.
    client.send(1, Request::WatchLog { from: u64::MAX }).await;
    assert_eq!(
        error_status(&client.recv().await.response),
        Status::Compacted
    );

    client.send(2, Request::WatchLog { from: 3 }).await;
    let feed = server.backend.wait_watch(1).await;
    drop(feed);
    server.backend.watches.lock().unwrap().clear();
    let frame = client.recv().await;
    assert_eq!(frame.id, 2);
    assert_eq!(error_status(&frame.response), Status::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_per_connection_are_bounded_and_ids_unique() {
    let config = ApiConfig {
        watches_per_connection_max: 2,
        ..ApiConfig::default()
    };
    let server = start(config).await;
    let mut client = Client::connect(&server).await;
    client.send(1, Request::WatchLog { from: 0 }).await;
    server.backend.wait_watch(1).await;
    client.send(1, Request::WatchLog { from: 0 }).await;
    assert_eq!(
        error_status(&client.recv().await.response),
        Status::InvalidArgument
    );
    client.send(2, Request::WatchLog { from: 0 }).await;
    server.backend.wait_watch(2).await;
    client.send(3, Request::WatchLog { from: 0 }).await;
    let frame = client.recv().await;
    assert_eq!((frame.id, error_status(&frame.response)), (3, Status::Busy));
}
