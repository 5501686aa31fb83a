//! Each mutant breaks one rule; the simulator must catch every one (red), with the check that
//! guards that rule. The same runs without the mutant are clean (see simulation.rs).

mod sim;

use ringraft_follow::Mutant;
use sim::{run, SimConfig};

/// The check that must go red for each mutant.
fn expected_check(mutant: Mutant) -> &'static str {
    match mutant {
        Mutant::ApplySkippingIndex => "order",
        Mutant::ApplyAboveCommit => "above-commit",
        Mutant::TopologyIgnoresFanOut => "fan-out",
        Mutant::TopologyByRank => "stability",
        Mutant::FallbackInSubtree => "fallback-in-subtree",
        Mutant::NoFallback => "reattach",
        Mutant::NoReturnToPrimary => "return-to-primary",
        Mutant::DigestDropsSilent => "down-",
    }
}

const MUTANT_SEEDS: [u64; 2] = [1, 2];
const MUTANT_OBSERVERS: usize = 400;
/// Ranks shift for the members after a join, but a heap parent changes only every fan-out ranks:
/// the rank tree re-parents about N / (2 · fan_out) members per change, above the bound only
/// from a few thousand members.
const RANK_MUTANT_OBSERVERS: usize = 3_000;

fn assert_caught(mutant: Mutant) {
    // Debug builds (CI runs the suite in debug too) use the first seed only.
    let seed_count = if cfg!(debug_assertions) {
        1
    } else {
        MUTANT_SEEDS.len()
    };
    let (seeds, observers) = match mutant {
        Mutant::TopologyByRank => (&MUTANT_SEEDS[..1], RANK_MUTANT_OBSERVERS),
        _ => (&MUTANT_SEEDS[..seed_count], MUTANT_OBSERVERS),
    };
    for &seed in seeds {
        let clean = run(SimConfig::for_mutant(seed, observers, mutant).without_mutant());
        assert!(
            clean.violations.is_empty(),
            "seed {seed} without {mutant:?} is not clean:\n{}",
            clean.violations.join("\n")
        );
        let report = run(SimConfig::for_mutant(seed, observers, mutant));
        let check = expected_check(mutant);
        // Shown with --nocapture: the red line each mutant produces.
        if let Some(red) = report.violations.iter().find(|v| v.starts_with(check)) {
            println!(
                "{mutant:?} red on seed {seed}: {}",
                &red[..red.len().min(160)]
            );
        }
        assert!(
            report.has(check),
            "{mutant:?} survived seed {seed}: no '{check}' violation; got {:?}",
            report.violations.iter().take(3).collect::<Vec<_>>()
        );
    }
}

#[test]
fn apply_skipping_index_is_caught() {
    assert_caught(Mutant::ApplySkippingIndex);
}

#[test]
fn apply_above_commit_is_caught() {
    assert_caught(Mutant::ApplyAboveCommit);
}

#[test]
fn topology_ignores_fan_out_is_caught() {
    assert_caught(Mutant::TopologyIgnoresFanOut);
}

#[test]
fn topology_by_rank_is_caught() {
    assert_caught(Mutant::TopologyByRank);
}

#[test]
fn fallback_in_subtree_is_caught() {
    assert_caught(Mutant::FallbackInSubtree);
}

#[test]
fn no_fallback_is_caught() {
    assert_caught(Mutant::NoFallback);
}

#[test]
fn no_return_to_primary_is_caught() {
    assert_caught(Mutant::NoReturnToPrimary);
}

#[test]
fn digest_drops_silent_is_caught() {
    assert_caught(Mutant::DigestDropsSilent);
}

/// Every mutant has a test above (a new one must be added here and there).
#[test]
fn every_mutant_has_a_check() {
    for mutant in Mutant::ALL {
        assert!(!expected_check(mutant).is_empty());
    }
}
