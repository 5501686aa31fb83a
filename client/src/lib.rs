//! ringraft-client: the one Rust client of ringraftd's local socket API, used by `ringraftctl`,
//! `libringraft` (which adds its ring cache, reconnection and the C ABI on top), the daemon's
//! tests and the benches.
//!
//! - [`Connection`]: one socket after the handshake, shared by any number of threads; each
//!   request goes out under its own id, answers are filed by id as they arrive (out of order),
//!   and a request the daemon would refuse for its size is refused here, unsent.
//! - [`Client`]: a connection with request ids, a timeout and one typed method per request of
//!   the API (owner, replicas, ring, members, status, propose, read_log, watch_log, kv_get,
//!   kv_cas, kv_put, kv_delete, admin).
//!
//! Nothing here resends a request: a proposal, a register write or an admin change lost in
//! flight may have taken effect, and only the caller can decide what to do about it.

mod client;
mod conn;
mod error;
mod kv;

pub use client::{into_result, Client, LogBatch, Owner, RingAnswer, Watch};
pub use conn::{Connection, StreamItem};
pub use error::{Error, Result};
pub use kv::{kv_entry, kv_written, KvEntry, KvWritten, KV_ANY_VERSION, KV_KEY_BYTES_MAX};
pub use ringraft_proto::{Member, Request, Response, ServerLimits, Status, StatusInfo};
