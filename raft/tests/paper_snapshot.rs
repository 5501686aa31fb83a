//! Log compaction and snapshot transfer in chunks that resume after a loss.

mod paper_net;

use std::cell::Cell;
use std::rc::Rc;

use paper_net::Network;
use ringraft_raft::{MessageBody, RaftError};

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
fn compaction_refuses_unapplied_or_already_compacted_indexes() {
    let mut net = Network::new(&[1, 2, 3], &[]);
    net.elect(1);
    net.propose(1, "a");
    let applied = net.node(1).status().applied;
    let beyond = net.node_mut(1).compact(applied + 5, vec![]);
    assert!(matches!(beyond, Err(RaftError::Compaction { .. })));
    net.compact(1, vec![1]);
    let again = net.node_mut(1).compact(applied, vec![]);
    assert!(matches!(again, Err(RaftError::Compaction { .. })));
}
