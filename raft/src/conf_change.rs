//! Membership changes as pure functions of the configuration, and the history of configurations
//! present in the log.
//!
//! A configuration takes effect as soon as its entry is in a node's log, committed or not (Raft
//! thesis §4.1). So the configuration in effect is the latest one in the log, and truncating a
//! conflicting suffix that held a configuration entry reverts to the configuration before it.

use crate::types::{ConfChange, ConfChangeStep, ConfState, Entry, EntryPayload, LogIndex, NodeId};

fn remove(ids: &mut Vec<NodeId>, id: NodeId) {
    ids.retain(|&x| x != id);
}

fn insert(ids: &mut Vec<NodeId>, id: NodeId) {
    if !ids.contains(&id) {
        ids.push(id);
        ids.sort_unstable();
    }
}

/// The configuration that results from applying `change` to `conf`.
///
/// - An empty change list leaves a joint configuration (the outgoing voters go away, demoted
///   voters become learners).
/// - A change that alters at most one voter applies directly (thesis §4.2).
/// - A change that alters several voters enters a joint configuration (thesis §4.3): the old
///   voters stay as outgoing voters until the leave step.
pub fn apply_conf_change(conf: &ConfState, change: &ConfChange) -> Result<ConfState, String> {
    let joint = !conf.voters_outgoing.is_empty();
    if change.changes.is_empty() {
        if !joint {
            return Err("an empty change only leaves a joint configuration".into());
        }
        let mut next = conf.clone();
        next.voters_outgoing.clear();
        for id in std::mem::take(&mut next.learners_next) {
            if !next.voters.contains(&id) {
                insert(&mut next.learners, id);
            }
        }
        next.auto_leave = false;
        return Ok(next);
    }
    if joint {
        return Err("leave the joint configuration first".into());
    }
    let mut next = conf.clone();
    for step in &change.changes {
        match *step {
            ConfChangeStep::AddVoter(id) => {
                check_id(id)?;
                remove(&mut next.learners, id);
                insert(&mut next.voters, id);
            }
            ConfChangeStep::AddLearner(id) => {
                check_id(id)?;
                remove(&mut next.voters, id);
                insert(&mut next.learners, id);
            }
            ConfChangeStep::RemoveNode(id) => {
                check_id(id)?;
                remove(&mut next.voters, id);
                remove(&mut next.learners, id);
            }
        }
    }
    if next.voters.is_empty() {
        return Err("the change would leave no voters".into());
    }
    let changed_voters = conf
        .voters
        .iter()
        .filter(|id| !next.voters.contains(id))
        .count()
        + next
            .voters
            .iter()
            .filter(|id| !conf.voters.contains(id))
            .count();
    if changed_voters > 1 {
        // Joint: an old voter that becomes a learner is still an outgoing voter until the leave
        // step, and a node is never a voter and a learner at once.
        next.voters_outgoing = conf.voters.clone();
        let demoted: Vec<NodeId> = next
            .learners
            .iter()
            .copied()
            .filter(|id| conf.voters.contains(id))
            .collect();
        for id in demoted {
            remove(&mut next.learners, id);
            insert(&mut next.learners_next, id);
        }
        next.auto_leave = change.auto_leave;
    }
    Ok(next)
}

fn check_id(id: NodeId) -> Result<(), String> {
    if id == 0 {
        Err("node id 0 is invalid".into())
    } else {
        Ok(())
    }
}

/// The configurations in the log: the one at the snapshot, then one per conf change entry.
#[derive(Debug, Clone)]
pub(crate) struct ConfLog {
    base: ConfState,
    changes: Vec<(LogIndex, ConfState)>,
    /// Bumped whenever the configuration in effect changes, so the node can react.
    pub generation: u64,
}

impl ConfLog {
    pub fn new(base: ConfState) -> ConfLog {
        ConfLog {
            base,
            changes: Vec::new(),
            generation: 0,
        }
    }

    pub fn current(&self) -> &ConfState {
        self.changes.last().map(|(_, c)| c).unwrap_or(&self.base)
    }

    /// Index of the latest conf change entry in the log (0 if none since the snapshot).
    pub fn latest_index(&self) -> LogIndex {
        self.changes.last().map(|(i, _)| *i).unwrap_or(0)
    }

    /// The configuration in effect at `index` (for a snapshot taken there).
    pub fn at(&self, index: LogIndex) -> &ConfState {
        self.changes
            .iter()
            .rev()
            .find(|(i, _)| *i <= index)
            .map(|(_, c)| c)
            .unwrap_or(&self.base)
    }

    /// Record the configuration entries among newly appended `entries`. An entry whose change is
    /// invalid (only a faulty leader could have appended it) is a no-op on every node alike.
    pub fn on_append(&mut self, entries: &[Entry]) {
        for entry in entries {
            if let EntryPayload::ConfChange(change) = &entry.payload {
                let next = apply_conf_change(self.current(), change)
                    .unwrap_or_else(|_| self.current().clone());
                self.changes.push((entry.index, next));
                self.generation += 1;
            }
        }
    }

    /// Forget configurations from entries at `index` and above (the log was truncated there).
    pub fn truncate_from(&mut self, index: LogIndex) {
        let before = self.changes.len();
        self.changes.retain(|(i, _)| *i < index);
        if self.changes.len() != before {
            self.generation += 1;
        }
    }

    /// The log was compacted up to `index`: fold older configurations into the base.
    pub fn compact_to(&mut self, index: LogIndex) {
        self.base = self.at(index).clone();
        self.changes.retain(|(i, _)| *i > index);
    }

    /// The log was replaced by a snapshot carrying `conf`.
    pub fn restore(&mut self, conf: ConfState) {
        self.base = conf;
        self.changes.clear();
        self.generation += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voters(ids: &[NodeId]) -> ConfState {
        ConfState {
            voters: ids.to_vec(),
            ..ConfState::default()
        }
    }

    fn change(steps: &[ConfChangeStep]) -> ConfChange {
        ConfChange {
            changes: steps.to_vec(),
            ..ConfChange::default()
        }
    }

    #[test]
    fn single_voter_change_is_direct() {
        let next = apply_conf_change(&voters(&[1, 2, 3]), &change(&[ConfChangeStep::AddVoter(4)]));
        assert_eq!(next.unwrap(), voters(&[1, 2, 3, 4]));
    }

    #[test]
    fn several_voter_changes_enter_joint_and_leave() {
        use ConfChangeStep::*;
        let joint =
            apply_conf_change(&voters(&[1, 2, 3]), &change(&[AddVoter(4), AddLearner(3)])).unwrap();
        assert_eq!(joint.voters, vec![1, 2, 4]);
        assert_eq!(joint.voters_outgoing, vec![1, 2, 3]);
        assert_eq!(joint.learners_next, vec![3]);
        assert!(joint.learners.is_empty());
        assert!(apply_conf_change(&joint, &change(&[AddVoter(5)])).is_err());
        let left = apply_conf_change(&joint, &change(&[])).unwrap();
        assert_eq!(left.voters, vec![1, 2, 4]);
        assert!(left.voters_outgoing.is_empty());
        assert_eq!(left.learners, vec![3]);
    }

    #[test]
    fn promotion_of_a_learner() {
        let mut conf = voters(&[1, 2, 3]);
        conf.learners = vec![4];
        let next = apply_conf_change(&conf, &change(&[ConfChangeStep::AddVoter(4)])).unwrap();
        assert_eq!(next.voters, vec![1, 2, 3, 4]);
        assert!(next.learners.is_empty());
    }

    #[test]
    fn refuses_empty_voters_and_bad_leave() {
        let conf = voters(&[1]);
        assert!(apply_conf_change(&conf, &change(&[ConfChangeStep::RemoveNode(1)])).is_err());
        assert!(apply_conf_change(&conf, &change(&[])).is_err());
    }

    #[test]
    fn truncation_reverts_the_configuration() {
        let mut log = ConfLog::new(voters(&[1, 2, 3]));
        let entry = Entry {
            term: 1,
            index: 5,
            payload: EntryPayload::ConfChange(change(&[ConfChangeStep::AddVoter(4)])),
        };
        log.on_append(std::slice::from_ref(&entry));
        assert_eq!(log.current().voters, vec![1, 2, 3, 4]);
        log.truncate_from(5);
        assert_eq!(log.current().voters, vec![1, 2, 3]);
    }
}
