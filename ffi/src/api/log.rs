//! The application log: propose, read, watch.

use std::ffi::c_void;
use std::time::{Duration, Instant};

use ringraft_proto::{LogRecord, Request, Response, Status};

use super::{
    guarded, guarded_value, input_bytes, require_out, ringraft_client, with_client, write_out,
};
use crate::client::{unexpected, Retry, Watch};
use crate::error::{Error, NO_CLIENT};
use crate::status::ringraft_status;
use crate::types::{ringraft_log_batch, ringraft_log_record};

/// What `ringraft_log_batch.internal` points to: the records' bytes and the record array.
struct BatchStorage {
    /// Kept only to own the bytes the records point into.
    _data: Vec<Vec<u8>>,
    records: Vec<ringraft_log_record>,
}

fn empty_batch() -> ringraft_log_batch {
    ringraft_log_batch {
        records: std::ptr::null(),
        count: 0,
        first_index: 0,
        last_index: 0,
        internal: std::ptr::null_mut(),
    }
}

fn into_batch(records: Vec<LogRecord>, first_index: u64, last_index: u64) -> ringraft_log_batch {
    let data: Vec<Vec<u8>> = records.iter().map(|r| r.data.clone()).collect();
    let views = records
        .iter()
        .zip(&data)
        .map(|(record, bytes)| ringraft_log_record {
            index: record.index,
            // Heap buffers do not move when the Vec of them moves into the storage box.
            data: if bytes.is_empty() {
                std::ptr::null()
            } else {
                bytes.as_ptr()
            },
            len: bytes.len(),
        })
        .collect::<Vec<_>>();
    let storage = Box::new(BatchStorage {
        _data: data,
        records: views,
    });
    ringraft_log_batch {
        records: if storage.records.is_empty() {
            std::ptr::null()
        } else {
            storage.records.as_ptr()
        },
        count: storage.records.len(),
        first_index,
        last_index,
        internal: Box::into_raw(storage).cast::<c_void>(),
    }
}

/// Commits `data` (the `len` bytes at `data`) in the cluster's one order and waits until it is
/// committed and applied on this node; `*index` receives its Raft index, its place in the log.
/// The daemon forwards it to the leader. `timeout_ms` bounds the daemon's wait for the commit
/// (0: the client timeout); the call itself waits at most `timeout_ms` plus the client timeout.
///
/// Never sent twice: if the connection is lost while the proposal is in flight (daemon
/// restart) the call returns RINGRAFT_UNAVAILABLE and the proposal may or may not have committed;
/// likewise after RINGRAFT_TIMEOUT. Read the log to find out.
///
/// Blocks: yes, until committed (up to `timeout_ms` + the client timeout).
/// Ownership: `data` is only read during the call; `index` belongs to the caller (may be NULL).
/// Errors: RINGRAFT_INVALID_ARGUMENT (`client` NULL, `data` NULL with `len` > 0),
/// RINGRAFT_TOO_LARGE (over the daemon's proposal limit or the 4 MiB frame limit),
/// RINGRAFT_TIMEOUT, RINGRAFT_NO_LEADER, RINGRAFT_UNAVAILABLE, RINGRAFT_SHUTTING_DOWN,
/// RINGRAFT_BUSY, RINGRAFT_CLOSED.
#[no_mangle]
pub unsafe extern "C" fn ringraft_propose(
    client: *mut ringraft_client,
    data: *const u8,
    len: usize,
    timeout_ms: u32,
    index: *mut u64,
) -> ringraft_status {
    with_client(client, |client| {
        let data = input_bytes(data, len, "data")?;
        let commit_timeout = if timeout_ms == 0 {
            client.shared.timeout()
        } else {
            Duration::from_millis(u64::from(timeout_ms))
        };
        let request = Request::Propose {
            data: data.to_vec(),
            timeout_ms: u32::try_from(commit_timeout.as_millis()).unwrap_or(u32::MAX),
        };
        let deadline = Instant::now() + commit_timeout + client.shared.timeout();
        match client.shared.call(request, Retry::Never, deadline)? {
            Response::Proposed { index: committed } => {
                write_out(index, committed);
                Ok(())
            }
            other => Err(unexpected("Propose", &other)),
        }
    })
}

/// Reads up to `max` committed records with index >= `from` into `*out`, in index order. An
/// empty batch means nothing at or after `from` yet. `out->first_index` and `out->last_index`
/// give the range the node keeps.
///
/// Blocks: yes, one round trip (up to the client timeout).
/// Ownership: the caller owns the `ringraft_log_batch` struct (it may be uninitialized); on
/// success the library owns the records and their bytes until ringraft_log_batch_free(out),
/// which the caller must call. On failure `*out` is set empty (freeing it is harmless).
/// Errors: RINGRAFT_INVALID_ARGUMENT (`client` or `out` NULL, `max` 0, `from` 0: indexes start
/// at 1), RINGRAFT_COMPACTED (`from` is older than the node keeps), RINGRAFT_UNAVAILABLE,
/// RINGRAFT_TIMEOUT, RINGRAFT_CLOSED.
#[no_mangle]
pub unsafe extern "C" fn ringraft_read_log(
    client: *mut ringraft_client,
    from: u64,
    max: u32,
    out: *mut ringraft_log_batch,
) -> ringraft_status {
    with_client(client, |client| {
        require_out(out, "out")?;
        write_out(out, empty_batch());
        if max == 0 {
            return Err(Error::invalid("max must be at least 1"));
        }
        let request = Request::ReadLog { from, max };
        match client
            .shared
            .call(request, Retry::Idempotent, client.shared.deadline())?
        {
            Response::LogRecords {
                records,
                first_index,
                last_index,
            } => {
                write_out(out, into_batch(records, first_index, last_index));
                Ok(())
            }
            other => Err(unexpected("ReadLog", &other)),
        }
    })
}

/// Frees the records a call put in `batch` and sets it empty. Accepts NULL and empty batches;
/// calling it twice on the same batch is harmless. Never fails, never blocks.
#[no_mangle]
pub unsafe extern "C" fn ringraft_log_batch_free(batch: *mut ringraft_log_batch) {
    let Some(batch) = batch.as_mut() else { return };
    let internal = std::mem::replace(&mut batch.internal, std::ptr::null_mut());
    *batch = empty_batch();
    if !internal.is_null() {
        // SAFETY: `internal` was made by into_batch() from a Box<BatchStorage> and was reset
        // above, so it is freed once.
        let storage = Box::from_raw(internal.cast::<BatchStorage>());
        guarded_value((), || drop(storage));
    }
}

/// A running watch of the application log: every record from a starting index on, those
/// committed already and those committed later, in order. Opaque; use from one thread at a time.
pub struct ringraft_watch {
    watch: Watch,
    client_key: u64,
}

/// Starts watching the log from index `from` (1 for everything the node still keeps). Records
/// come out of ringraft_watch_next(). The watch survives daemon restarts: it resumes after the
/// last record it delivered, so each record comes out once, in order.
///
/// Blocks: one round trip (up to the client timeout): the call returns once the daemon has
/// accepted the watch, so a refusal it decides at once comes back here. RINGRAFT_COMPACTED
/// (`from` is older than the node keeps) may come from here or from the first
/// ringraft_watch_next().
/// Ownership: the caller owns `*out` and must release it with ringraft_watch_close() before or
/// after ringraft_close() of its client.
/// Errors: RINGRAFT_INVALID_ARGUMENT (`client` or `out` NULL), RINGRAFT_BUSY (the client's
/// connection already runs as many watches as the daemon's limits.watches_per_connection_max
/// allows, 16 by default; close one, or use another client), RINGRAFT_COMPACTED,
/// RINGRAFT_UNAVAILABLE, RINGRAFT_TIMEOUT, RINGRAFT_CLOSED.
#[no_mangle]
pub unsafe extern "C" fn ringraft_watch_log(
    client: *mut ringraft_client,
    from: u64,
    out: *mut *mut ringraft_watch,
) -> ringraft_status {
    with_client(client, |client| {
        require_out(out, "out")?;
        write_out(out, std::ptr::null_mut());
        let watch = Watch::start(client.shared.clone(), from)?;
        write_out(
            out,
            Box::into_raw(Box::new(ringraft_watch {
                watch,
                client_key: client.key,
            })),
        );
        Ok(())
    })
}

/// Waits up to `timeout_ms` milliseconds for the next records of the watch and puts them in
/// `*out` (at least one record on success). Its messages go to ringraft_last_error() of the
/// watch's client.
///
/// Blocks: yes, up to `timeout_ms` (0 takes records already received, waiting at most 1 ms).
/// Ownership: as ringraft_read_log(): the caller owns the struct, must call
/// ringraft_log_batch_free(out) after success; on failure `*out` is set empty.
/// Errors: RINGRAFT_INVALID_ARGUMENT (`watch` or `out` NULL), RINGRAFT_TIMEOUT (no record in
/// time; the watch goes on), RINGRAFT_COMPACTED (the watch's next index was compacted away; the
/// watch ended), RINGRAFT_UNAVAILABLE (the daemon is gone and did not come back),
/// RINGRAFT_CLOSED (the client was closed).
#[no_mangle]
pub unsafe extern "C" fn ringraft_watch_next(
    watch: *mut ringraft_watch,
    timeout_ms: u32,
    out: *mut ringraft_log_batch,
) -> ringraft_status {
    let Some(watch) = watch.as_mut() else {
        return guarded(NO_CLIENT, || Err(Error::invalid("watch is NULL")));
    };
    guarded(watch.client_key, || {
        require_out(out, "out")?;
        write_out(out, empty_batch());
        let deadline = Instant::now() + Duration::from_millis(u64::from(timeout_ms.max(1)));
        let batch = watch.watch.next(deadline)?;
        if batch.records.is_empty() {
            return Err(Error::new(Status::Internal, "empty watch batch"));
        }
        write_out(
            out,
            into_batch(batch.records, batch.first_index, batch.last_index),
        );
        Ok(())
    })
}

/// Stops the watch (the daemon is told, without waiting for its answer) and frees it. Accepts
/// NULL. Never fails; blocks at most 100 ms to send the cancellation.
#[no_mangle]
pub unsafe extern "C" fn ringraft_watch_close(watch: *mut ringraft_watch) {
    if !watch.is_null() {
        // SAFETY: the caller hands back a pointer from ringraft_watch_log(), once.
        let watch = Box::from_raw(watch);
        let _ = guarded(NO_CLIENT, || {
            drop(watch);
            Ok(())
        });
    }
}
