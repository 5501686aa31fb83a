//! Members as the ring sees them: identity, weight, zone and state.

/// A member's identity: the daemon's node id.
pub type MemberId = u64;

/// Whether a member owns keys. Only [`MemberState::Active`] members do; the tokens of the
/// others stay in place (so their return moves back exactly the keys they had) but are
/// skipped by lookups, which hands their ranges to the next active token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MemberState {
    Active,
    Draining,
    Down,
}

impl MemberState {
    /// The byte used for this state in the encoding and the specification.
    pub const fn to_byte(self) -> u8 {
        match self {
            MemberState::Active => 0,
            MemberState::Draining => 1,
            MemberState::Down => 2,
        }
    }

    pub const fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(MemberState::Active),
            1 => Some(MemberState::Draining),
            2 => Some(MemberState::Down),
            _ => None,
        }
    }
}

/// A member of the ring. `zone` is free text (at most [`crate::ZONE_BYTES_MAX`] bytes of
/// UTF-8); the empty string means "no zone", and such a member never conflicts with another
/// in the zone walk.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Member {
    pub id: MemberId,
    pub weight: u32,
    pub zone: String,
    pub state: MemberState,
}

impl Member {
    /// An active member without zone.
    pub fn new(id: MemberId, weight: u32) -> Self {
        Member {
            id,
            weight,
            zone: String::new(),
            state: MemberState::Active,
        }
    }

    /// The same member placed in `zone`.
    pub fn with_zone(mut self, zone: impl Into<String>) -> Self {
        self.zone = zone.into();
        self
    }

    /// The same member in `state`.
    pub fn with_state(mut self, state: MemberState) -> Self {
        self.state = state;
        self
    }
}
