//! Fetch sessions against a scripted upstream: hostile responses are refused and counted, never
//! applied; snapshots arrive in checked chunks; the observer falls back and returns; an upstream
//! answers long polls from its served log.

use std::sync::Arc;

use ringraft_follow::{
    Config, Entry, Message, Node, NodeId, Output, Role, Snapshot, Start, Topology,
};

const OBSERVER: NodeId = 10;

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        data: Arc::from(&b"payload"[..]),
    }
}

fn topology(voters: &[NodeId], observers: &[NodeId]) -> Arc<Topology> {
    let members = voters
        .iter()
        .map(|&v| (v, Role::Voter))
        .chain(observers.iter().map(|&o| (o, Role::Observer)));
    Arc::new(Topology::from_members(&Config::default(), members).unwrap())
}

fn observer(config: Config, voters: &[NodeId]) -> Node {
    Node::new(
        OBSERVER,
        config,
        1,
        topology(voters, &[OBSERVER]),
        Start::default(),
    )
    .unwrap()
}

fn drain(node: &mut Node) -> Vec<Output> {
    std::iter::from_fn(|| node.poll_output()).collect()
}

/// The request the observer has in flight to `to`: (request id, from).
fn fetch_to(outputs: &[Output], to: NodeId) -> Option<(u64, u64)> {
    outputs.iter().find_map(|o| match o {
        Output::Send {
            to: t,
            message: Message::Fetch {
                request_id, from, ..
            },
        } if *t == to => Some((*request_id, *from)),
        _ => None,
    })
}

fn applied(outputs: &[Output]) -> Vec<u64> {
    outputs
        .iter()
        .flat_map(|o| match o {
            Output::Apply(entries) => entries.iter().map(|e| e.index).collect(),
            _ => Vec::new(),
        })
        .collect()
}

fn respond(
    node: &mut Node,
    from: NodeId,
    request_id: u64,
    entries: Vec<Entry>,
    commit: u64,
) -> Vec<Output> {
    node.step(
        from,
        Message::Entries {
            request_id,
            entries,
            commit,
        },
    );
    drain(node)
}

#[test]
fn hostile_responses_are_refused_and_never_applied() {
    let mut node = observer(Config::default(), &[1]);
    let (id, from) = fetch_to(&drain(&mut node), 1).expect("fetches from its voter at once");
    assert_eq!(from, 1);

    // Not starting at the index asked.
    let out = respond(&mut node, 1, id, vec![entry(2, 1), entry(3, 1)], 3);
    assert!(applied(&out).is_empty());
    assert_eq!(node.fetch_counters().refused_wrong_start, 1);
    let (id, _) = fetch_to(&out, 1).expect("asks the same upstream again after one refusal");

    // A gap, above commit, a falling term, oversized: each refused.
    let out = respond(&mut node, 1, id, vec![entry(1, 1), entry(3, 1)], 3);
    assert!(applied(&out).is_empty());
    assert_eq!(node.fetch_counters().refused_gap, 1);
    // Two refusals in a row: the observer moves on to its next candidate; with one voter and no
    // other candidate it asks the same again.
    assert!(fetch_to(&out, 1).is_some());
    let mut node = observer(Config::default(), &[1]);
    let (id, _) = fetch_to(&drain(&mut node), 1).unwrap();
    let out = respond(&mut node, 1, id, vec![entry(1, 1), entry(2, 1)], 1);
    assert!(applied(&out).is_empty());
    assert_eq!(node.fetch_counters().refused_above_commit, 1);

    let mut node = observer(Config::default(), &[1]);
    let (id, _) = fetch_to(&drain(&mut node), 1).unwrap();
    let out = respond(&mut node, 1, id, vec![entry(1, 3), entry(2, 2)], 2);
    assert!(applied(&out).is_empty());
    assert_eq!(node.fetch_counters().refused_term_regress, 1);

    let small = Config {
        fetch_bytes_max: 40,
        ..Config::default()
    };
    let mut node = observer(small, &[1]);
    let (id, _) = fetch_to(&drain(&mut node), 1).unwrap();
    let out = respond(
        &mut node,
        1,
        id,
        vec![entry(1, 1), entry(2, 1), entry(3, 1)],
        3,
    );
    assert!(applied(&out).is_empty());
    assert_eq!(node.fetch_counters().refused_oversized, 1);
    // ...but a single large entry passes (it could never be sent otherwise).
    let (id, _) = fetch_to(&out, 1).unwrap();
    let out = respond(&mut node, 1, id, vec![entry(1, 1)], 3);
    assert_eq!(applied(&out), vec![1]);
}

#[test]
fn responses_to_other_requests_or_from_other_peers_are_ignored() {
    let mut node = observer(Config::default(), &[1, 2]);
    let (id, _) = fetch_to(&drain(&mut node), node.current_upstream().unwrap()).unwrap();
    let upstream = node.current_upstream().unwrap();
    let other = if upstream == 1 { 2 } else { 1 };
    assert!(applied(&respond(&mut node, upstream, id + 7, vec![entry(1, 1)], 1)).is_empty());
    assert!(applied(&respond(&mut node, other, id, vec![entry(1, 1)], 1)).is_empty());
    assert_eq!(node.fetch_counters().refused_not_in_flight, 2);
    // The real answer still applies, in order, and the next fetch follows on.
    let out = respond(&mut node, upstream, id, vec![entry(1, 1), entry(2, 1)], 5);
    assert_eq!(applied(&out), vec![1, 2]);
    assert_eq!(fetch_to(&out, upstream).map(|(_, from)| from), Some(3));
    assert_eq!(node.commit_seen(), 5);
}

#[test]
fn a_snapshot_arrives_in_checked_chunks() {
    let config = Config {
        snapshot_chunk_bytes_max: 4,
        snapshot_bytes_max: 64,
        ..Config::default()
    };
    let mut node = observer(config, &[1]);
    let (id, _) = fetch_to(&drain(&mut node), 1).unwrap();
    // A snapshot announced larger than the bound is refused.
    node.step(
        1,
        Message::SnapshotNeeded {
            request_id: id,
            index: 9,
            term: 2,
            total_bytes: 1 << 20,
        },
    );
    let out = drain(&mut node);
    assert_eq!(node.fetch_counters().refused_bad_snapshot, 1);
    let (id, _) = fetch_to(&out, 1).unwrap();
    node.step(
        1,
        Message::SnapshotNeeded {
            request_id: id,
            index: 9,
            term: 2,
            total_bytes: 6,
        },
    );
    let out = drain(&mut node);
    let mut request = out.iter().find_map(|o| match o {
        Output::Send {
            message: Message::SnapshotFetch {
                request_id, offset, ..
            },
            ..
        } => Some((*request_id, *offset)),
        _ => None,
    });
    let data = b"abcdef";
    let mut installed = None;
    while let Some((request_id, offset)) = request.take() {
        let end = (offset as usize + 4).min(data.len());
        node.step(
            1,
            Message::SnapshotChunk {
                request_id,
                index: 9,
                term: 2,
                offset,
                total_bytes: 6,
                data: Arc::from(&data[offset as usize..end]),
            },
        );
        for o in drain(&mut node) {
            match o {
                Output::Send {
                    message:
                        Message::SnapshotFetch {
                            request_id, offset, ..
                        },
                    ..
                } => request = Some((request_id, offset)),
                Output::InstallSnapshot(s) => installed = Some(s),
                _ => {}
            }
        }
    }
    let installed = installed.expect("installed after the last chunk");
    assert_eq!(
        (installed.index, installed.term, &installed.data[..]),
        (9, 2, &data[..])
    );
    assert_eq!(node.applied_index(), 9);
}

#[test]
fn falls_back_when_the_upstream_is_silent_and_returns_when_it_answers() {
    let config = Config::default();
    let timeout = config.upstream_timeout_ticks;
    let probe = config.primary_probe_ticks;
    let mut node = observer(config, &[1, 2]);
    let primary = node.current_upstream().unwrap();
    let fallback = node.topology().fallback(OBSERVER).unwrap();
    drain(&mut node);
    // Two timeouts in a row (no answers at all): the observer asks its fallback.
    let mut asked_fallback = false;
    for _ in 0..2 * timeout + 2 {
        node.tick();
        asked_fallback |= fetch_to(&drain(&mut node), fallback).is_some();
    }
    assert!(asked_fallback);
    assert_eq!(node.current_upstream(), Some(fallback));
    // It probes its primary; when the primary answers, it goes back.
    let mut probe_id = None;
    for _ in 0..probe + 1 {
        node.tick();
        for o in drain(&mut node) {
            if let Output::Send {
                to,
                message: Message::Probe { request_id },
            } = o
            {
                assert_eq!(to, primary);
                probe_id = Some(request_id);
            }
        }
        if probe_id.is_some() {
            break;
        }
    }
    node.step(
        primary,
        Message::ProbeAck {
            request_id: probe_id.expect("probed"),
        },
    );
    let out = drain(&mut node);
    assert_eq!(node.current_upstream(), Some(primary));
    assert!(fetch_to(&out, primary).is_some());
}

#[test]
fn an_upstream_answers_long_polls_from_its_served_log() {
    let voters = [1];
    let topology = topology(&voters, &[OBSERVER]);
    let snapshot = Snapshot {
        index: 4,
        term: 1,
        data: Arc::from(&b"state"[..]),
    };
    let start = Start {
        applied_index: 4,
        applied_term: 1,
        snapshot: Some(snapshot),
    };
    let mut voter = Node::new(1, Config::default(), 1, topology, start).unwrap();
    // Behind the log's start: snapshot needed.
    voter.step(
        OBSERVER,
        Message::Fetch {
            request_id: 1,
            from: 2,
            max_bytes: 1 << 20,
            digest: None,
        },
    );
    assert!(matches!(
        drain(&mut voter).as_slice(),
        [Output::Send {
            message: Message::SnapshotNeeded { index: 4, .. },
            ..
        }]
    ));
    // Nothing new yet: parked, then answered when Raft commits.
    voter.step(
        OBSERVER,
        Message::Fetch {
            request_id: 2,
            from: 5,
            max_bytes: 1 << 20,
            digest: None,
        },
    );
    assert!(drain(&mut voter).is_empty());
    voter.commit(&[entry(5, 1), entry(6, 1)]).unwrap();
    match drain(&mut voter).as_slice() {
        [Output::Send {
            to: OBSERVER,
            message:
                Message::Entries {
                    request_id: 2,
                    entries,
                    commit: 6,
                },
        }] => {
            assert_eq!(
                entries.iter().map(|e| e.index).collect::<Vec<_>>(),
                vec![5, 6]
            );
        }
        other => panic!("{other:?}"),
    }
    // A commit that does not follow on is the shell's bug: refused.
    assert!(voter.commit(&[entry(9, 1)]).is_err());
    // A parked poll expires into an empty answer (the heartbeat at idle).
    voter.step(
        OBSERVER,
        Message::Fetch {
            request_id: 3,
            from: 7,
            max_bytes: 1 << 20,
            digest: None,
        },
    );
    let mut answered = false;
    for _ in 0..Config::default().park_ticks {
        voter.tick();
        answered |= drain(&mut voter).iter().any(|o| {
            matches!(
                o,
                Output::Send {
                    message: Message::Entries { request_id: 3, .. },
                    ..
                }
            )
        });
    }
    assert!(answered);
}

mod hostile {
    use super::*;
    use proptest::prelude::*;

    fn any_message() -> impl Strategy<Value = Message> {
        let index = prop_oneof![0u64..8, Just(u64::MAX), any::<u64>()];
        let entries = prop::collection::vec((0u64..8, 0u64..4, 0usize..64), 0..6).prop_map(|v| {
            v.into_iter()
                .map(|(index, term, len)| Entry {
                    index,
                    term,
                    data: vec![7u8; len].into(),
                })
                .collect::<Vec<_>>()
        });
        prop_oneof![
            (0u64..4, entries, index.clone()).prop_map(|(request_id, entries, commit)| {
                Message::Entries {
                    request_id,
                    entries,
                    commit,
                }
            }),
            (
                0u64..4,
                index.clone(),
                0u64..4,
                prop_oneof![0u64..16, any::<u64>()]
            )
                .prop_map(|(request_id, index, term, total_bytes)| {
                    Message::SnapshotNeeded {
                        request_id,
                        index,
                        term,
                        total_bytes,
                    }
                }),
            (
                0u64..4,
                index.clone(),
                0u64..4,
                any::<u64>(),
                any::<u64>(),
                prop::collection::vec(any::<u8>(), 0..8)
            )
                .prop_map(|(request_id, index, term, offset, total_bytes, data)| {
                    Message::SnapshotChunk {
                        request_id,
                        index,
                        term,
                        offset,
                        total_bytes,
                        data: data.into(),
                    }
                }),
            (0u64..4, index.clone(), any::<u64>()).prop_map(|(request_id, from, max_bytes)| {
                Message::Fetch {
                    request_id,
                    from,
                    max_bytes,
                    digest: None,
                }
            }),
            (0u64..4, index, any::<u64>()).prop_map(|(request_id, index, offset)| {
                Message::SnapshotFetch {
                    request_id,
                    index,
                    offset,
                }
            }),
            (0u64..4).prop_map(|request_id| Message::ProbeAck { request_id }),
        ]
    }

    proptest! {
        /// Whatever a peer sends, a node never panics, and an observer applies only contiguous
        /// entries from where it was, each at or below the commit of the response carrying it.
        #[test]
        fn arbitrary_peer_messages_never_break_the_order(
            messages in prop::collection::vec((1u64..3, any_message()), 1..40)
        ) {
            let mut node = observer(Config::default(), &[1, 2]);
            let mut voter = Node::new(1, Config::default(), 1, topology(&[1, 2], &[OBSERVER]), Start::default()).unwrap();
            let mut last = node.applied_index();
            for (from, message) in messages {
                let commit = match &message { Message::Entries { commit, .. } => Some(*commit), _ => None };
                voter.step(OBSERVER, message.clone());
                drain(&mut voter);
                node.step(from, message);
                node.tick();
                for output in drain(&mut node) {
                    match output {
                        Output::Apply(entries) => {
                            for e in entries {
                                prop_assert_eq!(e.index, last + 1);
                                prop_assert!(commit.is_some_and(|c| e.index <= c));
                                last = e.index;
                            }
                        }
                        Output::InstallSnapshot(s) => {
                            prop_assert!(s.index >= last);
                            last = s.index;
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}
