//! What the node publishes for readers: a consistent picture of the applied state at one moment.
//! The API answers Owner, Replicas, Ring, Members and Status from it without a trip through the
//! node loop.

use std::collections::BTreeMap;
use std::sync::Arc;

use ringraft_proto::{Member, NodeId, Response, Status, StatusInfo};
use ringraft_ring::Ring;

use crate::state::{RegisterPlane, ReplicatedState};

/// Membership at one epoch: rebuilt only when the epoch moves.
#[derive(Debug)]
pub struct MembershipView {
    pub epoch: u64,
    pub members: BTreeMap<NodeId, Member>,
    pub ring: Ring,
    pub ring_bytes: Vec<u8>,
    pub replication_factor: u32,
}

impl MembershipView {
    pub fn of(state: &ReplicatedState) -> MembershipView {
        MembershipView {
            epoch: state.epoch(),
            members: state.members().map(|m| (m.id, m.clone())).collect(),
            ring: Ring::new(state.ring().clone()),
            ring_bytes: state.ring().encode(),
            replication_factor: state.replication_factor(),
        }
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
            ring: self.ring_bytes.clone(),
            members: self.members.values().cloned().collect(),
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
            ring_bytes: ring.encode(),
            ring: Ring::new(ring),
            replication_factor: 3,
        };
        for response in [view.owner(b"k"), view.replicas(b"k", 2)] {
            match response {
                Response::Error { status, .. } => assert_eq!(status, Status::NotFound),
                other => panic!("expected not_found, got {other:?}"),
            }
        }
    }
}
