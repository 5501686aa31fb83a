//! Shared by the api_* tests: a fake Backend whose answers the tests steer, a server on a
//! temporary socket, and a raw async client that can also send hostile bytes.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ringraft_daemon::api::{self, ApiConfig, Backend, ResponseFuture, WatchStream};
use ringraft_proto::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, watch, Notify, Semaphore};
use tokio::task::JoinHandle;

/// Upper bound on any wait in these tests: a condition that has not happened by then is a
/// failure (a hang), not a slow machine.
pub const DEADLINE: Duration = Duration::from_secs(20);

pub async fn within<F: std::future::Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(DEADLINE, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

pub fn member_named(name: &str) -> Member {
    Member {
        id: 1,
        name: name.to_string(),
        address: "127.0.0.1:7001".into(),
        zone: String::new(),
        weight: 1,
        role: MemberRole::Voter,
        state: MemberState::Active,
    }
}

/// Answers Owner with a member named after the key. Keys starting with `wait:` block until the
/// test adds a permit to `gate`; the key `panic` panics inside the backend.
pub struct FakeBackend {
    pub gate: Arc<Semaphore>,
    pub active: AtomicUsize,
    pub active_max: AtomicUsize,
    pub arrived: AtomicUsize,
    pub arrivals: Notify,
    pub handled: Mutex<Vec<String>>,
    pub watches: Mutex<Vec<(u64, mpsc::Sender<Response>)>>,
    pub watch_started: Notify,
}

impl FakeBackend {
    pub fn new() -> Arc<FakeBackend> {
        Arc::new(FakeBackend {
            gate: Arc::new(Semaphore::new(0)),
            active: AtomicUsize::new(0),
            active_max: AtomicUsize::new(0),
            arrived: AtomicUsize::new(0),
            arrivals: Notify::new(),
            handled: Mutex::new(Vec::new()),
            watches: Mutex::new(Vec::new()),
            watch_started: Notify::new(),
        })
    }

    pub async fn wait_arrived(&self, count: usize) {
        within("requests to reach the backend", async {
            loop {
                let notified = self.arrivals.notified();
                if self.arrived.load(Ordering::SeqCst) >= count {
                    return;
                }
                notified.await;
            }
        })
        .await
    }

    pub async fn wait_watch(&self, count: usize) -> mpsc::Sender<Response> {
        within("a watch to start", async {
            loop {
                let notified = self.watch_started.notified();
                if let Some((_, sender)) = self.watches.lock().unwrap().get(count - 1) {
                    return sender.clone();
                }
                notified.await;
            }
        })
        .await
    }
}

/// The server's view of a FakeBackend (the test keeps its own Arc to steer it).
pub struct Fake(pub Arc<FakeBackend>);

impl Backend for Fake {
    fn handle(&self, request: Request) -> ResponseFuture {
        let this = self.0.clone();
        Box::pin(async move {
            this.handled
                .lock()
                .unwrap()
                .push(request.name().to_string());
            let response = match request {
                Request::Owner { key, .. } => {
                    let key = String::from_utf8_lossy(&key).into_owned();
                    if key == "panic" {
                        panic!("fake backend asked to panic");
                    }
                    if key.starts_with("wait:") {
                        let now = this.active.fetch_add(1, Ordering::SeqCst) + 1;
                        this.active_max.fetch_max(now, Ordering::SeqCst);
                        this.arrived.fetch_add(1, Ordering::SeqCst);
                        this.arrivals.notify_waiters();
                        this.gate.acquire().await.unwrap().forget();
                        this.active.fetch_sub(1, Ordering::SeqCst);
                    }
                    Response::Owner {
                        epoch: 1,
                        member: member_named(&key),
                    }
                }
                Request::Snapshot => Response::Done { index: 42 },
                Request::Status => Response::Status(StatusInfo {
                    node_id: 1,
                    name: "n1".into(),
                    cluster_id: 0xabcd,
                    role: NodeRole::Leader,
                    term: 3,
                    leader_id: 1,
                    commit_index: 10,
                    applied_index: 10,
                    last_index: 10,
                    snapshot_index: 0,
                    epoch: 2,
                    member_count: 1,
                    daemon_version: "test".into(),
                    registers: Default::default(),
                }),
                Request::Replicas { key, n, .. } => Response::Replicas {
                    epoch: 1,
                    members: (0..n)
                        .map(|i| member_named(&format!("{}-{i}", String::from_utf8_lossy(&key))))
                        .collect(),
                },
                Request::Propose { data, .. } => Response::Proposed {
                    index: 100 + data.len() as u64,
                },
                Request::ReadLog { from, max } => Response::LogRecords {
                    records: (from..from + u64::from(max.min(3)))
                        .map(|index| LogRecord {
                            index,
                            data: format!("r{index}").into_bytes(),
                        })
                        .collect(),
                    first_index: 1,
                    last_index: from + 2,
                },
                Request::Join { id, .. } | Request::Remove { id } => Response::Done { index: id },
                other => Response::Error {
                    status: Status::InvalidArgument,
                    message: format!("fake backend does not do {}", other.name()),
                },
            };
            response
        })
    }

    fn watch_log(&self, from: u64) -> Result<WatchStream, Response> {
        if from == u64::MAX {
            return Err(Response::Error {
                status: Status::Compacted,
                message: "compacted".into(),
            });
        }
        let (sender, receiver) = mpsc::channel(16);
        self.0.watches.lock().unwrap().push((from, sender));
        self.0.watch_started.notify_waiters();
        Ok(receiver)
    }
}

pub struct Server {
    pub path: PathBuf,
    pub backend: Arc<FakeBackend>,
    pub shutdown: watch::Sender<bool>,
    pub task: JoinHandle<()>,
    pub dir: tempfile::TempDir,
}

pub async fn start(config: ApiConfig) -> Server {
    let backend = FakeBackend::new();
    start_with(config, backend).await
}

pub async fn start_with(config: ApiConfig, backend: Arc<FakeBackend>) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ringraftd.sock");
    let listener = api::bind_socket(&path).unwrap();
    let (shutdown, shutdown_rx) = watch::channel(false);
    let task = tokio::spawn(api::serve(
        listener,
        Arc::new(Fake(backend.clone())),
        config,
        shutdown_rx,
    ));
    Server {
        path,
        backend,
        shutdown,
        task,
        dir,
    }
}

pub struct Client {
    pub stream: UnixStream,
    decoder: FrameDecoder,
    /// What the server said it accepts, once a handshake succeeded.
    pub limits: Option<ServerLimits>,
}

impl Client {
    /// Connect without a handshake.
    pub async fn raw(server: &Server) -> Client {
        let stream = UnixStream::connect(&server.path).await.unwrap();
        Client {
            stream,
            decoder: FrameDecoder::new(FRAME_BYTES_MAX),
            limits: None,
        }
    }

    /// Connect and complete the handshake with this crate's protocol version.
    pub async fn connect(server: &Server) -> Client {
        let mut client = Client::raw(server).await;
        let answer = client.hello(PROTOCOL_VERSION).await;
        assert_eq!(answer.status(), Some(Status::Ok));
        client
    }

    pub async fn hello(&mut self, version: u16) -> ServerHello {
        self.stream
            .write_all(&ClientHello { version }.encode())
            .await
            .unwrap();
        let mut bytes = [0u8; SERVER_HELLO_BYTES];
        within("the server's hello", self.stream.read_exact(&mut bytes))
            .await
            .unwrap();
        let hello = ServerHello::decode(&bytes).unwrap();
        if hello.status() == Some(Status::Ok) {
            let mut limits = [0u8; SERVER_LIMITS_BYTES];
            within("the server's limits", self.stream.read_exact(&mut limits))
                .await
                .unwrap();
            self.limits = Some(ServerLimits::decode(&limits));
        }
        hello
    }

    pub async fn send(&mut self, id: u64, request: Request) {
        let bytes = encode_request_frame(&RequestFrame { id, request }).unwrap();
        self.stream.write_all(&bytes).await.unwrap();
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// The next answer, or None once the server closed the connection.
    pub async fn next(&mut self) -> Option<ResponseFrame> {
        within("an answer", async {
            let mut chunk = [0u8; 4096];
            loop {
                if let Some(payload) = self.decoder.next_frame().unwrap() {
                    return Some(decode_response(&payload).unwrap());
                }
                match self.stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return None,
                    Ok(read) => self.decoder.feed(&chunk[..read]),
                }
            }
        })
        .await
    }

    pub async fn recv(&mut self) -> ResponseFrame {
        self.next()
            .await
            .expect("connection closed before an answer")
    }

    pub async fn expect_closed(&mut self) {
        if let Some(frame) = self.next().await {
            panic!("expected the connection to close, got {frame:?}");
        }
    }

    pub async fn owner(&mut self, id: u64, key: &str) {
        self.send(
            id,
            Request::Owner {
                key: key.as_bytes().to_vec(),
                linearizable: false,
            },
        )
        .await
    }
}

pub fn owner_name(response: &Response) -> &str {
    match response {
        Response::Owner { member, .. } => &member.name,
        other => panic!("expected an Owner answer, got {other:?}"),
    }
}

pub fn error_status(response: &Response) -> Status {
    match response {
        Response::Error { status, .. } => *status,
        other => panic!("expected an Error answer, got {other:?}"),
    }
}
