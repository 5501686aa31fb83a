//! Replication and commitment: the figure 8 rule, log matching with conflict truncation, fast
//! back-off, the durability rule, and hostile messages.

mod paper_net;

use paper_net::{config, disk_with_log, entry, Disk, Network};
use ringraft_raft::{
    ConfState, HardState, InitialState, Message, MessageBody, RawNode, SnapshotMeta,
};

fn msg(from: u64, to: u64, term: u64, body: MessageBody) -> Message {
    Message {
        from,
        to,
        term,
        body,
    }
}

/// Thesis §3.6.2 / figure 3.7 (figure 8 of the paper): a leader never commits an entry of an
/// earlier term by counting replicas, only through an entry of its own term.
#[test]
fn leader_does_not_commit_older_term_entries_by_counting_replicas() {
    let voters = [1, 2, 3];
    let mut net = Network::empty();
    net.add_node(config(1), disk_with_log(&voters, 2, &[1, 2], 1));
    net.add_node(config(2), disk_with_log(&voters, 2, &[1, 2], 1));
    net.add_node(config(3), disk_with_log(&voters, 2, &[1], 1));
    // Node 1 is elected in term 3, but none of its appends arrive.
    net.drop_filter = Some(Box::new(|m| matches!(m.body, MessageBody::Append { .. })));
    net.elect(1);
    let term = net.node(1).term();
    assert_eq!(
        net.node(1).status().last_index,
        3,
        "its empty entry of term 3"
    );
    // Node 2 holds index 2 (term 2): with node 1 that is a majority, yet it must not commit.
    let ack_2 = MessageBody::AppendResponse {
        index: 2,
        reject: false,
        reject_hint_index: 0,
        reject_hint_term: 0,
    };
    net.node_mut(1).step(msg(2, 1, term, ack_2));
    net.process(1);
    assert_eq!(net.node(1).status().commit, 1);
    // Once the entry of term 3 is on a majority, both commit.
    net.drop_filter = None;
    net.tick_all(2);
    for id in voters {
        assert_eq!(net.node(id).status().commit, 3, "node {id}");
    }
}

/// Thesis §3.5: a follower's conflicting suffix is replaced by the leader's entries; with the
/// term hint the leader skips a whole conflicting term in one round trip.
#[test]
fn conflicting_suffix_is_replaced_and_backoff_skips_whole_terms() {
    let voters = [1, 2, 3];
    let mut net = Network::empty();
    net.add_node(config(1), disk_with_log(&voters, 3, &[1, 1, 3, 3], 2));
    net.add_node(config(2), disk_with_log(&voters, 2, &[1, 1, 2, 2, 2], 2));
    net.add_node(config(3), disk_with_log(&voters, 3, &[1, 1], 2));
    net.elect(1);
    net.tick_all(2);
    let leader_log = net.log_terms(1);
    assert_eq!(leader_log, vec![(1, 1), (2, 1), (3, 3), (4, 3), (5, 4)]);
    assert_eq!(net.log_terms(2), leader_log);
    assert_eq!(net.log_terms(3), leader_log);
    let rejections = net.count_delivered(|m| {
        m.from == 2 && matches!(m.body, MessageBody::AppendResponse { reject: true, .. })
    });
    assert_eq!(rejections, 1, "one hint skips the whole term-2 suffix");
}

fn bootstrapped(id: u64, voters: &[u64]) -> RawNode {
    let initial = InitialState {
        snapshot: Some(SnapshotMeta {
            index: 0,
            term: 0,
            conf_state: ConfState {
                voters: voters.to_vec(),
                ..ConfState::default()
            },
        }),
        ..InitialState::default()
    };
    RawNode::new(config(id), initial).unwrap()
}

/// Votes and append acknowledgements leave only after the state they promise is durable.
#[test]
fn votes_and_acks_wait_for_persistence() {
    let mut node = bootstrapped(2, &[1, 2, 3]);
    let vote = MessageBody::Vote {
        last_log_index: 0,
        last_log_term: 0,
        leader_transfer: false,
    };
    node.step(msg(1, 2, 1, vote));
    let mut disk = Disk::default();
    let ready = node.ready();
    assert!(ready.messages().is_empty());
    assert_eq!(
        ready.hard_state(),
        Some(HardState {
            term: 1,
            vote: Some(1),
            commit: 0
        })
    );
    assert!(ready.must_sync());
    let synced = disk.persist(ready);
    assert_eq!(
        synced.persisted_messages()[0].body,
        MessageBody::VoteResponse { reject: false }
    );
    node.advance(synced);
    let append = MessageBody::Append {
        prev_log_index: 0,
        prev_log_term: 0,
        entries: vec![entry(1, 1)],
        leader_commit: 0,
    };
    node.step(msg(1, 2, 1, append));
    let ready = node.ready();
    assert_eq!(ready.entries().len(), 1);
    assert!(ready.messages().is_empty());
    let synced = disk.persist(ready);
    assert!(matches!(
        synced.persisted_messages()[0].body,
        MessageBody::AppendResponse {
            index: 1,
            reject: false,
            ..
        }
    ));
}

/// Seed 11990 of the simulator: an append of term 1 and a conflicting append of term 2 arrive
/// in one batch. The term-1 entries never reach the disk, so their acknowledgement must not
/// leave; the term-2 acknowledgement does, after the fsync.
#[test]
fn no_acknowledgement_for_a_term_left_in_the_same_batch() {
    let mut node = bootstrapped(2, &[1, 2, 3]);
    let old_append = MessageBody::Append {
        prev_log_index: 0,
        prev_log_term: 0,
        entries: vec![entry(1, 1), entry(2, 1)],
        leader_commit: 0,
    };
    node.step(msg(1, 2, 1, old_append));
    let new_append = MessageBody::Append {
        prev_log_index: 0,
        prev_log_term: 0,
        entries: vec![entry(1, 2)],
        leader_commit: 0,
    };
    node.step(msg(3, 2, 2, new_append));
    let ready = node.ready();
    let written: Vec<(u64, u64)> = ready.entries().iter().map(|e| (e.index, e.term)).collect();
    assert_eq!(written, vec![(1, 2)]);
    let synced = Disk::default().persist(ready);
    let acks: Vec<(u64, u64, u64)> = synced
        .persisted_messages()
        .iter()
        .filter_map(|m| match m.body {
            MessageBody::AppendResponse {
                index,
                reject: false,
                ..
            } => Some((m.to, m.term, index)),
            _ => None,
        })
        .collect();
    assert_eq!(acks, vec![(3, 2, 1)], "only the ack the disk will back");
}

/// The leader's appends go out before its own fsync, but it counts itself only after advance.
#[test]
fn leader_counts_itself_only_once_durable() {
    let mut net = Network::new(&[1, 2, 3], &[]);
    net.elect(1);
    net.isolate(1);
    let commit = net.node(1).status().commit;
    net.node_mut(1).propose(b"x".to_vec()).unwrap();
    let ready = net.node_mut(1).ready();
    assert_eq!(ready.entries().len(), 1);
    let appends = ready
        .messages()
        .iter()
        .filter(|m| matches!(m.body, MessageBody::Append { .. }))
        .count();
    assert_eq!(
        appends, 2,
        "sent to both followers before the leader's own fsync"
    );
    let x_index = ready.entries()[0].index;
    let synced = net.disks.get_mut(&1).expect("disk").persist(ready);
    // One follower acknowledges before the leader's own write is durable: no quorum yet.
    let term = net.node(1).term();
    let ack = MessageBody::AppendResponse {
        index: x_index,
        reject: false,
        reject_hint_index: 0,
        reject_hint_term: 0,
    };
    net.node_mut(1).step(msg(2, 1, term, ack));
    assert_eq!(net.node(1).status().commit, commit);
    net.node_mut(1).advance(synced);
    assert_eq!(net.node(1).status().commit, x_index);
}

/// Hostile input: malformed or out-of-range messages are ignored, never a panic.
#[test]
fn hostile_messages_are_ignored() {
    let mut net = Network::new(&[1, 2, 3], &[]);
    net.elect(1);
    net.propose(1, "a");
    let before_1 = net.node(1).status();
    let before_2 = net.node(2).status();
    let term = before_1.term;
    let garbage = vec![
        msg(
            1,
            2,
            term,
            MessageBody::Append {
                prev_log_index: u64::MAX,
                prev_log_term: term,
                entries: vec![entry(1, term)],
                leader_commit: u64::MAX,
            },
        ),
        msg(
            1,
            2,
            term,
            MessageBody::Append {
                prev_log_index: 1,
                prev_log_term: 1,
                entries: vec![entry(5, term), entry(3, term)],
                leader_commit: 100,
            },
        ),
        msg(
            1,
            2,
            term,
            MessageBody::Append {
                prev_log_index: 2,
                prev_log_term: term,
                entries: vec![entry(3, term + 7)],
                leader_commit: 3,
            },
        ),
        msg(
            1,
            2,
            term,
            MessageBody::Heartbeat {
                leader_commit: u64::MAX,
                read_round: 0,
            },
        ),
        msg(
            1,
            2,
            term,
            MessageBody::InstallSnapshot {
                meta: SnapshotMeta {
                    index: 1000,
                    term,
                    conf_state: ConfState::default(),
                },
                offset: u64::MAX - 1,
                total_bytes: 10,
                chunk: vec![0; 5],
                done: true,
            },
        ),
        msg(
            2,
            1,
            term,
            MessageBody::AppendResponse {
                index: u64::MAX,
                reject: false,
                reject_hint_index: u64::MAX,
                reject_hint_term: u64::MAX,
            },
        ),
        msg(
            2,
            1,
            term,
            MessageBody::AppendResponse {
                index: 0,
                reject: true,
                reject_hint_index: u64::MAX,
                reject_hint_term: u64::MAX,
            },
        ),
        msg(
            2,
            1,
            term,
            MessageBody::InstallSnapshotResponse {
                snapshot_index: u64::MAX,
                next_offset: u64::MAX,
                reject: false,
            },
        ),
        msg(
            9,
            1,
            term + 5,
            MessageBody::ReadIndexResponse {
                context: vec![],
                index: u64::MAX,
            },
        ),
        msg(0, 1, u64::MAX, MessageBody::TimeoutNow),
        msg(2, 7, term, MessageBody::TimeoutNow),
    ];
    for m in garbage {
        let to = m.to;
        if let Some(node) = net.nodes.get_mut(&to) {
            node.step(m);
        }
    }
    net.process_all();
    let after_2 = net.node(2).status();
    assert_eq!(after_2.commit, before_2.commit);
    assert_eq!(after_2.last_index, before_2.last_index);
    assert_eq!(net.node(1).status().commit, before_1.commit);
    // (The bogus higher-term ReadIndexResponse deposed the leader, as any higher term does.)
    net.queue.clear();
    net.tick_all(40);
    let leader = net.leader().expect("the cluster recovers");
    net.propose(leader, "b");
    net.tick_all(2);
    assert_eq!(net.applied_data(2), vec!["a", "b"]);
}

/// Lost AppendEntries in the pipelined (replicate) state are repaired by the heartbeats even
/// when no further proposal comes.
#[test]
fn lost_appends_are_repaired_without_new_proposals() {
    let mut net = Network::new(&[1, 2, 3], &[]);
    net.elect(1);
    net.propose(1, "a");
    net.drop_filter = Some(Box::new(|m| {
        m.to == 3 && matches!(m.body, MessageBody::Append { .. })
    }));
    net.propose(1, "b");
    net.drop_filter = None;
    assert_eq!(net.applied_data(3), vec!["a"]);
    assert_eq!(net.node(1).status().progress[&3].inflight_msgs, 1);
    net.tick_all(5);
    assert_eq!(net.applied_data(3), vec!["a", "b"]);
}
