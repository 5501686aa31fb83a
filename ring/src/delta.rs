//! Ring deltas: what changed from epoch `from` to epoch `to`, so a client with a cached ring
//! fetches O(change) bytes instead of the whole ring (issue 14).
//!
//! Every change touches one member's record and tokens only (docs/ring.md §4: allocation
//! places the joiner's tokens without moving anyone else's), so a delta is a list of members
//! gone and, for each member that joined or changed, its whole record and tokens. Applying
//! replaces exactly those members; the result is the `to` ring byte for byte.

use std::collections::BTreeSet;

use crate::state::RingState;
use crate::{DeltaError, Member, MemberId, MEMBERS_MAX, TOKENS_MAX, VNODES_MAX};

/// One member as the delta's target ring has it: record and token positions (ascending).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberEntry {
    pub member: Member,
    pub positions: Vec<u64>,
}

/// The changes from one ring epoch to a later one. Removed ids and entries are in strictly
/// ascending id and disjoint; [`RingDelta::decode`] accepts nothing else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RingDelta {
    pub(crate) from_epoch: u64,
    pub(crate) to_epoch: u64,
    pub(crate) vnodes: u32,
    pub(crate) removed: Vec<MemberId>,
    pub(crate) changed: Vec<MemberEntry>,
}

impl RingDelta {
    /// The delta from `from` to `to` by comparing them: O(members + tokens). For when no
    /// record of the changes in between is kept; [`RingDelta::for_members`] is O(change).
    pub fn between(from: &RingState, to: &RingState) -> RingDelta {
        let removed = from
            .members
            .keys()
            .filter(|id| !to.members.contains_key(id))
            .copied()
            .collect();
        let changed = to
            .members
            .values()
            .filter(|member| {
                from.members.get(&member.id) != Some(*member)
                    || from.tokens.positions_of(member.id) != to.tokens.positions_of(member.id)
            })
            .map(|member| entry_of(to, member))
            .collect();
        RingDelta {
            from_epoch: from.epoch,
            to_epoch: to.epoch,
            vnodes: to.vnodes,
            removed,
            changed,
        }
    }

    /// The delta from epoch `from_epoch` to `to`, given every member touched by a change in
    /// between (duplicates allowed): O(their tokens × log). A touched member that is gone is
    /// listed as removed, even if the ring at `from_epoch` never had it.
    pub fn for_members(
        from_epoch: u64,
        to: &RingState,
        touched: impl IntoIterator<Item = MemberId>,
    ) -> RingDelta {
        let touched: BTreeSet<MemberId> = touched.into_iter().collect();
        let mut removed = Vec::new();
        let mut changed = Vec::new();
        for id in touched {
            match to.members.get(&id) {
                Some(member) => changed.push(entry_of(to, member)),
                None => removed.push(id),
            }
        }
        RingDelta {
            from_epoch,
            to_epoch: to.epoch,
            vnodes: to.vnodes,
            removed,
            changed,
        }
    }

    pub fn from_epoch(&self) -> u64 {
        self.from_epoch
    }

    pub fn to_epoch(&self) -> u64 {
        self.to_epoch
    }

    /// The vnodes setting of the target ring.
    pub fn vnodes(&self) -> u32 {
        self.vnodes
    }

    /// Members gone, ascending id.
    pub fn removed(&self) -> &[MemberId] {
        &self.removed
    }

    /// Members that joined or changed, ascending id, as the target ring has them.
    pub fn changed(&self) -> &[MemberEntry] {
        &self.changed
    }

    /// Every member the delta replaces or removes, ascending id.
    pub fn touched(&self) -> Vec<MemberId> {
        let mut ids: Vec<MemberId> = self
            .removed
            .iter()
            .copied()
            .chain(self.changed.iter().map(|e| e.member.id))
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Turns `state` (at the delta's `from` epoch) into the delta's target ring. Checked
    /// first, so on error `state` is unchanged. O(the delta's tokens × log).
    pub fn apply(&self, state: &mut RingState) -> Result<(), DeltaError> {
        self.check_applies_to(state)?;
        for id in self.touched() {
            for position in state.tokens.positions_of(id) {
                state.tokens.remove(position);
            }
            state.members.remove(&id);
        }
        for entry in &self.changed {
            let member = &entry.member;
            for &position in &entry.positions {
                state.tokens.insert(position, member.id, member.weight);
            }
            state.members.insert(member.id, member.clone());
        }
        state.epoch = self.to_epoch;
        state.vnodes = self.vnodes;
        Ok(())
    }

    fn check_applies_to(&self, state: &RingState) -> Result<(), DeltaError> {
        if state.epoch != self.from_epoch {
            return Err(DeltaError::EpochMismatch {
                ring: state.epoch,
                delta_from: self.from_epoch,
            });
        }
        if self.vnodes == 0 || self.vnodes > VNODES_MAX {
            return Err(DeltaError::VnodesOutOfRange {
                vnodes: self.vnodes,
                max: VNODES_MAX,
            });
        }
        let touched = self.touched();
        let is_touched = |id: MemberId| touched.binary_search(&id).is_ok();
        let mut positions: Vec<u64> = Vec::new();
        for entry in &self.changed {
            for &position in &entry.positions {
                if let Some(holder) = state.tokens.holder_of(position) {
                    if !is_touched(holder) {
                        return Err(DeltaError::TokenTaken { position, holder });
                    }
                }
                positions.push(position);
            }
        }
        positions.sort_unstable();
        if let Some(pair) = positions.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(DeltaError::DuplicateToken(pair[0]));
        }
        let present = touched.iter().filter(|id| state.members.contains_key(id));
        let members = state.members.len() - present.count() + self.changed.len();
        if members > MEMBERS_MAX {
            return Err(DeltaError::TooManyMembers {
                members,
                max: MEMBERS_MAX,
            });
        }
        let dropped: usize = touched.iter().map(|&id| state.tokens.count_of(id)).sum();
        let tokens = state.tokens.len() - dropped + positions.len();
        if tokens > TOKENS_MAX {
            return Err(DeltaError::TooManyTokens {
                tokens,
                max: TOKENS_MAX,
            });
        }
        Ok(())
    }
}

fn entry_of(state: &RingState, member: &Member) -> MemberEntry {
    MemberEntry {
        member: member.clone(),
        positions: state.tokens.positions_of(member.id),
    }
}
