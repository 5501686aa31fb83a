//! The one list of status codes, shared by the protocol, the C enum (`ringraft_status`) and the
//! Python exceptions. Values are explicit and only ever appended to.

use rkyv::{Archive, Deserialize, Serialize};

#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[rkyv(derive(Debug))]
#[repr(u32)]
pub enum Status {
    Ok = 0,
    /// A parameter is out of range or malformed (empty key, n = 0, unknown member id...).
    InvalidArgument = 1,
    /// The call did not complete within its timeout; a proposal may still commit.
    Timeout = 2,
    /// No leader is known (election under way, or no quorum).
    NoLeader = 3,
    /// The operation needs the leader and this node is not it.
    NotLeader = 4,
    /// The caller's uid may not make admin requests.
    PermissionDenied = 5,
    /// A frame, key or proposal exceeds its size limit.
    TooLarge = 6,
    /// Client and daemon speak different protocol versions.
    UnsupportedVersion = 7,
    /// The peer sent bytes that are not a valid frame or message.
    Malformed = 8,
    /// The daemon cannot be reached (socket missing, connection refused or lost).
    Unavailable = 9,
    /// The requested log range was compacted away; read from a later index.
    Compacted = 10,
    /// The named member does not exist.
    NotFound = 11,
    /// The member already exists, or the change conflicts with one in progress.
    Conflict = 12,
    /// The daemon is overloaded (too many connections or requests in flight).
    Busy = 13,
    /// A leadership transfer is under way; retry shortly.
    TransferInProgress = 14,
    /// The daemon is shutting down.
    ShuttingDown = 15,
    /// The caller's buffer is too small for the answer.
    BufferTooSmall = 16,
    /// The client handle is closed or the request was cancelled.
    Closed = 17,
    /// A bug or an unexpected failure inside the daemon or the library.
    Internal = 18,
    /// This node was removed from the cluster: it no longer answers ring or log queries and is
    /// about to exit. Ask another member.
    Removed = 19,
}

impl Status {
    pub const ALL: [Status; 20] = [
        Status::Ok,
        Status::InvalidArgument,
        Status::Timeout,
        Status::NoLeader,
        Status::NotLeader,
        Status::PermissionDenied,
        Status::TooLarge,
        Status::UnsupportedVersion,
        Status::Malformed,
        Status::Unavailable,
        Status::Compacted,
        Status::NotFound,
        Status::Conflict,
        Status::Busy,
        Status::TransferInProgress,
        Status::ShuttingDown,
        Status::BufferTooSmall,
        Status::Closed,
        Status::Internal,
        Status::Removed,
    ];

    pub fn code(self) -> u32 {
        self as u32
    }

    pub fn from_code(code: u32) -> Option<Status> {
        Status::ALL.iter().copied().find(|s| s.code() == code)
    }

    /// A short, stable, human-readable description: `Display`, ringraftctl, and (through
    /// `description_c`) `ringraft_strerror` and Python's `strerror`.
    pub fn description(self) -> &'static str {
        // ASCII literals below: never fails.
        self.description_c().to_str().unwrap_or("unknown status")
    }

    /// The one description table, NUL-terminated for the C library's `ringraft_strerror`.
    pub fn description_c(self) -> &'static std::ffi::CStr {
        match self {
            Status::Ok => c"success",
            Status::InvalidArgument => c"invalid argument",
            Status::Timeout => c"timed out",
            Status::NoLeader => c"no leader is known",
            Status::NotLeader => c"this node is not the leader",
            Status::PermissionDenied => c"permission denied",
            Status::TooLarge => c"too large",
            Status::UnsupportedVersion => c"unsupported protocol version",
            Status::Malformed => c"malformed message",
            Status::Unavailable => c"daemon unavailable",
            Status::Compacted => c"log range compacted",
            Status::NotFound => c"not found",
            Status::Conflict => c"conflict",
            Status::Busy => c"busy",
            Status::TransferInProgress => c"leadership transfer in progress",
            Status::ShuttingDown => c"daemon shutting down",
            Status::BufferTooSmall => c"buffer too small",
            Status::Closed => c"closed",
            Status::Internal => c"internal error",
            Status::Removed => c"this node was removed from the cluster",
        }
    }

    /// The stable identifier used in JSON output and Python (`"not_leader"`).
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::InvalidArgument => "invalid_argument",
            Status::Timeout => "timeout",
            Status::NoLeader => "no_leader",
            Status::NotLeader => "not_leader",
            Status::PermissionDenied => "permission_denied",
            Status::TooLarge => "too_large",
            Status::UnsupportedVersion => "unsupported_version",
            Status::Malformed => "malformed",
            Status::Unavailable => "unavailable",
            Status::Compacted => "compacted",
            Status::NotFound => "not_found",
            Status::Conflict => "conflict",
            Status::Busy => "busy",
            Status::TransferInProgress => "transfer_in_progress",
            Status::ShuttingDown => "shutting_down",
            Status::BufferTooSmall => "buffer_too_small",
            Status::Closed => "closed",
            Status::Internal => "internal",
            Status::Removed => "removed",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.description())
    }
}
