//! Histories of membership changes shared by the property tests and the vectors.
#![allow(dead_code)]

use proptest::prelude::*;
use ringraft_ring::{Member, MemberId, MemberState, RingError, RingState};

#[derive(Clone, Debug)]
pub enum Change {
    Join(Member),
    Leave(MemberId),
    SetState(MemberId, MemberState),
    SetWeight(MemberId, u32),
    SetZone(MemberId, String),
}

/// Applies `change` at `epoch`. Refusals a history may legitimately contain (joining twice,
/// touching an absent member) leave the state alone and are reported.
pub fn apply(state: &mut RingState, change: &Change, epoch: u64) -> Result<(), RingError> {
    match change {
        Change::Join(member) => state.join(member.clone(), epoch),
        Change::Leave(id) => state.leave(*id, epoch).map(|_| ()),
        Change::SetState(id, member_state) => state.set_state(*id, *member_state, epoch),
        Change::SetWeight(id, weight) => state.set_weight(*id, *weight, epoch),
        Change::SetZone(id, zone) => state.set_zone(*id, zone.clone(), epoch),
    }
}

/// Replays `history` on an empty ring; change i happens at epoch i + 1.
pub fn replay(vnodes: u32, history: &[Change]) -> RingState {
    let mut state = RingState::new(vnodes).expect("valid vnodes");
    for (index, change) in history.iter().enumerate() {
        match apply(&mut state, change, index as u64 + 1) {
            Ok(()) | Err(RingError::DuplicateMember(_)) | Err(RingError::UnknownMember(_)) => {}
            Err(other) => panic!("change {change:?} refused: {other}"),
        }
    }
    state
}

pub const ZONES: [&str; 4] = ["", "a", "b", "c"];

pub fn member_state() -> impl Strategy<Value = MemberState> {
    prop_oneof![
        3 => Just(MemberState::Active),
        1 => Just(MemberState::Draining),
        1 => Just(MemberState::Down),
    ]
}

pub fn member(ids: std::ops::Range<u64>) -> impl Strategy<Value = Member> {
    (ids, 1u32..=4, 0usize..ZONES.len(), member_state()).prop_map(|(id, weight, zone, state)| {
        Member::new(id, weight)
            .with_zone(ZONES[zone])
            .with_state(state)
    })
}

pub fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        6 => member(1..24).prop_map(Change::Join),
        2 => (1u64..24).prop_map(Change::Leave),
        2 => (1u64..24, member_state()).prop_map(|(id, s)| Change::SetState(id, s)),
        1 => (1u64..24, 0u32..=4).prop_map(|(id, w)| Change::SetWeight(id, w)),
        1 => (1u64..24, 0usize..ZONES.len()).prop_map(|(id, z)| Change::SetZone(id, ZONES[z].to_owned())),
    ]
}

pub fn history() -> impl Strategy<Value = Vec<Change>> {
    prop::collection::vec(change(), 1..40)
}

/// Positions that probe every token boundary (at, just before, just after) plus spread
/// keys, so ownership checks see every range of the ring.
pub fn probe_positions(state: &RingState) -> Vec<u64> {
    let mut probes: Vec<u64> = state
        .tokens()
        .flat_map(|t| {
            [
                t.position.wrapping_sub(1),
                t.position,
                t.position.wrapping_add(1),
            ]
        })
        .collect();
    probes.extend((0u32..500).map(|i| ringraft_ring::key_position(&i.to_le_bytes())));
    probes.extend([0, u64::MAX]);
    probes
}
