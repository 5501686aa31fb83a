//! What one membership change costs a member at 100, 1,000 and 10,000 members (issue 14), in the
//! daemon's own code, on one thread:
//!
//! - apply: `ReplicatedState::apply` of the committed change (members, ring, registers plane);
//! - view, incremental: the journal records the change and the published view catches up by it
//!   (`MembershipView::catch_up`), as the node does now;
//! - view, rebuilt: `MembershipView::of` plus the whole ring's encoding, as every member did per
//!   epoch before;
//! - answers: `RingSince` from a client one change behind (the delta) against the whole `Ring`
//!   answer, in bytes and time.
//!
//! Run: cargo bench -p ringraft-daemon --bench membership_change [-- --members 100,1000,10000]
//! Prints one table row per (members, change); medians of `--reps` changes.

use std::time::{Duration, Instant};

use ringraft_daemon::node::journal::MembershipJournal;
use ringraft_daemon::node::view::MembershipView;
use ringraft_daemon::state::{
    encode_command, encode_member, Applied, ReplicatedState, Retention, StateCommand,
};
use ringraft_proto::{Member, MemberRole, MemberState, Response};
use ringraft_raft::{ConfChange, ConfChangeStep, Entry, EntryPayload};

fn member(id: u64) -> Member {
    Member {
        id,
        name: format!("n{id}"),
        address: format!("10.0.{}.{}:7000", id / 256, id % 256),
        zone: String::new(),
        weight: 1,
        role: MemberRole::Learner,
        state: MemberState::Active,
    }
}

#[derive(Clone, Copy)]
enum Change {
    Join,
    Remove,
    Down,
    Active,
}

impl Change {
    fn name(self) -> &'static str {
        match self {
            Change::Join => "join",
            Change::Remove => "remove",
            Change::Down => "mark down",
            Change::Active => "mark active",
        }
    }

    fn entry(self, index: u64, id: u64) -> Entry {
        let conf = |step, context| {
            EntryPayload::ConfChange(ConfChange {
                changes: vec![step],
                auto_leave: true,
                context,
            })
        };
        let state = |state| {
            EntryPayload::Normal(encode_command(&StateCommand::SetMemberState { id, state }))
        };
        let payload = match self {
            Change::Join => conf(ConfChangeStep::AddLearner(id), encode_member(&member(id))),
            Change::Remove => conf(ConfChangeStep::RemoveNode(id), Vec::new()),
            Change::Down => state(MemberState::Down),
            Change::Active => state(MemberState::Active),
        };
        Entry {
            term: 2,
            index,
            payload,
        }
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn show(duration: Duration) -> String {
    let micros = duration.as_secs_f64() * 1e6;
    if micros >= 10_000.0 {
        format!("{:.1} ms", micros / 1000.0)
    } else {
        format!("{micros:.0} µs")
    }
}

struct Row {
    apply: Vec<Duration>,
    incremental: Vec<Duration>,
    rebuilt: Vec<Duration>,
    delta_answer: Vec<Duration>,
    whole_answer: Vec<Duration>,
    delta_bytes: String,
    whole_bytes: String,
}

/// The answer's frame size, or why it has none: a whole ring past about 4,000 members is more
/// than one frame may carry.
fn answer_bytes(response: &Response) -> String {
    let frame = ringraft_proto::encode_response_frame(&ringraft_proto::ResponseFrame {
        id: 1,
        response: response.clone(),
    });
    match (frame, response) {
        (Ok(frame), _) => frame.len().to_string(),
        (Err(_), Response::Ring { ring, .. }) => {
            format!("too large for a frame (ring alone {} B)", ring.len())
        }
        (Err(err), _) => format!("no frame: {err}"),
    }
}

fn run(members: u64, reps: usize) {
    let started = Instant::now();
    let initial = (1..=members).map(member).collect();
    let base = ReplicatedState::bootstrap(initial, 3, Retention::default())
        .unwrap_or_else(|err| panic!("bootstrap: {err}"));
    eprintln!(
        "{members} members built in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut state = base.clone();
    let mut journal = MembershipJournal::new(state.epoch(), state.ring().epoch());
    let mut view = MembershipView::of(&state, journal.clone());
    for change in [Change::Join, Change::Remove, Change::Down, Change::Active] {
        // Each kind starts from the bootstrapped state, whose registers have no transition
        // pending (marking active follows marking down).
        if !matches!(change, Change::Active) {
            state = base.clone();
            journal = MembershipJournal::new(state.epoch(), state.ring().epoch());
            view = MembershipView::of(&state, journal.clone());
        }
        let mut row = Row {
            apply: Vec::new(),
            incremental: Vec::new(),
            rebuilt: Vec::new(),
            delta_answer: Vec::new(),
            whole_answer: Vec::new(),
            delta_bytes: String::new(),
            whole_bytes: String::new(),
        };
        for rep in 0..reps as u64 {
            let id = match change {
                Change::Join => 1_000_000 + rep,
                Change::Remove => members - rep,
                Change::Down | Change::Active => 1 + rep,
            };
            let index = state.applied_index() + 1;
            let entry = change.entry(index, id);
            let at = Instant::now();
            let applied = state.apply(&entry);
            row.apply.push(at.elapsed());
            let Applied::MembershipChanged { index, touched } = applied else {
                panic!("{} of {id} changed no membership", change.name());
            };
            let before = view.clone();
            let at = Instant::now();
            journal.record(index, state.ring().epoch(), &touched);
            assert!(view.catch_up(&state, &journal), "catch-up");
            row.incremental.push(at.elapsed());
            let at = Instant::now();
            let rebuilt = MembershipView::of(&state, journal.clone());
            let whole_bytes = rebuilt.ring_bytes().len();
            row.rebuilt.push(at.elapsed());
            assert!(whole_bytes > 0);
            let at = Instant::now();
            let delta = view.ring_since(before.epoch);
            row.delta_answer.push(at.elapsed());
            assert!(matches!(delta, Response::RingDelta { .. }), "a delta");
            let at = Instant::now();
            let whole = view.ring_response();
            row.whole_answer.push(at.elapsed());
            row.delta_bytes = answer_bytes(&delta);
            row.whole_bytes = answer_bytes(&whole);
        }
        let (incremental, rebuilt) = (median(row.incremental), median(row.rebuilt));
        // The first change of a kind starts a transition of the registers' acceptor sets (the
        // later ones find it pending: no handoff completes here), which costs O(ring).
        let first_apply = row.apply[0];
        println!(
            "| {members} | {} | {} | {} | {} | {} | {:.0}× | {} / {} | {} / {} |",
            change.name(),
            show(first_apply),
            show(median(row.apply)),
            show(incremental),
            show(rebuilt),
            rebuilt.as_secs_f64() / incremental.as_secs_f64().max(1e-9),
            show(median(row.delta_answer)),
            show(median(row.whole_answer)),
            row.delta_bytes,
            row.whole_bytes,
        );
    }
}

fn main() {
    let mut members = vec![100, 1_000, 10_000];
    let mut reps = 9;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--members" => {
                members = args
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .map(|n| n.parse().expect("--members takes numbers, comma-separated"))
                    .collect();
            }
            "--reps" => {
                reps = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--reps takes a number");
            }
            // cargo bench passes --bench.
            _ => {}
        }
    }
    println!(
        "| members | change | apply, first | apply, median | view, incremental | view, rebuilt | rebuilt / incremental | answer: delta / whole ring | answer bytes: delta / whole |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for n in members {
        run(n, reps);
    }
}
