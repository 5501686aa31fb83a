"""Status, members, ring, owner and replicas against the live cluster."""

from __future__ import annotations

import json
import subprocess
from typing import Dict, List, Tuple

import ringraft

from .conftest import NODES, TARGET, DevCluster, wait_for

KEYS = [f"key-{i}".encode() for i in range(300)] + [b"\x00\xff binary \x00", "ключ-🔑".encode()]


def test_the_cluster_id_reads_as_ringraftctl_shows_it(
    cluster: DevCluster, clients: Dict[int, ringraft.Client]
) -> None:
    status = clients[1].status()
    shown = subprocess.run(
        [str(TARGET / "ringraftctl"), "--socket", cluster.socket(1), "status", "--json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    wanted = json.loads(shown)["cluster_id"]
    assert len(wanted) == 16
    assert status.cluster_id == int(wanted, 16)
    assert status.cluster_id_hex == wanted
    assert f"cluster_id={wanted}," in repr(status)


def test_status_describes_each_node(clients: Dict[int, ringraft.Client]) -> None:
    statuses = {node_id: client.status() for node_id, client in clients.items()}
    for node_id, status in statuses.items():
        assert status.node_id == node_id
        assert status.name == f"n{node_id}"
        assert status.member_count == NODES
        assert status.epoch >= 1
        assert status.term >= 1
        assert status.applied_index <= status.commit_index <= status.last_index
        assert status.daemon_version
        assert isinstance(status.role, ringraft.NodeRole)
    assert len({status.cluster_id for status in statuses.values()}) == 1

    def one_agreed_leader():
        now = [client.status() for client in clients.values()]
        leaders = {status.leader_id for status in now}
        if len(leaders) == 1 and None not in leaders:
            return now
        return None

    now = wait_for(one_agreed_leader, "the nodes to agree on a leader")
    leaders = [status for status in now if status.is_leader]
    assert len(leaders) == 1 and leaders[0].node_id == now[0].leader_id


def test_members_lists_the_three_voters(client: ringraft.Client) -> None:
    members = client.members()
    assert len(members) == NODES
    assert sorted(node.id for node in members) == list(range(1, NODES + 1))
    for node in members:
        assert node.name == f"n{node.id}"
        assert node.address.startswith("127.0.0.1:")
        assert node.role is ringraft.MemberRole.VOTER
        assert node.weight == 1
        assert not node.truncated
        assert members.by_id(node.id) == node
    assert members.epoch >= 1
    assert isinstance(members[0], ringraft.Member)


def test_ring_answers_like_the_daemon_at_the_same_epoch(client: ringraft.Client) -> None:
    def ring_and_owners():
        ring = client.ring()
        owners = [client.owner(key) for key in KEYS[:50]]
        # Only comparable if no membership change landed in between.
        return (ring, owners) if client.ring().epoch == ring.epoch else None

    ring, owners = wait_for(ring_and_owners, "a stable ring epoch")
    assert ring.epoch >= 1
    assert ring.replication_factor >= 1
    assert ring.encoded
    assert sorted(node.id for node in ring.members) == sorted(node.id for node in client.members())
    assert [ring.owner(key) for key in KEYS[:50]] == owners
    for key in KEYS[:20]:
        replicas = ring.replicas(key)
        assert replicas[0] == ring.owner(key)
        assert len(replicas) == min(ring.replication_factor, NODES)
        assert ring.replicas(key, NODES) == client.replicas(key, NODES)
        assert ring.replicas(key, 2**40) == ring.replicas(key, NODES)


def _answers(
    client: ringraft.Client,
) -> Tuple[int, List[ringraft.Node], List[Tuple[ringraft.Node, ...]]]:
    epoch = client.status().epoch
    owners = [client.owner(key) for key in KEYS]
    replicas = [client.replicas(key, NODES) for key in KEYS[:100]]
    if client.status().epoch != epoch:
        raise AssertionError("epoch moved while answering")
    return epoch, owners, replicas


def test_every_node_gives_the_same_owners_and_replicas(clients: Dict[int, ringraft.Client]) -> None:
    def agreeing_answers():
        answers = {node_id: _answers(client) for node_id, client in clients.items()}
        epochs = {epoch for epoch, _, _ in answers.values()}
        return answers if len(epochs) == 1 else None

    answers = wait_for(agreeing_answers, "all nodes at one ring epoch")
    reference_epoch, reference_owners, reference_replicas = answers[1]
    for node_id, (epoch, owners, replicas) in answers.items():
        assert epoch == reference_epoch
        assert owners == reference_owners, f"n{node_id} disagrees on owners"
        assert replicas == reference_replicas, f"n{node_id} disagrees on replicas"
    # Keys spread over more than one node (the ring is not degenerate).
    assert len({owner.id for owner in reference_owners}) == NODES


def test_replicas_are_distinct_and_start_with_the_owner(client: ringraft.Client) -> None:
    for key in KEYS[:50]:
        replicas = client.replicas(key, NODES)
        assert len({node.id for node in replicas}) == NODES
        assert replicas[0] == client.owner(key)
        assert client.replicas(key, 1) == replicas[:1]
        # Asking for more than there are gives every node, not an error.
        assert client.replicas(key, 50) == replicas
    # A huge n must not mean a huge allocation.
    assert client.replicas(KEYS[0], 2**40) == client.replicas(KEYS[0], NODES)


def test_str_and_bytes_keys_are_the_same_key(client: ringraft.Client) -> None:
    for text in ["user:42", "ключ", "🔑 emoji", "a" * 100]:
        data = text.encode("utf-8")
        owner = client.owner(data)
        assert client.owner(text) == owner
        assert client.owner(bytearray(data)) == owner
        assert client.owner(memoryview(data)) == owner
        assert client.replicas(text, NODES) == client.replicas(data, NODES)


def test_ring_cache_answers_like_the_daemon(client: ringraft.Client) -> None:
    def uncached_then_cached():
        epoch = client.status().epoch
        uncached = [client.owner(key) for key in KEYS[:100]]
        client.enable_ring_cache(0.2)
        try:
            cached = [client.owner(key) for key in KEYS[:100]]
            cached_replicas = [client.replicas(key, NODES) for key in KEYS[:20]]
        finally:
            client.disable_ring_cache()
        if client.status().epoch != epoch:
            return None
        return uncached, cached, cached_replicas

    uncached, cached, cached_replicas = wait_for(uncached_then_cached, "a stable ring epoch")
    assert cached == uncached
    assert cached_replicas == [client.replicas(key, NODES) for key in KEYS[:20]]


def test_ring_cache_from_the_constructor(cluster) -> None:
    with (
        ringraft.Client(cluster.socket(2), ring_cache=0.5) as cached,
        ringraft.Client(cluster.socket(2)) as plain,
    ):

        def same():
            epoch = plain.status().epoch
            answers = [cached.owner(key) for key in KEYS[:30]] == [
                plain.owner(key) for key in KEYS[:30]
            ]
            return answers and plain.status().epoch == epoch

        wait_for(same, "cached and uncached answers to agree")


def test_linearizable_answers_match(clients: Dict[int, ringraft.Client]) -> None:
    client = clients[3]
    client.linearizable = True
    assert client.linearizable
    try:

        def stable():
            epoch = client.status().epoch
            strict = [client.owner(key) for key in KEYS[:30]]
            members = client.members()
            ring = client.ring()
            client.linearizable = False
            relaxed = [client.owner(key) for key in KEYS[:30]]
            client.linearizable = True
            if client.status().epoch != epoch:
                return None
            return strict, relaxed, members, ring

        strict, relaxed, members, ring = wait_for(stable, "a stable ring epoch")
        assert strict == relaxed
        assert len(members) == NODES
        assert ring.epoch == members.epoch
    finally:
        client.linearizable = False


def test_timeout_can_be_changed(client: ringraft.Client) -> None:
    client.timeout = 2.5
    assert client.timeout == 2.5
    assert client.status().node_id == 1
    client.timeout = 10
