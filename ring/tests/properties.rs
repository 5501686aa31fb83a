//! Properties of the ring over random membership histories.

mod common;

use common::{apply, history, member, probe_positions, replay, Change};
use proptest::prelude::*;
use ringraft_ring::{MemberState, Ring, RingState};

fn owners(ring: &Ring, probes: &[u64]) -> Vec<Option<u64>> {
    probes
        .iter()
        .map(|&p| ring.owner_at(p).map(|o| o.member))
        .collect()
}

/// Zone class of a member for the zone walk: its zone, or its own id when it has none.
fn zone_class(ring: &Ring, id: u64) -> String {
    let zone = &ring.member(id).expect("member").zone;
    if zone.is_empty() {
        format!("#{id}")
    } else {
        zone.clone()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn same_history_gives_same_ring(vnodes in 1u32..12, history in history(), cut in 0usize..40) {
        let first = replay(vnodes, &history);
        let second = replay(vnodes, &history);
        prop_assert_eq!(first.encode(), second.encode());

        // A node restored from a snapshot taken mid-history ends where the others do.
        let cut = cut.min(history.len());
        let early = replay(vnodes, &history[..cut]);
        let mut restored = RingState::decode(&early.encode()).expect("own encoding decodes");
        for (index, change) in history.iter().enumerate().skip(cut) {
            let _ = apply(&mut restored, change, index as u64 + 1);
        }
        prop_assert_eq!(restored.encode(), first.encode());
    }

    #[test]
    fn encoding_round_trips(vnodes in 1u32..12, history in history()) {
        let state = replay(vnodes, &history);
        let bytes = state.encode();
        prop_assert_eq!(bytes.len(), state.encoded_len());
        let decoded = RingState::decode(&bytes).expect("own encoding decodes");
        prop_assert_eq!(&decoded, &state);
        let ring = Ring::decode(&bytes).expect("own encoding decodes");
        prop_assert_eq!(ring.epoch(), state.epoch());
    }

    #[test]
    fn replicas_are_distinct_owning_members_owner_first(
        vnodes in 1u32..12,
        history in history(),
        keys in prop::collection::vec(any::<u64>(), 1..20),
        n in 0usize..10,
    ) {
        let ring = Ring::new(replay(vnodes, &history));
        let owning = ring.owning_members().len();
        for key in keys {
            let key = key.to_le_bytes();
            let replicas = ring.replicas(&key, n);
            prop_assert_eq!(replicas.epoch, ring.epoch());
            prop_assert_eq!(replicas.members.len(), n.min(owning));
            let mut sorted = replicas.members.clone();
            sorted.sort_unstable();
            sorted.dedup();
            prop_assert_eq!(sorted.len(), replicas.members.len(), "duplicates in {:?}", replicas.members);
            for id in &replicas.members {
                prop_assert_eq!(ring.member(*id).expect("member").state, MemberState::Active);
            }
            match ring.owner(&key) {
                Some(owner) => prop_assert_eq!(vec![owner.member], ring.replicas(&key, 1).members),
                None => prop_assert_eq!(owning, 0),
            }
            // Asking for one more never reorders what was already answered.
            let more = ring.replicas(&key, n + 1);
            prop_assert_eq!(&more.members[..replicas.members.len()], &replicas.members[..]);
        }
    }

    #[test]
    fn zones_are_distinct_first(
        vnodes in 1u32..12,
        history in history(),
        keys in prop::collection::vec(any::<u64>(), 1..20),
        n in 1usize..10,
    ) {
        let ring = Ring::new(replay(vnodes, &history));
        let mut classes: Vec<String> = ring.owning_members().iter().map(|&id| zone_class(&ring, id)).collect();
        classes.sort();
        classes.dedup();
        let distinct_wanted = n.min(classes.len());
        for key in keys {
            let replicas = ring.replicas(&key.to_le_bytes(), n).members;
            let mut head: Vec<String> = replicas[..distinct_wanted].iter().map(|&id| zone_class(&ring, id)).collect();
            head.sort();
            head.dedup();
            prop_assert_eq!(head.len(), distinct_wanted, "zones repeat early in {:?}", replicas);
        }
    }

    #[test]
    fn inactive_members_own_nothing(vnodes in 1u32..12, history in history()) {
        let state = replay(vnodes, &history);
        let ring = Ring::new(state.clone());
        for position in probe_positions(&state) {
            if let Some(owner) = ring.owner_at(position) {
                prop_assert_eq!(ring.member(owner.member).expect("member").state, MemberState::Active);
            }
        }
    }

    #[test]
    fn join_moves_keys_only_to_the_joiner(vnodes in 1u32..12, history in history(), joiner in member(100..101)) {
        let before = replay(vnodes, &history);
        let mut after = before.clone();
        after.join(joiner.clone(), before.epoch() + 1).expect("join");
        let probes = probe_positions(&after);
        let (old, new) = (owners(&Ring::new(before), &probes), owners(&Ring::new(after), &probes));
        for (o, n) in old.iter().zip(&new) {
            if o != n {
                prop_assert_eq!(*n, Some(joiner.id));
            }
        }
    }

    #[test]
    fn leave_moves_only_the_leavers_keys(vnodes in 1u32..12, history in history(), pick in any::<prop::sample::Index>()) {
        let before = replay(vnodes, &history);
        let ids: Vec<u64> = before.members().map(|m| m.id).collect();
        prop_assume!(!ids.is_empty());
        let leaver = ids[pick.index(ids.len())];
        let mut after = before.clone();
        after.leave(leaver, before.epoch() + 1).expect("leave");
        let probes = probe_positions(&before);
        let (old, new) = (owners(&Ring::new(before), &probes), owners(&Ring::new(after), &probes));
        for (o, n) in old.iter().zip(&new) {
            if o != n {
                prop_assert_eq!(*o, Some(leaver));
            }
        }
    }

    #[test]
    fn state_changes_move_only_that_members_keys(
        vnodes in 1u32..12,
        history in history(),
        pick in any::<prop::sample::Index>(),
        inactive in prop_oneof![Just(MemberState::Draining), Just(MemberState::Down)],
    ) {
        let mut base = replay(vnodes, &history);
        let ids: Vec<u64> = base.members().map(|m| m.id).collect();
        prop_assume!(!ids.is_empty());
        let id = ids[pick.index(ids.len())];
        let epoch = base.epoch() + 1;
        base.set_state(id, MemberState::Active, epoch).expect("activate");
        let mut out = base.clone();
        out.set_state(id, inactive, epoch).expect("deactivate");
        let mut removed = out.clone();
        removed.leave(id, epoch).expect("leave");

        let probes = probe_positions(&base);
        let active = owners(&Ring::new(base), &probes);
        let inactive_owners = owners(&Ring::new(out), &probes);
        for (a, i) in active.iter().zip(&inactive_owners) {
            if a != i {
                prop_assert_eq!(*a, Some(id));
            }
        }
        // Removing a member that already owns nothing moves no key.
        prop_assert_eq!(owners(&Ring::new(removed), &probes), inactive_owners);
    }

    #[test]
    fn weight_changes_move_only_that_members_keys(
        vnodes in 1u32..12,
        history in history(),
        pick in any::<prop::sample::Index>(),
        weight in 0u32..=6,
    ) {
        let before = replay(vnodes, &history);
        let ids: Vec<u64> = before.members().map(|m| m.id).collect();
        prop_assume!(!ids.is_empty());
        let id = ids[pick.index(ids.len())];
        let old_weight = before.member(id).expect("member").weight;
        let mut after = before.clone();
        after.set_weight(id, weight, before.epoch() + 1).expect("set weight");
        prop_assert_eq!(after.tokens_of(id).len(), (weight * vnodes) as usize);
        let probes = probe_positions(&after);
        let (old, new) = (owners(&Ring::new(before), &probes), owners(&Ring::new(after), &probes));
        for (o, n) in old.iter().zip(&new) {
            if o != n {
                if weight > old_weight {
                    prop_assert_eq!(*n, Some(id));
                } else {
                    prop_assert_eq!(*o, Some(id));
                }
            }
        }
    }

    #[test]
    fn joins_give_shares_in_proportion_to_weights(
        vnodes in 8u32..64,
        weights in prop::collection::vec(1u32..=4, 1..30),
    ) {
        let history: Vec<Change> = weights
            .iter()
            .enumerate()
            .map(|(i, &w)| Change::Join(ringraft_ring::Member::new(i as u64 + 1, w)))
            .collect();
        let state = replay(vnodes, &history);
        let total_weight: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        // Each new token takes one equal slice of what its member lacks from the member
        // furthest above target, so no member is pushed more than about one slice
        // (2^64 / (vnodes × total weight)) past its target; allow two.
        let span = 2f64.powi(64);
        let slice = span / f64::from(vnodes) / total_weight as f64;
        for (id, coverage) in state.token_coverage() {
            let weight = weights[id as usize - 1];
            let target = span * f64::from(weight) / total_weight as f64;
            let deviation = (coverage as f64 - target).abs();
            prop_assert!(deviation <= 2.0 * slice, "member {id}: {deviation} off target {target}, slice {slice}");
        }
    }

    #[test]
    fn decode_never_panics_on_noise(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = RingState::decode(&bytes);
    }

    #[test]
    fn decode_accepts_only_canonical_bytes(
        history in history(),
        flip_at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
        cut in any::<prop::sample::Index>(),
    ) {
        let bytes = replay(4, &history).encode();
        let mut damaged = bytes.clone();
        let at = flip_at.index(damaged.len());
        damaged[at] ^= flip;
        if let Ok(state) = RingState::decode(&damaged) {
            prop_assert_eq!(state.encode(), damaged);
        }
        let cut = cut.index(bytes.len());
        prop_assert!(RingState::decode(&bytes[..cut]).is_err());
    }
}

#[test]
fn a_change_refused_leaves_the_state_alone() {
    let mut state = replay(
        4,
        &[
            Change::Join(ringraft_ring::Member::new(1, 1)),
            Change::Join(ringraft_ring::Member::new(2, 1)),
        ],
    );
    let before = state.encode();
    assert!(state.join(ringraft_ring::Member::new(2, 1), 9).is_err());
    assert!(state.leave(3, 9).is_err());
    assert!(
        state.set_state(1, MemberState::Down, 1).is_err(),
        "older epoch"
    );
    assert_eq!(state.encode(), before);
}
