//! Per-key registers: a linearizable register per key, replicated by CASPaxos among the key's
//! ring replicas (docs/paxos.md). Versions count successful writes; 0 means absent.

use std::time::Instant;

use ringraft_proto::{Request, Status};

use super::write_out;
use super::{guarded_value, input_bytes, key_bytes, require_out, ringraft_client, with_client};
use crate::client::{Client, Retry};
use crate::error::{Error, Result};
use crate::status::ringraft_status;
use crate::types::ringraft_kv_entry;

/// The daemon's budget for a register round, and when the call stops waiting for its answer:
/// as ringraft_propose() with `timeout_ms` 0, the round gets the client timeout and the answer
/// is awaited that long again, so the daemon's own RINGRAFT_TIMEOUT arrives before ours.
fn round_timeout(client: &Client) -> (u32, Instant) {
    let round = client.shared.timeout();
    let round_ms = u32::try_from(round.as_millis()).unwrap_or(u32::MAX);
    (round_ms, Instant::now() + round + client.shared.timeout())
}

/// Sends a register write (never twice) and turns its answer into the new version; on
/// RINGRAFT_CONFLICT `*version` (if not NULL) receives the current version.
fn write(client: &Client, request: Request, what: &str, version: *mut u64) -> Result<()> {
    let (_, deadline) = round_timeout(client);
    let response = client
        .shared
        .call(request, Retry::Never, deadline)
        .map_err(|error| match error.status {
            Status::Timeout => Error::new(
                error.status,
                format!(
                    "{}; the write may or may not have taken effect (read the register before \
                     retrying)",
                    error.message
                ),
            ),
            _ => error,
        })?;
    match ::ringraft_client::kv_written(response, what) {
        Ok(written) => {
            // SAFETY: `version` is NULL or a caller's u64, as the header requires.
            unsafe { write_out(version, written.version) };
            Ok(())
        }
        Err(error) => {
            if let Some(current) = error.current_version {
                // SAFETY: as above.
                unsafe { write_out(version, current) };
            }
            Err(error.into())
        }
    }
}

/// Reads the register of `key` (the `key_len` bytes at `key`) linearizably: the answer reflects
/// every write that completed before the call began. On success `*out` holds the value, its
/// version (at least 1) and the ring epoch of the answer.
///
/// Blocks: yes, one register round (the daemon may take up to the client timeout for it; the
/// call waits up to twice the client timeout for the answer).
/// Ownership: `key` is only read during the call. The caller owns the struct `*out` (it may be
/// uninitialized); the call always writes it, zeroed on failure. After success the library owns
/// `out->value` until ringraft_kv_entry_free(out), which the caller must call (also before
/// reusing the struct for another ringraft_kv_get(): else the first value leaks). Freeing a
/// zeroed entry is harmless.
/// Errors: RINGRAFT_NOT_FOUND (the register is absent: never written, or deleted; `*out` zeroed),
/// RINGRAFT_INVALID_ARGUMENT (`client`, `key` or `out` NULL, `key_len` 0), RINGRAFT_TOO_LARGE
/// (`key_len` over 4096 bytes; nothing sent), RINGRAFT_TIMEOUT, RINGRAFT_UNAVAILABLE (the
/// daemon cannot be reached, or the key's replicas have no majority), RINGRAFT_BUSY,
/// RINGRAFT_SHUTTING_DOWN, RINGRAFT_CLOSED.
#[no_mangle]
pub unsafe extern "C" fn ringraft_kv_get(
    client: *mut ringraft_client,
    key: *const u8,
    key_len: usize,
    out: *mut ringraft_kv_entry,
) -> ringraft_status {
    with_client(client, |client| {
        require_out(out, "out")?;
        write_out(out, ringraft_kv_entry::zeroed());
        let key = key_bytes(key, key_len)?;
        let (timeout_ms, deadline) = round_timeout(client);
        let request = Request::KvGet {
            key: key.to_vec(),
            timeout_ms,
        };
        let response = client.shared.call(request, Retry::Idempotent, deadline)?;
        let entry = ::ringraft_client::kv_entry(response)?;
        let Some(value) = entry.value else {
            return Err(Error::new(
                Status::NotFound,
                format!(
                    "the register is absent (never written, or deleted; epoch {})",
                    entry.epoch
                ),
            ));
        };
        let value_len = value.len();
        let value = if value.is_empty() {
            std::ptr::null_mut()
        } else {
            Box::into_raw(value.into_boxed_slice()).cast::<u8>()
        };
        write_out(
            out,
            ringraft_kv_entry {
                value,
                value_len,
                version: entry.version,
                epoch: entry.epoch,
            },
        );
        Ok(())
    })
}

/// Writes `value` (the `value_len` bytes at `value`) to the register of `key` if its version is
/// `expected_version`: 0 writes only if the register is absent; RINGRAFT_KV_ANY_VERSION writes
/// whatever the version is (a put). On success `*version` receives the new version (the
/// previous one plus 1). An empty value (`value_len` 0, `value` may then be NULL) is a value
/// like any other: the register is present, with a version.
///
/// Never sent twice. After RINGRAFT_TIMEOUT or RINGRAFT_UNAVAILABLE the outcome is unknown: the
/// write may have taken effect. Read the register (ringraft_kv_get()) before retrying.
///
/// Blocks: yes, one register round (the daemon may take up to the client timeout for it; the
/// call waits up to twice the client timeout for the answer).
/// Ownership: `key` and `value` are only read during the call; `version` belongs to the caller
/// (may be NULL). `*version` is written on success and on RINGRAFT_CONFLICT only.
/// Errors: RINGRAFT_CONFLICT (the version is not `expected_version`; nothing was written and
/// `*version` receives the current version, 0 if absent), RINGRAFT_INVALID_ARGUMENT (`client` or
/// `key` NULL, `key_len` 0, `value` NULL with `value_len` > 0), RINGRAFT_TOO_LARGE (`key_len`
/// over 4096 bytes, or `value_len` over the daemon's value limit, 64 KiB by default; nothing
/// sent), RINGRAFT_TIMEOUT, RINGRAFT_UNAVAILABLE, RINGRAFT_BUSY, RINGRAFT_SHUTTING_DOWN,
/// RINGRAFT_CLOSED.
#[no_mangle]
pub unsafe extern "C" fn ringraft_kv_cas(
    client: *mut ringraft_client,
    key: *const u8,
    key_len: usize,
    expected_version: u64,
    value: *const u8,
    value_len: usize,
    version: *mut u64,
) -> ringraft_status {
    with_client(client, |client| {
        let key = key_bytes(key, key_len)?;
        let value = input_bytes(value, value_len, "value")?;
        let (timeout_ms, _) = round_timeout(client);
        let request = Request::KvCas {
            key: key.to_vec(),
            expected_version,
            value: value.to_vec(),
            timeout_ms,
        };
        write(client, request, "kv cas", version)
    })
}

/// Deletes the register of `key` if its version is `expected_version` (RINGRAFT_KV_ANY_VERSION:
/// whatever it is). Afterwards the register is absent (version 0); the next write gives it
/// version 1 again. Deleting an absent register succeeds when `expected_version` is 0 or
/// RINGRAFT_KV_ANY_VERSION.
///
/// Never sent twice; after RINGRAFT_TIMEOUT or RINGRAFT_UNAVAILABLE the outcome is unknown (read
/// the register before retrying).
///
/// Blocks: yes, one register round (the daemon may take up to the client timeout for it; the
/// call waits up to twice the client timeout for the answer).
/// Ownership: `key` is only read during the call.
/// Errors: RINGRAFT_CONFLICT (the version is not `expected_version`; nothing was deleted; the
/// message names the current version), RINGRAFT_INVALID_ARGUMENT (`client` or `key` NULL,
/// `key_len` 0), RINGRAFT_TOO_LARGE (`key_len` over 4096 bytes), RINGRAFT_TIMEOUT,
/// RINGRAFT_UNAVAILABLE, RINGRAFT_BUSY, RINGRAFT_SHUTTING_DOWN, RINGRAFT_CLOSED.
#[no_mangle]
pub unsafe extern "C" fn ringraft_kv_delete(
    client: *mut ringraft_client,
    key: *const u8,
    key_len: usize,
    expected_version: u64,
) -> ringraft_status {
    with_client(client, |client| {
        let key = key_bytes(key, key_len)?;
        let (timeout_ms, _) = round_timeout(client);
        let request = Request::KvDelete {
            key: key.to_vec(),
            expected_version,
            timeout_ms,
        };
        write(client, request, "kv delete", std::ptr::null_mut())
    })
}

/// Frees the value ringraft_kv_get() put in `entry` and zeroes the entry. Accepts NULL and
/// zeroed entries; calling it twice on the same entry is harmless. Never fails, never blocks.
#[no_mangle]
pub unsafe extern "C" fn ringraft_kv_entry_free(entry: *mut ringraft_kv_entry) {
    let Some(entry) = entry.as_mut() else { return };
    let taken = std::mem::replace(entry, ringraft_kv_entry::zeroed());
    if !taken.value.is_null() {
        // SAFETY: a non-NULL value was made by ringraft_kv_get() from a Box<[u8]> of
        // `value_len` bytes, and the entry was zeroed above, so it is freed once.
        let value = Box::from_raw(std::ptr::slice_from_raw_parts_mut(
            taken.value,
            taken.value_len,
        ));
        guarded_value((), || drop(value));
    }
}
