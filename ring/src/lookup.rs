//! The lookup view of a [`RingState`]: only active members' tokens, laid out for fast
//! owner and replica answers (docs/ring.md, "Lookup").

use std::collections::HashMap;

use crate::state::RingState;
use crate::{key_position, DecodeError, Member, MemberId, MemberState};

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

/// An immutable, query-ready ring. Build one from a [`RingState`] after each change
/// (cost linear in the number of tokens); lookups never allocate except for the
/// returned `Vec` of [`Ring::replicas`].
#[derive(Clone, Debug)]
pub struct Ring {
    state: RingState,
    /// Positions of the tokens of active members, ascending.
    positions: Vec<u64>,
    /// Owning slot of each entry of `positions`.
    slots: Vec<u32>,
    /// Member id of each slot. Slots are the active members that hold tokens, by id.
    slot_members: Vec<MemberId>,
    /// Zone class of each slot: members sharing a non-empty zone share a class; a member
    /// without zone has a class of its own.
    slot_zones: Vec<u32>,
    zone_classes: usize,
    /// `buckets[b]` is the index of the first token whose top `bucket_bits` bits are ≥ b;
    /// `buckets` has 2^bucket_bits + 1 entries.
    buckets: Vec<u32>,
    bucket_shift: u32,
}

impl Ring {
    /// The lookup view of `state`.
    pub fn new(state: RingState) -> Ring {
        let active = |id: &MemberId| {
            state
                .members
                .get(id)
                .is_some_and(|m| m.state == MemberState::Active)
        };
        let mut slot_of: HashMap<MemberId, u32> = HashMap::new();
        let mut slot_members: Vec<MemberId> = state
            .tokens
            .iter()
            .map(|t| t.member)
            .filter(|id| active(id))
            .collect();
        slot_members.sort_unstable();
        slot_members.dedup();
        for (slot, &id) in slot_members.iter().enumerate() {
            slot_of.insert(id, slot as u32);
        }

        let mut zone_class_of: HashMap<&str, u32> = HashMap::new();
        let mut zone_classes = 0u32;
        let slot_zones = slot_members
            .iter()
            .map(|id| {
                let zone = state.members.get(id).map_or("", |m| m.zone.as_str());
                if zone.is_empty() {
                    zone_classes += 1;
                    zone_classes - 1
                } else {
                    *zone_class_of.entry(zone).or_insert_with(|| {
                        zone_classes += 1;
                        zone_classes - 1
                    })
                }
            })
            .collect();

        let mut positions = Vec::new();
        let mut slots = Vec::new();
        for token in &state.tokens {
            if let Some(&slot) = slot_of.get(&token.member) {
                positions.push(token.position);
                slots.push(slot);
            }
        }
        let (buckets, bucket_shift) = build_buckets(&positions);
        Ring {
            state,
            positions,
            slots,
            slot_members,
            slot_zones,
            zone_classes: zone_classes as usize,
            buckets,
            bucket_shift,
        }
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
        &self.slot_members
    }

    /// Number of tokens lookups search (those of active members).
    pub fn active_tokens(&self) -> usize {
        self.positions.len()
    }

    /// Heap bytes held by this ring, state included.
    pub fn memory_bytes(&self) -> usize {
        let state_tokens = self.state.tokens.capacity() * std::mem::size_of::<crate::Token>();
        let state_members: usize = self
            .state
            .members
            .values()
            .map(|m| std::mem::size_of::<Member>() + 16 + m.zone.capacity())
            .sum();
        state_tokens
            + state_members
            + self.positions.capacity() * 8
            + self.slots.capacity() * 4
            + self.slot_members.capacity() * 8
            + self.slot_zones.capacity() * 4
            + self.buckets.capacity() * 4
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
        let index = self.first_token_at_or_after(position)?;
        Some(Owner {
            member: self.slot_members[self.slots[index] as usize],
            epoch: self.state.epoch,
        })
    }

    /// The `n` members that hold `key`, owner first: distinct members, distinct zones
    /// first (docs/ring.md, "Replicas"). With fewer than `n` owning members, all of them.
    pub fn replicas(&self, key: &[u8], n: usize) -> Replicas {
        let mut members = Vec::with_capacity(n.min(self.slot_members.len()));
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
        let want = n.min(self.slot_members.len());
        if let Some(start) = self.first_token_at_or_after(position) {
            if want <= INLINE_PICKS_MAX {
                self.zone_walk(start, want, &mut InlinePicks::default(), out);
            } else {
                let mut picks = BitPicks::new(self.slot_members.len(), self.zone_classes);
                self.zone_walk(start, want, &mut picks, out);
            }
        }
        self.state.epoch
    }

    #[inline]
    fn first_token_at_or_after(&self, position: u64) -> Option<usize> {
        if self.positions.is_empty() {
            return None;
        }
        let bucket = (position >> self.bucket_shift) as usize;
        let low = self.buckets[bucket] as usize;
        let high = self.buckets[bucket + 1] as usize;
        let index = low + self.positions[low..high].partition_point(|&p| p < position);
        Some(if index == self.positions.len() {
            0
        } else {
            index
        })
    }

    /// Two laps from `start`: the first takes each member whose zone class is new, the
    /// second fills up with members not yet taken. Each lap stops as soon as it cannot
    /// take more.
    fn zone_walk(
        &self,
        start: usize,
        want: usize,
        picks: &mut impl Picks,
        out: &mut Vec<MemberId>,
    ) {
        let total = self.positions.len();
        let first_lap_goal = want.min(self.zone_classes);
        let mut index = start;
        for _ in 0..total {
            if out.len() >= first_lap_goal {
                break;
            }
            let slot = self.slots[index];
            let zone = self.slot_zones[slot as usize];
            // A zone class not yet taken means its members are not taken either.
            if !picks.has_zone(zone) {
                picks.take(slot, zone);
                out.push(self.slot_members[slot as usize]);
            }
            index = if index + 1 == total { 0 } else { index + 1 };
        }
        index = start;
        for _ in 0..total {
            if out.len() >= want {
                break;
            }
            let slot = self.slots[index];
            if !picks.has_slot(slot) {
                picks.take(slot, self.slot_zones[slot as usize]);
                out.push(self.slot_members[slot as usize]);
            }
            index = if index + 1 == total { 0 } else { index + 1 };
        }
    }
}

/// About one token per bucket: 2^ceil(log2(tokens)) buckets, at least 2.
fn build_buckets(positions: &[u64]) -> (Vec<u32>, u32) {
    let bits = (positions.len().max(2).next_power_of_two().trailing_zeros()).clamp(1, 24);
    let shift = 64 - bits;
    let count = 1usize << bits;
    let mut buckets = Vec::with_capacity(count + 1);
    let mut index = 0usize;
    for bucket in 0..count as u64 {
        while index < positions.len() && (positions[index] >> shift) < bucket {
            index += 1;
        }
        buckets.push(index as u32);
    }
    buckets.push(positions.len() as u32);
    (buckets, shift)
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
