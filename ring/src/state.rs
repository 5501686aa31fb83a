//! The ring's replicated state: members, their tokens, the vnodes setting and the epoch.
//! Every change is deterministic, so applying the same history on every node gives the
//! same state byte for byte.

use std::collections::BTreeMap;

use crate::allocate::{allocate, loads, range_widths};
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
    /// Sorted by position; positions are unique.
    pub(crate) tokens: Vec<Token>,
}

impl RingState {
    /// An empty ring at epoch 0 whose members get `vnodes × weight` tokens each.
    pub fn new(vnodes: u32) -> Result<Self, RingError> {
        check_vnodes(vnodes)?;
        Ok(RingState {
            epoch: 0,
            vnodes,
            members: BTreeMap::new(),
            tokens: Vec::new(),
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
    pub fn tokens(&self) -> &[Token] {
        &self.tokens
    }

    /// Positions of one member's tokens, ascending.
    pub fn tokens_of(&self, id: MemberId) -> Vec<u64> {
        self.tokens
            .iter()
            .filter(|token| token.member == id)
            .map(|token| token.position)
            .collect()
    }

    /// How much of the circle (out of 2^64) each member's tokens cover, ignoring states.
    /// Members without tokens are absent.
    pub fn token_coverage(&self) -> BTreeMap<MemberId, u128> {
        loads(&self.tokens)
    }

    /// The width of each token's range, aligned with [`RingState::tokens`].
    pub fn token_widths(&self) -> Vec<u128> {
        range_widths(&self.tokens)
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
        let positions = allocate(
            &self.tokens,
            &self.weights(),
            member.id,
            member.weight,
            count,
        )?;
        self.insert_tokens(member.id, positions);
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
        self.tokens.retain(|token| token.member != id);
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
        let held = self.tokens.iter().filter(|t| t.member == id).count();
        if wanted > held {
            let extra = (wanted - held) as u32;
            self.check_room(extra)?;
            let positions = allocate(&self.tokens, &self.weights(), id, weight, extra)?;
            self.insert_tokens(id, positions);
        } else {
            for _ in wanted..held {
                self.remove_widest_token_of(id);
            }
        }
        if let Some(member) = self.members.get_mut(&id) {
            member.weight = weight;
        }
        self.epoch = epoch;
        Ok(())
    }

    fn remove_widest_token_of(&mut self, id: MemberId) {
        let widths = range_widths(&self.tokens);
        let widest = self
            .tokens
            .iter()
            .zip(widths)
            .enumerate()
            .filter(|(_, (token, _))| token.member == id)
            // Widest first; among equals the smallest position, which comes first in order.
            .fold(
                None::<(usize, u128)>,
                |best, (index, (_, width))| match best {
                    Some((_, best_width)) if best_width >= width => best,
                    _ => Some((index, width)),
                },
            );
        if let Some((index, _)) = widest {
            self.tokens.remove(index);
        }
    }

    fn weights(&self) -> BTreeMap<MemberId, u32> {
        self.members
            .values()
            .map(|member| (member.id, member.weight))
            .collect()
    }

    fn insert_tokens(&mut self, member: MemberId, mut positions: Vec<u64>) {
        positions.sort_unstable();
        self.tokens.extend(
            positions
                .into_iter()
                .map(|position| Token { position, member }),
        );
        // Stable sort: the old tokens and the new ones form two sorted runs to merge.
        self.tokens.sort_by_key(|token| token.position);
        debug_assert!(self
            .tokens
            .windows(2)
            .all(|pair| pair[0].position < pair[1].position));
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
