//! The exported C functions, and the panic boundary and argument checks they all go through.
//! Every export runs its body inside `guarded`, so a Rust panic becomes RINGRAFT_INTERNAL (with
//! a last-error message) instead of unwinding into C.

// Declaration order is the order of the functions in the header, which reads as a manual in
// the order of a program's life: version and errors, connect and settings, queries, ring views,
// proposals and the log, registers, admin last. (Each is its own group so that rustfmt keeps the
// order.)

/// Version, errors, connect, close and settings.
pub mod connect;

/// Cluster status, members, owner and replicas.
pub mod queries;

/// Ring views: a snapshot of the ring to query locally.
pub mod ring;

/// Proposals and the committed log.
pub mod log;

/// Per-key registers: linearizable get, compare-and-set, put and delete.
pub mod kv;

/// Membership and maintenance (needs admin rights on the daemon).
pub mod admin;

use std::any::Any;
use std::ffi::{c_char, CStr};
use std::mem::MaybeUninit;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::client::Client;
use crate::error::{set_last_error, Error, Result, NO_CLIENT};
use crate::status::ringraft_status;

/// A connection to one ringraftd. Opaque: create with ringraft_connect(), free with
/// ringraft_close().
pub struct ringraft_client {
    pub(crate) inner: Client,
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without message".to_owned()
    }
}

/// Runs `body` behind the panic boundary and turns its outcome into a status, recording a
/// failure's message for `ringraft_last_error` under `client_key`.
pub(crate) fn guarded(client_key: u64, body: impl FnOnce() -> Result<()>) -> ringraft_status {
    let error = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return ringraft_status::RINGRAFT_OK,
        Ok(Err(error)) => error,
        Err(payload) => Error::internal(format!(
            "libringraft bug (a Rust panic, caught): {}",
            panic_message(payload.as_ref())
        )),
    };
    set_last_error(client_key, &error);
    error.status.into()
}

/// The panic boundary for exports that return a value instead of a status: a panic yields
/// `fallback`.
pub(crate) fn guarded_value<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

/// `guarded` for calls on a client; a NULL client is refused with RINGRAFT_INVALID_ARGUMENT.
pub(crate) fn with_client(
    client: *const ringraft_client,
    body: impl FnOnce(&Client) -> Result<()>,
) -> ringraft_status {
    if client.is_null() {
        return guarded(NO_CLIENT, || Err(Error::invalid("client is NULL")));
    }
    // SAFETY: non-NULL client pointers come from ringraft_connect() and stay valid until
    // ringraft_close(), as the header requires of callers.
    let client = unsafe { &(*client).inner };
    guarded(client.key, || body(client))
}

/// `len` bytes at `data`; NULL is allowed only with `len` 0.
///
/// # Safety
/// A non-NULL `data` must point to `len` readable bytes that outlive the returned slice.
pub(crate) unsafe fn input_bytes<'a>(data: *const u8, len: usize, what: &str) -> Result<&'a [u8]> {
    if data.is_null() {
        if len == 0 {
            return Ok(&[]);
        }
        return Err(Error::invalid(format!(
            "{what} is NULL but its length is {len}"
        )));
    }
    Ok(std::slice::from_raw_parts(data, len))
}

/// A lookup key: `len` bytes at `key`, never empty.
///
/// # Safety
/// As for `input_bytes`.
pub(crate) unsafe fn key_bytes<'a>(key: *const u8, len: usize) -> Result<&'a [u8]> {
    let key = input_bytes(key, len, "key")?;
    if key.is_empty() {
        return Err(Error::invalid("key is empty"));
    }
    Ok(key)
}

/// The replica count of a replicas call: at least one.
pub(crate) fn replica_count(n: usize) -> Result<usize> {
    if n == 0 {
        return Err(Error::invalid("n must be at least 1"));
    }
    Ok(n)
}

/// The UTF-8 text of a NUL-terminated string.
///
/// # Safety
/// A non-NULL `text` must point to a NUL-terminated string.
pub(crate) unsafe fn input_str<'a>(text: *const c_char, what: &str) -> Result<&'a str> {
    if text.is_null() {
        return Err(Error::invalid(format!("{what} is NULL")));
    }
    CStr::from_ptr(text)
        .to_str()
        .map_err(|_| Error::invalid(format!("{what} is not valid UTF-8")))
}

/// Checks an out-parameter before any work is done, so a NULL one fails without side effects.
pub(crate) fn require_out<T>(out: *mut T, what: &str) -> Result<()> {
    if out.is_null() {
        return Err(Error::invalid(format!("{what} is NULL")));
    }
    Ok(())
}

/// Writes `value` through an out-pointer that `require_out` accepted (or skips a NULL optional
/// one). The target may be uninitialized memory: it is written, never read.
///
/// # Safety
/// A non-NULL `out` must be valid for a write of `T` and aligned.
pub(crate) unsafe fn write_out<T>(out: *mut T, value: T) {
    if !out.is_null() {
        out.write(value);
    }
}

/// The caller's array of `len` elements at `out`, possibly uninitialized.
///
/// # Safety
/// A non-NULL `out` must be valid for writes of `len` elements of `T`.
pub(crate) unsafe fn output_array<'a, T>(
    out: *mut T,
    len: usize,
    what: &str,
) -> Result<&'a mut [MaybeUninit<T>]> {
    if out.is_null() {
        if len == 0 {
            return Ok(&mut []);
        }
        return Err(Error::invalid(format!(
            "{what} is NULL but its capacity is {len}"
        )));
    }
    Ok(std::slice::from_raw_parts_mut(
        out.cast::<MaybeUninit<T>>(),
        len,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::last_error_ptr;

    #[test]
    fn a_panic_becomes_internal_with_a_message() {
        let status = guarded(9_999, || panic!("boom in the test"));
        assert_eq!(status, ringraft_status::RINGRAFT_INTERNAL);
        // SAFETY: last_error_ptr returns a NUL-terminated string owned by this thread's table.
        let message = unsafe { CStr::from_ptr(last_error_ptr(9_999)) }
            .to_str()
            .unwrap();
        assert!(message.contains("boom in the test"), "{message}");
    }

    #[test]
    fn errors_map_to_their_status_and_success_is_ok() {
        assert_eq!(guarded(1, || Ok(())), ringraft_status::RINGRAFT_OK);
        let status = guarded(1, || {
            Err(Error::new(ringraft_proto::Status::Compacted, "old"))
        });
        assert_eq!(status, ringraft_status::RINGRAFT_COMPACTED);
    }
}
