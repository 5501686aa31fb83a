"""A ring snapshot held in this process (`ringraft_ring_view`), and the error check every call
shares."""

from __future__ import annotations

import ctypes
from typing import Callable, Optional, Tuple

from . import _lib
from ._convert import key_bytes, u64
from ._errors import Status, error_for
from ._lib import RingViewPtr, byref
from ._owned import Owned
from ._types import Key, Node


def check(lib: _lib.Library, status: int, client: Optional[_lib.ClientPtr]) -> None:
    """Raises the exception for a failed call; `client` is the one whose last-error message
    explains it (None for calls without a client: their message is under the NULL client)."""
    if status != Status.OK:
        raise error_for(status, lib.last_error(client) or lib.strerror(status))


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
    """Owns one `ringraft_ring_view`, freed when the view is garbage-collected (or closed).
    Immutable and safe to query from many threads at once. Not abandoned after fork(): it is
    memory of this process only, with no connection or thread behind it."""

    def __init__(self, lib: _lib.Library, pointer: RingViewPtr) -> None:
        self._lib = lib
        self._handle = Owned(
            self, pointer, lib.ringraft_ring_view_free, "ring view", abandon_after_fork=False
        )

    def close(self) -> None:
        """Frees the view now; idempotent. Lookups then raise `Closed`."""
        self._handle.close()

    def epoch(self) -> int:
        with self._handle as view:
            return self._lib.ringraft_ring_view_epoch(view)

    def replication_factor(self) -> int:
        with self._handle as view:
            return self._lib.ringraft_ring_view_replication_factor(view)

    def encoded(self) -> bytes:
        length = ctypes.c_size_t(0)
        with self._handle as view:
            data = self._lib.ringraft_ring_view_bytes(view, byref(length))
            if not data or length.value == 0:
                return b""
            # Copied while the view (which owns the bytes) is certainly alive.
            return ctypes.string_at(data, length.value)

    def member_count(self) -> int:
        count = ctypes.c_size_t(0)
        with self._handle as view:
            status = self._lib.ringraft_ring_view_members(view, None, 0, byref(count))
        if status not in (Status.OK, Status.BUFFER_TOO_SMALL):
            check(self._lib, status, None)
        return count.value

    def members(self) -> Tuple[Node, ...]:
        # The view is immutable, so the count cannot change between the two calls.
        capacity = self.member_count()
        out = (_lib.RingraftNode * max(1, capacity))()
        count = ctypes.c_size_t(0)
        with self._handle as view:
            status = self._lib.ringraft_ring_view_members(view, out, capacity, byref(count))
        check(self._lib, status, None)
        return tuple(Node._from_c(out[i]) for i in range(count.value))

    def owner(self, key: Key) -> Node:
        data = key_bytes(key)
        out = _lib.RingraftNode()
        with self._handle as view:
            status = self._lib.ringraft_ring_view_owner(view, data, len(data), byref(out))
        # The in-process hot path: the check is a call only when something failed.
        if status:
            check(self._lib, status, None)
        return Node._from_c(out)

    def replicas(self, key: Key, n: int) -> Tuple[Node, ...]:
        def call(
            data: bytes,
            capacity: int,
            out: "ctypes.Array[_lib.RingraftNode]",
            count: ctypes.c_size_t,
        ) -> None:
            with self._handle as view:
                status = self._lib.ringraft_ring_view_replicas(
                    view, data, len(data), capacity, out, byref(count)
                )
            check(self._lib, status, None)

        return replicas(key, n, self.member_count, call)
