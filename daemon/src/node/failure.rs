//! The leader's failure detector: a member not heard from within `down_after` is proposed `down`
//! (it then owns no keys), and `active` again once it is heard from. Only the leader judges, and a
//! new leader first gives everyone a full period of grace, so a leader change never marks the
//! whole cluster down.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ringraft_proto::{MemberState, NodeId};

use crate::state::ReplicatedState;

pub struct FailureDetector {
    own_id: NodeId,
    /// Zero disables the detector.
    down_after: Duration,
    last_heard: BTreeMap<NodeId, Instant>,
    /// Verdicts proposed but not yet applied, so each is proposed once per period.
    proposed: BTreeMap<NodeId, (MemberState, Instant)>,
}

impl FailureDetector {
    pub fn new(own_id: NodeId, down_after: Duration) -> FailureDetector {
        FailureDetector {
            own_id,
            down_after,
            last_heard: BTreeMap::new(),
            proposed: BTreeMap::new(),
        }
    }

    pub fn heard_from(&mut self, id: NodeId, now: Instant) {
        self.last_heard.insert(id, now);
    }

    pub fn became_leader(&mut self, now: Instant, state: &ReplicatedState) {
        self.proposed.clear();
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
    use ringraft_proto::{Member, MemberRole};
    use ringraft_raft::{Entry, EntryPayload};

    fn member(id: u64) -> Member {
        Member {
            id,
            name: format!("n{id}"),
            address: format!("127.0.0.1:{}", 7000 + id),
            zone: String::new(),
            weight: 1,
            role: MemberRole::Voter,
            state: MemberState::Active,
        }
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
    fn disabled_detector_never_judges() {
        let state = three_nodes();
        let start = Instant::now();
        let mut detector = FailureDetector::new(1, Duration::ZERO);
        detector.became_leader(start, &state);
        assert!(detector
            .verdicts(start + Duration::from_secs(3600), &state)
            .is_empty());
    }

    use crate::state::StateCommand;
}
