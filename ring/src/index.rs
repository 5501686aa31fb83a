//! The lookup index: the active tokens in buckets by their top bits, each bucket a short
//! sorted array of (position, slot). A lookup is one shift, one bucket and a binary search
//! over a few entries, whose slot sits next to its position (one cache miss less);
//! inserting or removing a token touches one bucket. Allocation keeps ranges near equal, so
//! buckets stay short; the bucket count follows the token count (doubling or halving, a
//! linear pass that happens only when the count crosses a power of two, so O(1) amortized).

/// Bucket count bounds, as bits: at least 2 buckets, at most 2^24.
const BITS_MIN: u32 = 1;
const BITS_MAX: u32 = 24;
/// Average tokens per bucket above which the buckets double, and below which they halve;
/// a rebuild aims at [`PER_BUCKET`]. Fewer per bucket cost a bucket header (24 bytes) and
/// an allocation per few tokens; more cost a longer search. About 16 keeps the index near
/// 20 bytes per token and a search within three cache lines.
const PER_BUCKET: usize = 16;
const PER_BUCKET_GROW: usize = 2 * PER_BUCKET;
const PER_BUCKET_SHRINK: usize = PER_BUCKET / 2;

/// Where a token sits in the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cursor {
    bucket: usize,
    index: usize,
}

/// A token of an active member and the slot of its member (see `crate::view`).
#[derive(Clone, Copy, Debug)]
struct Entry {
    position: u64,
    slot: u32,
}

type Bucket = Vec<Entry>;

#[derive(Clone, Debug)]
pub(crate) struct ActiveIndex {
    buckets: Vec<Bucket>,
    bits: u32,
    len: usize,
}

impl ActiveIndex {
    /// An index over (position, slot) pairs in strictly ascending position. Each bucket is
    /// allocated at its exact size.
    pub(crate) fn from_sorted(entries: &[(u64, u32)]) -> Self {
        let bits = bits_for(entries.len());
        let mut sizes = vec![0usize; 1 << bits];
        for &(position, _) in entries {
            sizes[bucket_of(position, bits)] += 1;
        }
        let mut buckets: Vec<Bucket> = sizes.into_iter().map(Vec::with_capacity).collect();
        for &(position, slot) in entries {
            let bucket = &mut buckets[bucket_of(position, bits)];
            debug_assert!(bucket.last().is_none_or(|e| e.position < position));
            bucket.push(Entry { position, slot });
        }
        ActiveIndex {
            buckets,
            bits,
            len: entries.len(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn insert(&mut self, position: u64, slot: u32) {
        let bucket = &mut self.buckets[bucket_of(position, self.bits)];
        let at = bucket.partition_point(|e| e.position < position);
        assert!(
            bucket.get(at).is_none_or(|e| e.position != position),
            "position {position} is already indexed"
        );
        bucket.insert(at, Entry { position, slot });
        self.len += 1;
        if self.len > PER_BUCKET_GROW << self.bits && self.bits < BITS_MAX {
            self.rebucket();
        }
    }

    /// Removes `position`; false if it was not indexed.
    pub(crate) fn remove(&mut self, position: u64) -> bool {
        let bucket = &mut self.buckets[bucket_of(position, self.bits)];
        let at = bucket.partition_point(|e| e.position < position);
        if bucket.get(at).is_none_or(|e| e.position != position) {
            return false;
        }
        bucket.remove(at);
        self.len -= 1;
        if self.len < PER_BUCKET_SHRINK << self.bits && self.bits > BITS_MIN {
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
        let entries = &self.buckets[bucket];
        let index = entries.partition_point(|e| e.position < position);
        if index < entries.len() {
            return Some(Cursor { bucket, index });
        }
        Some(self.first_from_bucket(bucket + 1))
    }

    #[inline]
    pub(crate) fn slot(&self, cursor: Cursor) -> u32 {
        self.buckets[cursor.bucket][cursor.index].slot
    }

    /// The token after `cursor`, wrapping. The index must not be empty.
    #[inline]
    pub(crate) fn next(&self, cursor: Cursor) -> Cursor {
        if cursor.index + 1 < self.buckets[cursor.bucket].len() {
            return Cursor {
                bucket: cursor.bucket,
                index: cursor.index + 1,
            };
        }
        self.first_from_bucket(cursor.bucket + 1)
    }

    /// The first token of the first non-empty bucket from `bucket` on, wrapping.
    fn first_from_bucket(&self, bucket: usize) -> Cursor {
        let count = self.buckets.len();
        // Bounded by one lap; `len > 0` guarantees a hit.
        for step in 0..count {
            let candidate = (bucket + step) % count;
            if !self.buckets[candidate].is_empty() {
                return Cursor {
                    bucket: candidate,
                    index: 0,
                };
            }
        }
        unreachable!("first_from_bucket on an empty index")
    }

    /// Every (position, slot), ascending position.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.buckets
            .iter()
            .flat_map(|b| b.iter().map(|e| (e.position, e.slot)))
    }

    /// Heap bytes held (allocated capacity).
    pub(crate) fn memory_bytes(&self) -> usize {
        self.buckets.capacity() * std::mem::size_of::<Bucket>()
            + self
                .buckets
                .iter()
                .map(|b| b.capacity() * std::mem::size_of::<Entry>())
                .sum::<usize>()
    }

    /// Rebuilds with the bucket count for the current length ([`PER_BUCKET`] per bucket, half
    /// way between the thresholds, so the next rebuild is a doubling or halving away).
    fn rebucket(&mut self) {
        let entries: Vec<(u64, u32)> = self.iter().collect();
        *self = ActiveIndex::from_sorted(&entries);
    }
}

/// Bits for `len` tokens: an average of about [`PER_BUCKET`] per bucket, within the bounds.
fn bits_for(len: usize) -> u32 {
    let buckets = (len / PER_BUCKET).max(1).next_power_of_two();
    buckets.trailing_zeros().clamp(BITS_MIN, BITS_MAX)
}

#[inline]
fn bucket_of(position: u64, bits: u32) -> usize {
    (position >> (64 - bits)) as usize
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
