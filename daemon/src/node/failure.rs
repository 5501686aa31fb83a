//! The leader's failure detector: a member not heard from within `down_after` is proposed `down`
//! (it then owns no keys), and `active` again once it is heard from. Only the leader judges, and a
//! new leader first gives everyone a full period of grace, so a leader change never marks the
//! whole cluster down.
//!
//! The same record of contact answers `promote`: a learner becomes a voter only if the leader has
//! really heard from it within `down_after` (the grace above does not count as contact).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ringraft_proto::{MemberState, NodeId};

use crate::state::ReplicatedState;

pub struct FailureDetector {
    own_id: NodeId,
    /// Zero disables the detector.
    down_after: Duration,
    last_heard: BTreeMap<NodeId, Instant>,
    /// When a message from each member last arrived; unlike `last_heard`, never granted as grace.
    last_contact: BTreeMap<NodeId, Instant>,
    /// When this node last became leader.
    leader_since: Option<Instant>,
    /// Verdicts proposed but not yet applied, so each is proposed once per period.
    proposed: BTreeMap<NodeId, (MemberState, Instant)>,
}

/// How recently a member was heard from, as the leader judges a promotion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contact {
    /// Heard from this long ago, within the window.
    Recent(Duration),
    /// Heard from this long ago, longer than the window.
    Silent(Duration),
    /// No message from it has reached this node since it started.
    Never,
}

impl FailureDetector {
    pub fn new(own_id: NodeId, down_after: Duration) -> FailureDetector {
        FailureDetector {
            own_id,
            down_after,
            last_heard: BTreeMap::new(),
            last_contact: BTreeMap::new(),
            leader_since: None,
            proposed: BTreeMap::new(),
        }
    }

    /// The membership change applied at `index` named `touched`: a member it removed is
    /// forgotten, and one it added starts a new life, heard from now (the grace a joiner gets)
    /// and never contacted yet, whatever an earlier member of that id left behind. O(change),
    /// so the maps stay bounded by the member list without a sweep per tick.
    pub fn membership_changed(
        &mut self,
        index: u64,
        touched: &[NodeId],
        state: &ReplicatedState,
        now: Instant,
    ) {
        for &id in touched {
            let added_now = state.member_since(id) == Some(index);
            if state.member(id).is_none() || added_now {
                self.last_heard.remove(&id);
                self.last_contact.remove(&id);
                self.proposed.remove(&id);
            }
            if added_now {
                self.last_heard.insert(id, now);
            }
        }
    }

    /// The whole state was replaced by a snapshot: which ids were removed and added again in
    /// between is unknown, so nothing heard before counts (a new leader grants everyone its
    /// grace; a promotion waits for a message from the learner's current life).
    pub fn state_replaced(&mut self) {
        self.last_heard.clear();
        self.last_contact.clear();
        self.proposed.clear();
    }

    /// A message from member `id` arrived. The caller passes members only: a removed node
    /// that still talks must not come back into the maps.
    pub fn heard_from(&mut self, id: NodeId, now: Instant) {
        self.last_heard.insert(id, now);
        self.last_contact.insert(id, now);
    }

    /// The window within which a member must have been heard from to count as reachable: the
    /// detector's `down_after`, or `fallback` when the detector is disabled.
    pub fn window(&self, fallback: Duration) -> Duration {
        if self.down_after.is_zero() {
            fallback
        } else {
            self.down_after
        }
    }

    pub fn contact(&self, id: NodeId, now: Instant, window: Duration) -> Contact {
        match self.last_contact.get(&id) {
            None => Contact::Never,
            Some(at) => {
                let silent = now.saturating_duration_since(*at);
                if silent <= window {
                    Contact::Recent(silent)
                } else {
                    Contact::Silent(silent)
                }
            }
        }
    }

    /// How long this node has led (None if it never became leader).
    pub fn leading_for(&self, now: Instant) -> Option<Duration> {
        self.leader_since
            .map(|since| now.saturating_duration_since(since))
    }

    pub fn became_leader(&mut self, now: Instant, state: &ReplicatedState) {
        self.leader_since = Some(now);
        self.proposed.clear();
        // Once per leadership, not per tick: what a follower heard of members removed by a
        // snapshot it installed.
        self.last_heard.retain(|id, _| state.member(*id).is_some());
        self.last_contact
            .retain(|id, _| state.member(*id).is_some());
        for member in state.members() {
            self.last_heard.insert(member.id, now);
        }
    }

    /// State changes the leader should propose now.
    pub fn verdicts(
        &mut self,
        now: Instant,
        state: &ReplicatedState,
    ) -> Vec<(NodeId, MemberState)> {
        if self.down_after.is_zero() {
            return Vec::new();
        }
        let mut verdicts = Vec::new();
        for member in state.members().filter(|m| m.id != self.own_id) {
            let heard = *self.last_heard.entry(member.id).or_insert(now);
            let silent = now.saturating_duration_since(heard);
            let wanted = match member.state {
                MemberState::Active if silent >= self.down_after => MemberState::Down,
                // Back within a heartbeat or two: it is alive again.
                MemberState::Down if silent < self.down_after / 4 => MemberState::Active,
                _ => {
                    self.proposed.remove(&member.id);
                    continue;
                }
            };
            let already = self.proposed.get(&member.id).is_some_and(|(state, at)| {
                *state == wanted && now.duration_since(*at) < self.down_after
            });
            if !already {
                self.proposed.insert(member.id, (wanted, now));
                verdicts.push((member.id, wanted));
            }
        }
        verdicts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringraft_proto::Member;
    use ringraft_raft::{Entry, EntryPayload};

    fn member(id: u64) -> Member {
        crate::state::test_member(id)
    }

    fn three_nodes() -> ReplicatedState {
        ReplicatedState::bootstrap(
            vec![member(1), member(2), member(3)],
            3,
            crate::state::Retention::default(),
        )
        .unwrap()
    }

    #[test]
    fn silent_member_is_proposed_down_once_then_active_when_heard() {
        let mut state = three_nodes();
        let start = Instant::now();
        let mut detector = FailureDetector::new(1, Duration::from_secs(10));
        detector.became_leader(start, &state);
        assert!(detector
            .verdicts(start + Duration::from_secs(5), &state)
            .is_empty());
        detector.heard_from(3, start + Duration::from_secs(9));
        let later = start + Duration::from_secs(11);
        assert_eq!(
            detector.verdicts(later, &state),
            vec![(2, MemberState::Down)]
        );
        assert!(
            detector.verdicts(later, &state).is_empty(),
            "proposed once per period"
        );

        let command = crate::state::encode_command(&StateCommand::SetMemberState {
            id: 2,
            state: MemberState::Down,
        });
        let index = state.applied_index() + 1;
        state.apply(&Entry {
            term: 2,
            index,
            payload: EntryPayload::Normal(command),
        });
        assert_eq!(state.member(2).unwrap().state, MemberState::Down);
        detector.heard_from(2, later + Duration::from_secs(1));
        detector.heard_from(3, later + Duration::from_secs(1));
        assert_eq!(
            detector.verdicts(later + Duration::from_secs(2), &state),
            vec![(2, MemberState::Active)]
        );
    }

    #[test]
    fn contact_counts_messages_not_the_grace_of_a_new_leader() {
        let state = three_nodes();
        let start = Instant::now();
        let window = Duration::from_secs(10);
        let mut detector = FailureDetector::new(1, window);
        detector.became_leader(start, &state);
        assert_eq!(detector.contact(2, start, window), Contact::Never);
        detector.heard_from(2, start);
        let later = start + Duration::from_secs(3);
        assert_eq!(
            detector.contact(2, later, window),
            Contact::Recent(Duration::from_secs(3))
        );
        let much_later = start + Duration::from_secs(12);
        assert_eq!(
            detector.contact(2, much_later, window),
            Contact::Silent(Duration::from_secs(12))
        );
        assert_eq!(detector.leading_for(later), Some(Duration::from_secs(3)));
        assert_eq!(
            FailureDetector::new(1, Duration::ZERO).window(Duration::from_secs(1)),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn disabled_detector_never_judges() {
        let state = three_nodes();
        let start = Instant::now();
        let mut detector = FailureDetector::new(1, Duration::ZERO);
        detector.became_leader(start, &state);
        assert!(detector
            .verdicts(start + Duration::from_secs(3600), &state)
            .is_empty());
    }

    fn apply_conf(state: &mut ReplicatedState, step: ConfChangeStep) -> (u64, Vec<NodeId>) {
        let index = state.applied_index() + 1;
        let context = match step {
            ConfChangeStep::AddLearner(id) => crate::state::encode_member(&member(id)),
            _ => Vec::new(),
        };
        let applied = state.apply(&Entry {
            term: 2,
            index,
            payload: EntryPayload::ConfChange(ConfChange {
                changes: vec![step],
                auto_leave: true,
                context,
            }),
        });
        match applied {
            crate::state::Applied::MembershipChanged { index, touched } => (index, touched),
            other => panic!("expected a membership change, got {other:?}"),
        }
    }

    /// A member removed and added again under the same id (between two ticks) starts afresh:
    /// not judged down for its earlier silence, not counted as contacted, and a removed member
    /// leaves nothing behind.
    #[test]
    fn a_removed_member_is_forgotten_and_a_readded_one_starts_afresh() {
        let mut state = three_nodes();
        let start = Instant::now();
        let down_after = Duration::from_secs(10);
        let mut detector = FailureDetector::new(1, down_after);
        detector.became_leader(start, &state);
        let (index, touched) = apply_conf(&mut state, ConfChangeStep::AddLearner(4));
        detector.membership_changed(index, &touched, &state, start);
        detector.heard_from(4, start);
        detector.heard_from(2, start + Duration::from_secs(15));
        detector.heard_from(3, start + Duration::from_secs(15));

        let later = start + Duration::from_secs(15);
        let (index, touched) = apply_conf(&mut state, ConfChangeStep::RemoveNode(4));
        detector.membership_changed(index, &touched, &state, later);
        assert_eq!(detector.contact(4, later, down_after), Contact::Never);
        let (index, touched) = apply_conf(&mut state, ConfChangeStep::AddLearner(4));
        detector.membership_changed(index, &touched, &state, later);
        assert!(
            detector.verdicts(later, &state).is_empty(),
            "the re-added member is not down for the old one's silence"
        );
        assert_eq!(detector.contact(4, later, down_after), Contact::Never);
        assert!(detector.last_heard.len() <= state.members().count());
    }

    /// After a snapshot replaced the state, no earlier contact counts: member 4 may have been
    /// removed and added again in the entries the snapshot covers.
    #[test]
    fn a_snapshot_install_forgets_every_contact() {
        let state = three_nodes();
        let start = Instant::now();
        let window = Duration::from_secs(10);
        let mut detector = FailureDetector::new(1, window);
        detector.heard_from(2, start);
        assert_eq!(
            detector.contact(2, start, window),
            Contact::Recent(Duration::ZERO)
        );
        detector.state_replaced();
        assert_eq!(detector.contact(2, start, window), Contact::Never);
        detector.became_leader(start, &state);
        assert!(detector.verdicts(start, &state).is_empty());
    }

    use crate::state::StateCommand;
    use ringraft_raft::{ConfChange, ConfChangeStep};
}
