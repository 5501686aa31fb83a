//! The C status enum. It is the protocol's `ringraft_proto::Status` list, value for value: the two
//! exhaustive matches below stop the build when either side gains a variant the other lacks, and
//! `tests/status.rs` checks that every code maps to the same number.

use ringraft_proto::Status;

/// The result of every libringraft call that can fail. `RINGRAFT_OK` is 0; every other value is an
/// error. Values are explicit, shared with the daemon's protocol and the Python exceptions, and
/// only ever appended to: a program compiled against an older header may see a value it does not
/// know, and should treat it as a generic error (ringraft_strerror() still describes it).
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ringraft_status {
    /// Success.
    RINGRAFT_OK = 0,
    /// A parameter is out of range or malformed: a NULL pointer where one is required, an empty
    /// key, n = 0, an unknown member id, a string that is not NUL-terminated UTF-8 or is too long.
    RINGRAFT_INVALID_ARGUMENT = 1,
    /// The call did not complete within its timeout. A proposal may still commit.
    RINGRAFT_TIMEOUT = 2,
    /// No leader is known (an election is under way, or there is no quorum).
    RINGRAFT_NO_LEADER = 3,
    /// The operation needs the leader and this node is not it.
    RINGRAFT_NOT_LEADER = 4,
    /// The caller's uid may not make admin requests.
    RINGRAFT_PERMISSION_DENIED = 5,
    /// A key, a proposal or a frame exceeds its size limit.
    RINGRAFT_TOO_LARGE = 6,
    /// The library and the daemon speak different protocol versions.
    RINGRAFT_UNSUPPORTED_VERSION = 7,
    /// The daemon sent bytes that are not a valid frame or message.
    RINGRAFT_MALFORMED = 8,
    /// The daemon cannot be reached: socket missing, connection refused, or the connection was
    /// lost while the request was in flight.
    RINGRAFT_UNAVAILABLE = 9,
    /// The requested log range was compacted away; read from a later index.
    RINGRAFT_COMPACTED = 10,
    /// The named member does not exist.
    RINGRAFT_NOT_FOUND = 11,
    /// The member already exists, or the change conflicts with one in progress.
    RINGRAFT_CONFLICT = 12,
    /// The daemon is overloaded (too many connections or requests in flight).
    RINGRAFT_BUSY = 13,
    /// A leadership transfer is under way; retry shortly.
    RINGRAFT_TRANSFER_IN_PROGRESS = 14,
    /// The daemon is shutting down.
    RINGRAFT_SHUTTING_DOWN = 15,
    /// The caller's buffer is too small for the answer; the needed size was written back.
    RINGRAFT_BUFFER_TOO_SMALL = 16,
    /// The client or watch was closed, or the request was cancelled.
    RINGRAFT_CLOSED = 17,
    /// A bug or an unexpected failure inside the daemon or the library.
    RINGRAFT_INTERNAL = 18,
    /// The daemon's node was removed from the cluster: it no longer answers ring or log queries
    /// and is about to exit. Ask another member's daemon.
    RINGRAFT_REMOVED = 19,
}

impl From<Status> for ringraft_status {
    fn from(status: Status) -> Self {
        use ringraft_status::*;
        match status {
            Status::Ok => RINGRAFT_OK,
            Status::InvalidArgument => RINGRAFT_INVALID_ARGUMENT,
            Status::Timeout => RINGRAFT_TIMEOUT,
            Status::NoLeader => RINGRAFT_NO_LEADER,
            Status::NotLeader => RINGRAFT_NOT_LEADER,
            Status::PermissionDenied => RINGRAFT_PERMISSION_DENIED,
            Status::TooLarge => RINGRAFT_TOO_LARGE,
            Status::UnsupportedVersion => RINGRAFT_UNSUPPORTED_VERSION,
            Status::Malformed => RINGRAFT_MALFORMED,
            Status::Unavailable => RINGRAFT_UNAVAILABLE,
            Status::Compacted => RINGRAFT_COMPACTED,
            Status::NotFound => RINGRAFT_NOT_FOUND,
            Status::Conflict => RINGRAFT_CONFLICT,
            Status::Busy => RINGRAFT_BUSY,
            Status::TransferInProgress => RINGRAFT_TRANSFER_IN_PROGRESS,
            Status::ShuttingDown => RINGRAFT_SHUTTING_DOWN,
            Status::BufferTooSmall => RINGRAFT_BUFFER_TOO_SMALL,
            Status::Closed => RINGRAFT_CLOSED,
            Status::Internal => RINGRAFT_INTERNAL,
            Status::Removed => RINGRAFT_REMOVED,
        }
    }
}

impl From<ringraft_status> for Status {
    fn from(status: ringraft_status) -> Self {
        use ringraft_status::*;
        match status {
            RINGRAFT_OK => Status::Ok,
            RINGRAFT_INVALID_ARGUMENT => Status::InvalidArgument,
            RINGRAFT_TIMEOUT => Status::Timeout,
            RINGRAFT_NO_LEADER => Status::NoLeader,
            RINGRAFT_NOT_LEADER => Status::NotLeader,
            RINGRAFT_PERMISSION_DENIED => Status::PermissionDenied,
            RINGRAFT_TOO_LARGE => Status::TooLarge,
            RINGRAFT_UNSUPPORTED_VERSION => Status::UnsupportedVersion,
            RINGRAFT_MALFORMED => Status::Malformed,
            RINGRAFT_UNAVAILABLE => Status::Unavailable,
            RINGRAFT_COMPACTED => Status::Compacted,
            RINGRAFT_NOT_FOUND => Status::NotFound,
            RINGRAFT_CONFLICT => Status::Conflict,
            RINGRAFT_BUSY => Status::Busy,
            RINGRAFT_TRANSFER_IN_PROGRESS => Status::TransferInProgress,
            RINGRAFT_SHUTTING_DOWN => Status::ShuttingDown,
            RINGRAFT_BUFFER_TOO_SMALL => Status::BufferTooSmall,
            RINGRAFT_CLOSED => Status::Closed,
            RINGRAFT_INTERNAL => Status::Internal,
            RINGRAFT_REMOVED => Status::Removed,
        }
    }
}

/// The description `ringraft_strerror` returns for a raw code, NUL-terminated and static.
pub(crate) fn describe_code(code: u32) -> &'static std::ffi::CStr {
    match Status::from_code(code) {
        Some(status) => status.description_c(),
        None => c"unknown status",
    }
}
