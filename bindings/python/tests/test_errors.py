"""Errors: bad arguments, limits, a missing daemon, admin refusals; each with the library's
message."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

import ringraft

# The daemon's default limits (daemon/src/config.rs) and the library's frame limit (header).
PROPOSAL_BYTES_MAX = 64 << 10
KEY_BYTES_MAX = 4 << 10
FRAME_BYTES_MAX = 4 << 20


def test_empty_key_is_an_invalid_argument(client: ringraft.Client) -> None:
    for key in (b"", ""):
        with pytest.raises(ringraft.InvalidArgument) as raised:
            client.owner(key)
        error = raised.value
        assert isinstance(error, ValueError)
        assert error.status is ringraft.Status.INVALID_ARGUMENT
        assert "key" in str(error)  # the library's own message, not just the status name


def test_bad_counts_are_invalid_arguments(client: ringraft.Client) -> None:
    with pytest.raises(ringraft.InvalidArgument, match="n"):
        client.replicas(b"k", 0)
    with pytest.raises(ringraft.InvalidArgument, match="max"):
        client.read_log(1, 0)
    with pytest.raises(ringraft.InvalidArgument):
        client.replicas(b"k", -1)  # would wrap to 2**64-1 in ctypes
    with pytest.raises(ringraft.InvalidArgument):
        client.read_log(-1, 10)
    with pytest.raises(ringraft.InvalidArgument):
        client.read_log(1, 2**32)
    with pytest.raises(ringraft.InvalidArgument):
        client.remove(2**64)
    with pytest.raises(ringraft.InvalidArgument):
        client.propose(b"x", timeout=0)
    with pytest.raises(ringraft.InvalidArgument):
        client.timeout = -1
    with pytest.raises(ringraft.InvalidArgument):
        client.enable_ring_cache(float("nan"))


def test_wrong_types_are_type_errors(client: ringraft.Client) -> None:
    with pytest.raises(TypeError):
        client.owner(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.replicas(b"k", 1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.remove(True)
    with pytest.raises(TypeError):
        client.join(50, None, "127.0.0.1:1")  # type: ignore[arg-type]


def test_too_large_key_and_proposals(client: ringraft.Client) -> None:
    with pytest.raises(ringraft.TooLarge) as raised:
        client.owner(b"k" * (KEY_BYTES_MAX + 1))
    assert raised.value.status is ringraft.Status.TOO_LARGE
    # Over the daemon's proposal limit...
    with pytest.raises(ringraft.TooLarge, match="proposal"):
        client.propose(b"x" * (PROPOSAL_BYTES_MAX + 1))
    # ...and over the library's frame limit, refused before sending.
    with pytest.raises(ringraft.TooLarge, match="frame"):
        client.propose(b"x" * (FRAME_BYTES_MAX + 1))
    # The limit itself is fine, and the client still works after the refusals.
    assert client.propose(b"x" * PROPOSAL_BYTES_MAX) > 0


def test_no_daemon_is_a_connection_error(tmp_path: Path) -> None:
    missing = tmp_path / "nobody-listens.sock"
    with pytest.raises(ringraft.Unavailable) as raised:
        ringraft.Client(missing)
    error = raised.value
    assert isinstance(error, ConnectionError)
    assert error.status is ringraft.Status.UNAVAILABLE
    assert str(missing) in str(error)


def test_a_socket_path_too_long_is_an_invalid_argument(tmp_path: Path) -> None:
    with pytest.raises(ringraft.InvalidArgument):
        ringraft.Client(tmp_path / ("x" * 200))
    with pytest.raises(ringraft.InvalidArgument):
        ringraft.Client("/tmp/with\0nul")


def test_unknown_members_are_not_found(client: ringraft.Client) -> None:
    for call in (client.remove, client.promote, client.transfer_leader):
        with pytest.raises(ringraft.NotFound) as raised:
            call(987_654)
        assert isinstance(raised.value, KeyError)
        assert "987654" in str(raised.value)


def test_join_refusals(client: ringraft.Client) -> None:
    existing = client.members().by_id(1)
    assert existing is not None
    with pytest.raises(ringraft.Conflict):
        client.join(1, "n1-again", "127.0.0.1:1")
    with pytest.raises(ringraft.InvalidArgument):
        client.join(0, "zero", "127.0.0.1:1")
    with pytest.raises(ringraft.InvalidArgument):
        client.join(77, "w0", "127.0.0.1:1", weight=0)
    with pytest.raises(ringraft.InvalidArgument):
        client.join(77, "n" * 64, "127.0.0.1:1")
    with pytest.raises(ringraft.InvalidArgument):
        client.join(77, "nul\0name", "127.0.0.1:1")
    assert client.members().by_id(77) is None


def test_errors_survive_pickling(client: ringraft.Client) -> None:
    with pytest.raises(ringraft.NotFound) as raised:
        client.remove(987_654)
    copy = pickle.loads(pickle.dumps(raised.value))
    assert type(copy) is ringraft.NotFound
    assert copy.status is ringraft.Status.NOT_FOUND
    assert str(copy) == str(raised.value)
