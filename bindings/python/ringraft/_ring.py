"""A ring snapshot held in this process (`ringraft_ring_view`), and the error check every call
shares."""

from __future__ import annotations

import ctypes
import weakref
from typing import Callable, Optional, Tuple

from . import _lib
from ._convert import key_bytes, u64
from ._errors import Status, error_for
from ._types import Key, Node


def check(lib: _lib.Library, status: int, handle: Optional[int]) -> None:
    """Raises the exception for a failed call; `handle` is the client whose last-error message
    explains it (None for calls without a client)."""
    if status != Status.OK:
        raise error_for(status, lib.last_error(handle) or lib.strerror(status))


#: Up to this many replicas the answer array is allocated as asked; beyond it the bindings size
#: it by the member count, since a huge `n` must not become a huge allocation.
REPLICAS_DIRECT_MAX = 1024

_MemberCount = Callable[[], int]
_ReplicasCall = Callable[[bytes, int, "ctypes.Array[_lib.RingraftNode]", ctypes.c_size_t], None]


def replicas(key: Key, n: int, member_count: _MemberCount, call: _ReplicasCall) -> Tuple[Node, ...]:
    """Runs a replicas call with an answer array that is never larger than needed.

    Replicas are distinct members, so there are never more of them than members. For a large
    `n` the array is sized by the member count; if the answer fills it exactly the membership may
    have grown meanwhile, so the count is asked again (a bounded number of times).
    """
    data = key_bytes(key)
    wanted = u64(n, "n")
    capacity = wanted
    previous_capacity = -1
    nodes: Tuple[Node, ...] = ()
    for _ in range(8):
        if wanted > REPLICAS_DIRECT_MAX:
            capacity = min(wanted, max(1, member_count()))
        if capacity == previous_capacity:
            break  # the membership did not grow: the last answer was complete
        # n = 0 goes to C unchanged, which refuses it with its own message.
        out = (_lib.RingraftNode * max(1, capacity))()
        count = ctypes.c_size_t(0)
        call(data, capacity, out, count)
        nodes = tuple(Node._from_c(out[i]) for i in range(count.value))
        if count.value < capacity or capacity == wanted:
            break
        previous_capacity = capacity
    return nodes


class RingView:
    """Owns one `ringraft_ring_view`; frees it when garbage-collected. Immutable and safe to
    query from many threads at once."""

    def __init__(self, lib: _lib.Library, pointer: int) -> None:
        self._lib = lib
        self._pointer = pointer
        self._free = weakref.finalize(self, lib.ringraft_ring_view_free, pointer)

    def epoch(self) -> int:
        return int(self._lib.ringraft_ring_view_epoch(self._pointer))

    def replication_factor(self) -> int:
        return int(self._lib.ringraft_ring_view_replication_factor(self._pointer))

    def encoded(self) -> bytes:
        length = ctypes.c_size_t(0)
        data = self._lib.ringraft_ring_view_bytes(self._pointer, ctypes.byref(length))
        if not data or length.value == 0:
            return b""
        return ctypes.string_at(data, length.value)

    def member_count(self) -> int:
        count = ctypes.c_size_t(0)
        status = self._lib.ringraft_ring_view_members(self._pointer, None, 0, ctypes.byref(count))
        if status not in (Status.OK, Status.BUFFER_TOO_SMALL):
            check(self._lib, status, None)
        return count.value

    def members(self) -> Tuple[Node, ...]:
        # The view is immutable, so the count cannot change between the two calls.
        capacity = self.member_count()
        out = (_lib.RingraftNode * max(1, capacity))()
        count = ctypes.c_size_t(0)
        status = self._lib.ringraft_ring_view_members(
            self._pointer, out, capacity, ctypes.byref(count)
        )
        check(self._lib, status, None)
        return tuple(Node._from_c(out[i]) for i in range(count.value))

    def owner(self, key: Key) -> Node:
        data = key_bytes(key)
        out = _lib.RingraftNode()
        status = self._lib.ringraft_ring_view_owner(
            self._pointer, data, len(data), ctypes.byref(out)
        )
        check(self._lib, status, None)
        return Node._from_c(out)

    def replicas(self, key: Key, n: int) -> Tuple[Node, ...]:
        def call(
            data: bytes,
            capacity: int,
            out: "ctypes.Array[_lib.RingraftNode]",
            count: ctypes.c_size_t,
        ) -> None:
            status = self._lib.ringraft_ring_view_replicas(
                self._pointer, data, len(data), capacity, out, ctypes.byref(count)
            )
            check(self._lib, status, None)

        return replicas(key, n, self.member_count, call)
