//! The ring's byte encoding (docs/ring.md, "Encoding"): what snapshots store and what the
//! daemon sends to clients. Canonical: a state has exactly one encoding, and decoding
//! accepts only canonical input, treating it as hostile.

use std::collections::BTreeMap;

use crate::state::{RingState, Token};
use crate::tokens::TokenTable;
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
pub(crate) const MEMBER_FIXED_BYTES: usize = 8 + 4 + 1 + 1 + 4;

impl RingState {
    /// The canonical encoding of this state, epoch included. O(tokens × log): the bytes are
    /// the ring's size; a client that has an earlier ring fetches a [`crate::RingDelta`].
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&ENCODING_MAGIC);
        out.push(ENCODING_VERSION);
        out.extend_from_slice(&self.epoch.to_le_bytes());
        out.extend_from_slice(&self.vnodes.to_le_bytes());
        out.extend_from_slice(&(self.members.len() as u32).to_le_bytes());
        for member in self.members.values() {
            encode_member(&mut out, member, &self.tokens.positions_of(member.id));
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
        let mut reader = Reader::new(bytes);
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
            let (member, positions) = decode_member(&mut reader, tokens.len())?;
            tokens.extend(positions.into_iter().map(|position| Token {
                position,
                member: member.id,
            }));
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
        let tokens =
            TokenTable::from_sorted(&tokens, |id| members.get(&id).map_or(0, |m| m.weight));
        Ok(RingState {
            epoch,
            vnodes,
            members,
            tokens,
        })
    }
}

/// One member record of the encoding: the fixed fields, the zone, then the positions.
pub(crate) fn encode_member(out: &mut Vec<u8>, member: &Member, positions: &[u64]) {
    out.extend_from_slice(&member.id.to_le_bytes());
    out.extend_from_slice(&member.weight.to_le_bytes());
    out.push(member.state.to_byte());
    out.push(member.zone.len() as u8);
    out.extend_from_slice(member.zone.as_bytes());
    out.extend_from_slice(&(positions.len() as u32).to_le_bytes());
    for position in positions {
        out.extend_from_slice(&position.to_le_bytes());
    }
}

/// Bytes of one member record with `tokens` positions.
pub(crate) fn member_encoded_len(member: &Member, tokens: usize) -> usize {
    MEMBER_FIXED_BYTES + member.zone.len() + tokens * 8
}

/// Reads one member record; `tokens_before` counts the tokens already read, for the
/// ring-wide limit. Positions come back strictly ascending.
pub(crate) fn decode_member(
    reader: &mut Reader<'_>,
    tokens_before: usize,
) -> Result<(Member, Vec<u64>), DecodeError> {
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
    let total = tokens_before + token_count;
    check_limit("token count", total as u64, TOKENS_MAX as u64)?;
    reader.ensure(token_count * 8)?;
    let mut positions = Vec::with_capacity(token_count);
    for _ in 0..token_count {
        let position = reader.u64()?;
        if positions
            .last()
            .is_some_and(|&previous| previous >= position)
        {
            return Err(DecodeError::TokensUnsorted(id));
        }
        positions.push(position);
    }
    let member = Member {
        id,
        weight,
        zone,
        state,
    };
    Ok((member, positions))
}

pub(crate) fn check_limit(what: &'static str, value: u64, max: u64) -> Result<(), DecodeError> {
    if value > max {
        return Err(DecodeError::LimitExceeded { what, value, max });
    }
    Ok(())
}

/// A cursor over untrusted bytes: every read checks the length first.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, offset: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.offset
    }

    pub(crate) fn ensure(&self, needed: usize) -> Result<(), DecodeError> {
        if needed > self.remaining() {
            return Err(DecodeError::Truncated {
                offset: self.offset,
                needed: needed - self.remaining(),
            });
        }
        Ok(())
    }

    pub(crate) fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
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

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
}
