//! The registers' checker: reads the `kv_get` / `kv_cas` ops of a history (src/kv_workload.rs
//! writes them) and reports what they violate. Pure, like `checker`; `ringraft-campaign check
//! FILE` runs both.
//!
//! The workload it judges increments counters: read `(value, version)`, then
//! `cas(key, version, "<count + 1> <tag>")`, the tag unique in the history; it never deletes, so
//! a key's versions only grow and each write that takes effect adds one to both the version and
//! the count. A write answered `ok` is acknowledged; a `fail` (a conflict, a refusal) did not
//! take effect; an `unknown` one (a timeout, a lost answer) may or may not have. Final reads are
//! the `kv_get`s of [`FINAL_READ_CLIENT`], made after the calm phase on every node.
//!
//! Per key (each kind of violation is one [`Kind`]):
//! - (a) the count of the final value is at least the acknowledged increments (`CounterLow`) and
//!   at most acknowledged + unknown (`CounterHigh`);
//! - (b) every acknowledged write's version is at most the final version (`Lost`); every final
//!   read on every node answered (`NoFinalRead`) and they all agree (`FinalDisagreement`);
//! - (c) linearizability through the versions, which order each key's writes:
//!   - an acknowledged write answered version `e + 1` for expected version `e`, and a conflict
//!     names a version other than the expected one (`BadVersion`);
//!   - one winner per version: no two acknowledged writes, and no write and a read, give one
//!     version two values (`TwoWinners`);
//!   - a read returns what some write of this key produced, with that write's version, a write
//!     that did not fail and that had been invoked before the read completed; or absent at
//!     version 0 (`PhantomRead`);
//!   - real time: an op that completed before another was invoked observed a version at most the
//!     later op's, and strictly below the version an acknowledged later write made
//!     (`StaleRead`);
//! - the history itself is sound: values parse, tags are unique (`HistoryError`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::checker::{Counts, PrefixMax};
use crate::history::{Call, History, Op, Outcome};

/// The client id of the final reads in the history.
pub const FINAL_READ_CLIENT: u32 = 1100;
/// The status a kv_cas `fail` has when the version did not match.
pub const CONFLICT: &str = "conflict";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    CounterLow,
    CounterHigh,
    Lost,
    NoFinalRead,
    FinalDisagreement,
    BadVersion,
    TwoWinners,
    PhantomRead,
    StaleRead,
    HistoryError,
}

impl Kind {
    pub const ALL: [Kind; 10] = [
        Kind::CounterLow,
        Kind::CounterHigh,
        Kind::Lost,
        Kind::NoFinalRead,
        Kind::FinalDisagreement,
        Kind::BadVersion,
        Kind::TwoWinners,
        Kind::PhantomRead,
        Kind::StaleRead,
        Kind::HistoryError,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::CounterLow => "kv_counter_low",
            Kind::CounterHigh => "kv_counter_high",
            Kind::Lost => "kv_lost",
            Kind::NoFinalRead => "kv_no_final_read",
            Kind::FinalDisagreement => "kv_final_disagreement",
            Kind::BadVersion => "kv_bad_version",
            Kind::TwoWinners => "kv_two_winners",
            Kind::PhantomRead => "kv_phantom_read",
            Kind::StaleRead => "kv_stale_read",
            Kind::HistoryError => "kv_history_errors",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub kind: Kind,
    pub key: String,
    pub detail: String,
}

/// One key's final state beside what the history says it should be.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyTally {
    pub final_count: u64,
    pub final_version: u64,
    pub acked: u64,
    pub unknown: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Keys with at least one register op.
    pub keys: u64,
    pub gets: Counts,
    pub cas: Counts,
    /// kv_cas ops that failed with a conflict (counted in `cas.failed` too).
    pub conflicts: u64,
    pub final_reads: u64,
    /// Per key with a final value.
    pub tallies: BTreeMap<String, KeyTally>,
    pub violations: Vec<Violation>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    pub fn count(&self, kind: Kind) -> usize {
        self.violations.iter().filter(|v| v.kind == kind).count()
    }

    pub fn kinds(&self) -> std::collections::BTreeSet<Kind> {
        self.violations.iter().map(|v| v.kind).collect()
    }

    /// The registers' part of a run's summary line.
    pub fn summary_line(&self) -> String {
        let acked: u64 = self.tallies.values().map(|t| t.acked).sum();
        let counted: u64 = self.tallies.values().map(|t| t.final_count).sum();
        let mut line = format!(
            "registers keys={} gets(attempted/ok/failed/unknown)={}/{}/{}/{} \
             cas={}/{}/{}/{} conflicts={} final_reads={} increments(acked/final)={acked}/{counted}",
            self.keys,
            self.gets.attempted,
            self.gets.ok,
            self.gets.failed,
            self.gets.unknown,
            self.cas.attempted,
            self.cas.ok,
            self.cas.failed,
            self.cas.unknown,
            self.conflicts,
            self.final_reads,
        );
        for kind in Kind::ALL {
            let _ = write!(line, " {}={}", kind.name(), self.count(kind));
        }
        let _ = write!(
            line,
            " verdict={}",
            if self.passed() { "PASS" } else { "FAIL" }
        );
        line
    }

    /// Every violation, one per line (at most `limit`).
    pub fn details(&self, limit: usize) -> String {
        let mut out = String::new();
        for v in self.violations.iter().take(limit) {
            let _ = writeln!(out, "  {} {}: {}", v.kind.name(), v.key, v.detail);
        }
        if self.violations.len() > limit {
            let _ = writeln!(out, "  ... {} more", self.violations.len() - limit);
        }
        out
    }
}

/// `"<count> <tag>"` as the workload writes it.
pub fn parse_value(value: &str) -> Option<(u64, &str)> {
    let (count, tag) = value.split_once(' ')?;
    if tag.is_empty() {
        return None;
    }
    Some((count.parse().ok()?, tag))
}

/// What one op observed of its key's register: a version, and the tag of the value if it saw
/// one.
#[derive(Debug, Clone, Copy)]
enum Seen<'h> {
    /// kv_get: (value's tag or absent, version).
    Read(Option<&'h str>, u64),
    /// kv_cas acknowledged: the version it made.
    Wrote(u64),
    /// kv_cas conflict: the version then.
    Conflict(u64),
}

impl Seen<'_> {
    fn version(self) -> u64 {
        match self {
            Seen::Read(_, v) | Seen::Wrote(v) | Seen::Conflict(v) => v,
        }
    }
}

/// A kv_cas op of the history.
struct Write<'h> {
    op: &'h Op,
    key: &'h str,
    expected: u64,
}

struct Checker<'h> {
    violations: Vec<Violation>,
    /// tag -> the write that wrote it.
    writes: BTreeMap<&'h str, Write<'h>>,
}

impl Checker<'_> {
    fn flag(&mut self, kind: Kind, key: &str, detail: String) {
        self.violations.push(Violation {
            kind,
            key: key.to_string(),
            detail,
        });
    }
}

fn op_text(op: &Op) -> String {
    let times = format!(
        "n{} c{} [{}us..{}us]",
        op.node, op.client, op.invoke_us, op.complete_us
    );
    match (&op.call, &op.outcome) {
        (Call::KvGet { .. }, Outcome::Ok(answer)) => format!(
            "op {} get -> {:?} v{} ({times})",
            op.id,
            answer.value,
            answer.version.unwrap_or(0)
        ),
        (
            Call::KvCas {
                expected_version,
                value,
                ..
            },
            outcome,
        ) => {
            let result = match outcome {
                Outcome::Ok(answer) => format!("ok v{}", answer.version.unwrap_or(0)),
                Outcome::Fail {
                    status,
                    current_version: Some(current),
                    ..
                } => format!("{status} (current v{current})"),
                Outcome::Fail { status, .. } => status.clone(),
                Outcome::Unknown { .. } => "unknown".to_string(),
            };
            format!(
                "op {} cas(expect v{expected_version}, {value:?}) -> {result} ({times})",
                op.id
            )
        }
        (call, outcome) => format!("op {} {} -> {outcome:?} ({times})", op.id, call.kind()),
    }
}

pub fn check(history: &History) -> Report {
    let mut report = Report::default();
    let mut checker = Checker {
        violations: Vec::new(),
        writes: BTreeMap::new(),
    };
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in &history.ops {
        match &op.call {
            Call::KvGet { key } => {
                report.gets.add(&op.outcome);
                if op.client == FINAL_READ_CLIENT {
                    report.final_reads += 1;
                }
                by_key.entry(key).or_default().push(op);
            }
            Call::KvCas {
                key,
                expected_version,
                value,
            } => {
                report.cas.add(&op.outcome);
                if matches!(&op.outcome, Outcome::Fail { status, .. } if status == CONFLICT) {
                    report.conflicts += 1;
                }
                by_key.entry(key).or_default().push(op);
                let write = Write {
                    op,
                    key,
                    expected: *expected_version,
                };
                match parse_value(value) {
                    None => checker.flag(
                        Kind::HistoryError,
                        key,
                        format!(
                            "{}: the value does not parse as \"<count> <tag>\"",
                            op_text(op)
                        ),
                    ),
                    Some((_, tag)) => {
                        if let Some(first) = checker.writes.insert(tag, write) {
                            checker.flag(
                                Kind::HistoryError,
                                key,
                                format!(
                                    "tag {tag:?} written twice (op {} and op {})",
                                    first.op.id, op.id
                                ),
                            );
                        }
                    }
                }
            }
            _ => {}
        }
    }
    report.keys = by_key.len() as u64;
    for (key, ops) in &by_key {
        checker.key(key, ops, &mut report);
    }
    report.violations = checker.violations;
    report
}

impl<'h> Checker<'h> {
    fn key(&mut self, key: &str, ops: &[&'h Op], report: &mut Report) {
        let mut seen: Vec<(&'h Op, Seen<'h>)> = Vec::new();
        let mut acked = 0;
        let mut unknown = 0;
        for op in ops {
            match (&op.call, &op.outcome) {
                (Call::KvGet { .. }, Outcome::Ok(answer)) => {
                    let version = answer.version.unwrap_or(0);
                    let tag = match answer.value.as_deref() {
                        None => None,
                        Some(value) => match parse_value(value) {
                            Some((_, tag)) => Some(tag),
                            None => {
                                self.flag(
                                    Kind::PhantomRead,
                                    key,
                                    format!("{}: no write wrote this value", op_text(op)),
                                );
                                continue;
                            }
                        },
                    };
                    seen.push((op, Seen::Read(tag, version)));
                }
                (
                    Call::KvCas {
                        expected_version, ..
                    },
                    Outcome::Ok(answer),
                ) => {
                    acked += 1;
                    let version = answer.version.unwrap_or(0);
                    if version != expected_version.saturating_add(1) {
                        self.flag(
                            Kind::BadVersion,
                            key,
                            format!(
                                "{}: a write expecting v{expected_version} must make v{}",
                                op_text(op),
                                expected_version.saturating_add(1)
                            ),
                        );
                    }
                    seen.push((op, Seen::Wrote(version)));
                }
                (
                    Call::KvCas {
                        expected_version, ..
                    },
                    Outcome::Fail {
                        status,
                        current_version,
                        ..
                    },
                ) if status == CONFLICT => match current_version {
                    Some(current) if current == expected_version => self.flag(
                        Kind::BadVersion,
                        key,
                        format!(
                            "{}: a conflict that names the expected version",
                            op_text(op)
                        ),
                    ),
                    Some(current) => seen.push((op, Seen::Conflict(*current))),
                    None => self.flag(
                        Kind::HistoryError,
                        key,
                        format!("{}: a conflict without the current version", op_text(op)),
                    ),
                },
                (Call::KvCas { .. }, Outcome::Unknown { .. }) => unknown += 1,
                _ => {}
            }
        }
        self.winners(key, &seen);
        self.produced(key, &seen);
        self.real_time(key, &seen);
        self.finals(key, ops, acked, unknown, &seen, report);
    }

    /// One value per version: acknowledged writes (their tag) and reads (what they saw).
    fn winners(&mut self, key: &str, seen: &[(&'h Op, Seen<'h>)]) {
        let mut by_version: BTreeMap<u64, (&'h str, &'h Op)> = BTreeMap::new();
        for (op, what) in seen {
            let tag = match (what, &op.call) {
                (Seen::Read(Some(tag), _), _) => *tag,
                (Seen::Wrote(_), Call::KvCas { value, .. }) => match parse_value(value) {
                    Some((_, tag)) => tag,
                    None => continue,
                },
                _ => continue,
            };
            let version = what.version();
            match by_version.get(&version) {
                None => {
                    by_version.insert(version, (tag, op));
                }
                Some((other, first)) if *other != tag => {
                    let detail = format!(
                        "v{version} has two values: {} and {}",
                        op_text(first),
                        op_text(op)
                    );
                    self.flag(Kind::TwoWinners, key, detail);
                }
                Some(_) => {}
            }
        }
    }

    /// Every value read was written by a write of this key, at its version, not a failed one,
    /// and not one invoked after the read completed; absent only at version 0.
    fn produced(&mut self, key: &str, seen: &[(&'h Op, Seen<'h>)]) {
        for (op, what) in seen {
            let Seen::Read(tag, version) = *what else {
                continue;
            };
            let Some(tag) = tag else {
                if version != 0 {
                    self.flag(
                        Kind::PhantomRead,
                        key,
                        format!("{}: absent at a version", op_text(op)),
                    );
                }
                continue;
            };
            let problem = match self.writes.get(tag) {
                None => Some("no write wrote this value".to_string()),
                Some(write) if write.key != key => Some(format!(
                    "the value was written to {:?} (op {})",
                    write.key, write.op.id
                )),
                Some(write) if write.expected.saturating_add(1) != version => Some(format!(
                    "{} wrote it expecting v{}: it cannot be v{version}",
                    op_text(write.op),
                    write.expected
                )),
                Some(write) if matches!(write.op.outcome, Outcome::Fail { .. }) => Some(format!(
                    "{} failed: it must not take effect",
                    op_text(write.op)
                )),
                Some(write) if write.op.invoke_us > op.complete_us => Some(format!(
                    "{} was invoked after the read completed",
                    op_text(write.op)
                )),
                Some(_) => None,
            };
            if let Some(problem) = problem {
                self.flag(
                    Kind::PhantomRead,
                    key,
                    format!("{}: {problem}", op_text(op)),
                );
            }
        }
    }

    /// An op sees at least every version observed by an op that completed before it began (an
    /// acknowledged write makes a version above it).
    fn real_time(&mut self, key: &str, seen: &[(&'h Op, Seen<'h>)]) {
        let observations = seen
            .iter()
            .map(|(op, what)| (op.complete_us, what.version(), op.id))
            .collect();
        let before = PrefixMax::new(observations);
        let by_id: BTreeMap<u64, &Op> = seen.iter().map(|(op, _)| (op.id, *op)).collect();
        for (op, what) in seen {
            let Some((bound, by)) = before.before(op.invoke_us) else {
                continue;
            };
            let version = what.version();
            let stale = match what {
                Seen::Wrote(_) => version <= bound,
                _ => version < bound,
            };
            if stale {
                let earlier = by_id
                    .get(&by)
                    .map_or_else(|| format!("op {by}"), |o| op_text(o));
                self.flag(
                    Kind::StaleRead,
                    key,
                    format!(
                        "{} began after {earlier} had completed with v{bound}",
                        op_text(op)
                    ),
                );
            }
        }
    }

    /// The final reads: every one answered, all agree; the counter and the acknowledged writes
    /// against the final value.
    fn finals(
        &mut self,
        key: &str,
        ops: &[&'h Op],
        acked: u64,
        unknown: u64,
        seen: &[(&'h Op, Seen<'h>)],
        report: &mut Report,
    ) {
        let finals: Vec<&'h Op> = ops
            .iter()
            .copied()
            .filter(|op| op.client == FINAL_READ_CLIENT && matches!(op.call, Call::KvGet { .. }))
            .collect();
        let mut answered: BTreeMap<u64, &'h Op> = BTreeMap::new();
        let mut asked: BTreeMap<u64, &'h Op> = BTreeMap::new();
        for op in &finals {
            asked.insert(op.node, op);
            if matches!(op.outcome, Outcome::Ok(_)) {
                answered.insert(op.node, op);
            }
        }
        for (node, op) in &asked {
            if !answered.contains_key(node) {
                self.flag(
                    Kind::NoFinalRead,
                    key,
                    format!("n{node} never answered: {}", op_text(op)),
                );
            }
        }
        if asked.is_empty() {
            self.flag(
                Kind::NoFinalRead,
                key,
                "no final read of the key".to_string(),
            );
            return;
        }
        let values: Vec<(Option<&str>, u64, &Op)> = answered
            .values()
            .map(|op| {
                let answer = match &op.outcome {
                    Outcome::Ok(answer) => answer,
                    _ => unreachable!("answered holds ok ops"),
                };
                (answer.value.as_deref(), answer.version.unwrap_or(0), *op)
            })
            .collect();
        let Some((value, version, first)) = values.first().copied() else {
            return;
        };
        for (other_value, other_version, op) in &values[1..] {
            if (*other_value, *other_version) != (value, version) {
                self.flag(
                    Kind::FinalDisagreement,
                    key,
                    format!("{} but {}", op_text(first), op_text(op)),
                );
            }
        }
        let count = match value {
            None => 0,
            Some(value) => match parse_value(value) {
                Some((count, _)) => count,
                None => return, // flagged as a phantom read
            },
        };
        report.tallies.insert(
            key.to_string(),
            KeyTally {
                final_count: count,
                final_version: version,
                acked,
                unknown,
            },
        );
        if count < acked {
            self.flag(
                Kind::CounterLow,
                key,
                format!(
                    "final count {count} < {acked} acknowledged increments ({})",
                    op_text(first)
                ),
            );
        }
        if count > acked + unknown {
            self.flag(
                Kind::CounterHigh,
                key,
                format!(
                    "final count {count} > {acked} acknowledged + {unknown} unknown increments ({})",
                    op_text(first)
                ),
            );
        }
        for (op, what) in seen {
            if let Seen::Wrote(written) = what {
                if *written > version {
                    self.flag(
                        Kind::Lost,
                        key,
                        format!("{} is above the final v{version}", op_text(op)),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Answer, Meta, FORMAT};

    /// Builds histories op by op.
    struct Builder {
        history: History,
        next_tag: u64,
    }

    fn ok_read(value: Option<&str>, version: u64) -> Outcome {
        Outcome::Ok(Answer {
            version: Some(version),
            value: value.map(str::to_string),
            epoch: Some(1),
            ..Answer::default()
        })
    }

    impl Builder {
        fn new() -> Builder {
            Builder {
                history: History {
                    meta: Meta {
                        format: FORMAT.to_string(),
                        ..Meta::default()
                    },
                    ..History::default()
                },
                next_tag: 0,
            }
        }

        fn op(&mut self, client: u32, node: u64, at: (u64, u64), call: Call, outcome: Outcome) {
            let id = self.history.ops.len() as u64 + 1;
            self.history.ops.push(Op {
                id,
                client,
                node,
                invoke_us: at.0,
                complete_us: at.1,
                call,
                outcome,
            });
        }

        fn get(
            &mut self,
            client: u32,
            at: (u64, u64),
            key: &str,
            value: Option<&str>,
            version: u64,
        ) {
            let call = Call::KvGet { key: key.into() };
            self.op(client, 1, at, call, ok_read(value, version));
        }

        /// A cas writing `count`; returns the value it wrote.
        fn cas(
            &mut self,
            client: u32,
            at: (u64, u64),
            key: &str,
            expected: u64,
            count: u64,
            outcome: Outcome,
        ) -> String {
            self.next_tag += 1;
            let value = format!("{count} c{client}.{}", self.next_tag);
            let call = Call::KvCas {
                key: key.into(),
                expected_version: expected,
                value: value.clone(),
            };
            self.op(client, 1, at, call, outcome);
            value
        }

        fn final_reads(&mut self, at: u64, key: &str, value: Option<&str>, version: u64) {
            for node in 1..=3 {
                let call = Call::KvGet { key: key.into() };
                let t = at + node * 10;
                self.op(
                    FINAL_READ_CLIENT,
                    node,
                    (t, t + 5),
                    call,
                    ok_read(value, version),
                );
            }
        }
    }

    fn written(version: u64) -> Outcome {
        Outcome::Ok(Answer {
            version: Some(version),
            epoch: Some(1),
            ..Answer::default()
        })
    }

    fn conflict(current: u64) -> Outcome {
        Outcome::Fail {
            status: CONFLICT.into(),
            message: "version mismatch".into(),
            current_version: Some(current),
        }
    }

    fn unknown() -> Outcome {
        Outcome::Unknown {
            reason: "timeout: the outcome is unknown".into(),
        }
    }

    /// Two clients increment "hot" (one conflict, one unknown that took effect), one client its
    /// own cold key (one unknown that did not take effect); final reads agree.
    fn sound() -> (Builder, String) {
        let mut b = Builder::new();
        b.get(1, (0, 10), "hot", None, 0);
        b.get(2, (1, 11), "hot", None, 0);
        let v1 = b.cas(1, (20, 30), "hot", 0, 1, written(1));
        b.cas(2, (21, 31), "hot", 0, 1, conflict(1));
        b.get(2, (40, 50), "hot", Some(&v1), 1);
        let v2 = b.cas(2, (60, 70), "hot", 1, 2, unknown());
        b.get(1, (80, 90), "hot", Some(&v2), 2);
        let v3 = b.cas(1, (100, 110), "hot", 2, 3, written(3));
        b.get(3, (0, 5), "cold-3", None, 0);
        let c1 = b.cas(3, (10, 20), "cold-3", 0, 1, written(1));
        b.cas(3, (30, 40), "cold-3", 1, 2, unknown());
        b.get(3, (50, 60), "cold-3", Some(&c1), 1);
        b.final_reads(1_000, "hot", Some(&v3), 3);
        b.final_reads(2_000, "cold-3", Some(&c1), 1);
        (b, v3)
    }

    fn kinds(b: &Builder) -> std::collections::BTreeSet<Kind> {
        check(&b.history).kinds()
    }

    #[track_caller]
    fn assert_rejected(b: &Builder, kind: Kind) {
        let report = check(&b.history);
        assert!(
            report.count(kind) > 0,
            "expected {}, got:\n{}",
            kind.name(),
            report.details(20)
        );
        assert!(report.summary_line().contains("verdict=FAIL"));
    }

    #[test]
    fn a_sound_history_passes() {
        let (b, _) = sound();
        let report = check(&b.history);
        assert!(report.passed(), "{}", report.details(20));
        assert_eq!(report.keys, 2);
        assert_eq!(report.conflicts, 1);
        assert_eq!(report.final_reads, 6);
        assert_eq!(
            report.tallies["hot"],
            KeyTally {
                final_count: 3,
                final_version: 3,
                acked: 2,
                unknown: 1
            }
        );
        assert_eq!(report.tallies["cold-3"].final_count, 1);
        assert!(
            report.summary_line().contains("verdict=PASS"),
            "{}",
            report.summary_line()
        );
    }

    #[test]
    fn a_lost_write_is_rejected() {
        // The final reads show v1: the acknowledged write of v3 is gone (and with it one of
        // the two acknowledged increments).
        let (mut b, _) = sound();
        b.history.ops.retain(|op| {
            !(op.client == FINAL_READ_CLIENT
                && matches!(&op.call, Call::KvGet { key } if key == "hot"))
        });
        let v1 = match &b.history.ops[2].call {
            Call::KvCas { value, .. } => value.clone(),
            _ => unreachable!(),
        };
        b.final_reads(1_000, "hot", Some(&v1), 1);
        assert_eq!(
            kinds(&b),
            [Kind::Lost, Kind::CounterLow, Kind::StaleRead]
                .into_iter()
                .collect()
        );
    }

    #[test]
    fn an_acknowledged_write_overwritten_at_its_own_version_is_rejected() {
        // The acknowledged v1 is gone, replaced by an unknown write that expected v0 too: the
        // counter and the final version look fine; the read of v1 shows the second winner.
        let mut b = Builder::new();
        b.cas(1, (0, 10), "k", 0, 1, written(1));
        let u = b.cas(2, (20, 30), "k", 0, 1, unknown());
        b.get(3, (40, 50), "k", Some(&u), 1);
        b.final_reads(1_000, "k", Some(&u), 1);
        assert_eq!(kinds(&b), [Kind::TwoWinners].into_iter().collect());
    }

    #[test]
    fn two_winners_of_one_version_are_rejected() {
        let mut b = Builder::new();
        b.get(1, (0, 10), "k", None, 0);
        b.get(2, (0, 10), "k", None, 0);
        b.cas(1, (20, 30), "k", 0, 1, written(1));
        let v = b.cas(2, (21, 31), "k", 0, 1, written(1));
        b.final_reads(1_000, "k", Some(&v), 1);
        assert_rejected(&b, Kind::TwoWinners);
        // And the counter saw one increment of the two acknowledged.
        assert_rejected(&b, Kind::CounterLow);
    }

    #[test]
    fn a_stale_read_after_a_newer_write_completed_is_rejected() {
        let (mut b, _) = sound();
        // Invoked after the write of v3 completed (110us), it sees v2.
        let v2 = match &b.history.ops[5].call {
            Call::KvCas { value, .. } => value.clone(),
            _ => unreachable!(),
        };
        b.get(2, (120, 130), "hot", Some(&v2), 2);
        assert_eq!(kinds(&b), [Kind::StaleRead].into_iter().collect());
        // A read that overlaps the write may see either.
        let (mut b, _) = sound();
        b.get(2, (105, 130), "hot", Some(&v2), 2);
        assert!(check(&b.history).passed());
    }

    #[test]
    fn a_write_that_claims_a_version_already_seen_is_stale() {
        let mut b = Builder::new();
        let v1 = b.cas(1, (0, 10), "k", 0, 1, written(1));
        b.get(2, (20, 30), "k", Some(&v1), 1);
        // Began after v1 was seen and still claims to have made v1.
        let v = b.cas(3, (40, 50), "k", 0, 1, written(1));
        b.final_reads(1_000, "k", Some(&v), 1);
        assert!(kinds(&b).contains(&Kind::StaleRead), "{:?}", kinds(&b));
    }

    #[test]
    fn a_counter_above_acked_plus_unknown_is_rejected() {
        // The final value claims 3 increments: 1 acknowledged, 1 unknown, 1 a definite failure
        // that took effect anyway.
        let mut b = Builder::new();
        b.cas(1, (0, 10), "k", 0, 1, written(1));
        let v2 = b.cas(1, (20, 30), "k", 1, 2, unknown());
        b.get(1, (40, 50), "k", Some(&v2), 2);
        let busy = Outcome::Fail {
            status: "busy".into(),
            message: "saturated".into(),
            current_version: None,
        };
        let v3 = b.cas(1, (60, 70), "k", 2, 3, busy);
        b.final_reads(1_000, "k", Some(&v3), 3);
        assert_eq!(
            kinds(&b),
            [Kind::CounterHigh, Kind::PhantomRead].into_iter().collect()
        );
        // A counter that grew by more than one in a write: only the count is wrong.
        let mut b = Builder::new();
        b.cas(1, (0, 10), "k", 0, 1, written(1));
        let v2 = b.cas(1, (20, 30), "k", 1, 3, written(2));
        b.final_reads(1_000, "k", Some(&v2), 2);
        assert_eq!(kinds(&b), [Kind::CounterHigh].into_iter().collect());
    }

    #[test]
    fn final_reads_that_disagree_or_are_missing_are_rejected() {
        let (mut b, v3) = sound();
        let last = b.history.ops.len() - 4; // n3's final read of "hot"
        b.history.ops[last].outcome = ok_read(Some(&v3), 4);
        assert!(
            kinds(&b).contains(&Kind::FinalDisagreement),
            "{:?}",
            kinds(&b)
        );
        let (mut b, _) = sound();
        b.history.ops[last].outcome = Outcome::Fail {
            status: "timeout".into(),
            message: "no quorum".into(),
            current_version: None,
        };
        assert_eq!(kinds(&b), [Kind::NoFinalRead].into_iter().collect());
        let (mut b, _) = sound();
        b.history.ops.retain(|op| op.client != FINAL_READ_CLIENT);
        assert_eq!(kinds(&b), [Kind::NoFinalRead].into_iter().collect());
    }

    #[test]
    fn reads_of_values_no_write_made_are_rejected() {
        // A value nobody wrote.
        let (mut b, _) = sound();
        b.get(2, (200, 210), "hot", Some("3 nobody.1"), 3);
        assert!(kinds(&b).contains(&Kind::PhantomRead), "{:?}", kinds(&b));
        // The right value at the wrong version.
        let (mut b, v3) = sound();
        b.get(2, (200, 210), "hot", Some(&v3), 7);
        assert!(kinds(&b).contains(&Kind::PhantomRead), "{:?}", kinds(&b));
        // Another key's value.
        let (mut b, v3) = sound();
        b.get(2, (200, 210), "cold-3", Some(&v3), 3);
        assert!(kinds(&b).contains(&Kind::PhantomRead), "{:?}", kinds(&b));
        // Absent at a version.
        let (mut b, _) = sound();
        b.get(2, (200, 210), "cold-3", None, 2);
        assert!(kinds(&b).contains(&Kind::PhantomRead), "{:?}", kinds(&b));
        // A value from the future: its write was invoked after the read completed.
        let (mut b, v3) = sound();
        b.get(2, (92, 95), "hot", Some(&v3), 3);
        assert!(kinds(&b).contains(&Kind::PhantomRead), "{:?}", kinds(&b));
    }

    #[test]
    fn bad_versions_are_rejected() {
        let mut b = Builder::new();
        let v = b.cas(1, (0, 10), "k", 0, 1, written(2));
        b.final_reads(1_000, "k", Some(&v), 2);
        assert!(kinds(&b).contains(&Kind::BadVersion), "{:?}", kinds(&b));
        let mut b = Builder::new();
        b.cas(1, (0, 10), "k", 0, 1, conflict(0));
        b.final_reads(1_000, "k", None, 0);
        assert_eq!(kinds(&b), [Kind::BadVersion].into_iter().collect());
    }

    #[test]
    fn values_that_do_not_parse_and_repeated_tags_are_history_errors() {
        assert_eq!(parse_value("12 c1.3"), Some((12, "c1.3")));
        assert_eq!(parse_value("12"), None);
        assert_eq!(parse_value("x c1.3"), None);
        assert_eq!(parse_value("12 "), None);
        let (mut b, _) = sound();
        let copy = b.history.ops[2].clone();
        b.history.ops.push(Op { id: 99, ..copy });
        assert!(kinds(&b).contains(&Kind::HistoryError), "{:?}", kinds(&b));
    }
}
