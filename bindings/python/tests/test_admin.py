"""The admin calls. The test process runs as the daemon's own uid, which is always admin; the
refusal for other uids is covered by the C and Rust suites."""

from __future__ import annotations

from typing import Dict

import pytest

import ringraft

from .conftest import NODES, wait_for

# A member that never runs: joined, refused promotion and removed again within the test.
GHOST_ID = 90
GHOST_ADDRESS = "127.0.0.1:9"


def test_snapshot_compacts_the_connected_node(clients: Dict[int, ringraft.Client]) -> None:
    client = clients[2]
    client.propose(b"before the snapshot")
    index = client.snapshot()
    assert index >= 1
    # Written when snapshot() returns, but status() may report it a moment later (a follower's
    # snapshot index is published by its next Raft round).
    wait_for(lambda: client.status().snapshot_index >= index, "status to report the snapshot")
    # The application log is still readable after the Raft log was compacted.
    assert client.read_log(index, 1).last_index >= index


def test_promoting_a_voter_is_a_conflict_and_changes_nothing(client: ringraft.Client) -> None:
    before = client.members()
    with pytest.raises(ringraft.Conflict, match="already a voter"):
        client.promote(2)
    after = client.members()
    assert after.by_id(2) == before.by_id(2)
    assert after.by_id(2).role is ringraft.MemberRole.VOTER


def test_join_promote_remove(clients: Dict[int, ringraft.Client]) -> None:
    client = clients[1]
    join_index = 0
    try:
        join_index = client.join(GHOST_ID, "ghost", GHOST_ADDRESS, zone="z1", weight=2)
        assert join_index >= 1
        # The change committed; the connected node applies it soon after.
        ghost = wait_for(lambda: client.members().by_id(GHOST_ID), "n1 to apply the join")
        assert (ghost.name, ghost.address, ghost.zone, ghost.weight) == (
            "ghost",
            GHOST_ADDRESS,
            "z1",
            2,
        )
        assert ghost.role is ringraft.MemberRole.LEARNER
        # Joining again with the same id, name and address is a retry, not an error, and answers
        # the original change's index; another member's name or address is a conflict.
        assert client.join(GHOST_ID, "ghost", GHOST_ADDRESS, zone="z1", weight=2) == join_index
        with pytest.raises(ringraft.Conflict, match="address"):
            client.join(GHOST_ID + 1, "ghost-2", GHOST_ADDRESS)
        with pytest.raises(ringraft.Conflict, match="name"):
            client.join(GHOST_ID + 1, "ghost", "127.0.0.1:10")
        # Every node learns the new member, and its ring epoch moved to at least the join.
        for other in clients.values():
            wait_for(
                lambda other=other: other.members().by_id(GHOST_ID) is not None,
                "every node to see the join",
            )
            assert other.ring().epoch >= join_index

        # Nothing runs at the ghost's address: the leader never hears from it, so it cannot
        # become a voter, and the error says how far behind it is.
        with pytest.raises(ringraft.Unavailable, match="entries behind") as refused:
            client.promote(GHOST_ID)
        assert f"member {GHOST_ID}" in refused.value.message
        assert client.members().by_id(GHOST_ID).role is ringraft.MemberRole.LEARNER
    finally:
        if client.members().by_id(GHOST_ID) is not None:
            remove_index = client.remove(GHOST_ID)
            assert remove_index > join_index
    for other in clients.values():
        wait_for(
            lambda other=other: other.members().by_id(GHOST_ID) is None,
            "every node to see the removal",
        )
    assert len(client.members()) == NODES


def test_transfer_leader(clients: Dict[int, ringraft.Client]) -> None:
    def current_leader():
        leaders = {client.status().leader_id for client in clients.values()}
        return leaders.pop() if len(leaders) == 1 and None not in leaders else None

    leader = wait_for(current_leader, "one agreed leader")
    target = next(node_id for node_id in sorted(clients) if node_id != leader)
    # Asked through a node that is neither the leader nor the target.
    via = next(node_id for node_id in sorted(clients) if node_id not in (leader, target))

    def transferred():
        try:
            clients[via].transfer_leader(target)
        except (ringraft.TransferInProgress, ringraft.NoLeader, ringraft.Timeout):
            return None
        return current_leader() == target

    wait_for(transferred, f"leadership to move from n{leader} to n{target}")
    assert clients[target].status().is_leader
    # The cluster still commits.
    assert clients[leader].propose(b"after the transfer") > 0
