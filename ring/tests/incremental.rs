//! Incremental changes equal the original whole-ring implementation: for random histories of
//! joins, removals, reweights, state, zone and vnodes changes, the state kept change by
//! change, a `Ring` kept current by its change methods and the original flat ring
//! (`ringraft_ring::reference`) give the same refusals and the same bytes after every change,
//! and the kept lookup view equals one rebuilt from scratch. That the check can fail is shown
//! by the mutants in ring/src/reference/oracle.rs.

mod common;

use common::{member, member_state, ZONES};
use proptest::prelude::*;
use ringraft_ring::reference::{check_history, Change};
use ringraft_ring::{Member, MemberState, Ring, RingState};

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        6 => member(1..24).prop_map(Change::Join),
        2 => (1u64..24).prop_map(Change::Leave),
        2 => (1u64..24, member_state()).prop_map(|(id, s)| Change::SetState(id, s)),
        2 => (1u64..24, 0u32..=5).prop_map(|(id, w)| Change::SetWeight(id, w)),
        1 => (1u64..24, 0usize..ZONES.len()).prop_map(|(id, z)| Change::SetZone(id, ZONES[z].to_owned())),
        1 => (1u32..10).prop_map(Change::SetVnodes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn incremental_changes_match_the_original(vnodes in 1u32..12, history in prop::collection::vec(change(), 1..60)) {
        prop_assert_eq!(check_history(vnodes, &history), Ok(()));
    }
}

/// Weights that share a group and weights alone in theirs, with many members: the weight
/// groups that pick the victim are exercised beyond the small random histories.
#[test]
fn a_larger_mixed_weight_ring_matches_the_original() {
    let mut history = Vec::new();
    for id in 1..=120u64 {
        let weight = [1, 1, 2, 3, 1, 7][id as usize % 6];
        let zone = ["", "a", "b", "c"][id as usize % 4];
        history.push(Change::Join(Member::new(id, weight).with_zone(zone)));
        if id % 9 == 0 {
            history.push(Change::Leave(id / 3));
        }
        if id % 11 == 0 {
            history.push(Change::SetWeight(id / 2, 4));
        }
        if id % 13 == 0 {
            history.push(Change::SetState(id - 1, MemberState::Draining));
        }
    }
    assert_eq!(check_history(16, &history), Ok(()));
}

#[test]
fn a_refused_change_leaves_state_and_view_alone() {
    let mut ring = Ring::new(RingState::new(4).expect("vnodes"));
    ring.join(Member::new(1, 1), 1).expect("join");
    ring.join(Member::new(2, 1).with_zone("a"), 2)
        .expect("join");
    let before = ring.encode();
    assert!(ring.join(Member::new(2, 1), 3).is_err());
    assert!(ring.set_weight(1, 1 << 20, 3).is_err());
    assert!(ring.set_zone(2, "z".repeat(300), 3).is_err());
    assert!(ring.leave(9, 3).is_err());
    assert_eq!(ring.encode(), before);
    ring.check_invariants().expect("view in step");
}
