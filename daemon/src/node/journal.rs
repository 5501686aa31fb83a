//! Which members each recent membership change named. With it the node brings its published
//! membership view up to date in O(change) instead of rebuilding it from the whole state, and
//! answers `RingSince` with a delta (issue 14). Older history is dropped past a capacity; a
//! client behind it gets the whole ring.

use std::collections::{BTreeSet, VecDeque};

use ringraft_proto::NodeId;

/// Changes kept: a client whose cached ring is this many member changes behind (at least)
/// fetches the whole ring instead of a delta.
pub const JOURNAL_CHANGES_MAX: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Change {
    /// The membership epoch of the change (its Raft index).
    epoch: u64,
    /// The ring's own epoch after it: a change that touches no token (a role change) leaves the
    /// ring's epoch behind the membership's.
    ring_epoch: u64,
    member: NodeId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipJournal {
    /// Epochs non-decreasing.
    changes: VecDeque<Change>,
    /// The oldest membership epoch changes are known from, and the ring's epoch then.
    horizon: (u64, u64),
    /// The epoch of the newest change recorded, also of one that named nobody (the empty
    /// conf change that leaves a joint configuration moves the epoch, not the ring).
    newest: u64,
    capacity: usize,
}

/// What changed since an epoch: the ring's epoch then (a ring delta starts from it) and every
/// member named by a change after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangesSince {
    pub ring_epoch: u64,
    pub touched: BTreeSet<NodeId>,
}

impl MembershipJournal {
    /// A journal that starts at membership `epoch`, when the ring was at `ring_epoch`.
    pub fn new(epoch: u64, ring_epoch: u64) -> MembershipJournal {
        MembershipJournal::with_capacity(epoch, ring_epoch, JOURNAL_CHANGES_MAX)
    }

    pub fn with_capacity(epoch: u64, ring_epoch: u64, capacity: usize) -> MembershipJournal {
        MembershipJournal {
            changes: VecDeque::new(),
            horizon: (epoch, ring_epoch),
            newest: epoch,
            capacity: capacity.max(1),
        }
    }

    /// The membership epoch of the newest change recorded (or the horizon's).
    pub fn epoch(&self) -> u64 {
        self.newest
    }

    /// The oldest epoch [`MembershipJournal::since`] answers for.
    pub fn horizon(&self) -> u64 {
        self.horizon.0
    }

    /// Notes the change applied at `epoch` (the ring at `ring_epoch` after it) that named
    /// `touched`. Changes arrive in log order; an older epoch would be a bug upstream, and is
    /// refused rather than recorded out of order.
    pub fn record(&mut self, epoch: u64, ring_epoch: u64, touched: &[NodeId]) {
        if epoch <= self.epoch() {
            return;
        }
        self.newest = epoch;
        for &member in touched {
            self.changes.push_back(Change {
                epoch,
                ring_epoch,
                member,
            });
        }
        while self.changes.len() > self.capacity {
            if let Some(dropped) = self.changes.pop_front() {
                // A holder of the view at `dropped.epoch` saw that change already; one at an
                // earlier epoch can no longer be told everything it missed.
                self.horizon = (dropped.epoch, dropped.ring_epoch);
            }
        }
        // Records left of a change that was partly dropped are harmless: the horizon is that
        // change's epoch, whose holders saw it whole, and `since` skips records at or below
        // the epoch asked for.
    }

    /// The changes after `epoch`, or `None` when `epoch` is before the horizon or after the
    /// newest change: then only the whole state will do.
    pub fn since(&self, epoch: u64) -> Option<ChangesSince> {
        if epoch < self.horizon.0 || epoch > self.epoch() {
            return None;
        }
        let first = self.changes.partition_point(|change| change.epoch <= epoch);
        let ring_epoch = match first.checked_sub(1) {
            Some(last_seen) => self.changes[last_seen].ring_epoch,
            None => self.horizon.1,
        };
        Some(ChangesSince {
            ring_epoch,
            touched: self
                .changes
                .range(first..)
                .map(|change| change.member)
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touched(ids: &[NodeId]) -> BTreeSet<NodeId> {
        ids.iter().copied().collect()
    }

    #[test]
    fn changes_since_an_epoch_name_every_member_touched_after_it() {
        let mut journal = MembershipJournal::new(10, 10);
        journal.record(12, 12, &[4]);
        // A role change: the ring's epoch stays.
        journal.record(15, 12, &[4]);
        journal.record(20, 20, &[5, 6]);
        assert_eq!(
            journal.since(10),
            Some(ChangesSince {
                ring_epoch: 10,
                touched: touched(&[4, 5, 6])
            })
        );
        assert_eq!(journal.since(15).unwrap().ring_epoch, 12);
        assert_eq!(journal.since(15).unwrap().touched, touched(&[5, 6]));
        // Between two changes: the ring as the older one left it.
        assert_eq!(journal.since(17).unwrap().ring_epoch, 12);
        assert_eq!(journal.since(20).unwrap().touched, touched(&[]));
        assert_eq!(journal.since(20).unwrap().ring_epoch, 20);
        assert_eq!(journal.since(9), None, "before the horizon");
        assert_eq!(journal.since(21), None, "after the newest change");
    }

    #[test]
    fn a_full_journal_forgets_the_oldest_changes_and_moves_its_horizon() {
        let mut journal = MembershipJournal::with_capacity(1, 1, 3);
        journal.record(2, 2, &[7]);
        journal.record(3, 3, &[8, 9]);
        assert_eq!(journal.since(1).unwrap().touched, touched(&[7, 8, 9]));
        // Four records do not fit: the change at 2 goes, and with it every epoch before 2.
        journal.record(4, 4, &[10]);
        assert_eq!(journal.horizon(), 2);
        assert_eq!(journal.since(1), None);
        assert_eq!(journal.since(2).unwrap().touched, touched(&[8, 9, 10]));
        // One record of the two-member change at 3 must go: no epoch before 3 is answered, and
        // the record left of it is not named to a holder of epoch 3, who saw it.
        journal.record(5, 5, &[11]);
        assert_eq!(journal.horizon(), 3);
        assert_eq!(journal.since(2), None);
        assert_eq!(
            journal.since(3),
            Some(ChangesSince {
                ring_epoch: 3,
                touched: touched(&[10, 11])
            })
        );
    }

    /// The empty change that leaves a joint configuration moves the epoch: a holder of that
    /// epoch is told "nothing since", not sent the whole ring.
    #[test]
    fn a_change_naming_nobody_moves_the_epoch() {
        let mut journal = MembershipJournal::new(3, 3);
        journal.record(4, 4, &[7]);
        journal.record(5, 4, &[]);
        assert_eq!(journal.epoch(), 5);
        assert_eq!(
            journal.since(5),
            Some(ChangesSince {
                ring_epoch: 4,
                touched: touched(&[])
            })
        );
        assert_eq!(journal.since(4).unwrap().touched, touched(&[]));
        assert_eq!(journal.since(3).unwrap().touched, touched(&[7]));
        journal.record(5, 5, &[8]);
        assert_eq!(
            journal.since(5).unwrap().touched,
            touched(&[]),
            "5 was recorded"
        );
    }

    #[test]
    fn an_epoch_older_than_the_newest_is_not_recorded() {
        let mut journal = MembershipJournal::new(5, 5);
        journal.record(8, 8, &[1]);
        journal.record(6, 6, &[2]);
        journal.record(5, 5, &[3]);
        journal.record(8, 8, &[4]);
        assert_eq!(journal.since(5).unwrap().touched, touched(&[1]));
    }
}
