//! The schemes the ring is compared with, written here for reference only: hashed tokens
//! (the classic consistent-hash ring), jump consistent hash and rendezvous hashing.

use xxhash_rust::xxh3::xxh3_64;

/// A classic ring: member `id`'s token `i` sits at xxh3_64(id LE ‖ i LE).
pub struct HashedRing {
    positions: Vec<u64>,
    owners: Vec<u64>,
}

impl HashedRing {
    pub fn new(members: &[u64], vnodes: u32) -> Self {
        let mut tokens: Vec<(u64, u64)> = Vec::with_capacity(members.len() * vnodes as usize);
        for &id in members {
            for i in 0..u64::from(vnodes) {
                let mut bytes = [0u8; 16];
                bytes[..8].copy_from_slice(&id.to_le_bytes());
                bytes[8..].copy_from_slice(&i.to_le_bytes());
                tokens.push((xxh3_64(&bytes), id));
            }
        }
        tokens.sort_unstable();
        tokens.dedup_by_key(|t| t.0);
        HashedRing {
            positions: tokens.iter().map(|t| t.0).collect(),
            owners: tokens.iter().map(|t| t.1).collect(),
        }
    }

    pub fn owner_at(&self, position: u64) -> u64 {
        let index = self.positions.partition_point(|&p| p < position);
        self.owners[if index == self.positions.len() {
            0
        } else {
            index
        }]
    }

    /// Exact share of the circle per member, as fractions of 2^64.
    pub fn coverage(&self) -> Vec<(u64, f64)> {
        let mut shares = std::collections::BTreeMap::new();
        let last = *self.positions.last().unwrap_or(&0);
        let mut previous = last;
        for (&position, &owner) in self.positions.iter().zip(&self.owners) {
            let width = position.wrapping_sub(previous) as f64 / 2f64.powi(64);
            *shares.entry(owner).or_insert(0.0) += width;
            previous = position;
        }
        shares.into_iter().collect()
    }

    pub fn memory_bytes(&self) -> usize {
        self.positions.capacity() * 8 + self.owners.capacity() * 8
    }
}

/// Jump consistent hash (Lamping and Veach, 2014): buckets 0..buckets, no memory, but only
/// the last bucket can leave without moving other keys.
pub fn jump(mut key: u64, buckets: u32) -> u32 {
    let mut bucket: i64 = -1;
    let mut next: i64 = 0;
    while next < i64::from(buckets) {
        bucket = next;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        next = ((bucket + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    bucket as u32
}

/// Rendezvous (highest random weight) hashing: the member with the highest mix(key, id).
pub fn rendezvous(key: u64, members: &[u64]) -> u64 {
    let mut best = (0u64, 0u64);
    for &id in members {
        let score = mix(key ^ mix(id));
        if score >= best.0 {
            best = (score, id);
        }
    }
    best.1
}

/// The three best members by rendezvous score, best first.
pub fn rendezvous3(key: u64, members: &[u64]) -> [u64; 3] {
    let mut best = [(0u64, 0u64); 3];
    for &id in members {
        let score = mix(key ^ mix(id));
        if score > best[2].0 {
            best[2] = (score, id);
            if best[2].0 > best[1].0 {
                best.swap(1, 2);
                if best[1].0 > best[0].0 {
                    best.swap(0, 1);
                }
            }
        }
    }
    [best[0].1, best[1].1, best[2].1]
}

/// The splitmix64 finalizer: a cheap, well-mixed 64-bit permutation.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
