//! The node loop: drains the event queue in batches, drives the Raft core with ticks, and carries
//! each Ready through storage, transport and the state machine in the order the core demands.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringraft_proto::{NodeId, NodeRole, RegistersStatus, Response, Status, StatusInfo};
use ringraft_raft::{ProposeError, RawNode, Role};
use ringraft_storage::{Storage, StorageError};
use tokio::sync::watch;
use tracing::{debug, error, info, info_span, warn};

use super::failure::FailureDetector;
use super::journal::MembershipJournal;
use super::pending::{
    AdminWait, ParkedProposal, Pending, PendingAdmin, PendingProposal, PendingRead, Watcher,
};
use super::removal::{removed_message, MembershipCheck, Removed};
use super::view::{error as error_response, ClusterView, MembershipView};
use super::{Command, Event, NodeExit};
use crate::config::Config;
use crate::state::{
    encode_command, Applied, ImageError, RegisterPlane, ReplicatedState, StateCommand,
};
use crate::transport::{Inbound, TransportHandle};

/// Events handled before the loop looks at the core again: the batch that becomes one Ready and
/// one fsync (group commit).
const EVENT_BATCH_MAX: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum FatalError {
    #[error("storage failed: {0}")]
    Storage(#[from] StorageError),
    #[error("cannot install the snapshot from the leader: {0}")]
    Snapshot(#[from] ImageError),
    #[error("raft core: {0}")]
    Raft(String),
    #[error("register store failed: {0}")]
    Registers(String),
}

pub(crate) struct Driver {
    pub(super) id: NodeId,
    pub(super) config: Config,
    pub(super) raw: RawNode,
    pub(super) storage: Storage,
    pub(super) state: ReplicatedState,
    pub(super) transport: TransportHandle,
    pub(super) runtime: tokio::runtime::Handle,
    pub(super) events: Receiver<Event>,
    /// For tasks of this node that report back to the loop (answers to forwarded requests).
    pub(super) events_tx: SyncSender<Event>,
    pub(super) view_tx: watch::Sender<Arc<ClusterView>>,
    pub(super) membership: Arc<MembershipView>,
    /// The view published before `membership`: once no reader holds it, the next change brings
    /// it up to date instead of copying the current one.
    pub(super) spare_membership: Option<Arc<MembershipView>>,
    pub(super) journal: MembershipJournal,
    /// The registers' plane as last published (see `state::registers`).
    pub(super) registers: Arc<RegisterPlane>,
    /// When this node, as leader, last proposed `RegistersEnabled`.
    pub(super) registers_enable_proposed_at: Option<Instant>,
    pub(super) pending: Pending,
    pub(super) failure: FailureDetector,
    pub(super) next_request_id: u64,
    pub(super) snapshot_index: u64,
    pub(super) peers: BTreeMap<NodeId, SocketAddr>,
    pub(super) shutdown_deadline: Option<Instant>,
    /// The first fatal error met while handling an event; the loop stops on it (see
    /// `report_fatal`).
    pub(super) fatal: Option<FatalError>,
    pub(super) membership_check: MembershipCheck,
    /// Set once this node knows it was removed from the cluster (see `removal`).
    pub(super) removed: Option<Removed>,
    /// Bumped on every turn of the loop; the systemd watchdog is fed only while it moves.
    pub(super) progress: Arc<AtomicU64>,
    /// Debug builds only: see `debug_stall`.
    pub(super) debug_stall_file: Option<PathBuf>,
}

/// Debug builds only: while the file this names exists, the node loop blocks as if stuck in
/// fsync (tests use it to starve the systemd watchdog). Release builds ignore it.
pub const DEBUG_STALL_FILE_ENV: &str = "RINGRAFTD_DEBUG_STALL_FILE";

impl Driver {
    pub fn run(mut self) -> Result<NodeExit, FatalError> {
        match self.run_loop() {
            Ok(exit) => Ok(exit),
            Err(err) => Err(self.stop_on_fatal(err)),
        }
    }

    fn run_loop(&mut self) -> Result<NodeExit, FatalError> {
        // The transport spawns its tasks on the runtime; this thread is not one of its workers.
        let runtime = self.runtime.clone();
        let _runtime = runtime.enter();
        let tick = Duration::from_millis(self.config.raft.tick_ms);
        let mut next_tick = Instant::now() + tick;
        self.sync_peers();
        self.publish();
        loop {
            self.progress.fetch_add(1, Ordering::Relaxed);
            self.debug_stall();
            let span = info_span!("node", id = self.id, term = self.raw.term());
            let _entered = span.enter();
            let wait = next_tick.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(wait) {
                Ok(event) => {
                    self.dispatch(event);
                    for _ in 0..EVENT_BATCH_MAX {
                        if self.fatal.is_some() {
                            break;
                        }
                        match self.events.try_recv() {
                            Ok(event) => self.dispatch(event),
                            Err(_) => break,
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.shutdown_deadline.get_or_insert_with(Instant::now);
                }
            }
            if let Some(err) = self.fatal.take() {
                return Err(err);
            }
            let now = Instant::now();
            if let Some(removed) = &self.removed {
                // Nothing but answers from here on: no ticks, no Raft, no snapshots.
                if now >= removed.exit_at || self.shutdown_deadline.is_some() {
                    break;
                }
                next_tick = (now + tick).min(removed.exit_at);
                continue;
            }
            if now >= next_tick {
                self.raw.tick();
                self.on_tick(now);
                // After a stall (a long fsync), skip missed ticks instead of firing them in a burst
                // that would look like a long silence to the election timer.
                next_tick = (next_tick + tick).max(now);
            }
            while self.raw.has_ready() && self.removed.is_none() {
                self.process_ready()?;
            }
            if self.removed.is_none() {
                self.maybe_snapshot()?;
            }
            self.publish();
            if self.should_exit(now) {
                break;
            }
        }
        let exit = match &self.removed {
            Some(removed) => NodeExit::Removed {
                epoch: removed.epoch,
            },
            None => NodeExit::Stopped,
        };
        match &self.removed {
            Some(removed) => {
                let epoch = removed.epoch;
                self.pending
                    .fail_all(Status::Removed, &removed_message(epoch));
            }
            None => self
                .pending
                .fail_all(Status::ShuttingDown, "the node is shutting down"),
        }
        self.shutdown_deadline.get_or_insert_with(Instant::now);
        self.publish();
        self.storage.sync()?;
        info!(?exit, "node loop stopped");
        Ok(exit)
    }

    /// Where events go: a removed node only answers (see `removal`).
    fn dispatch(&mut self, event: Event) {
        match &self.removed {
            Some(removed) => {
                let epoch = removed.epoch;
                self.handle_event_removed(event, epoch);
            }
            None => self.handle_event(event),
        }
    }

    /// The test hook named by `DEBUG_STALL_FILE_ENV` (set only in debug builds, see boot).
    fn debug_stall(&self) {
        let Some(path) = &self.debug_stall_file else {
            return;
        };
        if !path.exists() {
            return;
        }
        warn!(path = %path.display(), "debug hook: the node loop is blocked while this file exists");
        while path.exists() {
            std::thread::sleep(Duration::from_millis(10));
        }
        info!("debug hook: the node loop runs again");
    }

    fn should_exit(&self, now: Instant) -> bool {
        let Some(deadline) = self.shutdown_deadline else {
            return false;
        };
        // A leader waits (bounded) for its transfer to land so clients see no election gap.
        now >= deadline || self.raw.role() != Role::Leader
    }

    fn on_tick(&mut self, now: Instant) {
        self.pending.expire(now);
        self.propose_parked();
        self.maybe_check_membership(now);
        self.retry_due_admin(now);
        // A watcher whose buffer was full gets its records now even if nothing new commits.
        self.pending.feed_watchers(&self.state);
        if self.raw.role() == Role::Leader && self.shutdown_deadline.is_none() {
            for (id, state) in self.failure.verdicts(now, &self.state) {
                self.propose_command(StateCommand::SetMemberState { id, state });
            }
            self.maybe_enable_registers(now);
        }
    }

    fn handle_event(&mut self, event: Event) {
        match event {
            Event::Peer(inbound) => self.handle_inbound(inbound),
            Event::Command(command) => self.handle_command(command),
            Event::Shutdown => self.begin_shutdown(),
            Event::MembershipChecked(verdict) => self.on_membership_checked(verdict),
        }
    }

    fn handle_inbound(&mut self, inbound: Inbound) {
        match inbound {
            Inbound::Raft(message) => {
                let now = Instant::now();
                let from = message.from;
                if self.state.member(from).is_some() {
                    self.failure.heard_from(from, now);
                }
                self.raw.step(message);
                self.note_leader_contact(from, now);
            }
            Inbound::Unreachable(id) => self.raw.report_unreachable(id),
            Inbound::SnapshotSent { to, ok } => self.raw.report_snapshot(to, ok),
            Inbound::Call {
                from,
                request,
                reply,
            } => self.handle_peer_call(from, request, reply),
        }
    }

    /// Proposes a client's proposal; while no leader is known it waits (parked, within its
    /// deadline) for one instead of failing at once.
    fn propose_or_park(&mut self, proposal: ParkedProposal) {
        if !self.leader_known() && self.shutdown_deadline.is_none() {
            // The core would refuse it (NoLeader) and drop the bytes: keep them instead.
            if let Err(refused) = self.pending.park(proposal) {
                let _ = refused
                    .reply
                    .send(propose_error_response(&ProposeError::NoLeader));
            }
            return;
        }
        match self.raw.propose(proposal.bytes) {
            Ok(()) => {
                let pending = PendingProposal {
                    deadline: proposal.deadline,
                    reply: proposal.reply,
                };
                self.pending.proposals.insert(proposal.request_id, pending);
            }
            Err(err) => {
                let _ = proposal.reply.send(propose_error_response(&err));
            }
        }
    }

    /// Whether the core would take a proposal now rather than refuse it with `NoLeader`.
    fn leader_known(&self) -> bool {
        self.raw.role() == Role::Leader || self.raw.leader().is_some()
    }

    /// Once a leader is known, proposes what waited for one, oldest first.
    fn propose_parked(&mut self) {
        if self.pending.parked.is_empty() || !self.leader_known() {
            return;
        }
        for proposal in std::mem::take(&mut self.pending.parked) {
            self.propose_or_park(proposal);
        }
    }

    pub(super) fn handle_command(&mut self, command: Command) {
        match command {
            Command::Propose {
                data,
                deadline,
                reply,
            } => {
                let request_id = self.next_request_id();
                let bytes = encode_command(&StateCommand::Proposal {
                    origin: self.id,
                    request_id,
                    data,
                });
                self.propose_or_park(ParkedProposal {
                    bytes,
                    request_id,
                    deadline,
                    reply,
                });
            }
            Command::ReadIndex { deadline, reply } => {
                let read_id = self.next_request_id();
                match self.raw.read_index(read_id.to_le_bytes().to_vec()) {
                    Ok(()) => {
                        self.pending.reads.insert(
                            read_id,
                            PendingRead {
                                deadline,
                                reply,
                                read_index: None,
                            },
                        );
                    }
                    Err(err) => {
                        let _ = reply.send(propose_error_response(&err));
                    }
                }
            }
            Command::ReadLog { from, max, reply } => {
                let log = self.state.log();
                let response = match log.read(from, max) {
                    Ok(records) => Response::LogRecords {
                        records,
                        first_index: log.first_index(),
                        last_index: log.applied_index(),
                    },
                    Err(first_index) => error_response(
                        Status::Compacted,
                        format!("records before {first_index} left the retention window"),
                    ),
                };
                let _ = reply.send(response);
            }
            Command::Watch { from, sink } => {
                self.pending.watchers.push(Watcher {
                    next_index: from,
                    sink,
                });
                self.pending.on_applied(&self.state, self.raw.leader());
            }
            Command::Admin {
                request,
                deadline,
                reply,
            } => self.handle_admin(request, deadline, reply, true),
            Command::Submit { command } => self.propose_command(command),
            Command::RegistersFailed { reason } => self.report_fatal(FatalError::Registers(reason)),
            Command::AwaitApplied {
                index,
                deadline,
                reply,
            } => {
                self.pending.admin.push(PendingAdmin {
                    deadline,
                    reply,
                    wait: AdminWait::Applied { index },
                    description: format!("applying index {index} locally"),
                    retry: None,
                });
                self.pending.on_applied(&self.state, self.raw.leader());
            }
        }
    }

    pub(super) fn next_request_id(&mut self) -> u64 {
        self.next_request_id = self.next_request_id.wrapping_add(1);
        self.next_request_id
    }

    /// A leader whose state came from a daemon that ran no registers enables them through the
    /// log (once a second until applied).
    fn maybe_enable_registers(&mut self, now: Instant) {
        if self.state.registers().is_enabled() || self.state.members().next().is_none() {
            return;
        }
        let due = self
            .registers_enable_proposed_at
            .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(1));
        if due {
            self.registers_enable_proposed_at = Some(now);
            info!("enabling the registers (this state comes from a daemon that ran none)");
            self.propose_command(StateCommand::RegistersEnabled);
        }
    }

    pub(super) fn propose_command(&mut self, command: StateCommand) {
        if let Err(err) = self.raw.propose(encode_command(&command)) {
            debug!(%err, ?command, "could not propose a state command");
        }
    }

    fn process_ready(&mut self) -> Result<(), FatalError> {
        let mut ready = self.raw.ready();
        if let Some(soft) = ready.soft_state() {
            info!(role = ?soft.role, leader = ?soft.leader, "role changed");
            if soft.role == Role::Leader {
                self.failure.became_leader(Instant::now(), &self.state);
            }
        }
        for message in ready.take_messages() {
            self.transport.send(message);
        }
        // The epoch of an applied change that removed this node, acted on once the Ready is done.
        let mut removed_at = None;
        // The snapshot is stored with the rest of the batch (`ready.write` below); if the node
        // stops before that, it restarts from its older state and the leader sends it again.
        if let Some(snapshot) = ready.snapshot() {
            let restored = ReplicatedState::decode_image(&snapshot.data, self.config.retention())?;
            info!(
                index = snapshot.meta.index,
                "installed a snapshot from the leader"
            );
            self.snapshot_index = snapshot.meta.index;
            let was_member = self.state.member(self.id).is_some();
            self.state = restored;
            self.membership_replaced();
            if was_member && self.state.member(self.id).is_none() {
                removed_at = Some(self.state.epoch());
            }
        }
        // Committed entries are already durable here (the core hands out nothing ahead of the
        // local log), so they are applied and answered before this batch's fsync instead of
        // waiting one more fsync period for it.
        let mut membership_moved = false;
        let mut registers_moved = false;
        let now = Instant::now();
        for entry in &ready.take_committed_entries() {
            let was_member = self.state.member(self.id).is_some();
            let applied = self.state.apply(entry);
            if !self.pending.admin.is_empty() {
                self.pending.entry_applied(entry.index, entry.term, now);
            }
            match applied {
                Applied::Nothing => {}
                Applied::Proposal {
                    origin,
                    request_id,
                    index,
                } => {
                    if origin == self.id {
                        self.pending.proposal_applied(request_id, index);
                    }
                }
                Applied::MembershipChanged { index, touched } => {
                    membership_moved = true;
                    self.journal
                        .record(index, self.state.ring().epoch(), &touched);
                    self.failure
                        .membership_changed(index, &touched, &self.state, Instant::now());
                    if was_member && self.state.member(self.id).is_none() {
                        removed_at.get_or_insert(index);
                    }
                }
                Applied::RegistersChanged => registers_moved = true,
            }
        }
        for read in ready.take_read_states() {
            if let Ok(bytes) = <[u8; 8]>::try_from(read.context.as_slice()) {
                self.pending
                    .read_confirmed(u64::from_le_bytes(bytes), read.index);
            }
        }
        if membership_moved {
            self.membership_changed();
        } else if registers_moved {
            self.registers_changed();
        }
        // Readers see what was just answered before the loop blocks in fsync.
        self.publish();
        self.pending.on_applied(&self.state, self.raw.leader());
        let written = ready.write(&mut self.storage)?;
        let mut synced = written.sync(&mut self.storage)?;
        for message in synced.take_persisted_messages() {
            self.transport.send(message);
        }
        self.raw.advance(synced);
        if let Some(epoch) = removed_at {
            self.enter_removed(epoch, "it applied the entry that removes it");
        }
        Ok(())
    }

    /// Publishes the membership after applied changes, in O(change) when a spare view is free.
    fn membership_changed(&mut self) {
        let spare = self
            .spare_membership
            .take()
            .and_then(|spare| Arc::try_unwrap(spare).ok());
        // A reader still holding the spare: copy the current view instead (O(members), but a
        // copy, not a rebuild).
        let mut next = spare.unwrap_or_else(|| (*self.membership).clone());
        if !next.catch_up(&self.state, &self.journal) {
            next = MembershipView::of(&self.state, self.journal.clone());
        }
        let touched = self.journal.since(self.membership.epoch);
        self.spare_membership = Some(std::mem::replace(&mut self.membership, Arc::new(next)));
        self.registers_changed();
        match touched {
            Some(changes) => self.sync_peers_of(changes.touched),
            None => self.sync_peers(),
        }
    }

    /// The whole state was replaced (a snapshot from the leader): its history is unknown, so
    /// the journal starts over and the view is built from the state.
    fn membership_replaced(&mut self) {
        self.journal = MembershipJournal::new(self.state.epoch(), self.state.ring().epoch());
        self.membership = Arc::new(MembershipView::of(&self.state, self.journal.clone()));
        self.spare_membership = None;
        self.failure.state_replaced();
        // Another history: published whole, not by revision.
        self.registers = Arc::new(self.state.registers().clone());
        self.sync_peers();
    }

    fn registers_changed(&mut self) {
        // By revision: comparing the planes would compare whole rings at every change.
        if self.registers.revision() != self.state.registers().revision() {
            self.registers = Arc::new(self.state.registers().clone());
        }
    }

    /// [`Driver::sync_peers`] for the members named by the changes since the last sync only:
    /// O(change) instead of an address parse per member.
    fn sync_peers_of(&mut self, touched: impl IntoIterator<Item = NodeId>) {
        for id in touched.into_iter().filter(|id| *id != self.id) {
            let wanted = self
                .state
                .member(id)
                .and_then(|member| member.address.parse::<SocketAddr>().ok());
            match wanted {
                Some(addr) => {
                    if self.peers.insert(id, addr) != Some(addr) {
                        self.transport.set_peer(id, addr);
                    }
                }
                None => {
                    if self.peers.remove(&id).is_some() {
                        self.transport.remove_peer(id);
                    }
                }
            }
        }
    }

    /// Keeps the transport's peer table equal to the member list.
    fn sync_peers(&mut self) {
        let wanted: BTreeMap<NodeId, SocketAddr> = self
            .state
            .members()
            .filter(|m| m.id != self.id)
            .filter_map(|m| m.address.parse().ok().map(|addr| (m.id, addr)))
            .collect();
        for (id, addr) in &wanted {
            if self.peers.get(id) != Some(addr) {
                self.transport.set_peer(*id, *addr);
            }
        }
        for id in self.peers.keys() {
            if !wanted.contains_key(id) {
                self.transport.remove_peer(*id);
            }
        }
        self.peers = wanted;
    }

    fn maybe_snapshot(&mut self) -> Result<(), FatalError> {
        let applied = self.state.applied_index();
        let log_bytes = self.raw.log_bytes() as u64;
        if applied >= self.snapshot_index + self.config.snapshot_every_entries
            || (log_bytes >= self.config.snapshot_every_bytes && applied > self.snapshot_index)
        {
            self.take_snapshot()?;
        }
        Ok(())
    }

    pub(super) fn take_snapshot(&mut self) -> Result<u64, FatalError> {
        let applied = self.state.applied_index();
        if applied <= self.snapshot_index {
            return Ok(self.snapshot_index);
        }
        let compacted = self
            .raw
            .compact(applied, self.state.encode_image())
            .map_err(|err| FatalError::Raft(err.to_string()))?;
        // None: a leader's snapshot already replaced the log; it arrives in the next Ready.
        let Some(snapshot) = compacted else {
            return Ok(self.snapshot_index);
        };
        self.storage.save_snapshot(&snapshot)?;
        self.storage.compact(snapshot.meta.index)?;
        self.snapshot_index = snapshot.meta.index;
        debug!(index = applied, "took a snapshot and compacted the log");
        Ok(applied)
    }

    fn begin_shutdown(&mut self) {
        if self.shutdown_deadline.is_some() {
            return;
        }
        let election = Duration::from_millis(
            self.config.raft.tick_ms * u64::from(self.config.raft.election_timeout_ticks),
        );
        self.shutdown_deadline = Some(Instant::now() + 2 * election);
        if self.raw.role() == Role::Leader {
            if let Some(target) = self.best_transferee() {
                info!(target, "shutting down: handing leadership over first");
                if let Err(err) = self.raw.transfer_leader(target) {
                    warn!(%err, "leadership transfer refused; stopping anyway");
                }
            }
        }
        self.publish();
    }

    /// The most caught-up other voter, by the core's view of its progress.
    fn best_transferee(&self) -> Option<NodeId> {
        let status = self.raw.status();
        status
            .progress
            .iter()
            .filter(|(id, _)| **id != self.id && status.conf_state.voters.contains(id))
            .max_by_key(|(id, progress)| (progress.match_index, std::cmp::Reverse(**id)))
            .map(|(id, _)| *id)
    }

    pub(super) fn publish(&mut self) {
        let status = self.raw.status();
        let role = match status.role {
            Role::Leader => NodeRole::Leader,
            Role::Candidate | Role::PreCandidate => NodeRole::Candidate,
            Role::Follower => NodeRole::Follower,
            Role::Learner => NodeRole::Learner,
        };
        let info = StatusInfo {
            node_id: self.id,
            name: self.config.display_name(),
            cluster_id: self.state.cluster_id(),
            role,
            term: status.term,
            leader_id: status.leader.unwrap_or(0),
            commit_index: status.commit,
            applied_index: self.state.applied_index(),
            last_index: status.last_index,
            snapshot_index: self.snapshot_index,
            epoch: self.state.epoch(),
            member_count: u32::try_from(self.membership.members.len()).unwrap_or(u32::MAX),
            daemon_version: env!("CARGO_PKG_VERSION").to_string(),
            // Filled in by the handle when answered: counting the sets that wait is
            // O(moving sets), too much for every publish.
            registers: RegistersStatus::default(),
        };
        let current = self.view_tx.borrow().clone();
        let shutting_down = self.shutdown_deadline.is_some();
        let removed = self.removed.as_ref().map(|removed| removed.epoch);
        if current.status == info
            && Arc::ptr_eq(&current.membership, &self.membership)
            && Arc::ptr_eq(&current.registers, &self.registers)
            && current.shutting_down == shutting_down
            && current.removed == removed
        {
            return;
        }
        let view = ClusterView {
            status: info,
            membership: self.membership.clone(),
            registers: self.registers.clone(),
            applied_index: self.state.applied_index(),
            shutting_down,
            removed,
        };
        self.view_tx.send_replace(Arc::new(view));
    }

    /// A fatal error met while handling an event (the admin snapshot): the loop stops on it at
    /// the end of the current event, through `stop_on_fatal` like every other fatal error.
    pub(super) fn report_fatal(&mut self, err: FatalError) {
        self.fatal.get_or_insert(err);
    }

    /// The one way the node stops on a fatal error (a storage failure, a leader's snapshot that
    /// cannot be installed, the core refusing what the shell asks): one ERROR line naming the
    /// error, every waiting client answered, readers told the node is stopping, and the loop
    /// ends with the error, which `ringraftd run` turns into a non-zero exit. Nothing is retried.
    fn stop_on_fatal(&mut self, err: FatalError) -> FatalError {
        error!(%err, "fatal error: stopping the node");
        self.pending.fail_all(
            Status::Internal,
            &format!("the node stopped on a fatal error: {err}"),
        );
        self.shutdown_deadline.get_or_insert_with(Instant::now);
        self.publish();
        err
    }
}

pub(super) fn propose_error_response(err: &ProposeError) -> Response {
    let status = match err {
        ProposeError::NoLeader => Status::NoLeader,
        ProposeError::NotLeader { .. } => Status::NotLeader,
        ProposeError::TransferInProgress => Status::TransferInProgress,
        ProposeError::ConfChangePending => Status::Conflict,
        ProposeError::InvalidConfChange(_) => Status::InvalidArgument,
        ProposeError::TooManyUncommitted => Status::Busy,
        ProposeError::Learner | ProposeError::NotVoter(_) => Status::InvalidArgument,
    };
    error_response(status, err.to_string())
}
