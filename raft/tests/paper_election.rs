//! Leader election: the election restriction, PreVote, CheckQuorum and the leader lease,
//! learners, and determinism under a seed.

mod paper_net;

use paper_net::{config, disk_with_log, Network};
use ringraft_raft::{Message, MessageBody, Role};

fn is_campaign_message(m: &Message) -> bool {
    matches!(
        m.body,
        MessageBody::Vote { .. } | MessageBody::PreVote { .. }
    )
}

/// Thesis §3.6.1: a voter denies its vote to a candidate whose log is less up to date.
#[test]
fn election_restriction_denies_votes_to_shorter_logs() {
    let mut net = Network::empty();
    let mut c1 = config(1);
    c1.pre_vote = false;
    net.add_node(c1, disk_with_log(&[1, 2, 3], 2, &[1, 1], 1));
    net.add_node(config(2), disk_with_log(&[1, 2, 3], 2, &[1, 1, 2], 1));
    net.add_node(config(3), disk_with_log(&[1, 2, 3], 2, &[1, 1], 1));
    net.isolate(3);
    net.node_mut(1).campaign().unwrap();
    net.deliver();
    assert_ne!(net.node(1).role(), Role::Leader);
    let denied = net.count_delivered(|m| {
        m.from == 2 && matches!(m.body, MessageBody::VoteResponse { reject: true })
    });
    assert_eq!(denied, 1, "node 2 has a longer log of the same term");
    // The more up-to-date node gets node 1's vote.
    net.elect(2);
    assert_eq!(net.node(1).leader(), Some(2));
}

/// Thesis §9.6: a partitioned node that keeps timing out does not raise its term, so it does
/// not depose a healthy leader when it returns.
#[test]
fn pre_vote_keeps_a_returning_node_from_disrupting() {
    let mut net = Network::new(&[1, 2, 3], &[]);
    net.elect(1);
    let term = net.node(1).term();
    net.isolate(3);
    net.tick_all(100);
    assert_eq!(net.node(3).term(), term, "pre-votes never raise the term");
    net.heal();
    net.tick_all(5);
    assert_eq!(net.node(1).role(), Role::Leader);
    assert_eq!(net.node(1).term(), term);
}

/// The same scenario without PreVote and CheckQuorum: the returning node deposes the leader.
/// (This shows the test above can fail.)
#[test]
fn without_pre_vote_a_returning_node_disrupts() {
    let mut net = Network::with_config(&[1, 2, 3], &[], |c| {
        c.pre_vote = false;
        c.check_quorum = false;
    });
    net.elect(1);
    let term = net.node(1).term();
    net.isolate(3);
    net.tick_all(100);
    assert!(net.node(3).term() > term);
    net.heal();
    net.tick_all(5);
    assert!(net.node(1).term() > term, "the leader saw a higher term");
}

/// Thesis §6.2: a leader that cannot reach a quorum steps down within an election timeout.
#[test]
fn check_quorum_leader_steps_down_without_a_quorum() {
    let mut net = Network::new(&[1, 2, 3], &[]);
    net.elect(1);
    net.isolate(1);
    let timeout = net.configs[&1].election_timeout_ticks as usize;
    net.tick_all(2 * timeout);
    assert_eq!(net.node(1).role(), Role::Follower);
    let new_leader = net.leader().expect("the majority side elects a leader");
    assert_ne!(new_leader, 1);
}

/// With CheckQuorum, a follower that hears from its leader ignores (pre)votes: a node cut off
/// from the leader alone cannot take over.
#[test]
fn followers_with_a_live_leader_ignore_campaigns() {
    let mut net = Network::new(&[1, 2, 3], &[]);
    net.elect(1);
    let term = net.node(1).term();
    net.cut.insert((1, 3));
    net.cut.insert((3, 1));
    net.tick_all(60);
    assert!(net.count_delivered(|m| m.from == 3 && is_campaign_message(m)) > 0);
    assert_eq!(net.node(1).role(), Role::Leader);
    assert_eq!(net.node(2).term(), term);
    assert_eq!(net.node(2).leader(), Some(1));
}

#[test]
fn learners_never_campaign_and_are_never_asked_to_vote() {
    let mut net = Network::new(&[1, 2, 3], &[4]);
    for _ in 0..100 {
        net.tick_all(1);
        let role = net.node(4).role();
        assert_eq!(role, Role::Learner);
    }
    assert!(net.leader().is_some());
    assert_eq!(
        net.count_delivered(|m| m.from == 4 && is_campaign_message(m)),
        0
    );
    assert_eq!(
        net.count_delivered(|m| m.to == 4 && is_campaign_message(m)),
        0
    );
    let leader = net.leader().unwrap();
    net.propose(leader, "to the learner too");
    net.tick_all(1);
    assert_eq!(net.applied_data(4), vec!["to the learner too"]);
    assert_eq!(
        net.node_mut(4).campaign(),
        Err(ringraft_raft::ProposeError::Learner)
    );
}

fn run_with_seed_offset(offset: u64) -> Vec<Message> {
    let mut net = Network::with_config(&[1, 2, 3, 4, 5], &[], |c| c.seed = c.id + offset);
    net.tick_all(40);
    let leader = net.leader().expect("a leader");
    net.propose(leader, "a");
    net.isolate(leader);
    net.tick_all(40);
    net.heal();
    net.tick_all(10);
    net.delivered
}

#[test]
fn same_seed_same_run() {
    assert_eq!(run_with_seed_offset(0), run_with_seed_offset(0));
    let differ = (1..=5).any(|offset| run_with_seed_offset(offset) != run_with_seed_offset(0));
    assert!(differ, "the seed drives the election timeouts");
}
