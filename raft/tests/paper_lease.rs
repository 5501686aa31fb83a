//! Lease reads (thesis §6.4.1): the leader answers reads without a heartbeat round while it holds
//! a lease, and the lease must end before any follower could grant a vote to someone else.
//! Every scenario here builds the situation in which a lease that lasts too long returns stale
//! data: a new leader exists (or could be elected) while the old one still believes it leads.

mod paper_net;

use std::cell::RefCell;
use std::rc::Rc;

use paper_net::Network;
use ringraft_raft::{Message, MessageBody, NodeId, RaftError, RawNode, ReadState, Role};

fn reads(net: &Network, id: NodeId) -> Vec<ReadState> {
    net.read_states.get(&id).cloned().unwrap_or_default()
}

/// A lease-reading cluster with an elected leader. Nodes with `lease_read` refuse votes for an
/// election timeout after they start, so the leader emerges from ticking, not from `elect`.
fn lease_cluster(voters: &[NodeId]) -> (Network, NodeId) {
    let mut net = Network::with_config(voters, &[], |c| c.lease_read = true);
    for _ in 0..100 {
        if net.leader().is_some() {
            break;
        }
        net.tick_all(1);
    }
    let leader = net.leader().expect("a leader within 100 ticks");
    net.propose(leader, "a");
    // A heartbeat round acknowledged by everyone gives the leader its lease.
    net.tick_all(1);
    (net, leader)
}

fn lease_ticks(net: &Network, id: NodeId) -> u64 {
    net.configs[&id].lease_ticks()
}

/// Asks `id` for a read and returns whether it answered at once (from its lease).
fn answers_at_once(net: &mut Network, id: NodeId, context: &str) -> bool {
    let before = reads(net, id).len();
    net.node_mut(id)
        .read_index(context.as_bytes().to_vec())
        .expect("the leader takes reads");
    net.process(id);
    reads(net, id).len() > before
}

#[test]
fn lease_read_answers_without_a_round_trip() {
    let (mut net, leader) = lease_cluster(&[1, 2, 3]);
    net.isolate(leader);
    assert!(answers_at_once(&mut net, leader, "lease"));
}

/// Seeds 12318 and 10835 of the simulator: an isolated leader answered from its lease after the
/// others had elected a new leader and committed a write.
#[test]
fn isolated_leader_loses_its_lease_before_followers_may_elect_another() {
    let (mut net, old) = lease_cluster(&[1, 2, 3]);
    let others: Vec<NodeId> = [1, 2, 3].into_iter().filter(|&id| id != old).collect();
    net.isolate(old);
    // The followers elect a new leader as soon as their stickiness allows it.
    let mut new = None;
    for _ in 0..40 {
        net.tick_all(1);
        new = others
            .iter()
            .copied()
            .find(|&id| net.node(id).role() == Role::Leader);
        if new.is_some() {
            break;
        }
    }
    let new = new.expect("the followers elect a leader");
    net.propose(new, "b");
    let new_commit = net.node(new).status().commit;
    assert!(new_commit > net.node(old).status().commit);
    // CheckQuorum has not yet deposed the old leader: only its lease keeps it from answering.
    assert_eq!(
        net.node(old).role(),
        Role::Leader,
        "the scenario needs the old leader to still believe it leads"
    );
    assert!(
        !answers_at_once(&mut net, old, "stale"),
        "the old leader answered from a lease that outlived the followers' stickiness"
    );
}

/// The lease runs from when the leader STARTED the heartbeat round a quorum acknowledged: a
/// follower's stickiness began when it received the heartbeat, which may be long before its
/// acknowledgement arrives.
#[test]
fn lease_counts_from_the_acknowledged_round_not_from_the_acknowledgement() {
    for (ticks_after_round, expect_lease) in [(None, true), (Some(0), false)] {
        let (mut net, leader) = lease_cluster(&[1, 2, 3]);
        let held: Rc<RefCell<Vec<Message>>> = Rc::default();
        let sink = held.clone();
        net.drop_filter = Some(Box::new(move |m| {
            let hold = m.to == leader && matches!(m.body, MessageBody::HeartbeatResponse { .. });
            if hold {
                sink.borrow_mut().push(m.clone());
            }
            hold
        }));
        // One heartbeat round goes out and is answered; the answers are held back.
        net.tick_all(1);
        assert!(!held.borrow().is_empty());
        net.drop_filter = None;
        net.isolate(leader);
        // Just inside the lease of that round, or just past it (`ticks_after_round` more).
        let ticks = lease_ticks(&net, leader) - 1 + ticks_after_round.map_or(0, |t| t + 1);
        for _ in 0..ticks {
            net.node_mut(leader).tick();
        }
        net.process(leader);
        assert!(
            !answers_at_once(&mut net, leader, "before"),
            "no acknowledgement of a young enough round has arrived yet"
        );
        // The held acknowledgements arrive now.
        for ack in held.borrow_mut().drain(..) {
            net.node_mut(leader).step(ack);
        }
        assert_eq!(net.node(leader).role(), Role::Leader);
        assert_eq!(
            answers_at_once(&mut net, leader, "after"),
            expect_lease,
            "{ticks} ticks after the round started, lease {} ticks",
            lease_ticks(&net, leader)
        );
    }
}

/// A new leader has no lease until a quorum acknowledged a heartbeat round of its own term: the
/// votes it won say nothing about when its voters will vote again.
#[test]
fn new_leader_has_no_lease_before_a_round_of_its_term_is_acknowledged() {
    let (mut net, old) = lease_cluster(&[1, 2, 3]);
    let new = if old == 1 { 2 } else { 1 };
    net.drop_filter = Some(Box::new(move |m| {
        m.to == new && matches!(m.body, MessageBody::HeartbeatResponse { .. })
    }));
    net.node_mut(old).transfer_leader(new).unwrap();
    net.deliver();
    assert_eq!(net.node(new).role(), Role::Leader);
    net.propose(new, "b");
    assert!(
        !answers_at_once(&mut net, new, "early"),
        "no heartbeat round of the new term was acknowledged"
    );
    net.drop_filter = None;
    net.tick_all(1);
    assert_eq!(
        reads(&net, new).len(),
        1,
        "the read's own round confirms it"
    );
    assert!(answers_at_once(&mut net, new, "leased"));
}

/// TimeoutNow lets the transferee's voters ignore their stickiness: the leader that sent it must
/// stop trusting its lease.
#[test]
fn leadership_transfer_forfeits_the_lease() {
    let (mut net, old) = lease_cluster(&[1, 2, 3]);
    let new = if old == 1 { 2 } else { 1 };
    // The old leader still talks but no longer hears anything.
    for id in [1, 2, 3] {
        if id != old {
            net.cut.insert((id, old));
        }
    }
    net.node_mut(old).transfer_leader(new).unwrap();
    net.deliver();
    assert_eq!(net.node(new).role(), Role::Leader);
    net.propose(new, "b");
    assert_eq!(net.node(old).role(), Role::Leader);
    assert!(
        !answers_at_once(&mut net, old, "stale"),
        "a leader that handed over answered from its lease"
    );
}

/// A restart forgets whom the node followed; with lease reads it must still refuse votes for an
/// election timeout, since it may have acknowledged the heartbeat a lease rests on.
#[test]
fn restarted_follower_refuses_votes_for_an_election_timeout() {
    let (mut net, leader) = lease_cluster(&[1, 2, 3]);
    let others: Vec<NodeId> = [1, 2, 3].into_iter().filter(|&id| id != leader).collect();
    let (restarted, candidate) = (others[0], others[1]);
    net.isolate(leader);
    net.restart(restarted);
    net.node_mut(candidate).campaign().unwrap();
    net.deliver();
    assert_ne!(
        net.node(candidate).role(),
        Role::Leader,
        "the restarted node voted while the old leader's lease may still run"
    );
    assert!(answers_at_once(&mut net, leader, "leased"));
    // Once an election timeout has passed everywhere, the others elect a leader.
    let election_timeout = net.configs[&restarted].election_timeout_ticks;
    net.tick_all(3 * election_timeout as usize);
    assert!(others.iter().any(|&id| net.node(id).role() == Role::Leader));
}

#[test]
fn lease_length_leaves_room_for_clock_drift() {
    let mut config = paper_net::config(1);
    config.lease_read = true;
    config.election_timeout_ticks = 10;
    config.clock_drift_percent_max = 5;
    // 9 ticks of a follower 5% fast last longer than 8 ticks of a leader 5% slow.
    assert_eq!(config.lease_ticks(), 8);
    config.clock_drift_percent_max = 0;
    assert_eq!(config.lease_ticks(), 9);
    config.election_timeout_ticks = 2;
    config.heartbeat_interval_ticks = 1;
    config.clock_drift_percent_max = 5;
    assert!(matches!(
        RawNode::new(config, Default::default()),
        Err(RaftError::InvalidConfig(_))
    ));
}

#[test]
fn lease_read_requires_check_quorum() {
    let mut config = paper_net::config(1);
    config.lease_read = true;
    config.check_quorum = false;
    let result = RawNode::new(config, Default::default());
    assert!(matches!(result, Err(RaftError::InvalidConfig(_))));
}
