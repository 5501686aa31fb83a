//! What can go wrong in storage, split into failures that stop the node and caller mistakes.

use std::io;
use std::path::PathBuf;

use ringraft_raft::LogIndex;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Another process (or another `Storage` in this process) holds the directory's lock file.
    #[error("data directory {dir} is already in use by another ringraft process{}", holder_text(.holder_pid))]
    Locked {
        dir: PathBuf,
        holder_pid: Option<u32>,
    },

    /// A read, write, fsync, rename or unlink failed (ENOSPC, EIO, ...). Fatal: the `Storage` is
    /// poisoned, because after a failed fsync the kernel may have dropped the dirty pages and a
    /// retry could report success for data that is gone.
    #[error("I/O error while {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Bytes on disk that fail a checksum or do not parse, anywhere but a torn tail.
    #[error("corrupt data in {path} at byte offset {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },

    /// A WAL segment or snapshot file that the rest of the directory proves must exist is absent.
    #[error("missing file {path}: {reason}")]
    Missing { path: PathBuf, reason: String },

    /// An earlier fatal error left this `Storage` unusable; the node must stop and restart.
    #[error("storage is unusable after an earlier failure ({0}); restart the node")]
    Poisoned(String),

    /// The caller asked for something the log cannot do (a bug in the caller). The `Storage`
    /// stays usable: nothing was written.
    #[error("invalid storage request: {0}")]
    InvalidRequest(String),

    /// `save_snapshot` with a snapshot older than the one already stored.
    #[error("snapshot at index {given} is older than the stored snapshot at index {stored}")]
    StaleSnapshot { given: LogIndex, stored: LogIndex },
}

fn holder_text(pid: &Option<u32>) -> String {
    match pid {
        Some(pid) => format!(" (pid {pid} holds the lock)"),
        None => String::new(),
    }
}

impl StorageError {
    /// True for errors after which the node must stop: the on-disk state may differ from what this
    /// process believes, so every later call fails.
    pub fn is_fatal(&self) -> bool {
        !matches!(
            self,
            StorageError::InvalidRequest(_) | StorageError::StaleSnapshot { .. }
        )
    }

    /// The underlying OS error code, if this error came from the OS (e.g. `libc::ENOSPC`).
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            StorageError::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        StorageError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(
        path: impl Into<PathBuf>,
        offset: u64,
        reason: impl Into<String>,
    ) -> Self {
        StorageError::Corrupt {
            path: path.into(),
            offset,
            reason: reason.into(),
        }
    }
}
