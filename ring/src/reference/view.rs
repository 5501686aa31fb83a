//! The original lookup view: every active token copied into one sorted array with a bucket
//! table over it, rebuilt from scratch after every change, O(tokens of the ring).

use std::collections::HashMap;

use super::FlatState;
use crate::{MemberId, MemberState};

/// Owner lookups over a flat copy of the active tokens.
#[derive(Clone, Debug)]
pub struct FlatView {
    positions: Vec<u64>,
    members: Vec<MemberId>,
    buckets: Vec<u32>,
    bucket_shift: u32,
}

impl FlatView {
    pub fn new(state: &FlatState) -> FlatView {
        let active: HashMap<MemberId, bool> = state
            .members
            .values()
            .map(|m| (m.id, m.state == MemberState::Active))
            .collect();
        let mut positions = Vec::new();
        let mut members = Vec::new();
        for token in &state.tokens {
            if active.get(&token.member).copied().unwrap_or(false) {
                positions.push(token.position);
                members.push(token.member);
            }
        }
        let bits = (positions.len().max(2).next_power_of_two().trailing_zeros()).clamp(1, 24);
        let shift = 64 - bits;
        let mut buckets = Vec::with_capacity((1 << bits) + 1);
        let mut index = 0usize;
        for bucket in 0..1u64 << bits {
            while index < positions.len() && (positions[index] >> shift) < bucket {
                index += 1;
            }
            buckets.push(index as u32);
        }
        buckets.push(positions.len() as u32);
        FlatView {
            positions,
            members,
            buckets,
            bucket_shift: shift,
        }
    }

    /// The member of the first active token at or after `position`, wrapping.
    pub fn owner_at(&self, position: u64) -> Option<MemberId> {
        if self.positions.is_empty() {
            return None;
        }
        let bucket = (position >> self.bucket_shift) as usize;
        let low = self.buckets[bucket] as usize;
        let high = self.buckets[bucket + 1] as usize;
        let index = low + self.positions[low..high].partition_point(|&p| p < position);
        Some(self.members[index % self.positions.len()])
    }
}
