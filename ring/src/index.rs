//! The lookup index: the active tokens in buckets by their top bits, each bucket a short
//! sorted array. A lookup is one shift, one bucket and a binary search over a few entries;
//! inserting or removing a token touches one bucket. Allocation keeps ranges near equal, so
//! buckets stay short; the bucket count follows the token count (doubling or halving, a
//! linear pass that happens only when the count crosses a power of two, so O(1) amortized).

/// Bucket count bounds, as bits: at least 2 buckets, at most 2^24.
const BITS_MIN: u32 = 1;
const BITS_MAX: u32 = 24;
/// Average tokens per bucket above which the buckets double, and below which they halve.
/// Near 4 a bucket's positions fit one or two cache lines.
const PER_BUCKET_GROW: usize = 8;
const PER_BUCKET_SHRINK: usize = 2;

/// Where a token sits in the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cursor {
    bucket: usize,
    index: usize,
}

#[derive(Clone, Debug, Default)]
struct Bucket {
    positions: Vec<u64>,
    /// The owning slot of each position (see `crate::lookup`).
    slots: Vec<u32>,
}

#[derive(Clone, Debug)]
pub(crate) struct ActiveIndex {
    buckets: Vec<Bucket>,
    bits: u32,
    len: usize,
}

impl ActiveIndex {
    /// An index over (position, slot) pairs in strictly ascending position.
    pub(crate) fn from_sorted(entries: impl ExactSizeIterator<Item = (u64, u32)>) -> Self {
        let bits = bits_for(entries.len());
        let mut index = ActiveIndex {
            buckets: vec![Bucket::default(); 1 << bits],
            bits,
            len: 0,
        };
        for (position, slot) in entries {
            let bucket = &mut index.buckets[bucket_of(position, bits)];
            debug_assert!(bucket.positions.last().is_none_or(|&p| p < position));
            bucket.positions.push(position);
            bucket.slots.push(slot);
            index.len += 1;
        }
        index
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn insert(&mut self, position: u64, slot: u32) {
        let bucket = &mut self.buckets[bucket_of(position, self.bits)];
        let at = bucket.positions.partition_point(|&p| p < position);
        assert!(
            bucket.positions.get(at) != Some(&position),
            "position {position} is already indexed"
        );
        bucket.positions.insert(at, position);
        bucket.slots.insert(at, slot);
        self.len += 1;
        if self.len > PER_BUCKET_GROW << self.bits && self.bits < BITS_MAX {
            self.rebucket();
        }
    }

    /// Removes `position`; false if it was not indexed.
    pub(crate) fn remove(&mut self, position: u64) -> bool {
        let bucket = &mut self.buckets[bucket_of(position, self.bits)];
        let at = bucket.positions.partition_point(|&p| p < position);
        if bucket.positions.get(at) != Some(&position) {
            return false;
        }
        bucket.positions.remove(at);
        bucket.slots.remove(at);
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
        let positions = &self.buckets[bucket].positions;
        let index = positions.partition_point(|&p| p < position);
        if index < positions.len() {
            return Some(Cursor { bucket, index });
        }
        Some(self.first_from_bucket(bucket + 1))
    }

    #[inline]
    pub(crate) fn slot(&self, cursor: Cursor) -> u32 {
        self.buckets[cursor.bucket].slots[cursor.index]
    }

    /// The token after `cursor`, wrapping. The index must not be empty.
    #[inline]
    pub(crate) fn next(&self, cursor: Cursor) -> Cursor {
        if cursor.index + 1 < self.buckets[cursor.bucket].positions.len() {
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
            if !self.buckets[candidate].positions.is_empty() {
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
            .flat_map(|b| b.positions.iter().copied().zip(b.slots.iter().copied()))
    }

    /// Heap bytes held (allocated capacity).
    pub(crate) fn memory_bytes(&self) -> usize {
        self.buckets.capacity() * std::mem::size_of::<Bucket>()
            + self
                .buckets
                .iter()
                .map(|b| b.positions.capacity() * 8 + b.slots.capacity() * 4)
                .sum::<usize>()
    }

    /// Rebuilds with the bucket count for the current length (about 4 per bucket, half way
    /// between the thresholds, so the next rebuild is a doubling or halving away).
    fn rebucket(&mut self) {
        let entries: Vec<(u64, u32)> = self.iter().collect();
        *self = ActiveIndex::from_sorted(entries.into_iter());
    }
}

/// Bits for `len` tokens: an average of about 4 per bucket, within the bounds.
fn bits_for(len: usize) -> u32 {
    let buckets = (len / 4).max(1).next_power_of_two();
    buckets.trailing_zeros().clamp(BITS_MIN, BITS_MAX)
}

#[inline]
fn bucket_of(position: u64, bits: u32) -> usize {
    (position >> (64 - bits)) as usize
}
