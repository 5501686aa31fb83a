//! Requests waiting on the cluster: proposals until their entry is applied, reads until the read
//! index is applied, admin changes until the state shows them, watches until the client leaves.
//! Each has a deadline or a bound; none can wait forever.

use std::collections::BTreeMap;
use std::time::Instant;

use ringraft_proto::{NodeId, Response, Status};
use tokio::sync::{mpsc, oneshot};

use super::view::error;
use crate::state::ReplicatedState;

pub struct PendingProposal {
    pub deadline: Instant,
    pub reply: oneshot::Sender<Response>,
}

pub struct PendingRead {
    pub deadline: Instant,
    pub reply: oneshot::Sender<Response>,
    /// Set once the leader has confirmed the read index.
    pub read_index: Option<u64>,
}

/// Whether an admin change has taken effect, judged from the applied state and the known leader.
pub type AdminDone = Box<dyn Fn(&ReplicatedState, Option<NodeId>) -> bool + Send>;

/// Answered once `done(state, leader)` holds.
pub struct PendingAdmin {
    pub deadline: Instant,
    pub reply: oneshot::Sender<Response>,
    pub done: AdminDone,
    pub description: String,
}

pub struct Watcher {
    pub next_index: u64,
    pub sink: mpsc::Sender<Response>,
}

/// Records sent to a watcher in one message.
const WATCH_BATCH: usize = 256;

#[derive(Default)]
pub struct Pending {
    pub proposals: BTreeMap<u64, PendingProposal>,
    pub reads: BTreeMap<u64, PendingRead>,
    pub admin: Vec<PendingAdmin>,
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
        for admin in self
            .admin
            .extract_if(.., |admin| (admin.done)(state, leader))
        {
            let _ = admin.reply.send(Response::Done { index: applied });
        }
        self.feed_watchers(state);
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

    /// Fails everything whose deadline passed.
    pub fn expire(&mut self, now: Instant) {
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
            let message = format!("{} did not take effect in time", admin.description);
            let _ = admin.reply.send(error(Status::Timeout, message));
        }
    }

    /// The node stops: every waiting client gets a clear answer.
    pub fn fail_all(&mut self, status: Status, message: &str) {
        for (_, p) in std::mem::take(&mut self.proposals) {
            let _ = p.reply.send(error(status, message));
        }
        for (_, r) in std::mem::take(&mut self.reads) {
            let _ = r.reply.send(error(status, message));
        }
        for admin in self.admin.drain(..) {
            let _ = admin.reply.send(error(status, message));
        }
        for watcher in self.watchers.drain(..) {
            let _ = watcher.sink.try_send(error(status, message));
        }
    }
}
