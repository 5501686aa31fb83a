//! Admin requests: membership changes, leadership transfer, snapshots. Membership changes are made
//! by the leader; a follower forwards them to it over the peer transport and relays the answer.
//!
//! The rules (DESIGN.md, "Membership changes"):
//! - `join` refuses an id, name or address that another member uses; the identical join again (a
//!   retry) is answered with the index of the original change.
//! - `promote` accepts only a learner the leader has heard from within the failure detector's
//!   window and whose log is within `promote_lag_entries_max` of the leader's; promoting a voter
//!   is a conflict.
//! - `join`, `remove` and `promote` answer with the index of the change's own entry, which is the
//!   ring's new epoch, also when a follower forwarded them.
//! - A change that cannot start yet (one still in flight, a new leader that has not committed an
//!   entry of its term, no leader known) waits and is tried again until the request's deadline.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ringraft_proto::limits::{
    MEMBER_ADDRESS_BYTES_MAX, MEMBER_NAME_BYTES_MAX, MEMBER_ZONE_BYTES_MAX,
};
use ringraft_proto::{Member, MemberRole, MemberState, NodeId, Request, Response, Status};
use ringraft_raft::{ConfChange, ConfChangeStep, ProposeError, Role};
use tokio::sync::oneshot;
use tracing::{debug, info, warn, Instrument};

use super::driver::{propose_error_response, Driver};
use super::failure::Contact;
use super::handle::DEFAULT_WAIT;
use super::pending::{AdminRetry, AdminWait, PendingAdmin, ADMIN_RETRY_BACKOFF_MAX};
use super::view::error;
use crate::state::encode_member;
use crate::transport::{PeerRequest, PeerResponse, TransportError};

/// Every member record fits the C library's fixed-size `ringraft_node` (proto's limits size it),
/// and the ring takes every zone a member may have.
const _: () = assert!(ringraft_ring::ZONE_BYTES_MAX == MEMBER_ZONE_BYTES_MAX);

/// How long the leader works on a request a peer forwarded: shorter than the forwarder's call
/// timeout (`DEFAULT_WAIT`, counted from before the connection), so the answer, even a timeout,
/// reaches the forwarder.
const FORWARDED_WAIT: Duration = Duration::from_secs(DEFAULT_WAIT.as_secs() - 2);

/// Ticks a follower waits before forwarding again a request that surely did not take effect.
const FORWARD_RETRY_TICKS: u64 = 4;

/// What the leader made of a membership request it can act on.
enum Admitted {
    /// Proposed (or under way): answered once `wait` is over.
    Waiting {
        description: String,
        wait: AdminWait,
    },
    /// Nothing to do; this is the answer (a retried join that already took effect).
    Answered(Response),
}

/// Why the leader does not act on a request now.
enum Refusal {
    /// The answer, now.
    Answer(Response),
    /// Try again shortly, until the deadline; this is why, for the answer if the deadline passes.
    Later(String),
}

impl From<Response> for Refusal {
    fn from(response: Response) -> Refusal {
        Refusal::Answer(response)
    }
}

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
        self.try_admin(request, deadline, reply, may_forward, 0);
    }

    /// Tries again the admin requests whose retry time has come.
    pub(super) fn retry_due_admin(&mut self, now: Instant) {
        for retry in self.pending.due_admin_retries(now) {
            self.try_admin(
                retry.request,
                retry.deadline,
                retry.reply,
                retry.may_forward,
                retry.attempts,
            );
        }
    }

    /// Queues a request to be tried again after a backoff (one tick, doubling), or answers with
    /// `reason` if the deadline has already passed.
    pub(super) fn retry_admin_later(&mut self, retry: AdminRetry) {
        let now = Instant::now();
        if now >= retry.deadline {
            let message = format!("{} (retried until the deadline)", retry.reason);
            let _ = retry.reply.send(error(Status::Timeout, message));
            return;
        }
        let tick = Duration::from_millis(self.config.raft.tick_ms);
        let backoff = tick
            .saturating_mul(1 << retry.attempts.min(16))
            .min(ADMIN_RETRY_BACKOFF_MAX);
        debug!(reason = %retry.reason, attempts = retry.attempts, "admin request waits to retry");
        self.pending.admin_retries.push(AdminRetry {
            not_before: now + backoff,
            attempts: retry.attempts.saturating_add(1),
            ..retry
        });
    }

    fn try_admin(
        &mut self,
        request: Request,
        deadline: Instant,
        reply: oneshot::Sender<Response>,
        may_forward: bool,
        attempts: u32,
    ) {
        if let Request::Snapshot = request {
            let response = match self.take_snapshot() {
                Ok(index) => {
                    // Readers asking right after the answer must see the new snapshot index.
                    self.publish();
                    Response::Done { index }
                }
                Err(err) => {
                    let response = error(Status::Internal, format!("{err}; the node stops"));
                    self.report_fatal(err);
                    response
                }
            };
            let _ = reply.send(response);
            return;
        }
        if self.raw.role() != Role::Leader {
            self.forward_or_refuse(request, deadline, reply, may_forward, attempts);
            return;
        }
        match self.admin_on_leader(&request) {
            Ok(Admitted::Waiting { description, wait }) => self.pending.admin.push(PendingAdmin {
                deadline,
                reply,
                wait,
                description,
                retry: Some((request, may_forward)),
            }),
            Ok(Admitted::Answered(response)) => {
                let _ = reply.send(response);
            }
            Err(Refusal::Answer(response)) => {
                let _ = reply.send(response);
            }
            Err(Refusal::Later(reason)) => self.retry_admin_later(AdminRetry {
                request,
                deadline,
                reply,
                may_forward,
                not_before: Instant::now(),
                attempts,
                reason,
            }),
        }
        self.pending.on_applied(&self.state, self.raw.leader());
    }

    fn admin_on_leader(&mut self, request: &Request) -> Result<Admitted, Refusal> {
        let description = describe(request);
        match request {
            Request::Join {
                id,
                name,
                address,
                zone,
                weight,
            } => {
                let member = validate_join(*id, name, address, zone, *weight)?;
                self.settled(&description)?;
                if let Some(index) = self.join_conflict(&member)? {
                    // The identical join again (a retry after a lost answer): not an error.
                    info!(
                        id,
                        index, "join of an existing identical member: answering its index"
                    );
                    return Ok(Admitted::Answered(Response::Done { index }));
                }
                let context = encode_member(&member);
                let wait =
                    self.propose_change(&description, ConfChangeStep::AddLearner(*id), context)?;
                info!(id, address = %member.address, name = %member.name, ?wait, "admitting a new member as a learner");
                Ok(Admitted::Waiting { description, wait })
            }
            Request::Remove { id } => {
                let member = self.known_member(*id)?;
                self.settled(&description)?;
                let down = member.state == MemberState::Down;
                if let Some(why) =
                    self.state
                        .registers()
                        .removal_hazard(*id, self.state.ring(), down)
                {
                    return Err(Refusal::Later(format!("{description} waits: {why}")));
                }
                let wait =
                    self.propose_change(&description, ConfChangeStep::RemoveNode(*id), Vec::new())?;
                info!(id, ?wait, "removing a member");
                Ok(Admitted::Waiting { description, wait })
            }
            Request::Promote { id } => {
                let member = self.known_member(*id)?;
                if member.role == MemberRole::Voter {
                    return Err(Refusal::Answer(error(
                        Status::Conflict,
                        format!("member {id} is already a voter"),
                    )));
                }
                // A promotion of this learner may be in flight: the answer then is the conflict
                // above, once it is applied.
                self.settled(&description)?;
                self.check_promotable(*id)?;
                let wait =
                    self.propose_change(&description, ConfChangeStep::AddVoter(*id), Vec::new())?;
                info!(id, ?wait, "promoting a learner to voter");
                Ok(Admitted::Waiting { description, wait })
            }
            Request::TransferLeader { id } => {
                let member = self.known_member(*id)?;
                if member.role != MemberRole::Voter {
                    return Err(Refusal::Answer(error(
                        Status::InvalidArgument,
                        format!("member {id} is a learner; only voters can lead"),
                    )));
                }
                if *id != self.id {
                    self.raw
                        .transfer_leader(*id)
                        .map_err(|err| propose_error_response(&err))?;
                }
                let id = *id;
                Ok(Admitted::Waiting {
                    description,
                    wait: AdminWait::Until(Box::new(move |_, leader| leader == Some(id))),
                })
            }
            other => Err(Refusal::Answer(error(
                Status::InvalidArgument,
                format!("{other:?} is not an admin request"),
            ))),
        }
    }

    fn known_member(&self, id: NodeId) -> Result<Member, Response> {
        self.state
            .member(id)
            .cloned()
            .ok_or_else(|| error(Status::NotFound, format!("no member with id {id}")))
    }

    /// A change is judged against the applied member list, so that list must be the whole truth:
    /// no change appended or committed but not yet applied, no joint configuration.
    fn settled(&self, description: &str) -> Result<(), Refusal> {
        let conf = self.raw.conf_state();
        let ids = |role: MemberRole| -> Vec<NodeId> {
            self.state
                .members()
                .filter(|m| m.role == role)
                .map(|m| m.id)
                .collect()
        };
        let sorted = |ids: &[NodeId]| {
            let mut ids = ids.to_vec();
            ids.sort_unstable();
            ids
        };
        let settled = conf.voters_outgoing.is_empty()
            && conf.learners_next.is_empty()
            && sorted(&conf.voters) == ids(MemberRole::Voter)
            && sorted(&conf.learners) == ids(MemberRole::Learner);
        if settled {
            Ok(())
        } else {
            Err(Refusal::Later(format!(
                "{description} could not start: a previous membership change is still in flight"
            )))
        }
    }

    /// Another member holding the id, name or address of `joining` is a conflict; the same
    /// member again is the index of its original change (0 if that is not known).
    fn join_conflict(&self, joining: &Member) -> Result<Option<u64>, Response> {
        let conflict = |message: String| Err(error(Status::Conflict, message));
        if let Some(existing) = self.state.member(joining.id) {
            let same = existing.name == joining.name
                && same_address(&existing.address, &joining.address)
                && existing.zone == joining.zone
                && existing.weight == joining.weight;
            if same {
                return Ok(Some(self.state.member_since(joining.id).unwrap_or(0)));
            }
            return conflict(format!(
                "member {} already exists as {:?} at {} (zone {:?}, weight {}); it is not the \
                 member asked for, {:?} at {} (zone {:?}, weight {})",
                existing.id,
                existing.name,
                existing.address,
                existing.zone,
                existing.weight,
                joining.name,
                joining.address,
                joining.zone,
                joining.weight
            ));
        }
        for other in self.state.members() {
            if !other.name.is_empty() && other.name == joining.name {
                return conflict(format!(
                    "name {:?} is already used by member {}",
                    joining.name, other.id
                ));
            }
            if same_address(&other.address, &joining.address) {
                return conflict(format!(
                    "address {} is already used by member {}",
                    joining.address, other.id
                ));
            }
        }
        Ok(None)
    }

    /// The leader's own view of a learner: heard from within the failure detector's window, and
    /// its log within `promote_lag_entries_max` of the leader's last index.
    fn check_promotable(&self, id: NodeId) -> Result<(), Refusal> {
        let now = Instant::now();
        let election = Duration::from_millis(
            self.config.raft.tick_ms * u64::from(self.config.raft.election_timeout_ticks),
        );
        let window = self.failure.window(2 * election);
        let bound = self.config.promote_lag_entries_max;
        let status = self.raw.status();
        let lag = status
            .progress
            .get(&id)
            .map_or(status.last_index, |progress| {
                status.last_index.saturating_sub(progress.match_index)
            });
        let behind = format!("{lag} entries behind the leader (bound {bound})");
        let message = match self.failure.contact(id, now, window) {
            Contact::Recent(_) if lag <= bound => return Ok(()),
            Contact::Recent(_) => format!("member {id} is {behind}"),
            Contact::Silent(silent) => format!(
                "member {id} has not been heard from for {:.1} s (window {:.1} s); it is {behind}",
                silent.as_secs_f64(),
                window.as_secs_f64()
            ),
            Contact::Never => {
                format!("member {id} has never been heard from by the leader; it is {behind}")
            }
        };
        let message = format!("{message}; only a reachable, caught-up learner can be promoted");
        // A new leader has not yet heard from everyone, and its view of their logs starts from
        // nothing: it looks again for one election timeout before refusing.
        if self
            .failure
            .leading_for(now)
            .is_some_and(|led| led < election)
        {
            return Err(Refusal::Later(message));
        }
        info!(id, lag, bound, "refusing to promote a learner: {message}");
        Err(Refusal::Answer(error(Status::Unavailable, message)))
    }

    /// Appends the change; the wait answers with the index of its entry.
    fn propose_change(
        &mut self,
        description: &str,
        step: ConfChangeStep,
        context: Vec<u8>,
    ) -> Result<AdminWait, Refusal> {
        let proposed = self.raw.propose_conf_change(ConfChange {
            changes: vec![step],
            auto_leave: true,
            context,
        });
        match proposed {
            Ok(()) => {}
            Err(
                err @ (ProposeError::ConfChangePending
                | ProposeError::TransferInProgress
                | ProposeError::TooManyUncommitted
                | ProposeError::NotLeader { .. }
                | ProposeError::NoLeader),
            ) => {
                return Err(Refusal::Later(format!(
                    "{description} could not start: {err}"
                )))
            }
            Err(err) => return Err(Refusal::Answer(propose_error_response(&err))),
        }
        // The core appends a leader's proposal to its log at once: the change is the last entry.
        let status = self.raw.status();
        assert!(
            status.last_index > self.state.applied_index(),
            "a proposed change lands after everything applied"
        );
        Ok(AdminWait::Entry {
            index: status.last_index,
            term: status.term,
        })
    }

    fn leader_address(&self) -> Option<SocketAddr> {
        let leader = self.raw.leader().filter(|id| *id != self.id)?;
        self.state.member(leader)?.address.parse().ok()
    }

    fn forward_or_refuse(
        &mut self,
        request: Request,
        deadline: Instant,
        reply: oneshot::Sender<Response>,
        may_forward: bool,
        attempts: u32,
    ) {
        if !may_forward {
            // A peer forwarded this believing this node leads; it retries with the leader it
            // learns of next.
            let _ = reply.send(not_leading(self.raw.leader()));
            return;
        }
        let description = describe(&request);
        let Some(leader) = self.leader_address() else {
            let reason = format!("{description}: no leader is known");
            self.retry_admin_later(AdminRetry {
                request,
                deadline,
                reply,
                may_forward,
                not_before: Instant::now(),
                attempts,
                reason,
            });
            return;
        };
        let transport = self.transport.clone();
        let events = self.events_tx.clone();
        // Before asking again: the node answered it is not the leader (this node will hear of the
        // new one within a heartbeat or an election), or the connection failed (which took long).
        let backoff = Duration::from_millis(self.config.raft.tick_ms * FORWARD_RETRY_TICKS)
            .min(ADMIN_RETRY_BACKOFF_MAX);
        let remaining = deadline.saturating_duration_since(Instant::now());
        let task = async move {
            let forwarded = PeerRequest::Admin {
                request: request.clone(),
            };
            let call = transport.call(leader, forwarded);
            let outcome = match tokio::time::timeout(remaining, call).await {
                Err(_) => Forwarded::Answer(error(
                    Status::Timeout,
                    format!(
                        "{description}: no answer from the leader at {leader} in time; the \
                         change may still take effect"
                    ),
                )),
                Ok(result) => judge_forwarded(&description, leader, result),
            };
            let command = match outcome {
                Forwarded::Answer(response) => {
                    let _ = reply.send(response);
                    return;
                }
                // Answer once this node shows the change too, so the client's next read here
                // sees what it just did.
                Forwarded::AwaitApplied(index) => super::Command::AwaitApplied {
                    index,
                    deadline,
                    reply,
                },
                Forwarded::Retry(reason) => {
                    debug!(%reason, "forwarded admin request did not take effect; retrying");
                    tokio::time::sleep(backoff).await;
                    if Instant::now() >= deadline {
                        let message = format!("{reason} (retried until the deadline)");
                        let _ = reply.send(error(Status::Timeout, message));
                        return;
                    }
                    // Through the loop again: it may know another leader by now.
                    super::Command::Admin {
                        request,
                        deadline,
                        reply,
                    }
                }
            };
            let refused = match events.try_send(super::Event::Command(command)) {
                Ok(()) => return,
                Err(std::sync::mpsc::TrySendError::Full(event))
                | Err(std::sync::mpsc::TrySendError::Disconnected(event)) => event,
            };
            // The loop cannot take it: answer now rather than never.
            match refused {
                super::Event::Command(super::Command::AwaitApplied { reply, index, .. }) => {
                    let _ = reply.send(Response::Done { index });
                }
                super::Event::Command(super::Command::Admin { reply, .. }) => {
                    let _ = reply.send(error(
                        Status::Busy,
                        "the node loop is saturated; the change did not take effect; retry",
                    ));
                }
                _ => {}
            }
        };
        self.runtime.spawn(task.in_current_span());
    }

    /// A peer asks this node to carry out an admin request (it believes this node leads), or a
    /// new node asks to join.
    pub(super) fn handle_peer_call(
        &mut self,
        from: NodeId,
        request: PeerRequest,
        reply: oneshot::Sender<PeerResponse>,
    ) {
        let deadline = Instant::now() + FORWARDED_WAIT;
        let (admin_reply, answer) = oneshot::channel();
        let leader_address = self.leader_address().map(|addr| addr.to_string());
        match request {
            PeerRequest::Membership => self.answer_membership(from, reply),
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
                self.runtime.spawn(
                    async move {
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
                    }
                    .in_current_span(),
                );
            }
            PeerRequest::Admin { request } => {
                if self.state.member(from).is_none() {
                    let _ = admin_reply.send(error(
                        Status::PermissionDenied,
                        format!("node {from} is not a member"),
                    ));
                } else {
                    if request.is_admin() {
                        self.handle_admin(request, deadline, admin_reply, false)
                    } else {
                        warn!(
                            from,
                            ?request,
                            "a peer forwarded a request that is not admin"
                        );
                        let _ = admin_reply
                            .send(error(Status::InvalidArgument, "not an admin request"));
                    }
                }
                self.runtime.spawn(
                    async move {
                        let response = answer.await.unwrap_or_else(|_| {
                            error(Status::ShuttingDown, "the node stopped before answering")
                        });
                        let _ = reply.send(PeerResponse::Admin { response });
                    }
                    .in_current_span(),
                );
            }
        }
    }
}

/// What a follower does with the leader's answer to a forwarded request.
enum Forwarded {
    Answer(Response),
    /// The leader made the change at this index: answer once it is applied here.
    AwaitApplied(u64),
    /// The request surely did not take effect (never delivered, or the node was not the leader):
    /// try again through the node loop, which by then may know the new leader.
    Retry(String),
}

fn judge_forwarded(
    description: &str,
    leader: SocketAddr,
    result: Result<PeerResponse, TransportError>,
) -> Forwarded {
    match result {
        Ok(PeerResponse::Admin { response }) => match response {
            Response::Done { index } if index > 0 => Forwarded::AwaitApplied(index),
            Response::Error {
                status: status @ (Status::NotLeader | Status::NoLeader),
                message,
            } => Forwarded::Retry(format!(
                "{description}: the node at {leader} answered {}: {message}",
                status.name()
            )),
            other => Forwarded::Answer(other),
        },
        Ok(other) => Forwarded::Answer(error(
            Status::Internal,
            format!("{description}: unexpected answer from {leader}: {other:?}"),
        )),
        // The connection never came up, so the request never left this node.
        Err(err @ TransportError::Connect { .. }) => Forwarded::Retry(format!(
            "{description}: cannot reach the leader at {leader}: {err}"
        )),
        Err(err) => Forwarded::Answer(error(
            Status::Unavailable,
            format!(
                "{description}: lost the call to the leader at {leader} ({err}); the change may \
                 or may not have taken effect"
            ),
        )),
    }
}

/// How logs and errors name an admin request.
fn describe(request: &Request) -> String {
    match request {
        Request::Join { id, .. } => format!("join of member {id}"),
        Request::Remove { id } => format!("removal of member {id}"),
        Request::Promote { id } => format!("promotion of member {id}"),
        Request::TransferLeader { id } => format!("leadership transfer to member {id}"),
        other => other.name().to_string(),
    }
}

/// Addresses compare as socket addresses where both parse (so `127.0.0.1:07400` is
/// `127.0.0.1:7400`), else as text.
fn same_address(a: &str, b: &str) -> bool {
    match (a.parse::<SocketAddr>(), b.parse::<SocketAddr>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
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
            "address {address:?} is not an ip:port of at most {MEMBER_ADDRESS_BYTES_MAX} bytes \
             (host names are not accepted)"
        ));
    }
    if name.len() > MEMBER_NAME_BYTES_MAX {
        return invalid(format!(
            "name of {} bytes: names are limited to {MEMBER_NAME_BYTES_MAX} bytes",
            name.len()
        ));
    }
    if zone.len() > MEMBER_ZONE_BYTES_MAX {
        return invalid(format!(
            "zone of {} bytes: zones are limited to {MEMBER_ZONE_BYTES_MAX} bytes",
            zone.len()
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

/// The answer of a node that does not lead to a request only the leader can carry out: with the
/// leader it follows named, so the caller's log says who to ask rather than that none is known.
fn not_leading(leader: Option<NodeId>) -> Response {
    match leader {
        Some(id) => error(
            Status::NotLeader,
            format!("this node is not the leader; member {id} leads: retry there"),
        ),
        None => error(
            Status::NoLeader,
            "no leader is known here; retry once one is elected",
        ),
    }
}

/// How a joining node logs a refusal: the status by its name (`JoinResult` carries the code),
/// the refusing node's words, and where the leader is when it said so.
pub(super) fn join_refusal(status: u32, message: &str, leader_address: Option<&str>) -> String {
    let status = Status::from_code(status)
        .map_or_else(|| format!("status {status}"), |known| known.name().into());
    match leader_address {
        Some(address) => format!("{status}: {message} (the leader is at {address})"),
        None => format!("{status}: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_by_a_follower_that_knows_the_leader_says_not_leader_and_names_it() {
        let Response::Error { status, message } = not_leading(Some(2)) else {
            panic!("an error answer");
        };
        assert_eq!(status, Status::NotLeader);
        assert!(message.contains("member 2"), "{message}");
        assert!(!message.contains("no leader"), "{message}");

        let Response::Error { status, message } = not_leading(None) else {
            panic!("an error answer");
        };
        assert_eq!(status, Status::NoLeader);
        assert!(message.contains("no leader is known"), "{message}");
    }

    #[test]
    fn a_logged_join_refusal_names_the_status_and_the_leader() {
        let text = join_refusal(
            Status::NotLeader.code(),
            "this node is not the leader; member 2 leads",
            Some("127.0.0.1:7402"),
        );
        assert!(text.starts_with("not_leader: "), "{text}");
        assert!(text.contains("member 2"), "{text}");
        assert!(text.contains("127.0.0.1:7402"), "{text}");
        assert!(!text.contains("no leader"), "{text}");

        let text = join_refusal(Status::NoLeader.code(), "no leader is known here", None);
        assert!(text.starts_with("no_leader: "), "{text}");
        // A code from a newer daemon is shown, not hidden.
        assert!(join_refusal(999, "?", None).contains("999"));
    }
}
