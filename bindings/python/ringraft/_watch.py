"""A running watch of the application log (`ringraft_watch`)."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Deque, Iterator, Optional

from . import _lib
from ._convert import Seconds
from ._errors import Closed, InvalidArgument, RingraftError, Status, Timeout, error_for
from ._lib import ClientPtr, WatchPtr, byref
from ._owned import Owned
from ._types import LogRecord, batch_from_c

if TYPE_CHECKING:
    from ._client import Client

#: Longest single wait inside the library. Between waits the watch notices close() from another
#: thread, which therefore waits at most this long.
_WAIT_SLICE_MS = 200


class Watch:
    """Every record of the log from a starting index on, in order, each once.

    Iterate over it (blocks until the next record; ends when the watch is closed) or call
    `get(timeout)`. Close it with `close()` or by leaving its `with` block. One thread at a time
    reads it; `close()` may come from any thread.
    """

    def __init__(
        self,
        client: "Client",
        client_handle: Owned[ClientPtr],
        lib: _lib.Library,
        pointer: WatchPtr,
        start: int,
    ) -> None:
        # Holding the client keeps it open for as long as the watch is in use.
        self._client = client
        self._client_handle = client_handle
        self._lib = lib
        self._handle = Owned(
            self, pointer, lib.ringraft_watch_close, "watch", abandon_after_fork=True
        )
        self._next_index = start
        self._pending: Deque[LogRecord] = deque()
        # Held around each wait in the library: the watch is single-threaded in C. (close()
        # waits through the handle, not this lock.)
        self._reading = threading.Lock()

    @property
    def closed(self) -> bool:
        return self._handle.closed

    @property
    def next_index(self) -> int:
        """The index the watch delivers from next: one past the last record handed out."""
        return self._next_index

    def close(self) -> None:
        """Stops the watch and frees it. Idempotent; from another thread, it waits for a wait in
        progress to end (a fraction of a second)."""
        self._handle.close()

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
            if self.closed:
                raise StopIteration from None
            raise

    def get(self, timeout: Optional[Seconds] = None) -> LogRecord:
        """The next record, waiting up to `timeout` seconds (None: until one comes; 0: only what
        has arrived). Raises `Timeout` when none came in time (the watch goes on), `Compacted`
        when the next index was compacted away (the watch ended), `Closed` once closed."""
        deadline = _deadline(timeout)
        while True:
            # The handle first: it says Closed (also in a forked child) without waiting for the
            # reading lock, which a thread of the parent may have held at fork().
            with self._handle as watch, self._reading:
                if self._pending:
                    return self._take()
                wait_ms = _WAIT_SLICE_MS if deadline is None else _remaining_ms(deadline)
                batch = _lib.RingraftLogBatch()
                status = self._lib.ringraft_watch_next(watch, wait_ms, byref(batch))
                try:
                    if status == Status.OK:
                        self._pending.extend(batch_from_c(batch))
                        return self._take()
                finally:
                    self._lib.ringraft_log_batch_free(byref(batch))
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
            with self._client_handle as client:
                message = self._lib.last_error(client)
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
