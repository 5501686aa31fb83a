//! Transports on 127.0.0.1 exchange Raft messages and calls, and find each other again after a
//! restart.

mod transport_support;

use ringraft_daemon::transport::{Inbound, PeerRequest, PeerResponse};
use tokio::time::Instant;
use transport_support::*;

#[tokio::test]
async fn two_nodes_exchange_messages_both_ways() {
    let ca = new_ca();
    let mut a = start(&ca, 1);
    let mut b = start(&ca, 2);
    mesh(&[&a, &b]);
    deliver(&a, &mut b, heartbeat(1, 2, 1)).await;
    deliver(&b, &mut a, heartbeat(2, 1, 2)).await;

    // Once connected, a burst arrives complete and in order on the Raft stream.
    let count = 2000;
    for round in 100..100 + count {
        a.handle.send(heartbeat(1, 2, round));
    }
    let deadline = Instant::now() + DEADLINE;
    for round in 100..100 + count {
        let got = next_raft(&mut b.inbound, deadline, |m| round_of(m) >= Some(100))
            .await
            .expect("burst message");
        assert_eq!(round_of(&got), Some(round));
        assert_eq!((got.from, got.to), (1, 2));
    }
    a.handle.shutdown().await;
    b.handle.shutdown().await;
}

#[tokio::test]
async fn three_nodes_exchange_messages_with_every_peer() {
    let ca = new_ca();
    let mut nodes = vec![start(&ca, 1), start(&ca, 2), start(&ca, 3)];
    {
        let refs: Vec<&Node> = nodes.iter().collect();
        mesh(&refs);
    }
    for from in 0..3 {
        for to in 0..3 {
            if from == to {
                continue;
            }
            let (sender, receiver) = pick_two(&mut nodes, from, to);
            let msg = heartbeat(sender.id, receiver.id, (from * 10 + to) as u64);
            let got = deliver(sender, receiver, msg.clone()).await;
            assert_eq!(got, msg);
        }
    }
    for node in &nodes {
        node.handle.shutdown().await;
    }
}

fn pick_two(nodes: &mut [Node], from: usize, to: usize) -> (&Node, &mut Node) {
    assert_ne!(from, to);
    if from < to {
        let (left, right) = nodes.split_at_mut(to);
        (&left[from], &mut right[0])
    } else {
        let (left, right) = nodes.split_at_mut(from);
        (&right[0], &mut left[to])
    }
}

#[tokio::test]
async fn message_to_unknown_peer_is_reported_unreachable() {
    let ca = new_ca();
    let mut a = start(&ca, 1);
    a.handle.send(heartbeat(1, 9, 1));
    let deadline = Instant::now() + DEADLINE;
    loop {
        match tokio::time::timeout_at(deadline, a.inbound.recv()).await {
            Ok(Some(Inbound::Unreachable(9))) => break,
            Ok(Some(_)) => continue,
            other => panic!("expected Unreachable(9), got {other:?}"),
        }
    }
    a.handle.shutdown().await;
}

#[tokio::test]
async fn restarted_peer_is_reconnected() {
    let ca = new_ca();
    let mut a = start(&ca, 1);
    let mut b = start(&ca, 2);
    mesh(&[&a, &b]);
    deliver(&a, &mut b, heartbeat(1, 2, 1)).await;
    deliver(&b, &mut a, heartbeat(2, 1, 2)).await;

    // b restarts on a new port and speaks first: a must take the new connection although its
    // old one has not timed out yet (the peer's incarnation changed).
    b.handle.shutdown().await;
    let b2_material = material(&ca, 2);
    let mut b2 = start_with(config(2, b2_material.clone()));
    b2.handle.set_peer(1, a.handle.local_addr());
    deliver(&b2, &mut a, heartbeat(2, 1, 3)).await;
    a.handle.set_peer(2, b2.handle.local_addr());
    deliver(&a, &mut b2, heartbeat(1, 2, 4)).await;

    // Restart again; this time a learns the new address first and dials.
    b2.handle.shutdown().await;
    let mut b3 = start_with(config(2, b2_material));
    a.handle.set_peer(2, b3.handle.local_addr());
    deliver(&a, &mut b3, heartbeat(1, 2, 5)).await;
    b3.handle.set_peer(1, a.handle.local_addr());
    deliver(&b3, &mut a, heartbeat(2, 1, 6)).await;

    a.handle.shutdown().await;
    b3.handle.shutdown().await;
}

#[tokio::test]
async fn join_call_reaches_a_member_that_does_not_know_the_caller() {
    let ca = new_ca();
    let mut member = start(&ca, 1);
    let newcomer = start(&ca, 4);
    let member_addr = member.handle.local_addr();

    let answering = tokio::spawn(async move {
        let deadline = Instant::now() + DEADLINE;
        loop {
            match tokio::time::timeout_at(deadline, member.inbound.recv()).await {
                Ok(Some(Inbound::Call {
                    from,
                    request,
                    reply,
                })) => {
                    let PeerRequest::Join { id, name, .. } = &request else {
                        panic!("expected a join request, got {request:?}");
                    };
                    let _ = reply.send(PeerResponse::JoinResult {
                        status: 0,
                        message: format!("hello {name} ({id}) from certified node {from}"),
                        leader_address: Some("127.0.0.1:1".into()),
                    });
                    return (from, request, member);
                }
                Ok(Some(_)) => continue,
                other => panic!("no call arrived: {other:?}"),
            }
        }
    });

    let request = PeerRequest::Join {
        id: 4,
        name: "n4".into(),
        address: newcomer.handle.local_addr().to_string(),
        zone: Some("z1".into()),
        weight: 2,
    };
    let response = newcomer
        .handle
        .call(member_addr, request.clone())
        .await
        .expect("call");
    let (from, received, member) = answering.await.expect("member task");
    assert_eq!(from, 4);
    assert_eq!(received, request);
    assert_eq!(
        response,
        PeerResponse::JoinResult {
            status: 0,
            message: "hello n4 (4) from certified node 4".into(),
            leader_address: Some("127.0.0.1:1".into()),
        }
    );
    member.handle.shutdown().await;
    newcomer.handle.shutdown().await;
}

#[tokio::test]
async fn call_fails_when_the_member_drops_the_reply() {
    let ca = new_ca();
    let mut member = start(&ca, 1);
    let caller = start(&ca, 2);
    let addr = member.handle.local_addr();
    let dropper = tokio::spawn(async move {
        let deadline = Instant::now() + DEADLINE;
        loop {
            match tokio::time::timeout_at(deadline, member.inbound.recv()).await {
                Ok(Some(Inbound::Call { reply, .. })) => {
                    drop(reply);
                    return member;
                }
                Ok(Some(_)) => continue,
                other => panic!("no call arrived: {other:?}"),
            }
        }
    });
    let request = PeerRequest::Join {
        id: 2,
        name: "n2".into(),
        address: "127.0.0.1:9".into(),
        zone: None,
        weight: 1,
    };
    let result = caller.handle.call(addr, request).await;
    assert!(result.is_err(), "{result:?}");
    let member = dropper.await.expect("task");
    member.handle.shutdown().await;
    caller.handle.shutdown().await;
}

fn register_message(from: u64, to: u64, n: u64) -> ringraft_paxos::Message {
    ringraft_paxos::Message {
        from,
        to,
        key: format!("key-{n}").into_bytes(),
        epoch: 1,
        body: ringraft_paxos::Body::Accept {
            ballot: ringraft_paxos::Ballot {
                counter: n,
                node: from,
            },
            register: ringraft_paxos::Register {
                value: Some(vec![7; 1024]),
                version: 1,
            },
        },
    }
}

/// Register messages travel apart from Raft's: a flood of them (far more than a peer's queue
/// holds, to a peer that never drains its registers channel) neither displaces nor delays a
/// Raft message, which arrives without the sender ever reporting the peer unreachable; and the
/// register messages that do arrive reach the registers' channel, not the node loop's.
#[tokio::test]
async fn register_floods_do_not_displace_raft_messages() {
    let ca = new_ca();
    let mut a = start(&ca, 1);
    let mut b = start(&ca, 2);
    mesh(&[&a, &b]);
    deliver(&a, &mut b, heartbeat(1, 2, 1)).await;
    // Reports from before the link was up (messages dropped while dialing) are not the flood's.
    while a.inbound.try_recv().is_ok() {}
    let mut registers = b.handle.take_register_inbound().expect("register channel");
    for n in 0..20_000 {
        a.handle.send_register(register_message(1, 2, n));
    }
    for round in 10..20 {
        a.handle.send(heartbeat(1, 2, round));
    }
    let deadline = Instant::now() + DEADLINE;
    for round in 10..20 {
        let got = next_raft(&mut b.inbound, deadline, |m| round_of(m) >= Some(10))
            .await
            .expect("a Raft message behind the flood");
        assert_eq!(round_of(&got), Some(round));
    }
    while let Ok(report) = a.inbound.try_recv() {
        assert!(
            !matches!(report, Inbound::Unreachable(2)),
            "a Raft message to node 2 was dropped"
        );
    }
    let first = tokio::time::timeout_at(deadline, registers.recv())
        .await
        .expect("a register message arrives")
        .expect("channel open");
    let ringraft_daemon::transport::RegisterInbound::Message(first) = first else {
        panic!("expected a register message, got {first:?}");
    };
    assert_eq!((first.from, first.to), (1, 2));
    a.handle.shutdown().await;
    b.handle.shutdown().await;
}
