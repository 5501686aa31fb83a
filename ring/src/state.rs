//! The ring's replicated state: members, their tokens, the vnodes setting and the epoch.
//! Every change is deterministic, so applying the same history on every node gives the
//! same state byte for byte. A change costs O(the tokens of the member it touches × log):
//! the tokens live in a [`TokenTable`] that keeps what allocation needs current.

use std::collections::BTreeMap;

use crate::allocate::allocate;
use crate::tokens::TokenTable;
use crate::{
    Member, MemberId, MemberState, RingError, MEMBERS_MAX, TOKENS_MAX, TOKENS_PER_MEMBER_MAX,
    VNODES_MAX, ZONE_BYTES_MAX,
};

/// One point on the ring. The member owns the range `(previous token, position]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Token {
    pub position: u64,
    pub member: MemberId,
}

/// Members and their tokens: the part of the cluster state that decides ownership.
///
/// Mutations take the epoch of the change (the Raft index of the entry being applied) and
/// refuse an epoch older than the current one. A failed mutation leaves the state as it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RingState {
    pub(crate) epoch: u64,
    pub(crate) vnodes: u32,
    pub(crate) members: BTreeMap<MemberId, Member>,
    /// Positions are unique; every holder is in `members`.
    pub(crate) tokens: TokenTable,
}

impl RingState {
    /// An empty ring at epoch 0 whose members get `vnodes × weight` tokens each.
    pub fn new(vnodes: u32) -> Result<Self, RingError> {
        check_vnodes(vnodes)?;
        Ok(RingState {
            epoch: 0,
            vnodes,
            members: BTreeMap::new(),
            tokens: TokenTable::default(),
        })
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn vnodes(&self) -> u32 {
        self.vnodes
    }

    /// Members in ascending id order.
    pub fn members(&self) -> impl ExactSizeIterator<Item = &Member> + '_ {
        self.members.values()
    }

    pub fn member(&self, id: MemberId) -> Option<&Member> {
        self.members.get(&id)
    }

    /// All tokens, in ascending position, whatever their member's state.
    pub fn tokens(&self) -> impl ExactSizeIterator<Item = Token> + DoubleEndedIterator + '_ {
        self.tokens.iter()
    }

    /// Positions of one member's tokens, ascending. O(its tokens × log).
    pub fn tokens_of(&self, id: MemberId) -> Vec<u64> {
        self.tokens.positions_of(id)
    }

    /// How much of the circle (out of 2^64) each member's tokens cover, ignoring states.
    /// Members without tokens are absent.
    pub fn token_coverage(&self) -> BTreeMap<MemberId, u128> {
        self.tokens.loads()
    }

    /// The width of each token's range, aligned with [`RingState::tokens`].
    pub fn token_widths(&self) -> Vec<u128> {
        self.tokens.widths()
    }

    /// Estimated heap bytes (see `TokenTable::memory_bytes`).
    pub(crate) fn memory_bytes(&self) -> usize {
        let members: usize = self
            .members
            .values()
            .map(|m| (8 + std::mem::size_of::<Member>()) * 3 / 2 + m.zone.capacity())
            .sum();
        members + self.tokens.memory_bytes()
    }

    /// Recomputes everything the state derives from its tokens and compares it with what
    /// was kept up to date change by change. O(tokens); for tests and debugging.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), String> {
        if let Some(token) = self
            .tokens
            .iter()
            .find(|t| !self.members.contains_key(&t.member))
        {
            return Err(format!(
                "token {} held by unknown member {}",
                token.position, token.member
            ));
        }
        self.tokens
            .check(|id| self.members.get(&id).map_or(0, |m| m.weight))
    }

    /// Changes the token count given to members that join or grow from now on. Tokens
    /// already placed stay, so no key moves and the epoch is unchanged.
    pub fn set_vnodes(&mut self, vnodes: u32) -> Result<(), RingError> {
        check_vnodes(vnodes)?;
        self.vnodes = vnodes;
        Ok(())
    }

    /// Adds `member` and allocates its `vnodes × weight` tokens (docs/ring.md,
    /// "Allocation"). Keys move only to the new member, and only if it is active.
    pub fn join(&mut self, member: Member, epoch: u64) -> Result<(), RingError> {
        self.check_epoch(epoch)?;
        if self.members.contains_key(&member.id) {
            return Err(RingError::DuplicateMember(member.id));
        }
        if self.members.len() >= MEMBERS_MAX {
            return Err(RingError::TooManyMembers { max: MEMBERS_MAX });
        }
        check_zone(&member.zone)?;
        let count = self.token_count(member.weight)?;
        self.check_room(count)?;
        allocate(&mut self.tokens, member.id, member.weight, count)?;
        self.members.insert(member.id, member);
        self.epoch = epoch;
        Ok(())
    }

    /// Removes a member and its tokens; each of its ranges passes to the next token on the
    /// ring. Ownership is then the same as while the member was draining or down, so
    /// removing a drained member moves no key.
    pub fn leave(&mut self, id: MemberId, epoch: u64) -> Result<Member, RingError> {
        self.check_epoch(epoch)?;
        let member = self
            .members
            .remove(&id)
            .ok_or(RingError::UnknownMember(id))?;
        for position in self.tokens.positions_of(id) {
            self.tokens.remove(position);
        }
        self.epoch = epoch;
        Ok(member)
    }

    /// Changes a member's state. Tokens stay where they are: only the member's own keys
    /// move (to the next active tokens, and back when it is active again).
    pub fn set_state(
        &mut self,
        id: MemberId,
        state: MemberState,
        epoch: u64,
    ) -> Result<(), RingError> {
        self.check_epoch(epoch)?;
        let member = self
            .members
            .get_mut(&id)
            .ok_or(RingError::UnknownMember(id))?;
        member.state = state;
        self.epoch = epoch;
        Ok(())
    }

    /// Changes a member's zone. Owners stay; replica sets may change.
    pub fn set_zone(
        &mut self,
        id: MemberId,
        zone: impl Into<String>,
        epoch: u64,
    ) -> Result<(), RingError> {
        let zone = zone.into();
        self.check_epoch(epoch)?;
        check_zone(&zone)?;
        let member = self
            .members
            .get_mut(&id)
            .ok_or(RingError::UnknownMember(id))?;
        member.zone = zone;
        self.epoch = epoch;
        Ok(())
    }

    /// Changes a member's weight. Growing allocates the extra tokens as a join would
    /// (keys move only to this member); shrinking removes its widest ranges first (keys
    /// move only away from it).
    pub fn set_weight(&mut self, id: MemberId, weight: u32, epoch: u64) -> Result<(), RingError> {
        self.check_epoch(epoch)?;
        if !self.members.contains_key(&id) {
            return Err(RingError::UnknownMember(id));
        }
        let wanted = self.token_count(weight)? as usize;
        let held = self.tokens.count_of(id);
        let old_weight = self.members.get(&id).map_or(0, |m| m.weight);
        if wanted > held {
            let extra = (wanted - held) as u32;
            self.check_room(extra)?;
            // Allocation counts the member at its new weight (docs/ring.md §4.3).
            self.tokens.set_weight(id, weight);
            if let Err(err) = allocate(&mut self.tokens, id, weight, extra) {
                self.tokens.set_weight(id, old_weight);
                return Err(err);
            }
        } else {
            for _ in wanted..held {
                self.remove_widest_token_of(id);
            }
            self.tokens.set_weight(id, weight);
        }
        if let Some(member) = self.members.get_mut(&id) {
            member.weight = weight;
        }
        self.epoch = epoch;
        Ok(())
    }

    /// Widest first; among equals the smallest position (docs/ring.md §4.3).
    fn remove_widest_token_of(&mut self, id: MemberId) {
        if let Some((_, position)) = self.tokens.widest_of(id) {
            self.tokens.remove(position);
        }
    }

    fn token_count(&self, weight: u32) -> Result<u32, RingError> {
        let tokens = u64::from(self.vnodes) * u64::from(weight);
        if tokens > u64::from(TOKENS_PER_MEMBER_MAX) {
            return Err(RingError::WeightTooLarge {
                weight,
                vnodes: self.vnodes,
                tokens,
                max: TOKENS_PER_MEMBER_MAX,
            });
        }
        Ok(tokens as u32)
    }

    fn check_room(&self, extra: u32) -> Result<(), RingError> {
        let tokens = self.tokens.len() + extra as usize;
        if tokens > TOKENS_MAX {
            return Err(RingError::TooManyTokens {
                tokens,
                max: TOKENS_MAX,
            });
        }
        Ok(())
    }

    fn check_epoch(&self, epoch: u64) -> Result<(), RingError> {
        if epoch < self.epoch {
            return Err(RingError::EpochRegressed {
                current: self.epoch,
                given: epoch,
            });
        }
        Ok(())
    }
}

fn check_vnodes(vnodes: u32) -> Result<(), RingError> {
    if vnodes == 0 || vnodes > VNODES_MAX {
        return Err(RingError::VnodesOutOfRange {
            vnodes,
            max: VNODES_MAX,
        });
    }
    Ok(())
}

fn check_zone(zone: &str) -> Result<(), RingError> {
    if zone.len() > ZONE_BYTES_MAX {
        return Err(RingError::ZoneTooLong {
            len: zone.len(),
            max: ZONE_BYTES_MAX,
        });
    }
    Ok(())
}
