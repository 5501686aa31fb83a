//! Errors of the ring's two surfaces: changing the state and decoding bytes.

use crate::MemberId;

/// A membership change the ring refuses. The state is unchanged when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    #[error("member {0} is already in the ring")]
    DuplicateMember(MemberId),
    #[error("member {0} is not in the ring")]
    UnknownMember(MemberId),
    #[error("epoch {given} is older than the ring's epoch {current}")]
    EpochRegressed { current: u64, given: u64 },
    #[error("the ring already holds the maximum of {max} members")]
    TooManyMembers { max: usize },
    #[error("weight {weight} with {vnodes} vnodes gives {tokens} tokens, above the per-member maximum {max}")]
    WeightTooLarge {
        weight: u32,
        vnodes: u32,
        tokens: u64,
        max: u32,
    },
    #[error("the ring would hold {tokens} tokens, above the maximum {max}")]
    TooManyTokens { tokens: usize, max: usize },
    #[error("zone is {len} bytes long, above the maximum {max}")]
    ZoneTooLong { len: usize, max: usize },
    #[error("vnodes must be within 1..={max}, got {vnodes}")]
    VnodesOutOfRange { vnodes: u32, max: u32 },
    #[error("no range of the ring is wide enough to split")]
    RingExhausted,
}

/// Why bytes are not a valid ring (or ring delta) encoding. Decoding never panics and never allocates more
/// than the input can justify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("input ends early: needed {needed} more bytes at offset {offset}")]
    Truncated { offset: usize, needed: usize },
    #[error("input is {len} bytes, above the maximum {max}")]
    TooLong { len: usize, max: usize },
    #[error("not a ring encoding (bad magic)")]
    BadMagic,
    #[error("unsupported ring encoding version {0}")]
    UnsupportedVersion(u8),
    #[error("{what} is {value}, above the maximum {max}")]
    LimitExceeded {
        what: &'static str,
        value: u64,
        max: u64,
    },
    #[error("vnodes is 0")]
    ZeroVnodes,
    #[error("unknown member state byte {0}")]
    BadState(u8),
    #[error("zone of member {0} is not UTF-8")]
    BadZone(MemberId),
    #[error("member ids are not strictly ascending at member {0}")]
    MembersUnsorted(MemberId),
    #[error("tokens of member {0} are not strictly ascending")]
    TokensUnsorted(MemberId),
    #[error("token position {0} appears more than once")]
    DuplicateToken(u64),
    #[error("{0} bytes follow the encoding")]
    TrailingBytes(usize),
    #[error("delta goes from epoch {from} back to {to}")]
    EpochsReversed { from: u64, to: u64 },
    #[error("removed member ids are not strictly ascending at member {0}")]
    RemovedUnsorted(MemberId),
    #[error("member {0} is both removed and changed")]
    RemovedAndChanged(MemberId),
}

/// Why a [`crate::RingDelta`] does not apply to a ring. The ring is unchanged when one is
/// returned; a client fetches the whole ring instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeltaError {
    #[error("the delta starts at epoch {delta_from}, the ring is at epoch {ring}")]
    EpochMismatch { ring: u64, delta_from: u64 },
    #[error("token position {position} is held by member {holder}, which the delta leaves alone")]
    TokenTaken { position: u64, holder: MemberId },
    #[error("token position {0} appears more than once in the delta")]
    DuplicateToken(u64),
    #[error("the ring would hold {members} members, above the maximum {max}")]
    TooManyMembers { members: usize, max: usize },
    #[error("the ring would hold {tokens} tokens, above the maximum {max}")]
    TooManyTokens { tokens: usize, max: usize },
    #[error("vnodes must be within 1..={max}, got {vnodes}")]
    VnodesOutOfRange { vnodes: u32, max: u32 },
}
