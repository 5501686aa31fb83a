//! Log compaction and snapshot transfer in chunks that resume after a loss.

mod paper_net;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use paper_net::Network;
use ringraft_raft::{Message, MessageBody, RaftError};

fn snapshot_offset(m: &ringraft_raft::Message) -> Option<u64> {
    match m.body {
        MessageBody::InstallSnapshot { offset, .. } => Some(offset),
        _ => None,
    }
}

#[test]
fn lagging_follower_gets_the_snapshot_in_chunks_and_resumes_after_a_loss() {
    let mut net = Network::with_config(&[1, 2, 3], &[], |c| c.snapshot_chunk_bytes_max = 100);
    net.elect(1);
    net.isolate(3);
    for i in 0..10 {
        net.propose(1, &format!("e{i}"));
    }
    net.tick_all(1);
    let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    net.compact(1, data.clone());
    let snapshot_index = net.node(1).status().snapshot_index;
    assert!(snapshot_index >= 11);
    net.propose(1, "after the snapshot");
    // Lose the chunk at offset 300 once.
    let dropped = Rc::new(Cell::new(false));
    let dropped_in_filter = dropped.clone();
    net.drop_filter = Some(Box::new(move |m| {
        if snapshot_offset(m) == Some(300) && !dropped_in_filter.get() {
            dropped_in_filter.set(true);
            return true;
        }
        false
    }));
    net.heal();
    net.tick_all(20);
    assert!(dropped.get());
    let disk = &net.disks[&3];
    let snapshot = disk.snapshot.as_ref().expect("node 3 installed a snapshot");
    assert_eq!(snapshot.meta.index, snapshot_index);
    assert_eq!(snapshot.data, data);
    assert_eq!(net.applied_data(3), vec!["after the snapshot"]);
    assert_eq!(net.log_terms(3), net.log_terms(1));
    let starts = net.count_delivered(|m| m.to == 3 && snapshot_offset(m) == Some(0));
    assert_eq!(starts, 1, "the transfer resumed instead of restarting");
    let resent = net.count_delivered(|m| m.to == 3 && snapshot_offset(m) == Some(300));
    assert_eq!(resent, 1, "the lost chunk was sent again");
    let chunks = net.count_delivered(|m| m.to == 3 && snapshot_offset(m).is_some());
    assert_eq!(chunks, 10);
}

#[test]
fn a_restarted_node_recovers_from_its_snapshot() {
    let mut net = Network::new(&[1, 2, 3], &[]);
    net.elect(1);
    net.propose(1, "a");
    net.propose(1, "b");
    net.tick_all(1);
    net.compact(2, b"state".to_vec());
    net.restart(2);
    net.propose(1, "c");
    net.tick_all(2);
    assert_eq!(net.node(2).status().snapshot_index, 3);
    assert_eq!(net.node(2).status().commit, net.node(1).status().commit);
    assert!(net.applied_data(2).ends_with(&["c".to_string()]));
}

#[test]
fn compaction_refuses_unapplied_indexes_and_ignores_compacted_ones() {
    let mut net = Network::new(&[1, 2, 3], &[]);
    net.elect(1);
    net.propose(1, "a");
    let applied = net.node(1).status().applied;
    let beyond = net.node_mut(1).compact(applied + 5, vec![]);
    assert!(matches!(beyond, Err(RaftError::Compaction { .. })));
    net.compact(1, vec![1]);
    assert_eq!(net.node(1).status().snapshot_index, applied);
    assert_eq!(net.node_mut(1).compact(applied, vec![]), Ok(None));
    assert_eq!(net.node_mut(1).compact(applied - 1, vec![]), Ok(None));
    assert_eq!(net.node(1).status().snapshot_index, applied);
    assert_eq!(net.disks[&1].snapshot.as_ref().unwrap().data, vec![1]);
}

/// Seed 10990 of the simulator: a follower's shell compacts at its applied index while the
/// leader's newer snapshot has already replaced the core's log (the Ready that carries it is
/// not out yet). The shell cannot know: the compaction is a no-op, and the snapshot follows.
#[test]
fn compaction_below_an_incoming_leader_snapshot_is_a_no_op() {
    let mut net = Network::new(&[1, 2, 3], &[]);
    net.elect(1);
    net.propose(1, "a");
    net.tick_all(1);
    let follower_applied = net.node(3).status().applied;
    assert!(follower_applied > 0);
    net.isolate(3);
    for i in 0..5 {
        net.propose(1, &format!("e{i}"));
    }
    net.compact(1, b"leader state".to_vec());
    let leader_snapshot = net.node(1).status().snapshot_index;
    assert!(leader_snapshot > follower_applied);
    // Hold the snapshot back on its way to node 3, then hand it over without processing.
    let held: Rc<RefCell<Vec<Message>>> = Rc::default();
    let sink = held.clone();
    net.drop_filter = Some(Box::new(move |m| {
        let hold = m.to == 3 && snapshot_offset(m).is_some();
        if hold {
            sink.borrow_mut().push(m.clone());
        }
        hold
    }));
    net.heal();
    net.tick_all(3);
    let snapshot_message = held.borrow_mut().drain(..).next().expect("snapshot sent");
    net.node_mut(3).step(snapshot_message);
    assert_eq!(net.node(3).status().snapshot_index, leader_snapshot);
    assert_eq!(net.node(3).status().applied, follower_applied);
    let result = net.node_mut(3).compact(follower_applied, b"stale".to_vec());
    assert_eq!(result, Ok(None));
    net.process(3);
    let disk = net.disks[&3].snapshot.as_ref().expect("snapshot installed");
    assert_eq!(disk.meta.index, leader_snapshot);
    assert_eq!(disk.data, b"leader state".to_vec());
}

/// Seed 20061 of the simulator: every duplicated chunk acknowledgement made the leader send the
/// next chunk again, so duplicates multiplied along the transfer into a message storm. Each
/// acknowledgement here arrives twice; the transfer must still send each chunk about once.
#[test]
fn duplicated_chunk_acknowledgements_do_not_multiply_chunks() {
    let mut net = Network::with_config(&[1, 2, 3], &[], |c| c.snapshot_chunk_bytes_max = 100);
    net.elect(1);
    net.isolate(3);
    for i in 0..10 {
        net.propose(1, &format!("e{i}"));
    }
    net.tick_all(1);
    let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    net.compact(1, data.clone());
    net.heal();
    let mut chunks_sent = 0;
    for _ in 0..20 {
        for id in [1, 2, 3] {
            net.node_mut(id).tick();
        }
        chunks_sent += deliver_acknowledging_chunks_twice(&mut net);
    }
    let snapshot = net.disks[&3]
        .snapshot
        .as_ref()
        .expect("node 3 installed it");
    assert_eq!(snapshot.data, data);
    assert!(
        chunks_sent <= 12,
        "{chunks_sent} chunks sent for a snapshot of 10 chunks"
    );
}

/// Delivers until quiet, every snapshot chunk acknowledgement twice; returns the chunks sent.
fn deliver_acknowledging_chunks_twice(net: &mut Network) -> usize {
    let mut chunks_sent = 0;
    for _ in 0..10_000 {
        net.process_all();
        let Some(message) = net.queue.pop_front() else {
            return chunks_sent;
        };
        let copies = match message.body {
            MessageBody::InstallSnapshot { .. } => {
                chunks_sent += 1;
                1
            }
            MessageBody::InstallSnapshotResponse { .. } => 2,
            _ => 1,
        };
        for _ in 0..copies {
            net.node_mut(message.to).step(message.clone());
        }
    }
    panic!("the transfer never quiesced ({chunks_sent} chunks sent)");
}

/// A compaction keeps a tail of `snapshot_catch_up_entries` entries before the snapshot (etcd's
/// SnapshotCatchUpEntries): a follower only that far behind catches up from the log, one further
/// behind gets the snapshot. Returns whether node 3, `behind` entries behind the compaction
/// point, got a snapshot, and what it applied.
fn catch_up_after_compaction(tail: u64, behind: usize) -> (bool, Vec<String>) {
    let mut net = Network::with_config(&[1, 2, 3], &[], |c| c.snapshot_catch_up_entries = tail);
    net.elect(1);
    for i in 0..5 {
        net.propose(1, &format!("a{i}"));
    }
    net.tick_all(1);
    net.isolate(3);
    for i in 0..behind {
        net.propose(1, &format!("b{i}"));
    }
    net.tick_all(1);
    net.compact(1, b"state".to_vec());
    let status = net.node(1).status();
    assert_eq!(status.snapshot_index, status.applied);
    let retained = status.snapshot_index + 1 - status.log_first_index;
    assert_eq!(
        retained,
        tail.min(status.snapshot_index),
        "the tail the leader kept"
    );
    net.heal();
    net.tick_all(20);
    let snapshot_sent = net.count_delivered(|m| m.to == 3 && snapshot_offset(m).is_some()) > 0;
    assert_eq!(
        net.node(3).status().commit,
        net.node(1).status().last_index,
        "node 3 caught up"
    );
    (snapshot_sent, net.applied_data(3))
}

#[test]
fn a_follower_within_the_retained_tail_catches_up_from_the_log() {
    let (snapshot_sent, applied) = catch_up_after_compaction(4, 3);
    assert!(
        !snapshot_sent,
        "three entries behind, inside a tail of four"
    );
    let expected: Vec<String> = (0..5)
        .map(|i| format!("a{i}"))
        .chain((0..3).map(|i| format!("b{i}")))
        .collect();
    assert_eq!(applied, expected, "every entry arrived through appends");

    let (snapshot_sent, _) = catch_up_after_compaction(4, 6);
    assert!(
        snapshot_sent,
        "six entries behind a tail of four: a snapshot"
    );
    let (snapshot_sent, _) = catch_up_after_compaction(0, 1);
    assert!(snapshot_sent, "without a tail, one entry behind is too far");
}

/// A follower refuses a snapshot announced larger than `snapshot_bytes_max`, so that what it
/// assembles in memory stays bounded whatever a faulty leader claims; one within the bound is
/// taken.
#[test]
fn a_snapshot_announced_larger_than_the_bound_is_refused() {
    use paper_net::{config, disk_with_log};
    use ringraft_raft::{ConfState, SnapshotMeta};
    for (total_bytes, refused) in [(64u64, false), (65, true), (u64::MAX, true)] {
        let mut net = Network::empty();
        let mut c = config(2);
        c.snapshot_bytes_max = 64;
        net.add_node(c, disk_with_log(&[1, 2, 3], 2, &[], 0));
        let first_chunk = Message {
            from: 1,
            to: 2,
            term: 2,
            body: MessageBody::InstallSnapshot {
                meta: SnapshotMeta {
                    index: 7,
                    term: 2,
                    conf_state: ConfState {
                        voters: vec![1, 2, 3],
                        ..ConfState::default()
                    },
                },
                offset: 0,
                total_bytes,
                chunk: vec![0; 16],
                done: false,
            },
        };
        net.node_mut(2).step(first_chunk);
        let (_, messages) = net.take_one_ready(2);
        let answers: Vec<(bool, u64)> = messages
            .iter()
            .filter_map(|m| match m.body {
                MessageBody::InstallSnapshotResponse {
                    reject,
                    next_offset,
                    ..
                } => Some((reject, next_offset)),
                _ => None,
            })
            .collect();
        let expected = if refused { (true, 0) } else { (false, 16) };
        assert_eq!(answers, vec![expected], "total_bytes {total_bytes}");
    }
}

/// The core reports the bytes of log it holds, so that a shell can compact by size as well as by
/// count: they grow with each entry and fall back with a compaction.
#[test]
fn the_log_in_memory_is_measured_in_bytes() {
    let mut net = Network::new(&[1, 2, 3], &[]);
    net.elect(1);
    let empty = net.node(1).log_bytes();
    net.propose(1, &"x".repeat(1000));
    net.propose(1, &"y".repeat(1000));
    net.tick_all(1);
    let full = net.node(1).log_bytes();
    assert!(
        full >= empty + 2000,
        "{full} bytes after two 1000-byte entries"
    );
    assert_eq!(net.node(1).status().log_bytes, full);
    net.compact(1, b"state".to_vec());
    assert_eq!(
        net.node(1).log_bytes(),
        0,
        "nothing retained without a tail"
    );
}
