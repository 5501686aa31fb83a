//! This node's part of a registers transition: run a handoff round for every key it holds whose
//! acceptor sets move, then report through the Raft log (`StateCommand::RegistersHandedOff`),
//! again every `REPORT_INTERVAL` until the plane records it or moves on.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use ringraft_paxos::{OpId, Outcome};

/// Handoff rounds in flight at once: the rest wait, so a node holding many keys does not flood
/// its proposer's queue (client operations share it).
pub const HANDOFF_ROUNDS_MAX: usize = 256;
/// How often an unrecorded report is sent again (it may be lost on a leader change).
pub const REPORT_INTERVAL: Duration = Duration::from_secs(1);

pub struct Handoff {
    /// The transition this is for.
    pub epoch: u64,
    queue: VecDeque<Vec<u8>>,
    running: BTreeMap<OpId, Vec<u8>>,
    /// Retried keys wait here until this tick (the core's backoff).
    backing_off: Vec<(u64, Vec<u8>)>,
    handed_off: u64,
    last_report: Option<Instant>,
}

impl Handoff {
    pub fn new(epoch: u64, keys: impl IntoIterator<Item = Vec<u8>>) -> Handoff {
        Handoff {
            epoch,
            queue: keys.into_iter().collect(),
            running: BTreeMap::new(),
            backing_off: Vec::new(),
            handed_off: 0,
            last_report: None,
        }
    }

    pub fn is_done(&self) -> bool {
        self.queue.is_empty() && self.running.is_empty() && self.backing_off.is_empty()
    }

    /// Keys still to hand off (queued, running or backing off).
    pub fn remaining(&self) -> usize {
        self.queue.len() + self.running.len() + self.backing_off.len()
    }

    pub fn handed_off(&self) -> u64 {
        self.handed_off
    }

    pub fn owns(&self, op: OpId) -> bool {
        self.running.contains_key(&op)
    }

    /// Keys to start now, up to the bound of rounds in flight; `tick` releases backoffs.
    pub fn next_keys(&mut self, tick: u64) -> Vec<Vec<u8>> {
        let (due, waiting): (Vec<_>, Vec<_>) =
            self.backing_off.drain(..).partition(|(at, _)| *at <= tick);
        self.backing_off = waiting;
        self.queue.extend(due.into_iter().map(|(_, key)| key));
        let room = HANDOFF_ROUNDS_MAX.saturating_sub(self.running.len());
        let take = room.min(self.queue.len());
        self.queue.drain(..take).collect()
    }

    pub fn started(&mut self, op: OpId, key: Vec<u8>) {
        self.running.insert(op, key);
    }

    /// A key that could not start (the proposer is busy): later.
    pub fn requeue(&mut self, key: Vec<u8>, tick: u64) {
        self.backing_off.push((tick + 1, key));
    }

    /// The core answered a handoff round.
    pub fn answered(&mut self, op: OpId, outcome: &Outcome, tick: u64) {
        let Some(key) = self.running.remove(&op) else {
            return;
        };
        match outcome {
            Outcome::HandedOff | Outcome::NoHandoffPending => self.handed_off += 1,
            Outcome::Retry { backoff_ticks, .. } | Outcome::Unknown { backoff_ticks, .. } => {
                self.backing_off
                    .push((tick.saturating_add((*backoff_ticks).max(1)), key));
            }
            // No other outcome answers a handoff; trying again is always safe.
            _ => self.backing_off.push((tick + 1, key)),
        }
    }

    /// True when a report is due now.
    pub fn report_due(&mut self, now: Instant) -> bool {
        if !self.is_done() {
            return false;
        }
        let due = self
            .last_report
            .is_none_or(|at| now.duration_since(at) >= REPORT_INTERVAL);
        if due {
            self.last_report = Some(now);
        }
        due
    }
}
