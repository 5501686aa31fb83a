"""Finding and loading libringraft, and checking it is the library _ffi.py declares.

The declarations themselves (structs, handles, every function with its ctypes and Python types)
are generated from include/ringraft.h into _ffi.py; the struct layouts are checked against the
sizes the header documents when the library loads, so a layout mistake fails at once instead of
corrupting memory later.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from pathlib import Path
from typing import List, Optional, Tuple

from . import _ffi
from ._ffi import (
    ClientPtr,
    RingraftClusterInfo,
    RingraftKvEntry,
    RingraftLogBatch,
    RingraftLogRecord,
    RingraftNode,
    RingViewPtr,
    WatchPtr,
    byref,
)

__all__ = [
    "ClientPtr",
    "RingViewPtr",
    "RingraftClusterInfo",
    "RingraftKvEntry",
    "RingraftLogBatch",
    "RingraftLogRecord",
    "RingraftNode",
    "WatchPtr",
    "byref",
]

#: The library major version these bindings speak; the C ABI only grows within a major version.
SUPPORTED_MAJOR = _ffi.RINGRAFT_VERSION_MAJOR

#: Sizes of the fixed string arrays (RINGRAFT_*_MAX in the header), terminating NUL included.
NAME_MAX = _ffi.RINGRAFT_NAME_MAX
ADDRESS_MAX = _ffi.RINGRAFT_ADDRESS_MAX
ZONE_MAX = _ffi.RINGRAFT_ZONE_MAX
VERSION_STRING_MAX = _ffi.RINGRAFT_VERSION_STRING_MAX

#: ringraft_node.flags bit: a string field was cut to fit its array.
NODE_TRUNCATED = _ffi.RINGRAFT_NODE_TRUNCATED

#: `expected_version` meaning "whatever the version is" (RINGRAFT_KV_ANY_VERSION).
KV_ANY_VERSION = _ffi.RINGRAFT_KV_ANY_VERSION

# The sizes the header promises ("592 bytes, no padding", "176 bytes, no padding"; the register
# entry: two pointer-sized fields and two 64-bit ones, no padding).
NODE_SIZE = 592
CLUSTER_INFO_SIZE = 176
KV_ENTRY_SIZE = 2 * ctypes.sizeof(ctypes.c_void_p) + 16

#: The C functions the bindings bind, by the header's names.
FUNCTION_NAMES = tuple(name for name in vars(_ffi.Functions) if name.startswith("ringraft_"))


class LibraryNotFoundError(OSError):
    """libringraft could not be found or loaded; the message lists every place tried."""


class Library(_ffi.Functions):
    """A loaded libringraft: every C function as a typed method (see _ffi.Functions), and where
    it came from."""

    def __init__(self, cdll: ctypes.CDLL, path: str) -> None:
        for name in FUNCTION_NAMES:
            if not hasattr(cdll, name):
                raise LibraryNotFoundError(
                    f"{path} lacks {name}: it is not libringraft, or an incompatible build"
                )
        super().__init__(cdll)
        self.cdll = cdll
        self.path = path
        self.version: str = (self.ringraft_version() or b"").decode("ascii", "replace")
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

    def strerror(self, status: int) -> str:
        return (self.ringraft_strerror(status) or b"").decode("utf-8", "replace")

    def last_error(self, client: Optional[ClientPtr]) -> str:
        """This thread's message about its last failed call on `client` (None: the calls
        without a client)."""
        message = self.ringraft_last_error(ClientPtr() if client is None else client)
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
