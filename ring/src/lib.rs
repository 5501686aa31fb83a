//! Consistent-hash ring for ringraft: pure (no IO), specified in docs/ring.md.
//!
//! [`RingState`] is the replicated part: members, their tokens and the epoch. Every change
//! is deterministic (a joining member's tokens are *allocated* from the current ring, see
//! docs/ring.md), so the daemon's state machine applies the same history on every node and
//! gets the same bytes, which [`RingState::encode`] / [`RingState::decode`] carry into
//! snapshots and to clients. [`Ring`] is the lookup view built from a state: `owner` and
//! `replicas`, each answer stamped with the epoch.

mod allocate;
mod codec;
mod error;
mod hash;
mod lookup;
mod member;
mod state;

pub use codec::{ENCODED_BYTES_MAX, ENCODING_MAGIC, ENCODING_VERSION};
pub use error::{DecodeError, RingError};
pub use hash::key_position;
pub use lookup::{Owner, Replicas, Ring};
pub use member::{Member, MemberId, MemberState};
pub use state::{RingState, Token};

/// Tokens per unit of weight unless the cluster configures otherwise; chosen by
/// measurement (BENCHMARKS.md, "Ring").
pub const DEFAULT_VNODES: u32 = 128;
/// Largest accepted vnodes setting.
pub const VNODES_MAX: u32 = 4096;
/// Most tokens one member may hold (vnodes × weight).
pub const TOKENS_PER_MEMBER_MAX: u32 = 65_536;
/// Most members in a ring.
pub const MEMBERS_MAX: usize = 65_536;
/// Most tokens in a ring.
pub const TOKENS_MAX: usize = 1 << 22;
/// Longest zone name, in bytes of UTF-8.
pub const ZONE_BYTES_MAX: usize = 255;
