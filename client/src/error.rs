//! The error of every client call: the daemon's status and message, or what went wrong reaching
//! it, in the same two fields.

use std::io::ErrorKind;

use ringraft_proto::Status;

/// A failed call. Displayed as `<status name>: <message>` (`not_leader: leader is 2`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", status.name())]
pub struct Error {
    pub status: Status,
    pub message: String,
    /// A register write refused for its expected version (`Conflict` from `kv_cas` /
    /// `kv_delete`): the register's version when it was refused. `None` for every other error.
    pub current_version: Option<u64>,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(status: Status, message: impl Into<String>) -> Error {
        Error {
            status,
            message: message.into(),
            current_version: None,
        }
    }

    /// A register write whose expected version was not `current_version`: nothing was written.
    pub fn conflict(current_version: u64) -> Error {
        Error {
            current_version: Some(current_version),
            ..Error::new(
                Status::Conflict,
                format!(
                    "the register's version is {current_version}, not the expected one; nothing was written"
                ),
            )
        }
    }

    pub fn unavailable(message: impl Into<String>) -> Error {
        Error::new(Status::Unavailable, message)
    }

    /// A failed socket operation: a timeout, a refusal or a lost daemon.
    pub fn io(what: &str, error: &std::io::Error) -> Error {
        let status = match error.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => Status::Timeout,
            ErrorKind::PermissionDenied => Status::PermissionDenied,
            ErrorKind::InvalidInput => Status::InvalidArgument,
            _ => Status::Unavailable,
        };
        Error::new(status, format!("{what}: {error}"))
    }

    /// The error for an answer of the wrong kind (a daemon bug or a protocol mismatch).
    pub fn unexpected(what: &str, response: &ringraft_proto::Response) -> Error {
        Error::new(
            Status::Malformed,
            format!("the daemon answered {what} with an unexpected message: {response:?}"),
        )
    }
}
