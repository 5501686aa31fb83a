//! The linearizability checker must reject broken histories (a checker that cannot fail proves
//! nothing) and accept sound ones, including operations of unknown outcome.

mod sim;

use sim::linearizability::{check_history, Input, Operation, Output, Verdict, NEVER_RETURNED};

const BUDGET: u64 = 100_000;

fn op(client: u64, input: Input, output: Option<Output>, call: u64, ret: u64) -> Operation {
    Operation {
        client,
        key: 0,
        input,
        output,
        call,
        ret,
    }
}

fn written(version: u64) -> Option<Output> {
    Some(Output::Written { version })
}

fn read(value: Option<u64>, version: u64) -> Option<Output> {
    Some(Output::Value { value, version })
}

fn rejected(history: &[Operation]) -> bool {
    matches!(
        check_history(history, BUDGET),
        Verdict::NotLinearizable { .. }
    )
}

#[test]
fn a_sound_history_is_linearizable() {
    let history = [
        op(1, Input::Put(10), written(1), 1, 2),
        op(
            2,
            Input::Cas {
                expected: 1,
                value: 11,
            },
            written(2),
            3,
            6,
        ),
        op(3, Input::Get, read(Some(10), 1), 4, 5), // concurrent with the cas: before it
        op(1, Input::Delete { expected: Some(2) }, written(0), 7, 8),
        op(2, Input::Get, read(None, 0), 9, 10),
    ];
    assert_eq!(check_history(&history, BUDGET), Verdict::Linearizable);
}

#[test]
fn a_lost_write_is_rejected() {
    let history = [
        op(1, Input::Put(10), written(1), 1, 2),
        op(2, Input::Get, read(None, 0), 3, 4),
    ];
    assert!(rejected(&history));
}

#[test]
fn a_stale_read_is_rejected() {
    let history = [
        op(1, Input::Put(10), written(1), 1, 2),
        op(1, Input::Put(11), written(2), 3, 4),
        op(2, Input::Get, read(Some(10), 1), 5, 6),
    ];
    assert!(rejected(&history));
}

#[test]
fn a_version_skip_is_rejected() {
    let history = [
        op(1, Input::Put(10), written(1), 1, 2),
        op(1, Input::Put(11), written(3), 3, 4),
    ];
    assert!(rejected(&history));
}

#[test]
fn two_writes_of_one_version_are_rejected() {
    let history = [
        op(
            1,
            Input::Cas {
                expected: 0,
                value: 10,
            },
            written(1),
            1,
            4,
        ),
        op(
            2,
            Input::Cas {
                expected: 0,
                value: 11,
            },
            written(1),
            2,
            3,
        ),
    ];
    assert!(rejected(&history));
}

#[test]
fn a_wrong_conflict_is_rejected() {
    let history = [
        op(1, Input::Put(10), written(1), 1, 2),
        op(
            2,
            Input::Cas {
                expected: 0,
                value: 11,
            },
            Some(Output::Conflict { current: 0 }),
            3,
            4,
        ),
    ];
    assert!(rejected(&history));
}

#[test]
fn an_unknown_write_may_have_taken_effect_or_not() {
    let unknown = op(1, Input::Put(10), None, 1, NEVER_RETURNED);
    let seen = [unknown.clone(), op(2, Input::Get, read(Some(10), 1), 5, 6)];
    assert_eq!(check_history(&seen, BUDGET), Verdict::Linearizable);
    let not_seen = [unknown.clone(), op(2, Input::Get, read(None, 0), 5, 6)];
    assert_eq!(check_history(&not_seen, BUDGET), Verdict::Linearizable);
    // It explains a version bump too, but only after its call.
    let bump = [unknown, op(2, Input::Put(11), written(2), 3, 4)];
    assert_eq!(check_history(&bump, BUDGET), Verdict::Linearizable);
    let too_early = [
        op(2, Input::Put(11), written(2), 1, 2),
        op(1, Input::Put(10), None, 3, NEVER_RETURNED),
    ];
    assert!(rejected(&too_early));
}

#[test]
fn an_unknown_write_cannot_come_back_after_being_overwritten_and_read() {
    let history = [
        op(1, Input::Put(10), None, 1, NEVER_RETURNED),
        op(2, Input::Put(11), written(2), 2, 3),
        op(3, Input::Get, read(Some(11), 2), 4, 5),
        op(3, Input::Get, read(Some(10), 1), 6, 7),
    ];
    assert!(rejected(&history));
}
