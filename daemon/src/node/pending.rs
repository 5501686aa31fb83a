//! Requests waiting on the cluster: proposals until their entry is applied (or, while no leader is
//! known, until one is), reads until the read index is applied, admin changes until the state
//! shows them, watches until the client leaves.
//! Each has a deadline or a bound; none can wait forever.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ringraft_proto::{NodeId, Request, Response, Status};
use tokio::sync::{mpsc, oneshot};

use super::view::error;
use crate::state::ReplicatedState;

pub struct PendingProposal {
    pub deadline: Instant,
    pub reply: oneshot::Sender<Response>,
}

/// A proposal made while no leader was known: proposed again once one is, answered `NoLeader`
/// only if none is known before its deadline (an etcd client waits for a leader the same way).
pub struct ParkedProposal {
    /// The encoded state command, with its request id.
    pub bytes: Vec<u8>,
    pub request_id: u64,
    pub deadline: Instant,
    pub reply: oneshot::Sender<Response>,
}

/// Proposals parked while no leader is known; past it a proposal is answered `NoLeader` at once.
pub const PARKED_PROPOSALS_MAX: usize = 4096;

pub struct PendingRead {
    pub deadline: Instant,
    pub reply: oneshot::Sender<Response>,
    /// Set once the leader has confirmed the read index.
    pub read_index: Option<u64>,
}

/// Whether an admin change has taken effect, judged from the applied state and the known leader.
pub type AdminDone = Box<dyn Fn(&ReplicatedState, Option<NodeId>) -> bool + Send>;

/// What an admin request waits for before it is answered.
pub enum AdminWait {
    /// The membership change this node appended, as leader, at `index` in `term`. Answered with
    /// `index` (the ring's new epoch) once the entry applied at `index` is this one; if another
    /// leader's entry took that place, the change did not happen and the request is retried.
    Entry { index: u64, term: u64 },
    /// A change the leader made on this node's behalf, at `index`: answered with `index` once
    /// this node has applied it, so the client's next read here shows the change.
    Applied { index: u64 },
    /// A condition (a leadership transfer landing); answered with the applied index.
    Until(AdminDone),
}

impl std::fmt::Debug for AdminWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminWait::Entry { index, term } => write!(f, "entry {index} of term {term}"),
            AdminWait::Applied { index } => write!(f, "applied {index}"),
            AdminWait::Until(_) => f.write_str("a condition"),
        }
    }
}

pub struct PendingAdmin {
    pub deadline: Instant,
    pub reply: oneshot::Sender<Response>,
    pub wait: AdminWait,
    pub description: String,
    /// The request again, to retry it if its entry is replaced (None: never retried).
    pub retry: Option<(Request, bool)>,
}

/// An admin request that could not start yet (a change in flight, a leader not yet able to
/// change membership, no leader known): the node loop tries it again from `not_before` until its
/// deadline, then answers with `reason`.
pub struct AdminRetry {
    pub request: Request,
    pub deadline: Instant,
    pub reply: oneshot::Sender<Response>,
    /// False for a request a peer forwarded here (it is never forwarded on).
    pub may_forward: bool,
    pub not_before: Instant,
    pub attempts: u32,
    /// Why it waits, for the answer if the deadline passes first.
    pub reason: String,
}

/// How long a retried admin request waits between attempts: one tick at first, doubling to this.
pub const ADMIN_RETRY_BACKOFF_MAX: Duration = Duration::from_millis(500);

pub struct Watcher {
    pub next_index: u64,
    pub sink: mpsc::Sender<Response>,
}

/// Records sent to a watcher in one message.
const WATCH_BATCH: usize = 256;

#[derive(Default)]
pub struct Pending {
    pub proposals: BTreeMap<u64, PendingProposal>,
    /// Waiting for a leader, oldest first (see [`ParkedProposal`]); at most
    /// [`PARKED_PROPOSALS_MAX`].
    pub parked: Vec<ParkedProposal>,
    pub reads: BTreeMap<u64, PendingRead>,
    pub admin: Vec<PendingAdmin>,
    pub admin_retries: Vec<AdminRetry>,
    pub watchers: Vec<Watcher>,
}

impl Pending {
    /// Answers a proposal of this node's once its entry is applied.
    pub fn proposal_applied(&mut self, request_id: u64, index: u64) {
        if let Some(pending) = self.proposals.remove(&request_id) {
            let _ = pending.reply.send(Response::Proposed { index });
        }
    }

    pub fn read_confirmed(&mut self, read_id: u64, index: u64) {
        if let Some(read) = self.reads.get_mut(&read_id) {
            read.read_index = Some(index);
        }
    }

    /// Answers what the applied state now allows: reads whose index is applied, admin changes
    /// that the state shows, watchers with new records.
    pub fn on_applied(&mut self, state: &ReplicatedState, leader: Option<NodeId>) {
        let applied = state.applied_index();
        for (_, read) in self.reads.extract_if(.., |_, read| {
            read.read_index.is_some_and(|index| index <= applied)
        }) {
            let _ = read.reply.send(Response::Done { index: applied });
        }
        for admin in self.admin.extract_if(.., |admin| match &admin.wait {
            AdminWait::Entry { index, .. } | AdminWait::Applied { index } => *index <= applied,
            AdminWait::Until(done) => done(state, leader),
        }) {
            let response = match admin.wait {
                AdminWait::Applied { index } => Response::Done { index },
                AdminWait::Until(_) => Response::Done { index: applied },
                // `entry_applied` answers these as their entry passes; one still here was skipped
                // by a snapshot from another leader, which says nothing about which entry it was.
                AdminWait::Entry { index, .. } => error(
                    Status::Unavailable,
                    format!(
                        "{}: this node installed a snapshot past index {index} where it appended \
                         the change, so whether the change took effect is not known; check the \
                         member list",
                        admin.description
                    ),
                ),
            };
            let _ = admin.reply.send(response);
        }
        self.feed_watchers(state);
    }

    /// A committed entry was just applied: answers the change appended at `index`, or queues it
    /// to be tried again if another leader's entry took its place (it then never took effect).
    pub fn entry_applied(&mut self, index: u64, term: u64, now: Instant) {
        for admin in self.admin.extract_if(
            ..,
            |admin| matches!(admin.wait, AdminWait::Entry { index: at, .. } if at == index),
        ) {
            let AdminWait::Entry { term: ours, .. } = admin.wait else {
                continue;
            };
            if ours == term {
                let _ = admin.reply.send(Response::Done { index });
                continue;
            }
            let reason = format!(
                "{}: its entry at index {index} (term {ours}) was replaced by a later leader's \
                 (term {term}), so it did not take effect",
                admin.description
            );
            match admin.retry {
                Some((request, may_forward)) => self.admin_retries.push(AdminRetry {
                    request,
                    deadline: admin.deadline,
                    reply: admin.reply,
                    may_forward,
                    not_before: now,
                    attempts: 0,
                    reason,
                }),
                None => {
                    let _ = admin.reply.send(error(Status::NotLeader, reason));
                }
            }
        }
    }

    /// Retries whose time has come, removed from the queue.
    pub fn due_admin_retries(&mut self, now: Instant) -> Vec<AdminRetry> {
        self.admin_retries
            .extract_if(.., |retry| retry.not_before <= now)
            .collect()
    }

    pub fn feed_watchers(&mut self, state: &ReplicatedState) {
        self.watchers.retain_mut(|watcher| loop {
            if watcher.sink.is_closed() {
                return false;
            }
            let records = match state.log().read(watcher.next_index, WATCH_BATCH) {
                Ok(records) => records,
                Err(first_index) => {
                    let _ = watcher.sink.try_send(error(
                        Status::Compacted,
                        format!(
                            "records before {first_index} left the retention window; \
                             watch again from {first_index}"
                        ),
                    ));
                    return false;
                }
            };
            let Some(last) = records.last().map(|record| record.index) else {
                return true;
            };
            let message = Response::LogRecords {
                records,
                first_index: state.log().first_index(),
                last_index: state.log().applied_index(),
            };
            match watcher.sink.try_send(message) {
                Ok(()) => watcher.next_index = last + 1,
                // The client reads slowly: keep its place and try again on the next apply.
                Err(mpsc::error::TrySendError::Full(_)) => return true,
                Err(mpsc::error::TrySendError::Closed(_)) => return false,
            }
        });
    }

    /// Parks a proposal that found no leader; `Err` gives it back when the queue is full.
    pub fn park(&mut self, proposal: ParkedProposal) -> Result<(), ParkedProposal> {
        if self.parked.len() >= PARKED_PROPOSALS_MAX {
            return Err(proposal);
        }
        self.parked.push(proposal);
        Ok(())
    }

    /// Fails everything whose deadline passed.
    pub fn expire(&mut self, now: Instant) {
        for parked in self.parked.extract_if(.., |p| p.deadline <= now) {
            let _ = parked.reply.send(error(
                Status::NoLeader,
                "no leader was known before the proposal's deadline; it was not proposed",
            ));
        }
        for (_, proposal) in self.proposals.extract_if(.., |_, p| p.deadline <= now) {
            let _ = proposal.reply.send(error(
                Status::Timeout,
                "the proposal was not committed in time; it may still commit",
            ));
        }
        for (_, read) in self.reads.extract_if(.., |_, r| r.deadline <= now) {
            let _ = read.reply.send(error(
                Status::Timeout,
                "the leader did not confirm the read in time",
            ));
        }
        for admin in self.admin.extract_if(.., |admin| admin.deadline <= now) {
            let message = match admin.wait {
                AdminWait::Entry { index, .. } => format!(
                    "{}: its entry at index {index} did not commit in time; it may still",
                    admin.description
                ),
                AdminWait::Applied { index } => format!(
                    "{}: the leader made the change at index {index}, but this node did not \
                     apply it in time",
                    admin.description
                ),
                AdminWait::Until(_) => format!("{} did not take effect in time", admin.description),
            };
            let _ = admin.reply.send(error(Status::Timeout, message));
        }
        for retry in self.admin_retries.extract_if(.., |r| r.deadline <= now) {
            let message = format!("{} (retried until the deadline)", retry.reason);
            let _ = retry.reply.send(error(Status::Timeout, message));
        }
    }

    /// The node stops: every waiting client gets a clear answer.
    pub fn fail_all(&mut self, status: Status, message: &str) {
        for p in self.parked.drain(..) {
            let _ = p.reply.send(error(status, message));
        }
        for (_, p) in std::mem::take(&mut self.proposals) {
            let _ = p.reply.send(error(status, message));
        }
        for (_, r) in std::mem::take(&mut self.reads) {
            let _ = r.reply.send(error(status, message));
        }
        for admin in self.admin.drain(..) {
            let _ = admin.reply.send(error(status, message));
        }
        for retry in self.admin_retries.drain(..) {
            let _ = retry.reply.send(error(status, message));
        }
        for watcher in self.watchers.drain(..) {
            let _ = watcher.sink.try_send(error(status, message));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(index: u64, term: u64) -> (PendingAdmin, oneshot::Receiver<Response>) {
        let (reply, answer) = oneshot::channel();
        let admin = PendingAdmin {
            deadline: Instant::now() + Duration::from_secs(10),
            reply,
            wait: AdminWait::Entry { index, term },
            description: format!("change at {index}"),
            retry: Some((Request::Remove { id: 4 }, true)),
        };
        (admin, answer)
    }

    #[test]
    fn a_change_is_answered_with_its_own_index_when_its_entry_applies() {
        let mut pending = Pending::default();
        let (admin, mut answer) = waiting(5, 2);
        pending.admin.push(admin);
        pending.entry_applied(4, 2, Instant::now());
        assert!(answer.try_recv().is_err(), "not before its entry");
        pending.entry_applied(5, 2, Instant::now());
        assert_eq!(answer.try_recv().unwrap(), Response::Done { index: 5 });
        assert!(pending.admin.is_empty());
    }

    #[test]
    fn a_change_whose_entry_was_replaced_is_retried_not_answered() {
        let mut pending = Pending::default();
        let (admin, mut answer) = waiting(5, 2);
        pending.admin.push(admin);
        let now = Instant::now();
        pending.entry_applied(5, 3, now);
        assert!(answer.try_recv().is_err());
        let retries = pending.due_admin_retries(now);
        assert_eq!(retries.len(), 1);
        assert_eq!(retries[0].request, Request::Remove { id: 4 });
        assert!(
            retries[0].reason.contains("replaced"),
            "{}",
            retries[0].reason
        );
    }

    #[test]
    fn a_change_skipped_by_a_snapshot_gets_an_unknown_outcome() {
        let member = ringraft_proto::Member {
            id: 1,
            name: "n1".into(),
            address: "127.0.0.1:7001".into(),
            zone: String::new(),
            weight: 1,
            role: ringraft_proto::MemberRole::Voter,
            state: ringraft_proto::MemberState::Active,
        };
        // A state at index 1 that did not come through `entry_applied` (as from a snapshot).
        let state = ReplicatedState::bootstrap(vec![member], 1, crate::state::Retention::default())
            .unwrap();
        let mut pending = Pending::default();
        let (later, mut later_answer) = waiting(5, 2);
        let (skipped, mut skipped_answer) = waiting(1, 2);
        pending.admin.push(later);
        pending.admin.push(skipped);
        pending.on_applied(&state, None);
        assert!(later_answer.try_recv().is_err(), "index 5 is still ahead");
        match skipped_answer.try_recv().unwrap() {
            Response::Error { status, message } => {
                assert_eq!(status, Status::Unavailable);
                assert!(message.contains("not known"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
}
