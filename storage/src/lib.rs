//! Durable storage for the ringraft Raft log (WAL segments, snapshots, recovery) and for the
//! per-key registers' acceptor state (`RegisterStore`).
//!
//! One directory per node holds a lock file, WAL segments (`wal-<seq>.seg`) and the newest
//! snapshot (`snap-<index>.snap`). The on-disk format and the recovery rules are specified in
//! `docs/storage.md`.
//!
//! `Storage` is the core's `DurableLog`: `Ready::write` calls `save_snapshot` (if any, then
//! `compact` behind it), `append(entries)` and `save_hard_state` (if any); `Written::sync` calls
//! `sync` once, and only the `Synced` it returns releases the acknowledgements.
//!
//! `RegisterStore` (module `registers`) keeps the per-key registers' acceptor and proposer
//! records in its own directory, with the same segments, record framing, checks and fsync
//! discipline, and a checkpoint file in place of snapshots.

pub mod codec;
mod durable_log;
mod error;
mod fs;
#[doc(hidden)]
pub mod fuzz_support;
pub mod record;
mod recovery;
pub mod registers;
mod snapshot_file;
mod storage;

pub use error::StorageError;
pub use fs::{
    checkpoint_file_name, segment_file_name, snapshot_file_name, DirLock, LOCK_FILE_NAME,
};
pub use registers::{RegisterStore, RegisterStoreOptions};
pub use storage::{Recovered, Storage, StorageOptions};
