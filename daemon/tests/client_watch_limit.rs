//! The client refuses a watch past the daemon's per-connection limit when it is started
//! (`watch_log` returns `Busy`), not at its first `next()`.

mod api_support;

use std::time::Duration;

use api_support::*;
use ringraft_daemon::api::ApiConfig;
use ringraft_proto::Status;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_past_the_limit_is_refused_by_watch_log() {
    let config = ApiConfig {
        watches_per_connection_max: 2,
        ..ApiConfig::default()
    };
    let server = start(config).await;
    let path = server.path.clone();
    let result = within(
        "the watches",
        tokio::task::spawn_blocking(move || {
            let client =
                ringraft_client::Client::connect(&path, Some(Duration::from_secs(5))).unwrap();
            let first = client.watch_log(1).expect("first watch");
            let second = client.watch_log(1).expect("second watch");
            let third = client.watch_log(1).err().map(|e| e.status);
            // Once one ends, another may start.
            first.cancel().unwrap();
            let again = client.watch_log(1).map(|_| ()).map_err(|e| e.status);
            second.cancel().unwrap();
            (third, again)
        }),
    )
    .await
    .unwrap();
    assert_eq!(
        result.0,
        Some(Status::Busy),
        "the third watch_log must fail"
    );
    assert_eq!(result.1, Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_of_a_compacted_index_fails_at_watch_log() {
    let server = start(ApiConfig::default()).await;
    let path = server.path.clone();
    let status = within(
        "the watch",
        tokio::task::spawn_blocking(move || {
            let client =
                ringraft_client::Client::connect(&path, Some(Duration::from_secs(5))).unwrap();
            // The fake backend refuses u64::MAX as compacted.
            client.watch_log(u64::MAX).err().map(|e| e.status)
        }),
    )
    .await
    .unwrap();
    assert_eq!(status, Some(Status::Compacted));
}
