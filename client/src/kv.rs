//! The per-key registers (CASPaxos on each key's ring replicas, docs/paxos.md) as the client sees
//! them: the answers as plain structs, a version mismatch as an error that carries the current
//! version, and the checks a request passes before it is sent.
//!
//! A write (`KvCas`, `KvDelete`) is never sent twice. One whose answer was lost (timeout, the
//! connection dropped) has an unknown outcome: it may have taken effect. Read before retrying.

use ringraft_proto::{Request, Response, ServerLimits, Status};

use crate::error::{Error, Result};

pub use ringraft_proto::limits::{KV_ANY_VERSION, KV_KEY_BYTES_MAX};

/// A register as a `KvGet` found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvEntry {
    /// `None`: absent (never written, or deleted); then `version` is 0.
    pub value: Option<Vec<u8>>,
    /// Counts the successful writes since the register was last absent; 0: absent.
    pub version: u64,
    /// The ring epoch the answer was made under.
    pub epoch: u64,
}

/// A write that took effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvWritten {
    /// The register's new version (0 after a delete).
    pub version: u64,
    /// The ring epoch the write was made under.
    pub epoch: u64,
}

/// A `KvEntry` answer as a [`KvEntry`]; an `Error` answer as `Err`.
pub fn kv_entry(response: Response) -> Result<KvEntry> {
    match response {
        Response::KvEntry {
            value,
            version,
            epoch,
        } => Ok(KvEntry {
            value,
            version,
            epoch,
        }),
        Response::Error { status, message } => Err(Error::new(status, message)),
        other => Err(Error::unexpected("kv get", &other)),
    }
}

/// A `KvWritten` answer as a [`KvWritten`]; `KvConflict` as a `Conflict` error carrying the
/// current version ([`Error::current_version`]); an `Error` answer as `Err`.
pub fn kv_written(response: Response, what: &str) -> Result<KvWritten> {
    match response {
        Response::KvWritten { version, epoch } => Ok(KvWritten { version, epoch }),
        Response::KvConflict {
            current_version, ..
        } => Err(Error::conflict(current_version)),
        Response::Error { status, message } => Err(Error::new(status, message)),
        other => Err(Error::unexpected(what, &other)),
    }
}

/// A register request the daemon would refuse for its key or value is refused here, unsent:
/// an empty key (`InvalidArgument`), a key over [`KV_KEY_BYTES_MAX`] or a value over the
/// daemon's `kv_value_bytes_max` (`TooLarge`). Other requests pass.
pub(crate) fn check_kv_request(request: &Request, limits: ServerLimits) -> Result<()> {
    let (key, value) = match request {
        Request::KvGet { key, .. } | Request::KvDelete { key, .. } => (key, None),
        Request::KvCas { key, value, .. } => (key, Some(value)),
        _ => return Ok(()),
    };
    if key.is_empty() {
        return Err(Error::new(
            Status::InvalidArgument,
            "the key is empty; it was not sent",
        ));
    }
    if key.len() > KV_KEY_BYTES_MAX {
        return Err(Error::new(
            Status::TooLarge,
            format!(
                "the key is {} bytes; registers take keys of at most {KV_KEY_BYTES_MAX} bytes; \
                 it was not sent",
                key.len()
            ),
        ));
    }
    let max = limits.kv_value_bytes_max as usize;
    if let Some(value) = value.filter(|value| value.len() > max) {
        return Err(Error::new(
            Status::TooLarge,
            format!(
                "the value is {} bytes; the daemon stores values of at most {max} bytes; it \
                 was not sent",
                value.len()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(kv_value_bytes_max: u32) -> ServerLimits {
        ServerLimits {
            frame_bytes_max: 1 << 20,
            proposal_bytes_max: 1 << 16,
            kv_value_bytes_max,
        }
    }

    fn cas(key_len: usize, value_len: usize) -> Request {
        Request::KvCas {
            key: vec![b'k'; key_len],
            expected_version: KV_ANY_VERSION,
            value: vec![0; value_len],
            timeout_ms: 1,
        }
    }

    #[test]
    fn keys_and_values_are_checked_at_their_bounds() {
        assert_eq!(check_kv_request(&cas(1, 100), limits(100)), Ok(()));
        let error = check_kv_request(&cas(1, 101), limits(100)).unwrap_err();
        assert_eq!(error.status, Status::TooLarge);
        assert!(error.message.contains("101 bytes"), "{error}");
        assert_eq!(
            check_kv_request(&cas(KV_KEY_BYTES_MAX, 0), limits(100)),
            Ok(())
        );
        let get = Request::KvGet {
            key: vec![1; KV_KEY_BYTES_MAX + 1],
            timeout_ms: 1,
        };
        assert_eq!(
            check_kv_request(&get, limits(100)).unwrap_err().status,
            Status::TooLarge
        );
        let delete = Request::KvDelete {
            key: Vec::new(),
            expected_version: 0,
            timeout_ms: 1,
        };
        assert_eq!(
            check_kv_request(&delete, limits(100)).unwrap_err().status,
            Status::InvalidArgument
        );
        // Not a register request: not this check's business.
        let owner = Request::Owner {
            key: Vec::new(),
            linearizable: false,
        };
        assert_eq!(check_kv_request(&owner, limits(0)), Ok(()));
    }

    #[test]
    fn a_conflict_is_an_error_with_the_current_version() {
        let error = kv_written(
            Response::KvConflict {
                current_version: 7,
                epoch: 3,
            },
            "kv cas",
        )
        .unwrap_err();
        assert_eq!(error.status, Status::Conflict);
        assert_eq!(error.current_version, Some(7));
        assert!(error.message.contains('7'), "{error}");
        let written = kv_written(
            Response::KvWritten {
                version: 8,
                epoch: 3,
            },
            "kv cas",
        );
        assert_eq!(
            written,
            Ok(KvWritten {
                version: 8,
                epoch: 3
            })
        );
        let unexpected = kv_written(Response::Done { index: 1 }, "kv cas").unwrap_err();
        assert_eq!(unexpected.status, Status::Malformed);
        assert_eq!(unexpected.current_version, None);
    }
}
