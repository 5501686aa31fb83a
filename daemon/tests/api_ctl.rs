//! ringraftctl end to end against the socket server with a fake backend: text and JSON output,
//! errors and exit status, watch, and admin denial by the real uid of another process.

mod api_support;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

use api_support::*;
use ringraft_daemon::api::ApiConfig;
use ringraft_proto::*;
use serde_json::Value;

const CTL: &str = env!("CARGO_BIN_EXE_ringraftctl");

async fn ctl(server: &Server, args: &[&str]) -> Output {
    ctl_as(server, None, args).await
}

async fn ctl_as(server: &Server, uid: Option<u32>, args: &[&str]) -> Output {
    let mut command = Command::new(CTL);
    command
        .arg("--socket")
        .arg(&server.path)
        .args(args)
        .env_remove("RINGRAFT_SOCKET");
    if let Some(uid) = uid {
        command.uid(uid);
    }
    within(
        "ringraftctl to exit",
        tokio::task::spawn_blocking(move || command.output().unwrap()),
    )
    .await
    .unwrap()
}

fn stdout_json(output: &Output) -> Value {
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_commands_print_text_and_json() {
    let server = start(ApiConfig::default()).await;

    let owner = stdout_json(&ctl(&server, &["owner", "user:7", "--json"]).await);
    assert_eq!(owner["owner"]["name"], "user:7");
    assert_eq!(owner["epoch"], 1);

    let text = ctl(&server, &["owner", "user:7"]).await;
    assert!(text.status.success());
    assert!(String::from_utf8_lossy(&text.stdout).contains("user:7"));

    let replicas = stdout_json(&ctl(&server, &["replicas", "k", "-n", "2", "--json"]).await);
    let names: Vec<&str> = replicas["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["k-0", "k-1"]);

    let status = stdout_json(&ctl(&server, &["status", "--json"]).await);
    assert_eq!(status["role"], "leader");
    assert_eq!(status["term"], 3);

    let proposed = stdout_json(
        &ctl(
            &server,
            &["propose", "hello", "--timeout-ms", "100", "--json"],
        )
        .await,
    );
    assert_eq!(proposed["index"], 105);

    let read = stdout_json(&ctl(&server, &["read", "4", "--max", "2", "--json"]).await);
    let records = read["records"].as_array().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[1]["index"], 5);
    assert_eq!(records[1]["data"], "r5");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_errors_exit_non_zero_with_status_name() {
    let server = start(ApiConfig::default()).await;
    // The fake answers promote with invalid_argument.
    let output = ctl(&server, &["promote", "3"]).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("error: invalid_argument: "), "{stderr}");

    let output = ctl(&server, &["promote", "3", "--json"]).await;
    assert!(!output.status.success());
    let document: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(document["error"]["status"], "invalid_argument");
    assert_eq!(document["error"]["code"], Status::InvalidArgument.code());

    let missing = Command::new(CTL)
        .args(["--socket", "/nonexistent/ringraftd.sock", "status"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).starts_with("error: unavailable: "));
}

#[test]
fn a_zero_wait_is_an_argument_error_not_an_unavailable_daemon() {
    let output = Command::new(CTL)
        .args([
            "--socket",
            "/nonexistent/ringraftd.sock",
            "--wait-ms",
            "0",
            "status",
        ])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(2),
        "clap's exit code for a bad argument"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--wait-ms"), "{stderr}");
    assert!(!stderr.contains("unavailable"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_prints_records_and_cancels_after_the_count() {
    let server = start(ApiConfig::default()).await;
    let backend = server.backend.clone();
    let feeder = tokio::spawn(async move {
        let feed = backend.wait_watch(1).await;
        for index in [3u64, 4, 5] {
            let records = vec![LogRecord {
                index,
                data: format!("p{index}").into_bytes(),
            }];
            feed.send(Response::LogRecords {
                records,
                first_index: 1,
                last_index: index,
            })
            .await
            .unwrap();
        }
        feed
    });
    let output = ctl(&server, &["watch", "3", "--records", "2", "--json"]).await;
    assert!(output.status.success(), "{output:?}");
    let documents: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    // JSON Lines: one document per record.
    let indexes: Vec<u64> = documents
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, [3, 4]);
    let feed = feeder.await.unwrap();
    within("the watch to end", feed.closed()).await;
    assert_eq!(server.backend.watches.lock().unwrap()[0].0, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_command_from_another_uid_is_denied_by_peer_credentials() {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        eprintln!("skipped: needs root to run ringraftctl as another uid");
        return;
    }
    let server = start(ApiConfig {
        admin_uids: vec![0],
        ..ApiConfig::default()
    })
    .await;
    // Let the unprivileged process reach the socket.
    std::fs::set_permissions(server.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&server.path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let nobody = 65534;

    let denied = ctl_as(&server, Some(nobody), &["snapshot"]).await;
    assert!(!denied.status.success());
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(
        stderr.starts_with("error: permission_denied: uid 65534"),
        "{stderr}"
    );

    // The same uid may still ask non-admin questions...
    let owner = ctl_as(&server, Some(nobody), &["owner", "k", "--json"]).await;
    assert_eq!(stdout_json(&owner)["owner"]["name"], "k");
    // ...and root, with the same server and list, may snapshot.
    let allowed = stdout_json(&ctl(&server, &["snapshot", "--json"]).await);
    assert_eq!(allowed["index"], 42);
    assert!(!server.backend.handled.lock().unwrap().is_empty());
}
