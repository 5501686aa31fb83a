"""Proposals, reading the log and watching it."""

from __future__ import annotations

import os
from typing import Dict, List

import pytest

import ringraft

from .conftest import wait_for


def _read_all(client: ringraft.Client, start: int, end: int) -> List[ringraft.LogRecord]:
    """Records with start <= index <= end, in as many reads as it takes."""
    records: List[ringraft.LogRecord] = []
    index = start
    while index <= end:
        batch = client.read_log(index, 64)
        if not batch:
            break
        records.extend(record for record in batch if record.index <= end)
        index = batch[-1].index + 1
    return records


def test_proposals_through_every_node_share_one_order(clients: Dict[int, ringraft.Client]) -> None:
    tag = os.urandom(6).hex().encode()
    proposed = {}
    for round_ in range(5):
        for node_id, client in clients.items():
            data = b"%s:%d:%d" % (tag, node_id, round_)
            index = client.propose(data, timeout=10)
            assert index not in proposed
            proposed[index] = data
    first, last = min(proposed), max(proposed)
    # A proposal returns once applied on the node it went through; the others catch up.
    for client in clients.values():
        wait_for(
            lambda client=client: client.read_log(last, 1).last_index >= last,
            "every node to apply the proposals",
        )
    logs = {node_id: _read_all(client, first, last) for node_id, client in clients.items()}
    reference = logs[1]
    mine = [record for record in reference if record.data.startswith(tag)]
    assert [record.index for record in mine] == sorted(proposed)
    assert {record.index: record.data for record in mine} == proposed
    for node_id, log in logs.items():
        assert log == reference, f"n{node_id} has another order"
    indexes = [record.index for record in reference]
    assert indexes == sorted(set(indexes))


def test_propose_accepts_str_and_empty_data(client: ringraft.Client) -> None:
    index = client.propose("héllo")
    empty = client.propose(b"")
    assert empty > index
    batch = client.read_log(index, 100)
    found = {record.index: record.data for record in batch}
    assert found[index] == "héllo".encode()
    assert found[empty] == b""


def test_read_log_batch_shape(client: ringraft.Client) -> None:
    indexes = [client.propose(b"shape-%d" % i) for i in range(5)]
    batch = client.read_log(indexes[0], 3)
    assert len(batch) == 3
    assert [record.index for record in batch][0] == indexes[0]
    assert list(batch) == list(batch.records)
    assert batch.first_index <= indexes[0] <= batch.last_index
    assert batch.last_index >= indexes[-1]
    # Nothing at or after a far index yet: an empty batch, not an error.
    beyond = client.read_log(batch.last_index + 1_000_000, 10)
    assert len(beyond) == 0
    assert beyond.last_index >= indexes[-1]


def test_watch_receives_new_proposals_in_order(clients: Dict[int, ringraft.Client]) -> None:
    watcher, proposer = clients[2], clients[3]
    start = watcher.status().commit_index + 1
    with watcher.watch_log(start) as watch:
        expected = {}
        for i in range(10):
            data = b"watched-%d" % i
            expected[proposer.propose(data)] = data
        seen = {}
        previous = 0
        while len(seen) < len(expected):
            record = watch.get(timeout=20)
            assert record.index > previous
            previous = record.index
            if record.index in expected:
                seen[record.index] = record.data
        assert seen == expected
        assert watch.next_index == max(expected) + 1
    assert watch.closed


def test_watch_from_the_past_then_new_records(client: ringraft.Client) -> None:
    old = client.propose(b"before the watch")
    with client.watch_log(old) as watch:
        first = next(watch)
        assert first == ringraft.LogRecord(index=old, data=b"before the watch")
        new = client.propose(b"after the watch")
        record = watch.get(timeout=20)
        while record.index < new:
            record = watch.get(timeout=10)
        assert record == ringraft.LogRecord(index=new, data=b"after the watch")


def test_watch_times_out_and_goes_on(client: ringraft.Client) -> None:
    start = client.status().last_index + 1_000_000
    with client.watch_log(start) as watch:
        with pytest.raises(ringraft.Timeout) as raised:
            watch.get(timeout=0.2)
        assert isinstance(raised.value, TimeoutError)
        with pytest.raises(ringraft.Timeout):
            watch.get(timeout=0)
        assert not watch.closed


def test_closing_a_watch_ends_iteration(client: ringraft.Client) -> None:
    index = client.propose(b"iterate")
    watch = client.watch_log(index)
    seen = []
    for record in watch:
        seen.append(record)
        watch.close()
    assert seen == [ringraft.LogRecord(index=index, data=b"iterate")]
    watch.close()  # idempotent
    with pytest.raises(ringraft.Closed):
        watch.get(timeout=0)


def test_close_from_another_thread_stops_a_blocked_iteration(client: ringraft.Client) -> None:
    import threading

    watch = client.watch_log(client.status().last_index + 1_000_000)
    outcome: List[object] = []

    def iterate():
        try:
            outcome.extend(watch)
            outcome.append("ended")
        except BaseException as error:  # reported by the assertion below
            outcome.append(error)

    thread = threading.Thread(target=iterate)
    thread.start()
    watch.close()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert outcome == ["ended"]


# The dev cluster runs the daemon's default limits.watches_per_connection_max.
WATCHES_PER_CONNECTION_MAX = 16


def test_a_watch_past_the_connection_limit_is_refused_by_watch_log(cluster) -> None:
    far = 1 << 40
    with ringraft.Client(cluster.socket(1)) as client:
        watches = [client.watch_log(far) for _ in range(WATCHES_PER_CONNECTION_MAX)]
        with pytest.raises(ringraft.Busy) as raised:
            client.watch_log(far)
        assert "watches_per_connection_max" in str(raised.value)
        watches.pop().close()
        watches.append(client.watch_log(far))
        for watch in watches:
            watch.close()


def test_watch_fails_closed_after_its_client_closes(cluster) -> None:
    client = ringraft.Client(cluster.socket(1))
    watch = client.watch_log(client.status().last_index + 1_000_000)
    client.close()
    with pytest.raises(ringraft.Closed) as raised:
        watch.get(timeout=5)
    assert raised.value.status is ringraft.Status.CLOSED
    watch.close()
