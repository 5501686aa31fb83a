//! The key hash: where a key sits on the ring.

/// The position of `key` on the ring: XXH3-64 of the key bytes with seed 0
/// (`XXH3_64bits` in the reference C implementation).
#[inline]
pub fn key_position(key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key)
}
