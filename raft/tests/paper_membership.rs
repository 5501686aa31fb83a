//! Membership changes (thesis §4) and leadership transfer (§3.10).

mod paper_net;

use paper_net::Network;
use ringraft_raft::{ConfChange, ConfChangeStep, ProposeError, Role};

fn change(steps: &[ConfChangeStep], auto_leave: bool) -> ConfChange {
    ConfChange {
        changes: steps.to_vec(),
        auto_leave,
        context: Vec::new(),
    }
}

/// Thesis §4.3: while joint, an entry commits only with a majority of both configurations.
#[test]
fn joint_consensus_needs_both_majorities() {
    use ConfChangeStep::*;
    let mut net = Network::new(&[1, 2, 3], &[]);
    net.add_joining_node(4);
    net.add_joining_node(5);
    net.elect(1);
    let joint = change(&[AddVoter(4), AddVoter(5), RemoveNode(3)], false);
    net.node_mut(1).propose_conf_change(joint).unwrap();
    net.deliver();
    net.tick_all(2);
    let conf = net.node(1).conf_state().clone();
    assert_eq!(conf.voters, vec![1, 2, 4, 5]);
    assert_eq!(conf.voters_outgoing, vec![1, 2, 3]);
    assert_eq!(
        net.node(4).conf_state(),
        &conf,
        "the joining node got the configuration"
    );
    // {1, 2, 3} is a majority of the old voters but not of the new ones.
    net.isolate(4);
    net.isolate(5);
    net.propose(1, "x");
    net.tick_all(2);
    assert!(net.applied_data(1).is_empty());
    net.heal();
    net.tick_all(2);
    assert_eq!(net.applied_data(1), vec!["x"]);
    // Leave the joint configuration.
    net.node_mut(1)
        .propose_conf_change(change(&[], false))
        .unwrap();
    net.tick_all(2);
    let conf = net.node(1).conf_state();
    assert_eq!(conf.voters, vec![1, 2, 4, 5]);
    assert!(conf.voters_outgoing.is_empty());
    assert_eq!(net.node(3).role(), Role::Follower);
}

#[test]
fn auto_leave_is_proposed_by_the_leader() {
    use ConfChangeStep::*;
    let mut net = Network::new(&[1, 2, 3], &[]);
    net.add_joining_node(4);
    net.add_joining_node(5);
    net.elect(1);
    let joint = change(&[AddVoter(4), AddVoter(5)], true);
    net.node_mut(1).propose_conf_change(joint).unwrap();
    assert_eq!(
        net.node_mut(1)
            .propose_conf_change(change(&[AddVoter(6)], false)),
        Err(ProposeError::ConfChangePending)
    );
    net.tick_all(3);
    for id in 1..=5 {
        let conf = net.node(id).conf_state();
        assert_eq!(conf.voters, vec![1, 2, 3, 4, 5], "node {id}");
        assert!(conf.voters_outgoing.is_empty(), "node {id}");
    }
}

#[test]
fn learner_is_promoted_by_add_voter() {
    let mut net = Network::new(&[1, 2, 3], &[4]);
    net.elect(1);
    assert_eq!(net.node(4).role(), Role::Learner);
    let promote = change(&[ConfChangeStep::AddVoter(4)], false);
    net.node_mut(1).propose_conf_change(promote).unwrap();
    net.tick_all(2);
    assert_eq!(net.node(4).role(), Role::Follower);
    assert_eq!(net.node(4).conf_state().voters, vec![1, 2, 3, 4]);
    // Now a voter, it can win an election.
    net.node_mut(1).transfer_leader(4).unwrap();
    net.deliver();
    assert_eq!(net.node(4).role(), Role::Leader);
}

#[test]
fn leader_that_removes_itself_steps_down_once_committed() {
    let mut net = Network::new(&[1, 2, 3], &[]);
    net.elect(1);
    let remove = change(&[ConfChangeStep::RemoveNode(1)], false);
    net.node_mut(1).propose_conf_change(remove).unwrap();
    net.deliver();
    assert_ne!(net.node(1).role(), Role::Leader);
    net.tick_all(30);
    let leader = net.leader().expect("the others elect a leader");
    assert_ne!(leader, 1);
    net.propose(leader, "after");
    net.tick_all(2);
    assert_eq!(net.applied_data(2), vec!["after"]);
    assert_eq!(net.node(1).conf_state().voters, vec![2, 3]);
}

/// Thesis §4.1: the configuration in effect is the latest in the log, even uncommitted; when
/// that entry is truncated the node goes back to the previous configuration.
#[test]
fn uncommitted_configuration_applies_and_reverts_when_truncated() {
    let mut net = Network::new(&[1, 2, 3], &[]);
    net.elect(1);
    net.isolate(1);
    let add = change(&[ConfChangeStep::AddLearner(9)], false);
    net.node_mut(1).propose_conf_change(add).unwrap();
    net.process(1);
    assert_eq!(
        net.node(1).conf_state().learners,
        vec![9],
        "in effect while uncommitted"
    );
    net.tick_all(30);
    let leader = net.leader().expect("new leader among 2 and 3");
    assert_ne!(leader, 1);
    net.propose(leader, "overwrites");
    net.heal();
    net.tick_all(3);
    assert!(net.node(1).conf_state().learners.is_empty());
    assert_eq!(net.log_terms(1), net.log_terms(leader));
}

#[test]
fn transfer_leadership_to_an_up_to_date_voter() {
    let mut net = Network::new(&[1, 2, 3], &[]);
    net.elect(1);
    net.propose(1, "a");
    net.node_mut(1).transfer_leader(3).unwrap();
    net.deliver();
    assert_eq!(net.node(3).role(), Role::Leader);
    assert_eq!(net.node(1).leader(), Some(3));
    assert_eq!(
        net.node_mut(1).transfer_leader(2),
        Err(ProposeError::NotLeader { leader: Some(3) })
    );
}

#[test]
fn transfer_waits_for_catch_up_refuses_proposals_and_aborts_after_a_timeout() {
    let mut net = Network::new(&[1, 2, 3], &[]);
    net.elect(1);
    net.cut.insert((1, 3));
    net.propose(1, "missed by 3");
    net.node_mut(1).transfer_leader(3).unwrap();
    net.deliver();
    assert_eq!(net.node(1).role(), Role::Leader);
    assert_eq!(
        net.node_mut(1).propose(b"x".to_vec()),
        Err(ProposeError::TransferInProgress)
    );
    let timeout = net.configs[&1].election_timeout_ticks as usize;
    net.tick_all(timeout);
    assert_eq!(net.node(1).status().lead_transferee, None, "aborted");
    net.propose(1, "after abort");
    // Once 3 can catch up, a new transfer succeeds.
    net.heal();
    net.node_mut(1).transfer_leader(3).unwrap();
    net.deliver();
    net.tick_all(2);
    assert_eq!(net.node(3).role(), Role::Leader);
    assert_eq!(net.applied_data(3), vec!["missed by 3", "after abort"]);
}
