"""Per-key registers: get, cas, put and delete through every node, versions, conflicts with the
current version, limits, argument checks, and a write whose answer never comes."""

from __future__ import annotations

import dataclasses
import os
import pickle
import socket
import struct
import threading
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

import ringraft

from .conftest import DevCluster

# The daemon's default value limit (proto KV_VALUE_BYTES_MAX_DEFAULT) and the registers' key
# limit (paxos KEY_BYTES_MAX).
VALUE_BYTES_MAX = 64 << 10
KEY_BYTES_MAX = 4096


def fresh_key(what: str) -> bytes:
    """A key no earlier test (or run against the same cluster) used: it starts absent."""
    return b"py-kv-%s-%s" % (what.encode(), os.urandom(8).hex().encode())


# -- needs only the library ---------------------------------------------------------------------


def test_kv_entry_is_a_frozen_dataclass_exported_from_the_package() -> None:
    entry = ringraft.KvEntry(value=b"v", version=3, epoch=7)
    assert dataclasses.is_dataclass(entry)
    assert [f.name for f in dataclasses.fields(entry)] == ["value", "version", "epoch"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.version = 4  # type: ignore[misc]
    assert ringraft.KvEntry(b"v", 3, 7) == entry
    assert "KvEntry" in ringraft.__all__


def test_conflict_is_a_ringraft_error_with_the_current_version() -> None:
    error = ringraft.Conflict("the register's version is 5", current_version=5)
    assert isinstance(error, ringraft.RingraftError)
    assert error.status is ringraft.Status.CONFLICT
    assert error.current_version == 5
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), copy.current_version, str(copy)) == (ringraft.Conflict, 5, str(error))
    # A membership conflict (join) has no register version.
    assert ringraft._errors.error_for(ringraft.Status.CONFLICT, "m").current_version is None


@pytest.fixture
def silent_daemon(tmp_path: Path) -> Iterator[str]:
    """A socket that completes the handshake (protocol 3, values up to 64 KiB) and then never
    answers; yields its path."""
    path = str(tmp_path / "silent.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(4)
    received: List[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(12)
                conn.sendall(
                    b"RINGRAFT"
                    # The protocol version libringraft speaks (proto's PROTOCOL_VERSION).
                    + struct.pack("<HI", 4, 0)
                    + struct.pack("<III", 1 << 20, 1 << 16, VALUE_BYTES_MAX)
                )
                while True:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    received.append(chunk)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        listener.close()


def test_a_write_without_answer_times_out_as_an_unknown_outcome(silent_daemon: str) -> None:
    with ringraft.Client(silent_daemon, timeout=0.1) as client:
        with pytest.raises(ringraft.Timeout) as raised:
            client.kv_put(b"k", b"v")
        assert "may or may not have taken effect" in str(raised.value)
        with pytest.raises(ringraft.Timeout):
            client.kv_delete(b"k", 3)
        with pytest.raises(ringraft.Timeout):
            client.kv_get(b"k")


def test_limits_and_arguments_are_checked_before_sending(silent_daemon: str) -> None:
    # Every call here fails at once: nothing reaches the (silent) daemon, so no timeout.
    with ringraft.Client(silent_daemon, timeout=30) as client:
        with pytest.raises(ringraft.TooLarge, match="value"):
            client.kv_put(b"k", b"x" * (VALUE_BYTES_MAX + 1))
        with pytest.raises(ringraft.TooLarge, match="key"):
            client.kv_get(b"k" * (KEY_BYTES_MAX + 1))
        with pytest.raises(ringraft.TooLarge):
            client.kv_cas(b"k" * (KEY_BYTES_MAX + 1), b"v", 0)
        with pytest.raises(ringraft.TooLarge):
            client.kv_delete(b"k" * (KEY_BYTES_MAX + 1))
        for key in (b"", ""):
            with pytest.raises(ringraft.InvalidArgument, match="key"):
                client.kv_get(key)
        with pytest.raises(ringraft.InvalidArgument):
            client.kv_cas(b"k", b"v", -1)  # would wrap to "any version" in ctypes
        with pytest.raises(ringraft.InvalidArgument):
            client.kv_delete(b"k", 2**64)
        with pytest.raises(TypeError):
            client.kv_get(42)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            client.kv_put(b"k", 42)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            client.kv_cas(b"k", b"v", 1.0)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            client.kv_delete(b"k", True)


# -- against the dev cluster (needs the daemon's registers) -------------------------------------


def test_absent_is_none(client: ringraft.Client) -> None:
    assert client.kv_get(fresh_key("absent")) is None


def test_versions_count_writes_across_nodes(clients: Dict[int, ringraft.Client]) -> None:
    key = fresh_key("flow")
    first, second = clients[1], clients[2]
    assert first.kv_cas(key, b"one", 0) == 1
    entry = second.kv_get(key)
    assert entry is not None
    assert (entry.value, entry.version) == (b"one", 1)
    assert entry.epoch > 0
    assert second.kv_cas(key, b"two", 1) == 2
    assert first.kv_put(key, b"three") == 3
    third = clients[3].kv_get(key)
    assert third is not None and (third.value, third.version) == (b"three", 3)
    first.kv_delete(key, 3)
    assert second.kv_get(key) is None
    first.kv_delete(key)  # deleting an absent register succeeds
    first.kv_delete(key, 0)
    assert second.kv_cas(key, b"again", 0) == 1, "after a delete, versions start again"


def test_a_version_mismatch_raises_conflict_with_the_current_version(
    client: ringraft.Client,
) -> None:
    key = fresh_key("conflict")
    assert client.kv_put(key, b"v") == 1
    for expected in (0, 2, 99):
        with pytest.raises(ringraft.Conflict) as raised:
            client.kv_cas(key, b"x", expected)
        assert raised.value.current_version == 1
        assert raised.value.status is ringraft.Status.CONFLICT
        assert isinstance(raised.value, ringraft.RingraftError)
    with pytest.raises(ringraft.Conflict) as raised:
        client.kv_delete(key, 5)
    assert raised.value.current_version == 1
    # Nothing was written or deleted.
    after = client.kv_get(key)
    assert after is not None and (after.value, after.version) == (b"v", 1)
    missing = fresh_key("conflict-absent")
    with pytest.raises(ringraft.Conflict) as raised:
        client.kv_cas(missing, b"x", 1)
    assert raised.value.current_version == 0


def test_str_keys_and_values_are_utf8_and_empty_values_are_present(
    client: ringraft.Client,
) -> None:
    key = "py-kv-clé-" + os.urandom(4).hex()
    assert client.kv_put(key, "valeur") == 1
    entry = client.kv_get(key.encode("utf-8"))
    assert entry is not None and entry.value == "valeur".encode("utf-8")
    assert client.kv_cas(bytearray(key.encode("utf-8")), memoryview(b""), 1) == 2
    entry = client.kv_get(key)
    assert entry is not None and (entry.value, entry.version) == (b"", 2)


def test_values_at_the_limits_are_stored(client: ringraft.Client) -> None:
    key = fresh_key("limit")
    value = os.urandom(VALUE_BYTES_MAX)
    assert client.kv_put(key, value) == 1
    entry = client.kv_get(key)
    assert entry is not None and entry.value == value
    long_key = key + b"k" * (KEY_BYTES_MAX - len(key))
    assert client.kv_put(long_key, b"v") == 1
    client.kv_delete(long_key, 1)
    with pytest.raises(ringraft.TooLarge):
        client.kv_put(key, value + b"!")


def test_cas_increments_from_every_node_are_each_counted_once(cluster: DevCluster) -> None:
    key = fresh_key("counter")
    per_worker = 10
    acknowledged: List[int] = []
    failures: List[BaseException] = []

    def worker(socket_path: str) -> None:
        try:
            with ringraft.Client(socket_path, timeout=10) as client:
                done = 0
                while done < per_worker:
                    entry = client.kv_get(key)
                    counter = int(entry.value) if entry else 0
                    try:
                        client.kv_cas(key, str(counter + 1), entry.version if entry else 0)
                    except ringraft.Conflict:
                        continue
                    acknowledged.append(1)
                    done += 1
        except BaseException as error:  # noqa: BLE001 (reported below)
            failures.append(error)

    sockets = list(cluster.sockets.values()) * 2
    threads = [threading.Thread(target=worker, args=(path,)) for path in sockets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    with ringraft.Client(sockets[0]) as client:
        entry = client.kv_get(key)
    assert entry is not None
    assert int(entry.value) == len(acknowledged) == per_worker * len(sockets)
    assert entry.version == len(acknowledged)
