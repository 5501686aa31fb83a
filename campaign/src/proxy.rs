//! A UDP proxy between the nodes that can delay, duplicate, reorder and drop datagrams (this
//! kernel has no `tc netem`).
//!
//! Every node has two addresses: its *real* address (`198.18.1.x`, on its `eth0`, where
//! ringraftd listens) and its *service* address (`198.18.0.x`, what it advertises and what the
//! cluster's member list says). The service addresses all live in the hub namespace (a local
//! route for the whole /24), where this proxy holds one socket per node, bound to that node's
//! service address and QUIC port. A datagram from node A to B's service address arrives on B's
//! socket from A's real address; the proxy sends it on from A's socket to B's real address, so B
//! sees it come from A's service address, which is where its answers go: they come back through
//! A's socket the same way. No NAT, no connection tracking, and nftables rules in the node
//! namespaces still see the peers' service addresses as sources.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::net;

/// What the proxy does to datagrams from or to the nodes in `nodes` (all when empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    pub nodes: BTreeSet<u64>,
    /// Each datagram waits a random time in this range (ms); (0, 0): sent at once. A range wider
    /// than the spacing of datagrams reorders them.
    pub delay_ms: (u64, u64),
    pub duplicate_percent: u32,
    pub drop_percent: u32,
}

/// Datagrams the proxy handled since it started.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    pub forwarded: u64,
    pub delayed: u64,
    pub duplicated: u64,
    pub dropped: u64,
}

#[derive(Default)]
struct Counters {
    forwarded: AtomicU64,
    delayed: AtomicU64,
    duplicated: AtomicU64,
    dropped: AtomicU64,
}

/// Datagrams held back at most (beyond, new ones are dropped): bounds the proxy's memory.
const QUEUED_MAX: usize = 50_000;

type AddRequest = (u64, mpsc::Sender<Result<(), String>>);

pub struct Proxy {
    faults: Arc<Mutex<Faults>>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    add: Mutex<mpsc::Sender<AddRequest>>,
    thread: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Starts the proxy thread inside the namespace named by `hub` (setns is per thread).
    pub fn start(hub: PathBuf, port: u16, seed: u64) -> Result<Proxy, String> {
        let faults = Arc::new(Mutex::new(Faults::default()));
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (add_tx, add_rx) = mpsc::channel::<AddRequest>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let thread = {
            let faults = faults.clone();
            let counters = counters.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("udp-proxy".into())
                .spawn(move || {
                    let entered = std::fs::File::open(&hub)
                        .map_err(|e| format!("{}: {e}", hub.display()))
                        .and_then(|ns| {
                            // SAFETY: setns(2) on an open namespace file; it moves only this
                            // thread into the namespace.
                            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } == 0 {
                                Ok(())
                            } else {
                                Err(format!("setns: {}", std::io::Error::last_os_error()))
                            }
                        });
                    let failed = entered.is_err();
                    let _ = ready_tx.send(entered);
                    if failed {
                        return;
                    }
                    let mut worker = Worker {
                        port,
                        faults,
                        counters,
                        sockets: BTreeMap::new(),
                        queue: BinaryHeap::new(),
                        sequence: 0,
                        rng: ChaCha8Rng::seed_from_u64(seed),
                    };
                    worker.run(&stop, &add_rx);
                })
                .map_err(|e| format!("cannot start the proxy thread: {e}"))?
        };
        ready_rx
            .recv()
            .map_err(|_| "the proxy thread died".to_string())??;
        Ok(Proxy {
            faults,
            counters,
            stop,
            add: Mutex::new(add_tx),
            thread: Some(thread),
        })
    }

    /// Opens node `id`'s socket (its service address) before anything dials it.
    pub fn add_node(&self, id: u64) -> Result<(), String> {
        let (reply, answer) = mpsc::channel();
        self.add
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send((id, reply))
            .map_err(|_| "the proxy thread is gone".to_string())?;
        answer
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| "the proxy thread did not answer".to_string())?
    }

    pub fn set_faults(&self, faults: Faults) {
        *self.faults.lock().unwrap_or_else(|e| e.into_inner()) = faults;
    }

    pub fn heal(&self) {
        self.set_faults(Faults::default());
    }

    pub fn stats(&self) -> Stats {
        Stats {
            forwarded: self.counters.forwarded.load(Ordering::Relaxed),
            delayed: self.counters.delayed.load(Ordering::Relaxed),
            duplicated: self.counters.duplicated.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A datagram held back: (due, sequence) orders the queue.
type Held = Reverse<(Instant, u64, u64, u64, Vec<u8>)>;

struct Worker {
    port: u16,
    faults: Arc<Mutex<Faults>>,
    counters: Arc<Counters>,
    sockets: BTreeMap<u64, UdpSocket>,
    queue: BinaryHeap<Held>,
    sequence: u64,
    rng: ChaCha8Rng,
}

impl Worker {
    fn run(&mut self, stop: &AtomicBool, add: &mpsc::Receiver<AddRequest>) {
        let mut buffer = vec![0u8; 65_536];
        while !stop.load(Ordering::Relaxed) {
            while let Ok((id, reply)) = add.try_recv() {
                let _ = reply.send(self.bind(id));
            }
            let wait = self
                .queue
                .peek()
                .map(|Reverse((due, ..))| due.saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::from_millis(20))
                .min(Duration::from_millis(20));
            let ids: Vec<u64> = self.sockets.keys().copied().collect();
            let mut fds: Vec<libc::pollfd> = ids
                .iter()
                .map(|id| libc::pollfd {
                    fd: self.sockets[id].as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            let timeout = i32::try_from(wait.as_millis()).unwrap_or(20).max(1);
            // SAFETY: poll(2) over a vector of pollfd we own, with its length.
            let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
            if ready > 0 {
                let faults = self
                    .faults
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                for (fd, to) in fds.iter().zip(&ids) {
                    if fd.revents & libc::POLLIN != 0 {
                        self.receive(*to, &faults, &mut buffer);
                    }
                }
            } else if ready < 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            self.send_due();
        }
    }

    fn bind(&mut self, id: u64) -> Result<(), String> {
        if self.sockets.contains_key(&id) {
            return Ok(());
        }
        let address = SocketAddr::from((net::node_ip(id), self.port));
        let socket = UdpSocket::bind(address).map_err(|e| format!("proxy: bind {address}: {e}"))?;
        socket
            .set_nonblocking(true)
            .map_err(|e| format!("proxy: {e}"))?;
        self.sockets.insert(id, socket);
        Ok(())
    }

    /// Everything waiting on node `to`'s socket.
    fn receive(&mut self, to: u64, faults: &Faults, buffer: &mut [u8]) {
        for _ in 0..256 {
            let Some(socket) = self.sockets.get(&to) else {
                return;
            };
            let (len, source) = match socket.recv_from(buffer) {
                Ok(received) => received,
                Err(_) => return,
            };
            let Some(from) = node_of_real(source.ip()) else {
                continue;
            };
            let affected = faults.nodes.is_empty()
                || faults.nodes.contains(&from)
                || faults.nodes.contains(&to);
            if affected
                && faults.drop_percent > 0
                && self.rng.gen_range(0..100) < faults.drop_percent
            {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let copies = if affected
                && faults.duplicate_percent > 0
                && self.rng.gen_range(0..100) < faults.duplicate_percent
            {
                self.counters.duplicated.fetch_add(1, Ordering::Relaxed);
                2
            } else {
                1
            };
            for _ in 0..copies {
                let (low, high) = faults.delay_ms;
                let delay = if affected && high > 0 {
                    self.rng.gen_range(low..=high.max(low))
                } else {
                    0
                };
                if delay == 0 && self.queue.is_empty() {
                    self.forward(from, to, &buffer[..len]);
                } else if self.queue.len() < QUEUED_MAX {
                    self.counters.delayed.fetch_add(1, Ordering::Relaxed);
                    self.sequence += 1;
                    let due = Instant::now() + Duration::from_millis(delay);
                    self.queue.push(Reverse((
                        due,
                        self.sequence,
                        from,
                        to,
                        buffer[..len].to_vec(),
                    )));
                } else {
                    self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    fn send_due(&mut self) {
        let now = Instant::now();
        while self
            .queue
            .peek()
            .is_some_and(|Reverse((due, ..))| *due <= now)
        {
            let Some(Reverse((_, _, from, to, bytes))) = self.queue.pop() else {
                break;
            };
            self.forward(from, to, &bytes);
        }
    }

    /// Sends from `from`'s socket (its service address) to `to`'s real address.
    fn forward(&mut self, from: u64, to: u64, bytes: &[u8]) {
        if let Some(socket) = self.sockets.get(&from) {
            let target = SocketAddr::from((net::real_ip(to), self.port));
            if socket.send_to(bytes, target).is_ok() {
                self.counters.forwarded.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn node_of_real(ip: IpAddr) -> Option<u64> {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            ((a, b, c) == (198, 18, 1) && d > 10).then(|| u64::from(d - 10))
        }
        IpAddr::V6(_) => None,
    }
}
