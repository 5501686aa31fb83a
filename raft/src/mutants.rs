//! Test-only switches that each break one protocol rule, to measure the simulator's power: a
//! test runs the default seeds against every mutant and fails unless each one is caught.
//!
//! The switch lives in [`crate::Config::mutant`], which exists only with the cargo feature
//! `mutants`. The crate's own tests turn the feature on (a dev-dependency on itself); nothing
//! else does, so a release build of the daemon has no field to set and every check below is the
//! constant `false`.

/// One broken rule. Each names the rule it breaks and where the rule comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mutant {
    /// A leader commits entries of earlier terms by counting replicas (breaks thesis §3.6.2,
    /// figure 3.7: "figure 8").
    CommitEarlierTermsByCounting,
    /// A leader appends a configuration change before an entry of its own term has committed
    /// (breaks the single-server membership rule of the thesis errata, raft-dev 2015).
    ConfChangeBeforeTermCommit,
    /// The leader lease lasts twice as long as the drift bound allows (breaks thesis §6.4.1).
    LeaseTwiceTooLong,
    /// Joint configurations ignore their outgoing half in votes, commit, CheckQuorum and reads
    /// (breaks thesis §4.3).
    JointIgnoresOutgoing,
    /// The leader serves ReadIndex before an entry of its own term has committed (breaks thesis
    /// §6.4 step 1).
    ReadIndexBeforeTermCommit,
    /// Votes and append acknowledgements leave before what they promise is durable (breaks
    /// thesis §3.8).
    AckBeforeFsync,
    /// The leader counts its own log toward the commit quorum before it is durable (breaks
    /// thesis §10.2.1).
    LeaderCountsUnsyncedLog,
    /// A follower truncates its log after the last entry of every append, so a stale, reordered
    /// append erases entries it already acknowledged (breaks the AppendEntries rule "if an
    /// existing entry conflicts ... delete it and all that follow": only on a conflict).
    StaleAppendTruncates,
    /// Installing a snapshot discards the log even when the log holds the snapshot's last entry
    /// (breaks thesis §5.1: "retain log entries following it").
    SnapshotDiscardsMatchingLog,
    /// A follower takes an append whose entries do not follow each other or carry a term above
    /// the message's (breaks "everything from a peer is hostile until checked").
    TrustsMalformedAppend,
    /// A node that its own uncommitted configuration entry removed never campaigns (breaks
    /// thesis §4.2.2; liveness only: see `RawNode::election_conf`).
    RemovedLeaderNeverCampaigns,
    /// A leader appends a configuration that makes it a learner instead of handing leadership
    /// over first (liveness only: see `RawNode::hand_over_before_own_demotion`).
    LeaderDemotesItself,
    /// A learner that refused a needed candidate for its older log never campaigns (liveness
    /// only: see `RawNode::is_promotable`).
    NeededLearnerNeverCampaigns,
}

impl Mutant {
    /// The mutants that break a liveness rule only: the rule tests in `tests/paper_rules.rs`
    /// catch them, and the simulator can run them (`RINGRAFT_SIM_MUTANT`).
    pub const LIVENESS: [Mutant; 3] = [
        Mutant::RemovedLeaderNeverCampaigns,
        Mutant::LeaderDemotesItself,
        Mutant::NeededLearnerNeverCampaigns,
    ];

    /// The mutants that break a safety rule: the simulator's safety checkers must catch each.
    pub const ALL: [Mutant; 10] = [
        Mutant::CommitEarlierTermsByCounting,
        Mutant::ConfChangeBeforeTermCommit,
        Mutant::LeaseTwiceTooLong,
        Mutant::JointIgnoresOutgoing,
        Mutant::ReadIndexBeforeTermCommit,
        Mutant::AckBeforeFsync,
        Mutant::LeaderCountsUnsyncedLog,
        Mutant::StaleAppendTruncates,
        Mutant::SnapshotDiscardsMatchingLog,
        Mutant::TrustsMalformedAppend,
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
