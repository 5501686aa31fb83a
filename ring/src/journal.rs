//! A bounded record of which member each ring change touched, so the holder of the current
//! ring can answer "what changed since epoch e" in O(change) ([`RingJournal::delta_since`])
//! for a client's cache. Older history is dropped past a capacity; a client behind it fetches
//! the whole ring.

use std::collections::VecDeque;

use crate::delta::RingDelta;
use crate::state::RingState;
use crate::MemberId;

/// Most changes a journal keeps unless told otherwise.
pub const JOURNAL_CHANGES_DEFAULT: usize = 4096;

#[derive(Clone, Debug)]
pub struct RingJournal {
    /// (epoch, member touched), epochs non-decreasing.
    changes: VecDeque<(u64, MemberId)>,
    /// Deltas can start at this epoch or later.
    horizon: u64,
    capacity: usize,
}

impl RingJournal {
    /// A journal for a ring now at `epoch`, keeping up to `capacity` changes (at least 1).
    pub fn new(epoch: u64, capacity: usize) -> RingJournal {
        RingJournal {
            changes: VecDeque::new(),
            horizon: epoch,
            capacity: capacity.max(1),
        }
    }

    /// The oldest epoch a delta can start from.
    pub fn horizon(&self) -> u64 {
        self.horizon
    }

    /// Notes that the change at `epoch` touched `member` (the id the change names). Call it
    /// for every accepted change, in order. An epoch older than the last is ignored: the
    /// ring refuses such changes too.
    pub fn record(&mut self, epoch: u64, member: MemberId) {
        if self.changes.back().is_some_and(|&(last, _)| epoch < last) || epoch < self.horizon {
            return;
        }
        self.changes.push_back((epoch, member));
        while self.changes.len() > self.capacity {
            if let Some((dropped, _)) = self.changes.pop_front() {
                // A client at `dropped` or later has seen that change already.
                self.horizon = self.horizon.max(dropped);
            }
        }
    }

    /// The delta from `from_epoch` to `current` (the ring this journal followed), or `None`
    /// when `from_epoch` is before the horizon or after `current`: then the whole ring.
    pub fn delta_since(&self, from_epoch: u64, current: &RingState) -> Option<RingDelta> {
        if from_epoch < self.horizon || from_epoch > current.epoch() {
            return None;
        }
        let first = self
            .changes
            .partition_point(|&(epoch, _)| epoch <= from_epoch);
        let touched = self.changes.range(first..).map(|&(_, member)| member);
        Some(RingDelta::for_members(from_epoch, current, touched))
    }
}
