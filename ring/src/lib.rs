//! Consistent-hash ring for ringraft: pure (no IO), specified in docs/ring.md.
//!
//! [`RingState`] is the replicated part: members, their tokens and the epoch. Every change
//! is deterministic (a joining member's tokens are *allocated* from the current ring, see
//! docs/ring.md), so the daemon's state machine applies the same history on every node and
//! gets the same bytes, which [`RingState::encode`] / [`RingState::decode`] carry into
//! snapshots and to clients. [`Ring`] is the lookup view built from a state: `owner` and
//! `replicas`, each answer stamped with the epoch.
//!
//! Changes cost O(the touched member's tokens × log), for the state and for a [`Ring`]'s view
//! alike (issue 14): allocation reads widths, loads and weight groups that are kept current
//! instead of recomputed. A [`RingDelta`] carries the members changed between two epochs, so
//! a client's cached ring follows with O(change) bytes; a [`RingJournal`] records which
//! members each change touched, to build one. [`mod@reference`] keeps the original whole-ring
//! implementation as the oracle the tests compare against.

mod allocate;
mod codec;
mod delta;
mod delta_codec;
mod error;
mod hash;
mod index;
mod journal;
mod lookup;
mod member;
#[cfg(test)]
mod mutant;
mod state;
mod tokens;
mod view;

#[doc(hidden)]
pub mod reference;

pub use codec::{ENCODED_BYTES_MAX, ENCODING_MAGIC, ENCODING_VERSION};
pub use delta::{MemberEntry, RingDelta};
pub use delta_codec::{DELTA_BYTES_MAX, DELTA_MAGIC, DELTA_VERSION};
pub use error::{DecodeError, DeltaError, RingError};
pub use hash::key_position;
pub use journal::{RingJournal, JOURNAL_CHANGES_DEFAULT};
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
