"""What a process forked from one using libringraft must not touch.

A child of fork() inherits the parent's clients but neither their background threads nor a
connection of its own: the socket is the parent's. Closing such a client would join threads that
do not exist, and closing an inherited watch would cancel the parent's watch on the shared
connection. So in the child every inherited client and watch is abandoned (never passed to C
again, its memory left alone) and fails with `Closed`; the child opens its own clients.
"""

from __future__ import annotations

import os
import weakref
from typing import Protocol


class _Abandonable(Protocol):
    def _abandon_after_fork(self) -> None: ...


_live: "weakref.WeakSet[_Abandonable]" = weakref.WeakSet()

FORKED_MESSAGE = "this client was opened before os.fork(); open a new one in this process"


def track(holder: _Abandonable) -> None:
    _live.add(holder)


def _abandon_all() -> None:
    for holder in list(_live):
        holder._abandon_after_fork()
    _live.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_abandon_all)
