//! A small stand-in for ringraftd speaking the real protocol (proto's handshake and frames), so
//! the client's own behaviour (pipelining, out-of-order answers, timeouts, reconnection, never
//! resending proposals or register writes, watches resuming, the ring cache, the registers'
//! versions and conflicts) is tested without a cluster. Owner and replicas come from a real
//! ringraft-ring ring, so cached answers can be compared with it.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use ringraft_proto::{
    decode_request, encode_response_frame, ClientHello, FrameDecoder, LogRecord, Member,
    MemberRole, MemberState, NodeRole, Request, Response, ResponseFrame, ServerHello, ServerLimits,
    Status, StatusInfo, CLIENT_HELLO_BYTES, FRAME_BYTES_MAX,
};
use ringraft_ring::{Ring, RingDelta, RingState};

/// Keys starting with this are answered only after this delay, so later requests overtake them.
pub const SLOW_PREFIX: &[u8] = b"slow:";
pub const SLOW_DELAY: Duration = Duration::from_millis(100);
/// Proposals with this payload, and register writes to this key, are never answered.
pub const HANG: &[u8] = b"hang";

pub struct Cluster {
    pub ring: Ring,
    pub members: Vec<Member>,
    pub log: Vec<LogRecord>,
    /// The registers: key -> (value, version). Absent keys (version 0) are not in the map.
    pub registers: HashMap<Vec<u8>, (Vec<u8>, u64)>,
    /// What the handshake tells clients the daemon accepts.
    pub limits: ServerLimits,
    /// Earlier rings and members, by epoch, for answering `RingSince` with a delta.
    history: HashMap<u64, (RingState, Vec<Member>)>,
    /// Whether `RingSince` is answered with a delta (else with the whole ring, as a daemon
    /// whose history no longer reaches back does).
    pub answers_ring_deltas: bool,
    watchers: Vec<(Arc<Mutex<UnixStream>>, u64)>,
}

pub fn members(count: u64) -> Vec<Member> {
    (1..=count)
        .map(|id| Member {
            id,
            name: format!("node-{id}"),
            address: format!("127.0.0.1:{}", 7000 + id),
            zone: String::new(),
            weight: 1,
            role: MemberRole::Voter,
            state: MemberState::Active,
        })
        .collect()
}

pub fn ring_of(members: &[Member]) -> Ring {
    ring_after(0, members)
}

/// The ring of `members` joined one by one at the epochs after `epoch`.
fn ring_after(epoch: u64, members: &[Member]) -> Ring {
    let mut state = RingState::new(ringraft_ring::DEFAULT_VNODES).unwrap();
    for (offset, member) in (1..).zip(members) {
        state
            .join(
                ringraft_ring::Member::new(member.id, member.weight),
                epoch + offset,
            )
            .unwrap();
    }
    Ring::new(state)
}

pub struct FakeDaemon {
    pub path: PathBuf,
    pub cluster: Arc<Mutex<Cluster>>,
    /// Requests received, by kind name, for asserting what was (not) resent.
    pub received: Arc<Mutex<Vec<Request>>>,
    pub connections: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    open_streams: Arc<Mutex<Vec<UnixStream>>>,
    acceptor: Option<JoinHandle<()>>,
}

fn unique_socket_path() -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("ringraft-ffi-test-{}-{n}.sock", std::process::id()))
}

impl FakeDaemon {
    pub fn start() -> FakeDaemon {
        let members = members(3);
        let cluster = Cluster {
            ring: ring_of(&members),
            members,
            log: Vec::new(),
            registers: HashMap::new(),
            limits: ServerLimits {
                frame_bytes_max: FRAME_BYTES_MAX as u32,
                proposal_bytes_max: FRAME_BYTES_MAX as u32,
                kv_value_bytes_max: ringraft_proto::limits::KV_VALUE_BYTES_MAX_DEFAULT as u32,
            },
            watchers: Vec::new(),
            history: HashMap::new(),
            answers_ring_deltas: true,
        };
        let mut daemon = FakeDaemon {
            path: unique_socket_path(),
            cluster: Arc::new(Mutex::new(cluster)),
            received: Arc::new(Mutex::new(Vec::new())),
            connections: Arc::new(AtomicU64::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
            open_streams: Arc::new(Mutex::new(Vec::new())),
            acceptor: None,
        };
        daemon.listen();
        daemon
    }

    fn listen(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let listener = UnixListener::bind(&self.path).expect("bind the fake daemon's socket");
        listener.set_nonblocking(true).unwrap();
        self.stop.store(false, Ordering::SeqCst);
        let stop = Arc::clone(&self.stop);
        let cluster = Arc::clone(&self.cluster);
        let received = Arc::clone(&self.received);
        let connections = Arc::clone(&self.connections);
        let open_streams = Arc::clone(&self.open_streams);
        self.acceptor = Some(std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        connections.fetch_add(1, Ordering::SeqCst);
                        open_streams
                            .lock()
                            .unwrap()
                            .push(stream.try_clone().unwrap());
                        let cluster = Arc::clone(&cluster);
                        let received = Arc::clone(&received);
                        std::thread::spawn(move || serve(stream, cluster, received));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        }));
    }

    /// Drops every connection and the socket, as a crashed daemon would.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.join().unwrap();
        }
        for stream in self.open_streams.lock().unwrap().drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        self.cluster.lock().unwrap().watchers.clear();
        let _ = std::fs::remove_file(&self.path);
    }

    /// Comes back on the same path with the same state, as a restarted daemon would.
    pub fn restart(&mut self) {
        self.stop();
        self.listen();
    }

    pub fn count_received(&self, matches: impl Fn(&Request) -> bool) -> usize {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| matches(r))
            .count()
    }

    /// Adds a member (as a committed Join would) and moves the epoch.
    pub fn add_member(&self, member: Member) {
        let mut members = self.cluster.lock().unwrap().members.clone();
        members.push(member);
        self.set_members(members);
    }

    /// Replaces the membership (members ascending by id), keeping the ring before for deltas.
    pub fn set_members(&self, members: Vec<Member>) {
        let mut cluster = self.cluster.lock().unwrap();
        let before = (cluster.ring.state().clone(), cluster.members.clone());
        cluster.history.insert(before.0.epoch(), before);
        cluster.ring = ring_after(cluster.ring.epoch(), &members);
        cluster.members = members;
    }
}

impl Drop for FakeDaemon {
    fn drop(&mut self) {
        self.stop();
    }
}

fn send(writer: &Mutex<UnixStream>, id: u64, response: Response) {
    let bytes = encode_response_frame(&ResponseFrame { id, response }).unwrap();
    let _ = writer.lock().unwrap().write_all(&bytes);
}

fn serve(mut stream: UnixStream, cluster: Arc<Mutex<Cluster>>, received: Arc<Mutex<Vec<Request>>>) {
    let mut hello = [0u8; CLIENT_HELLO_BYTES];
    if stream.read_exact(&mut hello).is_err() {
        return;
    }
    let Ok(hello) = ClientHello::decode(&hello) else {
        return;
    };
    let hello_answer = ServerHello::answer(&hello);
    let mut bytes = hello_answer.encode().to_vec();
    if hello_answer.status() == Some(Status::Ok) {
        let limits = cluster.lock().unwrap().limits;
        bytes.extend_from_slice(&limits.encode());
    }
    if stream.write_all(&bytes).is_err() {
        return;
    }
    let writer = Arc::new(Mutex::new(stream.try_clone().unwrap()));
    let mut decoder = FrameDecoder::new(FRAME_BYTES_MAX);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        decoder.feed(&buf[..n]);
        while let Ok(Some(payload)) = decoder.next_frame() {
            let Ok(frame) = decode_request(&payload) else {
                return;
            };
            received.lock().unwrap().push(frame.request.clone());
            answer(&writer, &cluster, frame.id, frame.request);
        }
    }
}

fn answer(
    writer: &Arc<Mutex<UnixStream>>,
    cluster: &Arc<Mutex<Cluster>>,
    id: u64,
    request: Request,
) {
    let mut state = cluster.lock().unwrap();
    let epoch = state.ring.epoch();
    let by_id: HashMap<u64, Member> = state.members.iter().map(|m| (m.id, m.clone())).collect();
    let response = match request {
        Request::Status => Response::Status(StatusInfo {
            node_id: 1,
            name: "node-1".into(),
            cluster_id: 42,
            role: NodeRole::Leader,
            term: 3,
            leader_id: 1,
            commit_index: state.log.len() as u64,
            applied_index: state.log.len() as u64,
            last_index: state.log.len() as u64,
            snapshot_index: 0,
            epoch,
            member_count: state.members.len() as u32,
            daemon_version: "fake".into(),
            registers: Default::default(),
        }),
        Request::Members { .. } => Response::Members {
            epoch,
            members: state.members.clone(),
        },
        Request::Ring { .. } => Response::Ring {
            epoch,
            ring: state.ring.encode(),
            members: state.members.clone(),
            replication_factor: 3,
        },
        Request::RingSince { epoch: from, .. } => match state.history.get(&from) {
            Some((ring, members)) if state.answers_ring_deltas => {
                let delta = RingDelta::between(ring, state.ring.state());
                let before: HashMap<u64, &Member> = members.iter().map(|m| (m.id, m)).collect();
                Response::RingDelta {
                    from_epoch: from,
                    epoch,
                    delta: delta.encode(),
                    members: state
                        .members
                        .iter()
                        .filter(|m| before.get(&m.id) != Some(m))
                        .cloned()
                        .collect(),
                    removed: members
                        .iter()
                        .filter(|m| !by_id.contains_key(&m.id))
                        .map(|m| m.id)
                        .collect(),
                    replication_factor: 3,
                }
            }
            _ => Response::Ring {
                epoch,
                ring: state.ring.encode(),
                members: state.members.clone(),
                replication_factor: 3,
            },
        },
        Request::Owner { key, .. } => {
            let owner = state.ring.owner(&key).unwrap();
            let response = Response::Owner {
                epoch,
                member: by_id[&owner.member].clone(),
            };
            if key.starts_with(SLOW_PREFIX) {
                let writer = Arc::clone(writer);
                std::thread::spawn(move || {
                    std::thread::sleep(SLOW_DELAY);
                    send(&writer, id, response);
                });
                return;
            }
            response
        }
        Request::Replicas { key, n, .. } => Response::Replicas {
            epoch,
            members: state
                .ring
                .replicas(&key, n as usize)
                .members
                .iter()
                .map(|m| by_id[m].clone())
                .collect(),
        },
        Request::Propose { data, .. } => {
            if data == HANG {
                return;
            }
            let index = state.log.len() as u64 + 1;
            let record = LogRecord { index, data };
            state.log.push(record.clone());
            for (watcher, watch_id) in &state.watchers {
                send(
                    watcher,
                    *watch_id,
                    Response::LogRecords {
                        records: vec![record.clone()],
                        first_index: 1,
                        last_index: index,
                    },
                );
            }
            Response::Proposed { index }
        }
        Request::ReadLog { from, max } => Response::LogRecords {
            records: state
                .log
                .iter()
                .filter(|r| r.index >= from)
                .take(max as usize)
                .cloned()
                .collect(),
            first_index: 1,
            last_index: state.log.len() as u64,
        },
        Request::KvGet { key, .. } => {
            let response = match state.registers.get(&key) {
                Some((value, version)) => Response::KvEntry {
                    value: Some(value.clone()),
                    version: *version,
                    epoch,
                },
                None => Response::KvEntry {
                    value: None,
                    version: 0,
                    epoch,
                },
            };
            if key.starts_with(SLOW_PREFIX) {
                let writer = Arc::clone(writer);
                std::thread::spawn(move || {
                    std::thread::sleep(SLOW_DELAY);
                    send(&writer, id, response);
                });
                return;
            }
            response
        }
        Request::KvCas { key, .. } | Request::KvDelete { key, .. } if key == HANG => return,
        Request::KvCas {
            key,
            expected_version,
            value,
            ..
        } => kv_write(
            &mut state.registers,
            key,
            expected_version,
            Some(value),
            epoch,
        ),
        Request::KvDelete {
            key,
            expected_version,
            ..
        } => kv_write(&mut state.registers, key, expected_version, None, epoch),
        Request::WatchLog { from } => {
            let records: Vec<LogRecord> = state
                .log
                .iter()
                .filter(|r| r.index >= from)
                .cloned()
                .collect();
            let last_index = state.log.len() as u64;
            state.watchers.push((Arc::clone(writer), id));
            if records.is_empty() {
                return;
            }
            Response::LogRecords {
                records,
                first_index: 1,
                last_index,
            }
        }
        Request::Cancel { request_id } => {
            state
                .watchers
                .retain(|(_, watch_id)| *watch_id != request_id);
            Response::Done { index: 0 }
        }
        Request::Join { .. } | Request::Remove { .. } | Request::Promote { .. } => {
            Response::Done { index: epoch + 1 }
        }
        Request::TransferLeader { .. } | Request::Snapshot => Response::Done { index: 0 },
    };
    drop(state);
    send(writer, id, response);
}

/// The registers' semantics (paxos/src/register.rs): version 0 is absent, every write sets the
/// previous version + 1, a delete makes the register absent again; an expected version other
/// than the current one (or KV_ANY_VERSION) is a conflict that writes nothing.
fn kv_write(
    registers: &mut HashMap<Vec<u8>, (Vec<u8>, u64)>,
    key: Vec<u8>,
    expected_version: u64,
    value: Option<Vec<u8>>,
    epoch: u64,
) -> Response {
    let current = registers.get(&key).map_or(0, |(_, version)| *version);
    if expected_version != ringraft_proto::limits::KV_ANY_VERSION && expected_version != current {
        return Response::KvConflict {
            current_version: current,
            epoch,
        };
    }
    let version = match value {
        Some(value) => {
            registers.insert(key, (value, current + 1));
            current + 1
        }
        None => {
            registers.remove(&key);
            0
        }
    };
    Response::KvWritten { version, epoch }
}
