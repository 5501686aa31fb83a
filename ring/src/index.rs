//! The lookup index: the active tokens in buckets by their top bits. Each bucket is one
//! 64-byte block holding up to [`BLOCK_ENTRIES`] positions and their slots, so an owner
//! lookup costs one shift and one cache line (then the slot's member, a small array): the
//! flat sorted array it replaces needed three dependent misses, and a bucket of its own
//! `Vec` four. Inserting or removing a token touches one block.
//!
//! Allocation keeps ranges near equal, so blocks rarely fill; a bucket with more tokens than
//! a block holds (hostile or unlucky positions) moves to a spill list, a slower path that
//! stays correct. The bucket count follows the token count (doubling or halving, a linear
//! pass only when the count crosses a power of two, so O(1) amortized per token).

use std::collections::HashMap;

/// Bucket count bounds, as bits: at least 2 buckets, at most 2^24.
const BITS_MIN: u32 = 1;
const BITS_MAX: u32 = 24;
/// Entries in one block: 6 positions (48 bytes) + 6 slots (12) + length fit 64 bytes.
const BLOCK_ENTRIES: usize = 6;
/// A block's `len` when its bucket lives in the spill list.
const SPILLED: u8 = u8::MAX;
/// A rebuild aims at 2–3 tokens per bucket (half a block: few spills, since allocated
/// positions are near evenly spaced); the buckets double above 4.5 per bucket on average
/// and halve below 1.125.
const PER_BUCKET_TARGET: usize = 3;
const GROW_NUMERATOR: usize = 9;
const GROW_DENOMINATOR: usize = 2;
const SHRINK_NUMERATOR: usize = 9;
const SHRINK_DENOMINATOR: usize = 8;

/// Where a token sits in the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cursor {
    bucket: usize,
    index: usize,
}

/// One bucket's tokens, ascending, when they fit.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct Block {
    positions: [u64; BLOCK_ENTRIES],
    /// Slots are below 2^16: one per owning member, at most `MEMBERS_MAX` (2^16).
    slots: [u16; BLOCK_ENTRIES],
    /// Entries in use, or [`SPILLED`].
    len: u8,
}

const EMPTY: Block = Block {
    positions: [0; BLOCK_ENTRIES],
    slots: [0; BLOCK_ENTRIES],
    len: 0,
};

/// A token of an active member and the slot of its member (see `crate::view`).
#[derive(Clone, Copy, Debug)]
struct Entry {
    position: u64,
    slot: u16,
}

#[derive(Clone, Debug)]
pub(crate) struct ActiveIndex {
    blocks: Vec<Block>,
    /// Buckets with more tokens than a block holds, all their entries ascending.
    spill: HashMap<usize, Vec<Entry>>,
    bits: u32,
    len: usize,
}

impl ActiveIndex {
    /// An index over (position, slot) pairs in strictly ascending position.
    pub(crate) fn from_sorted(entries: &[(u64, u32)]) -> Self {
        let bits = bits_for(entries.len());
        let mut index = ActiveIndex {
            blocks: vec![EMPTY; 1 << bits],
            spill: HashMap::new(),
            bits,
            len: 0,
        };
        for &(position, slot) in entries {
            index.push_last(position, slot_u16(slot));
        }
        index
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn insert(&mut self, position: u64, slot: u32) {
        let bucket = bucket_of(position, self.bits);
        let slot = slot_u16(slot);
        let block = &mut self.blocks[bucket];
        let len = usize::from(block.len);
        if block.len != SPILLED && len < BLOCK_ENTRIES {
            let at = block.positions[..len].partition_point(|&p| p < position);
            assert!(
                at == len || block.positions[at] != position,
                "position {position} is already indexed"
            );
            block.positions.copy_within(at..len, at + 1);
            block.slots.copy_within(at..len, at + 1);
            block.positions[at] = position;
            block.slots[at] = slot;
            block.len += 1;
        } else {
            let mut entries = self.take_bucket(bucket);
            let at = entries.partition_point(|e| e.position < position);
            assert!(
                entries.get(at).is_none_or(|e| e.position != position),
                "position {position} is already indexed"
            );
            entries.insert(at, Entry { position, slot });
            self.put_bucket(bucket, entries);
        }
        self.len += 1;
        if self.len * GROW_DENOMINATOR > (GROW_NUMERATOR << self.bits) && self.bits < BITS_MAX {
            self.rebucket();
        }
    }

    /// Removes `position`; false if it was not indexed.
    pub(crate) fn remove(&mut self, position: u64) -> bool {
        let bucket = bucket_of(position, self.bits);
        let block = &mut self.blocks[bucket];
        if block.len != SPILLED {
            let len = usize::from(block.len);
            let at = block.positions[..len].partition_point(|&p| p < position);
            if at == len || block.positions[at] != position {
                return false;
            }
            block.positions.copy_within(at + 1..len, at);
            block.slots.copy_within(at + 1..len, at);
            block.len -= 1;
        } else {
            let mut entries = self.take_bucket(bucket);
            let at = entries.partition_point(|e| e.position < position);
            let found = entries.get(at).is_some_and(|e| e.position == position);
            if found {
                entries.remove(at);
            }
            self.put_bucket(bucket, entries);
            if !found {
                return false;
            }
        }
        self.len -= 1;
        if self.len * SHRINK_DENOMINATOR < (SHRINK_NUMERATOR << self.bits) && self.bits > BITS_MIN {
            self.rebucket();
        }
        true
    }

    /// The first token at or after `position`, wrapping; `None` when the index is empty.
    #[inline]
    pub(crate) fn first_at_or_after(&self, position: u64) -> Option<Cursor> {
        if self.len == 0 {
            return None;
        }
        let bucket = bucket_of(position, self.bits);
        let block = &self.blocks[bucket];
        let (index, len) = if block.len == SPILLED {
            let entries = &self.spill[&bucket];
            (
                entries.partition_point(|e| e.position < position),
                entries.len(),
            )
        } else {
            let len = usize::from(block.len);
            // Sorted, so the count below `position` is its insertion point; no branches.
            let below = block.positions[..len]
                .iter()
                .filter(|&&p| p < position)
                .count();
            (below, len)
        };
        if index < len {
            return Some(Cursor { bucket, index });
        }
        Some(self.first_from_bucket(bucket + 1))
    }

    #[inline]
    pub(crate) fn slot(&self, cursor: Cursor) -> u32 {
        let block = &self.blocks[cursor.bucket];
        if block.len == SPILLED {
            return u32::from(self.spill[&cursor.bucket][cursor.index].slot);
        }
        u32::from(block.slots[cursor.index])
    }

    /// The token after `cursor`, wrapping. The index must not be empty.
    #[inline]
    pub(crate) fn next(&self, cursor: Cursor) -> Cursor {
        if cursor.index + 1 < self.bucket_len(cursor.bucket) {
            return Cursor {
                bucket: cursor.bucket,
                index: cursor.index + 1,
            };
        }
        self.first_from_bucket(cursor.bucket + 1)
    }

    /// Every (position, slot), ascending position.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.blocks
            .iter()
            .enumerate()
            .flat_map(move |(bucket, block)| {
                let (inline, spilled): (usize, &[Entry]) = if block.len == SPILLED {
                    (0, &self.spill[&bucket])
                } else {
                    (usize::from(block.len), &[])
                };
                let inline = block.positions[..inline]
                    .iter()
                    .zip(&block.slots)
                    .map(|(&p, &s)| (p, u32::from(s)));
                inline.chain(spilled.iter().map(|e| (e.position, u32::from(e.slot))))
            })
    }

    /// (buckets, buckets spilled): how well the blocks fit the positions.
    pub(crate) fn shape(&self) -> (usize, usize) {
        (self.blocks.len(), self.spill.len())
    }

    /// Heap bytes held (allocated capacity).
    pub(crate) fn memory_bytes(&self) -> usize {
        let spilled: usize = self
            .spill
            .values()
            .map(|entries| entries.capacity() * std::mem::size_of::<Entry>() + 32)
            .sum();
        self.blocks.capacity() * std::mem::size_of::<Block>() + spilled
    }

    fn bucket_len(&self, bucket: usize) -> usize {
        let block = &self.blocks[bucket];
        if block.len == SPILLED {
            return self.spill[&bucket].len();
        }
        usize::from(block.len)
    }

    /// The first token of the first non-empty bucket from `bucket` on, wrapping.
    fn first_from_bucket(&self, bucket: usize) -> Cursor {
        let count = self.blocks.len();
        // Bounded by one lap; `len > 0` guarantees a hit.
        for step in 0..count {
            let candidate = (bucket + step) % count;
            if self.blocks[candidate].len != 0 {
                return Cursor {
                    bucket: candidate,
                    index: 0,
                };
            }
        }
        unreachable!("first_from_bucket on an empty index")
    }

    /// A copy of one bucket's entries, ascending.
    fn bucket_entries(&self, bucket: usize) -> Vec<Entry> {
        let block = &self.blocks[bucket];
        if block.len == SPILLED {
            return self.spill[&bucket].clone();
        }
        let len = usize::from(block.len);
        (0..len)
            .map(|i| Entry {
                position: block.positions[i],
                slot: block.slots[i],
            })
            .collect()
    }

    /// Takes one bucket's entries out for a change; [`ActiveIndex::put_bucket`] stores
    /// them back. At most a block's worth of copying unless the bucket spilled.
    fn take_bucket(&mut self, bucket: usize) -> Vec<Entry> {
        if self.blocks[bucket].len == SPILLED {
            self.blocks[bucket].len = 0;
            return self.spill.remove(&bucket).unwrap_or_default();
        }
        let entries = self.bucket_entries(bucket);
        self.blocks[bucket].len = 0;
        entries
    }

    fn put_bucket(&mut self, bucket: usize, entries: Vec<Entry>) {
        let block = &mut self.blocks[bucket];
        if entries.len() > BLOCK_ENTRIES {
            block.len = SPILLED;
            self.spill.insert(bucket, entries);
            return;
        }
        for (i, entry) in entries.iter().enumerate() {
            block.positions[i] = entry.position;
            block.slots[i] = entry.slot;
        }
        block.len = entries.len() as u8;
    }

    /// Appends a position larger than every indexed one (building in order).
    fn push_last(&mut self, position: u64, slot: u16) {
        let bucket = bucket_of(position, self.bits);
        let block = &mut self.blocks[bucket];
        let len = block.len;
        if len != SPILLED && usize::from(len) < BLOCK_ENTRIES {
            debug_assert!(len == 0 || block.positions[usize::from(len) - 1] < position);
            block.positions[usize::from(len)] = position;
            block.slots[usize::from(len)] = slot;
            block.len += 1;
        } else {
            let mut entries = self.take_bucket(bucket);
            entries.push(Entry { position, slot });
            self.put_bucket(bucket, entries);
        }
        self.len += 1;
    }

    /// Rebuilds with the bucket count for the current length, between the thresholds, so
    /// the next rebuild is a doubling or halving of the token count away.
    fn rebucket(&mut self) {
        let entries: Vec<(u64, u32)> = self.iter().collect();
        *self = ActiveIndex::from_sorted(&entries);
    }
}

/// Bits for `len` tokens: about [`PER_BUCKET_TARGET`] per bucket or fewer, within bounds.
fn bits_for(len: usize) -> u32 {
    let buckets = len.div_ceil(PER_BUCKET_TARGET).max(1).next_power_of_two();
    buckets.trailing_zeros().clamp(BITS_MIN, BITS_MAX)
}

#[inline]
fn bucket_of(position: u64, bits: u32) -> usize {
    (position >> (64 - bits)) as usize
}

fn slot_u16(slot: u32) -> u16 {
    // The view hands out at most MEMBERS_MAX (2^16) slots, numbered from 0.
    u16::try_from(slot).expect("slot numbers stay below 2^16")
}
#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::ops::Bound::{Excluded, Unbounded};

    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Against a sorted map: lookups and walks agree through inserts, removals and the
        /// rebuilds they trigger (clustered positions too, which crowd one bucket).
        #[test]
        fn matches_a_sorted_map(
            ops in prop::collection::vec((any::<bool>(), any::<u64>(), 0u64..4), 1..3000),
            probes in prop::collection::vec(any::<u64>(), 1..50),
        ) {
            let mut index = ActiveIndex::from_sorted(&[]);
            let mut model: BTreeMap<u64, u32> = BTreeMap::new();
            for (i, &(insert, raw, cluster)) in ops.iter().enumerate() {
                // cluster 0 puts positions in the top bucket's low range.
                let position = if cluster == 0 { raw >> 40 } else { raw };
                if insert && !model.contains_key(&position) {
                    index.insert(position, i as u32);
                    model.insert(position, i as u32);
                } else if let Some((&existing, _)) = model.range(position..).next() {
                    prop_assert!(index.remove(existing));
                    model.remove(&existing);
                }
                prop_assert_eq!(index.len(), model.len());
            }
            prop_assert_eq!(index.iter().collect::<Vec<_>>(), model.iter().map(|(&p, &s)| (p, s)).collect::<Vec<_>>());
            for probe in probes {
                let expected = model.range(probe..).next().or_else(|| model.iter().next());
                let found = index.first_at_or_after(probe);
                prop_assert_eq!(found.map(|c| index.slot(c)), expected.map(|(_, &s)| s));
                if let Some(cursor) = found {
                    let after = index.next(cursor);
                    let (&at, _) = expected.expect("found");
                    let want = model.range((Excluded(at), Unbounded)).next().or_else(|| model.iter().next()).map(|(_, &s)| s);
                    prop_assert_eq!(Some(index.slot(after)), want);
                }
            }
        }
    }
}
