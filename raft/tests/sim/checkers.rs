//! Raft's safety properties (Raft paper, figure 3), checked incrementally after every step of the
//! simulation from what the nodes hand to their shells:
//!
//! - election safety: at most one leader per term, and no node is elected twice in one term once
//!   its first leadership was visible (a leader message of that term left it): a second election
//!   then means it forgot its vote in a crash, and the two lives may append different entries at
//!   the same index and term. A leader that crashed before its own vote was durable and before
//!   anything it sent as leader left may win the same term again: its first leadership left no
//!   trace but votes, which the voters cast for it again;
//! - log matching: two logs with an entry of the same index and term hold the same prefix;
//! - leader completeness: a leader's log holds every entry committed in an earlier term;
//! - state machine safety: every applied sequence is a prefix of one history (an applied entry,
//!   or a restored snapshot, never differs from what any node applied at that index).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ringraft_raft::{LogIndex, NodeId, Role, Term};

use super::mirror::{LogMirror, MirroredEntry};
use super::node::Observation;

/// What kind of rule a failed run broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// A Raft safety property, a lost acknowledged write, or a non-linearizable history.
    Safety,
    /// The core broke the contract of its API (Ready order, errors on valid input).
    Contract,
    /// The cluster did not converge once the faults stopped.
    Liveness,
    /// The run never ended (a message storm or an empty event queue).
    Stuck,
    /// Something panicked: an invariant the core asserts, or the simulator itself (the failure
    /// names the place).
    Panic,
}

/// A leader elected in `term` must, once its mirrored log reaches `index`, hold `chain` there.
struct PendingCompleteness {
    node: NodeId,
    incarnation: u32,
    term: Term,
    index: LogIndex,
    chain: u64,
}

#[derive(Default)]
pub struct Invariants {
    /// The leader of each term and the life in which it was last elected.
    leaders: BTreeMap<Term, (NodeId, u32)>,
    /// (node, term, life) in which a message only a leader sends left the node.
    sent_as_leader: BTreeSet<(NodeId, Term, u32)>,
    /// What was applied (or restored from a snapshot) at each index, anywhere: (term, chain).
    committed: HashMap<LogIndex, (Term, u64)>,
    /// Highest index applied by a node whose term was at most the key: every such index was
    /// committed by a leader of that term or an earlier one.
    committed_by_term: BTreeMap<Term, LogIndex>,
    /// Chain hash of every (index, term) any log held.
    log_entries: HashMap<(LogIndex, Term), u64>,
    pending_completeness: Vec<PendingCompleteness>,
    violation: Option<(FailureKind, String)>,
    pub leader_elections: u64,
}

impl Invariants {
    pub fn violation(&self) -> Option<&str> {
        self.violation.as_ref().map(|(_, what)| what.as_str())
    }

    pub fn take_violation(&mut self) -> Option<(FailureKind, String)> {
        self.violation.take()
    }

    pub fn fail(&mut self, what: String) {
        self.violation.get_or_insert((FailureKind::Safety, what));
    }

    /// `node_term` is the node's term after the step that produced the observation.
    pub fn observe(&mut self, node: NodeId, node_term: Term, observation: &Observation) {
        match observation {
            Observation::BrokenPromise(what) => {
                self.fail(format!("durability rule: node {node}: {what}"))
            }
            Observation::Violation(what) => {
                let what = format!("node {node}: {what}");
                self.violation.get_or_insert((FailureKind::Contract, what));
            }
            Observation::Appended(entries) => {
                for entry in entries {
                    self.check_log_matching(node, entry);
                }
            }
            Observation::Applied(entry) => {
                self.check_committed(node, entry, "applied");
                let known = self.committed_by_term.entry(node_term).or_insert(0);
                *known = (*known).max(entry.index);
            }
            Observation::SnapshotRestored(entry) => {
                self.check_committed(node, entry, "restored a snapshot of")
            }
            Observation::SentAsLeader { term, incarnation } => {
                self.sent_as_leader.insert((node, *term, *incarnation));
            }
        }
    }

    fn check_log_matching(&mut self, node: NodeId, entry: &MirroredEntry) {
        match self.log_entries.get(&(entry.index, entry.term)) {
            Some(&chain) if chain != entry.chain => self.fail(format!(
                "log matching: node {node} holds ({}, term {}) after a prefix that differs from \
                 another log's entry with the same index and term",
                entry.index, entry.term
            )),
            Some(_) => {}
            None => {
                self.log_entries
                    .insert((entry.index, entry.term), entry.chain);
            }
        }
    }

    fn check_committed(&mut self, node: NodeId, entry: &MirroredEntry, what: &str) {
        match self.committed.get(&entry.index) {
            Some(&(term, chain)) if chain != entry.chain => self.fail(format!(
                "state machine safety: node {node} {what} index {} (term {}), but a history \
                 with term {term} at that index was applied before",
                entry.index, entry.term
            )),
            Some(_) => {}
            None => {
                self.committed
                    .insert(entry.index, (entry.term, entry.chain));
            }
        }
    }

    /// Called for a node after every step that touched it.
    pub fn observe_role(
        &mut self,
        node: NodeId,
        incarnation: u32,
        role: Role,
        term: Term,
        mirror: &LogMirror,
    ) {
        if role == Role::Leader {
            match self.leaders.get(&term) {
                None => {
                    self.leaders.insert(term, (node, incarnation));
                    self.leader_elections += 1;
                    self.expect_completeness(node, incarnation, term);
                }
                Some(&(other, _)) if other != node => self.fail(format!(
                    "election safety: nodes {other} and {node} are both leaders of term {term}"
                )),
                Some(&(_, other_incarnation)) if other_incarnation != incarnation => {
                    let visible = self
                        .sent_as_leader
                        .range((node, term, 0)..=(node, term, u32::MAX))
                        .find(|&&(_, _, life)| life != incarnation);
                    match visible {
                        Some(&(_, _, life)) => self.fail(format!(
                            "election safety: node {node} was elected twice in term {term} \
                             (lives {life} and {incarnation}), and life {life} had sent \
                             messages as leader: it lost its vote in a crash"
                        )),
                        // The earlier leadership left no trace: a legitimate re-election.
                        None => {
                            self.leaders.insert(term, (node, incarnation));
                            self.expect_completeness(node, incarnation, term);
                        }
                    }
                }
                Some(_) => {}
            }
        }
        self.check_completeness(node, incarnation, role, term, mirror);
    }

    fn expect_completeness(&mut self, node: NodeId, incarnation: u32, term: Term) {
        let Some(index) = self
            .committed_by_term
            .range(..=term)
            .map(|(_, &index)| index)
            .max()
        else {
            return;
        };
        if index == 0 {
            return;
        }
        let (_, chain) = self.committed[&index];
        self.pending_completeness.push(PendingCompleteness {
            node,
            incarnation,
            term,
            index,
            chain,
        });
    }

    fn check_completeness(
        &mut self,
        node: NodeId,
        incarnation: u32,
        role: Role,
        term: Term,
        mirror: &LogMirror,
    ) {
        let mut failure = None;
        self.pending_completeness.retain(|check| {
            if check.node != node {
                return true;
            }
            if check.incarnation != incarnation || check.term != term || role != Role::Leader {
                return false; // no longer that leader
            }
            if mirror.last_index() < check.index {
                return true; // the core has not handed its whole log to the shell yet
            }
            if let Some(chain) = mirror.chain_at(check.index) {
                if chain != check.chain {
                    failure = Some(format!(
                        "leader completeness: node {node}, leader of term {term}, lacks the entry \
                         committed at index {}",
                        check.index
                    ));
                }
            }
            false
        });
        if let Some(failure) = failure {
            self.fail(failure);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringraft_raft::{Entry, EntryPayload};

    fn log(entries: &[(LogIndex, Term)]) -> LogMirror {
        let mut mirror = LogMirror::default();
        let entries: Vec<Entry> = entries
            .iter()
            .map(|&(index, term)| Entry {
                index,
                term,
                payload: EntryPayload::Empty,
            })
            .collect();
        mirror.append(&entries).unwrap();
        mirror
    }

    fn entry_of(mirror: &LogMirror, index: LogIndex) -> MirroredEntry {
        MirroredEntry {
            index,
            term: mirror.term_at(index).unwrap(),
            chain: mirror.chain_at(index).unwrap(),
        }
    }

    #[test]
    fn two_leaders_in_one_term_are_caught() {
        let mut checker = Invariants::default();
        let empty = LogMirror::default();
        checker.observe_role(1, 1, Role::Leader, 3, &empty);
        checker.observe_role(2, 1, Role::Follower, 3, &empty);
        checker.observe_role(2, 1, Role::Leader, 4, &empty);
        assert_eq!(checker.violation(), None);
        checker.observe_role(2, 1, Role::Leader, 3, &empty);
        assert!(checker.violation().unwrap().contains("election safety"));
    }

    #[test]
    fn reelection_after_forgetting_a_vote_is_caught() {
        let mut checker = Invariants::default();
        let empty = LogMirror::default();
        checker.observe_role(1, 1, Role::Leader, 3, &empty);
        let sent = Observation::SentAsLeader {
            term: 3,
            incarnation: 1,
        };
        checker.observe(1, 3, &sent);
        checker.observe_role(1, 2, Role::Leader, 3, &empty);
        assert!(checker.violation().unwrap().contains("elected twice"));

        // Also when a silent life came in between.
        let mut checker = Invariants::default();
        checker.observe_role(1, 1, Role::Leader, 3, &empty);
        checker.observe(1, 3, &sent);
        checker.observe_role(1, 2, Role::Follower, 2, &empty);
        checker.observe_role(1, 3, Role::Leader, 3, &empty);
        assert!(checker.violation().unwrap().contains("elected twice"));
    }

    /// A candidate that wins with the votes of others, crashes before its own vote is durable
    /// and before any of its leader messages left, restarts in the old term and wins the same
    /// term again (the voters grant a candidate they already voted for): nothing of the first
    /// leadership was ever seen, so nothing can conflict.
    #[test]
    fn reelection_of_a_leader_that_sent_nothing_is_legitimate() {
        let mut checker = Invariants::default();
        let empty = LogMirror::default();
        checker.observe_role(1, 1, Role::Leader, 3, &empty);
        // It led term 2 visibly in life 1: irrelevant to term 3.
        checker.observe(
            1,
            3,
            &Observation::SentAsLeader {
                term: 2,
                incarnation: 1,
            },
        );
        checker.observe_role(1, 2, Role::Follower, 2, &empty);
        checker.observe_role(1, 2, Role::Leader, 3, &empty);
        assert_eq!(checker.violation(), None);
        // Life 2 leads visibly; a third election in term 3 is the bug again.
        checker.observe(
            1,
            3,
            &Observation::SentAsLeader {
                term: 3,
                incarnation: 2,
            },
        );
        checker.observe_role(1, 3, Role::Leader, 3, &empty);
        assert!(checker.violation().unwrap().contains("lives 2 and 3"));
    }

    #[test]
    fn diverging_applied_histories_are_caught() {
        let mut checker = Invariants::default();
        let a = log(&[(1, 1), (2, 1)]);
        let b = log(&[(1, 1), (2, 2)]);
        checker.observe(1, 1, &Observation::Applied(entry_of(&a, 1)));
        checker.observe(2, 2, &Observation::Applied(entry_of(&b, 1)));
        checker.observe(1, 1, &Observation::Applied(entry_of(&a, 2)));
        assert_eq!(checker.violation(), None);
        checker.observe(2, 2, &Observation::Applied(entry_of(&b, 2)));
        assert!(checker
            .violation()
            .unwrap()
            .contains("state machine safety"));
    }

    #[test]
    fn same_index_and_term_after_different_prefixes_is_caught() {
        let mut checker = Invariants::default();
        let a = log(&[(1, 1), (2, 3)]);
        let b = log(&[(1, 2), (2, 3)]);
        checker.observe(1, 3, &Observation::Appended(vec![entry_of(&a, 2)]));
        assert_eq!(checker.violation(), None);
        checker.observe(2, 3, &Observation::Appended(vec![entry_of(&b, 2)]));
        assert!(checker.violation().unwrap().contains("log matching"));
    }

    #[test]
    fn leader_without_a_committed_entry_is_caught() {
        let mut checker = Invariants::default();
        let committed = log(&[(1, 1), (2, 1)]);
        checker.observe(1, 1, &Observation::Applied(entry_of(&committed, 1)));
        checker.observe(1, 1, &Observation::Applied(entry_of(&committed, 2)));
        // Node 2 becomes leader of term 2 before its shell saw its log: pending.
        let stale = log(&[(1, 1)]);
        checker.observe_role(2, 1, Role::Leader, 2, &stale);
        assert_eq!(checker.violation(), None);
        let overwritten = log(&[(1, 1), (2, 2)]);
        checker.observe_role(2, 1, Role::Leader, 2, &overwritten);
        assert!(checker.violation().unwrap().contains("leader completeness"));

        // A leader of an older term need not know what a later term committed.
        let mut checker = Invariants::default();
        checker.observe(1, 5, &Observation::Applied(entry_of(&committed, 1)));
        checker.observe_role(2, 1, Role::Leader, 4, &LogMirror::default());
        checker.observe_role(2, 1, Role::Leader, 4, &log(&[(1, 4)]));
        assert_eq!(checker.violation(), None);
    }
}
