"""Finding and loading libringraft, and the ctypes declarations of its C ABI.

Every declaration mirrors include/ringraft.h; the struct layouts are checked against the sizes the
header documents when the library loads, so a layout mistake fails at once instead of corrupting
memory later.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from ctypes import (
    POINTER,
    Structure,
    c_bool,
    c_char,
    c_char_p,
    c_size_t,
    c_uint8,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path
from typing import TYPE_CHECKING, Any, List, Optional, Tuple

#: The library major version these bindings speak; the C ABI only grows within a major version.
SUPPORTED_MAJOR = 0

#: Sizes of the fixed string arrays (RINGRAFT_*_MAX in the header), terminating NUL included.
NAME_MAX = 64
ADDRESS_MAX = 256
ZONE_MAX = 256
VERSION_STRING_MAX = 32

#: ringraft_node.flags bit: a string field was cut to fit its array.
NODE_TRUNCATED = 1

#: The C enum ringraft_status is returned as a plain 32-bit value.
c_status = c_uint32


class RingraftNode(Structure):
    _fields_ = [
        ("id", c_uint64),
        ("weight", c_uint32),
        ("role", c_uint8),
        ("state", c_uint8),
        ("flags", c_uint8),
        ("reserved", c_uint8),
        ("name", c_char * NAME_MAX),
        ("address", c_char * ADDRESS_MAX),
        ("zone", c_char * ZONE_MAX),
    ]


class RingraftClusterInfo(Structure):
    _fields_ = [
        ("node_id", c_uint64),
        ("cluster_id", c_uint64),
        ("term", c_uint64),
        ("leader_id", c_uint64),
        ("commit_index", c_uint64),
        ("applied_index", c_uint64),
        ("last_index", c_uint64),
        ("snapshot_index", c_uint64),
        ("epoch", c_uint64),
        ("member_count", c_uint32),
        ("role", c_uint8),
        ("reserved", c_uint8 * 3),
        ("name", c_char * NAME_MAX),
        ("daemon_version", c_char * VERSION_STRING_MAX),
    ]


class RingraftLogRecord(Structure):
    _fields_ = [
        ("index", c_uint64),
        ("data", c_void_p),
        ("len", c_size_t),
    ]


class RingraftLogBatch(Structure):
    _fields_ = [
        ("records", POINTER(RingraftLogRecord)),
        ("count", c_size_t),
        ("first_index", c_uint64),
        ("last_index", c_uint64),
        ("internal", c_void_p),
    ]


class RingraftKvEntry(Structure):
    _fields_ = [
        ("value", c_void_p),
        ("value_len", c_size_t),
        ("version", c_uint64),
        ("epoch", c_uint64),
    ]


#: `expected_version` meaning "whatever the version is" (RINGRAFT_KV_ANY_VERSION).
KV_ANY_VERSION = 2**64 - 1

# The sizes the header promises ("592 bytes, no padding", "176 bytes, no padding"; the register
# entry: two pointer-sized fields and two 64-bit ones, no padding).
NODE_SIZE = 592
CLUSTER_INFO_SIZE = 176
KV_ENTRY_SIZE = 2 * ctypes.sizeof(c_void_p) + 16

_u64_p = POINTER(c_uint64)
_size_p = POINTER(c_size_t)
_node_p = POINTER(RingraftNode)
_batch_p = POINTER(RingraftLogBatch)
_kv_entry_p = POINTER(RingraftKvEntry)
# Opaque handles travel as void pointers.
_handle = c_void_p
_handle_p = POINTER(c_void_p)

# name: (restype, argtypes). Keys and data are declared c_char_p: ctypes then passes a bytes
# object's own buffer (no copy), and the explicit length carries embedded NULs.
_SIGNATURES = {
    "ringraft_version": (c_char_p, []),
    "ringraft_strerror": (c_char_p, [c_status]),
    "ringraft_last_error": (c_char_p, [_handle]),
    "ringraft_connect": (c_status, [c_char_p, _handle_p]),
    "ringraft_close": (None, [_handle]),
    "ringraft_set_timeout": (c_status, [_handle, c_uint32]),
    "ringraft_set_linearizable": (c_status, [_handle, c_bool]),
    "ringraft_enable_ring_cache": (c_status, [_handle, c_uint32]),
    "ringraft_disable_ring_cache": (c_status, [_handle]),
    "ringraft_join": (
        c_status,
        [_handle, c_uint64, c_char_p, c_char_p, c_char_p, c_uint32, _u64_p],
    ),
    "ringraft_remove": (c_status, [_handle, c_uint64, _u64_p]),
    "ringraft_promote": (c_status, [_handle, c_uint64, _u64_p]),
    "ringraft_transfer_leader": (c_status, [_handle, c_uint64, _u64_p]),
    "ringraft_snapshot": (c_status, [_handle, _u64_p]),
    "ringraft_propose": (c_status, [_handle, c_char_p, c_size_t, c_uint32, _u64_p]),
    "ringraft_read_log": (c_status, [_handle, c_uint64, c_uint32, _batch_p]),
    "ringraft_log_batch_free": (None, [_batch_p]),
    "ringraft_watch_log": (c_status, [_handle, c_uint64, _handle_p]),
    "ringraft_watch_next": (c_status, [_handle, c_uint32, _batch_p]),
    "ringraft_watch_close": (None, [_handle]),
    "ringraft_kv_get": (c_status, [_handle, c_char_p, c_size_t, _kv_entry_p]),
    "ringraft_kv_cas": (
        c_status,
        [_handle, c_char_p, c_size_t, c_uint64, c_char_p, c_size_t, _u64_p],
    ),
    "ringraft_kv_delete": (c_status, [_handle, c_char_p, c_size_t, c_uint64]),
    "ringraft_kv_entry_free": (None, [_kv_entry_p]),
    "ringraft_cluster_status": (c_status, [_handle, POINTER(RingraftClusterInfo)]),
    "ringraft_members": (c_status, [_handle, _node_p, c_size_t, _size_p, _u64_p]),
    "ringraft_owner": (c_status, [_handle, c_char_p, c_size_t, _node_p]),
    "ringraft_replicas": (c_status, [_handle, c_char_p, c_size_t, c_size_t, _node_p, _size_p]),
    "ringraft_ring": (c_status, [_handle, _handle_p]),
    "ringraft_ring_view_free": (None, [_handle]),
    "ringraft_ring_view_epoch": (c_uint64, [_handle]),
    "ringraft_ring_view_replication_factor": (c_uint32, [_handle]),
    "ringraft_ring_view_bytes": (POINTER(c_uint8), [_handle, _size_p]),
    "ringraft_ring_view_members": (c_status, [_handle, _node_p, c_size_t, _size_p]),
    "ringraft_ring_view_owner": (c_status, [_handle, c_char_p, c_size_t, _node_p]),
    "ringraft_ring_view_replicas": (
        c_status,
        [_handle, c_char_p, c_size_t, c_size_t, _node_p, _size_p],
    ),
}


class LibraryNotFoundError(OSError):
    """libringraft could not be found or loaded; the message lists every place tried."""


class Library:
    """A loaded libringraft: the ctypes handle with every function declared, and where it came
    from."""

    def __init__(self, cdll: ctypes.CDLL, path: str) -> None:
        self.cdll = cdll
        self.path = path
        for name, (restype, argtypes) in _SIGNATURES.items():
            try:
                function = getattr(cdll, name)
            except AttributeError:
                raise LibraryNotFoundError(
                    f"{path} lacks {name}: it is not libringraft, or an incompatible build"
                ) from None
            function.restype = restype
            function.argtypes = argtypes
            setattr(self, name, function)
        self.version: str = cdll.ringraft_version().decode("ascii", "replace")
        major = self.version.split(".", 1)[0]
        if major != str(SUPPORTED_MAJOR):
            raise LibraryNotFoundError(
                f"{path} is libringraft {self.version}; these bindings need major version "
                f"{SUPPORTED_MAJOR}"
            )
        # Layout checks: a mismatch here would make every answer garbage.
        for struct, size in (
            (RingraftNode, NODE_SIZE),
            (RingraftClusterInfo, CLUSTER_INFO_SIZE),
            (RingraftKvEntry, KV_ENTRY_SIZE),
        ):
            if ctypes.sizeof(struct) != size:
                raise LibraryNotFoundError(
                    f"ctypes layout of {struct.__name__} is {ctypes.sizeof(struct)} bytes, "
                    f"the header says {size}"
                )

    if TYPE_CHECKING:
        # The C functions are set as attributes in __init__, from _SIGNATURES.
        def __getattr__(self, name: str) -> Any: ...

    def strerror(self, status: int) -> str:
        text: bytes = self.ringraft_strerror(status)
        return text.decode("utf-8", "replace")

    def last_error(self, handle: Optional[int]) -> str:
        message = self.ringraft_last_error(handle)
        return message.decode("utf-8", "replace") if message else ""


_PACKAGE_DIR = Path(__file__).resolve().parent
_loaded: Optional[Library] = None
_load_lock = threading.Lock()


def _reset_lock_after_fork() -> None:
    global _load_lock
    _load_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_lock_after_fork)


def _package_copies() -> List[Path]:
    """Copies of the library shipped inside the package, most specific name first."""
    preferred = ["libringraft.so.0", "libringraft.so"]
    found = [_PACKAGE_DIR / name for name in preferred if (_PACKAGE_DIR / name).exists()]
    others = sorted(
        path for path in _PACKAGE_DIR.glob("libringraft.so*") if path.name not in preferred
    )
    return found + others


def _candidates() -> Tuple[List[Tuple[str, str]], bool]:
    """(where, what to load) pairs in discovery order, and whether RINGRAFT_LIB decided alone."""
    explicit = os.environ.get("RINGRAFT_LIB")
    if explicit:
        # An explicit path is a decision: never fall back to another copy behind the user's back.
        return [("RINGRAFT_LIB", explicit)], True
    candidates = [("package copy", str(path)) for path in _package_copies()]
    system = ctypes.util.find_library("ringraft")
    if system:
        candidates.append(("system (find_library)", system))
    candidates.append(("system (soname)", "libringraft.so.0"))
    return candidates, False


def load() -> Library:
    """The library, loaded on first use: RINGRAFT_LIB, then a copy in the package, then the
    system."""
    global _loaded
    with _load_lock:
        if _loaded is not None:
            return _loaded
        candidates, explicit = _candidates()
        failures = []
        for where, target in candidates:
            try:
                cdll = ctypes.CDLL(target)
            except OSError as error:
                failures.append(f"{where}: {target}: {error}")
                continue
            _loaded = Library(cdll, target)
            return _loaded
        hint = (
            "check the RINGRAFT_LIB path"
            if explicit
            else "set RINGRAFT_LIB to the path of libringraft.so, put a copy in "
            f"{_PACKAGE_DIR}, or install it system-wide"
        )
        raise LibraryNotFoundError(
            "cannot load libringraft (" + hint + "); tried:\n  " + "\n  ".join(failures)
        )
