"""The one lifetime of every C handle the package holds: clients, ring views and watches."""

from __future__ import annotations

import ctypes
import threading
import weakref
from types import TracebackType
from typing import Callable, Generic, Optional, Type, TypeVar

from . import _fork
from ._errors import Closed, Status

P = TypeVar("P", bound=ctypes.c_void_p)


class Owned(Generic[P]):
    """One pointer from the library, owned by one Python object (the `owner`), and the calls
    using it.

    - A `with owned as pointer:` block is one use of the pointer; it raises `Closed` once
      close() has begun (use after close never reaches C).
    - close() refuses new uses, waits for the running ones (each ends within its own timeout),
      then frees the pointer once; calling it again does nothing. The header forbids freeing a
      client while another thread's call runs on it, and a watch while its wait runs.
    - When the owner is garbage-collected (or at interpreter exit) a finalizer closes it, so a
      forgotten client, view or watch is still freed. The finalizer holds this object, never
      the owner, so it does not keep the owner alive.
    - With `abandon_after_fork`, a forked child never passes the pointer to C again nor frees
      it (see _fork.py: freeing an inherited client or watch would break the parent's); uses
      raise `Closed` with the fork message.
    """

    def __init__(
        self,
        owner: object,
        pointer: P,
        free: Callable[[P], None],
        what: str,
        *,
        abandon_after_fork: bool,
    ) -> None:
        self._pointer: Optional[P] = pointer
        self._free = free
        self._closed_message = f"the {what} is closed"
        self._users = 0
        self._closing = False
        self._forked = False
        self._new_locks()
        self._finalizer = weakref.finalize(owner, self.close)
        if abandon_after_fork:
            _fork.track(self)

    def _abandon_after_fork(self) -> None:
        # Another thread may have held the lock at fork(): the child starts from fresh state.
        self._finalizer.detach()
        self._new_locks()
        self._pointer = None
        self._users = 0
        self._forked = True

    def _new_locks(self) -> None:
        # Uses take the plain lock (a C-level `with`, on the hot path of every call); close()
        # waits on a condition over the same lock.
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)

    @property
    def closed(self) -> bool:
        return self._pointer is None or self._closing

    def __enter__(self) -> P:
        """Registers a use and returns the pointer; `Closed` once close() has begun."""
        with self._lock:
            if self._pointer is None or self._closing:
                message = _fork.FORKED_MESSAGE if self._forked else self._closed_message
                raise Closed(message, Status.CLOSED)
            self._users += 1
            return self._pointer

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._closing:
                self._idle.notify_all()

    def close(self) -> None:
        """Frees the pointer once no use is running; idempotent."""
        with self._idle:
            if self._pointer is None or self._closing:
                return
            self._closing = True
            while self._users:
                self._idle.wait()
            pointer, self._pointer = self._pointer, None
        # Explicitly closed: the owner's finalizer has nothing left to do.
        self._finalizer.detach()
        self._free(pointer)
