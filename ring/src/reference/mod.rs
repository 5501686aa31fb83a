//! The ring as it was first written: one flat, sorted token list that every change walks and
//! rebuilds, O(tokens of the ring) per change. Not for production use. It stays for two
//! jobs: the oracle that the incremental [`crate::RingState`] must match token for token
//! (ring/tests/incremental.rs), and the "full rebuild" peer of the `ring_scale` benchmark.
//! It applies the same rules (docs/ring.md, section 4) with the same checks, so both give
//! the same answers and refusals for the same history.

mod allocate;
mod oracle;
mod view;

use std::collections::BTreeMap;

pub use oracle::{check_history, Change};
pub use view::FlatView;

use crate::{
    Member, MemberId, MemberState, RingError, RingState, Token, MEMBERS_MAX, TOKENS_MAX,
    TOKENS_PER_MEMBER_MAX, VNODES_MAX, ZONE_BYTES_MAX,
};
use allocate::{allocate, range_widths};

/// The original ring state: members and one sorted token list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlatState {
    epoch: u64,
    vnodes: u32,
    members: BTreeMap<MemberId, Member>,
    /// Sorted by position; positions are unique.
    tokens: Vec<Token>,
}

impl FlatState {
    pub fn new(vnodes: u32) -> Result<Self, RingError> {
        check_vnodes(vnodes)?;
        Ok(FlatState {
            epoch: 0,
            vnodes,
            members: BTreeMap::new(),
            tokens: Vec::new(),
        })
    }

    /// The same ring as `state` (its tokens copied, not re-allocated).
    pub fn of(state: &RingState) -> FlatState {
        FlatState {
            epoch: state.epoch(),
            vnodes: state.vnodes(),
            members: state.members().map(|m| (m.id, m.clone())).collect(),
            tokens: state.tokens().collect(),
        }
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn tokens(&self) -> &[Token] {
        &self.tokens
    }

    pub fn members(&self) -> impl ExactSizeIterator<Item = &Member> + '_ {
        self.members.values()
    }

    pub fn set_vnodes(&mut self, vnodes: u32) -> Result<(), RingError> {
        check_vnodes(vnodes)?;
        self.vnodes = vnodes;
        Ok(())
    }

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

    /// The canonical encoding (docs/ring.md, section 5), built as the original did: grouping
    /// every token by member first.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&crate::ENCODING_MAGIC);
        out.push(crate::ENCODING_VERSION);
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

    fn remove_widest_token_of(&mut self, id: MemberId) {
        let widths = range_widths(&self.tokens);
        let widest = self
            .tokens
            .iter()
            .zip(widths)
            .enumerate()
            .filter(|(_, (token, _))| token.member == id)
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
        self.tokens.sort_by_key(|token| token.position);
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
