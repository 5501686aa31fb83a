"""Opening and closing clients, and sharing one between threads (the header says a client is
thread-safe; only close must not overlap other calls, which the bindings enforce)."""

from __future__ import annotations

import gc
import os
import threading
from typing import List

import pytest

import ringraft

from .conftest import NODES


def test_context_manager_closes(cluster) -> None:
    with ringraft.Client(cluster.socket(1)) as client:
        assert not client.closed
        assert client.status().node_id == 1
    assert client.closed
    with pytest.raises(ringraft.Closed) as raised:
        client.status()
    assert raised.value.status is ringraft.Status.CLOSED
    client.close()  # idempotent
    client.close()


def test_close_on_error_inside_the_block(cluster) -> None:
    with pytest.raises(RuntimeError):
        with ringraft.Client(cluster.socket(2)) as client:
            raise RuntimeError("boom")
    assert client.closed


def test_garbage_collection_closes_a_forgotten_client(cluster) -> None:
    client = ringraft.Client(cluster.socket(1))
    handle = client._handle
    assert handle is not None and not handle.closed
    del client
    gc.collect()
    assert handle.closed


def test_many_threads_share_one_client(cluster) -> None:
    keys = [f"thread-key-{i}".encode() for i in range(40)]
    with ringraft.Client(cluster.socket(2), timeout=20) as client:
        expected_owners = {key: client.owner(key) for key in keys}
        epoch = client.status().epoch
        indexes: List[int] = []
        owners: List[bool] = []
        errors: List[BaseException] = []
        lock = threading.Lock()

        def work(worker: int) -> None:
            try:
                for round_ in range(10):
                    index = client.propose(b"t%d-%d" % (worker, round_), timeout=20)
                    same = all(client.owner(key) == expected_owners[key] for key in keys[:10])
                    assert len(client.replicas(keys[round_], NODES)) == NODES
                    assert client.status().node_id == 2
                    with lock:
                        indexes.append(index)
                        owners.append(same)
            except BaseException as error:  # reported below
                with lock:
                    errors.append(error)

        threads = [threading.Thread(target=work, args=(worker,)) for worker in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads)
        assert errors == []
        assert len(indexes) == 80 and len(set(indexes)) == 80
        if client.status().epoch == epoch:
            assert all(owners)


def test_close_waits_for_calls_in_other_threads(cluster) -> None:
    client = ringraft.Client(cluster.socket(3), timeout=20)
    started = threading.Barrier(5)
    outcomes: List[object] = []
    lock = threading.Lock()

    def hammer() -> None:
        started.wait()
        try:
            while True:
                client.owner(b"hammer")
                client.status()
        except ringraft.Closed:
            with lock:
                outcomes.append("closed")
        except BaseException as error:  # reported below
            with lock:
                outcomes.append(error)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    started.wait()
    client.close()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert outcomes == ["closed"] * 4


def _child_checks(client: ringraft.Client, watch: ringraft.Watch, socket_path: str) -> int:
    """Runs in a forked child; returns its exit code (0: every check passed)."""
    try:
        client.status()
        return 10  # the inherited client must not be usable
    except ringraft.Closed as error:
        if "fork" not in str(error):
            return 11
    try:
        watch.get(timeout=0)
        return 12
    except ringraft.Closed:
        pass
    # Closing what was inherited must not touch the parent's connection.
    watch.close()
    client.close()
    with ringraft.Client(socket_path) as own:
        return 0 if own.status().node_id == 1 else 13


def test_a_forked_child_leaves_inherited_clients_alone(cluster) -> None:
    with ringraft.Client(cluster.socket(1), timeout=10) as client:
        with client.watch_log(client.status().last_index + 1) as watch:
            pid = os.fork()
            if pid == 0:
                code = 20
                try:
                    code = _child_checks(client, watch, cluster.socket(1))
                finally:
                    os._exit(code)
            _, wait_status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(wait_status) == 0
            # The parent's client and watch go on as if nothing happened.
            index = client.propose(b"after the fork")
            record = watch.get(timeout=20)
            while record.index < index:
                record = watch.get(timeout=20)
            assert record == ringraft.LogRecord(index=index, data=b"after the fork")


def test_a_ring_answers_after_its_client_is_closed(cluster) -> None:
    with ringraft.Client(cluster.socket(1), timeout=10) as client:
        ring = client.ring()
        expected = client.owner(b"ring-after-close")
    assert client.closed
    # The view is memory of this process, owned by the Ring, not by the client.
    assert ring.owner(b"ring-after-close") == expected
    assert len(ring.replicas(b"ring-after-close")) == ring.replication_factor


def test_a_ring_view_shares_the_lifetime_of_clients_and_watches(cluster) -> None:
    with ringraft.Client(cluster.socket(1), timeout=10) as client:
        ring = client.ring()
        view = ring._view
        assert view is not None
        view.close()
        view.close()  # idempotent
        with pytest.raises(ringraft.Closed, match="the ring view is closed"):
            ring.owner(b"k")
        # A forgotten one is freed when garbage collected.
        forgotten = client.ring()
        assert forgotten._view is not None
        handle = forgotten._view._handle
        del forgotten
        gc.collect()
        assert handle.closed


def test_a_forked_child_may_use_an_inherited_ring(cluster) -> None:
    with ringraft.Client(cluster.socket(1), timeout=10) as client:
        ring = client.ring()
        expected = ring.owner(b"ring-in-child")
        pid = os.fork()
        if pid == 0:
            code = 20
            try:
                code = 0 if ring.owner(b"ring-in-child") == expected else 21
            finally:
                os._exit(code)
        _, wait_status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(wait_status) == 0
        assert ring.owner(b"ring-in-child") == expected
