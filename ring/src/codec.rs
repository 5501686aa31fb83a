//! The ring's byte encoding (docs/ring.md, "Encoding"): what snapshots store and what the
//! daemon sends to clients. Canonical: a state has exactly one encoding, and decoding
//! accepts only canonical input, treating it as hostile.

use std::collections::BTreeMap;

use crate::state::{RingState, Token};
use crate::{
    DecodeError, Member, MemberState, MEMBERS_MAX, TOKENS_MAX, TOKENS_PER_MEMBER_MAX, VNODES_MAX,
    ZONE_BYTES_MAX,
};

/// First bytes of every encoding.
pub const ENCODING_MAGIC: [u8; 4] = *b"RRNG";
/// The version this crate writes, and the only one it reads.
pub const ENCODING_VERSION: u8 = 1;
/// No valid encoding is longer (every limit at its maximum fits well inside).
pub const ENCODED_BYTES_MAX: usize = 64 << 20;

const HEADER_BYTES: usize = 4 + 1 + 8 + 4 + 4;
const MEMBER_FIXED_BYTES: usize = 8 + 4 + 1 + 1 + 4;

impl RingState {
    /// The canonical encoding of this state, epoch included.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&ENCODING_MAGIC);
        out.push(ENCODING_VERSION);
        out.extend_from_slice(&self.epoch.to_le_bytes());
        out.extend_from_slice(&self.vnodes.to_le_bytes());
        out.extend_from_slice(&(self.members.len() as u32).to_le_bytes());
        let mut positions_of: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for token in &self.tokens {
            positions_of
                .entry(token.member)
                .or_default()
                .push(token.position);
        }
        for member in self.members.values() {
            out.extend_from_slice(&member.id.to_le_bytes());
            out.extend_from_slice(&member.weight.to_le_bytes());
            out.push(member.state.to_byte());
            out.push(member.zone.len() as u8);
            out.extend_from_slice(member.zone.as_bytes());
            let positions = positions_of
                .get(&member.id)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            out.extend_from_slice(&(positions.len() as u32).to_le_bytes());
            for position in positions {
                out.extend_from_slice(&position.to_le_bytes());
            }
        }
        out
    }

    /// Length of [`RingState::encode`]'s output.
    pub fn encoded_len(&self) -> usize {
        let zones: usize = self.members.values().map(|m| m.zone.len()).sum();
        HEADER_BYTES + self.members.len() * MEMBER_FIXED_BYTES + zones + self.tokens.len() * 8
    }

    /// Rebuilds a state from [`RingState::encode`]'s output. Input is untrusted: every
    /// count is checked against its limit and against the bytes actually present before
    /// anything is allocated, and any deviation from the canonical form is an error.
    pub fn decode(bytes: &[u8]) -> Result<RingState, DecodeError> {
        if bytes.len() > ENCODED_BYTES_MAX {
            return Err(DecodeError::TooLong {
                len: bytes.len(),
                max: ENCODED_BYTES_MAX,
            });
        }
        let mut reader = Reader { bytes, offset: 0 };
        if reader.take(4)? != ENCODING_MAGIC {
            return Err(DecodeError::BadMagic);
        }
        let version = reader.u8()?;
        if version != ENCODING_VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let epoch = reader.u64()?;
        let vnodes = reader.u32()?;
        if vnodes == 0 {
            return Err(DecodeError::ZeroVnodes);
        }
        check_limit("vnodes", u64::from(vnodes), u64::from(VNODES_MAX))?;
        let member_count = reader.u32()? as usize;
        check_limit("member count", member_count as u64, MEMBERS_MAX as u64)?;
        reader.ensure(member_count.saturating_mul(MEMBER_FIXED_BYTES))?;

        let mut members = BTreeMap::new();
        let mut tokens = Vec::new();
        let mut previous_id = None;
        for _ in 0..member_count {
            let member = decode_member(&mut reader, &mut tokens)?;
            if previous_id.is_some_and(|previous| previous >= member.id) {
                return Err(DecodeError::MembersUnsorted(member.id));
            }
            previous_id = Some(member.id);
            members.insert(member.id, member);
        }
        if reader.remaining() != 0 {
            return Err(DecodeError::TrailingBytes(reader.remaining()));
        }
        tokens.sort_unstable_by_key(|token: &Token| token.position);
        if let Some(pair) = tokens.windows(2).find(|p| p[0].position == p[1].position) {
            return Err(DecodeError::DuplicateToken(pair[0].position));
        }
        Ok(RingState {
            epoch,
            vnodes,
            members,
            tokens,
        })
    }
}

fn decode_member(reader: &mut Reader<'_>, tokens: &mut Vec<Token>) -> Result<Member, DecodeError> {
    let id = reader.u64()?;
    let weight = reader.u32()?;
    let state_byte = reader.u8()?;
    let state = MemberState::from_byte(state_byte).ok_or(DecodeError::BadState(state_byte))?;
    let zone_len = usize::from(reader.u8()?);
    // A u8 length cannot exceed the limit; the check keeps the two in step if either moves.
    check_limit("zone length", zone_len as u64, ZONE_BYTES_MAX as u64)?;
    let zone = std::str::from_utf8(reader.take(zone_len)?)
        .map_err(|_| DecodeError::BadZone(id))?
        .to_owned();
    let token_count = reader.u32()? as usize;
    check_limit(
        "tokens of one member",
        token_count as u64,
        u64::from(TOKENS_PER_MEMBER_MAX),
    )?;
    let total = tokens.len() + token_count;
    check_limit("token count", total as u64, TOKENS_MAX as u64)?;
    reader.ensure(token_count * 8)?;
    tokens.reserve(token_count);
    let mut previous = None;
    for _ in 0..token_count {
        let position = reader.u64()?;
        if previous.is_some_and(|previous| previous >= position) {
            return Err(DecodeError::TokensUnsorted(id));
        }
        previous = Some(position);
        tokens.push(Token {
            position,
            member: id,
        });
    }
    Ok(Member {
        id,
        weight,
        zone,
        state,
    })
}

fn check_limit(what: &'static str, value: u64, max: u64) -> Result<(), DecodeError> {
    if value > max {
        return Err(DecodeError::LimitExceeded { what, value, max });
    }
    Ok(())
}

struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.offset
    }

    fn ensure(&self, needed: usize) -> Result<(), DecodeError> {
        if needed > self.remaining() {
            return Err(DecodeError::Truncated {
                offset: self.offset,
                needed: needed - self.remaining(),
            });
        }
        Ok(())
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        self.ensure(len)?;
        let slice = &self.bytes[self.offset..self.offset + len];
        self.offset += len;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
}
