"""A running watch of the application log (`ringraft_watch`)."""

from __future__ import annotations

import ctypes
import math
import threading
import time
import weakref
from collections import deque
from typing import TYPE_CHECKING, Deque, Iterator, Optional

from . import _fork, _lib
from ._convert import Seconds
from ._errors import Closed, InvalidArgument, RingraftError, Status, Timeout, error_for
from ._types import LogRecord, batch_from_c

if TYPE_CHECKING:
    from ._client import Client, _Handle

#: Longest single wait inside the library. Between waits the watch notices close() from another
#: thread, which therefore waits at most this long.
_WAIT_SLICE_MS = 200


class Watch:
    """Every record of the log from a starting index on, in order, each once.

    Iterate over it (blocks until the next record; ends when the watch is closed) or call
    `get(timeout)`. Close it with `close()` or by leaving its `with` block. One thread at a time
    reads it; `close()` may come from any thread.
    """

    def __init__(self, client: "Client", handle: "_Handle", pointer: int, start: int) -> None:
        # Holding the client keeps it open for as long as the watch is in use.
        self._client = client
        self._handle = handle
        self._lib = handle.lib
        self._pointer = pointer
        self._next_index = start
        self._pending: Deque[LogRecord] = deque()
        self._closed = False
        # Held around each wait in the library: the watch is single-threaded in C, and close()
        # must not free it while a wait runs.
        self._lock = threading.Lock()
        self._free = weakref.finalize(self, handle.lib.ringraft_watch_close, pointer)
        self._forked = False
        _fork.track(self)

    def _abandon_after_fork(self) -> None:
        # Closing it here would cancel the parent's watch on the connection both share.
        self._free.detach()
        self._lock = threading.Lock()
        self._closed = True
        self._forked = True

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def next_index(self) -> int:
        """The index the watch delivers from next: one past the last record handed out."""
        return self._next_index

    def close(self) -> None:
        """Stops the watch and frees it. Idempotent; from another thread, it waits for a wait in
        progress to end (a fraction of a second)."""
        self._closed = True
        with self._lock:
            self._free()

    def __enter__(self) -> "Watch":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[LogRecord]:
        return self

    def __next__(self) -> LogRecord:
        try:
            return self.get()
        except Closed:
            if self._closed:
                raise StopIteration from None
            raise

    def get(self, timeout: Optional[Seconds] = None) -> LogRecord:
        """The next record, waiting up to `timeout` seconds (None: until one comes; 0: only what
        has arrived). Raises `Timeout` when none came in time (the watch goes on), `Compacted`
        when the next index was compacted away (the watch ended), `Closed` once closed."""
        deadline = _deadline(timeout)
        while True:
            with self._lock:
                if self._closed:
                    message = _fork.FORKED_MESSAGE if self._forked else "the watch is closed"
                    raise Closed(message, Status.CLOSED)
                if self._pending:
                    return self._take()
                wait_ms = _WAIT_SLICE_MS if deadline is None else _remaining_ms(deadline)
                batch = _lib.RingraftLogBatch()
                status = self._lib.ringraft_watch_next(self._pointer, wait_ms, ctypes.byref(batch))
                try:
                    if status == Status.OK:
                        self._pending.extend(batch_from_c(batch))
                        return self._take()
                finally:
                    self._lib.ringraft_log_batch_free(ctypes.byref(batch))
                if status != Status.TIMEOUT:
                    raise self._error(status)
            if deadline is not None and time.monotonic() >= deadline:
                raise Timeout(f"no record from index {self._next_index} in time", Status.TIMEOUT)

    def _take(self) -> LogRecord:
        record = self._pending.popleft()
        self._next_index = record.index + 1
        return record

    def _error(self, status: int) -> RingraftError:
        # The message sits under the watch's client, which may be closed (and freed) by now.
        try:
            with self._handle.use() as pointer:
                message = self._lib.last_error(pointer)
        except Closed:
            message = self._lib.strerror(status) + " (the client is closed)"
        return error_for(status, message or self._lib.strerror(status))


def _deadline(timeout: Optional[Seconds]) -> Optional[float]:
    if timeout is None:
        return None
    seconds = timeout.total_seconds() if hasattr(timeout, "total_seconds") else timeout
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"timeout must be a number of seconds, not {type(timeout).__name__}")
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidArgument(
            f"timeout must be zero or a positive number of seconds, not {seconds}"
        )
    return time.monotonic() + seconds


def _remaining_ms(deadline: float) -> int:
    remaining = deadline - time.monotonic()
    return max(0, min(_WAIT_SLICE_MS, math.ceil(remaining * 1000)))
