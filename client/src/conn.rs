//! One connection to the daemon, shared by every thread of a client: the handshake, request
//! frames checked against the daemon's limits before they are sent, and answers filed by request
//! id, so many requests are in flight at once and answered out of order.
//!
//! Requests are pipelined: each caller writes its frame under a short write lock, then waits for
//! the answer with its id. There is no reader thread: whichever waiting caller finds nobody
//! reading becomes the reader (leader/follower), reads what the socket has, files every answer
//! under its request id, wakes the others and goes back to checking its own slot. A lone caller
//! thus pays one read and one write per call, like a plain ping-pong, and nothing runs when no
//! call is waiting.

use std::collections::{HashMap, VecDeque};
use std::io::{ErrorKind, Read};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ringraft_proto::{
    decode_response, encode_request_frame, ClientHello, FrameDecoder, Request, RequestFrame,
    Response, ServerHello, ServerLimits, Status, FRAME_BYTES_MAX, FRAME_HEADER_BYTES,
    PROTOCOL_VERSION, RESPONSE_FRAME_BYTES_MAX, SERVER_HELLO_BYTES, SERVER_LIMITS_BYTES,
};

use crate::error::{Error, Result};
use crate::kv::check_kv_request;

/// Bytes asked of the socket per read.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Answers of one watch kept while nobody calls ringraft_watch_next(). Past it the watch's further
/// answers are dropped and the watch reports `Overflowed` once its queue is drained, so the owner
/// can cancel it and watch again from the next index it has not seen: nothing is lost.
const STREAM_BACKLOG_MAX: usize = 1024;

enum Slot {
    /// A request waiting for its one answer.
    Waiting,
    Answered(Response),
    /// A running watch: answers in arrival order; `overflowed` once its backlog was full.
    Stream {
        queue: VecDeque<Response>,
        overflowed: bool,
    },
}

/// What waiting on a watch can yield besides an error of the connection.
pub enum StreamItem {
    Answer(Response),
    /// The watch's backlog filled up and later answers were dropped (see STREAM_BACKLOG_MAX).
    Overflowed,
}

struct Demux {
    decoder: FrameDecoder,
    slots: HashMap<u64, Slot>,
    /// Some caller is inside read() right now.
    reading: bool,
    /// Callers asleep on `answered`: a lone caller skips the wake-up syscall.
    sleepers: usize,
    read_buf: Vec<u8>,
    /// Why the connection ended; once set it never clears (the client opens a new connection).
    dead: Option<Error>,
}

pub struct Connection {
    stream: UnixStream,
    /// What the daemon said in the handshake it accepts.
    limits: ServerLimits,
    /// The socket's SO_SNDTIMEO / SO_RCVTIMEO in milliseconds, as last set (see `bound_wait`).
    write_timeout_ms: AtomicU64,
    read_timeout_ms: AtomicU64,
    write_lock: Mutex<()>,
    demux: Mutex<Demux>,
    answered: Condvar,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock (caught at the boundary) leaves plain data behind; the
    // connection state stays consistent because every update is a single insert/remove.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn remaining(deadline: Instant) -> Option<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    // set_read_timeout refuses zero; a millisecond floor keeps a last short wait meaningful.
    (!left.is_zero()).then(|| left.max(Duration::from_millis(1)))
}

/// `timeout` in whole milliseconds, rounded down to 100 ms steps above 100 ms (at least 1 ms),
/// so that successive calls with the same client timeout land in the same bucket.
fn bucket_ms(timeout: Duration) -> u64 {
    let ms = u64::try_from(timeout.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    if ms > 100 {
        ms - ms % 100
    } else {
        ms
    }
}

fn timeout_error(what: &str) -> Error {
    Error::new(
        Status::Timeout,
        format!("{what}: no answer within the timeout"),
    )
}

impl Connection {
    /// Connects to the daemon's socket and completes the handshake before `deadline`.
    pub fn open(path: &Path, deadline: Instant) -> Result<Connection> {
        let stream = UnixStream::connect(path).map_err(|e| connect_error(path, e))?;
        let timeout = remaining(deadline).ok_or_else(|| timeout_error("connect"))?;
        let io = |e: std::io::Error| {
            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) {
                timeout_error("handshake")
            } else {
                Error::unavailable(format!("handshake with {}: {e}", path.display()))
            }
        };
        stream.set_write_timeout(Some(timeout)).map_err(io)?;
        stream.set_read_timeout(Some(timeout)).map_err(io)?;
        send_all(&stream, &ClientHello::current().encode()).map_err(io)?;
        let mut answer = [0u8; SERVER_HELLO_BYTES];
        (&stream).read_exact(&mut answer).map_err(io)?;
        let hello = ServerHello::decode(&answer)
            .map_err(|e| Error::new(Status::Malformed, format!("{}: {e}", path.display())))?;
        check_hello(&hello)?;
        let mut limits = [0u8; SERVER_LIMITS_BYTES];
        (&stream).read_exact(&mut limits).map_err(io)?;
        let limits = ServerLimits::decode(&limits);
        let timeout_ms = bucket_ms(timeout);
        stream
            .set_write_timeout(Some(Duration::from_millis(timeout_ms)))
            .map_err(io)?;
        stream
            .set_read_timeout(Some(Duration::from_millis(timeout_ms)))
            .map_err(io)?;
        Ok(Connection {
            stream,
            limits,
            write_timeout_ms: AtomicU64::new(timeout_ms),
            read_timeout_ms: AtomicU64::new(timeout_ms),
            write_lock: Mutex::new(()),
            demux: Mutex::new(Demux {
                // Answers may be larger than requests: a whole ring of thousands of members.
                decoder: FrameDecoder::new(RESPONSE_FRAME_BYTES_MAX),
                slots: HashMap::new(),
                reading: false,
                sleepers: 0,
                read_buf: vec![0; READ_CHUNK_BYTES],
                dead: None,
            }),
            answered: Condvar::new(),
        })
    }

    /// What the daemon accepts, as it said in the handshake.
    pub fn limits(&self) -> ServerLimits {
        self.limits
    }

    pub fn is_dead(&self) -> bool {
        lock(&self.demux).dead.is_some()
    }

    /// Whether the daemon has closed its end, found without blocking and without consuming
    /// anything (a peek). A connection idle across a daemon restart looks alive until someone
    /// reads it; requests that must not be sent twice check first, so they go to the new daemon
    /// instead of failing on the old connection.
    pub fn probe_closed(&self) -> bool {
        let mut byte = 0u8;
        // SAFETY: recv into one valid byte; MSG_PEEK leaves the data for the reader.
        let received = unsafe {
            libc::recv(
                self.stream.as_raw_fd(),
                (&mut byte as *mut u8).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        let closed = match received {
            0 => true,
            n if n > 0 => false,
            _ => !matches!(
                std::io::Error::last_os_error().kind(),
                ErrorKind::WouldBlock | ErrorKind::Interrupted
            ),
        };
        if closed {
            self.kill(Error::unavailable("the daemon closed the connection"));
        }
        closed || self.is_dead()
    }

    /// Ends the connection: every waiting call fails with `error`, the daemon sees it close.
    pub fn kill(&self, error: Error) {
        let mut demux = lock(&self.demux);
        self.kill_locked(&mut demux, error);
    }

    fn kill_locked(&self, demux: &mut Demux, error: Error) {
        if demux.dead.is_none() {
            demux.dead = Some(error);
            // Wakes a reader blocked in read() and tells the daemon we are gone.
            let _ = self.stream.shutdown(std::net::Shutdown::Both);
        }
        self.answered.notify_all();
    }

    /// Sends `request` under `id` and registers where its answer goes. `stream` registers a
    /// watch, whose answers queue up until `next_answer` takes them.
    /// A request the daemon would refuse for its size (a frame over its limit would even cost the
    /// connection; a proposal, a register key or value over its limit) is refused here with
    /// `TooLarge`, and nothing is sent; so is a register request with an empty key
    /// (`InvalidArgument`).
    pub fn send(&self, id: u64, request: Request, stream: bool, deadline: Instant) -> Result<()> {
        check_kv_request(&request, self.limits)?;
        let proposal = check_proposal_size(&request, self.limits);
        let frame = encode_request_frame(&RequestFrame { id, request })
            .map_err(|e| Error::new(e.status(), format!("cannot send the request: {e}")))?;
        check_frame_size(frame.len() - FRAME_HEADER_BYTES, self.limits)?;
        proposal?;
        {
            let mut demux = lock(&self.demux);
            if let Some(error) = &demux.dead {
                return Err(error.clone());
            }
            let slot = if stream {
                Slot::Stream {
                    queue: VecDeque::new(),
                    overflowed: false,
                }
            } else {
                Slot::Waiting
            };
            demux.slots.insert(id, slot);
        }
        let _writing = lock(&self.write_lock);
        let timeout = match remaining(deadline) {
            Some(timeout) => timeout,
            None => {
                lock(&self.demux).slots.remove(&id);
                return Err(timeout_error("send"));
            }
        };
        let written = self
            .bound_wait(&self.write_timeout_ms, timeout, |t| {
                self.stream.set_write_timeout(t)
            })
            .and_then(|()| send_all(&self.stream, &frame));
        if let Err(e) = written {
            // A partly written frame leaves the stream unusable: end the connection.
            let error = if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) {
                timeout_error("send")
            } else {
                Error::unavailable(format!("lost the connection to the daemon: {e}"))
            };
            self.kill(Error::unavailable(format!(
                "lost the connection to the daemon: {e}"
            )));
            lock(&self.demux).slots.remove(&id);
            return Err(error);
        }
        Ok(())
    }

    /// Waits for the answer to request `id` until `deadline`. On timeout the request is
    /// forgotten and a late answer is dropped.
    pub fn wait_answer(&self, id: u64, deadline: Instant) -> Result<Response> {
        let answer = self.wait(id, deadline, |slots| match slots.remove(&id) {
            Some(Slot::Answered(response)) => Some(response),
            Some(other) => {
                slots.insert(id, other);
                None
            }
            None => None,
        });
        if answer.is_err() {
            self.forget(id);
        }
        answer
    }

    /// The next answer of watch `id`, waiting until `deadline`; the watch stays registered.
    pub fn next_answer(&self, id: u64, deadline: Instant) -> Result<StreamItem> {
        self.wait(id, deadline, |slots| match slots.get_mut(&id) {
            Some(Slot::Stream { queue, overflowed }) => match queue.pop_front() {
                Some(response) => Some(StreamItem::Answer(response)),
                None if *overflowed => Some(StreamItem::Overflowed),
                None => None,
            },
            _ => None,
        })
    }

    /// Starts watch `id` from index `from` and returns once the daemon has accepted it: a
    /// refusal (`Busy` past its per-connection limit of watches, `Compacted`...) is the `Err`.
    ///
    /// The daemon decides on a watch before it reads the connection's next request, and answers
    /// in that order; so once a Cancel of a watch that does not exist (`barrier_id`, a fresh
    /// request id, names itself) is answered, a refusal of this watch has arrived too. On any
    /// `Err` the watch is forgotten.
    pub fn start_watch(
        &self,
        id: u64,
        from: u64,
        barrier_id: u64,
        deadline: Instant,
    ) -> Result<()> {
        self.send(id, Request::WatchLog { from }, true, deadline)?;
        let barrier = Request::Cancel {
            request_id: barrier_id,
        };
        let answered = self
            .send(barrier_id, barrier, false, deadline)
            .and_then(|()| self.wait_answer(barrier_id, deadline));
        let refused = match answered {
            Err(error) => Some(error),
            Ok(_) => self.take_stream_error(id),
        };
        match refused {
            Some(error) => {
                self.forget(id);
                Err(error)
            }
            None => Ok(()),
        }
    }

    /// The error that ended watch `id`, if it is the first answer filed for it (taken from the
    /// queue); records and an empty queue are left alone. Never reads the socket.
    fn take_stream_error(&self, id: u64) -> Option<Error> {
        let mut demux = lock(&self.demux);
        let Some(Slot::Stream { queue, .. }) = demux.slots.get_mut(&id) else {
            return None;
        };
        if !matches!(queue.front(), Some(Response::Error { .. })) {
            return None;
        }
        match queue.pop_front() {
            Some(Response::Error { status, message }) => Some(Error::new(status, message)),
            _ => None,
        }
    }

    /// Stops routing answers of `id` (a watch being closed, or a request given up).
    pub fn forget(&self, id: u64) {
        lock(&self.demux).slots.remove(&id);
    }

    /// Leader/follower wait: take the answer if it is filed, else read the socket if nobody
    /// else is, else sleep until the reader files something.
    fn wait<T>(
        &self,
        id: u64,
        deadline: Instant,
        mut take: impl FnMut(&mut HashMap<u64, Slot>) -> Option<T>,
    ) -> Result<T> {
        let mut demux = lock(&self.demux);
        loop {
            if let Some(answer) = take(&mut demux.slots) {
                return Ok(answer);
            }
            if !demux.slots.contains_key(&id) {
                return Err(Error::new(
                    Status::Closed,
                    "the request is no longer pending",
                ));
            }
            if let Some(error) = &demux.dead {
                return Err(error.clone());
            }
            let Some(timeout) = remaining(deadline) else {
                return Err(timeout_error("request"));
            };
            if demux.reading {
                demux.sleepers += 1;
                demux = self
                    .answered
                    .wait_timeout(demux, timeout)
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .0;
                demux.sleepers -= 1;
                continue;
            }
            demux.reading = true;
            let mut buf = std::mem::take(&mut demux.read_buf);
            drop(demux);
            let read = self
                .bound_wait(&self.read_timeout_ms, timeout, |t| {
                    self.stream.set_read_timeout(t)
                })
                .and_then(|()| (&self.stream).read(&mut buf));
            demux = lock(&self.demux);
            demux.reading = false;
            match read {
                Ok(0) => self.kill_locked(
                    &mut demux,
                    Error::unavailable("the daemon closed the connection"),
                ),
                Ok(n) => {
                    demux.decoder.feed(&buf[..n]);
                    if let Err(error) = self.dispatch(&mut demux) {
                        self.kill_locked(&mut demux, error);
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => self.kill_locked(
                    &mut demux,
                    Error::unavailable(format!("lost the connection to the daemon: {e}")),
                ),
            }
            demux.read_buf = buf;
            if demux.sleepers > 0 {
                self.answered.notify_all();
            }
        }
    }

    /// Makes sure a blocking read or write cannot outlast `timeout`, without a setsockopt on every
    /// call: the socket timeout is kept at `timeout` rounded down to a bucket, and changed only
    /// when the call needs it shorter, or when it is far shorter than the call could wait (then
    /// short waits would just loop). A wait that ends early is harmless: `wait` checks the
    /// deadline and reads again.
    fn bound_wait(
        &self,
        current_ms: &AtomicU64,
        timeout: Duration,
        set: impl FnOnce(Option<Duration>) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let wanted_ms = bucket_ms(timeout);
        let current = current_ms.load(Ordering::Relaxed);
        if current <= wanted_ms && current.saturating_mul(2) >= wanted_ms {
            return Ok(());
        }
        set(Some(Duration::from_millis(wanted_ms)))?;
        current_ms.store(wanted_ms, Ordering::Relaxed);
        Ok(())
    }

    /// Files every complete frame under its request id.
    fn dispatch(&self, demux: &mut Demux) -> Result<()> {
        loop {
            let payload = demux
                .decoder
                .next_frame()
                .map_err(|e| Error::new(e.status(), format!("from the daemon: {e}")))?;
            let Some(payload) = payload else {
                return Ok(());
            };
            let frame = decode_response(&payload)
                .map_err(|e| Error::new(e.status(), format!("from the daemon: {e}")))?;
            if frame.id == 0 {
                // Connection-level error: the daemon closes after it.
                return Err(match frame.response {
                    Response::Error { status, message } => Error::new(status, message),
                    other => Error::new(
                        Status::Malformed,
                        format!("unexpected answer without request id: {other:?}"),
                    ),
                });
            }
            match demux.slots.get_mut(&frame.id) {
                Some(slot @ Slot::Waiting) => *slot = Slot::Answered(frame.response),
                Some(Slot::Stream { queue, overflowed }) => {
                    if queue.len() < STREAM_BACKLOG_MAX && !*overflowed {
                        queue.push_back(frame.response);
                    } else {
                        *overflowed = true;
                    }
                }
                // Answered twice, or given up after a timeout: nobody waits for it.
                Some(Slot::Answered(_)) | None => {}
            }
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

/// Writes all of `bytes` with send(MSG_NOSIGNAL): a daemon that went away must give the caller
/// an error, not kill the host program with SIGPIPE (C programs keep its default action).
fn send_all(stream: &UnixStream, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        // SAFETY: sends from a valid slice on a socket this connection owns.
        let sent = unsafe {
            libc::send(
                stream.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        if sent < 0 {
            let error = std::io::Error::last_os_error();
            if error.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        if sent == 0 {
            return Err(ErrorKind::WriteZero.into());
        }
        bytes = &bytes[sent as usize..];
    }
    Ok(())
}

/// Ok when the server accepted our version (its limits follow); else the error to report:
/// another version (said with both numbers), a refusal (busy), or a status we do not know.
fn check_hello(hello: &ServerHello) -> Result<()> {
    match hello.status() {
        Some(Status::Ok) if hello.version == PROTOCOL_VERSION => Ok(()),
        Some(Status::Ok) | Some(Status::UnsupportedVersion) => Err(Error::new(
            Status::UnsupportedVersion,
            format!(
                "the daemon speaks protocol version {}, this client speaks {}",
                hello.version, PROTOCOL_VERSION
            ),
        )),
        Some(status) => Err(Error::new(
            status,
            format!("the daemon refused the connection: {status}"),
        )),
        None => Err(Error::new(
            Status::Malformed,
            format!(
                "the daemon answered the handshake with unknown status {}",
                hello.status_code
            ),
        )),
    }
}

/// A proposal larger than the cluster commits is refused before it is sent.
fn check_proposal_size(request: &Request, limits: ServerLimits) -> Result<()> {
    if let Request::Propose { data, .. } = request {
        let max = limits.proposal_bytes_max as usize;
        if data.len() > max {
            return Err(Error::new(
                Status::TooLarge,
                format!(
                    "the proposal is {} bytes; the daemon commits proposals of at most {max} \
                     bytes; it was not sent",
                    data.len()
                ),
            ));
        }
    }
    Ok(())
}

/// A request frame larger than the daemon reads is refused before it is sent: the daemon would
/// close the connection on it.
fn check_frame_size(payload_bytes: usize, limits: ServerLimits) -> Result<()> {
    let max = (limits.frame_bytes_max as usize).min(FRAME_BYTES_MAX);
    if payload_bytes > max {
        return Err(Error::new(
            Status::TooLarge,
            format!(
                "the request's frame is {payload_bytes} bytes; the daemon reads frames of at most \
                 {max} bytes; it was not sent"
            ),
        ));
    }
    Ok(())
}

fn connect_error(path: &Path, e: std::io::Error) -> Error {
    let status = match e.kind() {
        ErrorKind::PermissionDenied => Status::PermissionDenied,
        ErrorKind::InvalidInput => Status::InvalidArgument,
        _ => Status::Unavailable,
    };
    Error::new(status, format!("cannot connect to {}: {e}", path.display()))
}
