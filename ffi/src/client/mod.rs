//! The client behind `ringraft_client *`: the socket path, options, the current connection
//! (replaced after the daemon restarts), and the optional ring cache.

mod cache;
mod watch;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringraft_proto::{Request, Response, Status};

use crate::error::{Error, Result};
pub use cache::{RingCache, RingView};
pub use ringraft_client::Connection;
pub use watch::Watch;

/// The timeout of calls on a client that never called ringraft_set_timeout(), and of the
/// handshake in ringraft_connect().
pub const RINGRAFT_DEFAULT_TIMEOUT_MS: u32 = 5_000;

/// Pauses between reconnection attempts while a read waits for a restarting daemon.
const RECONNECT_BACKOFF_MIN: Duration = Duration::from_millis(5);
const RECONNECT_BACKOFF_MAX: Duration = Duration::from_millis(200);

/// Source of the per-client keys of the last-error table; 0 is reserved for "no client".
static NEXT_CLIENT_KEY: AtomicU64 = AtomicU64::new(1);

/// Whether a request may be sent again after the connection was lost with it in flight.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Retry {
    /// Reads: sending twice is harmless, so one transparent retry on a fresh connection.
    Idempotent,
    /// Proposals and admin changes: the first copy may have committed, so the caller decides.
    Never,
}

pub struct Shared {
    socket_path: PathBuf,
    timeout_ms: AtomicU32,
    linearizable: AtomicBool,
    next_request_id: AtomicU64,
    connection: Mutex<Option<Arc<Connection>>>,
    closed: AtomicBool,
}

pub struct Client {
    /// Key of this client's messages in the per-thread last-error table.
    pub key: u64,
    pub shared: Arc<Shared>,
    pub cache: RingCache,
}

impl Client {
    /// Connects now, so that a wrong path or a down daemon shows at once.
    pub fn connect(socket_path: PathBuf) -> Result<Client> {
        let shared = Arc::new(Shared {
            socket_path,
            timeout_ms: AtomicU32::new(RINGRAFT_DEFAULT_TIMEOUT_MS),
            linearizable: AtomicBool::new(false),
            next_request_id: AtomicU64::new(1),
            connection: Mutex::new(None),
            closed: AtomicBool::new(false),
        });
        shared.connection(shared.deadline())?;
        Ok(Client {
            key: NEXT_CLIENT_KEY.fetch_add(1, Ordering::Relaxed),
            shared,
            cache: RingCache::default(),
        })
    }

    /// Ends the connection and stops the cache's refresher; later calls fail with `Closed`.
    pub fn close(&self) {
        // Closed first, so the refresher cannot reconnect; killing the connection then makes
        // its call in flight (if any) return at once, so joining it is quick.
        self.shared.closed.store(true, Ordering::Release);
        let connection = self
            .shared
            .connection
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(connection) = connection {
            connection.kill(Error::new(Status::Closed, "the client was closed").into());
        }
        self.cache.disable();
    }
}

impl Shared {
    pub fn set_timeout_ms(&self, timeout_ms: u32) {
        self.timeout_ms.store(timeout_ms, Ordering::Relaxed);
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.timeout_ms.load(Ordering::Relaxed)))
    }

    pub fn deadline(&self) -> Instant {
        Instant::now() + self.timeout()
    }

    pub fn set_linearizable(&self, linearizable: bool) {
        self.linearizable.store(linearizable, Ordering::Relaxed);
    }

    pub fn linearizable(&self) -> bool {
        self.linearizable.load(Ordering::Relaxed)
    }

    pub fn next_request_id(&self) -> u64 {
        self.next_request_id.fetch_add(1, Ordering::Relaxed)
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::new(Status::Closed, "the client was closed"));
        }
        Ok(())
    }

    /// The live connection, opening a new one if there is none or the last one died (the
    /// daemon restarted, or dropped us).
    pub fn connection(&self, deadline: Instant) -> Result<Arc<Connection>> {
        self.check_open()?;
        let mut current = self.connection.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(connection) = current.as_ref() {
            if !connection.is_dead() {
                return Ok(Arc::clone(connection));
            }
        }
        *current = None;
        let connection = Arc::new(Connection::open(&self.socket_path, deadline)?);
        *current = Some(Arc::clone(&connection));
        Ok(connection)
    }

    /// A new connection, retried with backoff until `deadline` while the daemon is unreachable:
    /// used after a connection died under a read, when the daemon is most likely restarting.
    fn reconnect_until(&self, deadline: Instant) -> Result<Arc<Connection>> {
        let mut backoff = RECONNECT_BACKOFF_MIN;
        loop {
            match self.connection(deadline) {
                Err(error)
                    if error.status == Status::Unavailable
                        && Instant::now() + backoff < deadline =>
                {
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(RECONNECT_BACKOFF_MAX);
                }
                other => return other,
            }
        }
    }

    /// Sends one request and waits for its answer until `deadline`; an `Error` answer becomes
    /// `Err`. A read that never fully reached a live daemon is sent on a new connection; a read
    /// whose connection died while it waited for the answer is sent once more; a proposal or an
    /// admin change is never sent twice (one found stale before sending goes to a new
    /// connection), and whatever was lost in flight is reported.
    pub fn call(&self, request: Request, retry: Retry, deadline: Instant) -> Result<Response> {
        let mut connection = self.connection(deadline)?;
        if retry == Retry::Never && connection.probe_closed() {
            connection = self.connection(deadline)?;
        }
        let (connection, id) =
            self.send_once_more_if_undelivered(connection, &request, retry, deadline)?;
        match self.wait_on(&connection, id, deadline) {
            Err(error)
                if retry == Retry::Idempotent
                    && connection.is_dead()
                    && error.status == Status::Unavailable =>
            {
                let fresh = self.reconnect_until(deadline).map_err(|reconnect| {
                    Error::new(
                        reconnect.status,
                        format!(
                            "{}; reconnecting failed: {}",
                            error.message, reconnect.message
                        ),
                    )
                })?;
                let (fresh, id) =
                    self.send_once_more_if_undelivered(fresh, &request, retry, deadline)?;
                self.wait_on(&fresh, id, deadline)
            }
            Err(error) if connection.is_dead() && error.status == Status::Unavailable => {
                Err(Error::unavailable(format!(
                    "{}; the request may or may not have taken effect, it was not sent again",
                    error.message
                )))
            }
            other => other,
        }
    }

    /// Sends `request`; if it is a read and the write failed because the connection was gone
    /// (so no live daemon received a whole frame), sends it once more on a new connection.
    fn send_once_more_if_undelivered(
        &self,
        connection: Arc<Connection>,
        request: &Request,
        retry: Retry,
        deadline: Instant,
    ) -> Result<(Arc<Connection>, u64)> {
        self.check_open()?;
        let id = self.next_request_id();
        match connection.send(id, request.clone(), false, deadline) {
            Ok(()) => Ok((connection, id)),
            Err(error)
                if retry == Retry::Idempotent
                    && connection.is_dead()
                    && error.status == Status::Unavailable =>
            {
                let fresh = self.connection(deadline)?;
                let id = self.next_request_id();
                fresh.send(id, request.clone(), false, deadline)?;
                Ok((fresh, id))
            }
            Err(error) if connection.is_dead() && error.status == Status::Unavailable => {
                Err(Error::unavailable(format!(
                    "{}; the request did not reach the daemon whole and was not sent again",
                    error.message
                )))
            }
            Err(error) => Err(error.into()),
        }
    }

    fn wait_on(&self, connection: &Connection, id: u64, deadline: Instant) -> Result<Response> {
        match connection.wait_answer(id, deadline).map_err(Error::from)? {
            Response::Error { status, message } => Err(Error::new(status, message)),
            response => Ok(response),
        }
    }
}

/// The error for an answer of the wrong kind (a daemon bug or a protocol mismatch).
pub fn unexpected(what: &str, response: &Response) -> Error {
    Error::new(
        Status::Malformed,
        format!("the daemon answered {what} with an unexpected message: {response:?}"),
    )
}
