//! Test-only switches that each break one protocol rule, to measure the simulator's power: a test
//! runs the default seeds against every mutant and fails unless each one is caught.
//!
//! The switch lives in [`crate::Config::mutant`], which exists only with the cargo feature
//! `mutants`. The crate's own tests turn the feature on (a dev-dependency on itself); nothing else
//! does, so a release build has no field to set and every check below is the constant `false`.

/// One broken rule, named after the rule in docs/paxos.md it breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mutant {
    /// An acceptor accepts a ballot lower than the one it promised (breaks "accept only at or
    /// above the promise", Paxos phase 2b).
    SkipPromiseCheck,
    /// An acceptor's promise and accept replies leave before their record is durable (breaks the
    /// durability rule: a crash makes the acceptor forget what it promised).
    ReplyBeforeDurable,
    /// During a handoff a proposer counts only the new acceptor set (breaks the joint quorum
    /// rule: the old set may hold the latest value, the new one not yet).
    NewQuorumOnlyDuringHandoff,
    /// An acceptor takes messages stamped with an epoch older than the one it knows (breaks the
    /// epoch fence: a proposer with a stale ring writes to an old set after the handoff).
    AcceptStaleEpoch,
    /// A proposer computes every operation of a batched round from the register the round read
    /// instead of the one the operations before it left, and proposes the last one's register
    /// (breaks "Batched rounds": earlier writes of the batch are answered but lost, conditions
    /// are checked against a stale version).
    BatchFromBase,
}

impl Mutant {
    pub const ALL: [Mutant; 5] = [
        Mutant::SkipPromiseCheck,
        Mutant::ReplyBeforeDurable,
        Mutant::NewQuorumOnlyDuringHandoff,
        Mutant::AcceptStaleEpoch,
        Mutant::BatchFromBase,
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
