//! What the node publishes for readers: a consistent picture of the applied state at one moment.
//! The API answers Owner, Replicas, Ring, Members and Status from it without a trip through the
//! node loop.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use ringraft_proto::{Member, NodeId, Response, Status, StatusInfo};
use ringraft_ring::{Ring, RingDelta};

use super::journal::MembershipJournal;

use crate::state::{RegisterPlane, ReplicatedState};

/// Membership at one epoch, published to readers as a whole. The node brings an older view up
/// to date by the journal's changes (`catch_up`, O(change)) rather than building each one from
/// the whole state (O(members)).
#[derive(Debug, Clone)]
pub struct MembershipView {
    pub epoch: u64,
    pub members: BTreeMap<NodeId, Member>,
    pub ring: Ring,
    /// The whole ring's encoding, made when first asked for: O(members), and most epochs are
    /// never fetched whole once clients follow by deltas.
    ring_bytes: OnceLock<Vec<u8>>,
    pub replication_factor: u32,
    /// The changes up to `epoch`, for answering `RingSince`.
    journal: MembershipJournal,
}

/// A delta naming more members than this is answered with the whole ring: past it the delta
/// saves little and could outgrow a frame.
pub const DELTA_MEMBERS_MAX: usize = 1024;

impl MembershipView {
    /// Built from the whole state: O(members).
    pub fn of(state: &ReplicatedState, journal: MembershipJournal) -> MembershipView {
        MembershipView {
            epoch: state.epoch(),
            members: state.members().map(|m| (m.id, m.clone())).collect(),
            ring: Ring::new(state.ring().clone()),
            ring_bytes: OnceLock::new(),
            replication_factor: state.replication_factor(),
            journal,
        }
    }

    /// Brings this (older) view to `state`'s epoch with the changes `journal` holds since this
    /// view's epoch: O(the touched members' tokens × log). False when it cannot (the journal no
    /// longer reaches back, or the ring disagrees); the view is then to be built anew.
    pub fn catch_up(&mut self, state: &ReplicatedState, journal: &MembershipJournal) -> bool {
        let Some(changes) = journal.since(self.epoch) else {
            return false;
        };
        if changes.ring_epoch != self.ring.epoch() {
            return false;
        }
        let delta = RingDelta::for_members(
            changes.ring_epoch,
            state.ring(),
            changes.touched.iter().copied(),
        );
        if self.ring.apply_delta(&delta).is_err() {
            return false;
        }
        for id in changes.touched {
            match state.member(id) {
                Some(member) => self.members.insert(id, member.clone()),
                None => self.members.remove(&id),
            };
        }
        self.epoch = state.epoch();
        self.replication_factor = state.replication_factor();
        self.ring_bytes = OnceLock::new();
        self.journal = journal.clone();
        true
    }

    /// The ring in the `ringraft-ring` encoding.
    pub fn ring_bytes(&self) -> &[u8] {
        self.ring_bytes.get_or_init(|| self.ring.encode())
    }

    fn member_or_internal(&self, id: NodeId) -> Result<Member, Response> {
        self.members.get(&id).cloned().ok_or_else(|| {
            error(
                Status::Internal,
                format!("ring names member {id} that is not in the member list"),
            )
        })
    }

    pub fn owner(&self, key: &[u8]) -> Response {
        if self.members.is_empty() {
            return not_joined();
        }
        match self.ring.owner(key).map(|owner| owner.member) {
            Some(id) => match self.member_or_internal(id) {
                Ok(member) => Response::Owner {
                    epoch: self.epoch,
                    member,
                },
                Err(response) => response,
            },
            None => no_owner(),
        }
    }

    pub fn replicas(&self, key: &[u8], n: u32) -> Response {
        if self.members.is_empty() {
            return not_joined();
        }
        let mut members = Vec::new();
        for id in self.ring.replicas(key, n as usize).members {
            match self.member_or_internal(id) {
                Ok(member) => members.push(member),
                Err(response) => return response,
            }
        }
        if members.is_empty() {
            return no_owner();
        }
        Response::Replicas {
            epoch: self.epoch,
            members,
        }
    }

    pub fn members_response(&self) -> Response {
        Response::Members {
            epoch: self.epoch,
            members: self.members.values().cloned().collect(),
        }
    }

    pub fn ring_response(&self) -> Response {
        Response::Ring {
            epoch: self.epoch,
            ring: self.ring_bytes().to_vec(),
            members: self.members.values().cloned().collect(),
            replication_factor: self.replication_factor,
        }
    }

    /// What changed since the ring a client holds at `epoch`: a delta, or the whole ring when
    /// this view cannot say (the epoch is older than the journal, or newer than this view).
    pub fn ring_since(&self, epoch: u64) -> Response {
        if self.members.is_empty() {
            return self.ring_response();
        }
        let changes = (epoch <= self.epoch)
            .then(|| self.journal.since(epoch))
            .flatten()
            .filter(|changes| changes.touched.len() <= DELTA_MEMBERS_MAX);
        let Some(changes) = changes else {
            return self.ring_response();
        };
        let delta = RingDelta::for_members(
            changes.ring_epoch,
            self.ring.state(),
            changes.touched.iter().copied(),
        );
        let (mut members, mut removed) = (Vec::new(), Vec::new());
        for id in changes.touched {
            match self.members.get(&id) {
                Some(member) => members.push(member.clone()),
                None => removed.push(id),
            }
        }
        Response::RingDelta {
            from_epoch: epoch,
            epoch: self.epoch,
            delta: delta.encode(),
            members,
            removed,
            replication_factor: self.replication_factor,
        }
    }
}

/// Everything a reader may see, replaced as a whole.
#[derive(Debug, Clone)]
pub struct ClusterView {
    pub status: StatusInfo,
    pub membership: Arc<MembershipView>,
    /// The per-key registers' acceptor rings and handoff (replaced when it changes).
    pub registers: Arc<RegisterPlane>,
    /// Highest index applied locally; linearizable reads wait for it to reach their read index.
    pub applied_index: u64,
    pub shutting_down: bool,
    /// Set once this node knows it was removed from the cluster: the epoch that no longer lists
    /// it. Only Status is answered from then on.
    pub removed: Option<u64>,
}

impl ClusterView {
    /// The answer to everything but Status once this node was removed.
    pub fn removed_error(&self) -> Option<Response> {
        self.removed
            .map(|epoch| error(Status::Removed, super::removal::removed_message(epoch)))
    }
}

pub fn error(status: Status, message: impl Into<String>) -> Response {
    Response::Error {
        status,
        message: message.into(),
    }
}

fn not_joined() -> Response {
    error(
        Status::Unavailable,
        "this node has not received the cluster state yet (joining or recovering)",
    )
}

/// No active member owns keys: `NotFound`, as the header and the Python docs promise and as the
/// library's ring cache answers the same question.
fn no_owner() -> Response {
    error(
        Status::NotFound,
        "no active member owns keys (all are down or draining)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringraft_proto::{MemberRole, MemberState};
    use ringraft_ring::RingState;

    #[test]
    fn no_active_member_is_not_found_for_owner_and_replicas() {
        let down = Member {
            id: 1,
            name: "n1".into(),
            address: "127.0.0.1:7001".into(),
            zone: String::new(),
            weight: 1,
            role: MemberRole::Voter,
            state: MemberState::Down,
        };
        // A ring without tokens: its one member is down.
        let ring = RingState::new(ringraft_ring::DEFAULT_VNODES).unwrap();
        let view = MembershipView {
            epoch: 3,
            members: BTreeMap::from([(1, down)]),
            ring_bytes: OnceLock::new(),
            ring: Ring::new(ring),
            replication_factor: 3,
            journal: MembershipJournal::new(3, 0),
        };
        for response in [view.owner(b"k"), view.replicas(b"k", 2)] {
            match response {
                Response::Error { status, .. } => assert_eq!(status, Status::NotFound),
                other => panic!("expected not_found, got {other:?}"),
            }
        }
    }

    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use ringraft_raft::{ConfChange, ConfChangeStep, Entry, EntryPayload};

    use crate::state::{encode_command, encode_member, Applied, Retention, StateCommand};

    fn member(id: NodeId, weight: u32, zone: &str) -> Member {
        Member {
            zone: zone.into(),
            weight,
            role: MemberRole::Learner,
            ..crate::state::test_member(id)
        }
    }

    /// One random membership change (or a proposal, which changes none) as the next entry.
    fn random_change(rng: &mut ChaCha8Rng, state: &ReplicatedState, index: u64) -> Entry {
        let ids: Vec<NodeId> = state.members().map(|m| m.id).collect();
        let learners: Vec<NodeId> = state
            .members()
            .filter(|m| m.role == MemberRole::Learner)
            .map(|m| m.id)
            .collect();
        let any = ids[rng.gen_range(0..ids.len())];
        let conf = |step: ConfChangeStep, context: Vec<u8>| {
            EntryPayload::ConfChange(ConfChange {
                changes: vec![step],
                auto_leave: true,
                context,
            })
        };
        let payload = match rng.gen_range(0..10) {
            0..=2 => {
                let id = 100 + index;
                let zone = ["", "a", "b"][rng.gen_range(0..3)];
                let joiner = member(id, rng.gen_range(1..4), zone);
                conf(ConfChangeStep::AddLearner(id), encode_member(&joiner))
            }
            4 | 5 if !learners.is_empty() => {
                let id = learners[rng.gen_range(0..learners.len())];
                conf(ConfChangeStep::RemoveNode(id), Vec::new())
            }
            3 if rng.gen_bool(0.3) => {
                // The empty change that leaves a joint configuration: the epoch moves, no
                // member and no token does.
                EntryPayload::ConfChange(ConfChange {
                    changes: Vec::new(),
                    auto_leave: false,
                    context: Vec::new(),
                })
            }
            3 if !learners.is_empty() => {
                // Two members in one change: a replacement.
                let gone = learners[rng.gen_range(0..learners.len())];
                let id = 100 + index;
                EntryPayload::ConfChange(ConfChange {
                    changes: vec![
                        ConfChangeStep::RemoveNode(gone),
                        ConfChangeStep::AddLearner(id),
                    ],
                    auto_leave: true,
                    context: encode_member(&member(id, 1, "a")),
                })
            }
            6 if !learners.is_empty() => {
                // A role change: the membership's epoch moves, the ring's does not.
                let id = learners[rng.gen_range(0..learners.len())];
                conf(ConfChangeStep::AddVoter(id), Vec::new())
            }
            7 | 8 => {
                let states = [
                    MemberState::Active,
                    MemberState::Draining,
                    MemberState::Down,
                ];
                let command = StateCommand::SetMemberState {
                    id: any,
                    state: states[rng.gen_range(0..3)],
                };
                EntryPayload::Normal(encode_command(&command))
            }
            _ => EntryPayload::Normal(encode_command(&StateCommand::Proposal {
                origin: 1,
                request_id: index,
                data: b"x".to_vec(),
            })),
        };
        Entry {
            term: 1,
            index,
            payload,
        }
    }

    fn assert_same_view(incremental: &MembershipView, rebuilt: &MembershipView, at: u64) {
        assert_eq!(incremental.epoch, rebuilt.epoch, "epoch at index {at}");
        assert_eq!(
            incremental.members, rebuilt.members,
            "members at index {at}"
        );
        assert_eq!(
            incremental.replication_factor, rebuilt.replication_factor,
            "replication factor at index {at}"
        );
        assert!(
            incremental.ring.state() == rebuilt.ring.state(),
            "ring state at index {at}"
        );
        assert!(
            incremental.ring_bytes() == rebuilt.ring_bytes(),
            "ring encoding at index {at}"
        );
        // O(tokens) and slow: now and then is enough to catch a lookup view gone astray.
        if at.is_multiple_of(16) {
            if let Err(err) = incremental.ring.check_invariants() {
                panic!("lookup view at index {at}: {err}");
            }
        }
        for key in 0..64u32 {
            let key = key.to_be_bytes();
            assert_eq!(
                incremental.ring.replicas(&key, 3),
                rebuilt.ring.replicas(&key, 3),
                "replicas at index {at}"
            );
        }
    }

    /// `old` brought to the epoch of `answer` as a client does with a `RingSince` answer.
    fn follow(old: &MembershipView, answer: Response) -> (u64, Vec<u8>, Vec<Member>) {
        match answer {
            Response::RingDelta {
                from_epoch,
                epoch,
                delta,
                members,
                removed,
                ..
            } => {
                assert_eq!(from_epoch, old.epoch);
                let mut ring = old.ring.clone();
                let delta = RingDelta::decode(&delta).expect("the delta decodes");
                ring.apply_delta(&delta).expect("the delta applies");
                let mut all = old.members.clone();
                for id in removed {
                    all.remove(&id);
                }
                all.extend(members.into_iter().map(|m| (m.id, m)));
                (epoch, ring.encode(), all.into_values().collect())
            }
            Response::Ring {
                epoch,
                ring,
                members,
                ..
            } => (epoch, ring, members),
            other => panic!("expected a ring or a delta, got {other:?}"),
        }
    }

    /// The view kept current by `catch_up` (as the node does) is the view built from the whole
    /// state, after every change of a random sequence; and a client holding any earlier view
    /// reaches the current one by the `RingSince` answer: a delta while the journal reaches
    /// back, the whole ring past its horizon.
    #[test]
    fn incremental_views_and_deltas_equal_views_built_from_the_state() {
        const JOURNAL_CAPACITY: usize = 24;
        for seed in 0..4u64 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let initial = (1..=3).map(|id| member(id, 1, "")).collect();
            let mut state = ReplicatedState::bootstrap(initial, 3, Retention::default()).unwrap();
            let mut journal = MembershipJournal::with_capacity(
                state.epoch(),
                state.ring().epoch(),
                JOURNAL_CAPACITY,
            );
            let mut view = MembershipView::of(&state, journal.clone());
            let mut history = vec![view.clone()];
            let (mut deltas, mut wholes) = (0, 0);
            for index in state.applied_index() + 1..=200 {
                let entry = random_change(&mut rng, &state, index);
                let Applied::MembershipChanged { index, touched } = state.apply(&entry) else {
                    continue;
                };
                journal.record(index, state.ring().epoch(), &touched);
                assert!(view.catch_up(&state, &journal), "catch-up at index {index}");
                assert_same_view(&view, &MembershipView::of(&state, journal.clone()), index);
                let old = &history[rng.gen_range(0..history.len())];
                let answer = view.ring_since(old.epoch);
                let within_horizon = old.epoch >= journal.horizon();
                match (&answer, within_horizon) {
                    (Response::RingDelta { .. }, true) => deltas += 1,
                    (Response::Ring { .. }, false) => wholes += 1,
                    (other, _) => panic!(
                        "epoch {} (horizon {}) answered {other:?}",
                        old.epoch,
                        journal.horizon()
                    ),
                }
                let expected = (
                    view.epoch,
                    view.ring_bytes().to_vec(),
                    view.members.values().cloned().collect::<Vec<_>>(),
                );
                assert!(
                    follow(old, answer) == expected,
                    "a client at epoch {} following to {index}",
                    old.epoch
                );
                history.push(view.clone());
            }
            assert!(
                deltas > 20 && wholes > 5,
                "both answers exercised: {deltas} deltas, {wholes} whole rings"
            );
        }
    }
}
