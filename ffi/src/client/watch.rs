//! A running WatchLog behind `ringraft_watch *`. It remembers the next index it has not
//! delivered, so when the connection is lost (daemon restart) or its backlog overflows it simply
//! watches again from there: the caller sees every record once, in order.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ringraft_proto::{LogRecord, Request, Response, Status};

use super::{unexpected, Shared};
use crate::error::{Error, Result};
use ringraft_client::{Connection, StreamItem};

/// How long closing a watch waits to hand its Cancel to the socket.
const CANCEL_SEND_TIMEOUT: Duration = Duration::from_millis(100);
/// Re-subscriptions one ringraft_watch_next() call may make (after a lost connection or an
/// overflowed backlog) before it reports the error instead.
const RESUBSCRIBES_PER_CALL_MAX: usize = 2;

/// One batch of records from the watch, with the node's log bounds when it sent them.
pub struct WatchBatch {
    pub records: Vec<LogRecord>,
    pub first_index: u64,
    pub last_index: u64,
}

pub struct Watch {
    shared: Arc<Shared>,
    /// The connection and request id of the current subscription, if any.
    subscription: Option<(Arc<Connection>, u64)>,
    /// The lowest index not yet handed to the caller.
    next_index: u64,
}

impl Watch {
    /// Subscribes from `from` and returns once the daemon has accepted the watch: a refusal it
    /// decides at once (`Busy` past its per-connection limit of watches) is the `Err`. One round
    /// trip.
    pub fn start(shared: Arc<Shared>, from: u64) -> Result<Watch> {
        let mut watch = Watch {
            shared,
            subscription: None,
            next_index: from,
        };
        let deadline = watch.shared.deadline();
        watch.subscribe(deadline)?;
        Ok(watch)
    }

    /// Watches from `next_index` on the live connection, through the client crate's
    /// `start_watch`, so a refusal comes back here rather than from a later `next`.
    fn subscribe(&mut self, deadline: Instant) -> Result<()> {
        self.cancel();
        let connection = self.shared.connection(deadline)?;
        let id = self.shared.next_request_id();
        let barrier_id = self.shared.next_request_id();
        connection.start_watch(id, self.next_index, barrier_id, deadline)?;
        self.subscription = Some((connection, id));
        Ok(())
    }

    /// The next non-empty batch, waiting until `deadline` (`Timeout` if none came).
    pub fn next(&mut self, deadline: Instant) -> Result<WatchBatch> {
        let mut resubscribes = 0;
        loop {
            let (connection, id) = match &self.subscription {
                Some((connection, id)) => (Arc::clone(connection), *id),
                None => {
                    self.subscribe(deadline)?;
                    continue;
                }
            };
            let item = connection.next_answer(id, deadline).map_err(Error::from);
            let resubscribe = match item {
                Ok(StreamItem::Answer(Response::LogRecords {
                    records,
                    first_index,
                    last_index,
                })) => {
                    // Records at or past next_index only: a resubscription may overlap.
                    let records: Vec<LogRecord> = records
                        .into_iter()
                        .filter(|record| record.index >= self.next_index)
                        .collect();
                    let Some(last) = records.last() else { continue };
                    self.next_index = last.index.saturating_add(1);
                    return Ok(WatchBatch {
                        records,
                        first_index,
                        last_index,
                    });
                }
                Ok(StreamItem::Answer(Response::Error { status, message })) => {
                    // The daemon ended this watch; a later call subscribes afresh.
                    connection.forget(id);
                    self.subscription = None;
                    return Err(Error::new(status, message));
                }
                Ok(StreamItem::Answer(other)) => return Err(unexpected("WatchLog", &other)),
                Ok(StreamItem::Overflowed) => {
                    Error::new(Status::Busy, "the watch fell more than its backlog behind")
                }
                Err(error) if connection.is_dead() && error.status == Status::Unavailable => error,
                Err(error) => return Err(error),
            };
            resubscribes += 1;
            if resubscribes > RESUBSCRIBES_PER_CALL_MAX {
                return Err(resubscribe);
            }
            self.subscribe(deadline).map_err(|e| {
                Error::new(
                    e.status,
                    format!(
                        "{}; watching again failed: {}",
                        resubscribe.message, e.message
                    ),
                )
            })?;
        }
    }

    /// Stops the daemon's side of the current subscription without waiting for its answer.
    fn cancel(&mut self) {
        if let Some((connection, id)) = self.subscription.take() {
            connection.forget(id);
            if connection.is_dead() {
                return;
            }
            let cancel_id = self.shared.next_request_id();
            let deadline = Instant::now() + CANCEL_SEND_TIMEOUT;
            if connection
                .send(
                    cancel_id,
                    Request::Cancel { request_id: id },
                    false,
                    deadline,
                )
                .is_ok()
            {
                // The answer (Done) needs no reader: drop it when it comes.
                connection.forget(cancel_id);
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.cancel();
    }
}
