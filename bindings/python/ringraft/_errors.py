"""Status codes and the exceptions they map to.

`Status` mirrors `ringraft_status` of include/ringraft.h value for value (a test compares them).
Each error status has its own exception class under `RingraftError`; where a built-in exception
means the same thing, the class derives from it too, so `except TimeoutError` or
`except ConnectionError` works without knowing ringraft.
"""

from __future__ import annotations

import enum
from typing import Dict, Optional, Type, Union


class Status(enum.IntEnum):
    """The result codes of libringraft (`ringraft_status`); OK is 0, every other is an error.

    The list is only ever appended to: a newer library may return a value missing here, which
    surfaces as a plain `RingraftError` whose `status` is the raw integer.
    """

    OK = 0
    INVALID_ARGUMENT = 1
    TIMEOUT = 2
    NO_LEADER = 3
    NOT_LEADER = 4
    PERMISSION_DENIED = 5
    TOO_LARGE = 6
    UNSUPPORTED_VERSION = 7
    MALFORMED = 8
    UNAVAILABLE = 9
    COMPACTED = 10
    NOT_FOUND = 11
    CONFLICT = 12
    BUSY = 13
    TRANSFER_IN_PROGRESS = 14
    SHUTTING_DOWN = 15
    BUFFER_TOO_SMALL = 16
    CLOSED = 17
    INTERNAL = 18
    REMOVED = 19


class RingraftError(Exception):
    """Base of every error reported by libringraft or the daemon.

    `status` is the `Status` (or, for a code newer than these bindings, the raw integer) and
    `message` the library's explanation (`ringraft_last_error`).
    """

    #: The status this class stands for; instances carry the actual one in `status`.
    default_status: Union[Status, int] = Status.INTERNAL

    def __init__(self, message: str, status: Union[Status, int, None] = None) -> None:
        if status is None:
            status = self.default_status
        super().__init__(message, status)
        self.message = message
        self.status: Union[Status, int] = status

    def __str__(self) -> str:
        # KeyError and friends would print repr(args); the message is what people need.
        return self.message


class InvalidArgument(RingraftError, ValueError):
    """A parameter is out of range or malformed (empty key, n = 0, a bad id or string...)."""

    default_status = Status.INVALID_ARGUMENT


class Timeout(RingraftError, TimeoutError):
    """The call did not complete in time. A proposal may still commit."""

    default_status = Status.TIMEOUT


class NoLeader(RingraftError):
    """No leader is known (an election is under way, or there is no quorum)."""

    default_status = Status.NO_LEADER


class NotLeader(RingraftError):
    """The operation needs the leader and this node is not it."""

    default_status = Status.NOT_LEADER


class PermissionDenied(RingraftError, PermissionError):
    """The caller's uid may not make admin requests, or may not open the socket."""

    default_status = Status.PERMISSION_DENIED


class TooLarge(RingraftError, ValueError):
    """A key, a proposal or a frame exceeds its size limit."""

    default_status = Status.TOO_LARGE


class UnsupportedVersion(RingraftError):
    """The library and the daemon speak different protocol versions."""

    default_status = Status.UNSUPPORTED_VERSION


class Malformed(RingraftError):
    """The daemon sent bytes that are not a valid frame or message."""

    default_status = Status.MALFORMED


class Unavailable(RingraftError, ConnectionError):
    """The daemon cannot be reached, or the connection was lost while a request was in flight."""

    default_status = Status.UNAVAILABLE


class Compacted(RingraftError, LookupError):
    """The requested log range was compacted away; read from a later index."""

    default_status = Status.COMPACTED


class NotFound(RingraftError, KeyError):
    """The named member does not exist, or no active member owns keys."""

    default_status = Status.NOT_FOUND


class Conflict(RingraftError):
    """A register write found another version than it expected (`current_version` says which;
    nothing was written), or a member already exists, or a change conflicts with one in
    progress (then `current_version` is None)."""

    default_status = Status.CONFLICT

    def __init__(
        self,
        message: str,
        status: Union[Status, int, None] = None,
        current_version: Optional[int] = None,
    ) -> None:
        super().__init__(message, status)
        #: The register's version when a kv_cas / kv_put / kv_delete was refused; else None.
        self.current_version = current_version

    def __reduce__(self) -> "tuple[type, tuple[str, Union[Status, int], Optional[int]]]":
        # Pickled with the version (the default would rebuild from args, which lack it).
        return (type(self), (self.message, self.status, self.current_version))


class Busy(RingraftError):
    """The daemon is overloaded (too many connections or requests in flight)."""

    default_status = Status.BUSY


class TransferInProgress(RingraftError):
    """A leadership transfer is under way; retry shortly."""

    default_status = Status.TRANSFER_IN_PROGRESS


class ShuttingDown(RingraftError, ConnectionError):
    """The daemon is shutting down."""

    default_status = Status.SHUTTING_DOWN


class BufferTooSmall(RingraftError):
    """A result did not fit the buffer the bindings offered (they normally retry by themselves)."""

    default_status = Status.BUFFER_TOO_SMALL


class Closed(RingraftError):
    """The client or watch was closed, or the request was cancelled."""

    default_status = Status.CLOSED


class Internal(RingraftError):
    """A bug or an unexpected failure inside the daemon or the library."""

    default_status = Status.INTERNAL


class Removed(RingraftError):
    """The daemon's node was removed from the cluster: it no longer answers ring or log queries
    and is about to exit. Ask another member's daemon."""

    default_status = Status.REMOVED


ERROR_CLASSES: Dict[Status, Type[RingraftError]] = {
    Status(cls.default_status): cls
    for cls in (
        InvalidArgument,
        Timeout,
        NoLeader,
        NotLeader,
        PermissionDenied,
        TooLarge,
        UnsupportedVersion,
        Malformed,
        Unavailable,
        Compacted,
        NotFound,
        Conflict,
        Busy,
        TransferInProgress,
        ShuttingDown,
        BufferTooSmall,
        Closed,
        Internal,
        Removed,
    )
}


def error_for(status: int, message: str) -> RingraftError:
    """The exception for a failed call's status code and message."""
    try:
        known = Status(status)
    except ValueError:
        return RingraftError(message or f"status {status}", status)
    cls = ERROR_CLASSES.get(known, RingraftError)
    return cls(message or known.name.lower().replace("_", " "), known)
