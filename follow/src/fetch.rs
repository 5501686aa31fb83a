//! The downstream side of a fetch session: an observer pulls committed entries from its
//! upstream, strictly in order, and moves between its candidates when they stop answering.
//!
//! Rules (each checked on every response before anything is applied):
//! - entries start at the index asked from (`applied + 1`) and are contiguous;
//! - no entry is above the commit index the same response states;
//! - terms never go down;
//! - at most `max_bytes` of entries, except a single entry (a large one must still pass);
//! - the response answers the request in flight, from the member it was sent to.
//!
//! A response breaking one is refused and counted, and nothing of it is applied. The observer asks
//! again at once; after a second failure in a row from the same upstream (a refusal, or no answer
//! within `upstream_timeout_ticks`) it moves on to its next candidate, and the probe brings it
//! back to its primary later. One lost or corrupted message does not move it.

use std::sync::Arc;

use crate::config::Config;
use crate::messages::{Message, RequestId};
use crate::mutants::Mutant;
use crate::types::{Entry, LogIndex, NodeId, Snapshot, Term};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Asked {
    Entries { from: LogIndex },
    Snapshot { index: LogIndex, offset: u64 },
}

#[derive(Debug, Clone, Copy)]
struct InFlight {
    to: NodeId,
    request_id: RequestId,
    asked: Asked,
    sent_at: u64,
}

#[derive(Debug, Clone)]
struct Assembly {
    index: LogIndex,
    term: Term,
    total_bytes: u64,
    data: Vec<u8>,
}

/// Why a response was refused (counted per reason in [`FetchCounters`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NotInFlight,
    WrongStart,
    Gap,
    AboveCommit,
    TermRegress,
    Oversized,
    BadSnapshot,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchCounters {
    pub refused_not_in_flight: u64,
    pub refused_wrong_start: u64,
    pub refused_gap: u64,
    pub refused_above_commit: u64,
    pub refused_term_regress: u64,
    pub refused_oversized: u64,
    pub refused_bad_snapshot: u64,
    pub timeouts: u64,
    pub switches_to_fallback: u64,
    pub returns_to_primary: u64,
    pub snapshots_installed: u64,
}

impl FetchCounters {
    pub fn refused_total(&self) -> u64 {
        self.refused_wrong_start
            + self.refused_gap
            + self.refused_above_commit
            + self.refused_term_regress
            + self.refused_oversized
            + self.refused_bad_snapshot
    }

    fn count(&mut self, refusal: Refusal) {
        match refusal {
            Refusal::NotInFlight => self.refused_not_in_flight += 1,
            Refusal::WrongStart => self.refused_wrong_start += 1,
            Refusal::Gap => self.refused_gap += 1,
            Refusal::AboveCommit => self.refused_above_commit += 1,
            Refusal::TermRegress => self.refused_term_regress += 1,
            Refusal::Oversized => self.refused_oversized += 1,
            Refusal::BadSnapshot => self.refused_bad_snapshot += 1,
        }
    }
}

/// What the session hands back to the node for one input.
#[derive(Debug, Default)]
pub(crate) struct SessionOutput {
    pub(crate) send: Vec<(NodeId, Message)>,
    pub(crate) apply: Vec<Entry>,
    pub(crate) install: Option<Snapshot>,
}

#[derive(Debug, Clone)]
pub(crate) struct FetchSession {
    applied: LogIndex,
    applied_term: Term,
    commit_seen: LogIndex,
    candidates: Vec<NodeId>,
    current: usize,
    in_flight: Option<InFlight>,
    probe: Option<(RequestId, u64)>,
    last_probe_at: u64,
    next_request_id: RequestId,
    assembly: Option<Assembly>,
    /// Requests to the current upstream that failed in a row (timeouts and refused answers).
    failures_in_a_row: u32,
    pub(crate) counters: FetchCounters,
}

impl FetchSession {
    pub(crate) fn new(applied: LogIndex, applied_term: Term) -> FetchSession {
        FetchSession {
            applied,
            applied_term,
            commit_seen: applied,
            candidates: Vec::new(),
            current: 0,
            in_flight: None,
            probe: None,
            last_probe_at: 0,
            next_request_id: 1,
            assembly: None,
            failures_in_a_row: 0,
            counters: FetchCounters::default(),
        }
    }

    pub(crate) fn applied(&self) -> LogIndex {
        self.applied
    }

    pub(crate) fn commit_seen(&self) -> LogIndex {
        self.commit_seen
    }

    /// The member fetched from now, if any.
    pub(crate) fn current_upstream(&self) -> Option<NodeId> {
        self.candidates.get(self.current).copied()
    }

    pub(crate) fn on_primary(&self) -> bool {
        self.current == 0
    }

    fn request_id(&mut self) -> RequestId {
        let id = self.next_request_id;
        self.next_request_id += 1;
        id
    }

    /// New candidates (the tree changed): keep the current upstream if it is still a candidate,
    /// otherwise start over at the new primary. A new primary always wins: that is the tree rule.
    pub(crate) fn set_candidates(
        &mut self,
        candidates: Vec<NodeId>,
        config: &Config,
        now: u64,
        out: &mut SessionOutput,
    ) {
        let old_primary = self.candidates.first().copied();
        let old_current = self.current_upstream();
        self.candidates = candidates;
        let new_primary = self.candidates.first().copied();
        let keep = if old_primary == new_primary {
            old_current.and_then(|c| self.candidates.iter().position(|&m| m == c))
        } else {
            None
        };
        match keep {
            Some(at) => self.current = at,
            None => {
                self.current = 0;
                self.probe = None;
                if self.in_flight.is_some_and(|f| Some(f.to) != new_primary) {
                    self.in_flight = None;
                }
                self.send_next(config, now, out);
            }
        }
    }

    /// Send the next request to the current upstream unless one is in flight.
    pub(crate) fn send_next(&mut self, config: &Config, now: u64, out: &mut SessionOutput) {
        if self.in_flight.is_some() {
            return;
        }
        let Some(to) = self.current_upstream() else {
            return;
        };
        let request_id = self.request_id();
        let (asked, message) = match &self.assembly {
            Some(a) => {
                let offset = a.data.len() as u64;
                (
                    Asked::Snapshot {
                        index: a.index,
                        offset,
                    },
                    Message::SnapshotFetch {
                        request_id,
                        index: a.index,
                        offset,
                    },
                )
            }
            None => (
                Asked::Entries {
                    from: self.applied.saturating_add(1),
                },
                Message::Fetch {
                    request_id,
                    from: self.applied.saturating_add(1),
                    max_bytes: config.fetch_bytes_max,
                    digest: None,
                },
            ),
        };
        self.in_flight = Some(InFlight {
            to,
            request_id,
            asked,
            sent_at: now,
        });
        out.send.push((to, message));
    }

    /// A request to the current upstream failed (no answer in time, or an answer we refuse). One
    /// failure may be one lost or corrupted message: ask the same upstream again. A second in a
    /// row means the upstream is gone or faulty: move on.
    fn on_failure(&mut self, config: &Config, now: u64, out: &mut SessionOutput) {
        self.failures_in_a_row += 1;
        if self.failures_in_a_row >= 2 {
            self.give_up_on_current(config, now, out);
        } else {
            self.in_flight = None;
            self.send_next(config, now, out);
        }
    }

    /// Move on to the next candidate (wrapping back to the primary after the last).
    fn give_up_on_current(&mut self, config: &Config, now: u64, out: &mut SessionOutput) {
        self.in_flight = None;
        self.failures_in_a_row = 0;
        if !config.mutated(Mutant::NoFallback) && self.candidates.len() > 1 {
            let was_primary = self.current == 0;
            self.current = (self.current + 1) % self.candidates.len();
            if was_primary {
                self.counters.switches_to_fallback += 1;
                self.last_probe_at = now;
            }
        }
        self.send_next(config, now, out);
    }

    pub(crate) fn tick(&mut self, config: &Config, now: u64, out: &mut SessionOutput) {
        if let Some(f) = self.in_flight {
            if now.saturating_sub(f.sent_at) >= config.upstream_timeout_ticks as u64 {
                self.counters.timeouts += 1;
                self.on_failure(config, now, out);
            }
        }
        if self.current != 0 {
            if let Some((_, sent)) = self.probe {
                if now.saturating_sub(sent) >= config.upstream_timeout_ticks as u64 {
                    self.probe = None;
                }
            }
            if self.probe.is_none()
                && now.saturating_sub(self.last_probe_at) >= config.primary_probe_ticks as u64
            {
                if let Some(&primary) = self.candidates.first() {
                    let request_id = self.request_id();
                    self.probe = Some((request_id, now));
                    self.last_probe_at = now;
                    out.send.push((primary, Message::Probe { request_id }));
                }
            }
        }
        self.send_next(config, now, out);
    }

    /// The primary answered a probe: go back to it.
    pub(crate) fn on_probe_ack(
        &mut self,
        from: NodeId,
        request_id: RequestId,
        config: &Config,
        now: u64,
        out: &mut SessionOutput,
    ) {
        let expected = self.probe.is_some_and(|(id, _)| id == request_id)
            && self.candidates.first() == Some(&from);
        if !expected {
            self.counters.count(Refusal::NotInFlight);
            return;
        }
        self.probe = None;
        if self.current == 0 || config.mutated(Mutant::NoReturnToPrimary) {
            return;
        }
        self.current = 0;
        self.counters.returns_to_primary += 1;
        self.in_flight = None;
        self.send_next(config, now, out);
    }

    fn take_in_flight(&mut self, from: NodeId, request_id: RequestId) -> Option<InFlight> {
        match self.in_flight {
            Some(f) if f.to == from && f.request_id == request_id => self.in_flight.take(),
            _ => None,
        }
    }

    /// The request in flight that a response from `from` with `request_id` answers: only the
    /// member it went to answers it; anything else (late, duplicated, forged) is refused.
    fn answered_request(
        &mut self,
        from: NodeId,
        request_id: RequestId,
    ) -> Result<InFlight, Refusal> {
        match self
            .in_flight
            .filter(|f| f.to == from && f.request_id == request_id)
        {
            Some(f) => Ok(f),
            None => {
                self.counters.count(Refusal::NotInFlight);
                Err(Refusal::NotInFlight)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_entries(
        &mut self,
        from: NodeId,
        request_id: RequestId,
        entries: Vec<Entry>,
        commit: LogIndex,
        config: &Config,
        now: u64,
        out: &mut SessionOutput,
    ) -> Result<(), Refusal> {
        let f = self.answered_request(from, request_id)?;
        let Asked::Entries { from: asked_from } = f.asked else {
            self.counters.count(Refusal::NotInFlight);
            return Err(Refusal::NotInFlight);
        };
        if let Err(refusal) = self.check_entries(asked_from, &entries, commit, config) {
            self.counters.count(refusal);
            self.on_failure(config, now, out);
            return Err(refusal);
        }
        self.failures_in_a_row = 0;
        self.take_in_flight(from, request_id);
        self.commit_seen = self.commit_seen.max(commit);
        if let Some(last) = entries.last() {
            self.applied = last.index;
            self.applied_term = last.term;
        }
        out.apply.extend(entries);
        self.send_next(config, now, out);
        Ok(())
    }

    fn check_entries(
        &self,
        asked_from: LogIndex,
        entries: &[Entry],
        commit: LogIndex,
        config: &Config,
    ) -> Result<(), Refusal> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        if first.index != asked_from && !config.mutated(Mutant::ApplySkippingIndex) {
            return Err(Refusal::WrongStart);
        }
        let mut bytes = 0u64;
        let mut previous: Option<&Entry> = None;
        for entry in entries {
            if let Some(p) = previous {
                if Some(entry.index) != p.index.checked_add(1)
                    && !config.mutated(Mutant::ApplySkippingIndex)
                {
                    return Err(Refusal::Gap);
                }
            }
            let term_floor = previous.map_or(self.applied_term, |p| p.term);
            if entry.term < term_floor {
                return Err(Refusal::TermRegress);
            }
            if entry.index > commit && !config.mutated(Mutant::ApplyAboveCommit) {
                return Err(Refusal::AboveCommit);
            }
            bytes = bytes.saturating_add(entry.size_bytes());
            previous = Some(entry);
        }
        if entries.len() > 1 && bytes > config.fetch_bytes_max {
            return Err(Refusal::Oversized);
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_snapshot_needed(
        &mut self,
        from: NodeId,
        request_id: RequestId,
        index: LogIndex,
        term: Term,
        total_bytes: u64,
        config: &Config,
        now: u64,
        out: &mut SessionOutput,
    ) -> Result<(), Refusal> {
        let f = self.answered_request(from, request_id)?;
        // A snapshot behind what we applied would roll us back; one above what we asked is the
        // only reason to need one; a huge one would exhaust our memory.
        let wanted_from = match f.asked {
            Asked::Entries { from } => from,
            // The upstream moved on to a newer snapshot during our transfer.
            Asked::Snapshot { .. } => self.applied.saturating_add(1),
        };
        // (An index at the top of the range would leave no index to fetch after it.)
        let sane = index >= wanted_from
            && index < LogIndex::MAX
            && term >= self.applied_term
            && total_bytes <= config.snapshot_bytes_max;
        if !sane {
            self.counters.count(Refusal::BadSnapshot);
            self.on_failure(config, now, out);
            return Err(Refusal::BadSnapshot);
        }
        self.take_in_flight(from, request_id);
        self.assembly = Some(Assembly {
            index,
            term,
            total_bytes,
            data: Vec::new(),
        });
        self.send_next(config, now, out);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_snapshot_chunk(
        &mut self,
        from: NodeId,
        request_id: RequestId,
        index: LogIndex,
        term: Term,
        offset: u64,
        total_bytes: u64,
        data: Arc<[u8]>,
        config: &Config,
        now: u64,
        out: &mut SessionOutput,
    ) -> Result<(), Refusal> {
        let f = self.answered_request(from, request_id)?;
        let Some(a) = &self.assembly else {
            self.counters.count(Refusal::BadSnapshot);
            return Err(Refusal::BadSnapshot);
        };
        let sane = f.asked
            == (Asked::Snapshot {
                index: a.index,
                offset: a.data.len() as u64,
            })
            && index == a.index
            && term == a.term
            && offset == a.data.len() as u64
            && total_bytes == a.total_bytes
            && data.len() as u64 <= config.snapshot_chunk_bytes_max
            && offset.saturating_add(data.len() as u64) <= total_bytes
            && (!data.is_empty() || offset == total_bytes);
        if !sane {
            self.counters.count(Refusal::BadSnapshot);
            // The upstream may have moved to a newer snapshot: start the transfer over.
            self.assembly = None;
            self.on_failure(config, now, out);
            return Err(Refusal::BadSnapshot);
        }
        self.take_in_flight(from, request_id);
        let a = self.assembly.as_mut().expect("checked above");
        a.data.extend_from_slice(&data);
        if a.data.len() as u64 == a.total_bytes {
            let a = self.assembly.take().expect("checked above");
            let snapshot = Snapshot {
                index: a.index,
                term: a.term,
                data: a.data.into(),
            };
            self.applied = snapshot.index;
            self.applied_term = snapshot.term;
            self.commit_seen = self.commit_seen.max(snapshot.index);
            self.counters.snapshots_installed += 1;
            out.install = Some(snapshot);
        }
        self.send_next(config, now, out);
        Ok(())
    }
}
