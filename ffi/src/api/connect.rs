//! Library-wide calls, opening and closing a client, and per-client options.

use std::ffi::{c_char, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use super::{
    guarded, guarded_value, input_str, require_out, ringraft_client, with_client, write_out,
};
use crate::client::Client;
use crate::error::{last_error_ptr, Error, NO_CLIENT};
use crate::status::{describe_code, ringraft_status};

/// A status code as C passes it in. The header names it `ringraft_status` (cbindgen.toml
/// renames it); taking the raw integer keeps an out-of-range value from C defined behaviour.
pub type StatusCode = u32;

/// The library's version, "MAJOR.MINOR.PATCH" (the same numbers as the RINGRAFT_VERSION_*
/// macros of the header the program was built with, if it matches the library it runs with).
///
/// Blocks: no. Ownership: the string is static; do not free it. Never fails, never NULL.
#[no_mangle]
pub extern "C" fn ringraft_version() -> *const c_char {
    guarded_value(c"".as_ptr(), || {
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
    })
}

/// A short description of `status`, e.g. "daemon unavailable". Unknown values give
/// "unknown status".
///
/// Blocks: no. Ownership: the string is static; do not free it. Never fails, never NULL.
#[no_mangle]
pub extern "C" fn ringraft_strerror(status: StatusCode) -> *const c_char {
    guarded_value(c"unknown status".as_ptr(), || {
        describe_code(status).as_ptr()
    })
}

/// The message of the last failed call that the calling thread made on `client`, e.g.
/// "daemon unavailable: cannot connect to /run/ringraft/ringraftd.sock: No such file or
/// directory". With `client` NULL: the message of the calling thread's last failed call that had
/// no client (ringraft_connect(), or any call passed a NULL client). "" if there was none.
/// Successful calls leave it unchanged (like errno).
///
/// Messages are kept per thread, so threads sharing a client never see each other's.
///
/// Blocks: no. Ownership: the library owns the string; it stays valid until the calling thread's
/// next call on the same client (or, for NULL, its next client-less failure). Never NULL.
#[no_mangle]
pub unsafe extern "C" fn ringraft_last_error(client: *const ringraft_client) -> *const c_char {
    guarded_value(c"".as_ptr(), || {
        let key = if client.is_null() {
            NO_CLIENT
        } else {
            // SAFETY: a non-NULL client comes from ringraft_connect() and is not yet closed.
            unsafe { (*client).inner.key }
        };
        last_error_ptr(key)
    })
}

/// Connects to the ringraftd listening on the Unix socket `socket_path` (for example
/// "/run/ringraft/ringraftd.sock") and performs the protocol handshake. On success `*out` is a
/// new client; on failure `*out` is set to NULL and ringraft_last_error(NULL) says why.
///
/// The client starts with a timeout of 5000 ms per call (see ringraft_set_timeout()), serves
/// owner and replicas from the daemon (see ringraft_enable_ring_cache()), and reconnects by
/// itself when the daemon restarts.
///
/// Blocks: yes, for the connection and the handshake, at most 5000 ms.
/// Ownership: `socket_path` is only read during the call. The caller owns the client and must
/// release it with ringraft_close().
/// Errors: RINGRAFT_INVALID_ARGUMENT (`socket_path` or `out` NULL, path too long for a Unix
/// socket), RINGRAFT_UNAVAILABLE (no socket at the path, connection refused),
/// RINGRAFT_PERMISSION_DENIED (no permission on the socket), RINGRAFT_TIMEOUT (no handshake
/// answer in time), RINGRAFT_UNSUPPORTED_VERSION (the daemon speaks another protocol version),
/// RINGRAFT_BUSY (the daemon is at its connection limit), RINGRAFT_MALFORMED (the socket is not a
/// ringraftd).
#[no_mangle]
pub unsafe extern "C" fn ringraft_connect(
    socket_path: *const c_char,
    out: *mut *mut ringraft_client,
) -> ringraft_status {
    guarded(NO_CLIENT, || {
        require_out(out, "out")?;
        write_out(out, std::ptr::null_mut());
        let path = PathBuf::from(OsStr::from_bytes(
            input_str(socket_path, "socket_path")?.as_bytes(),
        ));
        if path.as_os_str().is_empty() {
            return Err(Error::invalid("socket_path is empty"));
        }
        let client = Client::connect(path)?;
        write_out(
            out,
            Box::into_raw(Box::new(ringraft_client { inner: client })),
        );
        Ok(())
    })
}

/// Closes the connection, stops the ring cache's thread and frees the client. Accepts NULL (does
/// nothing). Watches made from this client keep their memory until ringraft_watch_close(), but
/// their ringraft_watch_next() fails with RINGRAFT_CLOSED.
///
/// No other thread may be using `client` during or after this call.
///
/// Blocks: briefly, to join the ring cache thread if it is running. Never fails.
#[no_mangle]
pub unsafe extern "C" fn ringraft_close(client: *mut ringraft_client) {
    if client.is_null() {
        return;
    }
    // SAFETY: the caller hands back a pointer from ringraft_connect(), once.
    let client = Box::from_raw(client);
    let _ = guarded(NO_CLIENT, || {
        client.inner.close();
        crate::error::clear_last_error(client.inner.key);
        Ok(())
    });
}

/// Sets how long each later call on `client` may wait for the daemon, in milliseconds
/// (default 5000). Applies to every blocking call, including reconnecting; ringraft_propose()
/// waits its own `timeout_ms` plus this.
///
/// Blocks: no. Thread-safe: may be called while other threads use the client.
/// Errors: RINGRAFT_INVALID_ARGUMENT (`client` NULL, `timeout_ms` 0).
#[no_mangle]
pub unsafe extern "C" fn ringraft_set_timeout(
    client: *mut ringraft_client,
    timeout_ms: u32,
) -> ringraft_status {
    with_client(client, |client| {
        if timeout_ms == 0 {
            return Err(Error::invalid("timeout_ms must be at least 1"));
        }
        client.shared.set_timeout_ms(timeout_ms);
        Ok(())
    })
}

/// With `linearizable` true, later owner, replicas, members and ring calls are confirmed by the
/// leader (Raft ReadIndex) before the daemon answers: slower, never stale. They then bypass the
/// ring cache. Default false: answers come from the node's applied state and carry its epoch.
///
/// Blocks: no. Thread-safe.
/// Errors: RINGRAFT_INVALID_ARGUMENT (`client` NULL).
#[no_mangle]
pub unsafe extern "C" fn ringraft_set_linearizable(
    client: *mut ringraft_client,
    linearizable: bool,
) -> ringraft_status {
    with_client(client, |client| {
        client.shared.set_linearizable(linearizable);
        Ok(())
    })
}

/// Keeps the ring in this process so ringraft_owner() and ringraft_replicas() answer without
/// asking the daemon (the same code computes the same answer). Fetches the ring now; then a
/// background thread asks the daemon for its epoch every `refresh_ms` milliseconds and fetches
/// the ring again when the epoch moved. Cached answers may lag the daemon by up to `refresh_ms`
/// plus one round trip, and keep coming from the last ring while the daemon is unreachable.
/// Calling it again restarts the cache with the new interval.
///
/// Blocks: yes, for one Ring request (up to the client timeout).
/// Errors: RINGRAFT_INVALID_ARGUMENT (`client` NULL, `refresh_ms` 0), the errors of
/// ringraft_ring(); on error the cache is left as it was.
#[no_mangle]
pub unsafe extern "C" fn ringraft_enable_ring_cache(
    client: *mut ringraft_client,
    refresh_ms: u32,
) -> ringraft_status {
    with_client(client, |client| {
        if refresh_ms == 0 {
            return Err(Error::invalid("refresh_ms must be at least 1"));
        }
        client
            .cache
            .enable(&client.shared, Duration::from_millis(u64::from(refresh_ms)))
    })
}

/// Stops the ring cache (joining its thread) and drops the cached ring; owner and replicas ask
/// the daemon again. Does nothing if the cache is off.
///
/// Blocks: until the cache thread has stopped (at most one call's timeout).
/// Errors: RINGRAFT_INVALID_ARGUMENT (`client` NULL).
#[no_mangle]
pub unsafe extern "C" fn ringraft_disable_ring_cache(
    client: *mut ringraft_client,
) -> ringraft_status {
    with_client(client, |client| {
        client.cache.disable();
        Ok(())
    })
}
