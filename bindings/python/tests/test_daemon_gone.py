"""A client whose daemon goes away and comes back, on a one-node cluster of its own."""

from __future__ import annotations

import re
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


def test_reading_below_the_retention_window_is_compacted(tmp_path: Path) -> None:
    # A first run writes the node's configuration; a second one uses it with a tiny window
    # (`log_retention_records`, documented in packaging/ringraftd.toml).
    with dev_cluster(tmp_path, 1):
        pass
    config = tmp_path / "n1" / "ringraftd.toml"
    text, replaced = re.subn(
        r"(?m)^log_retention_records\s*=\s*\d+", "log_retention_records = 3", config.read_text()
    )
    assert replaced == 1, f"no log_retention_records in {config}"
    config.write_text(text)
    with dev_cluster(tmp_path, 1) as dev, ringraft.Client(dev.socket(1)) as client:
        indexes = [client.propose(b"r%d" % i) for i in range(8)]
        batch = client.read_log(indexes[-3], 10)
        assert [record.index for record in batch] == indexes[-3:]
        assert batch.first_index > indexes[0]
        with pytest.raises(ringraft.Compacted) as raised:
            client.read_log(indexes[0], 10)
        assert raised.value.status is ringraft.Status.COMPACTED
        assert isinstance(raised.value, LookupError)
        # The refusal comes from watch_log when the daemon decides before accepting the watch,
        # else from the first get() (documented both ways): either way, nothing is delivered.
        with pytest.raises(ringraft.Compacted):
            with client.watch_log(indexes[0]) as watch:
                watch.get(timeout=10)
