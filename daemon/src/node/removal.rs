//! A removed member learns that it was removed, says so once, stops answering, and exits.
//!
//! It learns it in one of two ways:
//! - by applying the committed entry that removes it;
//! - by asking its peers, once it has not heard from a leader for a while. A node removed while
//!   it was down or partitioned never receives that entry (the leader stops replicating to a
//!   member as soon as it appends the change), so it would otherwise campaign and serve its stale
//!   ring forever. A peer answers from its applied state. A state at or past this node's own that
//!   no longer lists this node proves that a removal committed in between (both states are
//!   prefixes of one log), so no record of removed ids needs to be replicated, and a node that
//!   joins again with a fresh state is never mistaken for the removed one.
//!
//! Then: one ERROR line naming the epoch; every waiting request, and every query but Status,
//! answered `Status::Removed`; no more peer traffic; and after `REMOVED_EXIT_DELAY` the loop ends
//! with `NodeExit::Removed`, which `ringraftd run` turns into `EXIT_REMOVED` (78), an exit code
//! the systemd unit does not restart.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ringraft_proto::{MemberRole, NodeId, Status};
use ringraft_raft::Role;
use tokio::sync::oneshot;
use tracing::{debug, error, Instrument};

use super::driver::Driver;
use super::view::error;
use super::{Command, Event};
use crate::run::EXIT_REMOVED;
use crate::transport::{PeerRequest, PeerResponse};

/// How long a removed node keeps answering `Removed` (so local clients learn why) before it exits.
pub const REMOVED_EXIT_DELAY: Duration = Duration::from_secs(10);
/// Peers asked in one membership check (voters first).
const PEERS_PER_CHECK: usize = 5;
/// The longest wait between two checks while no leader is heard from.
const CHECK_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// A peer's applied state that does not list this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PeerVerdict {
    pub peer: NodeId,
    pub applied_index: u64,
    pub epoch: u64,
}

/// When to ask the peers whether this node is still a member.
pub(super) struct MembershipCheck {
    /// How long without a leader before the first check; also the first backoff.
    silence: Duration,
    last_leader_contact: Instant,
    backoff: Duration,
    next_check: Instant,
    /// A check whose answers are awaited; a lost answer frees the slot at this deadline.
    in_flight_until: Option<Instant>,
}

impl MembershipCheck {
    pub fn new(now: Instant, silence: Duration) -> MembershipCheck {
        MembershipCheck {
            silence,
            last_leader_contact: now,
            backoff: silence,
            next_check: now,
            in_flight_until: None,
        }
    }

    pub fn heard_leader(&mut self, now: Instant) {
        self.last_leader_contact = now;
        self.backoff = self.silence;
    }

    fn due(&mut self, now: Instant) -> bool {
        if self.in_flight_until.is_some_and(|until| now < until) {
            return false;
        }
        self.in_flight_until = None;
        now.saturating_duration_since(self.last_leader_contact) >= self.silence
            && now >= self.next_check
    }

    fn started(&mut self, now: Instant, answers_within: Duration) {
        self.in_flight_until = Some(now + answers_within);
        self.next_check = now + self.backoff;
        self.backoff = (self.backoff * 2).min(CHECK_BACKOFF_MAX);
    }

    fn finished(&mut self) {
        self.in_flight_until = None;
    }
}

/// This node knows it was removed.
pub(super) struct Removed {
    pub epoch: u64,
    pub exit_at: Instant,
}

/// What a removed node answers to everything but Status.
pub(super) fn removed_message(epoch: u64) -> String {
    format!(
        "this node was removed from the cluster (epoch {epoch}) and is exiting; ask another member"
    )
}

/// Whether a peer's answer proves this node was removed: the peer's state does not list it and
/// is at or past this node's own applied state, which does.
pub(super) fn proves_removal(verdict: &PeerVerdict, own_applied: u64, own_member: bool) -> bool {
    own_member && verdict.applied_index >= own_applied
}

impl Driver {
    /// After a Raft message from `from` was stepped: contact with the current leader.
    pub(super) fn note_leader_contact(&mut self, from: NodeId, now: Instant) {
        if self.raw.leader() == Some(from) {
            self.membership_check.heard_leader(now);
        }
    }

    /// On every tick: ask the peers when no leader has been heard from for a while.
    pub(super) fn maybe_check_membership(&mut self, now: Instant) {
        if self.removed.is_some() || self.shutdown_deadline.is_some() {
            return;
        }
        if self.raw.role() == Role::Leader {
            self.membership_check.heard_leader(now);
            return;
        }
        // A node still joining has never been a member: there is nothing to learn.
        if self.state.member(self.id).is_none() || !self.membership_check.due(now) {
            return;
        }
        let mut targets: Vec<(bool, NodeId, SocketAddr)> = self
            .state
            .members()
            .filter(|m| m.id != self.id)
            .filter_map(|m| {
                let addr = m.address.parse().ok()?;
                Some((m.role != MemberRole::Voter, m.id, addr))
            })
            .collect();
        targets.sort_unstable();
        targets.truncate(PEERS_PER_CHECK);
        // Calls time out on their own; the slot frees a little after that in any case.
        self.membership_check
            .started(now, super::handle::DEFAULT_WAIT + Duration::from_secs(5));
        if targets.is_empty() {
            self.membership_check.finished();
            return;
        }
        debug!(
            peers = targets.len(),
            "no leader heard from for a while: asking peers whether this node is still a member"
        );
        let transport = self.transport.clone();
        let events = self.events_tx.clone();
        self.runtime.spawn(
            async move {
                let mut calls = tokio::task::JoinSet::new();
                for (_, peer, addr) in targets {
                    let transport = transport.clone();
                    calls.spawn(async move {
                        (peer, transport.call(addr, PeerRequest::Membership).await)
                    });
                }
                let mut best: Option<PeerVerdict> = None;
                while let Some(joined) = calls.join_next().await {
                    match joined {
                        Ok((
                            peer,
                            Ok(PeerResponse::Membership {
                                member: false,
                                applied_index,
                                epoch,
                            }),
                        )) => {
                            if best.is_none_or(|b| applied_index > b.applied_index) {
                                best = Some(PeerVerdict {
                                    peer,
                                    applied_index,
                                    epoch,
                                });
                            }
                        }
                        Ok((_, Ok(PeerResponse::Membership { member: true, .. }))) => {}
                        Ok((peer, Ok(other))) => {
                            debug!(peer, ?other, "unexpected answer to a membership check")
                        }
                        Ok((peer, Err(err))) => debug!(peer, %err, "membership check failed"),
                        Err(err) => debug!(%err, "membership check task failed"),
                    }
                }
                // A full queue loses the answer; the check is repeated later.
                let _ = events.try_send(Event::MembershipChecked(best));
            }
            .in_current_span(),
        );
    }

    pub(super) fn on_membership_checked(&mut self, verdict: Option<PeerVerdict>) {
        self.membership_check.finished();
        let Some(verdict) = verdict else {
            return;
        };
        if self.removed.is_some() {
            return;
        }
        let own_applied = self.state.applied_index();
        let own_member = self.state.member(self.id).is_some();
        if !proves_removal(&verdict, own_applied, own_member) {
            debug!(
                ?verdict,
                own_applied, "a peer behind this node does not list it yet; not conclusive"
            );
            return;
        }
        self.enter_removed(
            verdict.epoch,
            &format!(
                "peer {} no longer lists it at applied index {} (this node's is {own_applied})",
                verdict.peer, verdict.applied_index
            ),
        );
    }

    /// A peer asks whether it is still a member.
    pub(super) fn answer_membership(&self, from: NodeId, reply: oneshot::Sender<PeerResponse>) {
        let _ = reply.send(PeerResponse::Membership {
            member: self.state.member(from).is_some(),
            applied_index: self.state.applied_index(),
            epoch: self.state.epoch(),
        });
    }

    /// Once: log it, answer everyone waiting, stop talking to peers, publish the removal.
    pub(super) fn enter_removed(&mut self, epoch: u64, how: &str) {
        if self.removed.is_some() {
            return;
        }
        error!(
            epoch,
            how,
            exit_code = EXIT_REMOVED,
            "this node was removed from the cluster at epoch {epoch}: it no longer answers ring \
             or log queries and exits with code {EXIT_REMOVED} in {REMOVED_EXIT_DELAY:?}"
        );
        self.removed = Some(Removed {
            epoch,
            exit_at: Instant::now() + REMOVED_EXIT_DELAY,
        });
        self.pending
            .fail_all(Status::Removed, &removed_message(epoch));
        for id in std::mem::take(&mut self.peers).into_keys() {
            self.transport.remove_peer(id);
        }
        self.publish();
    }

    /// A removed node only answers: queries and changes get `Removed`, peer traffic is dropped
    /// (a peer's call fails on its side), a stop request ends the wait early.
    pub(super) fn handle_event_removed(&mut self, event: Event, epoch: u64) {
        let command = match event {
            Event::Command(command) => command,
            Event::Shutdown => {
                self.shutdown_deadline.get_or_insert_with(Instant::now);
                return;
            }
            Event::Peer(_) | Event::MembershipChecked(_) => return,
        };
        match command {
            Command::Propose { reply, .. }
            | Command::ReadIndex { reply, .. }
            | Command::ReadLog { reply, .. }
            | Command::Admin { reply, .. } => {
                let _ = reply.send(error(Status::Removed, removed_message(epoch)));
            }
            Command::Watch { sink, .. } => {
                let _ = sink.try_send(error(Status::Removed, removed_message(epoch)));
            }
            // Internal follow-ups of requests made before the removal: they wait as usual and
            // are answered `Removed` when the loop ends.
            other => self.handle_command(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(applied_index: u64) -> PeerVerdict {
        PeerVerdict {
            peer: 2,
            applied_index,
            epoch: 7,
        }
    }

    #[test]
    fn only_a_peer_at_or_past_this_node_proves_a_removal() {
        assert!(proves_removal(&verdict(20), 10, true));
        assert!(proves_removal(&verdict(10), 10, true));
        // A lagging peer may not have applied this node's join yet.
        assert!(!proves_removal(&verdict(9), 10, true));
        // A node that is not a member of its own state (still joining) learns nothing.
        assert!(!proves_removal(&verdict(20), 10, false));
    }

    #[test]
    fn checks_start_after_a_silence_back_off_and_reset_on_leader_contact() {
        let start = Instant::now();
        let silence = Duration::from_secs(1);
        let mut check = MembershipCheck::new(start, silence);
        assert!(
            !check.due(start),
            "no check while the leader was just heard"
        );
        let later = start + silence;
        assert!(check.due(later));
        check.started(later, Duration::from_secs(15));
        assert!(
            !check.due(later + Duration::from_secs(5)),
            "one check in flight"
        );
        check.finished();
        assert!(
            !check.due(later + Duration::from_millis(500)),
            "the next check waits out the backoff"
        );
        assert!(check.due(later + silence));
        check.started(later + silence, Duration::from_secs(15));
        check.finished();
        assert!(!check.due(later + 2 * silence), "the backoff doubled");
        assert!(check.due(later + 3 * silence));
        check.heard_leader(later + 3 * silence);
        assert!(!check.due(later + 3 * silence));
        // A lost answer does not block checks forever.
        let mut lost = MembershipCheck::new(start, silence);
        lost.started(later, Duration::from_secs(15));
        assert!(lost.due(later + Duration::from_secs(16)));
    }
}
