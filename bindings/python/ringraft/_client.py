"""The client: one connection to a ringraftd, shared by any number of threads."""

from __future__ import annotations

import ctypes
import os
import re
from typing import Optional, Tuple, Union

from . import _lib
from ._convert import Seconds, key_bytes, milliseconds, text, u32, u64
from ._errors import BufferTooSmall, Conflict, InvalidArgument, Status
from ._lib import ClientPtr, RingViewPtr, WatchPtr, byref
from ._owned import Owned
from ._ring import RingView, check, replicas
from ._types import (
    ClusterStatus,
    Key,
    KvEntry,
    LogBatch,
    Members,
    Node,
    Ring,
    batch_from_c,
    kv_entry_from_c,
)
from ._watch import Watch

#: How many times members() asks again when the membership grew between sizing and reading.
_MEMBERS_ATTEMPTS = 8

#: How libringraft names the current version in a register conflict's message (ringraft_kv_delete
#: has no out-parameter for it).
_CONFLICT_VERSION = re.compile(r"version is (\d+)")

PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]


class Client:
    """A connection to the ringraftd listening on `socket_path`.

    `timeout` (seconds) bounds every call's wait for the daemon, reconnecting included (the
    library's default is 5 s). With `linearizable`, owner, replicas, members and ring answers are
    confirmed by the leader first. With `ring_cache` (a refresh interval in seconds) owner and
    replicas are answered in this process from a cached ring.

    Thread-safe: any number of threads may share one client; their requests are pipelined on
    its one connection. `close()` waits for calls still running. Use it as a context manager, or
    call `close()`; garbage collection closes a forgotten client too.
    """

    def __init__(
        self,
        socket_path: PathLike,
        timeout: Optional[Seconds] = None,
        *,
        linearizable: bool = False,
        ring_cache: Optional[Seconds] = None,
    ) -> None:
        path = os.fsencode(socket_path)
        if b"\0" in path:
            raise InvalidArgument("socket_path contains a NUL byte")
        timeout_ms = None if timeout is None else milliseconds(timeout, "timeout")
        cache_ms = None if ring_cache is None else milliseconds(ring_cache, "ring_cache")
        lib = _lib.load()
        pointer = ClientPtr()
        status = lib.ringraft_connect(path, byref(pointer))
        check(lib, status, None)
        self._lib = lib
        self._path = os.fsdecode(path)
        # The header forbids ringraft_close() to overlap any call on the client: the handle
        # makes close() wait for the calls running in other threads (the GIL is released during
        # each C call, so they truly overlap).
        self._handle = Owned(self, pointer, lib.ringraft_close, "client", abandon_after_fork=True)
        self._timeout = timeout
        self._linearizable = False
        try:
            if timeout_ms is not None:
                self._set_timeout_ms(timeout_ms)
            if linearizable:
                self.linearizable = True
            if cache_ms is not None:
                self._enable_ring_cache_ms(cache_ms)
        except BaseException:
            self.close()
            raise

    # -- lifetime ---------------------------------------------------------------------------

    def close(self) -> None:
        """Closes the connection and frees the client. Idempotent. Waits for calls other threads
        still have running on it. Watches from this client then fail with `Closed`."""
        self._handle.close()

    @property
    def closed(self) -> bool:
        return self._handle.closed

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        handle = getattr(self, "_handle", None)
        state = "closed" if handle is None or handle.closed else "open"
        return f"<ringraft.Client {getattr(self, '_path', '?')!r} {state}>"

    @property
    def socket_path(self) -> str:
        return self._path

    def _check(self, status: int, client: ClientPtr) -> None:
        """Raises the error of a failed call, with the message this thread got; called inside
        the call's `with self._handle`, while the client is certainly alive."""
        if status:
            check(self._lib, status, client)

    # -- options ----------------------------------------------------------------------------

    @property
    def timeout(self) -> Optional[Seconds]:
        """Seconds each call may wait for the daemon; None means the library default (5 s)."""
        return self._timeout

    @timeout.setter
    def timeout(self, seconds: Seconds) -> None:
        self._set_timeout_ms(milliseconds(seconds, "timeout"))
        self._timeout = seconds

    def _set_timeout_ms(self, millis: int) -> None:
        with self._handle as client:
            self._check(self._lib.ringraft_set_timeout(client, millis), client)

    @property
    def linearizable(self) -> bool:
        """Whether owner, replicas, members and ring are confirmed by the leader (ReadIndex)."""
        return self._linearizable

    @linearizable.setter
    def linearizable(self, value: bool) -> None:
        with self._handle as client:
            self._check(self._lib.ringraft_set_linearizable(client, bool(value)), client)
        self._linearizable = bool(value)

    def enable_ring_cache(self, refresh: Seconds = 1.0) -> None:
        """Keeps the ring in this process: owner and replicas stop asking the daemon. A
        background thread checks the epoch every `refresh` seconds; answers may lag the daemon
        by that much. Calling it again restarts the cache with the new interval."""
        self._enable_ring_cache_ms(milliseconds(refresh, "refresh"))

    def _enable_ring_cache_ms(self, millis: int) -> None:
        with self._handle as client:
            self._check(self._lib.ringraft_enable_ring_cache(client, millis), client)

    def disable_ring_cache(self) -> None:
        """Stops the ring cache; owner and replicas ask the daemon again."""
        with self._handle as client:
            self._check(self._lib.ringraft_disable_ring_cache(client), client)

    # -- queries ----------------------------------------------------------------------------

    def status(self) -> ClusterStatus:
        """What the connected node reports: id, name, Raft role, term, leader, indexes, epoch."""
        info = _lib.RingraftClusterInfo()
        with self._handle as client:
            self._check(self._lib.ringraft_cluster_status(client, byref(info)), client)
        return ClusterStatus._from_c(info)

    def members(self) -> Members:
        """Every member (active, draining and down) and the epoch of the answer."""
        capacity = 16
        for _ in range(_MEMBERS_ATTEMPTS):
            out = (_lib.RingraftNode * capacity)()
            count = ctypes.c_size_t(0)
            epoch = ctypes.c_uint64(0)
            with self._handle as client:
                status = self._lib.ringraft_members(
                    client, out, capacity, byref(count), byref(epoch)
                )
                if status != Status.BUFFER_TOO_SMALL:
                    self._check(status, client)
                    nodes = tuple(Node._from_c(out[i]) for i in range(count.value))
                    return Members(nodes=nodes, epoch=epoch.value)
            # The answer says how many there are; leave room for a few joining meanwhile.
            capacity = max(count.value + 8, capacity * 2)
        raise BufferTooSmall("the membership kept growing while it was read")

    def _member_count(self) -> int:
        count = ctypes.c_size_t(0)
        with self._handle as client:
            status = self._lib.ringraft_members(client, None, 0, byref(count), None)
            if status != Status.BUFFER_TOO_SMALL:
                self._check(status, client)
        return count.value

    def owner(self, key: Key) -> Node:
        """The node that owns `key` (bytes, or str encoded as UTF-8)."""
        data = key_bytes(key)
        out = _lib.RingraftNode()
        # The hot path (with the ring cache, a few hundred nanoseconds in C): no generator-based
        # context manager, one status check only on failure.
        with self._handle as client:
            status = self._lib.ringraft_owner(client, data, len(data), byref(out))
            if status:
                check(self._lib, status, client)
        return Node._from_c(out)

    def replicas(self, key: Key, n: int) -> Tuple[Node, ...]:
        """The `n` nodes that hold `key`, owner first; fewer when fewer members own keys."""

        def call(
            data: bytes,
            capacity: int,
            out: "ctypes.Array[_lib.RingraftNode]",
            count: ctypes.c_size_t,
        ) -> None:
            with self._handle as client:
                status = self._lib.ringraft_replicas(
                    client, data, len(data), capacity, out, byref(count)
                )
                self._check(status, client)

        return replicas(key, n, self._member_count, call)

    def ring(self) -> Ring:
        """The ring now, with its epoch; its owner()/replicas() answer in this process."""
        pointer = RingViewPtr()
        with self._handle as client:
            self._check(self._lib.ringraft_ring(client, byref(pointer)), client)
        view = RingView(self._lib, pointer)
        return Ring(
            epoch=view.epoch(),
            replication_factor=view.replication_factor(),
            members=view.members(),
            encoded=view.encoded(),
            _view=view,
        )

    # -- the application log ----------------------------------------------------------------

    def propose(
        self, data: Union[bytes, bytearray, memoryview, str], timeout: Optional[Seconds] = None
    ) -> int:
        """Commits `data` in the cluster's one order and returns its Raft index once it is
        applied on this node. `timeout` bounds the wait for the commit (default: the client
        timeout). After `Timeout` or `Unavailable` the proposal may still have committed; read
        the log to find out. Never sent twice."""
        payload = key_bytes(data, "data")
        timeout_ms = 0 if timeout is None else milliseconds(timeout, "timeout")
        index = ctypes.c_uint64(0)
        with self._handle as client:
            status = self._lib.ringraft_propose(
                client, payload, len(payload), timeout_ms, byref(index)
            )
            self._check(status, client)
        return index.value

    def read_log(self, start: int = 1, max: int = 1000) -> LogBatch:  # noqa: A002 (the API's name)
        """Up to `max` committed records with index >= `start`, in order. Empty when nothing is
        at or after `start` yet; `Compacted` when `start` is older than the node keeps."""
        start = u64(start, "start")
        count = u32(max, "max")
        batch = _lib.RingraftLogBatch()
        with self._handle as client:
            status = self._lib.ringraft_read_log(client, start, count, byref(batch))
            try:
                self._check(status, client)
                return batch_from_c(batch)
            finally:
                self._lib.ringraft_log_batch_free(byref(batch))

    def watch_log(self, start: int = 1) -> Watch:
        """Watches the log from index `start`: every record from there on, those committed
        already and those committed later, in order, each once (also across daemon restarts).
        Iterate over it, or call `get()`; close it (or use it as a context manager).

        Returns once the daemon has accepted the watch (one round trip). Raises `Busy` when
        this client already runs as many watches as the daemon allows per connection
        (`limits.watches_per_connection_max`, 16 by default: close one, or use another client),
        and `Compacted` when `start` is older than the node keeps (which may also come from
        the first `get()`, if the window moves on in between)."""
        start = u64(start, "start")
        pointer = WatchPtr()
        with self._handle as client:
            self._check(self._lib.ringraft_watch_log(client, start, byref(pointer)), client)
        return Watch(self, self._handle, self._lib, pointer, start)

    # -- per-key registers ------------------------------------------------------------------

    def kv_get(self, key: Key) -> Optional[KvEntry]:
        """The register of `key` (bytes, or str encoded as UTF-8), read linearizably: a
        `KvEntry(value, version, epoch)`, or None when it is absent (never written, or
        deleted). Keys are at most 4096 bytes (`TooLarge`)."""
        data = key_bytes(key)
        entry = _lib.RingraftKvEntry()
        with self._handle as client:
            status = self._lib.ringraft_kv_get(client, data, len(data), byref(entry))
            try:
                if status == Status.NOT_FOUND:
                    return None
                self._check(status, client)
                return kv_entry_from_c(entry)
            finally:
                self._lib.ringraft_kv_entry_free(byref(entry))

    def kv_cas(
        self, key: Key, value: Union[bytes, bytearray, memoryview, str], expected_version: int
    ) -> int:
        """Writes `value` (bytes, or str encoded as UTF-8) if the register's version is
        `expected_version` (0: only if absent) and returns the new version. Raises `Conflict`,
        whose `current_version` is the register's version, when it is another (nothing is
        written); `TooLarge` for a value over the daemon's limit (64 KiB by default).

        Never sent twice. After `Timeout` or `Unavailable` the outcome is unknown: the write may
        have taken effect. Read the register before retrying."""
        data = key_bytes(key)
        payload = key_bytes(value, "value")
        expected = u64(expected_version, "expected_version")
        version = ctypes.c_uint64(0)
        with self._handle as client:
            status = self._lib.ringraft_kv_cas(
                client, data, len(data), expected, payload, len(payload), byref(version)
            )
            self._check_kv_write(status, client, version.value)
        return version.value

    def kv_put(self, key: Key, value: Union[bytes, bytearray, memoryview, str]) -> int:
        """Writes `value` whatever the register's version is; returns the new version. As
        `kv_cas()`, a write that timed out may have taken effect."""
        return self.kv_cas(key, value, _lib.KV_ANY_VERSION)

    def kv_delete(self, key: Key, expected_version: Optional[int] = None) -> None:
        """Deletes the register if its version is `expected_version` (None: whatever it is);
        afterwards it is absent, and the next write gives it version 1. Deleting an absent
        register succeeds (with None or 0). Raises `Conflict` with `current_version` when the
        version is another (nothing is deleted). After `Timeout` or `Unavailable` the outcome is
        unknown."""
        data = key_bytes(key)
        expected = (
            _lib.KV_ANY_VERSION
            if expected_version is None
            else u64(expected_version, "expected_version")
        )
        with self._handle as client:
            status = self._lib.ringraft_kv_delete(client, data, len(data), expected)
            self._check_kv_write(status, client, None)

    def _check_kv_write(
        self, status: int, client: ClientPtr, current_version: Optional[int]
    ) -> None:
        if status != Status.CONFLICT:
            self._check(status, client)
            return
        message = self._lib.last_error(client) or self._lib.strerror(status)
        if current_version is None:
            found = _CONFLICT_VERSION.search(message)
            current_version = int(found.group(1)) if found else None
        raise Conflict(message, Status.CONFLICT, current_version=current_version)

    # -- administration (needs an admin uid) ------------------------------------------------

    def join(self, id: int, name: str, address: str, zone: str = "", weight: int = 1) -> int:  # noqa: A002
        """Adds member `id` as a learner, reachable by peers at `address` (`ip:port`).
        Returns the Raft index of the change's own entry: the ring's new epoch.

        Raises `Conflict` if another member has this id, name or address (the message names
        it). Joining again with the same id, name, address, zone and weight is a retry: it
        returns the index of the original change (0 if the leader no longer knows it). A change
        that cannot start yet (a previous one in flight, a leader just elected) waits within the
        daemon's deadline; `Timeout` if it passes (the change may still happen)."""
        member_id = u64(id, "id")
        name_c, address_c, zone_c = text(name, "name"), text(address, "address"), text(zone, "zone")
        member_weight = u32(weight, "weight")
        index = ctypes.c_uint64(0)
        with self._handle as client:
            status = self._lib.ringraft_join(
                client, member_id, name_c, address_c, zone_c, member_weight, byref(index)
            )
            self._check(status, client)
        return index.value

    def remove(self, id: int) -> int:  # noqa: A002
        """Removes member `id`; its keys move to the others. Returns the Raft index of the
        change's own entry (the ring's new epoch). `NotFound` if `id` is not a member."""
        member_id = u64(id, "id")
        index = ctypes.c_uint64(0)
        with self._handle as client:
            self._check(self._lib.ringraft_remove(client, member_id, byref(index)), client)
        return index.value

    def promote(self, id: int) -> int:  # noqa: A002
        """Makes learner `id` a voter. Returns the Raft index of the change's own entry (the
        ring's new epoch).

        Raises `Conflict` if `id` is already a voter, `NotFound` if it is not a member, and
        `Unavailable` if the leader has not heard from it within the failure detector's window
        or its log is more than `promote_lag_entries_max` entries behind (the message says how
        far behind, and since when it is silent)."""
        member_id = u64(id, "id")
        index = ctypes.c_uint64(0)
        with self._handle as client:
            self._check(self._lib.ringraft_promote(client, member_id, byref(index)), client)
        return index.value

    def transfer_leader(self, id: int) -> int:  # noqa: A002
        """Asks the leader to hand leadership to voter `id`; returns what the daemon reports (0
        when no log entry carried it)."""
        member_id = u64(id, "id")
        index = ctypes.c_uint64(0)
        with self._handle as client:
            status = self._lib.ringraft_transfer_leader(client, member_id, byref(index))
            self._check(status, client)
        return index.value

    def snapshot(self) -> int:
        """Makes the connected node snapshot and compact its log now; returns the snapshot's
        last included index."""
        index = ctypes.c_uint64(0)
        with self._handle as client:
            self._check(self._lib.ringraft_snapshot(client, byref(index)), client)
        return index.value
