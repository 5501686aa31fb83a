//! The check that the incremental ring equals the original, change by change: the same
//! history applied to a [`RingState`], to a [`Ring`] kept current by its change methods, and
//! to the original [`FlatState`] must give the same refusals, the same bytes, and a lookup
//! view equal to one rebuilt from scratch. ring/tests/incremental.rs drives it with random
//! histories; the unit tests below prove it fails when the incremental path is wrong.

use super::{FlatState, FlatView};
use crate::{Member, MemberId, MemberState, Ring, RingState};

/// One membership change, as the daemon's state machine would apply it.
#[derive(Clone, Debug)]
pub enum Change {
    Join(Member),
    Leave(MemberId),
    SetState(MemberId, MemberState),
    SetWeight(MemberId, u32),
    SetZone(MemberId, String),
    SetVnodes(u32),
}

/// Replays `history` (change i at epoch i + 1) on all three and returns the first
/// divergence, described.
pub fn check_history(vnodes: u32, history: &[Change]) -> Result<(), String> {
    let mut state = RingState::new(vnodes).map_err(|e| e.to_string())?;
    let mut ring = Ring::new(state.clone());
    let mut flat = FlatState::new(vnodes).map_err(|e| e.to_string())?;
    for (index, change) in history.iter().enumerate() {
        let epoch = index as u64 + 1;
        let results = [
            apply_state(&mut state, change, epoch),
            apply_ring(&mut ring, change, epoch),
            apply_flat(&mut flat, change, epoch),
        ];
        let at = || format!("change {index} ({change:?})");
        if results[0] != results[1] || results[0] != results[2] {
            return Err(format!("{}: results differ: {results:?}", at()));
        }
        let bytes = flat.encode();
        if state.encode() != bytes {
            return Err(format!("{}: state bytes differ from the original's", at()));
        }
        if ring.encode() != bytes {
            return Err(format!("{}: ring bytes differ from the original's", at()));
        }
        ring.check_invariants()
            .map_err(|e| format!("{}: {e}", at()))?;
        check_owners(&ring, &flat).map_err(|e| format!("{}: {e}", at()))?;
    }
    Ok(())
}

/// Owners at every token boundary agree with the original lookup view.
fn check_owners(ring: &Ring, flat: &FlatState) -> Result<(), String> {
    let view = FlatView::new(flat);
    for token in flat.tokens() {
        for position in [token.position, token.position.wrapping_add(1)] {
            let (kept, original) = (
                ring.owner_at(position).map(|o| o.member),
                view.owner_at(position),
            );
            if kept != original {
                return Err(format!(
                    "owner of {position}: {kept:?}, original {original:?}"
                ));
            }
        }
    }
    Ok(())
}

type Outcome = Result<(), String>;

fn apply_state(state: &mut RingState, change: &Change, epoch: u64) -> Outcome {
    let result = match change {
        Change::Join(member) => state.join(member.clone(), epoch),
        Change::Leave(id) => state.leave(*id, epoch).map(|_| ()),
        Change::SetState(id, s) => state.set_state(*id, *s, epoch),
        Change::SetWeight(id, w) => state.set_weight(*id, *w, epoch),
        Change::SetZone(id, z) => state.set_zone(*id, z.clone(), epoch),
        Change::SetVnodes(v) => state.set_vnodes(*v),
    };
    result.map_err(|e| e.to_string())
}

fn apply_ring(ring: &mut Ring, change: &Change, epoch: u64) -> Outcome {
    let result = match change {
        Change::Join(member) => ring.join(member.clone(), epoch),
        Change::Leave(id) => ring.leave(*id, epoch).map(|_| ()),
        Change::SetState(id, s) => ring.set_state(*id, *s, epoch),
        Change::SetWeight(id, w) => ring.set_weight(*id, *w, epoch),
        Change::SetZone(id, z) => ring.set_zone(*id, z.clone(), epoch),
        Change::SetVnodes(v) => ring.set_vnodes(*v),
    };
    result.map_err(|e| e.to_string())
}

fn apply_flat(flat: &mut FlatState, change: &Change, epoch: u64) -> Outcome {
    let result = match change {
        Change::Join(member) => flat.join(member.clone(), epoch),
        Change::Leave(id) => flat.leave(*id, epoch).map(|_| ()),
        Change::SetState(id, s) => flat.set_state(*id, *s, epoch),
        Change::SetWeight(id, w) => flat.set_weight(*id, *w, epoch),
        Change::SetZone(id, z) => flat.set_zone(*id, z.clone(), epoch),
        Change::SetVnodes(v) => flat.set_vnodes(*v),
    };
    result.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    use super::*;
    use crate::mutant::{with_mutant, Mutant};

    fn change() -> impl Strategy<Value = Change> {
        let zone = prop_oneof![Just(""), Just("a"), Just("b")].prop_map(str::to_owned);
        prop_oneof![
            5 => (1u64..12, 1u32..=3, zone.clone())
                .prop_map(|(id, w, z)| Change::Join(Member::new(id, w).with_zone(z))),
            2 => (1u64..12).prop_map(Change::Leave),
            1 => (1u64..12).prop_map(|id| Change::SetState(id, MemberState::Down)),
            1 => (1u64..12).prop_map(|id| Change::SetState(id, MemberState::Active)),
            2 => (1u64..12, 0u32..=4).prop_map(|(id, w)| Change::SetWeight(id, w)),
            1 => (1u64..12, zone).prop_map(|(id, z)| Change::SetZone(id, z)),
        ]
    }

    /// Runs the property as ring/tests/incremental.rs does, with `mutant` switched on.
    fn property_with(mutant: Mutant) -> Result<(), String> {
        let mut runner = TestRunner::new(Config {
            cases: 256,
            failure_persistence: None,
            ..Config::default()
        });
        let strategy = (1u32..8, prop::collection::vec(change(), 1..30));
        with_mutant(mutant, || {
            runner
                .run(&strategy, |(vnodes, history)| {
                    check_history(vnodes, &history).map_err(TestCaseError::fail)
                })
                .map_err(|e| e.to_string())
        })
    }

    #[test]
    fn the_property_holds_for_the_real_code() {
        assert_eq!(property_with(Mutant::None), Ok(()));
    }

    #[test]
    fn the_property_catches_a_quota_rounded_down() {
        assert!(property_with(Mutant::QuotaRoundedDown).is_err());
    }

    #[test]
    fn the_property_catches_a_range_not_given_back_on_removal() {
        assert!(property_with(Mutant::SuccessorNotWidened).is_err());
    }

    #[test]
    fn the_property_catches_a_view_that_misses_a_zone_change() {
        assert!(property_with(Mutant::ViewIgnoresZoneChange).is_err());
    }
}
