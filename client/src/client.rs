//! [`Client`]: a [`Connection`] with request ids and a timeout, and one typed method per request.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ringraft_proto::{LogRecord, Member, NodeId, Request, Response, ServerLimits, StatusInfo};

use crate::conn::{Connection, StreamItem};
use crate::error::{Error, Result};
use crate::kv::{kv_entry, kv_written, KvEntry, KvWritten, KV_ANY_VERSION};

/// How long "no timeout" waits: long enough to be forever for a command line or a test, short
/// enough that `Instant + wait` never overflows.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// One connection to a daemon. Every method takes `&self`: threads may share a client and have
/// many requests in flight on its one connection.
pub struct Client {
    connection: Connection,
    next_id: AtomicU64,
    /// How long a call waits for its answer; `None`: as long as it takes.
    timeout: Mutex<Option<Duration>>,
}

/// The owner of a key, and the ring epoch of the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub epoch: u64,
    pub member: Member,
}

/// The whole ring, as `Request::Ring` answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingAnswer {
    pub epoch: u64,
    /// `ringraft_ring` encoding: rebuilds the same ring in this process.
    pub ring: Vec<u8>,
    pub members: Vec<Member>,
    pub replication_factor: u32,
}

/// A batch of committed records, and the readable range around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogBatch {
    pub records: Vec<LogRecord>,
    /// The lowest index still readable.
    pub first_index: u64,
    /// The highest committed index applied on the node.
    pub last_index: u64,
}

impl Client {
    /// Connects to the daemon's socket and completes the handshake, waiting at most `timeout`
    /// for it and, later, for each answer (`None`: no limit).
    pub fn connect(path: &Path, timeout: Option<Duration>) -> Result<Client> {
        let deadline = deadline_after(timeout);
        Ok(Client {
            connection: Connection::open(path, deadline)?,
            next_id: AtomicU64::new(1),
            timeout: Mutex::new(timeout),
        })
    }

    /// Changes how long later calls wait for their answer (`None`: forever, as a watch does).
    pub fn set_timeout(&self, timeout: Option<Duration>) {
        *self.timeout.lock().unwrap_or_else(|p| p.into_inner()) = timeout;
    }

    /// What the daemon accepts, as it said in the handshake.
    pub fn limits(&self) -> ServerLimits {
        self.connection.limits()
    }

    /// The connection underneath, for callers that manage ids and deadlines themselves.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    fn deadline(&self) -> Instant {
        deadline_after(*self.timeout.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends one request; returns its id, for [`Client::wait`]. An error here means the request
    /// was not sent whole, so it cannot take effect.
    pub fn send(&self, request: Request) -> Result<u64> {
        let id = self.next_id();
        self.connection.send(id, request, false, self.deadline())?;
        Ok(id)
    }

    /// The answer to request `id` as the daemon gave it (an `Error` answer included); `Err` when
    /// no answer came (timeout, connection lost): the request may or may not have taken effect.
    pub fn wait(&self, id: u64) -> Result<Response> {
        self.connection.wait_answer(id, self.deadline())
    }

    /// Sends `request` and waits for its answer; an `Error` answer becomes `Err`.
    pub fn call(&self, request: Request) -> Result<Response> {
        let id = self.send(request)?;
        into_result(self.wait(id)?)
    }

    pub fn status(&self) -> Result<StatusInfo> {
        match self.call(Request::Status)? {
            Response::Status(status) => Ok(status),
            other => Err(Error::unexpected("Status", &other)),
        }
    }

    /// The members and the ring epoch.
    pub fn members(&self, linearizable: bool) -> Result<(u64, Vec<Member>)> {
        match self.call(Request::Members { linearizable })? {
            Response::Members { epoch, members } => Ok((epoch, members)),
            other => Err(Error::unexpected("Members", &other)),
        }
    }

    pub fn ring(&self, linearizable: bool) -> Result<RingAnswer> {
        match self.call(Request::Ring { linearizable })? {
            Response::Ring {
                epoch,
                ring,
                members,
                replication_factor,
            } => Ok(RingAnswer {
                epoch,
                ring,
                members,
                replication_factor,
            }),
            other => Err(Error::unexpected("Ring", &other)),
        }
    }

    pub fn owner(&self, key: &[u8], linearizable: bool) -> Result<Owner> {
        let request = Request::Owner {
            key: key.to_vec(),
            linearizable,
        };
        match self.call(request)? {
            Response::Owner { epoch, member } => Ok(Owner { epoch, member }),
            other => Err(Error::unexpected("Owner", &other)),
        }
    }

    /// The `n` members that hold `key`, and the ring epoch.
    pub fn replicas(&self, key: &[u8], n: u32, linearizable: bool) -> Result<(u64, Vec<Member>)> {
        let request = Request::Replicas {
            key: key.to_vec(),
            n,
            linearizable,
        };
        match self.call(request)? {
            Response::Replicas { epoch, members } => Ok((epoch, members)),
            other => Err(Error::unexpected("Replicas", &other)),
        }
    }

    /// Commits `data`; returns its index in the cluster's one order. Never sent twice: a lost
    /// answer is an error, and the proposal may still commit.
    pub fn propose(&self, data: &[u8], timeout_ms: u32) -> Result<u64> {
        let request = Request::Propose {
            data: data.to_vec(),
            timeout_ms,
        };
        match self.call(request)? {
            Response::Proposed { index } => Ok(index),
            other => Err(Error::unexpected("Propose", &other)),
        }
    }

    /// The register of `key` (a linearizable read; `value` None and version 0 when absent).
    /// `timeout_ms` bounds the daemon's round; the answer is awaited within the client timeout.
    pub fn kv_get(&self, key: &[u8], timeout_ms: u32) -> Result<KvEntry> {
        let request = Request::KvGet {
            key: key.to_vec(),
            timeout_ms,
        };
        kv_entry(self.call(request)?)
    }

    /// Writes `value` if the register's version is `expected_version` (0: only if absent;
    /// [`KV_ANY_VERSION`]: whatever it is); returns the new version. A mismatch is a
    /// `Conflict` error whose `current_version` is the register's. Never sent twice: a lost
    /// answer is an error, and the write may still have taken effect (read before retrying).
    pub fn kv_cas(
        &self,
        key: &[u8],
        expected_version: u64,
        value: &[u8],
        timeout_ms: u32,
    ) -> Result<KvWritten> {
        let request = Request::KvCas {
            key: key.to_vec(),
            expected_version,
            value: value.to_vec(),
            timeout_ms,
        };
        kv_written(self.call(request)?, "kv cas")
    }

    /// An unconditional write: [`Client::kv_cas`] with [`KV_ANY_VERSION`].
    pub fn kv_put(&self, key: &[u8], value: &[u8], timeout_ms: u32) -> Result<KvWritten> {
        self.kv_cas(key, KV_ANY_VERSION, value, timeout_ms)
    }

    /// Deletes the register if its version is `expected_version` ([`KV_ANY_VERSION`]: any);
    /// the version is 0 afterwards. Errors and resending as [`Client::kv_cas`].
    pub fn kv_delete(
        &self,
        key: &[u8],
        expected_version: u64,
        timeout_ms: u32,
    ) -> Result<KvWritten> {
        let request = Request::KvDelete {
            key: key.to_vec(),
            expected_version,
            timeout_ms,
        };
        kv_written(self.call(request)?, "kv delete")
    }

    /// Up to `max` records with index >= `from`.
    pub fn read_log(&self, from: u64, max: u32) -> Result<LogBatch> {
        into_log_batch(self.call(Request::ReadLog { from, max })?, "ReadLog")
    }

    /// Starts a watch: every record with index >= `from`, now and as they commit.
    ///
    /// A watch the daemon refuses at once is an `Err` here, not at the first `next()`: `Busy`
    /// past the daemon's `limits.watches_per_connection_max` (16 by default) running watches on
    /// this connection, `Compacted` when `from` is gone. This costs one round trip.
    pub fn watch_log(&self, from: u64) -> Result<Watch<'_>> {
        let id = self.next_id();
        let barrier = self.next_id();
        self.connection
            .start_watch(id, from, barrier, self.deadline())?;
        Ok(Watch { client: self, id })
    }

    /// Sends an admin request; returns the index of the Raft entry that carried it (0: none).
    pub fn admin(&self, request: Request) -> Result<u64> {
        let name = request.name();
        match self.call(request)? {
            Response::Done { index } => Ok(index),
            other => Err(Error::unexpected(name, &other)),
        }
    }

    pub fn join(
        &self,
        id: NodeId,
        name: &str,
        address: &str,
        zone: &str,
        weight: u32,
    ) -> Result<u64> {
        self.admin(Request::Join {
            id,
            name: name.to_string(),
            address: address.to_string(),
            zone: zone.to_string(),
            weight,
        })
    }

    pub fn remove(&self, id: NodeId) -> Result<u64> {
        self.admin(Request::Remove { id })
    }

    pub fn promote(&self, id: NodeId) -> Result<u64> {
        self.admin(Request::Promote { id })
    }

    pub fn transfer_leader(&self, id: NodeId) -> Result<u64> {
        self.admin(Request::TransferLeader { id })
    }

    pub fn snapshot(&self) -> Result<u64> {
        self.admin(Request::Snapshot)
    }
}

/// A running watch on a [`Client`]'s connection.
pub struct Watch<'a> {
    client: &'a Client,
    id: u64,
}

impl Watch<'_> {
    /// The watch's request id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The next batch, waiting as long as the client's timeout allows. An `Error` answer (the
    /// daemon ended the watch) is `Err`; so is falling behind by more answers than are kept
    /// (`Busy`: watch again from the next index not seen, nothing is lost).
    pub fn next(&self) -> Result<LogBatch> {
        into_log_batch(into_result(self.next_response()?)?, "WatchLog")
    }

    /// The next answer as the daemon gave it (`LogRecords`, or the `Error` that ended the
    /// watch); `Err` when none came in time (`Timeout`: the watch goes on), the connection was
    /// lost, or the watch fell behind (`Busy`).
    pub fn next_response(&self) -> Result<Response> {
        match self
            .client
            .connection
            .next_answer(self.id, self.client.deadline())?
        {
            StreamItem::Answer(response) => Ok(response),
            StreamItem::Overflowed => Err(Error::new(
                ringraft_proto::Status::Busy,
                "the watch fell behind and later records were dropped; watch again from the \
                 next index not seen",
            )),
        }
    }

    /// Stops the watch and waits for the daemon to confirm, so that no record follows.
    pub fn cancel(self) -> Result<()> {
        let result = self.client.call(Request::Cancel {
            request_id: self.id,
        });
        self.client.connection.forget(self.id);
        result.map(|_| ())
    }
}

/// `Response::Error` as `Err`, anything else as `Ok`.
pub fn into_result(response: Response) -> Result<Response> {
    match response {
        Response::Error { status, message } => Err(Error::new(status, message)),
        other => Ok(other),
    }
}

fn into_log_batch(response: Response, what: &str) -> Result<LogBatch> {
    match response {
        Response::LogRecords {
            records,
            first_index,
            last_index,
        } => Ok(LogBatch {
            records,
            first_index,
            last_index,
        }),
        other => Err(Error::unexpected(what, &other)),
    }
}

fn deadline_after(timeout: Option<Duration>) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout.unwrap_or(FOREVER).min(FOREVER))
        .unwrap_or(now + Duration::from_secs(3600))
}
