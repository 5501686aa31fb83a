//! Ring deltas: encode → decode → apply turns the ring at one epoch into the ring at a later
//! one, byte for byte, whether the delta comes from comparing two rings, from a journal of
//! the changes, or as a chain of one delta per change; corrupted or random bytes give an
//! error (never a panic), and a delta that does not apply leaves the ring alone.

mod common;

use common::{apply, history, Change};
use proptest::prelude::*;
use ringraft_ring::{
    DecodeError, DeltaError, Member, Ring, RingDelta, RingJournal, RingState, DELTA_MAGIC,
    DELTA_VERSION,
};

/// The ring after each accepted change of `history` (change i at epoch i + 1), starting
/// with the empty ring, plus a journal of the members each accepted change touched.
fn states_of(vnodes: u32, history: &[Change]) -> (Vec<RingState>, RingJournal) {
    let mut state = RingState::new(vnodes).expect("vnodes");
    let mut journal = RingJournal::new(0, 1 << 16);
    let mut states = vec![state.clone()];
    for (index, change) in history.iter().enumerate() {
        let epoch = index as u64 + 1;
        if apply(&mut state, change, epoch).is_ok() {
            journal.record(epoch, touched(change));
            states.push(state.clone());
        }
    }
    (states, journal)
}

fn touched(change: &Change) -> u64 {
    match change {
        Change::Join(m) => m.id,
        Change::Leave(id)
        | Change::SetState(id, _)
        | Change::SetWeight(id, _)
        | Change::SetZone(id, _) => *id,
    }
}

/// Sends `delta` through its encoding and applies it to `from`, both as a state and as a
/// kept-current `Ring`; both must end as `to`.
fn check_delta_takes(
    from: &RingState,
    to: &RingState,
    delta: &RingDelta,
) -> Result<(), TestCaseError> {
    let bytes = delta.encode();
    prop_assert_eq!(bytes.len(), delta.encoded_len());
    let decoded = RingDelta::decode(&bytes).expect("own delta decodes");
    prop_assert_eq!(&decoded, delta);

    let mut state = from.clone();
    decoded.apply(&mut state).expect("delta applies");
    prop_assert_eq!(state.encode(), to.encode());
    prop_assert_eq!(&state, to);
    state.check_invariants().map_err(TestCaseError::fail)?;

    let mut ring = Ring::new(from.clone());
    ring.apply_delta(&decoded)
        .expect("delta applies to the ring");
    prop_assert_eq!(ring.encode(), to.encode());
    ring.check_invariants().map_err(TestCaseError::fail)?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn a_delta_between_two_rings_takes_one_to_the_other(
        vnodes in 1u32..10,
        history in history(),
        a in any::<prop::sample::Index>(),
        b in any::<prop::sample::Index>(),
    ) {
        let (states, _) = states_of(vnodes, &history);
        let (i, j) = (a.index(states.len()), b.index(states.len()));
        let (from, to) = (&states[i.min(j)], &states[i.max(j)]);
        check_delta_takes(from, to, &RingDelta::between(from, to))?;
    }

    #[test]
    fn a_journal_delta_takes_any_recorded_epoch_to_the_current_ring(
        vnodes in 1u32..10,
        history in history(),
        a in any::<prop::sample::Index>(),
    ) {
        let (states, journal) = states_of(vnodes, &history);
        let current = states.last().expect("at least the empty ring");
        let from = &states[a.index(states.len())];
        let delta = journal.delta_since(from.epoch(), current).expect("within the journal");
        check_delta_takes(from, current, &delta)?;
    }

    #[test]
    fn one_delta_per_change_chained_gives_the_final_ring(vnodes in 1u32..10, history in history()) {
        let (states, _) = states_of(vnodes, &history);
        let mut ring = Ring::new(states[0].clone());
        for pair in states.windows(2) {
            let bytes = RingDelta::between(&pair[0], &pair[1]).encode();
            let delta = RingDelta::decode(&bytes).expect("decodes");
            ring.apply_delta(&delta).expect("applies");
        }
        let last = states.last().expect("states");
        prop_assert_eq!(ring.encode(), last.encode());
        ring.check_invariants().map_err(TestCaseError::fail)?;
    }

    /// The equality the properties above rely on does catch a wrong delta: one damaged byte
    /// either fails to decode, fails to apply (leaving the ring as it was), or gives a ring
    /// that is not the target.
    #[test]
    fn a_corrupted_delta_never_passes_for_the_target(
        vnodes in 1u32..10,
        history in history(),
        a in any::<prop::sample::Index>(),
        flip_at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let (states, _) = states_of(vnodes, &history);
        let from = &states[a.index(states.len())];
        let to = states.last().expect("states");
        let mut bytes = RingDelta::between(from, to).encode();
        let at = flip_at.index(bytes.len());
        bytes[at] ^= flip;
        let Ok(delta) = RingDelta::decode(&bytes) else { return Ok(()) };
        prop_assert_eq!(delta.encode(), bytes.clone(), "accepted input is canonical");
        let mut ring = Ring::new(from.clone());
        match ring.apply_delta(&delta) {
            Ok(()) => prop_assert_ne!(ring.encode(), to.encode()),
            Err(_) => prop_assert_eq!(ring.encode(), from.encode()),
        }
        ring.check_invariants().map_err(TestCaseError::fail)?;
    }

    #[test]
    fn delta_decode_never_panics_on_noise(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = RingDelta::decode(&bytes);
    }

    /// Noise behind a valid header reaches the counts, ids and records; whatever decodes is
    /// canonical and either applies to a ring (which stays consistent) or leaves it alone.
    #[test]
    fn noise_after_a_valid_header_is_refused_or_applies_cleanly(
        history in history(),
        removed_count in 0u32..4,
        tail in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        let (states, _) = states_of(4, &history);
        let from = states.last().expect("states");
        let mut bytes = DELTA_MAGIC.to_vec();
        bytes.push(DELTA_VERSION);
        bytes.extend_from_slice(&from.epoch().to_le_bytes());
        bytes.extend_from_slice(&(from.epoch() + 1).to_le_bytes());
        bytes.extend_from_slice(&4u32.to_le_bytes());
        bytes.extend_from_slice(&removed_count.to_le_bytes());
        bytes.extend_from_slice(&tail);
        if let Ok(delta) = RingDelta::decode(&bytes) {
            prop_assert_eq!(delta.encode(), bytes);
            let mut ring = Ring::new(from.clone());
            if ring.apply_delta(&delta).is_err() {
                prop_assert_eq!(ring.encode(), from.encode());
            }
            ring.check_invariants().map_err(TestCaseError::fail)?;
        }
    }
}

fn three_members() -> RingState {
    let mut state = RingState::new(8).expect("vnodes");
    for id in 1..=3 {
        state.join(Member::new(id, 1), id).expect("join");
    }
    state
}

#[test]
fn a_delta_for_another_epoch_is_refused() {
    let from = three_members();
    let mut to = from.clone();
    to.join(Member::new(4, 1), 9).expect("join");
    let delta = RingDelta::between(&from, &to);
    let mut stale = to.clone();
    assert_eq!(
        delta.apply(&mut stale),
        Err(DeltaError::EpochMismatch {
            ring: 9,
            delta_from: 3
        })
    );
    assert_eq!(stale, to);
}

/// A delta by hand: no removals, one record for member `id` with `positions`.
fn one_record_delta(from_epoch: u64, id: u64, positions: &[u64]) -> Vec<u8> {
    let mut bytes = DELTA_MAGIC.to_vec();
    bytes.push(DELTA_VERSION);
    bytes.extend_from_slice(&from_epoch.to_le_bytes());
    bytes.extend_from_slice(&(from_epoch + 1).to_le_bytes());
    bytes.extend_from_slice(&8u32.to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes.extend_from_slice(&id.to_le_bytes());
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes.extend_from_slice(&[0, 0]);
    bytes.extend_from_slice(&(positions.len() as u32).to_le_bytes());
    for position in positions {
        bytes.extend_from_slice(&position.to_le_bytes());
    }
    bytes
}

#[test]
fn a_delta_that_takes_a_token_of_an_untouched_member_is_refused() {
    let from = three_members();
    let taken = from.tokens_of(2)[0];
    let delta = RingDelta::decode(&one_record_delta(3, 4, &[taken])).expect("well formed");
    let mut ring = Ring::new(from.clone());
    assert_eq!(
        ring.apply_delta(&delta),
        Err(DeltaError::TokenTaken {
            position: taken,
            holder: 2
        })
    );
    assert_eq!(ring.state(), &from);
    ring.check_invariants().expect("view in step");

    // The same position given to member 2 itself is a move, not a theft.
    let moved = RingDelta::decode(&one_record_delta(3, 2, &[taken])).expect("well formed");
    ring.apply_delta(&moved).expect("applies");
    assert_eq!(ring.state().tokens_of(2), vec![taken]);
    ring.check_invariants().expect("view in step");
}

#[test]
fn a_delta_with_unsorted_positions_is_refused() {
    assert_eq!(
        RingDelta::decode(&one_record_delta(3, 4, &[9, 7])),
        Err(DecodeError::TokensUnsorted(4))
    );
}

#[test]
fn a_journal_that_dropped_history_sends_the_whole_ring() {
    let mut state = RingState::new(4).expect("vnodes");
    let mut journal = RingJournal::new(0, 2);
    for id in 1..=4 {
        state.join(Member::new(id, 1), id).expect("join");
        journal.record(id, id);
    }
    assert_eq!(journal.horizon(), 2);
    assert!(
        journal.delta_since(1, &state).is_none(),
        "before the horizon"
    );
    assert!(journal.delta_since(5, &state).is_none(), "after the ring");
    let delta = journal.delta_since(2, &state).expect("within");
    assert_eq!(delta.changed().len(), 2);
    assert_eq!(
        journal
            .delta_since(4, &state)
            .expect("current")
            .changed()
            .len(),
        0
    );
}

#[test]
fn hostile_delta_headers_get_clear_errors() {
    let mut header = DELTA_MAGIC.to_vec();
    header.push(DELTA_VERSION);
    header.extend_from_slice(&5u64.to_le_bytes());
    let mut reversed = header.clone();
    reversed.extend_from_slice(&4u64.to_le_bytes());
    assert_eq!(
        RingDelta::decode(&reversed),
        Err(DecodeError::EpochsReversed { from: 5, to: 4 })
    );
    let mut huge = header.clone();
    huge.extend_from_slice(&6u64.to_le_bytes());
    huge.extend_from_slice(&8u32.to_le_bytes());
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        RingDelta::decode(&huge),
        Err(DecodeError::LimitExceeded { .. })
    ));
    assert_eq!(RingDelta::decode(b"RRNG"), Err(DecodeError::BadMagic));
    assert!(matches!(
        RingDelta::decode(&header),
        Err(DecodeError::Truncated { .. })
    ));
}
