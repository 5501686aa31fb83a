//! Admin requests: membership changes, leadership transfer, snapshots. Membership changes are made
//! by the leader; a follower forwards them to it over the peer transport and relays the answer.

use std::net::SocketAddr;
use std::time::Instant;

use ringraft_proto::{Member, MemberRole, MemberState, NodeId, Request, Response, Status};
use ringraft_raft::{ConfChange, ConfChangeStep, Role};
use tokio::sync::oneshot;
use tracing::{info, warn};

use super::driver::{propose_error_response, Driver};
use super::pending::{AdminDone as Done, PendingAdmin};
use super::view::error;
use crate::state::encode_member;
use crate::transport::{PeerRequest, PeerResponse};

/// Limits that keep member records representable in the C library's fixed-size `ringraft_node`.
pub const MEMBER_NAME_BYTES_MAX: usize = 63;
pub const MEMBER_ADDRESS_BYTES_MAX: usize = 63;
pub const MEMBER_ZONE_BYTES_MAX: usize = 63;

impl Driver {
    /// `may_forward` is false for requests that a peer already forwarded here, so a request never
    /// bounces between two nodes that disagree about the leader.
    pub(super) fn handle_admin(
        &mut self,
        request: Request,
        deadline: Instant,
        reply: oneshot::Sender<Response>,
        may_forward: bool,
    ) {
        if let Request::Snapshot = request {
            let response = match self.take_snapshot() {
                Ok(index) => {
                    // Readers asking right after the answer must see the new snapshot index.
                    self.publish();
                    Response::Done { index }
                }
                Err(err) => {
                    self.report_fatal(&err);
                    error(Status::Internal, err.to_string())
                }
            };
            let _ = reply.send(response);
            return;
        }
        if self.raw.role() != Role::Leader {
            self.forward_or_refuse(request, reply, may_forward);
            return;
        }
        match self.admin_on_leader(&request) {
            Ok((description, done)) => self.pending.admin.push(PendingAdmin {
                deadline,
                reply,
                done,
                description,
            }),
            Err(response) => {
                let _ = reply.send(response);
            }
        }
        self.pending.on_applied(&self.state, self.raw.leader());
    }

    fn admin_on_leader(&mut self, request: &Request) -> Result<(String, Done), Response> {
        match request {
            Request::Join {
                id,
                name,
                address,
                zone,
                weight,
            } => {
                let member = validate_join(*id, name, address, zone, *weight)?;
                if let Some(existing) = self.state.member(*id) {
                    if existing.address == member.address {
                        // Asking again (a retry after a lost answer) is not an error.
                        return Ok((format!("join of member {id}"), Box::new(|_, _| true)));
                    }
                    return Err(error(
                        Status::Conflict,
                        format!("member {id} already exists at {}", existing.address),
                    ));
                }
                self.propose_change(ConfChangeStep::AddLearner(*id), encode_member(&member))?;
                info!(id, address = %member.address, "admitting a new member as a learner");
                let id = *id;
                Ok((
                    format!("join of member {id}"),
                    Box::new(move |state, _| state.member(id).is_some()),
                ))
            }
            Request::Remove { id } => {
                self.known_member(*id)?;
                self.propose_change(ConfChangeStep::RemoveNode(*id), Vec::new())?;
                let id = *id;
                Ok((
                    format!("removal of member {id}"),
                    Box::new(move |state, _| state.member(id).is_none()),
                ))
            }
            Request::Promote { id } => {
                let member = self.known_member(*id)?;
                if member.role == MemberRole::Voter {
                    return Ok((format!("promotion of {id}"), Box::new(|_, _| true)));
                }
                self.propose_change(ConfChangeStep::AddVoter(*id), Vec::new())?;
                let id = *id;
                Ok((
                    format!("promotion of member {id}"),
                    Box::new(move |state, _| {
                        state
                            .member(id)
                            .is_some_and(|m| m.role == MemberRole::Voter)
                    }),
                ))
            }
            Request::TransferLeader { id } => {
                let member = self.known_member(*id)?;
                if member.role != MemberRole::Voter {
                    return Err(error(
                        Status::InvalidArgument,
                        format!("member {id} is a learner; only voters can lead"),
                    ));
                }
                if *id != self.id {
                    self.raw
                        .transfer_leader(*id)
                        .map_err(|err| propose_error_response(&err))?;
                }
                let id = *id;
                Ok((
                    format!("leadership transfer to {id}"),
                    Box::new(move |_, leader| leader == Some(id)),
                ))
            }
            other => Err(error(
                Status::InvalidArgument,
                format!("{other:?} is not an admin request"),
            )),
        }
    }

    fn known_member(&self, id: NodeId) -> Result<Member, Response> {
        self.state
            .member(id)
            .cloned()
            .ok_or_else(|| error(Status::NotFound, format!("no member with id {id}")))
    }

    fn propose_change(&mut self, step: ConfChangeStep, context: Vec<u8>) -> Result<(), Response> {
        self.raw
            .propose_conf_change(ConfChange {
                changes: vec![step],
                auto_leave: true,
                context,
            })
            .map_err(|err| propose_error_response(&err))
    }

    fn leader_address(&self) -> Option<SocketAddr> {
        let leader = self.raw.leader().filter(|id| *id != self.id)?;
        self.state.member(leader)?.address.parse().ok()
    }

    fn forward_or_refuse(
        &mut self,
        request: Request,
        reply: oneshot::Sender<Response>,
        may_forward: bool,
    ) {
        let Some(leader) = self.leader_address().filter(|_| may_forward) else {
            let status = if self.raw.leader().is_some() {
                Status::NotLeader
            } else {
                Status::NoLeader
            };
            let _ = reply.send(error(status, "no leader to carry out the change; retry"));
            return;
        };
        let transport = self.transport.clone();
        let events = self.events_tx.clone();
        let deadline = Instant::now() + super::handle::DEFAULT_WAIT;
        let encoded = match rkyv::to_bytes::<rkyv::rancor::Error>(&request) {
            Ok(bytes) => bytes.into_vec(),
            Err(err) => {
                let _ = reply.send(error(Status::Internal, err.to_string()));
                return;
            }
        };
        self.runtime.spawn(async move {
            let response = match transport
                .call(leader, PeerRequest::Admin { request: encoded })
                .await
            {
                Ok(PeerResponse::Admin { response }) => decode_response(&response),
                Ok(other) => error(Status::Internal, format!("unexpected answer {other:?}")),
                Err(err) => error(
                    Status::Unavailable,
                    format!("cannot reach the leader at {leader}: {err}"),
                ),
            };
            match response {
                // Answer once this node shows the change too, so the client's next read here
                // sees what it just did.
                Response::Done { index } if index > 0 => {
                    let wait = super::Command::AwaitApplied {
                        index,
                        deadline,
                        reply,
                    };
                    let refused = match events.try_send(super::Event::Command(wait)) {
                        Ok(()) => None,
                        Err(std::sync::mpsc::TrySendError::Full(event))
                        | Err(std::sync::mpsc::TrySendError::Disconnected(event)) => Some(event),
                    };
                    // The loop cannot take it: answer now rather than never.
                    if let Some(super::Event::Command(super::Command::AwaitApplied {
                        reply, ..
                    })) = refused
                    {
                        let _ = reply.send(Response::Done { index });
                    }
                }
                other => {
                    let _ = reply.send(other);
                }
            }
        });
    }

    /// A peer asks this node to carry out an admin request (it believes this node leads), or a
    /// new node asks to join.
    pub(super) fn handle_peer_call(
        &mut self,
        from: NodeId,
        request: PeerRequest,
        reply: oneshot::Sender<PeerResponse>,
    ) {
        let deadline = Instant::now() + super::handle::DEFAULT_WAIT;
        let (admin_reply, answer) = oneshot::channel();
        let leader_address = self.leader_address().map(|addr| addr.to_string());
        match request {
            PeerRequest::Join {
                id,
                name,
                address,
                zone,
                weight,
            } => {
                if from != id {
                    let _ = reply.send(PeerResponse::JoinResult {
                        status: Status::PermissionDenied.code(),
                        message: format!("node {from} may not ask to admit node {id}"),
                        leader_address,
                    });
                    return;
                }
                let join = Request::Join {
                    id,
                    name,
                    address,
                    zone: zone.unwrap_or_default(),
                    weight,
                };
                self.handle_admin(join, deadline, admin_reply, false);
                self.runtime.spawn(async move {
                    let response = answer.await.unwrap_or_else(|_| {
                        error(Status::ShuttingDown, "the node stopped before answering")
                    });
                    let (status, message) = match response {
                        Response::Error { status, message } => (status, message),
                        _ => (Status::Ok, String::new()),
                    };
                    let _ = reply.send(PeerResponse::JoinResult {
                        status: status.code(),
                        message,
                        leader_address,
                    });
                });
            }
            PeerRequest::Admin { request } => {
                if self.state.member(from).is_none() {
                    let _ = admin_reply.send(error(
                        Status::PermissionDenied,
                        format!("node {from} is not a member"),
                    ));
                } else {
                    match decode_request(&request) {
                        Ok(request) if request.is_admin() => {
                            self.handle_admin(request, deadline, admin_reply, false)
                        }
                        Ok(other) => {
                            warn!(from, ?other, "a peer forwarded a request that is not admin");
                            let _ = admin_reply
                                .send(error(Status::InvalidArgument, "not an admin request"));
                        }
                        Err(response) => {
                            let _ = admin_reply.send(response);
                        }
                    }
                }
                self.runtime.spawn(async move {
                    let response = answer.await.unwrap_or_else(|_| {
                        error(Status::ShuttingDown, "the node stopped before answering")
                    });
                    let encoded = rkyv::to_bytes::<rkyv::rancor::Error>(&response)
                        .map(|bytes| bytes.into_vec())
                        .unwrap_or_default();
                    let _ = reply.send(PeerResponse::Admin { response: encoded });
                });
            }
        }
    }
}

fn validate_join(
    id: NodeId,
    name: &str,
    address: &str,
    zone: &str,
    weight: u32,
) -> Result<Member, Response> {
    let invalid = |message: String| Err(error(Status::InvalidArgument, message));
    if id == 0 {
        return invalid("member id must be non-zero".into());
    }
    if address.parse::<SocketAddr>().is_err() || address.len() > MEMBER_ADDRESS_BYTES_MAX {
        return invalid(format!(
            "address {address:?} is not an ip:port of at most {MEMBER_ADDRESS_BYTES_MAX} bytes"
        ));
    }
    if name.len() > MEMBER_NAME_BYTES_MAX || zone.len() > MEMBER_ZONE_BYTES_MAX {
        return invalid(format!(
            "name and zone are limited to {MEMBER_NAME_BYTES_MAX} bytes"
        ));
    }
    if weight == 0 || weight > 1000 {
        return invalid(format!("weight {weight} is outside 1..=1000"));
    }
    Ok(Member {
        id,
        name: if name.is_empty() {
            format!("node-{id}")
        } else {
            name.to_string()
        },
        address: address.to_string(),
        zone: zone.to_string(),
        weight,
        role: MemberRole::Learner,
        state: MemberState::Active,
    })
}

fn decode_request(bytes: &[u8]) -> Result<Request, Response> {
    crate::state::command::decode_checked::<Request>(bytes)
        .map_err(|err| error(Status::Malformed, format!("forwarded request: {err}")))
}

fn decode_response(bytes: &[u8]) -> Response {
    crate::state::command::decode_checked::<Response>(bytes)
        .unwrap_or_else(|err| error(Status::Malformed, format!("the leader's answer: {err}")))
}
