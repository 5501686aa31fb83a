//! Hand-checked behaviour on rings whose tokens are written out byte by byte, following
//! the encoding in docs/ring.md.

use ringraft_ring::{
    key_position, DecodeError, Member, MemberState, Ring, RingError, RingState, ZONE_BYTES_MAX,
};

/// (id, zone, state, token positions) in ascending id.
type Spec<'a> = &'a [(u64, &'a str, MemberState, &'a [u64])];

fn encode_by_hand(epoch: u64, members: Spec<'_>) -> Vec<u8> {
    let mut bytes = b"RRNG".to_vec();
    bytes.push(1);
    bytes.extend_from_slice(&epoch.to_le_bytes());
    bytes.extend_from_slice(&16u32.to_le_bytes());
    bytes.extend_from_slice(&(members.len() as u32).to_le_bytes());
    for (id, zone, state, positions) in members {
        bytes.extend_from_slice(&id.to_le_bytes());
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.push(state.to_byte());
        bytes.push(zone.len() as u8);
        bytes.extend_from_slice(zone.as_bytes());
        bytes.extend_from_slice(&(positions.len() as u32).to_le_bytes());
        for position in *positions {
            bytes.extend_from_slice(&position.to_le_bytes());
        }
    }
    bytes
}

fn ring(epoch: u64, members: Spec<'_>) -> Ring {
    let bytes = encode_by_hand(epoch, members);
    let ring = Ring::decode(&bytes).expect("hand encoding decodes");
    assert_eq!(ring.encode(), bytes, "hand encoding is canonical");
    ring
}

const A: MemberState = MemberState::Active;

#[test]
fn owner_is_the_first_token_at_or_after_the_position_wrapping() {
    let ring = ring(7, &[(1, "", A, &[100, 300]), (2, "", A, &[200])]);
    let owner = |p| ring.owner_at(p).map(|o| o.member);
    assert_eq!(owner(0), Some(1));
    assert_eq!(
        owner(100),
        Some(1),
        "a position equal to a token belongs to it"
    );
    assert_eq!(owner(101), Some(2));
    assert_eq!(owner(200), Some(2));
    assert_eq!(owner(201), Some(1));
    assert_eq!(owner(300), Some(1));
    assert_eq!(
        owner(301),
        Some(1),
        "past the last token wraps to the first"
    );
    assert_eq!(owner(u64::MAX), Some(1));
    assert_eq!(ring.owner_at(5).map(|o| o.epoch), Some(7));
}

#[test]
fn inactive_tokens_hand_their_range_to_the_next_active_token() {
    let ring = ring(
        1,
        &[
            (1, "", A, &[100]),
            (2, "", MemberState::Draining, &[200]),
            (3, "", MemberState::Down, &[300]),
        ],
    );
    for position in [0, 100, 150, 250, 301, u64::MAX] {
        assert_eq!(ring.owner_at(position).map(|o| o.member), Some(1));
    }
    assert_eq!(ring.owning_members(), &[1]);
    assert_eq!(ring.replicas(b"k", 3).members, vec![1]);
}

#[test]
fn replicas_take_new_zones_first_then_fill_in_ring_order() {
    // Ring order from position 0: 1(a) 2(a) 3(b) 4(a) 5(none) 6(b)
    let ring = ring(
        3,
        &[
            (1, "a", A, &[10]),
            (2, "a", A, &[20]),
            (3, "b", A, &[30]),
            (4, "a", A, &[40]),
            (5, "", A, &[50]),
            (6, "b", A, &[60]),
        ],
    );
    let mut out = Vec::new();
    let mut replicas = |position, n| {
        let epoch = ring.replicas_at_into(position, n, &mut out);
        assert_eq!(epoch, 3);
        out.clone()
    };
    assert_eq!(replicas(0, 1), vec![1]);
    assert_eq!(replicas(0, 3), vec![1, 3, 5]);
    assert_eq!(replicas(0, 4), vec![1, 3, 5, 2]);
    assert_eq!(replicas(0, 6), vec![1, 3, 5, 2, 4, 6]);
    assert_eq!(
        replicas(0, 60),
        vec![1, 3, 5, 2, 4, 6],
        "fewer members than asked: all"
    );
    assert_eq!(
        replicas(55, 3),
        vec![6, 1, 5],
        "the walk wraps past the last token"
    );
    assert_eq!(replicas(0, 0), Vec::<u64>::new());
}

#[test]
fn without_zones_replicas_are_distinct_members_in_ring_order() {
    let ring = ring(
        1,
        &[(1, "", A, &[10, 25]), (2, "", A, &[20]), (3, "", A, &[30])],
    );
    let mut out = Vec::new();
    ring.replicas_at_into(15, 3, &mut out);
    assert_eq!(out, vec![2, 1, 3]);
    ring.replicas_at_into(0, 5, &mut out);
    assert_eq!(out, vec![1, 2, 3]);
}

#[test]
fn an_empty_ring_answers_nothing() {
    let ring = Ring::new(RingState::new(16).expect("vnodes"));
    assert_eq!(ring.owner(b"key"), None);
    assert!(ring.replicas(b"key", 3).members.is_empty());
}

#[test]
fn the_first_member_gets_evenly_spaced_tokens_and_owns_everything() {
    let mut state = RingState::new(4).expect("vnodes");
    state.join(Member::new(9, 1), 5).expect("join");
    let quarter = 1u64 << 62;
    assert_eq!(
        state.tokens_of(9),
        vec![
            quarter / 2,
            quarter + quarter / 2,
            2 * quarter + quarter / 2,
            3 * quarter + quarter / 2
        ]
    );
    let ring = Ring::new(state);
    assert_eq!(
        ring.owner(b"anything").map(|o| (o.member, o.epoch)),
        Some((9, 5))
    );
}

#[test]
fn a_second_member_takes_the_front_half_of_every_range() {
    let mut state = RingState::new(4).expect("vnodes");
    state.join(Member::new(1, 1), 1).expect("join");
    state.join(Member::new(2, 1), 2).expect("join");
    let coverage = state.token_coverage();
    assert_eq!(coverage[&1], coverage[&2]);
    // Member 1 sits at odd eighths; each of its ranges starts at the even eighth before
    // (the first wraps from 7/8 to 1/8), and member 2 cuts it at the middle.
    let eighth = 1u64 << 61;
    assert_eq!(
        state.tokens_of(2),
        vec![0, 2 * eighth, 4 * eighth, 6 * eighth]
    );
}

#[test]
fn key_position_is_xxh3_64_with_seed_zero() {
    // XXH3_64bits("") from the reference implementation's test suite.
    assert_eq!(key_position(b""), 0x2d06_8005_38d3_94c2);
}

#[test]
fn bad_changes_are_refused() {
    let mut state = RingState::new(8).expect("vnodes");
    assert!(matches!(
        RingState::new(0),
        Err(RingError::VnodesOutOfRange { .. })
    ));
    state.join(Member::new(1, 1), 10).expect("join");
    assert_eq!(
        state.join(Member::new(1, 1), 11),
        Err(RingError::DuplicateMember(1))
    );
    assert_eq!(
        state.leave(2, 11).map(|_| ()),
        Err(RingError::UnknownMember(2))
    );
    assert_eq!(
        state.set_state(1, MemberState::Down, 9),
        Err(RingError::EpochRegressed {
            current: 10,
            given: 9
        })
    );
    let long_zone = "z".repeat(ZONE_BYTES_MAX + 1);
    assert!(matches!(
        state.set_zone(1, long_zone, 11),
        Err(RingError::ZoneTooLong { .. })
    ));
    assert!(matches!(
        state.join(Member::new(2, u32::MAX), 11),
        Err(RingError::WeightTooLarge { .. })
    ));
    assert_eq!(state.epoch(), 10);
}

#[test]
fn hostile_encodings_get_clear_errors() {
    let good = encode_by_hand(1, &[(1, "a", A, &[10, 20]), (2, "", A, &[30])]);
    assert!(RingState::decode(&good).is_ok());
    assert_eq!(RingState::decode(b"XXXX"), Err(DecodeError::BadMagic));
    let mut version = good.clone();
    version[4] = 2;
    assert_eq!(
        RingState::decode(&version),
        Err(DecodeError::UnsupportedVersion(2))
    );
    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(
        RingState::decode(&trailing),
        Err(DecodeError::TrailingBytes(1))
    );
    let unsorted = encode_by_hand(1, &[(1, "", A, &[20, 10])]);
    assert_eq!(
        RingState::decode(&unsorted),
        Err(DecodeError::TokensUnsorted(1))
    );
    let shared = encode_by_hand(1, &[(1, "", A, &[10]), (2, "", A, &[10])]);
    assert_eq!(
        RingState::decode(&shared),
        Err(DecodeError::DuplicateToken(10))
    );
    let members_unsorted = encode_by_hand(1, &[(2, "", A, &[10]), (1, "", A, &[20])]);
    assert_eq!(
        RingState::decode(&members_unsorted),
        Err(DecodeError::MembersUnsorted(1))
    );
    // A member count far beyond the bytes present is refused before any allocation.
    let mut huge = good[..21].to_vec();
    huge[17..21].copy_from_slice(&60_000u32.to_le_bytes());
    assert!(matches!(
        RingState::decode(&huge),
        Err(DecodeError::Truncated { .. })
    ));
    huge[17..21].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        RingState::decode(&huge),
        Err(DecodeError::LimitExceeded { .. })
    ));
}
