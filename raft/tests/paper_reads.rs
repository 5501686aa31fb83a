//! ReadIndex (thesis §6.4); lease reads are in paper_lease.rs.

mod paper_net;

use paper_net::Network;
use ringraft_raft::{MessageBody, ReadState};

fn reads(net: &Network, id: u64) -> Vec<ReadState> {
    net.read_states.get(&id).cloned().unwrap_or_default()
}

#[test]
fn read_index_needs_a_heartbeat_quorum() {
    let mut net = Network::new(&[1, 2, 3], &[]);
    net.elect(1);
    net.propose(1, "a");
    let commit = net.node(1).status().commit;
    net.isolate(1);
    net.node_mut(1).read_index(b"r1".to_vec()).unwrap();
    net.tick_all(3);
    assert!(
        reads(&net, 1).is_empty(),
        "no quorum confirmed the leadership"
    );
    net.heal();
    net.tick_all(1);
    assert_eq!(
        reads(&net, 1),
        vec![ReadState {
            context: b"r1".to_vec(),
            index: commit
        }]
    );
}

#[test]
fn read_index_waits_for_a_committed_entry_of_the_term() {
    let mut net = Network::new(&[1, 2, 3], &[]);
    net.drop_filter = Some(Box::new(|m| matches!(m.body, MessageBody::Append { .. })));
    net.elect(1);
    net.node_mut(1).read_index(b"early".to_vec()).unwrap();
    net.tick_all(3);
    assert!(
        reads(&net, 1).is_empty(),
        "the leader's empty entry is not committed"
    );
    net.drop_filter = None;
    net.tick_all(2);
    let states = reads(&net, 1);
    assert_eq!(states.len(), 1);
    assert_eq!(states[0].index, net.node(1).status().commit);
}

#[test]
fn followers_forward_reads_to_the_leader() {
    let mut net = Network::new(&[1, 2, 3], &[4]);
    net.elect(1);
    net.propose(1, "a");
    net.node_mut(2).read_index(b"f".to_vec()).unwrap();
    net.node_mut(4).read_index(b"l".to_vec()).unwrap();
    net.deliver();
    net.tick_all(1);
    let commit = net.node(1).status().commit;
    assert_eq!(
        reads(&net, 2),
        vec![ReadState {
            context: b"f".to_vec(),
            index: commit
        }]
    );
    assert_eq!(
        reads(&net, 4),
        vec![ReadState {
            context: b"l".to_vec(),
            index: commit
        }]
    );
    assert!(reads(&net, 1).is_empty());
}
