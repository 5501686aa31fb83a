//! Majorities over a (possibly joint) configuration (Raft thesis §4.3): while joint, every decision
//! needs a majority of the incoming voters AND a majority of the outgoing voters.

use std::collections::BTreeMap;

use crate::types::{ConfState, LogIndex, NodeId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VoteResult {
    Won,
    Lost,
    Pending,
}

fn majority_vote(voters: &[NodeId], votes: &BTreeMap<NodeId, bool>) -> VoteResult {
    // An empty half of a joint configuration never blocks a decision.
    if voters.is_empty() {
        return VoteResult::Won;
    }
    let mut yes = 0;
    let mut missing = 0;
    for id in voters {
        match votes.get(id) {
            Some(true) => yes += 1,
            Some(false) => {}
            None => missing += 1,
        }
    }
    let quorum = voters.len() / 2 + 1;
    if yes >= quorum {
        VoteResult::Won
    } else if yes + missing >= quorum {
        VoteResult::Pending
    } else {
        VoteResult::Lost
    }
}

/// The outcome of an election (or any yes/no poll) under `conf`.
pub(crate) fn vote_result(conf: &ConfState, votes: &BTreeMap<NodeId, bool>) -> VoteResult {
    let incoming = majority_vote(&conf.voters, votes);
    let outgoing = majority_vote(&conf.voters_outgoing, votes);
    match (incoming, outgoing) {
        (VoteResult::Won, VoteResult::Won) => VoteResult::Won,
        (VoteResult::Lost, _) | (_, VoteResult::Lost) => VoteResult::Lost,
        _ => VoteResult::Pending,
    }
}

/// True if the nodes for which `member` answers true form a quorum of `conf`.
pub(crate) fn is_quorum(conf: &ConfState, member: impl Fn(NodeId) -> bool) -> bool {
    let votes: BTreeMap<NodeId, bool> = conf
        .voters
        .iter()
        .chain(conf.voters_outgoing.iter())
        .map(|&id| (id, member(id)))
        .collect();
    vote_result(conf, &votes) == VoteResult::Won
}

fn majority_index(voters: &[NodeId], match_of: &impl Fn(NodeId) -> LogIndex) -> Option<LogIndex> {
    if voters.is_empty() {
        return None;
    }
    let mut matched: Vec<LogIndex> = voters.iter().map(|&id| match_of(id)).collect();
    matched.sort_unstable_by(|a, b| b.cmp(a));
    Some(matched[voters.len() / 2])
}

/// The highest index that a quorum of `conf` has matched.
pub(crate) fn quorum_index(conf: &ConfState, match_of: impl Fn(NodeId) -> LogIndex) -> LogIndex {
    match (
        majority_index(&conf.voters, &match_of),
        majority_index(&conf.voters_outgoing, &match_of),
    ) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => 0,
    }
}

pub(crate) fn is_voter(conf: &ConfState, id: NodeId) -> bool {
    conf.voters.contains(&id) || conf.voters_outgoing.contains(&id)
}

pub(crate) fn is_learner(conf: &ConfState, id: NodeId) -> bool {
    !is_voter(conf, id) && (conf.learners.contains(&id) || conf.learners_next.contains(&id))
}

/// Every node the leader replicates to: voters of both halves and learners, sorted, no duplicates.
pub(crate) fn members(conf: &ConfState) -> Vec<NodeId> {
    let mut ids: Vec<NodeId> = conf
        .voters
        .iter()
        .chain(&conf.voters_outgoing)
        .chain(&conf.learners)
        .chain(&conf.learners_next)
        .copied()
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Voters of both halves, sorted, no duplicates.
pub(crate) fn voters(conf: &ConfState) -> Vec<NodeId> {
    let mut ids: Vec<NodeId> = conf
        .voters
        .iter()
        .chain(&conf.voters_outgoing)
        .copied()
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(voters: &[NodeId], outgoing: &[NodeId]) -> ConfState {
        ConfState {
            voters: voters.to_vec(),
            voters_outgoing: outgoing.to_vec(),
            ..ConfState::default()
        }
    }

    #[test]
    fn joint_quorum_index_is_the_smaller_majority() {
        let c = conf(&[1, 2, 3], &[1, 4, 5]);
        let matched = |id: NodeId| [0, 10, 9, 8, 2, 1][id as usize];
        // incoming {10, 9, 8} -> 9; outgoing {10, 2, 1} -> 2
        assert_eq!(quorum_index(&c, matched), 2);
        assert_eq!(quorum_index(&conf(&[1, 2, 3], &[]), matched), 9);
    }

    #[test]
    fn joint_vote_needs_both_majorities() {
        let c = conf(&[1, 2, 3], &[3, 4, 5]);
        let mut votes = BTreeMap::new();
        votes.insert(1, true);
        votes.insert(2, true);
        assert_eq!(vote_result(&c, &votes), VoteResult::Pending);
        votes.insert(4, false);
        votes.insert(5, false);
        assert_eq!(vote_result(&c, &votes), VoteResult::Lost);
        votes.insert(4, true);
        assert_eq!(vote_result(&c, &votes), VoteResult::Pending);
        votes.insert(3, true);
        assert_eq!(vote_result(&c, &votes), VoteResult::Won);
    }
}
