//! ringraftctl propose, read and watch against a socket server whose backend keeps an in-memory
//! application log: data from stdin or a file (binary too), text output that never shows two
//! different proposals alike, and watch --json as one JSON document per record.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ringraft_daemon::api::{self, ApiConfig, Backend, ResponseFuture, WatchStream};
use ringraft_proto::*;
use serde_json::Value;
use tokio::sync::watch;

const CTL: &str = env!("CARGO_BIN_EXE_ringraftctl");
const DEADLINE: Duration = Duration::from_secs(20);

/// The application log: record i (from 1) is `log[i - 1]`.
#[derive(Default)]
struct LogBackend {
    log: Mutex<Vec<Vec<u8>>>,
}

fn records(log: &[Vec<u8>], from: u64, max: u64) -> Vec<LogRecord> {
    (from.max(1)..=log.len() as u64)
        .take(usize::try_from(max).unwrap())
        .map(|index| LogRecord {
            index,
            data: log[usize::try_from(index - 1).unwrap()].clone(),
        })
        .collect()
}

struct Shared(Arc<LogBackend>);

impl Backend for Shared {
    fn handle(&self, request: Request) -> ResponseFuture {
        let backend = self.0.clone();
        Box::pin(async move {
            let mut log = backend.log.lock().unwrap();
            match request {
                Request::Propose { data, .. } => {
                    log.push(data);
                    Response::Proposed {
                        index: log.len() as u64,
                    }
                }
                Request::ReadLog { from, max } => Response::LogRecords {
                    records: records(&log, from, max.into()),
                    first_index: 1,
                    last_index: log.len() as u64,
                },
                other => Response::Error {
                    status: Status::InvalidArgument,
                    message: format!("not here: {}", other.name()),
                },
            }
        })
    }

    /// Everything from `from` in one batch; the stream then stays open.
    fn watch_log(&self, from: u64) -> Result<WatchStream, Response> {
        let log = self.0.log.lock().unwrap();
        let (sender, receiver) = tokio::sync::mpsc::channel(4);
        let batch = Response::LogRecords {
            records: records(&log, from, u64::MAX),
            first_index: 1,
            last_index: log.len() as u64,
        };
        tokio::spawn(async move {
            let _ = sender.send(batch).await;
            sender.closed().await;
        });
        Ok(receiver)
    }
}

struct Server {
    path: PathBuf,
    backend: Arc<LogBackend>,
    _shutdown: watch::Sender<bool>,
    dir: tempfile::TempDir,
}

async fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ringraftd.sock");
    let listener = api::bind_socket(&path).unwrap();
    let (shutdown, shutdown_rx) = watch::channel(false);
    let backend = Arc::new(LogBackend::default());
    tokio::spawn(api::serve(
        listener,
        Arc::new(Shared(backend.clone())),
        ApiConfig::default(),
        shutdown_rx,
    ));
    Server {
        path,
        backend,
        _shutdown: shutdown,
        dir,
    }
}

/// Runs ringraftctl against `server` with `stdin` as its standard input.
async fn ctl(server: &Server, args: &[&str], stdin: &[u8]) -> Output {
    let mut command = Command::new(CTL);
    command
        .arg("--socket")
        .arg(&server.path)
        .args(args)
        .env_remove("RINGRAFT_SOCKET")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let stdin = stdin.to_vec();
    let run = tokio::task::spawn_blocking(move || {
        let mut child = command.spawn().unwrap();
        child.stdin.take().unwrap().write_all(&stdin).unwrap();
        child.wait_with_output().unwrap()
    });
    tokio::time::timeout(DEADLINE, run)
        .await
        .expect("ringraftctl to exit")
        .unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn propose_commits_bytes_from_stdin_and_files() {
    let server = start().await;
    let binary: Vec<u8> = vec![0, 1, 0xff, b'\n', b'A', 0x80];
    let proposed = stdout(&ctl(&server, &["propose", "-", "--json"], &binary).await);
    let index: Value = serde_json::from_str(&proposed).unwrap();
    assert_eq!(index["index"], 1);

    let file = server.dir.path().join("payload.bin");
    let mut from_file = binary.clone();
    from_file.extend_from_slice(b"\x00tail");
    std::fs::write(&file, &from_file).unwrap();
    let text = stdout(&ctl(&server, &["propose", "--file", file.to_str().unwrap()], b"").await);
    assert_eq!(text, "committed at index 2\n");

    // DATA as an argument is still its UTF-8 bytes; stdin is not read then.
    stdout(&ctl(&server, &["propose", "plain"], b"ignored").await);

    let log = server.backend.log.lock().unwrap().clone();
    assert_eq!(
        log,
        vec![binary.clone(), from_file.clone(), b"plain".to_vec()]
    );

    // Both a file and DATA, or neither: a usage error.
    let both = ctl(&server, &["propose", "x", "--file", "y"], b"").await;
    assert_eq!(both.status.code(), Some(2), "{both:?}");
    let neither = ctl(&server, &["propose"], b"").await;
    assert_eq!(neither.status.code(), Some(2), "{neither:?}");
    let missing = ctl(&server, &["propose", "--file", "/nonexistent/x"], b"").await;
    assert_eq!(missing.status.code(), Some(1), "{missing:?}");
    assert!(server.backend.log.lock().unwrap().len() == 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_output_never_shows_two_proposals_alike() {
    let server = start().await;
    // The byte 0x41 and the text "hex:41" must print differently; so must "A" and "hex:41".
    for data in [&b"\x41"[..], b"hex:41", b"A\tB", b"caf\xc3\xa9", b"\xff"] {
        stdout(&ctl(&server, &["propose", "-"], data).await);
    }
    let text = stdout(&ctl(&server, &["read", "1"], b"").await);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "1\tA",
            "2\thex:6865783a3431",
            "3\thex:410942",
            "4\tcafé",
            "5\thex:ff",
        ]
    );
    // The help says so.
    let help = stdout(&ctl(&server, &["read", "--help"], b"").await);
    assert!(help.contains("begins with `hex:`"), "{help}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_json_prints_one_document_per_record() {
    let server = start().await;
    for data in [&b"a"[..], b"\x00\x01", b"c"] {
        stdout(&ctl(&server, &["propose", "-"], data).await);
    }
    // The backend sends all three records in one batch; still one line each.
    let text = stdout(&ctl(&server, &["watch", "1", "--records", "3", "--json"], b"").await);
    let documents: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(documents.len(), 3, "{text}");
    for (document, (index, data_hex)) in documents.iter().zip([(1, "61"), (2, "0001"), (3, "63")]) {
        assert_eq!(document["index"], index, "{document}");
        assert_eq!(document["data_hex"], data_hex, "{document}");
    }
    let text = stdout(&ctl(&server, &["watch", "2", "--records", "2"], b"").await);
    assert_eq!(text, "2\thex:0001\n3\tc\n");
}
