"""ringraft: ask the local ringraftd who owns a key, commit to the cluster's log, and keep small
linearizable per-key registers.

A thin layer over libringraft (the C client), loaded with ctypes from, in order: the path in
the RINGRAFT_LIB environment variable, a copy inside this package (``ringraft/libringraft.so*``),
or the system (``libringraft.so.0``)::

    import ringraft

    with ringraft.Client("/run/ringraft/ringraftd.sock") as client:
        node = client.owner("user:42")
        index = client.propose(b"hello")
        for record in client.read_log(index, 10):
            print(record.index, record.data)
        version = client.kv_put("lease:7", b"worker-3")
        client.kv_cas("lease:7", b"worker-4", expected_version=version)
"""

from __future__ import annotations

from ._client import Client
from ._errors import (
    BufferTooSmall,
    Busy,
    Closed,
    Compacted,
    Conflict,
    Internal,
    InvalidArgument,
    Malformed,
    NoLeader,
    NotFound,
    NotLeader,
    PermissionDenied,
    Removed,
    RingraftError,
    ShuttingDown,
    Status,
    Timeout,
    TooLarge,
    TransferInProgress,
    Unavailable,
    UnsupportedVersion,
)
from ._lib import LibraryNotFoundError
from ._types import (
    ClusterStatus,
    Key,
    KvEntry,
    LogBatch,
    LogRecord,
    Member,
    MemberRole,
    Members,
    MemberState,
    Node,
    NodeRole,
    Ring,
)
from ._watch import Watch

__version__ = "0.1.0"


def library_version() -> str:
    """The version of the loaded libringraft ("MAJOR.MINOR.PATCH")."""
    from . import _lib

    return _lib.load().version


def library_path() -> str:
    """Where the loaded libringraft came from (a path, or a name the system resolved)."""
    from . import _lib

    return _lib.load().path


def strerror(status: int) -> str:
    """libringraft's short description of a status code."""
    from . import _lib

    return _lib.load().strerror(int(status))


__all__ = [
    "BufferTooSmall",
    "Busy",
    "Client",
    "Closed",
    "ClusterStatus",
    "Compacted",
    "Conflict",
    "Internal",
    "InvalidArgument",
    "Key",
    "KvEntry",
    "LibraryNotFoundError",
    "LogBatch",
    "LogRecord",
    "Malformed",
    "Member",
    "MemberRole",
    "MemberState",
    "Members",
    "NoLeader",
    "Node",
    "NodeRole",
    "NotFound",
    "NotLeader",
    "PermissionDenied",
    "Removed",
    "Ring",
    "RingraftError",
    "ShuttingDown",
    "Status",
    "Timeout",
    "TooLarge",
    "TransferInProgress",
    "Unavailable",
    "UnsupportedVersion",
    "Watch",
    "library_path",
    "library_version",
    "strerror",
]

# Show the public names where users import them from (tracebacks, reprs, pickles).
for _name in __all__:
    _value = globals()[_name]
    if isinstance(_value, type) and _value.__module__.startswith("ringraft."):
        _value.__module__ = __name__
del _name, _value
