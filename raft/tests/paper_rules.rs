//! One deterministic test per rule that a membership review found broken (issue 9, §1): each is
//! named after the rule, and where a mutant switch breaks the same rule the test also runs the
//! mutant and expects the rule to fail, so the test is shown to be able to fail.

mod paper_net;

use paper_net::{config, disk_with_log, Network};
use ringraft_raft::{
    ConfChange, ConfChangeStep, ConfState, Message, MessageBody, Mutant, NodeId, ProposeError,
    Role, SnapshotMeta,
};

fn add_learner(id: NodeId) -> ConfChange {
    ConfChange {
        changes: vec![ConfChangeStep::AddLearner(id)],
        auto_leave: false,
        context: Vec::new(),
    }
}

fn snapshot_chunk(m: &Message) -> Option<(u64, usize)> {
    match &m.body {
        MessageBody::InstallSnapshot { offset, chunk, .. } => Some((*offset, chunk.len())),
        _ => None,
    }
}

/// Delivers one queued message (after draining every node's Ready); false when none is left.
fn deliver_one(net: &mut Network) -> Option<Message> {
    net.process_all();
    while let Some(msg) = net.queue.pop_front() {
        if net.cut.contains(&(msg.from, msg.to)) || !net.nodes.contains_key(&msg.to) {
            continue;
        }
        net.delivered.push(msg.clone());
        let to = msg.to;
        net.node_mut(to).step(msg.clone());
        net.process_all();
        return Some(msg);
    }
    None
}

/// Thesis errata (raft-dev, 2015): a leader may not append a configuration entry until it has
/// committed an entry from its current term. Returns what the new leader answered to a change
/// proposed before its term's first entry committed.
fn conf_change_before_the_terms_first_commit(mutant: Option<Mutant>) -> Result<(), ProposeError> {
    let mut net = Network::with_config(&[1, 2, 3], &[], |c| c.mutant = mutant);
    net.elect(1);
    net.propose(1, "committed in term 1");
    // Node 2 wins term 2 with node 3's vote, but none of its appends arrive: its term's first
    // entry cannot commit.
    net.drop_filter = Some(Box::new(|m| {
        m.from == 2 && matches!(m.body, MessageBody::Append { .. })
    }));
    net.node_mut(3).forget_leader();
    net.node_mut(2).campaign().expect("voter");
    net.deliver();
    assert_eq!(net.node(2).role(), Role::Leader);
    let status = net.node(2).status();
    assert!(
        status.commit < status.last_index,
        "the term's first entry is not committed"
    );
    net.node_mut(2).propose_conf_change(add_learner(4))
}

#[test]
fn a_new_leader_appends_no_conf_change_before_an_entry_of_its_term_commits() {
    assert_eq!(
        conf_change_before_the_terms_first_commit(None),
        Err(ProposeError::ConfChangePending)
    );
    assert_eq!(
        conf_change_before_the_terms_first_commit(Some(Mutant::ConfChangeBeforeTermCommit)),
        Ok(()),
        "the mutant breaks the rule, so this test can fail"
    );
    // Once the term's entry commits, the change is accepted.
    let mut net = Network::new(&[1, 2, 3], &[]);
    net.elect(1);
    assert_eq!(net.node_mut(1).propose_conf_change(add_learner(4)), Ok(()));
}

/// A snapshot transfer keeps the snapshot it started with until it completes, even while the
/// leader compacts again and again under steady writes (before, every compaction restarted the
/// transfer from byte 0, and the follower never caught up).
#[test]
fn a_snapshot_transfer_completes_while_the_leader_keeps_compacting() {
    let mut net = Network::with_config(&[1, 2, 3], &[], |c| c.snapshot_chunk_bytes_max = 8);
    net.elect(1);
    net.isolate(3);
    for i in 0..5 {
        net.propose(1, &format!("before {i}"));
    }
    net.compact(1, vec![1; 64]);
    net.heal();
    // Every chunk that reaches node 3 is followed by a write and a compaction on the leader.
    let mut writes = 0;
    for _ in 0..2_000 {
        if net.disks[&3]
            .snapshot
            .as_ref()
            .is_some_and(|s| s.meta.index > 0)
        {
            break;
        }
        if net.queue.is_empty() {
            net.node_mut(1).tick();
        }
        let Some(msg) = deliver_one(&mut net) else {
            continue;
        };
        if msg.to == 3 && snapshot_chunk(&msg).is_some() {
            writes += 1;
            net.node_mut(1)
                .propose(format!("during {writes}").into_bytes())
                .expect("leader accepts");
            net.process(1);
            // Let node 2 acknowledge so the write commits, then compact behind it.
            for _ in 0..4 {
                deliver_one(&mut net);
            }
            net.compact(1, vec![writes as u8; 64]);
        }
    }
    let snapshot = net.disks[&3]
        .snapshot
        .as_ref()
        .expect("node 3 has a snapshot");
    assert!(snapshot.meta.index > 0, "the transfer never completed");
    assert!(writes > 1, "the leader compacted during the transfer");
    // Node 3 then catches up with the log.
    net.tick_all(30);
    assert_eq!(
        net.node(3).status().commit,
        net.node(1).status().commit,
        "node 3 caught up after the transfer"
    );
}

/// Thesis §3.10: the leader tells the transferee to campaign once it holds the whole log, also
/// when it caught up by a snapshot that covers everything (no append answer follows then).
#[test]
fn a_transfer_to_a_follower_caught_up_by_a_snapshot_fires() {
    let mut net = Network::new(&[1, 2, 3], &[]);
    net.elect(1);
    net.isolate(3);
    for i in 0..5 {
        net.propose(1, &format!("e{i}"));
    }
    net.compact(1, b"state".to_vec());
    let status = net.node(1).status();
    assert_eq!(status.snapshot_index, status.last_index);
    net.heal();
    net.node_mut(1).transfer_leader(3).expect("3 is a voter");
    // Fewer ticks than an election timeout: only the transfer can make 3 the leader.
    net.tick_all(5);
    assert_eq!(net.node(3).role(), Role::Leader, "the transfer fired");
    assert_eq!(
        net.disks[&3].snapshot.as_ref().map(|s| s.meta.index),
        Some(status.snapshot_index)
    );
}

/// Raft §5.1: a stale AppendEntries or heartbeat is answered with the receiver's term, whatever
/// the settings (before, only with PreVote or CheckQuorum).
#[test]
fn a_stale_append_is_answered_with_the_receivers_term_without_pre_vote_or_check_quorum() {
    for body in [
        MessageBody::Heartbeat {
            leader_commit: 0,
            read_round: 0,
        },
        MessageBody::Append {
            prev_log_index: 0,
            prev_log_term: 0,
            entries: Vec::new(),
            leader_commit: 0,
        },
    ] {
        let mut net = Network::empty();
        let mut c = config(2);
        c.pre_vote = false;
        c.check_quorum = false;
        net.add_node(c, disk_with_log(&[1, 2, 3], 5, &[], 0));
        let stale = Message {
            from: 1,
            to: 2,
            term: 3,
            body,
        };
        net.node_mut(2).step(stale);
        let (_, messages) = net.take_one_ready(2);
        let answers: Vec<&Message> = messages.iter().filter(|m| m.to == 1).collect();
        assert_eq!(answers.len(), 1, "the stale leader is answered");
        assert_eq!(answers[0].term, 5, "with the receiver's term");
    }
}

/// Raft §5.1: a vote request of an older term is refused with the receiver's term, so that the
/// candidate catches up. Without it a candidate without PreVote among nodes with it can stay
/// behind for good: their campaigns reach it only as PreVotes, which move no term, and each of
/// its own lower-term campaigns goes unanswered while theirs raise the term further.
#[test]
fn a_stale_vote_request_is_refused_with_the_receivers_term() {
    let mut net = Network::empty();
    net.add_node(config(2), disk_with_log(&[1, 2, 3], 5, &[], 0));
    let stale = Message {
        from: 1,
        to: 2,
        term: 3,
        body: MessageBody::Vote {
            last_log_index: 9,
            last_log_term: 3,
            leader_transfer: false,
        },
    };
    net.node_mut(2).step(stale);
    let (_, messages) = net.take_one_ready(2);
    let answers: Vec<&Message> = messages.iter().filter(|m| m.to == 1).collect();
    assert_eq!(answers.len(), 1, "the stale candidate is answered");
    assert_eq!(answers[0].term, 5, "with the receiver's term");
    assert!(
        matches!(answers[0].body, MessageBody::VoteResponse { reject: true }),
        "and refused: {:?}",
        answers[0].body
    );
    assert_eq!(net.node(2).term(), 5, "the receiver's term is unchanged");
}

/// Thesis §4.2.3: a server that heard from a leader within the minimum election timeout ignores
/// vote requests (a removed server would otherwise depose every leader), with CheckQuorum off
/// too; a campaign after a leadership transfer is exempt.
#[test]
fn vote_requests_within_the_election_timeout_of_a_leader_are_ignored_without_check_quorum() {
    let mut net = Network::with_config(&[1, 2, 3], &[], |c| {
        c.pre_vote = false;
        c.check_quorum = false;
    });
    net.elect(1);
    let term = net.node(2).term();
    let last = net.node(2).status().last_index;
    let campaign = |leader_transfer| Message {
        from: 4,
        to: 2,
        term: term + 5,
        body: MessageBody::Vote {
            last_log_index: last + 10,
            last_log_term: term + 4,
            leader_transfer,
        },
    };
    net.node_mut(2).step(campaign(false));
    assert_eq!(net.node(2).term(), term, "the campaign was ignored");
    assert_eq!(net.node(2).leader(), Some(1));
    net.node_mut(2).step(campaign(true));
    assert_eq!(
        net.node(2).term(),
        term + 5,
        "a transfer's campaign is heard"
    );

    // A removed server that keeps campaigning cannot depose the leader of the others.
    let mut net = Network::with_config(&[1, 2, 3], &[], |c| {
        c.pre_vote = false;
        c.check_quorum = false;
    });
    net.elect(1);
    net.node_mut(1)
        .propose_conf_change(ConfChange {
            changes: vec![ConfChangeStep::RemoveNode(3)],
            auto_leave: false,
            context: Vec::new(),
        })
        .expect("change accepted");
    // Node 3 never learns of its removal.
    net.drop_filter = Some(Box::new(|m| m.to == 3));
    net.tick_all(3);
    let term = net.node(1).term();
    for _ in 0..10 {
        net.node_mut(3).campaign().expect("3 still thinks it votes");
        net.tick_all(1);
    }
    assert_eq!(net.node(1).role(), Role::Leader);
    assert_eq!(
        net.node(1).term(),
        term,
        "the removed server deposed nobody"
    );
}

/// As in etcd raft: a transfer to the leader itself cancels the transfer under way.
#[test]
fn a_transfer_to_the_leader_itself_cancels_a_pending_transfer() {
    let mut net = Network::new(&[1, 2, 3], &[]);
    net.elect(1);
    net.isolate(2);
    net.propose(1, "2 lacks this");
    net.node_mut(1).transfer_leader(2).expect("2 is a voter");
    assert_eq!(net.node(1).status().lead_transferee, Some(2));
    assert_eq!(
        net.node_mut(1).propose(b"refused".to_vec()),
        Err(ProposeError::TransferInProgress)
    );
    net.node_mut(1).transfer_leader(1).expect("cancel");
    assert_eq!(net.node(1).status().lead_transferee, None);
    assert_eq!(net.node_mut(1).propose(b"accepted".to_vec()), Ok(()));
}

/// A partial snapshot continues only with chunks of the same snapshot: two leaders' snapshots
/// at the same index and of the same size are never stitched together.
#[test]
fn chunks_of_two_snapshots_at_the_same_index_are_never_stitched_together() {
    let mut net = Network::empty();
    net.add_node(config(2), disk_with_log(&[1, 2, 3], 2, &[], 0));
    let meta = SnapshotMeta {
        index: 7,
        term: 2,
        conf_state: ConfState {
            voters: vec![1, 2, 3],
            ..ConfState::default()
        },
    };
    let chunk = |from, term, offset: u64, bytes: &[u8], done| Message {
        from,
        to: 2,
        term,
        body: MessageBody::InstallSnapshot {
            meta: meta.clone(),
            offset,
            total_bytes: 8,
            chunk: bytes.to_vec(),
            done,
        },
    };
    net.node_mut(2).step(chunk(1, 2, 0, b"AAAA", false));
    net.process(2);
    // Leader 3 of term 3 sends the second half of its own snapshot at the same index.
    net.node_mut(2).step(chunk(3, 3, 4, b"BBBB", true));
    let (had_snapshot, messages) = net.take_one_ready(2);
    assert!(!had_snapshot, "no snapshot was stitched together");
    let resume: Vec<u64> = messages
        .iter()
        .filter_map(|m| match m.body {
            MessageBody::InstallSnapshotResponse { next_offset, .. } if m.to == 3 => {
                Some(next_offset)
            }
            _ => None,
        })
        .collect();
    assert_eq!(resume, vec![0], "leader 3 is asked to start from byte 0");
}

/// Thesis §4.2.2: a server that is not part of its own latest configuration should still start
/// elections while that entry is uncommitted. Here the leader appended the leave step of a joint
/// configuration without itself, the entry reached nobody else, and the leader restarted: the
/// others need its vote for the two-voter outgoing half, and it refuses them for their shorter
/// logs. Returns who leads afterwards, and the configuration it leads under.
fn leader_after_a_lost_leave_step(mutant: Option<Mutant>) -> Option<(NodeId, ConfState)> {
    use ConfChangeStep::*;
    let mut net = Network::with_config(&[1, 2], &[3], |c| c.mutant = mutant);
    net.elect(1);
    let joint = ConfChange {
        changes: vec![AddVoter(3), RemoveNode(1)],
        auto_leave: false,
        context: Vec::new(),
    };
    net.node_mut(1)
        .propose_conf_change(joint)
        .expect("joint change");
    net.tick_all(3);
    let status = net.node(1).status();
    assert_eq!(status.conf_state.voters_outgoing, vec![1, 2]);
    assert_eq!(
        status.commit, status.last_index,
        "the joint entry committed"
    );
    net.drop_filter = Some(Box::new(|m| m.from == 1));
    net.node_mut(1)
        .propose_conf_change(ConfChange::default())
        .expect("leave step");
    net.process(1);
    net.restart(1);
    net.drop_filter = None;
    net.tick_all(200);
    let leader = net.leader()?;
    Some((leader, net.node(leader).conf_state().clone()))
}

#[test]
fn a_node_removed_by_its_own_uncommitted_entry_still_campaigns() {
    let (leader, conf) = leader_after_a_lost_leave_step(None).expect("a leader was elected");
    assert!(
        leader == 2 || leader == 3,
        "node 1 handed over (leader {leader})"
    );
    assert_eq!(conf.voters, vec![2, 3]);
    assert!(conf.voters_outgoing.is_empty(), "the leave step committed");
    assert_eq!(
        leader_after_a_lost_leave_step(Some(Mutant::RemovedLeaderNeverCampaigns)),
        None,
        "without the rule nobody is ever elected, so this test can fail"
    );
}

/// A leader never appends a configuration that makes it a learner (it could hold that entry
/// alone after a crash, as a learner that never campaigns): it hands leadership to a voter of
/// the new configuration, where the change is then made.
#[test]
fn a_leader_hands_over_instead_of_demoting_itself() {
    let mut net = Network::new(&[1, 2, 3], &[]);
    net.elect(1);
    let demote_1 = ConfChange {
        changes: vec![ConfChangeStep::AddLearner(1)],
        auto_leave: false,
        context: Vec::new(),
    };
    assert_eq!(
        net.node_mut(1).propose_conf_change(demote_1.clone()),
        Err(ProposeError::TransferInProgress)
    );
    net.tick_all(5);
    let leader = net.leader().expect("a new leader");
    assert_ne!(
        leader, 1,
        "leadership moved to a voter of the new configuration"
    );
    assert_eq!(
        net.node(1).conf_state().voters,
        vec![1, 2, 3],
        "nothing was appended"
    );
    net.node_mut(leader)
        .propose_conf_change(demote_1.clone())
        .expect("the new leader makes the change");
    net.tick_all(3);
    assert_eq!(net.node(1).role(), Role::Learner);

    let mut net = Network::with_config(&[1, 2, 3], &[], |c| {
        c.mutant = Some(Mutant::LeaderDemotesItself)
    });
    net.elect(1);
    assert_eq!(
        net.node_mut(1).propose_conf_change(demote_1),
        Ok(()),
        "the mutant appends its own demotion, so this test can fail"
    );
}

/// A learner whose fresher log a needed candidate was refused for campaigns itself. Node 1
/// appends the promotion of learner 4, which reaches nobody; node 2 then wins term 2 and its
/// first entry reaches only node 4, overwriting nothing there but outranking node 1's promotion;
/// node 2 fails for good. Node 1's configuration {1,2,3,4} needs node 4, which refuses node 1's
/// older log; node 3 needs node 1, which refuses node 3's shorter log; and node 4 is a learner in
/// its own log. Returns who leads after the others were given time, if anyone but node 2, and
/// its voters.
fn leader_after_a_needed_learner_outranked_the_promotion(
    mutant: Option<Mutant>,
) -> Option<(NodeId, Vec<NodeId>)> {
    let mut net = Network::with_config(&[1, 2, 3], &[4], |c| c.mutant = mutant);
    net.elect(1);
    net.propose(1, "committed in term 1");
    net.isolate(1);
    let promote_4 = ConfChange {
        changes: vec![ConfChangeStep::AddVoter(4)],
        auto_leave: false,
        context: Vec::new(),
    };
    net.node_mut(1)
        .propose_conf_change(promote_4)
        .expect("the promotion is appended");
    net.deliver();
    assert_eq!(net.node(1).conf_state().voters, vec![1, 2, 3, 4]);

    net.drop_filter = Some(Box::new(|m| {
        m.from == 2 && m.to == 3 && matches!(m.body, MessageBody::Append { .. })
    }));
    net.node_mut(3).forget_leader();
    net.elect(2);
    let promotion_index = net.node(1).status().last_index;
    assert_eq!(
        net.log_terms(4).last(),
        Some(&(promotion_index, 2)),
        "node 4 holds node 2's first entry where node 1 holds the promotion"
    );
    assert_eq!(net.log_terms(1).last(), Some(&(promotion_index, 1)));

    net.heal();
    net.drop_filter = None;
    net.isolate(2);
    net.tick_all(300);
    let leader = net.leader().filter(|&leader| leader != 2)?;
    Some((leader, net.node(leader).conf_state().voters.clone()))
}

#[test]
fn a_learner_refusing_a_needed_candidate_for_its_older_log_campaigns() {
    let (leader, voters) = leader_after_a_needed_learner_outranked_the_promotion(None)
        .expect("a leader was elected without node 2");
    assert!(
        leader == 1 || leader == 3,
        "the learner stepped down for a voter once its entry committed (leader {leader})"
    );
    assert_eq!(
        voters,
        vec![1, 2, 3],
        "node 2's lineage won: the promotion is gone"
    );
    assert_eq!(
        leader_after_a_needed_learner_outranked_the_promotion(Some(
            Mutant::NeededLearnerNeverCampaigns
        )),
        None,
        "without the rule nobody is ever elected, so this test can fail"
    );
}
