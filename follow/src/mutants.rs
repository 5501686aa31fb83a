//! Test-only switches that each break one rule of this crate, to show that the tests can fail:
//! the simulator and the unit tests run with each one on and must go red (the table is in
//! docs/follow.md).
//!
//! The switch is [`crate::Config::mutant`], which exists only with the cargo feature `mutants`.
//! The crate's own tests turn the feature on (a dev-dependency on itself); nothing else does, so
//! a real build has no field to set and every check below is the constant `false`.

/// One broken rule, named after what it breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mutant {
    /// An observer applies entries that do not start at the index it asked from (breaks "apply
    /// strictly in order, no gaps").
    ApplySkippingIndex,
    /// An observer applies entries above the commit index its upstream claims (breaks "never
    /// apply anything not committed").
    ApplyAboveCommit,
    /// The tree ignores the fan-out: every observer hangs directly below a voter.
    TopologyIgnoresFanOut,
    /// The tree is a heap over the observers' rank in hash order, so one join shifts every rank
    /// after it (breaks stability: O(N) members re-parented per change).
    TopologyByRank,
    /// An observer's fallback is one of its own downstreams (breaks "the fallback is not in the
    /// member's own subtree").
    FallbackInSubtree,
    /// An observer never switches to its fallback.
    NoFallback,
    /// An observer on its fallback never returns to its primary.
    NoReturnToPrimary,
    /// A liveness digest carries only what its sender saw itself, dropping the silent members its
    /// downstreams reported.
    DigestDropsSilent,
}

impl Mutant {
    pub const ALL: [Mutant; 8] = [
        Mutant::ApplySkippingIndex,
        Mutant::ApplyAboveCommit,
        Mutant::TopologyIgnoresFanOut,
        Mutant::TopologyByRank,
        Mutant::FallbackInSubtree,
        Mutant::NoFallback,
        Mutant::NoReturnToPrimary,
        Mutant::DigestDropsSilent,
    ];
}

impl crate::config::Config {
    /// True if this core runs with `mutant` switched on (never without the `mutants` feature).
    #[inline(always)]
    pub(crate) fn mutated(&self, mutant: Mutant) -> bool {
        #[cfg(feature = "mutants")]
        {
            self.mutant == Some(mutant)
        }
        #[cfg(not(feature = "mutants"))]
        {
            let _ = mutant;
            false
        }
    }
}
