//! The quorum rule: a majority of the key's acceptors, and during a handoff a majority of the old
//! set AND a majority of the new one, in every phase. Garbage collection needs every acceptor.

use std::collections::BTreeSet;

use crate::types::{KeyConfig, NodeId};

/// The sets one round counts votes against, fixed when the round starts.
#[derive(Debug, Clone)]
pub(crate) struct Quorum {
    sets: Vec<Vec<NodeId>>,
}

fn majority(set: &[NodeId]) -> usize {
    set.len() / 2 + 1
}

fn count(set: &[NodeId], votes: &BTreeSet<NodeId>) -> usize {
    set.iter().filter(|n| votes.contains(n)).count()
}

impl Quorum {
    /// `new_only` is the mutant that forgets the old set during a handoff.
    pub(crate) fn of(config: &KeyConfig, new_only: bool) -> Quorum {
        let mut sets = vec![config.acceptors.clone()];
        if let Some((_, previous)) = &config.previous {
            if !new_only {
                sets.push(previous.clone());
            }
        }
        Quorum { sets }
    }

    /// Everyone a round asks: both sets (under the mutant too: it only miscounts).
    pub(crate) fn members(config: &KeyConfig) -> BTreeSet<NodeId> {
        let mut all: BTreeSet<NodeId> = config.acceptors.iter().copied().collect();
        if let Some((_, previous)) = &config.previous {
            all.extend(previous.iter().copied());
        }
        all
    }

    /// A majority of every set voted yes.
    pub(crate) fn is_reached(&self, yes: &BTreeSet<NodeId>) -> bool {
        self.sets.iter().all(|set| count(set, yes) >= majority(set))
    }

    /// Some set can no longer reach a majority.
    pub(crate) fn is_lost(&self, no: &BTreeSet<NodeId>) -> bool {
        self.sets
            .iter()
            .any(|set| count(set, no) > set.len() - majority(set))
    }

    /// Every acceptor of every set voted yes (garbage collection).
    pub(crate) fn is_unanimous(&self, yes: &BTreeSet<NodeId>) -> bool {
        self.sets.iter().all(|set| count(set, yes) == set.len())
    }
}
