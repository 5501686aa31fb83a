//! One deterministic test per protocol rule of docs/paxos.md, named after the rule. A tiny
//! synchronous network: every message is delivered at once unless the test cuts a node off, and
//! every record counts as durable when its Ready is taken.

use std::collections::{BTreeMap, BTreeSet};

use ringraft_paxos::limits::VALUE_BYTES_MAX_DEFAULT;
use ringraft_paxos::{
    Acceptor, Answer, Ballot, Body, Config, KeyConfig, Message, NodeId, Op, Outcome, ProposeError,
    Proposer, Record, Refusal, Register, RetryReason,
};

const KEY: &[u8] = b"k";

struct Net {
    acceptors: BTreeMap<NodeId, Acceptor>,
    proposers: BTreeMap<NodeId, Proposer>,
    cut: BTreeSet<NodeId>,
    answers: Vec<Answer>,
    /// Every message delivered, for tests that look at the traffic.
    log: Vec<Message>,
    /// `Accepted` replies are lost (the accepts themselves arrive and are taken).
    lose_accepted: bool,
}

impl Net {
    fn new(nodes: &[NodeId], view: KeyConfig) -> Net {
        let mut net = Net {
            acceptors: BTreeMap::new(),
            proposers: BTreeMap::new(),
            cut: BTreeSet::new(),
            answers: Vec::new(),
            log: Vec::new(),
            lose_accepted: false,
        };
        for &n in nodes {
            let mut a = Acceptor::new(Config::new(n));
            a.set_key_config(KEY, view.clone()).expect("valid view");
            let mut p = Proposer::new(Config::new(n));
            p.set_key_config(KEY, view.clone()).expect("valid view");
            net.acceptors.insert(n, a);
            net.proposers.insert(n, p);
        }
        net
    }

    fn set_view(&mut self, view: KeyConfig) {
        self.set_view_of(KEY, view);
    }

    fn set_view_of(&mut self, key: &[u8], view: KeyConfig) {
        for a in self.acceptors.values_mut() {
            a.set_key_config(key, view.clone()).expect("valid view");
        }
        for p in self.proposers.values_mut() {
            p.set_key_config(key, view.clone()).expect("valid view");
        }
    }

    /// Delivers until nothing moves; returns the answers given meanwhile.
    fn pump(&mut self) -> Vec<Answer> {
        for _ in 0..1000 {
            let mut out = Vec::new();
            for p in self.proposers.values_mut() {
                let ready = p.ready();
                out.extend(ready.messages);
                out.extend(ready.persisted_messages);
                self.answers.extend(ready.answers);
                p.advance(ready.number);
            }
            for a in self.acceptors.values_mut() {
                let ready = a.ready();
                out.extend(ready.messages);
                out.extend(ready.persisted_messages);
            }
            if out.is_empty() {
                return std::mem::take(&mut self.answers);
            }
            for m in out {
                if self.cut.contains(&m.to) || self.cut.contains(&m.from) {
                    continue;
                }
                if self.lose_accepted && matches!(m.body, Body::Accepted { .. }) {
                    continue;
                }
                self.log.push(m.clone());
                match m.body {
                    Body::Prepare { .. } | Body::Accept { .. } | Body::Forget { .. } => {
                        if let Some(a) = self.acceptors.get_mut(&m.to) {
                            a.step(m);
                        }
                    }
                    _ => {
                        if let Some(p) = self.proposers.get_mut(&m.to) {
                            p.step(m);
                        }
                    }
                }
            }
        }
        panic!("the network never went quiet");
    }

    /// Runs `op` as a client would: again after a `Retry` (a proposer's first ballot is often
    /// below what another proposer made the acceptors promise).
    fn run(&mut self, proposer: NodeId, op: Op) -> Outcome {
        for _ in 0..5 {
            let outcome = self.run_once(proposer, op.clone());
            if !matches!(outcome, Outcome::Retry { .. }) {
                return outcome;
            }
        }
        panic!("still refused after five tries");
    }

    fn run_once(&mut self, proposer: NodeId, op: Op) -> Outcome {
        self.run_once_on(proposer, KEY, op)
    }

    fn run_once_on(&mut self, proposer: NodeId, key: &[u8], op: Op) -> Outcome {
        let p = self.proposers.get_mut(&proposer).expect("a proposer");
        p.propose(7, key, op).expect("accepted for proposing");
        let answers = self.pump();
        answers
            .into_iter()
            .find(|a| a.op == 7)
            .expect("answered")
            .outcome
    }

    fn prepares_in_log(&self) -> usize {
        let n = self
            .log
            .iter()
            .filter(|m| matches!(m.body, Body::Prepare { .. }))
            .count();
        n
    }
}

fn put(v: &[u8]) -> Op {
    Op::Put { value: v.to_vec() }
}

fn request(from: NodeId, to: NodeId, epoch: u64, body: Body) -> Message {
    Message {
        from,
        to,
        key: KEY.to_vec(),
        epoch,
        body,
    }
}

fn acceptor_with(view: KeyConfig, id: NodeId) -> Acceptor {
    let mut a = Acceptor::new(Config::new(id));
    a.set_key_config(KEY, view).expect("valid view");
    a
}

fn b(counter: u64, node: NodeId) -> Ballot {
    Ballot { counter, node }
}

#[test]
fn versions_count_writes_and_delete_makes_absent() {
    let mut net = Net::new(&[1, 2, 3], KeyConfig::stable(1, vec![1, 2, 3]));
    assert_eq!(net.run(1, put(b"a")), Outcome::Written { version: 1 });
    assert_eq!(net.run(1, put(b"b")), Outcome::Written { version: 2 });
    let read = net.run(2, Op::Get);
    assert_eq!(
        read,
        Outcome::Value(Register {
            value: Some(b"b".to_vec()),
            version: 2
        })
    );
    assert_eq!(
        net.run(
            3,
            Op::Delete {
                expected_version: None
            }
        ),
        Outcome::Written { version: 0 }
    );
    for _ in 0..60 {
        net.proposers.get_mut(&1).expect("p").tick(); // its collection from the cut ends
        net.pump();
    }
    assert_eq!(net.run(1, Op::Get), Outcome::Value(Register::absent()));
}

#[test]
fn cas_against_another_version_conflicts_with_the_current_version() {
    let mut net = Net::new(&[1, 2, 3], KeyConfig::stable(1, vec![1, 2, 3]));
    net.run(1, put(b"a"));
    let cas = Op::Cas {
        expected_version: 0,
        value: b"x".to_vec(),
    };
    assert_eq!(net.run(2, cas), Outcome::Conflict { current_version: 1 });
    let cas = Op::Cas {
        expected_version: 1,
        value: b"x".to_vec(),
    };
    assert_eq!(net.run(2, cas), Outcome::Written { version: 2 });
    let any = Op::Cas {
        expected_version: u64::MAX,
        value: b"y".to_vec(),
    };
    assert_eq!(net.run(3, any), Outcome::Written { version: 3 });
}

#[test]
fn every_answer_carries_the_epoch_of_its_round() {
    let mut net = Net::new(&[1, 2, 3], KeyConfig::stable(4, vec![1, 2, 3]));
    net.proposers
        .get_mut(&1)
        .expect("p")
        .propose(9, KEY, Op::Get)
        .expect("ok");
    let answers = net.pump();
    assert_eq!(answers[0].epoch, 4);
}

#[test]
fn values_above_value_bytes_max_are_too_large() {
    let mut p = Proposer::new(Config::new(1));
    p.set_key_config(KEY, KeyConfig::stable(1, vec![1]))
        .expect("valid");
    let big = put(&vec![0; VALUE_BYTES_MAX_DEFAULT + 1]);
    assert!(matches!(
        p.propose(1, KEY, big),
        Err(ProposeError::TooLarge { .. })
    ));
    let mut a = acceptor_with(KeyConfig::stable(1, vec![1, 2]), 1);
    let register = Register {
        value: Some(vec![0; VALUE_BYTES_MAX_DEFAULT + 1]),
        version: 1,
    };
    a.step(request(
        2,
        1,
        1,
        Body::Accept {
            ballot: b(1, 2),
            register,
        },
    ));
    let ready = a.ready();
    assert!(ready.records.is_empty() && ready.persisted_messages.is_empty());
    assert!(matches!(
        ready.messages[0].body,
        Body::Refuse {
            reason: Refusal::TooLarge,
            ..
        }
    ));
}

#[test]
fn an_acceptor_refuses_a_ballot_below_its_promise() {
    let mut a = acceptor_with(KeyConfig::stable(1, vec![1, 2, 3]), 1);
    a.step(request(3, 1, 1, Body::Prepare { ballot: b(5, 3) }));
    let _ = a.ready();
    let register = Register {
        value: Some(b"v".to_vec()),
        version: 1,
    };
    a.step(request(
        2,
        1,
        1,
        Body::Accept {
            ballot: b(4, 2),
            register,
        },
    ));
    a.step(request(2, 1, 1, Body::Prepare { ballot: b(4, 2) }));
    let ready = a.ready();
    assert!(ready.records.is_empty());
    for m in &ready.messages {
        assert_eq!(
            m.body,
            Body::Refuse {
                ballot: b(4, 2),
                reason: Refusal::Promised(b(5, 3))
            }
        );
    }
    assert_eq!(ready.messages.len(), 2);
}

#[test]
fn promises_and_accepts_leave_only_after_their_record_is_durable() {
    let mut a = acceptor_with(KeyConfig::stable(1, vec![1, 2]), 1);
    a.step(request(2, 1, 1, Body::Prepare { ballot: b(1, 2) }));
    let ready = a.ready();
    assert!(
        ready.messages.is_empty(),
        "a promise is not sent before the fsync"
    );
    assert!(matches!(ready.records[0], Record::Key { .. }));
    assert!(matches!(
        ready.persisted_messages[0].body,
        Body::Promise { .. }
    ));
    let register = Register {
        value: Some(b"v".to_vec()),
        version: 1,
    };
    a.step(request(
        2,
        1,
        1,
        Body::Accept {
            ballot: b(1, 2),
            register,
        },
    ));
    let ready = a.ready();
    assert!(ready.messages.is_empty());
    assert_eq!(ready.records.len(), 1);
    assert_eq!(
        ready.persisted_messages[0].body,
        Body::Accepted { ballot: b(1, 2) }
    );
}

#[test]
fn an_accept_promises_the_same_proposers_next_ballot() {
    let mut a = acceptor_with(KeyConfig::stable(1, vec![1, 2]), 1);
    let register = Register {
        value: Some(b"v".to_vec()),
        version: 1,
    };
    a.step(request(
        2,
        1,
        1,
        Body::Accept {
            ballot: b(3, 2),
            register,
        },
    ));
    let _ = a.ready();
    assert_eq!(a.key_state(KEY).expect("state").promised, b(4, 2));
}

/// With `one_round_trip` off every round prepares, so another proposer's prepare in between
/// makes the next write a clean retry or success, never an unknown outcome.
#[test]
fn without_one_round_trip_every_round_prepares_and_contention_is_never_unknown() {
    let mut net = Net::new(&[1, 2, 3], KeyConfig::stable(1, vec![1, 2, 3]));
    for (&n, proposer) in net.proposers.iter_mut() {
        let mut config = Config::new(n);
        config.one_round_trip = false;
        *proposer = Proposer::new(config);
        proposer
            .set_key_config(KEY, KeyConfig::stable(1, vec![1, 2, 3]))
            .expect("valid view");
    }
    net.run(1, put(b"a"));
    let prepares = net.prepares_in_log();
    assert_eq!(net.run(1, put(b"b")), Outcome::Written { version: 2 });
    assert!(
        net.prepares_in_log() > prepares,
        "the second write prepared again"
    );
    net.run(2, Op::Get);
    assert_eq!(net.run(1, put(b"c")), Outcome::Written { version: 3 });
}

#[test]
fn a_sticky_proposer_skips_phase_one_after_a_successful_accept() {
    let mut net = Net::new(&[1, 2, 3], KeyConfig::stable(1, vec![1, 2, 3]));
    net.run(1, put(b"a"));
    let prepares = net.prepares_in_log();
    assert_eq!(net.run(1, put(b"b")), Outcome::Written { version: 2 });
    assert_eq!(
        net.prepares_in_log(),
        prepares,
        "the second write took one round trip"
    );
    // Another proposer prepares in between: the cached ballot is refused, the sticky proposer
    // answers, and its next operation runs phase 1 again.
    net.run(2, Op::Get);
    let outcome = net.run(1, put(b"c"));
    assert!(matches!(
        outcome,
        Outcome::Unknown {
            reason: RetryReason::Contended,
            ..
        }
    ));
    let prepares = net.prepares_in_log();
    net.run(1, Op::Get);
    assert!(net.prepares_in_log() > prepares);
}

#[test]
fn a_handoff_needs_a_majority_of_the_old_and_of_the_new_set() {
    let old = KeyConfig::stable(1, vec![1, 2, 3]);
    let mut net = Net::new(&[1, 2, 3, 4, 5, 6], old.clone());
    net.run(1, put(b"a"));
    let joint = KeyConfig {
        epoch: 2,
        acceptors: vec![4, 5, 6],
        previous: Some((1, vec![1, 2, 3])),
    };
    net.set_view(joint);
    // Only the new set answers: no quorum, nothing accepted.
    net.cut = [1, 2, 3].into();
    net.log.clear();
    net.proposers
        .get_mut(&4)
        .expect("p")
        .propose(1, KEY, Op::Get)
        .expect("ok");
    assert!(
        net.pump().is_empty(),
        "a majority of the new set alone is no quorum"
    );
    assert!(!net
        .log
        .iter()
        .any(|m| matches!(m.body, Body::Accept { .. })));
    for _ in 0..60 {
        net.proposers.get_mut(&4).expect("p").tick();
        net.pump();
    }
    net.cut = [2, 6].into();
    assert_eq!(
        net.proposers.get_mut(&4).map(|p| p.handoff(8, KEY)),
        Some(Ok(()))
    );
    let answers = net.pump();
    assert_eq!(answers[0].outcome, Outcome::HandedOff);
    net.set_view(KeyConfig::stable(2, vec![4, 5, 6]));
    net.cut = [1, 2, 3].into();
    let read = net.run(5, Op::Get);
    assert_eq!(
        read,
        Outcome::Value(Register {
            value: Some(b"a".to_vec()),
            version: 1
        })
    );
}

#[test]
fn an_acceptor_refuses_an_older_epoch_and_answers_with_its_own() {
    let mut a = acceptor_with(KeyConfig::stable(3, vec![1, 2]), 1);
    a.step(request(2, 1, 2, Body::Prepare { ballot: b(1, 2) }));
    let ready = a.ready();
    assert_eq!(ready.messages[0].epoch, 3);
    assert!(matches!(
        ready.messages[0].body,
        Body::Refuse {
            reason: Refusal::StaleEpoch,
            ..
        }
    ));
}

#[test]
fn an_acceptor_remembers_the_newest_epoch_it_took_durably() {
    let mut a = acceptor_with(KeyConfig::stable(1, vec![1, 2]), 1);
    a.set_key_config(
        KEY,
        KeyConfig {
            epoch: 2,
            acceptors: vec![1, 2],
            previous: Some((1, vec![1, 2])),
        },
    )
    .expect("valid");
    a.step(request(2, 1, 2, Body::Prepare { ballot: b(1, 2) }));
    let ready = a.ready();
    let Record::Key { state, .. } = &ready.records[0] else {
        panic!("a key record")
    };
    assert_eq!(state.epoch, 2);
    // Restarted from its records with the old ring only: it still refuses epoch 1.
    let mut restored = Acceptor::restore(Config::new(1), &ready.records).expect("restore");
    restored
        .set_key_config(KEY, KeyConfig::stable(1, vec![1, 2]))
        .expect("valid");
    restored.step(request(2, 1, 1, Body::Prepare { ballot: b(9, 2) }));
    let ready = restored.ready();
    assert!(matches!(
        ready.messages[0].body,
        Body::Refuse {
            reason: Refusal::StaleEpoch,
            ..
        }
    ));
}

#[test]
fn an_acceptor_refuses_epochs_it_has_not_seen_and_keys_it_does_not_hold() {
    let mut a = acceptor_with(KeyConfig::stable(1, vec![2, 3]), 1);
    a.step(request(2, 1, 5, Body::Prepare { ballot: b(1, 2) }));
    a.step(request(2, 1, 1, Body::Prepare { ballot: b(1, 2) }));
    let ready = a.ready();
    assert!(matches!(
        ready.messages[0].body,
        Body::Refuse {
            reason: Refusal::EpochAhead,
            ..
        }
    ));
    assert!(matches!(
        ready.messages[1].body,
        Body::Refuse {
            reason: Refusal::NotAcceptor,
            ..
        }
    ));
}

#[test]
fn a_stale_proposer_is_told_to_refresh() {
    let mut net = Net::new(&[1, 2, 3], KeyConfig::stable(1, vec![1, 2, 3]));
    for n in [2, 3] {
        let a = net.acceptors.get_mut(&n).expect("a");
        a.set_key_config(KEY, KeyConfig::stable(2, vec![1, 2, 3]))
            .expect("valid");
    }
    let outcome = net.run_once(1, Op::Get);
    assert!(matches!(
        outcome,
        Outcome::Retry {
            reason: RetryReason::StaleEpoch { epoch: 2 },
            ..
        }
    ));
}

#[test]
fn contending_proposers_are_answered_retry_with_a_backoff() {
    let mut net = Net::new(&[1, 2, 3], KeyConfig::stable(1, vec![1, 2, 3]));
    net.run(2, put(b"a"));
    net.run(2, put(b"b"));
    // Proposer 1's first ballot is below every promise: refused before any accept, so Retry.
    let outcome = net.run_once(1, put(b"c"));
    let ok = matches!(outcome, Outcome::Retry { reason: RetryReason::Contended, backoff_ticks } if backoff_ticks >= 1);
    assert!(ok, "{outcome:?}");
    assert_eq!(
        net.run(1, put(b"c")),
        Outcome::Written { version: 3 },
        "the retry goes above"
    );
}

#[test]
fn an_operation_that_times_out_after_its_accept_left_is_unknown() {
    let mut net = Net::new(&[1, 2, 3], KeyConfig::stable(1, vec![1, 2, 3]));
    net.run(1, put(b"a"));
    net.cut = [2, 3].into();
    let p = net.proposers.get_mut(&1).expect("p");
    p.propose(5, KEY, put(b"b")).expect("ok");
    let mut answers = Vec::new();
    for _ in 0..100 {
        net.proposers.get_mut(&1).expect("p").tick();
        answers.extend(net.pump());
    }
    let ok = matches!(
        answers[0].outcome,
        Outcome::Unknown {
            reason: RetryReason::TimedOut,
            ..
        }
    );
    assert!(ok, "{answers:?}");
    // A read times out too, but a read cannot have taken effect: Retry.
    net.proposers
        .get_mut(&1)
        .expect("p")
        .propose(6, KEY, Op::Get)
        .expect("ok");
    let mut answers = Vec::new();
    for _ in 0..100 {
        net.proposers.get_mut(&1).expect("p").tick();
        answers.extend(net.pump());
    }
    assert!(matches!(
        answers[0].outcome,
        Outcome::Retry {
            reason: RetryReason::TimedOut,
            ..
        }
    ));
}

#[test]
fn garbage_collection_needs_every_acceptor_and_raises_the_floor() {
    let mut net = Net::new(&[1, 2, 3], KeyConfig::stable(1, vec![1, 2, 3]));
    net.run(1, put(b"a"));
    let p = net.proposers.get_mut(&1).expect("p");
    p.collect(1, KEY).expect("ok");
    assert_eq!(
        net.pump()[0].outcome,
        Outcome::NotCollectable,
        "a live value stays"
    );
    net.run(
        1,
        Op::Delete {
            expected_version: None,
        },
    );
    net.cut = [3].into();
    net.proposers
        .get_mut(&1)
        .expect("p")
        .collect(2, KEY)
        .expect("ok");
    assert!(
        net.pump().is_empty(),
        "not every acceptor answered: nothing collected yet"
    );
    net.cut.clear();
    let mut outcome = Outcome::NotCollectable;
    for attempt in 10..15 {
        let p = net.proposers.get_mut(&2).expect("p");
        p.collect(attempt, KEY).expect("ok");
        let mut answers = net.pump();
        for _ in 0..60 {
            if answers.iter().any(|a| a.op == attempt) {
                break;
            }
            net.proposers.get_mut(&2).expect("p").tick();
            answers.extend(net.pump());
        }
        outcome = answers
            .iter()
            .find(|a| a.op == attempt)
            .expect("answered")
            .outcome
            .clone();
        if !matches!(outcome, Outcome::Retry { .. }) {
            break;
        }
    }
    assert_eq!(outcome, Outcome::Collected);
    for a in net.acceptors.values() {
        assert!(a.key_state(KEY).is_none());
        assert!(a.floor() > Ballot::ZERO);
    }
    // A delayed accept from before the collection cannot bring an old value back.
    let mut a = Acceptor::new(Config::new(1));
    let records = [Record::Forgot {
        key: KEY.to_vec(),
        floor: b(10, 2),
    }];
    a = Acceptor::restore(Config::new(1), &records).unwrap_or(a);
    a.set_key_config(KEY, KeyConfig::stable(1, vec![1, 2]))
        .expect("valid");
    let register = Register {
        value: Some(b"old".to_vec()),
        version: 1,
    };
    a.step(request(
        2,
        1,
        1,
        Body::Accept {
            ballot: b(3, 2),
            register,
        },
    ));
    assert!(matches!(
        a.ready().messages[0].body,
        Body::Refuse {
            reason: Refusal::Promised(_),
            ..
        }
    ));
    for _ in 0..60 {
        net.proposers.get_mut(&1).expect("p").tick(); // its collection from the cut ends
        net.pump();
    }
    assert_eq!(net.run(1, Op::Get), Outcome::Value(Register::absent()));
}

#[test]
fn a_restarted_proposer_never_reuses_a_ballot() {
    let mut p = Proposer::new(Config::new(1));
    p.set_key_config(KEY, KeyConfig::stable(1, vec![1, 2, 3]))
        .expect("valid");
    p.propose(1, KEY, Op::Get).expect("ok");
    let ready = p.ready();
    assert!(
        ready.messages.is_empty(),
        "the first ballot waits for its reservation"
    );
    let used = ready.persisted_messages[0].body.ballot();
    let mut again = Proposer::restore(Config::new(1), &ready.records).expect("restore");
    again
        .set_key_config(KEY, KeyConfig::stable(1, vec![1, 2, 3]))
        .expect("valid");
    again.propose(2, KEY, Op::Get).expect("ok");
    let ready = again.ready();
    assert!(ready.persisted_messages[0].body.ballot() > used);
}

#[test]
fn malformed_messages_are_dropped_without_a_panic() {
    let mut a = acceptor_with(KeyConfig::stable(1, vec![1, 2]), 1);
    let bad = [
        request(2, 1, 1, Body::Prepare { ballot: b(1, 3) }), // someone else's ballot
        request(2, 1, 1, Body::Prepare { ballot: b(0, 2) }), // ballot zero
        request(2, 9, 1, Body::Prepare { ballot: b(1, 2) }), // not addressed to us
        request(
            2,
            1,
            1,
            Body::Promise {
                ballot: b(1, 2),
                accepted: None,
            },
        ), // a reply
        Message {
            key: vec![0; 5000],
            ..request(2, 1, 1, Body::Prepare { ballot: b(1, 2) })
        },
    ];
    for m in bad {
        a.step(m);
    }
    assert!(a.ready().is_empty());
    let mut p = Proposer::new(Config::new(1));
    p.set_key_config(KEY, KeyConfig::stable(1, vec![1, 2]))
        .expect("valid");
    p.propose(1, KEY, Op::Get).expect("ok");
    let _ = p.ready();
    let bogus = Register {
        value: None,
        version: 3,
    };
    p.step(Message {
        from: 2,
        to: 1,
        key: KEY.to_vec(),
        epoch: 1,
        body: Body::Promise {
            ballot: b(1, 1),
            accepted: Some((b(0, 2), bogus)),
        },
    });
    p.step(Message {
        from: 2,
        to: 1,
        key: KEY.to_vec(),
        epoch: 1,
        body: Body::Promise {
            ballot: b(1, 1),
            accepted: Some((b(7, 2), Register::absent())),
        },
    });
    assert!(p.ready().is_empty());
}

#[test]
fn ballot_counters_past_the_limit_are_malformed() {
    use ringraft_paxos::limits::BALLOT_COUNTER_MAX;
    let mut p = Proposer::new(Config::new(1));
    p.set_key_config(KEY, KeyConfig::stable(1, vec![1, 2, 3]))
        .expect("valid");
    p.propose(1, KEY, Op::Get).expect("ok");
    let first = p.ready().persisted_messages[0].body.ballot();
    // A refusal claiming a promise near u64::MAX would make later ballots saturate and repeat.
    let huge = Ballot {
        counter: BALLOT_COUNTER_MAX + 1,
        node: 2,
    };
    for from in [2, 3] {
        p.step(Message {
            from,
            to: 1,
            key: KEY.to_vec(),
            epoch: 1,
            body: Body::Refuse {
                ballot: first,
                reason: Refusal::Promised(huge),
            },
        });
    }
    assert!(
        p.ready().answers.is_empty(),
        "the bogus refusals were dropped"
    );
    let mut a = acceptor_with(KeyConfig::stable(1, vec![1, 2]), 1);
    a.step(request(2, 1, 1, Body::Prepare { ballot: huge }));
    assert!(a.ready().is_empty());
}

/// A store compacts its log into `Acceptor::checkpoint` + `Proposer::checkpoint`: replaying
/// them alone must give the same acceptor (keys, floor) and a proposer whose ballots stay above
/// every reserved one.
#[test]
fn checkpoints_replay_to_the_same_state() {
    use ringraft_paxos::{Acceptor, Ballot, Body, Config, KeyConfig, Message, Proposer, Register};
    let mut acceptor = Acceptor::new(Config::new(1));
    let mut log = Vec::new();
    for (i, key) in [b"a".as_slice(), b"b", b"c"].iter().enumerate() {
        acceptor
            .set_key_config(key, KeyConfig::stable(5, vec![1, 2, 3]))
            .unwrap();
        let ballot = Ballot {
            counter: 10 + i as u64,
            node: 2,
        };
        acceptor.step(Message {
            from: 2,
            to: 1,
            key: key.to_vec(),
            epoch: 5,
            body: Body::Accept {
                ballot,
                register: Register {
                    value: Some(vec![i as u8]),
                    version: 1,
                },
            },
        });
        log.extend(acceptor.ready().records);
    }
    // Leaving "b" out of its set drops it and raises the floor over its promise.
    acceptor
        .set_key_config(b"b", KeyConfig::stable(6, vec![2, 3, 4]))
        .unwrap();
    log.extend(acceptor.ready().records);
    let from_log = Acceptor::restore(Config::new(1), &log).unwrap();
    let from_checkpoint = Acceptor::restore(Config::new(1), &acceptor.checkpoint()).unwrap();
    assert!(acceptor.floor() > Ballot::ZERO);
    for restored in [&from_log, &from_checkpoint] {
        assert_eq!(restored.floor(), acceptor.floor());
        assert_eq!(
            restored.held_keys().collect::<Vec<_>>(),
            vec![b"a".as_slice(), b"c"]
        );
        for key in [b"a".as_slice(), b"c"] {
            assert_eq!(restored.key_state(key), acceptor.key_state(key));
        }
    }

    let mut proposer = Proposer::new(Config::new(1));
    proposer
        .set_key_config(b"a", KeyConfig::stable(5, vec![1, 2, 3]))
        .unwrap();
    proposer.propose(1, b"a", ringraft_paxos::Op::Get).unwrap();
    let ready = proposer.ready();
    let reserved = ready
        .records
        .iter()
        .find_map(|r| match r {
            ringraft_paxos::Record::BallotsReserved { counter_below } => Some(*counter_below),
            _ => None,
        })
        .expect("a fresh proposer reserves ballots");
    assert_eq!(
        proposer.checkpoint(),
        ringraft_paxos::Record::BallotsReserved {
            counter_below: reserved
        }
    );
}

fn keyed(from: NodeId, to: NodeId, key: &[u8], epoch: u64, body: Body) -> Message {
    Message {
        key: key.to_vec(),
        ..request(from, to, epoch, body)
    }
}

/// Per-key state shrinks (docs/paxos.md, "Bounded state"): a tick visits only keys with a round
/// or queued work; a key's work goes once it holds nothing; `forget_idle` lets caches and the
/// configurations of keys without work go, and a forgotten key works again once configured.
#[test]
fn a_tick_walks_only_keys_with_work_and_idle_keys_are_let_go() {
    let view = KeyConfig::stable(1, vec![1, 2, 3]);
    let mut net = Net::new(&[1, 2, 3], view.clone());
    let keys: Vec<Vec<u8>> = (0..100).map(|i| format!("key-{i}").into_bytes()).collect();
    for key in &keys {
        net.set_view_of(key, view.clone());
        let outcome = net.run_once_on(1, key, put(b"v"));
        assert_eq!(outcome, Outcome::Written { version: 1 });
    }
    let p = net.proposers.get_mut(&1).expect("p");
    assert_eq!(p.active_keys(), 0, "no key has work");
    assert_eq!(p.tracked_keys(), 100, "one-round-trip caches only");
    assert_eq!(p.configured_keys(), 101);

    // One key with a round running: each tick visits that key and no other.
    net.cut = [2, 3].into();
    let p = net.proposers.get_mut(&1).expect("p");
    p.propose(8, &keys[0], put(b"w")).expect("ok");
    assert_eq!(p.active_keys(), 1);
    let walked = p.keys_walked();
    for _ in 0..10 {
        net.proposers.get_mut(&1).expect("p").tick();
        net.pump();
    }
    let p = net.proposers.get_mut(&1).expect("p");
    assert_eq!(p.keys_walked(), walked + 10, "O(active keys) per tick");
    let mut answers = Vec::new();
    for _ in 0..60 {
        net.proposers.get_mut(&1).expect("p").tick();
        answers.extend(net.pump());
    }
    assert!(matches!(answers[0].outcome, Outcome::Unknown { .. }));
    let p = net.proposers.get_mut(&1).expect("p");
    assert_eq!(p.active_keys(), 0);
    assert_eq!(
        p.tracked_keys(),
        99,
        "the aborted round dropped its cache: no work left"
    );

    // The shell lets idle keys go; a forgotten key needs its configuration again.
    net.cut.clear();
    let p = net.proposers.get_mut(&1).expect("p");
    assert_eq!(p.forget_idle(), 101);
    assert_eq!((p.tracked_keys(), p.configured_keys()), (0, 0));
    assert_eq!(
        p.propose(9, &keys[5], Op::Get),
        Err(ProposeError::NoAcceptors)
    );
    net.set_view_of(&keys[5], view);
    let prepares = net.prepares_in_log();
    let outcome = net.run_once_on(1, &keys[5], put(b"x"));
    assert_eq!(outcome, Outcome::Written { version: 2 });
    assert!(
        net.prepares_in_log() > prepares,
        "without its cache the write prepares again"
    );
}

/// An acceptor forgets the configurations of keys it holds nothing of, never of held keys; a
/// forgotten key is refused until configured again, and the floor stays.
#[test]
fn an_acceptor_forgets_only_the_views_of_keys_it_holds_nothing_of() {
    let held = KeyConfig::stable(1, vec![1, 2, 3]);
    let elsewhere = KeyConfig::stable(1, vec![2, 3, 4]);
    let mut a = acceptor_with(held.clone(), 1);
    a.step(request(2, 1, 1, Body::Prepare { ballot: b(3, 2) }));
    let keys: Vec<Vec<u8>> = (0..50).map(|i| format!("key-{i}").into_bytes()).collect();
    for key in &keys {
        a.set_key_config(key, elsewhere.clone()).expect("valid");
        a.step(keyed(2, 1, key, 1, Body::Prepare { ballot: b(4, 2) }));
    }
    let _ = a.ready();
    assert_eq!(a.configured_keys(), 51);
    assert_eq!(a.forget_views_without_state(), 50);
    assert_eq!(a.configured_keys(), 1);
    assert_eq!(a.key_config(KEY), Some(&held), "a held key keeps its view");

    let refusal = |a: &mut Acceptor| {
        let ready = a.ready();
        assert!(ready.records.is_empty() && ready.persisted_messages.is_empty());
        match ready.messages[..] {
            [Message {
                body: Body::Refuse { reason, .. },
                ..
            }] => reason,
            _ => panic!("one refusal: {ready:?}"),
        }
    };
    a.step(keyed(2, 1, &keys[0], 1, Body::Prepare { ballot: b(5, 2) }));
    assert_eq!(
        refusal(&mut a),
        Refusal::EpochAhead,
        "no view: nothing promised"
    );
    a.set_key_config(&keys[0], elsewhere).expect("valid");
    a.step(keyed(2, 1, &keys[0], 1, Body::Prepare { ballot: b(5, 2) }));
    assert_eq!(
        refusal(&mut a),
        Refusal::NotAcceptor,
        "as before forgetting"
    );

    // KEY moves away (dropped, floor raised over its promise); its view may now go too, and
    // when the key comes back the floor still refuses every ballot it covered.
    a.set_key_config(KEY, KeyConfig::stable(2, vec![2, 3, 4]))
        .expect("valid");
    assert!(a.key_state(KEY).is_none());
    let _ = a.ready();
    assert_eq!(a.forget_views_without_state(), 2);
    a.set_key_config(KEY, KeyConfig::stable(3, vec![1, 2, 3]))
        .expect("valid");
    a.step(request(2, 1, 3, Body::Prepare { ballot: b(2, 2) }));
    assert_eq!(refusal(&mut a), Refusal::Promised(b(3, 2)));
}

/// One message from a buggy peer, a prepare at the largest well-formed counter, must not
/// disable the key: the acceptors refuse a jump that far above every promise they made, so the
/// key's honest proposers keep writing. A jump within `BALLOT_JUMP_MAX` is still promised.
#[test]
fn one_prepare_at_the_counter_limit_cannot_disable_a_key() {
    use ringraft_paxos::limits::{BALLOT_COUNTER_MAX, BALLOT_JUMP_MAX};
    let mut net = Net::new(&[1, 2, 3], KeyConfig::stable(1, vec![1, 2, 3]));
    assert_eq!(net.run(1, put(b"a")), Outcome::Written { version: 1 });
    for to in [1, 2, 3] {
        let a = net.acceptors.get_mut(&to).expect("a");
        let poison = b(BALLOT_COUNTER_MAX, 9);
        a.step(request(9, to, 1, Body::Prepare { ballot: poison }));
        let ready = a.ready();
        assert!(ready.records.is_empty() && ready.persisted_messages.is_empty());
        let refused_low = matches!(
            ready.messages[0].body,
            Body::Refuse { reason: Refusal::Promised(p), .. } if p.counter < 100
        );
        assert!(refused_low, "{ready:?}");
    }
    assert_eq!(net.run(2, put(b"b")), Outcome::Written { version: 2 });
    let a = net.acceptors.get_mut(&1).expect("a");
    let far = b(a.counter_high() + BALLOT_JUMP_MAX, 9);
    a.step(request(9, 1, 1, Body::Prepare { ballot: far }));
    let ready = a.ready();
    assert!(matches!(
        ready.persisted_messages[0].body,
        Body::Promise { .. }
    ));
}

/// A buggy acceptor's refusal claiming a promise at the counter limit must not exhaust the
/// proposer (which would refuse to start rounds for every key, forever): the implausible counter
/// is not adopted, and the next rounds use ballots near the proposer's own.
#[test]
fn a_refusal_implausibly_far_above_does_not_exhaust_the_proposer() {
    use ringraft_paxos::limits::BALLOT_COUNTER_MAX;
    let view = KeyConfig::stable(1, vec![1, 2, 3]);
    let mut p = Proposer::new(Config::new(1));
    p.set_key_config(KEY, view.clone()).expect("valid");
    p.set_key_config(b"other", view).expect("valid");
    p.propose(1, KEY, Op::Get).expect("ok");
    let first = p.ready().persisted_messages[0].body.ballot();
    for from in [2, 3] {
        let reason = Refusal::Promised(b(BALLOT_COUNTER_MAX, from));
        p.step(keyed(
            from,
            1,
            KEY,
            1,
            Body::Refuse {
                ballot: first,
                reason,
            },
        ));
    }
    let ready = p.ready();
    let contended = matches!(
        ready.answers[..],
        [Answer {
            outcome: Outcome::Retry {
                reason: RetryReason::Contended,
                ..
            },
            ..
        }]
    );
    assert!(contended, "{:?}", ready.answers);
    for (op, key) in [(2, b"other".as_slice()), (3, KEY)] {
        p.propose(op, key, Op::Get).expect("ok");
        let ready = p.ready();
        assert!(
            ready.answers.is_empty(),
            "a round runs: {:?}",
            ready.answers
        );
        let mut sent = ready.messages;
        sent.extend(ready.persisted_messages);
        let next = sent[0].body.ballot();
        assert!(next.counter <= first.counter + 3, "{next:?}");
    }
}

// Batched rounds (docs/paxos.md, "Batched rounds").

/// Proposer `id` of `net` replaced by one with `config` (and the key's view).
fn replace_proposer(net: &mut Net, config: Config, view: &KeyConfig) {
    let id = config.id;
    let mut p = Proposer::new(config);
    p.set_key_config(KEY, view.clone()).expect("valid view");
    net.proposers.insert(id, p);
}

fn cas(expected_version: u64, v: &[u8]) -> Op {
    Op::Cas {
        expected_version,
        value: v.to_vec(),
    }
}

/// Proposes `ops` on proposer 1 under ids 100, 101, ... without delivering anything.
fn propose_all(net: &mut Net, ops: &[Op]) {
    let p = net.proposers.get_mut(&1).expect("p");
    for (i, op) in ops.iter().enumerate() {
        p.propose(100 + i as u64, KEY, op.clone()).expect("ok");
    }
}

/// The answers to ids 100, 101, ... in id order.
fn outcomes_of(answers: &[Answer], n: usize) -> Vec<Outcome> {
    (0..n as u64)
        .map(|i| {
            let a = answers.iter().find(|a| a.op == 100 + i).expect("answered");
            a.outcome.clone()
        })
        .collect()
}

/// How many distinct ballots the accepts in the log carry: how many phase 2s ran.
fn accept_rounds(log: &[Message]) -> usize {
    let ballots: BTreeSet<Ballot> = log
        .iter()
        .filter_map(|m| match m.body {
            Body::Accept { ballot, .. } => Some(ballot),
            _ => None,
        })
        .collect();
    ballots.len()
}

fn value(v: &[u8], version: u64) -> Outcome {
    Outcome::Value(Register {
        value: Some(v.to_vec()),
        version,
    })
}

#[test]
fn a_batched_round_answers_each_operation_from_the_register_the_ones_before_it_left() {
    let view = KeyConfig::stable(1, vec![1, 2, 3]);
    let mut net = Net::new(&[1, 2, 3], view);
    net.run(1, put(b"a"));
    net.log.clear();
    // The first starts a round at once; the rest queue behind it and run as one batch.
    let ops = [
        Op::Get,
        cas(1, b"b"),
        Op::Get,
        cas(1, b"c"), // conflicts with the version the cas before it left
        put(b"d"),
        Op::Delete {
            expected_version: Some(3),
        },
        Op::Delete {
            expected_version: Some(3), // the register is absent now: version 0
        },
        cas(0, b"e"),
    ];
    propose_all(&mut net, &ops);
    let answers = net.pump();
    assert_eq!(
        outcomes_of(&answers, ops.len()),
        vec![
            value(b"a", 1),
            Outcome::Written { version: 2 },
            value(b"b", 2),
            Outcome::Conflict { current_version: 2 },
            Outcome::Written { version: 3 },
            Outcome::Written { version: 0 },
            Outcome::Conflict { current_version: 0 },
            Outcome::Written { version: 1 },
        ]
    );
    assert_eq!(accept_rounds(&net.log), 2, "the get alone, then one batch");
    assert_eq!(
        net.run(2, Op::Get),
        value(b"e", 1),
        "the batch's last register"
    );
}

#[test]
fn batches_are_bounded_by_batch_ops_max_and_one_means_a_round_each() {
    let view = KeyConfig::stable(1, vec![1, 2, 3]);
    for (batch_ops_max, rounds) in [(1, 7), (2, 4), (64, 2)] {
        let mut net = Net::new(&[1, 2, 3], view.clone());
        let mut config = Config::new(1);
        config.batch_ops_max = batch_ops_max;
        replace_proposer(&mut net, config, &view);
        let ops: Vec<Op> = (0..7).map(|i| put(&[i])).collect();
        propose_all(&mut net, &ops);
        let answers = net.pump();
        let written: Vec<Outcome> = (1..=7)
            .map(|version| Outcome::Written { version })
            .collect();
        assert_eq!(
            outcomes_of(&answers, 7),
            written,
            "batch_ops_max {batch_ops_max}"
        );
        assert_eq!(
            accept_rounds(&net.log),
            rounds,
            "batch_ops_max {batch_ops_max}"
        );
    }
}

#[test]
fn a_batch_never_carries_a_handoff_and_stops_at_one() {
    let old = KeyConfig::stable(1, vec![1, 2, 3]);
    let mut net = Net::new(&[1, 2, 3, 4], old.clone());
    net.run(1, put(b"a"));
    net.set_view(KeyConfig {
        epoch: 2,
        acceptors: vec![1, 2, 4],
        previous: Some((1, vec![1, 2, 3])),
    });
    net.log.clear();
    let p = net.proposers.get_mut(&1).expect("p");
    p.propose(100, KEY, put(b"b")).expect("ok");
    p.propose(101, KEY, put(b"c")).expect("ok");
    p.handoff(102, KEY).expect("ok");
    p.propose(103, KEY, put(b"d")).expect("ok");
    let answers = net.pump();
    assert_eq!(
        outcomes_of(&answers, 4),
        vec![
            Outcome::Written { version: 2 },
            Outcome::Written { version: 3 },
            Outcome::HandedOff,
            Outcome::Written { version: 4 },
        ]
    );
    assert_eq!(accept_rounds(&net.log), 4, "b; c; the handoff; d");
}

#[test]
fn a_batch_that_fails_in_phase_one_answers_every_operation_retry() {
    let view = KeyConfig::stable(1, vec![1, 2, 3]);
    let mut net = Net::new(&[1, 2, 3], view.clone());
    let mut config = Config::new(1);
    config.one_round_trip = false;
    replace_proposer(&mut net, config, &view);
    net.run(1, put(b"a"));
    net.cut = [2, 3].into();
    let p = net.proposers.get_mut(&1).expect("p");
    p.propose(99, KEY, Op::Get).expect("ok");
    for _ in 0..5 {
        net.proposers.get_mut(&1).expect("p").tick();
    }
    // Queued behind the get with later deadlines: they run as one batch once it times out.
    let ops = [put(b"b"), Op::Get, cas(1, b"c"), cas(9, b"d")];
    propose_all(&mut net, &ops);
    let mut answers = Vec::new();
    for _ in 0..200 {
        net.proposers.get_mut(&1).expect("p").tick();
        answers.extend(net.pump());
    }
    for outcome in outcomes_of(&answers, ops.len()) {
        let retry = matches!(
            outcome,
            Outcome::Retry {
                reason: RetryReason::TimedOut,
                ..
            }
        );
        assert!(retry, "no accept went out: {outcome:?}");
    }
    net.cut.clear();
    assert_eq!(net.run(2, Op::Get), value(b"a", 1));
}

#[test]
fn a_batch_that_fails_after_its_accept_left_is_unknown_for_writes_and_retry_for_the_rest() {
    let view = KeyConfig::stable(1, vec![1, 2, 3]);
    let mut net = Net::new(&[1, 2, 3], view.clone());
    let mut config = Config::new(1);
    config.one_round_trip = false;
    replace_proposer(&mut net, config, &view);
    net.run(1, put(b"a"));
    // The acceptors take every accept, but no acknowledgement comes back.
    net.lose_accepted = true;
    let p = net.proposers.get_mut(&1).expect("p");
    p.propose(99, KEY, Op::Get).expect("ok");
    for _ in 0..5 {
        net.proposers.get_mut(&1).expect("p").tick();
    }
    let ops = [
        put(b"b"),    // v2
        Op::Get,      // (b, 2)
        cas(1, b"c"), // conflicts: the put left version 2
        cas(2, b"d"), // v3
        cas(9, b"e"), // conflicts
    ];
    propose_all(&mut net, &ops);
    let mut answers = Vec::new();
    for _ in 0..200 {
        net.proposers.get_mut(&1).expect("p").tick();
        answers.extend(net.pump());
    }
    let kinds: Vec<&str> = outcomes_of(&answers, ops.len())
        .iter()
        .map(|o| match o {
            Outcome::Unknown { .. } => "unknown",
            Outcome::Retry { .. } => "retry",
            _ => "answered",
        })
        .collect();
    // Neither the read nor the conflicts may be answered from a register never known chosen;
    // they changed nothing, so they did not take effect either way.
    assert_eq!(
        kinds,
        vec!["unknown", "retry", "retry", "unknown", "retry"],
        "{answers:?}"
    );
    // The acceptors did take the batch's register: both writes took effect, in order.
    net.lose_accepted = false;
    assert_eq!(net.run(2, Op::Get), value(b"d", 3));
}
