//! `ringraftctl kv get|put|delete` end to end against the socket server with a backend that
//! keeps registers in memory (the registers' semantics: version 0 is absent, every write adds 1,
//! a delete makes the register absent, a version mismatch writes nothing): text and JSON output,
//! exit status on an absent register and on a conflict, limits refused before sending.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use ringraft_daemon::api::{self, ApiConfig, Backend, ResponseFuture, WatchStream};
use ringraft_proto::limits::KV_ANY_VERSION;
use ringraft_proto::{Request, Response, Status};
use serde_json::Value;
use tokio::sync::watch;

const CTL: &str = env!("CARGO_BIN_EXE_ringraftctl");
const EPOCH: u64 = 4;

/// key -> (value, version); absent registers are not in the map.
type Values = HashMap<Vec<u8>, (Vec<u8>, u64)>;

#[derive(Default)]
struct Registers {
    values: Mutex<Values>,
    requests: Mutex<Vec<Request>>,
}

impl Registers {
    fn write(&self, key: Vec<u8>, expected: u64, value: Option<Vec<u8>>) -> Response {
        let mut values = self.values.lock().unwrap();
        let current = values.get(&key).map_or(0, |(_, version)| *version);
        if expected != KV_ANY_VERSION && expected != current {
            return Response::KvConflict {
                current_version: current,
                epoch: EPOCH,
            };
        }
        let version = match value {
            Some(value) => {
                values.insert(key, (value, current + 1));
                current + 1
            }
            None => {
                values.remove(&key);
                0
            }
        };
        Response::KvWritten {
            version,
            epoch: EPOCH,
        }
    }
}

struct Fake(Arc<Registers>);

impl Backend for Fake {
    fn handle(&self, request: Request) -> ResponseFuture {
        let registers = Arc::clone(&self.0);
        Box::pin(async move {
            registers.requests.lock().unwrap().push(request.clone());
            match request {
                Request::KvGet { key, .. } => {
                    let values = registers.values.lock().unwrap();
                    let (value, version) = match values.get(&key) {
                        Some((value, version)) => (Some(value.clone()), *version),
                        None => (None, 0),
                    };
                    Response::KvEntry {
                        value,
                        version,
                        epoch: EPOCH,
                    }
                }
                Request::KvCas {
                    key,
                    expected_version,
                    value,
                    ..
                } => registers.write(key, expected_version, Some(value)),
                Request::KvDelete {
                    key,
                    expected_version,
                    ..
                } => registers.write(key, expected_version, None),
                other => Response::Error {
                    status: Status::InvalidArgument,
                    message: format!("not a register request: {}", other.name()),
                },
            }
        })
    }

    fn watch_log(&self, _from: u64) -> Result<WatchStream, Response> {
        Err(Response::Error {
            status: Status::InvalidArgument,
            message: "no watches here".into(),
        })
    }
}

struct Server {
    path: PathBuf,
    registers: Arc<Registers>,
    _shutdown: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

async fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ringraftd.sock");
    let listener = api::bind_socket(&path).unwrap();
    let registers = Arc::new(Registers::default());
    let (shutdown, shutdown_rx) = watch::channel(false);
    tokio::spawn(api::serve(
        listener,
        Arc::new(Fake(Arc::clone(&registers))),
        ApiConfig::default(),
        shutdown_rx,
    ));
    Server {
        path,
        registers,
        _shutdown: shutdown,
        _dir: dir,
    }
}

async fn ctl(server: &Server, args: &[&str]) -> Output {
    let mut command = Command::new(CTL);
    command
        .arg("--socket")
        .arg(&server.path)
        .args(args)
        .env_remove("RINGRAFT_SOCKET");
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        tokio::task::spawn_blocking(move || command.output().unwrap()),
    )
    .await
    .expect("ringraftctl exits")
    .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {output:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_get_delete_print_versions_and_values() {
    let server = start().await;
    let put = ctl(&server, &["kv", "put", "lease:7", "worker-3"]).await;
    assert!(put.status.success(), "{put:?}");
    assert_eq!(stdout(&put), format!("version 1 (epoch {EPOCH})\n"));

    let get = ctl(&server, &["kv", "get", "lease:7"]).await;
    assert!(get.status.success(), "{get:?}");
    assert_eq!(stdout(&get), "worker-3\n");
    let document = json(&ctl(&server, &["kv", "get", "lease:7", "--json"]).await);
    assert_eq!(document["found"], true);
    assert_eq!(document["value"], "worker-3");
    assert_eq!(document["version"], 1);
    assert_eq!(document["epoch"], EPOCH);

    let cas = json(
        &ctl(
            &server,
            &[
                "kv",
                "put",
                "lease:7",
                "worker-4",
                "--expect-version",
                "1",
                "--json",
            ],
        )
        .await,
    );
    assert_eq!(
        (cas["version"].as_u64(), cas["epoch"].as_u64()),
        (Some(2), Some(EPOCH))
    );

    // A value that is not printable text comes out as hex.
    let put = ctl(&server, &["kv", "put", "bell", "ding\u{7}"]).await;
    assert!(put.status.success(), "{put:?}");
    assert_eq!(
        stdout(&ctl(&server, &["kv", "get", "bell"]).await),
        "hex:64696e6707\n"
    );

    let delete = ctl(
        &server,
        &["kv", "delete", "lease:7", "--expect-version", "2"],
    )
    .await;
    assert!(delete.status.success(), "{delete:?}");
    assert_eq!(stdout(&delete), format!("version 0 (epoch {EPOCH})\n"));
    // Deleting an absent register succeeds; only-if-absent works again after a delete.
    assert!(ctl(&server, &["kv", "delete", "lease:7"])
        .await
        .status
        .success());
    let again = ctl(
        &server,
        &["kv", "put", "lease:7", "w", "--expect-version", "0"],
    )
    .await;
    assert_eq!(
        stdout(&again),
        format!("version 1 (epoch {EPOCH})\n"),
        "{again:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absent_register_prints_nothing_and_exits_like_not_found() {
    let server = start().await;
    let get = ctl(&server, &["kv", "get", "nobody"]).await;
    assert_eq!(get.status.code(), Some(1), "{get:?}");
    assert_eq!(stdout(&get), "", "nothing on stdout");
    assert!(
        stderr(&get).starts_with("error: not_found: "),
        "{}",
        stderr(&get)
    );
    // The exit status any other not_found has (here: the same backend refusing a request).
    let get = ctl(&server, &["kv", "get", "nobody", "--json"]).await;
    assert_eq!(get.status.code(), Some(1));
    let document = json(&get);
    assert_eq!(document["error"]["status"], "not_found");
    assert_eq!(document["error"]["code"], Status::NotFound.code());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_mismatch_prints_the_current_version_and_fails() {
    let server = start().await;
    assert!(ctl(&server, &["kv", "put", "k", "v1"])
        .await
        .status
        .success());
    assert!(ctl(&server, &["kv", "put", "k", "v2"])
        .await
        .status
        .success());

    let put = ctl(&server, &["kv", "put", "k", "x", "--expect-version", "0"]).await;
    assert_eq!(put.status.code(), Some(1), "{put:?}");
    assert_eq!(stdout(&put), "");
    assert!(
        stderr(&put).starts_with("error: conflict: ") && stderr(&put).contains("version is 2"),
        "{}",
        stderr(&put)
    );
    let put = ctl(
        &server,
        &["kv", "put", "k", "x", "--expect-version", "7", "--json"],
    )
    .await;
    assert_eq!(put.status.code(), Some(1));
    let document = json(&put);
    assert_eq!(document["error"]["status"], "conflict");
    assert_eq!(document["error"]["code"], Status::Conflict.code());
    assert_eq!(document["current_version"], 2);

    let delete = ctl(
        &server,
        &["kv", "delete", "k", "--expect-version", "1", "--json"],
    )
    .await;
    assert_eq!(delete.status.code(), Some(1));
    assert_eq!(json(&delete)["current_version"], 2);
    // Nothing was written or deleted.
    assert_eq!(stdout(&ctl(&server, &["kv", "get", "k"]).await), "v2\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_values_over_the_limits_are_refused_unsent() {
    let server = start().await;
    let value = "v".repeat(ringraft_proto::limits::KV_VALUE_BYTES_MAX_DEFAULT + 1);
    let put = ctl(&server, &["kv", "put", "k", &value]).await;
    assert_eq!(put.status.code(), Some(1));
    assert!(
        stderr(&put).starts_with("error: too_large: "),
        "{}",
        stderr(&put)
    );
    let key = "k".repeat(ringraft_client::KV_KEY_BYTES_MAX + 1);
    let get = ctl(&server, &["kv", "get", &key]).await;
    assert!(
        stderr(&get).starts_with("error: too_large: "),
        "{}",
        stderr(&get)
    );
    assert!(server.registers.requests.lock().unwrap().is_empty());
}

#[test]
fn kv_help_names_every_subcommand_and_the_unknown_outcome() {
    let help = Command::new(CTL).args(["kv", "--help"]).output().unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for subcommand in ["get", "put", "delete"] {
        assert!(text.contains(subcommand), "{text}");
    }
    let put = Command::new(CTL)
        .args(["kv", "put", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&put.stdout);
    assert!(text.contains("--expect-version") && text.contains("may still have taken effect"));
    // A missing VALUE is a usage error, as clap reports them.
    let usage = Command::new(CTL).args(["kv", "put", "k"]).output().unwrap();
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn the_clients_limits_are_the_registers_own() {
    assert_eq!(
        ringraft_client::KV_KEY_BYTES_MAX,
        ringraft_paxos::limits::KEY_BYTES_MAX
    );
    assert_eq!(KV_ANY_VERSION, ringraft_paxos::limits::ANY_VERSION);
    assert_eq!(
        ringraft_proto::limits::KV_VALUE_BYTES_MAX_DEFAULT,
        ringraft_paxos::limits::VALUE_BYTES_MAX_DEFAULT
    );
}
