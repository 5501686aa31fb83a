//! Multi-process tests: real ringraftd processes on loopback, started by `ringraftd dev`.

mod common;

use std::collections::BTreeMap;

use common::{prepare_joiner, wait_until, Cluster};
use ringraft_proto::{Request, Response, Status};

const KEYS: usize = 10_000;

fn owners(cluster: &Cluster, id: u64) -> (u64, Vec<u64>) {
    let client = cluster.client(id).expect("connect");
    let mut epoch = None;
    let mut owners = Vec::with_capacity(KEYS);
    for key in 0..KEYS {
        let request = Request::Owner {
            key: format!("key-{key}").into_bytes(),
            linearizable: false,
        };
        match client.call(request).expect("owner") {
            Response::Owner { epoch: e, member } => {
                assert_eq!(*epoch.get_or_insert(e), e, "epoch moved during the scan");
                owners.push(member.id);
            }
            other => panic!("unexpected answer to Owner: {other:?}"),
        }
    }
    (epoch.unwrap_or(0), owners)
}

fn replicas(cluster: &Cluster, id: u64, key: &str) -> (u64, Vec<u64>) {
    let request = Request::Replicas {
        key: key.as_bytes().to_vec(),
        n: 3,
        linearizable: false,
    };
    match cluster
        .client(id)
        .expect("connect")
        .call(request)
        .expect("replicas")
    {
        Response::Replicas { epoch, members } => (epoch, members.iter().map(|m| m.id).collect()),
        other => panic!("unexpected answer to Replicas: {other:?}"),
    }
}

#[test]
fn three_nodes_agree_on_order_and_ownership() {
    let cluster = Cluster::start("agree", 3, &[]);
    let mut acknowledged = BTreeMap::new();
    for round in 0..20u64 {
        for id in 1..=3u64 {
            let data = format!("n{id}-p{round}").into_bytes();
            let index = cluster.propose_retrying(id, &data);
            assert!(
                acknowledged.insert(index, data).is_none(),
                "two proposals acknowledged at one index"
            );
        }
    }
    let last = *acknowledged.keys().last().unwrap();
    wait_until("every node applied every proposal", || {
        (1..=3).all(|id| cluster.status(id).is_ok_and(|s| s.applied_index >= last))
    });
    let logs: Vec<_> = (1..=3).map(|id| cluster.read_all(id)).collect();
    for (i, log) in logs.iter().enumerate() {
        assert_eq!(log, &logs[0], "node {} has another order", i + 1);
    }
    let read: BTreeMap<u64, Vec<u8>> = logs[0].iter().map(|r| (r.index, r.data.clone())).collect();
    assert_eq!(
        read, acknowledged,
        "the log holds exactly the acknowledged proposals"
    );

    let first = owners(&cluster, 1);
    assert_eq!(
        first
            .1
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        3
    );
    for id in 2..=3 {
        assert_eq!(owners(&cluster, id), first, "node {id} answers differently");
    }
    for key in ["a", "b", "session:42"] {
        let (epoch, set) = replicas(&cluster, 1, key);
        assert_eq!(set.len(), 3);
        assert_eq!(set[0], {
            match cluster
                .client(1)
                .unwrap()
                .call(Request::Owner {
                    key: key.as_bytes().to_vec(),
                    linearizable: true,
                })
                .unwrap()
            {
                Response::Owner { member, .. } => member.id,
                other => panic!("{other:?}"),
            }
        });
        for id in 2..=3 {
            assert_eq!(replicas(&cluster, id, key), (epoch, set.clone()));
        }
    }
}

#[test]
fn leader_killed_with_sigkill_loses_nothing_acknowledged() {
    let cluster = Cluster::start("kill9", 3, &[]);
    let leader = cluster.wait_for_leader(&[1, 2, 3]);
    let mut acknowledged = Vec::new();
    for i in 0..30 {
        let data = format!("before-{i}").into_bytes();
        acknowledged.push((cluster.propose_retrying(leader, &data), data));
    }
    cluster.kill9(leader);
    let survivors: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    let new_leader = cluster.wait_for_leader(&survivors);
    assert_ne!(new_leader, leader);
    for i in 0..30 {
        let data = format!("after-{i}").into_bytes();
        let via = survivors[i % survivors.len()];
        acknowledged.push((cluster.propose_retrying(via, &data), data));
    }
    cluster.restart(leader);
    let last = acknowledged.iter().map(|(index, _)| *index).max().unwrap();
    wait_until("the restarted node catches up", || {
        cluster
            .status(leader)
            .is_ok_and(|s| s.applied_index >= last)
    });
    for id in 1..=3 {
        let log: BTreeMap<u64, Vec<u8>> = cluster
            .read_all(id)
            .into_iter()
            .map(|r| (r.index, r.data))
            .collect();
        for (index, data) in &acknowledged {
            assert_eq!(log.get(index), Some(data), "node {id} lost index {index}");
        }
    }
}

#[test]
fn lagging_node_catches_up_through_a_snapshot() {
    // No retained tail: 120 entries behind must mean a snapshot.
    let args = [
        "--snapshot-every-entries",
        "20",
        "--snapshot-catch-up-entries",
        "0",
    ];
    let cluster = Cluster::start("snapshot", 3, &args);
    let leader = cluster.wait_for_leader(&[1, 2, 3]);
    let lagging = (1..=3).find(|id| *id != leader).unwrap();
    let before = cluster.status(lagging).unwrap().applied_index;
    cluster.kill9(lagging);
    let mut last = 0;
    for i in 0..120 {
        last = cluster.propose_retrying(leader, format!("while-down-{i}").as_bytes());
    }
    let leader_status = cluster.status(leader).unwrap();
    assert!(
        leader_status.snapshot_index > before + 1,
        "the leader compacted past what the lagging node had ({} <= {before})",
        leader_status.snapshot_index
    );
    cluster.restart(lagging);
    wait_until("the lagging node catches up", || {
        cluster
            .status(lagging)
            .is_ok_and(|s| s.applied_index >= last)
    });
    let status = cluster.status(lagging).unwrap();
    assert!(
        status.snapshot_index > before,
        "the lagging node installed a snapshot (snapshot index {} > {before})",
        status.snapshot_index
    );
    assert_eq!(cluster.read_all(lagging), cluster.read_all(leader));
}

#[test]
fn garbage_on_the_socket_gets_an_error_and_others_are_served() {
    use std::io::{Read, Write};
    let cluster = Cluster::start("garbage", 1, &[]);
    let mut raw = std::os::unix::net::UnixStream::connect(cluster.socket(1)).unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = raw.read_to_end(&mut answer);
    let client = cluster
        .client(1)
        .expect("a well-behaved client still connects");
    assert!(client.status().is_ok());
    let err = client
        .call(Request::Propose {
            data: vec![0; (64 << 10) + 1],
            timeout_ms: 1000,
        })
        .unwrap_err();
    assert_eq!(err.status, Status::TooLarge, "{err}");
    assert!(cluster.client(1).unwrap().status().is_ok());
}

#[test]
fn reading_the_log_from_index_0_is_an_invalid_argument() {
    let cluster = Cluster::start("read0", 1, &[]);
    let client = cluster.client(1).expect("connects");
    let err = client
        .call(Request::ReadLog { from: 0, max: 10 })
        .unwrap_err();
    assert_eq!(err.status, Status::InvalidArgument, "{err}");
    assert!(err.to_string().contains("start at 1"), "{err}");
    assert!(
        client.call(Request::ReadLog { from: 1, max: 10 }).is_ok(),
        "from 1 is fine"
    );
}

fn admin(cluster: &Cluster, via: u64, request: Request) -> Response {
    cluster
        .client(via)
        .expect("connect")
        .call(request)
        .unwrap_or_else(|err| panic!("admin request through n{via} failed: {err}"))
}

#[test]
fn join_promote_and_remove_move_only_the_keys_that_must_move() {
    let cluster = Cluster::start("join", 3, &[]);
    let leader = cluster.wait_for_leader(&[1, 2, 3]);
    let (epoch_before, before) = owners(&cluster, 1);
    let ring_before = whole_ring(&cluster, leader);
    assert_eq!(ring_before.0, epoch_before);

    prepare_joiner(&cluster, 4);
    cluster.restart(4);
    wait_until("node 4 is a member everywhere and has the state", || {
        (1..=4).all(|id| cluster.members(id).1.iter().any(|m| m.id == 4))
    });
    let (epoch_joined, joined) = owners(&cluster, 1);
    assert!(epoch_joined > epoch_before, "the epoch advances on join");
    let mut moved_to_new = 0;
    for (key, (old, new)) in before.iter().zip(&joined).enumerate() {
        if old != new {
            assert_eq!(
                *new, 4,
                "key-{key} moved from {old} to {new}, not to the new node"
            );
            moved_to_new += 1;
        }
    }
    assert!(moved_to_new > 0, "the new member owns some keys");
    wait_until("node 4 answers at the same epoch", || {
        cluster.members(4).0 == epoch_joined
    });
    assert_eq!(owners(&cluster, 4), (epoch_joined, joined.clone()));

    let follower = (1..=3).find(|id| *id != leader).unwrap();
    admin(&cluster, follower, Request::Promote { id: 4 });
    // Forwarded to the leader, answered once the follower itself shows the change.
    assert!(
        cluster
            .members(follower)
            .1
            .iter()
            .any(|m| m.id == 4 && m.role == ringraft_proto::MemberRole::Voter),
        "the follower that took the request shows node 4 as a voter when it answers"
    );

    let removed = (1..=3).find(|id| *id != leader && *id != follower).unwrap();
    admin(&cluster, leader, Request::Remove { id: removed });
    let survivor = leader;
    wait_until("the removed node is gone from the member list", || {
        !cluster.members(survivor).1.iter().any(|m| m.id == removed)
    });
    let (epoch_removed, after_removal) = owners(&cluster, survivor);
    assert!(
        epoch_removed > epoch_joined,
        "the epoch advances on removal"
    );
    for (key, (old, new)) in joined.iter().zip(&after_removal).enumerate() {
        if old != new {
            assert_eq!(
                *old, removed,
                "key-{key} moved from {old} to {new} though its owner stayed"
            );
        }
        assert_ne!(*new, removed);
    }

    // A client holding the ring from before the join follows to now by one delta, and ends
    // with the daemon's whole ring byte for byte.
    let answer = cluster
        .client(survivor)
        .expect("connect")
        .call(Request::RingSince {
            epoch: epoch_before,
            linearizable: false,
        })
        .expect("ring since");
    let (from_epoch, epoch, delta, members, gone) = match answer {
        Response::RingDelta {
            from_epoch,
            epoch,
            delta,
            members,
            removed,
            ..
        } => (from_epoch, epoch, delta, members, removed),
        Response::Ring { epoch, .. } => panic!("expected a delta, got the whole ring at {epoch}"),
        other => panic!("expected a ring delta, got {other:?}"),
    };
    assert_eq!((from_epoch, epoch), (epoch_before, epoch_removed));
    assert!(
        members.iter().any(|m| m.id == 4),
        "the joiner is in the delta"
    );
    assert_eq!(gone, vec![removed]);
    let mut ring = ringraft_ring::Ring::decode(&ring_before.1).expect("ring decodes");
    let delta = ringraft_ring::RingDelta::decode(&delta).expect("delta decodes");
    ring.apply_delta(&delta)
        .expect("the delta applies to the old ring");
    let mut followed = ring_before.2;
    followed.retain(|m| !gone.contains(&m.id) && !members.iter().any(|c| c.id == m.id));
    followed.extend(members);
    followed.sort_by_key(|m| m.id);
    let now = whole_ring(&cluster, survivor);
    assert_eq!(now.0, epoch_removed);
    assert!(ring.encode() == now.1, "the followed ring is the daemon's");
    assert_eq!(followed, now.2, "the followed members are the daemon's");
}

/// The `Ring` answer of node `id`: epoch, encoded ring, members.
fn whole_ring(cluster: &Cluster, id: u64) -> (u64, Vec<u8>, Vec<ringraft_proto::Member>) {
    let request = Request::Ring {
        linearizable: false,
    };
    match cluster
        .client(id)
        .expect("connect")
        .call(request)
        .expect("ring")
    {
        Response::Ring {
            epoch,
            ring,
            members,
            ..
        } => (epoch, ring, members),
        other => panic!("unexpected answer to Ring: {other:?}"),
    }
}

fn member_state(cluster: &Cluster, via: u64, id: u64) -> Option<ringraft_proto::MemberState> {
    cluster
        .members(via)
        .1
        .into_iter()
        .find(|m| m.id == id)
        .map(|m| m.state)
}

#[test]
fn silent_member_is_marked_down_owns_nothing_and_returns() {
    use ringraft_proto::MemberState;
    let cluster = Cluster::start("down", 3, &["--down-after-ms", "1000"]);
    let leader = cluster.wait_for_leader(&[1, 2, 3]);
    let victim = (1..=3).find(|id| *id != leader).unwrap();
    cluster.kill9(victim);
    wait_until("the leader marks the silent member down", || {
        member_state(&cluster, leader, victim) == Some(MemberState::Down)
    });
    let (_, while_down) = owners(&cluster, leader);
    assert!(!while_down.contains(&victim), "a down member owns no key");
    cluster.restart(victim);
    wait_until("the member is active again", || {
        member_state(&cluster, leader, victim) == Some(MemberState::Active)
    });
    let (_, back) = owners(&cluster, leader);
    assert!(
        back.contains(&victim),
        "the returning member owns keys again"
    );
}

#[test]
fn sigterm_on_the_leader_hands_leadership_over_and_exits_zero() {
    let cluster = Cluster::start("sigterm", 3, &[]);
    let first = cluster.wait_for_leader(&[1, 2, 3]);
    // Restart it as this test's own child so its exit status can be read.
    cluster.kill9(first);
    let others: Vec<u64> = (1..=3).filter(|id| *id != first).collect();
    let interim = cluster.wait_for_leader(&others);
    cluster.restart(first);
    admin(&cluster, interim, Request::TransferLeader { id: first });
    assert_eq!(cluster.wait_for_leader(&[1, 2, 3]), first);

    let status = cluster.terminate(first);
    assert!(status.success(), "ringraftd exited with {status}");
    assert!(
        cluster.log(first).contains("handing leadership over first"),
        "the leader transferred before stopping"
    );
    let next = cluster.wait_for_leader(&others);
    assert_ne!(next, first);
    cluster.propose_retrying(next, b"after the handover");
}

#[test]
fn watch_and_snapshot_through_a_real_node() {
    let cluster = Cluster::start("watch", 3, &[]);
    let leader = cluster.wait_for_leader(&[1, 2, 3]);
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let watcher = cluster.client(follower).unwrap();
    let watch = watcher.watch_log(1).unwrap();
    let mut sent = Vec::new();
    for i in 0..10 {
        let data = format!("watched-{i}").into_bytes();
        cluster.propose_retrying(leader, &data);
        sent.push(data);
    }
    let mut seen = Vec::new();
    while seen.len() < sent.len() {
        let batch = watch.next().expect("watch record");
        seen.extend(batch.records.into_iter().map(|r| r.data));
    }
    assert_eq!(seen, sent);

    let index = match admin(&cluster, follower, Request::Snapshot) {
        Response::Done { index } => index,
        other => panic!("unexpected answer to Snapshot: {other:?}"),
    };
    assert!(index > 1);
    wait_until("the status shows the snapshot", || {
        cluster
            .status(follower)
            .is_ok_and(|s| s.snapshot_index >= index)
    });
}

#[test]
fn node_with_a_certificate_from_another_ca_is_refused() {
    use ringraft_daemon::certs::{CertificateAuthority, Overwrite, TlsFiles};
    use ringraft_daemon::dev;

    let cluster = Cluster::start("foreign", 3, &[]);
    cluster.wait_for_leader(&[1, 2, 3]);
    prepare_joiner(&cluster, 4);
    let dir = dev::node_dir(&cluster.dir, 4);
    let rogue = CertificateAuthority::generate("some other cluster CA").expect("rogue CA");
    rogue
        .issue_node(4, &["127.0.0.1".to_string()])
        .expect("issue")
        .write(&dir, Overwrite::Replace)
        .expect("write");
    std::fs::write(TlsFiles::in_dir(&dir).ca_cert, &rogue.cert_pem).expect("rogue ca.pem");

    cluster.restart(4);
    wait_until("node 4 tried and failed to join three times", || {
        cluster
            .log(4)
            .matches("cannot reach a member to join through")
            .count()
            >= 3
    });
    for id in 1..=3 {
        let (_, members) = cluster.members(id);
        assert!(
            !members.iter().any(|m| m.id == 4),
            "node {id} admitted a node with a foreign certificate"
        );
    }
    assert!(
        cluster.members(4).1.is_empty(),
        "node 4 never got the state"
    );
}
