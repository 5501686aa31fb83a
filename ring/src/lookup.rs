//! [`Ring`]: a [`RingState`] with its lookup view, answering owner and replica queries
//! (docs/ring.md, "Lookup") and kept current change by change.

use crate::index::Cursor;
use crate::state::RingState;
use crate::view::View;
use crate::{
    key_position, DecodeError, DeltaError, Member, MemberId, MemberState, RingDelta, RingError,
};

/// The owner of a key, with the epoch of the ring that answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Owner {
    pub member: MemberId,
    pub epoch: u64,
}

/// The replicas of a key (owner first), with the epoch of the ring that answered.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Replicas {
    pub members: Vec<MemberId>,
    pub epoch: u64,
}

/// Up to this many replicas are tracked in fixed arrays on the stack; more use bitsets.
const INLINE_PICKS_MAX: usize = 16;

/// A query-ready ring: the state plus a lookup view of its active tokens. Build one from a
/// [`RingState`] (cost linear in the tokens), then keep it current with its change methods
/// ([`Ring::join`], [`Ring::leave`], ... and [`Ring::apply_delta`]), which update the state
/// and the view in O(the touched member's tokens × log). Lookups never allocate except for
/// the returned `Vec` of [`Ring::replicas`].
#[derive(Clone, Debug)]
pub struct Ring {
    state: RingState,
    view: View,
}

impl Ring {
    /// The lookup view of `state`.
    pub fn new(state: RingState) -> Ring {
        let view = View::new(&state);
        Ring { state, view }
    }

    /// Decodes [`RingState::encode`]'s output and builds its lookup view.
    pub fn decode(bytes: &[u8]) -> Result<Ring, DecodeError> {
        RingState::decode(bytes).map(Ring::new)
    }

    /// The canonical encoding of the underlying state.
    pub fn encode(&self) -> Vec<u8> {
        self.state.encode()
    }

    pub fn state(&self) -> &RingState {
        &self.state
    }

    pub fn into_state(self) -> RingState {
        self.state
    }

    pub fn epoch(&self) -> u64 {
        self.state.epoch
    }

    pub fn member(&self, id: MemberId) -> Option<&Member> {
        self.state.members.get(&id)
    }

    /// Active members that hold at least one token, ascending id: the members that can
    /// appear in an answer.
    pub fn owning_members(&self) -> &[MemberId] {
        &self.view.owning
    }

    /// Number of tokens lookups search (those of active members).
    pub fn active_tokens(&self) -> usize {
        self.view.index.len()
    }

    /// Heap bytes held by this ring, state included. The state's B-trees are estimated
    /// (entries × entry size × 3/2 for node slack); the rest is counted from capacities.
    pub fn memory_bytes(&self) -> usize {
        self.state.memory_bytes() + self.view.memory_bytes()
    }

    /// (buckets, buckets spilled) of the lookup index; for benchmarks and debugging.
    #[doc(hidden)]
    pub fn index_shape(&self) -> (usize, usize) {
        self.view.index.shape()
    }

    /// [`RingState::join`], keeping the lookup view current.
    pub fn join(&mut self, member: Member, epoch: u64) -> Result<(), RingError> {
        let id = member.id;
        self.change(&[id], |state| state.join(member, epoch))
    }

    /// [`RingState::leave`], keeping the lookup view current.
    pub fn leave(&mut self, id: MemberId, epoch: u64) -> Result<Member, RingError> {
        self.change(&[id], |state| state.leave(id, epoch))
    }

    /// [`RingState::set_state`], keeping the lookup view current.
    pub fn set_state(
        &mut self,
        id: MemberId,
        member_state: MemberState,
        epoch: u64,
    ) -> Result<(), RingError> {
        self.change(&[id], |state| state.set_state(id, member_state, epoch))
    }

    /// [`RingState::set_zone`], keeping the lookup view current.
    pub fn set_zone(
        &mut self,
        id: MemberId,
        zone: impl Into<String>,
        epoch: u64,
    ) -> Result<(), RingError> {
        let zone = zone.into();
        #[cfg(test)]
        if crate::mutant::is(crate::mutant::Mutant::ViewIgnoresZoneChange) {
            return self.state.set_zone(id, zone, epoch);
        }
        self.change(&[id], |state| state.set_zone(id, zone, epoch))
    }

    /// [`RingState::set_weight`], keeping the lookup view current.
    pub fn set_weight(&mut self, id: MemberId, weight: u32, epoch: u64) -> Result<(), RingError> {
        self.change(&[id], |state| state.set_weight(id, weight, epoch))
    }

    /// [`RingState::set_vnodes`]; no token moves, so the view is unchanged.
    pub fn set_vnodes(&mut self, vnodes: u32) -> Result<(), RingError> {
        self.state.set_vnodes(vnodes)
    }

    /// [`RingDelta::apply`], keeping the lookup view current: O(the delta's tokens × log).
    pub fn apply_delta(&mut self, delta: &RingDelta) -> Result<(), DeltaError> {
        let touched = delta.touched();
        self.change(&touched, |state| delta.apply(state))
    }

    /// Runs a change of the members `ids` on the state. Only those members' tokens, state
    /// and zone can change (docs/ring.md §4), so the view drops just them before and takes
    /// them back after, whether the change succeeded or not.
    fn change<T, E>(
        &mut self,
        ids: &[MemberId],
        apply: impl FnOnce(&mut RingState) -> Result<T, E>,
    ) -> Result<T, E> {
        for &id in ids {
            self.view.withdraw(id, &self.state);
        }
        let result = apply(&mut self.state);
        for &id in ids {
            self.view.admit(id, &self.state);
        }
        result
    }

    /// Compares the view with one built from scratch: same tokens, same owners, same zone
    /// classes. O(tokens); for tests and debugging.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), String> {
        self.state.check_invariants()?;
        self.view.check(&View::new(&self.state))
    }

    /// The owner of `key`: the member of the first active token at or after the key's
    /// position, wrapping. `None` when no active member holds a token.
    #[inline]
    pub fn owner(&self, key: &[u8]) -> Option<Owner> {
        self.owner_at(key_position(key))
    }

    /// [`Ring::owner`] for a position already computed with [`key_position`].
    #[inline]
    pub fn owner_at(&self, position: u64) -> Option<Owner> {
        let cursor = self.view.index.first_at_or_after(position)?;
        Some(Owner {
            member: self.view.slots.member[self.view.index.slot(cursor) as usize],
            epoch: self.state.epoch,
        })
    }

    /// The `n` members that hold `key`, owner first: distinct members, distinct zones
    /// first (docs/ring.md, "Replicas"). With fewer than `n` owning members, all of them.
    pub fn replicas(&self, key: &[u8], n: usize) -> Replicas {
        let mut members = Vec::with_capacity(n.min(self.view.owning.len()));
        let epoch = self.replicas_into(key, n, &mut members);
        Replicas { members, epoch }
    }

    /// [`Ring::replicas`] into a caller's buffer (cleared first); returns the epoch.
    pub fn replicas_into(&self, key: &[u8], n: usize, out: &mut Vec<MemberId>) -> u64 {
        self.replicas_at_into(key_position(key), n, out)
    }

    /// [`Ring::replicas_into`] for a position already computed with [`key_position`].
    pub fn replicas_at_into(&self, position: u64, n: usize, out: &mut Vec<MemberId>) -> u64 {
        out.clear();
        let want = n.min(self.view.owning.len());
        if let Some(start) = self.view.index.first_at_or_after(position) {
            if want <= INLINE_PICKS_MAX {
                self.zone_walk(start, want, &mut InlinePicks::default(), out);
            } else {
                let slots = &self.view.slots;
                let mut picks = BitPicks::new(slots.member.len(), slots.zones.capacity());
                self.zone_walk(start, want, &mut picks, out);
            }
        }
        self.state.epoch
    }

    /// Two laps from `start`: the first takes each member whose zone class is new, the
    /// second fills up with members not yet taken. Each lap stops as soon as it cannot
    /// take more.
    fn zone_walk(
        &self,
        start: Cursor,
        want: usize,
        picks: &mut impl Picks,
        out: &mut Vec<MemberId>,
    ) {
        let index = &self.view.index;
        let slots = &self.view.slots;
        let total = index.len();
        let first_lap_goal = want.min(slots.zones.live());
        let mut cursor = start;
        for _ in 0..total {
            if out.len() >= first_lap_goal {
                break;
            }
            let slot = index.slot(cursor);
            let zone = slots.zone[slot as usize];
            // A zone class not yet taken means its members are not taken either.
            if !picks.has_zone(zone) {
                picks.take(slot, zone);
                out.push(slots.member[slot as usize]);
            }
            cursor = index.next(cursor);
        }
        cursor = start;
        for _ in 0..total {
            if out.len() >= want {
                break;
            }
            let slot = index.slot(cursor);
            if !picks.has_slot(slot) {
                picks.take(slot, slots.zone[slot as usize]);
                out.push(slots.member[slot as usize]);
            }
            cursor = index.next(cursor);
        }
    }
}

trait Picks {
    fn has_slot(&self, slot: u32) -> bool;
    fn has_zone(&self, zone: u32) -> bool;
    fn take(&mut self, slot: u32, zone: u32);
}

#[derive(Default)]
struct InlinePicks {
    len: usize,
    slots: [u32; INLINE_PICKS_MAX],
    zones: [u32; INLINE_PICKS_MAX],
}

impl Picks for InlinePicks {
    fn has_slot(&self, slot: u32) -> bool {
        self.slots[..self.len].contains(&slot)
    }
    fn has_zone(&self, zone: u32) -> bool {
        self.zones[..self.len].contains(&zone)
    }
    fn take(&mut self, slot: u32, zone: u32) {
        // The walk takes at most `want` ≤ INLINE_PICKS_MAX members.
        self.slots[self.len] = slot;
        self.zones[self.len] = zone;
        self.len += 1;
    }
}

struct BitPicks {
    slots: Vec<u64>,
    zones: Vec<u64>,
}

impl BitPicks {
    fn new(slots: usize, zones: usize) -> Self {
        BitPicks {
            slots: vec![0; slots.div_ceil(64)],
            zones: vec![0; zones.div_ceil(64)],
        }
    }
}

impl Picks for BitPicks {
    fn has_slot(&self, slot: u32) -> bool {
        self.slots[slot as usize / 64] & (1 << (slot % 64)) != 0
    }
    fn has_zone(&self, zone: u32) -> bool {
        self.zones[zone as usize / 64] & (1 << (zone % 64)) != 0
    }
    fn take(&mut self, slot: u32, zone: u32) {
        self.slots[slot as usize / 64] |= 1 << (slot % 64);
        self.zones[zone as usize / 64] |= 1 << (zone % 64);
    }
}
