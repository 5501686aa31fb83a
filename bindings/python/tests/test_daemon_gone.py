"""A client whose daemon goes away and comes back, on a one-node cluster of its own."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

import ringraft

from .conftest import dev_cluster, wait_for


def test_calls_fail_while_the_daemon_is_down_and_work_again_after(tmp_path: Path) -> None:
    with dev_cluster(tmp_path, 1) as dev:
        client = ringraft.Client(dev.socket(1), timeout=5)
        index = client.propose(b"before the restart")
        owner = client.owner(b"k")
        watch = client.watch_log(index)
        assert watch.get(timeout=10) == ringraft.LogRecord(index=index, data=b"before the restart")
    try:
        # dev_cluster stopped the daemon on leaving the block.
        for call in (client.status, lambda: client.owner(b"k"), lambda: client.propose(b"x")):
            with pytest.raises(ringraft.Unavailable) as raised:
                call()
            assert isinstance(raised.value, ConnectionError)
            assert raised.value.status is ringraft.Status.UNAVAILABLE
        # The same directory restarts the same cluster; the client reconnects by itself.
        with dev_cluster(tmp_path, 1):
            batch = wait_for(lambda: client.read_log(index, 1), "the client to reconnect")
            assert batch[0] == ringraft.LogRecord(index=index, data=b"before the restart")
            assert client.owner(b"k") == owner
            later = client.propose(b"after the restart")
            assert later > index
            # The watch resumes after the last record it delivered: nothing twice, nothing lost.
            record = _next_record_of_watch_across_restart(watch)
            while record.index < later:
                assert record.data != b"before the restart"
                record = watch.get(timeout=10)
            assert record == ringraft.LogRecord(index=later, data=b"after the restart")
    finally:
        watch.close()
        client.close()


def _next_record_of_watch_across_restart(watch: ringraft.Watch) -> ringraft.LogRecord:
    # While the daemon was down the watch may have reported it gone (Unavailable) or timed out;
    # once it is back the watch delivers again.
    def next_record():
        try:
            return watch.get(timeout=1)
        except ringraft.Timeout:
            return None

    return wait_for(next_record, "the watch to deliver after the restart")


def test_a_path_that_is_no_daemon_socket(tmp_path: Path) -> None:
    plain_file = tmp_path / "not-a-socket"
    plain_file.write_text("hello")
    with pytest.raises(ringraft.Unavailable):
        ringraft.Client(plain_file)
    # A listening socket that is not a ringraftd: no valid handshake answer.
    path = tmp_path / "silent.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    try:
        with pytest.raises(ringraft.RingraftError) as raised:
            ringraft.Client(path)
        # The header: "RINGRAFT_TIMEOUT (no handshake answer in time)".
        assert raised.value.status is ringraft.Status.TIMEOUT
        assert isinstance(raised.value, TimeoutError)
    finally:
        listener.close()
