//! The byte form of a [`RingDelta`], version 1. Little-endian; member records are those of
//! the ring encoding (docs/ring.md §5):
//!
//! ```text
//! magic          4 bytes  "RRDL"
//! version        u8       1
//! from_epoch     u64
//! to_epoch       u64      ≥ from_epoch
//! vnodes         u32      1 … 4096
//! removed_count  u32      ≤ 65,536
//! removed        removed_count × u64 ids, strictly ascending
//! changed_count  u32      ≤ 65,536
//! changed        changed_count member records (id, weight, state, zone_len, zone,
//!                token_count, positions), strictly ascending id, none of them removed
//! ```
//!
//! Decoding treats the bytes as hostile, as the ring decoder does: every count is checked
//! against its limit and against the bytes present before allocating; a position held twice
//! anywhere in the delta is refused; accepted input is canonical.

use crate::codec::{decode_member, encode_member, member_encoded_len, Reader, MEMBER_FIXED_BYTES};
use crate::delta::{MemberEntry, RingDelta};
use crate::{DecodeError, MemberId, ENCODED_BYTES_MAX, MEMBERS_MAX, VNODES_MAX};

/// First bytes of every delta encoding.
pub const DELTA_MAGIC: [u8; 4] = *b"RRDL";
/// The delta version this crate writes, and the only one it reads.
pub const DELTA_VERSION: u8 = 1;
/// No valid delta encoding is longer: a delta never holds more than a whole ring.
pub const DELTA_BYTES_MAX: usize = ENCODED_BYTES_MAX;

const HEADER_BYTES: usize = 4 + 1 + 8 + 8 + 4 + 4 + 4;

impl RingDelta {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&DELTA_MAGIC);
        out.push(DELTA_VERSION);
        out.extend_from_slice(&self.from_epoch.to_le_bytes());
        out.extend_from_slice(&self.to_epoch.to_le_bytes());
        out.extend_from_slice(&self.vnodes.to_le_bytes());
        out.extend_from_slice(&(self.removed.len() as u32).to_le_bytes());
        for id in &self.removed {
            out.extend_from_slice(&id.to_le_bytes());
        }
        out.extend_from_slice(&(self.changed.len() as u32).to_le_bytes());
        for entry in &self.changed {
            encode_member(&mut out, &entry.member, &entry.positions);
        }
        out
    }

    /// Length of [`RingDelta::encode`]'s output.
    pub fn encoded_len(&self) -> usize {
        let changed: usize = self
            .changed
            .iter()
            .map(|e| member_encoded_len(&e.member, e.positions.len()))
            .sum();
        HEADER_BYTES + self.removed.len() * 8 + changed
    }

    /// Rebuilds a delta from [`RingDelta::encode`]'s output; the bytes are untrusted.
    pub fn decode(bytes: &[u8]) -> Result<RingDelta, DecodeError> {
        if bytes.len() > DELTA_BYTES_MAX {
            return Err(DecodeError::TooLong {
                len: bytes.len(),
                max: DELTA_BYTES_MAX,
            });
        }
        let mut reader = Reader::new(bytes);
        if reader.take(4)? != DELTA_MAGIC {
            return Err(DecodeError::BadMagic);
        }
        let version = reader.u8()?;
        if version != DELTA_VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let from_epoch = reader.u64()?;
        let to_epoch = reader.u64()?;
        if to_epoch < from_epoch {
            return Err(DecodeError::EpochsReversed {
                from: from_epoch,
                to: to_epoch,
            });
        }
        let vnodes = reader.u32()?;
        if vnodes == 0 {
            return Err(DecodeError::ZeroVnodes);
        }
        check_limit("vnodes", u64::from(vnodes), u64::from(VNODES_MAX))?;
        let removed = decode_removed(&mut reader)?;
        let changed = decode_changed(&mut reader, &removed)?;
        if reader.remaining() != 0 {
            return Err(DecodeError::TrailingBytes(reader.remaining()));
        }
        Ok(RingDelta {
            from_epoch,
            to_epoch,
            vnodes,
            removed,
            changed,
        })
    }
}

fn decode_removed(reader: &mut Reader<'_>) -> Result<Vec<MemberId>, DecodeError> {
    let count = reader.u32()? as usize;
    check_limit("removed count", count as u64, MEMBERS_MAX as u64)?;
    reader.ensure(count * 8)?;
    let mut removed: Vec<MemberId> = Vec::with_capacity(count);
    for _ in 0..count {
        let id = reader.u64()?;
        if removed.last().is_some_and(|&previous| previous >= id) {
            return Err(DecodeError::RemovedUnsorted(id));
        }
        removed.push(id);
    }
    Ok(removed)
}

fn decode_changed(
    reader: &mut Reader<'_>,
    removed: &[MemberId],
) -> Result<Vec<MemberEntry>, DecodeError> {
    let count = reader.u32()? as usize;
    check_limit("changed count", count as u64, MEMBERS_MAX as u64)?;
    reader.ensure(count.saturating_mul(MEMBER_FIXED_BYTES))?;
    let mut changed: Vec<MemberEntry> = Vec::with_capacity(count);
    let mut tokens = 0usize;
    for _ in 0..count {
        let (member, positions) = decode_member(reader, tokens)?;
        if changed.last().is_some_and(|e| e.member.id >= member.id) {
            return Err(DecodeError::MembersUnsorted(member.id));
        }
        if removed.binary_search(&member.id).is_ok() {
            return Err(DecodeError::RemovedAndChanged(member.id));
        }
        tokens += positions.len();
        changed.push(MemberEntry { member, positions });
    }
    let mut all: Vec<u64> = changed
        .iter()
        .flat_map(|e| e.positions.iter().copied())
        .collect();
    all.sort_unstable();
    if let Some(pair) = all.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(DecodeError::DuplicateToken(pair[0]));
    }
    Ok(changed)
}

fn check_limit(what: &'static str, value: u64, max: u64) -> Result<(), DecodeError> {
    if value > max {
        return Err(DecodeError::LimitExceeded { what, value, max });
    }
    Ok(())
}
