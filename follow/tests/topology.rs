//! The tree rule, checked on whole trees: the same tree whatever the order of changes, bounded
//! fan-out, fallbacks outside the member's subtree, and one change re-parenting few members.

#[path = "sim/checks.rs"]
mod checks;

use proptest::prelude::*;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use ringraft_follow::{Config, MembershipChange, NodeId, Role, Topology, TopologyError};

fn members(voters: u64, observers: u64) -> Vec<(NodeId, Role)> {
    (1..=voters)
        .map(|v| (v, Role::Voter))
        .chain((0..observers).map(|o| (1000 + o, Role::Observer)))
        .collect()
}

fn check_all(topology: &Topology) {
    topology.check_invariants().expect("tree invariants");
    checks::check_fan_out(topology).expect("fan-out");
    checks::check_fallbacks(topology).expect("fallbacks");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Every member computes the same tree from the same membership, whatever order the changes
    /// came in, and removals leave the tree a fresh build would give.
    #[test]
    fn same_tree_whatever_the_order(seed in any::<u64>(), observers in 1u64..400, voters in 1u64..6) {
        let config = Config::default();
        let mut all = members(voters, observers);
        let built = Topology::from_members(&config, all.clone()).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        all.shuffle(&mut rng);
        let shuffled = Topology::from_members(&config, all.clone()).unwrap();
        prop_assert!(built == shuffled);
        prop_assert_eq!(built.fingerprint(), shuffled.fingerprint());
        // Remove a third incrementally; compare with a build of what is left.
        let mut incremental = shuffled.clone();
        let removed: Vec<NodeId> = all
            .iter()
            .filter(|(_, role)| *role == Role::Observer)
            .map(|&(id, _)| id)
            .filter(|_| rng.gen_bool(0.33))
            .collect();
        for &id in &removed {
            incremental.apply(MembershipChange::Remove(id)).unwrap();
        }
        let rest = all.into_iter().filter(|(id, _)| !removed.contains(id));
        let rebuilt = Topology::from_members(&config, rest).unwrap();
        prop_assert!(incremental == rebuilt);
        prop_assert_eq!(incremental.fingerprint(), rebuilt.fingerprint());
        incremental.check_invariants().unwrap();
    }
}

#[test]
fn ten_thousand_members_keep_the_rules() {
    let config = Config::default();
    let topology = Topology::from_members(&config, members(5, 10_000)).unwrap();
    check_all(&topology);
    // 16^3 < 10,000 < 16^4: the tree is about four levels deep, plus the unevenness of hashing.
    let depth = topology.depth();
    assert!((4..=7).contains(&depth), "depth {depth}");
    // Each voter has about fan_out / voters root branches.
    for &voter in topology.voters() {
        let direct = topology.children(voter).len();
        assert!(direct <= 16_usize.div_ceil(5), "voter {voter} has {direct}");
    }
}

#[test]
fn one_change_reparents_at_most_fan_out_per_level() {
    let config = Config::default();
    let mut topology = Topology::from_members(&config, members(5, 10_000)).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut next: NodeId = 20_000;
    let mut moved_max = 0;
    for _ in 0..100 {
        let before_upstreams = checks::upstreams(&topology);
        let before = topology.clone();
        let change = if rng.gen_bool(0.5) {
            next += 1;
            MembershipChange::Set(next, Role::Observer)
        } else {
            let observers: Vec<NodeId> = {
                let mut o: Vec<NodeId> = topology.observers().collect();
                o.sort_unstable();
                o
            };
            MembershipChange::Remove(observers[rng.gen_range(0..observers.len())])
        };
        topology.apply(change).unwrap();
        let bound = checks::reparent_bound(&before, &topology);
        let moved =
            checks::check_stability(&before_upstreams, &checks::upstreams(&topology), bound)
                .unwrap();
        moved_max = moved_max.max(moved);
    }
    check_all(&topology);
    // Far below the O(N) a rank-ordered tree would re-parent.
    assert!(moved_max < 100, "{moved_max}");
}

#[test]
fn promotion_moves_a_member_out_of_the_tree() {
    let config = Config::default();
    let mut topology = Topology::from_members(&config, members(3, 500)).unwrap();
    topology
        .apply(MembershipChange::Set(1100, Role::Learner))
        .unwrap();
    assert_eq!(topology.role(1100), Some(Role::Learner));
    assert!(topology.candidates(1100).is_empty());
    topology
        .apply(MembershipChange::Set(1100, Role::Voter))
        .unwrap();
    assert_eq!(topology.voters(), &[1, 2, 3, 1100]);
    check_all(&topology);
    let rebuilt = Topology::from_members(
        &config,
        members(3, 500).into_iter().map(|(id, role)| {
            if id == 1100 {
                (id, Role::Voter)
            } else {
                (id, role)
            }
        }),
    )
    .unwrap();
    assert!(topology == rebuilt);
}

#[test]
fn bad_changes_are_refused_and_change_nothing() {
    let config = Config::default();
    let mut topology = Topology::from_members(&config, members(3, 50)).unwrap();
    let before = topology.fingerprint();
    assert_eq!(
        topology.apply(MembershipChange::Remove(99_999)),
        Err(TopologyError::UnknownMember(99_999))
    );
    assert_eq!(
        topology.apply(MembershipChange::Set(0, Role::Observer)),
        Err(TopologyError::ZeroId)
    );
    assert_eq!(topology.fingerprint(), before);
}
