//! The checker: reads a whole history (every op, every fault, the final log of every node) and
//! reports what it violates. Pure: no processes, no clock; `ringraft-campaign check FILE` runs it
//! on a saved history.
//!
//! What it checks (each kind of violation is one `Kind`):
//! - the nodes' final logs agree: strictly increasing indexes, the same data at every index two
//!   nodes hold, no node lacking an index inside its own readable range that another holds
//!   (`Divergent`); no payload twice (`Duplicated`); no payload that was never proposed
//!   (`Phantom`);
//! - every acknowledged proposal is in the log at the index it was acknowledged with, on every
//!   node (`Lost`, or `Lagging` for a node whose log ends before it);
//! - a definite failure never commits (`FailedCommitted`); unknown outcomes are counted (and how
//!   many of them committed), never judged;
//! - a read of the log returns what the final log holds there, with nothing skipped (`BadRead`);
//! - a linearizable read sees everything that completed before it started: its applied index is
//!   at least every committed index observed by an op that completed before it was invoked, and
//!   its epoch at least every epoch observed so (`StaleRead`);
//! - owner and replicas answers agree for the same key and epoch, across nodes
//!   (`OwnerDisagreement`);
//! - each watcher's sessions (across restarts and reconnections) deliver every record of the
//!   final log from where it started, in order, without gap (`WatchGap`), repetition or reordering
//!   (`WatchOrder`), with the final log's data (`WatchMismatch`);
//! - every member's final log could be read (`Unreadable`); no node died by itself (an event
//!   `crash: ...`: an exit no fault explains) (`Crash`); a node whose storage the harness
//!   damaged recovered as docs/storage.md says (a torn tail: it comes up; a flipped bit: it stops
//!   naming the file and offset; else an event `storage: ...`) (`Storage`); after the final heal
//!   every node
//!   acknowledged a proposal within the harness's bound (an event `no_recovery: ...`)
//!   (`NoRecovery`); the history itself is sound (`HistoryError`: a payload proposed twice).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::history::{Answer, Call, History, Op, Outcome};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Lost,
    Duplicated,
    Divergent,
    Phantom,
    FailedCommitted,
    Lagging,
    BadRead,
    StaleRead,
    OwnerDisagreement,
    WatchGap,
    WatchOrder,
    WatchMismatch,
    Unreadable,
    Crash,
    Storage,
    NoRecovery,
    HistoryError,
}

impl Kind {
    pub const ALL: [Kind; 17] = [
        Kind::Lost,
        Kind::Duplicated,
        Kind::Divergent,
        Kind::Phantom,
        Kind::FailedCommitted,
        Kind::Lagging,
        Kind::BadRead,
        Kind::StaleRead,
        Kind::OwnerDisagreement,
        Kind::WatchGap,
        Kind::WatchOrder,
        Kind::WatchMismatch,
        Kind::Unreadable,
        Kind::Crash,
        Kind::Storage,
        Kind::NoRecovery,
        Kind::HistoryError,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Lost => "lost",
            Kind::Duplicated => "duplicated",
            Kind::Divergent => "divergent",
            Kind::Phantom => "phantom",
            Kind::FailedCommitted => "failed_committed",
            Kind::Lagging => "lagging",
            Kind::BadRead => "bad_reads",
            Kind::StaleRead => "stale_reads",
            Kind::OwnerDisagreement => "owner_disagreements",
            Kind::WatchGap => "watch_gaps",
            Kind::WatchOrder => "watch_order",
            Kind::WatchMismatch => "watch_mismatch",
            Kind::Unreadable => "unreadable",
            Kind::Crash => "crashes",
            Kind::Storage => "storage_recovery",
            Kind::NoRecovery => "no_recovery",
            Kind::HistoryError => "history_errors",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub kind: Kind,
    pub detail: String,
}

/// Attempted / acknowledged / failed / unknown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub attempted: u64,
    pub ok: u64,
    pub failed: u64,
    pub unknown: u64,
}

impl Counts {
    pub(crate) fn add(&mut self, outcome: &Outcome) {
        self.attempted += 1;
        match outcome {
            Outcome::Ok(_) => self.ok += 1,
            Outcome::Fail { .. } => self.failed += 1,
            Outcome::Unknown { .. } => self.unknown += 1,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub seed: u64,
    pub nodes: u64,
    pub duration_s: u64,
    /// Faults injected, by kind.
    pub faults: BTreeMap<String, u64>,
    pub ops: Counts,
    pub proposals: Counts,
    /// Proposals whose outcome was unknown and that are in the final log.
    pub unknown_committed: u64,
    pub lin_reads: u64,
    pub watch_records: u64,
    /// Records in the agreed final log.
    pub committed_records: u64,
    /// The longest stretch with no acknowledged proposal while no fault was active, in µs.
    pub recovery_us: u64,
    pub violations: Vec<Violation>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    pub fn count(&self, kind: Kind) -> usize {
        self.violations.iter().filter(|v| v.kind == kind).count()
    }

    pub fn kinds(&self) -> BTreeSet<Kind> {
        self.violations.iter().map(|v| v.kind).collect()
    }

    /// The one summary line of a run.
    pub fn summary_line(&self) -> String {
        let mut faults = String::new();
        for (kind, n) in &self.faults {
            if !faults.is_empty() {
                faults.push(',');
            }
            let _ = write!(faults, "{kind}:{n}");
        }
        let mut line = format!(
            "campaign seed={} nodes={} duration={}s faults={{{faults}}} \
             ops(attempted/acked/failed/unknown)={}/{}/{}/{} \
             proposals={}/{}/{}/{} unknown_committed={} lin_reads={} watch_records={} \
             committed={}",
            self.seed,
            self.nodes,
            self.duration_s,
            self.ops.attempted,
            self.ops.ok,
            self.ops.failed,
            self.ops.unknown,
            self.proposals.attempted,
            self.proposals.ok,
            self.proposals.failed,
            self.proposals.unknown,
            self.unknown_committed,
            self.lin_reads,
            self.watch_records,
            self.committed_records,
        );
        for kind in Kind::ALL {
            let _ = write!(line, " {}={}", kind.name(), self.count(kind));
        }
        let _ = write!(
            line,
            " recovery={}ms verdict={}",
            self.recovery_us / 1000,
            if self.passed() { "PASS" } else { "FAIL" }
        );
        line
    }

    /// Every violation, one per line (at most `limit`).
    pub fn details(&self, limit: usize) -> String {
        let mut out = String::new();
        for v in self.violations.iter().take(limit) {
            let _ = writeln!(out, "  {}: {}", v.kind.name(), v.detail);
        }
        if self.violations.len() > limit {
            let _ = writeln!(out, "  ... {} more", self.violations.len() - limit);
        }
        out
    }
}

struct Checker<'h> {
    history: &'h History,
    violations: Vec<Violation>,
}

impl Checker<'_> {
    fn flag(&mut self, kind: Kind, detail: String) {
        self.violations.push(Violation { kind, detail });
    }
}

/// The agreed log: index -> data, built from every readable final log.
struct Reference {
    records: BTreeMap<u64, String>,
    /// payload -> the indexes it is at.
    positions: BTreeMap<String, BTreeSet<u64>>,
    /// (first_index, last_index) of each readable node log.
    ranges: BTreeMap<u64, (u64, u64)>,
}

impl Reference {
    /// Whether some node's final log covers `index` (it would hold a record there if one
    /// committed).
    fn covered(&self, index: u64) -> bool {
        self.ranges
            .values()
            .any(|(first, last)| *first <= index && index <= *last)
    }

    /// The agreed indexes in `from..=to`.
    fn indexes_in(&self, from: u64, to: u64) -> impl Iterator<Item = u64> + '_ {
        self.records
            .range(from..=to.max(from))
            .map(|(i, _)| *i)
            .filter(move |i| *i <= to)
    }
}

pub fn check(history: &History) -> Report {
    let mut checker = Checker {
        history,
        violations: Vec::new(),
    };
    let mut report = Report {
        seed: history.meta.seed,
        nodes: history.meta.nodes,
        duration_s: history.meta.duration_s,
        ..Report::default()
    };
    for fault in &history.faults {
        *report.faults.entry(fault.kind.clone()).or_default() += 1;
    }
    for op in &history.ops {
        report.ops.add(&op.outcome);
        match &op.call {
            Call::Propose { .. } => report.proposals.add(&op.outcome),
            Call::LinRead { .. } => report.lin_reads += 1,
            Call::Watch { .. } => {
                if let Outcome::Ok(answer) = &op.outcome {
                    report.watch_records += answer.records.as_ref().map_or(0, |r| r.len() as u64);
                }
            }
            _ => {}
        }
    }
    let reference = checker.final_logs();
    report.committed_records = reference.records.len() as u64;
    report.unknown_committed = checker.proposals(&reference);
    checker.reads(&reference);
    checker.real_time();
    checker.owners();
    checker.watches(&reference);
    checker.events();
    report.recovery_us = recovery_us(history);
    report.violations = checker.violations;
    report
}

fn ok_answer(op: &Op) -> Option<&Answer> {
    match &op.outcome {
        Outcome::Ok(answer) => Some(answer),
        _ => None,
    }
}

impl Checker<'_> {
    fn final_logs(&mut self) -> Reference {
        let mut reference = Reference {
            records: BTreeMap::new(),
            positions: BTreeMap::new(),
            ranges: BTreeMap::new(),
        };
        // index -> data -> nodes holding it
        let mut held: BTreeMap<u64, BTreeMap<String, Vec<u64>>> = BTreeMap::new();
        let mut node_indexes: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
        for log in &self.history.final_logs {
            if let Some(error) = &log.error {
                self.flag(
                    Kind::Unreadable,
                    format!("n{}: final log not readable: {error}", log.node),
                );
                continue;
            }
            reference
                .ranges
                .insert(log.node, (log.first_index, log.last_index));
            let mut previous = 0;
            let indexes = node_indexes.entry(log.node).or_default();
            for record in &log.records {
                if record.0 <= previous {
                    self.flag(
                        Kind::Divergent,
                        format!(
                            "n{}: index {} follows index {previous} in its log",
                            log.node, record.0
                        ),
                    );
                }
                previous = previous.max(record.0);
                indexes.insert(record.0);
                held.entry(record.0)
                    .or_default()
                    .entry(record.1.clone())
                    .or_default()
                    .push(log.node);
            }
        }
        for (index, versions) in &held {
            if versions.len() > 1 {
                let described: Vec<String> = versions
                    .iter()
                    .map(|(data, nodes)| format!("{data:?} on {nodes:?}"))
                    .collect();
                self.flag(
                    Kind::Divergent,
                    format!("index {index}: {}", described.join(" vs ")),
                );
            }
            // The most widely held version stands for the index.
            let (data, _) = versions
                .iter()
                .max_by_key(|(_, nodes)| nodes.len())
                .expect("at least one version");
            reference.records.insert(*index, data.clone());
            reference
                .positions
                .entry(data.clone())
                .or_default()
                .insert(*index);
        }
        for (node, (first, last)) in reference.ranges.clone() {
            let Some(indexes) = node_indexes.get(&node) else {
                continue;
            };
            let missing: Vec<u64> = reference
                .indexes_in(first, last)
                .filter(|i| !indexes.contains(i))
                .collect();
            if !missing.is_empty() {
                self.flag(
                    Kind::Divergent,
                    format!(
                        "n{node} lacks {} record(s) other nodes hold within its range \
                         {first}..={last}, first at index {}",
                        missing.len(),
                        missing[0]
                    ),
                );
            }
        }
        for (payload, indexes) in &reference.positions {
            if indexes.len() > 1 {
                self.flag(
                    Kind::Duplicated,
                    format!("payload {payload:?} is in the log at indexes {indexes:?}"),
                );
            }
        }
        reference
    }

    /// Acknowledged, failed and unknown proposals against the log; returns how many unknown
    /// proposals committed.
    fn proposals(&mut self, reference: &Reference) -> u64 {
        let mut proposed: BTreeMap<&str, &Op> = BTreeMap::new();
        let mut unknown_committed = 0;
        for op in &self.history.ops {
            let Call::Propose { payload } = &op.call else {
                continue;
            };
            if let Some(earlier) = proposed.insert(payload.as_str(), op) {
                self.flag(
                    Kind::HistoryError,
                    format!(
                        "payload {payload:?} proposed twice (ops {} and {})",
                        earlier.id, op.id
                    ),
                );
            }
            let committed_at = reference.positions.get(payload.as_str());
            match &op.outcome {
                Outcome::Ok(answer) => {
                    let Some(index) = answer.index else {
                        self.flag(
                            Kind::HistoryError,
                            format!("op {}: acknowledged proposal without an index", op.id),
                        );
                        continue;
                    };
                    self.acknowledged(op, payload, index, reference);
                }
                Outcome::Fail { status, .. } => {
                    if let Some(indexes) = committed_at {
                        self.flag(
                            Kind::FailedCommitted,
                            format!(
                                "op {} (n{}): proposal {payload:?} failed with {status} but is \
                                 in the log at {indexes:?}",
                                op.id, op.node
                            ),
                        );
                    }
                }
                Outcome::Unknown { .. } => {
                    if committed_at.is_some() {
                        unknown_committed += 1;
                    }
                }
            }
        }
        for (payload, indexes) in &reference.positions {
            if !proposed.contains_key(payload.as_str()) {
                self.flag(
                    Kind::Phantom,
                    format!("payload {payload:?} at {indexes:?} was never proposed"),
                );
            }
        }
        unknown_committed
    }

    fn acknowledged(&mut self, op: &Op, payload: &str, index: u64, reference: &Reference) {
        match reference.records.get(&index) {
            Some(data) if data == payload => {}
            found => {
                if !reference.covered(index) {
                    // Compacted out of every node's window: nothing to compare with.
                    return;
                }
                let elsewhere = reference
                    .positions
                    .get(payload)
                    .map(|indexes| format!(", committed at {indexes:?} instead"))
                    .unwrap_or_else(|| ", in no node's log".to_string());
                let there = match found {
                    Some(data) => format!("index {index} holds {data:?}"),
                    None => format!("index {index} holds nothing"),
                };
                self.flag(
                    Kind::Lost,
                    format!(
                        "op {} (n{}): proposal {payload:?} acknowledged at index {index}; \
                         {there}{elsewhere}",
                        op.id, op.node
                    ),
                );
                return;
            }
        }
        for (node, (_, last)) in &reference.ranges {
            if index > *last {
                self.flag(
                    Kind::Lagging,
                    format!(
                        "n{node}: its log ends at {last}, before the acknowledged index {index} \
                         (op {})",
                        op.id
                    ),
                );
            }
        }
    }

    fn reads(&mut self, reference: &Reference) {
        for op in &self.history.ops {
            let Call::ReadLog { from, max } = &op.call else {
                continue;
            };
            let Some(answer) = ok_answer(op) else {
                continue;
            };
            let records = answer.records.clone().unwrap_or_default();
            let mut previous = 0;
            for record in &records {
                if record.0 < *from || record.0 <= previous {
                    self.flag(
                        Kind::BadRead,
                        format!(
                            "op {} (n{}): read from {from} returned index {} after {previous}",
                            op.id, op.node, record.0
                        ),
                    );
                }
                previous = record.0;
                match reference.records.get(&record.0) {
                    Some(data) if *data == record.1 => {}
                    Some(data) => self.flag(
                        Kind::BadRead,
                        format!(
                            "op {} (n{}): read {:?} at index {}, the log holds {data:?}",
                            op.id, op.node, record.1, record.0
                        ),
                    ),
                    None if reference.covered(record.0) => self.flag(
                        Kind::BadRead,
                        format!(
                            "op {} (n{}): read {:?} at index {}, which no final log holds",
                            op.id, op.node, record.1, record.0
                        ),
                    ),
                    None => {}
                }
            }
            // A short answer covers everything the node had applied; a full one up to its last.
            let upper = if records.len() < *max as usize {
                answer.applied.unwrap_or(previous)
            } else {
                previous
            };
            let returned: BTreeSet<u64> = records.iter().map(|r| r.0).collect();
            let skipped: Vec<u64> = reference
                .indexes_in(*from, upper)
                .filter(|i| !returned.contains(i))
                .collect();
            if !skipped.is_empty() {
                self.flag(
                    Kind::BadRead,
                    format!(
                        "op {} (n{}): read from {from} (applied {upper}) skipped {} committed \
                         record(s), first at index {}",
                        op.id,
                        op.node,
                        skipped.len(),
                        skipped[0]
                    ),
                );
            }
        }
    }

    /// Linearizable reads against everything that completed before they started.
    fn real_time(&mut self) {
        // (complete_us, observed value, op id): committed indexes and epochs seen.
        let mut committed: Vec<(u64, u64, u64)> = Vec::new();
        let mut epochs: Vec<(u64, u64, u64)> = Vec::new();
        for op in &self.history.ops {
            let Some(answer) = ok_answer(op) else {
                continue;
            };
            let at = op.complete_us;
            match &op.call {
                Call::Propose { .. } => {
                    if let Some(index) = answer.index {
                        committed.push((at, index, op.id));
                    }
                }
                Call::ReadLog { .. } | Call::LinRead { .. } => {
                    if let Some(applied) = answer.applied {
                        committed.push((at, applied, op.id));
                    }
                }
                Call::Watch { .. } => {
                    if let Some(last) = answer.records.as_ref().and_then(|r| r.last()) {
                        committed.push((at, last.0, op.id));
                    }
                }
                Call::Join { .. } | Call::Remove { .. } | Call::Promote { .. } => {
                    if let Some(index) = answer.index.filter(|i| *i > 0) {
                        committed.push((at, index, op.id));
                        epochs.push((at, index, op.id));
                    }
                }
                Call::Owner { .. } | Call::Replicas { .. } => {}
                // The registers' epochs are their acceptor sets' (src/kv_checker.rs checks them).
                Call::KvGet { .. } | Call::KvCas { .. } => continue,
            }
            if let Some(epoch) = answer.epoch {
                epochs.push((at, epoch, op.id));
            }
        }
        let committed = PrefixMax::new(committed);
        let epochs = PrefixMax::new(epochs);
        for op in &self.history.ops {
            let Some(answer) = ok_answer(op) else {
                continue;
            };
            let linearizable = match &op.call {
                Call::LinRead { .. } => true,
                Call::Owner { linearizable, .. } | Call::Replicas { linearizable, .. } => {
                    *linearizable
                }
                _ => false,
            };
            if !linearizable {
                continue;
            }
            if let (Some(applied), Some((bound, by))) =
                (answer.applied, committed.before(op.invoke_us))
            {
                if applied < bound {
                    self.flag(
                        Kind::StaleRead,
                        format!(
                            "op {} (n{}): linearizable read invoked at {}us saw applied index \
                             {applied}, but op {by} had completed with index {bound} before",
                            op.id, op.node, op.invoke_us
                        ),
                    );
                }
            }
            if let (Some(epoch), Some((bound, by))) = (answer.epoch, epochs.before(op.invoke_us)) {
                if epoch < bound {
                    self.flag(
                        Kind::StaleRead,
                        format!(
                            "op {} (n{}): linearizable read invoked at {}us saw epoch {epoch}, \
                             but op {by} had completed with epoch {bound} before",
                            op.id, op.node, op.invoke_us
                        ),
                    );
                }
            }
        }
    }

    fn owners(&mut self) {
        // (key, epoch) -> answer -> ops that gave it.
        let mut owners: BTreeMap<(&str, u64), Answers<u64>> = BTreeMap::new();
        let mut replicas: BTreeMap<(&str, u32, u64), Answers<Vec<u64>>> = BTreeMap::new();
        for op in &self.history.ops {
            let Some(answer) = ok_answer(op) else {
                continue;
            };
            let Some(epoch) = answer.epoch else {
                continue;
            };
            match &op.call {
                Call::Owner { key, .. } | Call::LinRead { key } => {
                    if let Some(owner) = answer.owner {
                        owners
                            .entry((key.as_str(), epoch))
                            .or_default()
                            .entry(owner)
                            .or_default()
                            .push(op.id);
                    }
                }
                Call::Replicas { key, n, .. } => {
                    if let Some(list) = &answer.replicas {
                        replicas
                            .entry((key.as_str(), *n, epoch))
                            .or_default()
                            .entry(list.clone())
                            .or_default()
                            .push(op.id);
                    }
                }
                _ => {}
            }
        }
        let mut found = Vec::new();
        for ((key, epoch), answers) in &owners {
            if answers.len() > 1 {
                let described: Vec<String> = answers
                    .iter()
                    .map(|(owner, ops)| format!("n{owner} (op {})", ops[0]))
                    .collect();
                found.push(format!(
                    "owner of {key:?} at epoch {epoch}: {}",
                    described.join(" vs ")
                ));
            }
        }
        for ((key, n, epoch), answers) in &replicas {
            if answers.len() > 1 {
                let described: Vec<String> = answers
                    .iter()
                    .map(|(list, ops)| format!("{list:?} (op {})", ops[0]))
                    .collect();
                found.push(format!(
                    "{n} replicas of {key:?} at epoch {epoch}: {}",
                    described.join(" vs ")
                ));
            }
        }
        for detail in found {
            self.flag(Kind::OwnerDisagreement, detail);
        }
    }

    fn watches(&mut self, reference: &Reference) {
        let mut watchers: BTreeMap<u32, Vec<(u32, u64, &Op)>> = BTreeMap::new();
        for op in &self.history.ops {
            if let Call::Watch {
                watcher,
                session,
                from,
            } = &op.call
            {
                watchers
                    .entry(*watcher)
                    .or_default()
                    .push((*session, *from, op));
            }
        }
        for (watcher, mut sessions) in watchers {
            sessions.sort_by_key(|(session, _, _)| *session);
            // The index the next session must start at: one past the last delivered.
            let mut expected: Option<u64> = None;
            let mut last_delivered = 0u64;
            for (session, from, op) in sessions {
                let Some(answer) = ok_answer(op) else {
                    continue;
                };
                if let Some(expected) = expected {
                    if from > expected {
                        let skipped: Vec<u64> = reference.indexes_in(expected, from - 1).collect();
                        if !skipped.is_empty() {
                            self.flag(
                                Kind::WatchGap,
                                format!(
                                    "watcher {watcher} session {session} started at {from}, \
                                     skipping {} record(s) from index {}",
                                    skipped.len(),
                                    skipped[0]
                                ),
                            );
                        }
                    }
                }
                let records = answer.records.clone().unwrap_or_default();
                let mut session_last = None;
                for record in &records {
                    if record.0 < from || record.0 <= last_delivered {
                        self.flag(
                            Kind::WatchOrder,
                            format!(
                                "watcher {watcher} session {session} (op {}, n{}, from {from}) \
                                 delivered index {} after index {last_delivered}",
                                op.id, op.node, record.0
                            ),
                        );
                    }
                    match reference.records.get(&record.0) {
                        Some(data) if *data == record.1 => {}
                        other => {
                            if other.is_some() || reference.covered(record.0) {
                                self.flag(
                                    Kind::WatchMismatch,
                                    format!(
                                        "watcher {watcher} session {session} (op {}, n{}) \
                                         delivered {:?} at index {}; the log holds {other:?}",
                                        op.id, op.node, record.1, record.0
                                    ),
                                );
                            }
                        }
                    }
                    last_delivered = last_delivered.max(record.0);
                    session_last = Some(record.0);
                }
                if let Some(last) = session_last {
                    let delivered: BTreeSet<u64> = records.iter().map(|r| r.0).collect();
                    let skipped: Vec<u64> = reference
                        .indexes_in(from, last)
                        .filter(|i| !delivered.contains(i))
                        .collect();
                    if !skipped.is_empty() {
                        self.flag(
                            Kind::WatchGap,
                            format!(
                                "watcher {watcher} session {session} (op {}, n{}) skipped {} \
                                 record(s), first at index {}",
                                op.id,
                                op.node,
                                skipped.len(),
                                skipped[0]
                            ),
                        );
                    }
                }
                expected = Some(if last_delivered > 0 {
                    last_delivered + 1
                } else {
                    from
                });
            }
        }
    }
}

impl Checker<'_> {
    /// What the harness saw and wrote down as an event: a node that died by itself, a cluster
    /// that did not serve again after the final heal.
    fn events(&mut self) {
        for event in &self.history.events {
            let kind = if event.what.starts_with("crash:") {
                Kind::Crash
            } else if event.what.starts_with("storage:") {
                Kind::Storage
            } else if event.what.starts_with("no_recovery:") {
                Kind::NoRecovery
            } else {
                continue;
            };
            let detail = format!("at {}us: {}", event.at_us, event.what);
            self.flag(kind, detail);
        }
    }
}

/// Distinct answers to one question, each with the ops that gave it.
type Answers<T> = BTreeMap<T, Vec<u64>>;

/// The largest value observed by an op that completed strictly before a given time.
pub(crate) struct PrefixMax {
    /// Sorted by completion time: (complete_us, running max value, op id of the max).
    points: Vec<(u64, u64, u64)>,
}

impl PrefixMax {
    pub(crate) fn new(mut observations: Vec<(u64, u64, u64)>) -> PrefixMax {
        observations.sort_unstable();
        let mut best = (0, 0);
        let points = observations
            .into_iter()
            .map(|(at, value, op)| {
                if value > best.0 {
                    best = (value, op);
                }
                (at, best.0, best.1)
            })
            .collect();
        PrefixMax { points }
    }

    /// (value, op id) of the largest observation completed before `time`.
    pub(crate) fn before(&self, time: u64) -> Option<(u64, u64)> {
        let count = self.points.partition_point(|(at, _, _)| *at < time);
        let (_, value, op) = *self.points.get(count.checked_sub(1)?)?;
        (value > 0).then_some((value, op))
    }
}

/// The longest stretch, in µs, with no acknowledged proposal while no fault was active (a
/// fault is active from injection to heal; membership changes count as faults).
pub fn recovery_us(history: &History) -> u64 {
    let mut acks: Vec<u64> = history
        .ops
        .iter()
        .filter(|op| matches!(op.call, Call::Propose { .. }) && ok_answer(op).is_some())
        .map(|op| op.complete_us)
        .collect();
    acks.sort_unstable();
    let end = if history.workload_end_us > 0 {
        history.workload_end_us
    } else {
        history
            .ops
            .iter()
            .map(|op| op.complete_us)
            .max()
            .unwrap_or(0)
    };
    let mut faults: Vec<(u64, u64)> = history
        .faults
        .iter()
        .map(|f| (f.start_us, f.end_us.max(f.start_us)))
        .collect();
    faults.sort_unstable();
    // Fault-free segments of [0, end].
    let mut segments = Vec::new();
    let mut cursor = 0u64;
    for (start, stop) in faults {
        if start > cursor {
            segments.push((cursor, start.min(end)));
        }
        cursor = cursor.max(stop);
    }
    if cursor < end {
        segments.push((cursor, end));
    }
    let mut longest = 0;
    for (start, stop) in segments {
        let mut previous = start;
        let from = acks.partition_point(|t| *t < start);
        for t in acks[from..].iter().take_while(|t| **t <= stop) {
            longest = longest.max(t - previous);
            previous = *t;
        }
        longest = longest.max(stop.saturating_sub(previous));
    }
    longest
}
