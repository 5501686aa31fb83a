//! The checker must be shown to fail: a sound history passes, and each corruption of it (a lost
//! acknowledgement, a duplicate, a divergent index, a stale read, an owner disagreement, a watch
//! gap, and more) is reported for exactly its own reason. The check command re-checks a saved
//! history with the same verdict.

use std::collections::BTreeSet;
use std::process::Command;

use ringraft_campaign::checker::{check, recovery_us, Kind};
use ringraft_campaign::history::{
    Answer, Call, Event, FaultRecord, FinalLog, History, Meta, Op, Outcome, Record, FORMAT,
};

/// Indexes of the application records: Raft indexes with gaps (no-ops and membership changes
/// sit in between).
fn index_of(i: u64) -> u64 {
    3 + i + i / 4
}

const ACKED: u64 = 20;

struct Builder {
    history: History,
    next_id: u64,
}

impl Builder {
    fn op(&mut self, client: u32, node: u64, at: (u64, u64), call: Call, outcome: Outcome) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.history.ops.push(Op {
            id,
            client,
            node,
            invoke_us: at.0,
            complete_us: at.1,
            call,
            outcome,
        });
        id
    }
}

fn ok(answer: Answer) -> Outcome {
    Outcome::Ok(answer)
}

fn payload(i: u64) -> String {
    format!("p{}.{i}", i % 3)
}

/// A sound history of a 3-node cluster: 20 acknowledged proposals (one every 1000 µs), a failed
/// one, two unknown ones (one of which committed), a read of the log, linearizable reads, owner
/// and replicas answers, a watcher with two sessions, a fault, and the three final logs.
fn sound() -> History {
    let mut b = Builder {
        history: History {
            meta: Meta {
                format: FORMAT.to_string(),
                seed: 42,
                nodes: 3,
                duration_s: 1,
                faultfs: false,
                reproduce: String::new(),
            },
            ..History::default()
        },
        next_id: 1,
    };
    let mut log = Vec::new();
    for i in 0..ACKED {
        let t = 1000 * (i + 1);
        let index = index_of(i);
        b.op(
            (i % 3) as u32,
            i % 3 + 1,
            (t, t + 500),
            Call::Propose {
                payload: payload(i),
            },
            ok(Answer {
                index: Some(index),
                ..Answer::default()
            }),
        );
        log.push(Record(index, payload(i)));
    }
    // An unknown proposal that committed, after the acknowledged ones.
    let unknown_index = index_of(ACKED) + 1;
    b.op(
        7,
        1,
        (21_000, 30_000),
        Call::Propose {
            payload: "p7.1".into(),
        },
        Outcome::Unknown {
            reason: "timeout".into(),
        },
    );
    log.push(Record(unknown_index, "p7.1".into()));
    b.op(
        7,
        2,
        (22_000, 30_000),
        Call::Propose {
            payload: "p7.2".into(),
        },
        Outcome::Unknown {
            reason: "connection lost".into(),
        },
    );
    b.op(
        8,
        3,
        (2_000, 2_100),
        Call::Propose {
            payload: "p8.1".into(),
        },
        Outcome::Fail {
            status: "no_leader".into(),
            message: "no leader".into(),
            current_version: None,
        },
    );
    // A read of the log after the 10th acknowledgement: the first 10 records.
    let applied_10 = index_of(9);
    b.op(
        4,
        2,
        (10_600, 10_700),
        Call::ReadLog { from: 1, max: 100 },
        ok(Answer {
            applied: Some(applied_10),
            records: Some(log[..10].to_vec()),
            ..Answer::default()
        }),
    );
    // Linearizable reads: one after the 5th acknowledgement, one after the last.
    for (at, applied) in [(5_600, index_of(4)), (20_600, index_of(ACKED - 1))] {
        b.op(
            5,
            3,
            (at, at + 100),
            Call::LinRead { key: "k1".into() },
            ok(Answer {
                epoch: Some(1),
                owner: Some(2),
                applied: Some(applied),
                ..Answer::default()
            }),
        );
    }
    for node in 1..=3 {
        b.op(
            6,
            node,
            (3_000, 3_100),
            Call::Owner {
                key: "k1".into(),
                linearizable: false,
            },
            ok(Answer {
                epoch: Some(1),
                owner: Some(2),
                ..Answer::default()
            }),
        );
        b.op(
            6,
            node,
            (3_200, 3_300),
            Call::Replicas {
                key: "k2".into(),
                n: 2,
                linearizable: node == 1,
            },
            ok(Answer {
                epoch: Some(1),
                replicas: Some(vec![3, 1]),
                ..Answer::default()
            }),
        );
    }
    // A watcher: session 0 on n1 delivers the first 8 records, n1 dies, session 1 on n2 resumes
    // after the last one delivered and delivers the rest of the acknowledged ones.
    b.op(
        9,
        1,
        (500, 9_000),
        Call::Watch {
            watcher: 0,
            session: 0,
            from: 1,
        },
        ok(Answer {
            records: Some(log[..8].to_vec()),
            note: Some("connection lost".into()),
            ..Answer::default()
        }),
    );
    b.op(
        9,
        2,
        (9_100, 40_000),
        Call::Watch {
            watcher: 0,
            session: 1,
            from: log[7].0 + 1,
        },
        ok(Answer {
            records: Some(log[8..ACKED as usize].to_vec()),
            note: Some("stopped".into()),
            ..Answer::default()
        }),
    );
    b.history.faults.push(FaultRecord {
        kind: "kill9".into(),
        detail: "n1".into(),
        start_us: 8_800,
        end_us: 12_000,
    });
    let last = unknown_index + 2;
    for node in 1..=3 {
        b.history.final_logs.push(FinalLog {
            node,
            first_index: 1,
            last_index: last,
            records: log.clone(),
            error: None,
        });
    }
    b.history.workload_end_us = 40_000;
    b.history
}

fn kinds(history: &History) -> BTreeSet<Kind> {
    check(history).kinds()
}

fn assert_only(history: &History, kind: Kind) {
    let report = check(history);
    assert_eq!(
        report.kinds(),
        BTreeSet::from([kind]),
        "expected only {kind:?}:\n{}",
        report.details(50)
    );
    assert!(!report.passed());
    assert!(report.summary_line().contains("verdict=FAIL"));
}

fn final_logs_mut(history: &mut History) -> impl Iterator<Item = &mut FinalLog> {
    history.final_logs.iter_mut()
}

#[test]
fn a_sound_history_passes_and_counts_everything() {
    let history = sound();
    let report = check(&history);
    assert!(report.passed(), "{}", report.details(50));
    assert_eq!(report.proposals.attempted, ACKED + 3);
    assert_eq!(report.proposals.ok, ACKED);
    assert_eq!(report.proposals.failed, 1);
    assert_eq!(report.proposals.unknown, 2);
    assert_eq!(
        report.unknown_committed, 1,
        "one unknown proposal committed"
    );
    assert_eq!(report.committed_records, ACKED + 1);
    assert_eq!(report.lin_reads, 2);
    assert_eq!(report.watch_records, ACKED);
    assert_eq!(report.faults.get("kill9"), Some(&1));
    let line = report.summary_line();
    assert!(line.contains("seed=42 nodes=3"), "{line}");
    assert!(line.contains("lost=0"), "{line}");
    assert!(line.ends_with("verdict=PASS"), "{line}");
}

#[test]
fn a_lost_acknowledgement_is_reported() {
    let mut history = sound();
    // The last acknowledged record, read by nothing but the watch... remove it from the watch
    // too, as a node that never had it would not deliver it.
    let lost = index_of(ACKED - 1);
    for log in final_logs_mut(&mut history) {
        log.records.retain(|r| r.0 != lost);
    }
    for op in &mut history.ops {
        if let (Call::Watch { session: 1, .. }, Outcome::Ok(answer)) = (&op.call, &mut op.outcome) {
            answer.records.as_mut().unwrap().retain(|r| r.0 != lost);
        }
    }
    assert_only(&history, Kind::Lost);
    assert_eq!(check(&history).count(Kind::Lost), 1);
}

#[test]
fn an_acknowledgement_at_the_wrong_index_is_lost() {
    let mut history = sound();
    // The daemon answered the index before the one the proposal committed at (an index that
    // holds another proposal): nothing else moves.
    let op = history
        .ops
        .iter_mut()
        .find(|op| {
            op.call
                == Call::Propose {
                    payload: payload(ACKED - 1),
                }
        })
        .unwrap();
    op.outcome = ok(Answer {
        index: Some(index_of(ACKED - 1) - 1),
        ..Answer::default()
    });
    assert_only(&history, Kind::Lost);
}

#[test]
fn a_duplicate_is_reported() {
    let mut history = sound();
    for log in final_logs_mut(&mut history) {
        let again = Record(log.last_index, payload(3));
        log.records.push(again);
    }
    assert_only(&history, Kind::Duplicated);
}

#[test]
fn a_divergent_index_is_reported() {
    let mut history = sound();
    // n3 holds, at an acknowledged index, a proposal whose outcome was unknown.
    let index = index_of(12);
    let log = history.final_logs.iter_mut().find(|l| l.node == 3).unwrap();
    for record in &mut log.records {
        if record.0 == index {
            record.1 = "p7.2".into();
        }
    }
    assert_only(&history, Kind::Divergent);
}

#[test]
fn a_node_missing_a_record_inside_its_range_diverges() {
    let mut history = sound();
    let index = index_of(ACKED) + 1; // the unknown proposal that committed
    let log = history.final_logs.iter_mut().find(|l| l.node == 2).unwrap();
    log.records.retain(|r| r.0 != index);
    assert_only(&history, Kind::Divergent);
}

#[test]
fn a_stale_linearizable_read_is_reported() {
    let mut history = sound();
    // Invoked after the 15th acknowledgement completed, it saw only the 14th.
    let invoked = 1000 * 15 + 600;
    history.ops.push(Op {
        id: 1000,
        client: 5,
        node: 1,
        invoke_us: invoked,
        complete_us: invoked + 100,
        call: Call::LinRead { key: "k1".into() },
        outcome: ok(Answer {
            epoch: Some(1),
            owner: Some(2),
            applied: Some(index_of(13)),
            ..Answer::default()
        }),
    });
    assert_only(&history, Kind::StaleRead);
    // Had it started before that acknowledgement, it would be fine (concurrent).
    history.ops.last_mut().unwrap().invoke_us = 1000 * 14 + 100;
    assert!(check(&history).passed());
}

#[test]
fn a_stale_epoch_in_a_linearizable_read_is_reported() {
    let mut history = sound();
    history.ops.push(Op {
        id: 1000,
        client: 0,
        node: 1,
        invoke_us: 30_000,
        complete_us: 31_000,
        call: Call::Join { id: 4 },
        outcome: ok(Answer {
            index: Some(index_of(ACKED) + 2),
            ..Answer::default()
        }),
    });
    assert!(check(&history).passed());
    history.ops.push(Op {
        id: 1001,
        client: 6,
        node: 2,
        invoke_us: 32_000,
        complete_us: 32_100,
        call: Call::Owner {
            key: "k9".into(),
            linearizable: true,
        },
        outcome: ok(Answer {
            epoch: Some(1),
            owner: Some(1),
            ..Answer::default()
        }),
    });
    assert_only(&history, Kind::StaleRead);
}

#[test]
fn an_owner_disagreement_is_reported() {
    let mut history = sound();
    history.ops.push(Op {
        id: 1000,
        client: 6,
        node: 3,
        invoke_us: 4_000,
        complete_us: 4_100,
        call: Call::Owner {
            key: "k1".into(),
            linearizable: false,
        },
        outcome: ok(Answer {
            epoch: Some(1),
            owner: Some(3),
            ..Answer::default()
        }),
    });
    assert_only(&history, Kind::OwnerDisagreement);
    // The same answer at a later epoch (after the last linearizable read) is no disagreement.
    let op = history.ops.last_mut().unwrap();
    op.invoke_us = 45_000;
    op.complete_us = 45_100;
    if let Outcome::Ok(answer) = &mut op.outcome {
        answer.epoch = Some(2);
    }
    assert!(check(&history).passed());
}

#[test]
fn a_replicas_disagreement_is_reported() {
    let mut history = sound();
    history.ops.push(Op {
        id: 1000,
        client: 6,
        node: 2,
        invoke_us: 4_000,
        complete_us: 4_100,
        call: Call::Replicas {
            key: "k2".into(),
            n: 2,
            linearizable: false,
        },
        outcome: ok(Answer {
            epoch: Some(1),
            replicas: Some(vec![1, 3]),
            ..Answer::default()
        }),
    });
    assert_only(&history, Kind::OwnerDisagreement);
}

#[test]
fn a_watch_gap_is_reported() {
    let mut history = sound();
    for op in &mut history.ops {
        if let (Call::Watch { session: 1, .. }, Outcome::Ok(answer)) = (&op.call, &mut op.outcome) {
            answer.records.as_mut().unwrap().remove(3);
        }
    }
    assert_only(&history, Kind::WatchGap);
}

#[test]
fn a_watch_resumed_past_a_record_is_a_gap() {
    let mut history = sound();
    for op in &mut history.ops {
        if let Call::Watch {
            session: 1, from, ..
        } = &mut op.call
        {
            *from = index_of(8) + 1;
            if let Outcome::Ok(answer) = &mut op.outcome {
                answer.records.as_mut().unwrap().remove(0);
            }
        }
    }
    assert_only(&history, Kind::WatchGap);
}

#[test]
fn a_watch_that_repeats_a_record_across_sessions_is_reported() {
    let mut history = sound();
    for op in &mut history.ops {
        if let (Call::Watch { session: 1, .. }, Outcome::Ok(answer)) = (&op.call, &mut op.outcome) {
            // The record the first session delivered last, delivered again.
            answer
                .records
                .as_mut()
                .unwrap()
                .insert(0, Record(index_of(7), payload(7)));
        }
    }
    assert_only(&history, Kind::WatchOrder);
}

#[test]
fn a_watch_delivering_other_data_is_reported() {
    let mut history = sound();
    for op in &mut history.ops {
        if let (Call::Watch { session: 0, .. }, Outcome::Ok(answer)) = (&op.call, &mut op.outcome) {
            answer.records.as_mut().unwrap()[2].1 = "p7.2".into();
        }
    }
    assert_only(&history, Kind::WatchMismatch);
}

#[test]
fn a_phantom_payload_is_reported() {
    let mut history = sound();
    for log in final_logs_mut(&mut history) {
        let at = log.last_index;
        log.records.push(Record(at, "never proposed".into()));
    }
    assert_only(&history, Kind::Phantom);
}

#[test]
fn a_failed_proposal_that_committed_is_reported() {
    let mut history = sound();
    for log in final_logs_mut(&mut history) {
        let at = log.last_index;
        log.records.push(Record(at, "p8.1".into()));
    }
    assert_only(&history, Kind::FailedCommitted);
}

#[test]
fn unknown_outcomes_are_counted_never_judged() {
    let mut history = sound();
    // The other unknown proposal commits too: still no violation, one more counted.
    for log in final_logs_mut(&mut history) {
        let at = log.last_index;
        log.records.push(Record(at, "p7.2".into()));
    }
    let report = check(&history);
    assert!(report.passed(), "{}", report.details(50));
    assert_eq!(report.unknown_committed, 2);
}

#[test]
fn a_read_of_data_the_log_does_not_hold_is_reported() {
    let mut history = sound();
    for op in &mut history.ops {
        if let (Call::ReadLog { .. }, Outcome::Ok(answer)) = (&op.call, &mut op.outcome) {
            answer.records.as_mut().unwrap()[4].1 = "p7.2".into();
        }
    }
    assert_only(&history, Kind::BadRead);
}

#[test]
fn a_read_that_skips_a_committed_record_is_reported() {
    let mut history = sound();
    for op in &mut history.ops {
        if let (Call::ReadLog { .. }, Outcome::Ok(answer)) = (&op.call, &mut op.outcome) {
            answer.records.as_mut().unwrap().remove(4);
        }
    }
    assert_only(&history, Kind::BadRead);
}

#[test]
fn a_node_that_did_not_catch_up_is_lagging_and_an_unreadable_one_is_reported() {
    let mut history = sound();
    let log = history.final_logs.iter_mut().find(|l| l.node == 1).unwrap();
    let cut = index_of(ACKED - 3);
    log.records.retain(|r| r.0 < cut);
    log.last_index = cut - 1;
    assert_only(&history, Kind::Lagging);
    let log = history.final_logs.iter_mut().find(|l| l.node == 1).unwrap();
    log.records.clear();
    log.error = Some("connection refused".into());
    assert_only(&history, Kind::Unreadable);
}

#[test]
fn a_crash_and_a_cluster_that_does_not_recover_are_reported() {
    let mut history = sound();
    history.events.push(Event {
        at_us: 5_000,
        node: 2,
        what: "exited: signal 9 (a fault stopped it)".into(),
    });
    assert!(
        check(&history).passed(),
        "an exit a fault explains is no crash"
    );
    history.events.push(Event {
        at_us: 6_000,
        node: 2,
        what: "crash: n2 exited by itself: exit code 101".into(),
    });
    assert_only(&history, Kind::Crash);
    history.events.pop();
    history.events.push(Event {
        at_us: 41_000,
        node: 3,
        what: "no_recovery: n3 acknowledged no proposal within 60s of the final heal".into(),
    });
    assert_only(&history, Kind::NoRecovery);
}

#[test]
fn a_payload_proposed_twice_is_a_history_error() {
    let mut history = sound();
    let mut again = history.ops[0].clone();
    again.id = 1000;
    again.outcome = Outcome::Unknown {
        reason: "timeout".into(),
    };
    history.ops.push(again);
    assert_only(&history, Kind::HistoryError);
}

#[test]
fn recovery_is_the_longest_fault_free_stretch_without_an_acknowledgement() {
    let mut history = sound();
    // Acks every 1000 µs from 1500 to 20500; the workload ends at 40000: the stretch from the
    // last ack to the end (19500 µs) is the longest, no fault being active then.
    assert_eq!(recovery_us(&history), 19_500);
    // A fault over that stretch leaves the acks' spacing and the start.
    history.faults.push(FaultRecord {
        kind: "pause".into(),
        detail: "n2".into(),
        start_us: 20_000,
        end_us: 40_000,
    });
    assert_eq!(recovery_us(&history), 1_500);
}

#[test]
fn the_history_file_round_trips_and_the_check_command_gives_the_verdict() {
    let dir = std::env::temp_dir().join(format!("ringraft-campaign-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sound_path = dir.join("sound.jsonl");
    let history = sound();
    std::fs::write(&sound_path, history.to_text()).unwrap();
    assert_eq!(History::load(&sound_path).unwrap(), history);
    let run = |path: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_ringraft-campaign"))
            .arg("check")
            .arg(path)
            .output()
            .expect("run ringraft-campaign check")
    };
    let out = run(&sound_path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("verdict=PASS"), "{stdout}");

    let mut lost = history.clone();
    let index = index_of(ACKED - 1);
    for log in final_logs_mut(&mut lost) {
        log.records.retain(|r| r.0 != index);
    }
    let lost_path = dir.join("lost.jsonl");
    std::fs::write(&lost_path, lost.to_text()).unwrap();
    let out = run(&lost_path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains(" lost=1 "), "{stdout}");
    assert!(stdout.contains("verdict=FAIL"), "{stdout}");
    assert!(stdout.contains("acknowledged at index"), "{stdout}");

    let garbage = dir.join("garbage.jsonl");
    std::fs::write(&garbage, "{not json\n").unwrap();
    assert_eq!(run(&garbage).status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(kinds(&history).is_empty());
}
