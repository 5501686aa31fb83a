"""The one lifetime of clients, ring views and watches (ringraft._owned.Owned), on its own: a
stand-in free function records what would have been freed, so nothing here reaches C."""

from __future__ import annotations

import gc
import os
import threading
from typing import Callable, List

import pytest

import ringraft
from ringraft import _fork
from ringraft._ffi import ClientPtr
from ringraft._owned import Owned

from .conftest import wait_for

POINTER_VALUE = 0x1234


class Owner:
    """What holds a handle (a Client, a Watch, a RingView)."""


def owned_by(
    owner: Owner, freed: List[int], *, abandon_after_fork: bool = True
) -> Owned[ClientPtr]:
    def free(pointer: ClientPtr) -> None:
        freed.append(pointer.value or 0)

    return Owned(
        owner, ClientPtr(POINTER_VALUE), free, "client", abandon_after_fork=abandon_after_fork
    )


def test_close_frees_once_and_then_refuses_every_use() -> None:
    freed: List[int] = []
    owner = Owner()
    handle = owned_by(owner, freed)
    with handle as pointer:
        assert pointer.value == POINTER_VALUE
    handle.close()
    handle.close()
    assert freed == [POINTER_VALUE]
    assert handle.closed
    with pytest.raises(ringraft.Closed) as raised:
        with handle:
            pass
    assert raised.value.status is ringraft.Status.CLOSED
    assert str(raised.value) == "the client is closed"
    # Dropping the owner after an explicit close frees nothing more.
    del owner
    gc.collect()
    assert freed == [POINTER_VALUE]


def test_close_waits_for_a_use_in_another_thread() -> None:
    freed: List[int] = []
    owner = Owner()
    handle = owned_by(owner, freed)
    inside = threading.Event()
    may_leave = threading.Event()

    def use() -> None:
        with handle:
            inside.set()
            may_leave.wait()

    user = threading.Thread(target=use)
    user.start()
    try:
        inside.wait()
        closer = threading.Thread(target=handle.close)
        closer.start()
        # Once close() has begun new uses are refused, but the running one still holds the
        # pointer: nothing may be freed yet.
        wait_for(lambda: handle.closed, "close() to begin")
        assert freed == []
    finally:
        # Also when the assertion fails: a user thread left waiting would hang pytest's exit.
        may_leave.set()
        user.join()
    closer.join()
    assert freed == [POINTER_VALUE]


def test_a_forgotten_owner_is_freed_by_garbage_collection() -> None:
    freed: List[int] = []
    owner = Owner()
    handle = owned_by(owner, freed)
    del owner
    gc.collect()
    assert freed == [POINTER_VALUE]
    assert handle.closed


def test_the_handle_does_not_keep_its_owner_alive() -> None:
    freed: List[int] = []
    owner = Owner()
    handle = owned_by(owner, freed)
    alive = [owner]
    del owner
    gc.collect()
    assert freed == []  # still referenced from `alive`
    alive.clear()
    gc.collect()
    assert freed == [POINTER_VALUE]
    assert handle.closed


def _forked(check: Callable[[], int]) -> int:
    """Runs `check` in a forked child and returns its exit code."""
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            code = check()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_forked_child_never_uses_nor_frees_an_abandoned_handle() -> None:
    freed: List[int] = []
    owner = Owner()
    handle = owned_by(owner, freed, abandon_after_fork=True)

    def in_child() -> int:
        try:
            with handle:
                return 1  # the inherited pointer must not be usable
        except ringraft.Closed as error:
            if str(error) != _fork.FORKED_MESSAGE:
                return 2
        handle.close()
        nonlocal owner
        del owner
        gc.collect()
        return 0 if freed == [] else 3

    assert _forked(in_child) == 0
    # The parent's handle is untouched.
    with handle as pointer:
        assert pointer.value == POINTER_VALUE
    handle.close()
    assert freed == [POINTER_VALUE]


def test_a_handle_not_abandoned_at_fork_stays_usable_in_the_child() -> None:
    # Ring views: memory of the process only, no connection or thread behind them.
    freed: List[int] = []
    owner = Owner()
    handle = owned_by(owner, freed, abandon_after_fork=False)

    def in_child() -> int:
        with handle as pointer:
            if pointer.value != POINTER_VALUE:
                return 1
        handle.close()
        return 0 if freed == [POINTER_VALUE] else 2

    assert _forked(in_child) == 0
    assert freed == []
    handle.close()
