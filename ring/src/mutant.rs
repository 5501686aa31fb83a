//! Deliberate bugs, switched on one at a time by unit tests, to prove that the property
//! tests fail when the incremental path is wrong (a property that cannot fail proves
//! nothing). Compiled only for the crate's own unit tests; per thread, so tests running in
//! parallel do not see each other's mutant.

use std::cell::Cell;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mutant {
    None,
    /// Allocation rounds each token's quota down instead of up.
    QuotaRoundedDown,
    /// Removing a token leaves the next token's range as it was.
    SuccessorNotWidened,
    /// `Ring::set_zone` changes the state but not the lookup view.
    ViewIgnoresZoneChange,
}

thread_local! {
    static ACTIVE: Cell<Mutant> = const { Cell::new(Mutant::None) };
}

/// Runs `f` with `mutant` switched on in this thread.
pub(crate) fn with_mutant<T>(mutant: Mutant, f: impl FnOnce() -> T) -> T {
    ACTIVE.with(|active| active.set(mutant));
    let result = f();
    ACTIVE.with(|active| active.set(Mutant::None));
    result
}

pub(crate) fn is(mutant: Mutant) -> bool {
    ACTIVE.with(|active| active.get() == mutant)
}
