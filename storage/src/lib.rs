//! Durable storage for the ringraft Raft log: WAL segments, snapshots, recovery.
//!
//! One directory per node holds a lock file, WAL segments (`wal-<seq>.seg`) and the newest
//! snapshot (`snap-<index>.snap`). The on-disk format and the recovery rules are specified in
//! `docs/storage.md`.
//!
//! The shell processes a Raft `Ready` as: `save_snapshot` (if any), `append(entries)`,
//! `save_hard_state` (if any), then `sync` once; only then may it send `persisted_messages`.

pub mod codec;
mod error;
mod fs;
#[doc(hidden)]
pub mod fuzz_support;
pub mod record;
mod recovery;
mod snapshot_file;
mod storage;

pub use error::StorageError;
pub use fs::{segment_file_name, snapshot_file_name, DirLock, LOCK_FILE_NAME};
pub use storage::{Recovered, Storage, StorageOptions};
