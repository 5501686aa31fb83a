//! Election, replication and commit end to end on the in-test network.

mod paper_net;

use paper_net::Network;
use ringraft_raft::{ProposeError, Role};

#[test]
fn single_node_elects_itself_and_commits() {
    let mut net = Network::new(&[1], &[]);
    net.tick_all(25);
    assert_eq!(net.node(1).role(), Role::Leader);
    net.propose(1, "a");
    assert_eq!(net.applied_data(1), vec!["a"]);
    assert_eq!(
        net.node(1).status().commit,
        2,
        "the leader's empty entry, then a"
    );
}

#[test]
fn three_nodes_elect_one_leader_and_replicate() {
    let mut net = Network::new(&[1, 2, 3], &[]);
    net.tick_all(30);
    let leader = net.leader().expect("a leader within 3 election timeouts");
    let leaders = net
        .nodes
        .values()
        .filter(|n| n.role() == Role::Leader)
        .count();
    assert_eq!(leaders, 1);
    net.propose(leader, "x");
    net.propose(leader, "y");
    net.tick_all(2);
    for id in 1..=3 {
        assert_eq!(net.applied_data(id), vec!["x", "y"], "node {id}");
        assert_eq!(net.node(id).leader(), Some(leader));
    }
}

#[test]
fn follower_forwards_proposals_to_the_leader() {
    let mut net = Network::new(&[1, 2, 3], &[]);
    net.elect(1);
    net.propose(2, "from follower");
    net.tick_all(1);
    for id in 1..=3 {
        assert_eq!(net.applied_data(id), vec!["from follower"]);
    }
}

#[test]
fn proposal_without_leader_is_refused() {
    let mut net = Network::new(&[1, 2, 3], &[]);
    assert_eq!(
        net.node_mut(2).propose(b"x".to_vec()),
        Err(ProposeError::NoLeader)
    );
}

#[test]
fn restarted_follower_keeps_its_log_and_catches_up() {
    let mut net = Network::new(&[1, 2, 3], &[]);
    net.elect(1);
    net.propose(1, "a");
    net.restart(3);
    net.isolate(3);
    net.propose(1, "b");
    net.heal();
    net.tick_all(3);
    assert_eq!(net.applied_data(3), vec!["a", "b"]);
    assert_eq!(net.log_terms(3), net.log_terms(1));
}
