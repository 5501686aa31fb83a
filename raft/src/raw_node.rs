//! `RawNode`: the state, the public API, and the Ready / advance cycle. The protocol itself lives
//! in sibling modules (`election`, `replication`, `read_only`, `snapshot`, `membership`), each an
//! `impl RawNode` block for one concern.

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::Config;
use crate::errors::{ProposeError, RaftError};
use crate::log::RaftLog;
use crate::mutants::Mutant;
use crate::progress::Progress;
use crate::quorum;
use crate::read_only::ReadOnly;
use crate::ready::{Ready, Synced};
use crate::snapshot::IncomingSnapshot;
use crate::status::{PeerProgress, Status};
use crate::types::{
    ConfChange, ConfState, Entry, EntryPayload, HardState, LogIndex, Message, MessageBody, NodeId,
    ReadState, Role, Snapshot, SnapshotMeta, SoftState, Term,
};

/// What the shell loaded from durable storage (all empty/default for a brand-new node).
#[derive(Debug, Clone, Default)]
pub struct InitialState {
    pub hard_state: HardState,
    /// The latest snapshot's metadata, if any. A fresh cluster is bootstrapped by passing
    /// `SnapshotMeta { index: 0, term: 0, conf_state: <initial voters> }` on every initial voter.
    /// A node that will join an existing cluster passes `None` (empty configuration: it never
    /// campaigns until a leader adds it and sends it the configuration in a snapshot).
    pub snapshot: Option<SnapshotMeta>,
    /// Snapshot data if a snapshot exists (the core keeps it to send to lagging followers).
    pub snapshot_data: Vec<u8>,
    /// Entries after the snapshot, contiguous, in index order.
    pub entries: Vec<Entry>,
    /// Highest index the state machine has already applied (>= snapshot index); committed
    /// entries above it will be handed out again in `Ready::committed_entries`.
    pub applied: LogIndex,
}

/// Bound on the bytes of committed entries handed out in one Ready (at least one entry goes).
const COMMITTED_BYTES_PER_READY_MAX: usize = 8 << 20;

/// What the in-flight Ready asked the shell to make durable and apply.
#[derive(Debug)]
struct ReadyInFlight {
    number: u64,
    hard_state: Option<HardState>,
    snapshot_index: Option<LogIndex>,
    last_entry: Option<(LogIndex, Term)>,
    applied_to: Option<LogIndex>,
}

/// A Raft node without IO: feed it inputs, drain `Ready`s, acknowledge them with `advance`.
pub struct RawNode {
    pub(crate) config: Config,
    pub(crate) term: Term,
    pub(crate) vote: Option<NodeId>,
    pub(crate) role: Role,
    pub(crate) leader: Option<NodeId>,
    /// A learner refused a candidate's vote request for its older log since it last heard from
    /// a leader: it then campaigns too (see [`RawNode::is_promotable`]).
    pub(crate) refused_staler_candidate: bool,
    pub(crate) log: RaftLog,
    /// Seen configuration generation, to notice when the configuration in effect changed.
    pub(crate) conf_generation: u64,
    /// The latest snapshot this node holds (sent to followers that are too far behind).
    pub(crate) snapshot: Arc<Snapshot>,
    /// A snapshot received from the leader, to hand to the shell in the next Ready.
    pub(crate) snapshot_to_install: Option<Snapshot>,
    pub(crate) incoming_snapshot: Option<IncomingSnapshot>,
    /// On the leader: every other member of the configuration.
    pub(crate) progress: BTreeMap<NodeId, Progress>,
    pub(crate) votes: BTreeMap<NodeId, bool>,
    /// Ticks since the last election timeout reset (follower) or CheckQuorum round (leader).
    pub(crate) election_elapsed: u32,
    pub(crate) heartbeat_elapsed: u32,
    pub(crate) randomized_election_timeout: u32,
    /// Ticks since this core started: the clock of the leader lease and of the startup guard.
    pub(crate) ticks: u64,
    rng: ChaCha8Rng,
    pub(crate) lead_transferee: Option<NodeId>,
    pub(crate) transfer_elapsed: u32,
    /// On the leader: bytes of entries of its term that are not yet committed.
    pub(crate) uncommitted_bytes: usize,
    pub(crate) read_only: ReadOnly,
    /// On the leader: proposals arrived; appends go out when the next Ready is cut (batching).
    pub(crate) broadcast_pending: bool,
    msgs: Vec<Message>,
    msgs_after_persist: Vec<Message>,
    pub(crate) read_states: Vec<ReadState>,
    prev_soft_state: SoftState,
    /// The hard state last handed to the shell, and the one known durable.
    prev_hard_state: HardState,
    pub(crate) persisted_hard_state: HardState,
    in_flight: Option<ReadyInFlight>,
    next_ready_number: u64,
}

impl RawNode {
    pub fn new(config: Config, initial: InitialState) -> Result<RawNode, RaftError> {
        validate_config(&config)?;
        let snapshot_meta = initial.snapshot.unwrap_or_default();
        let last_term = initial
            .entries
            .last()
            .map(|e| e.term)
            .unwrap_or(snapshot_meta.term);
        if initial.hard_state.term < last_term {
            return Err(RaftError::InvalidInitialState(format!(
                "term {} is below the last log term {last_term}",
                initial.hard_state.term
            )));
        }
        let log = RaftLog::new(
            &snapshot_meta,
            initial.entries,
            initial.hard_state.commit.max(snapshot_meta.index),
            initial.applied,
        )
        .map_err(RaftError::InvalidInitialState)?;
        let rng = ChaCha8Rng::seed_from_u64(config.seed);
        let hard_state = HardState {
            term: initial.hard_state.term,
            vote: initial.hard_state.vote,
            commit: log.committed,
        };
        let mut node = RawNode {
            term: hard_state.term,
            vote: hard_state.vote,
            role: Role::Follower,
            leader: None,
            refused_staler_candidate: false,
            conf_generation: log.confs.generation,
            log,
            snapshot: Arc::new(Snapshot {
                meta: snapshot_meta,
                data: initial.snapshot_data,
            }),
            snapshot_to_install: None,
            incoming_snapshot: None,
            progress: BTreeMap::new(),
            votes: BTreeMap::new(),
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            randomized_election_timeout: config.election_timeout_ticks,
            ticks: 0,
            rng,
            lead_transferee: None,
            transfer_elapsed: 0,
            uncommitted_bytes: 0,
            read_only: ReadOnly::default(),
            broadcast_pending: false,
            msgs: Vec::new(),
            msgs_after_persist: Vec::new(),
            read_states: Vec::new(),
            prev_soft_state: SoftState {
                leader: None,
                role: Role::Follower,
            },
            prev_hard_state: hard_state,
            persisted_hard_state: hard_state,
            in_flight: None,
            next_ready_number: 1,
            config,
        };
        node.role = node.follower_role();
        node.prev_soft_state = node.soft_state();
        node.reset_election_timer();
        Ok(node)
    }

    // ---- getters -------------------------------------------------------------------------

    pub fn id(&self) -> NodeId {
        self.config.id
    }

    pub fn term(&self) -> Term {
        self.term
    }

    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The latest configuration in the log (the one in effect, committed or not).
    pub fn conf_state(&self) -> &ConfState {
        self.log.conf_state()
    }

    /// Bytes of log entries held in memory: a shell compacts by these as well as by count.
    pub fn log_bytes(&self) -> usize {
        self.log.bytes()
    }

    pub fn status(&self) -> Status {
        let progress = self
            .progress
            .iter()
            .map(|(&id, pr)| {
                let view = PeerProgress {
                    match_index: pr.match_index,
                    next_index: pr.next_index,
                    state: pr.state,
                    recent_active: pr.recent_active,
                    inflight_msgs: pr.inflights.count(),
                };
                (id, view)
            })
            .collect();
        Status {
            id: self.id(),
            term: self.term,
            vote: self.vote,
            role: self.role,
            leader: self.leader,
            commit: self.log.committed,
            applied: self.log.applied,
            persisted_index: self.log.persisted,
            snapshot_index: self.log.snapshot_index().max(self.snapshot.meta.index),
            log_first_index: self.log.first_index(),
            log_bytes: self.log.bytes(),
            last_index: self.log.last_index(),
            conf_state: self.log.conf_state().clone(),
            progress,
            lead_transferee: self.lead_transferee,
        }
    }

    // ---- inputs ------------------------------------------------------------------------

    /// Advance the logical clock by one tick.
    pub fn tick(&mut self) {
        self.ticks += 1;
        match self.role {
            Role::Leader => self.tick_leader(),
            _ => self.tick_election(),
        }
    }

    /// Append application data. On the leader it is appended now; on a follower or learner it is
    /// forwarded to the known leader, which may still drop it: the shell learns of success only
    /// by seeing the entry committed.
    pub fn propose(&mut self, data: Vec<u8>) -> Result<(), ProposeError> {
        if self.role != Role::Leader {
            let leader = self.leader.ok_or(ProposeError::NoLeader)?;
            let entries = vec![EntryPayload::Normal(data)];
            self.send(leader, MessageBody::Propose { entries });
            return Ok(());
        }
        if self.lead_transferee.is_some() {
            return Err(ProposeError::TransferInProgress);
        }
        self.append_proposals(vec![EntryPayload::Normal(data)])
    }

    /// Membership changes are decided by the leader only (so that the caller learns whether the
    /// change is valid); a follower answers `NotLeader` with its leader hint.
    pub fn propose_conf_change(&mut self, change: ConfChange) -> Result<(), ProposeError> {
        self.propose_conf_change_on_leader(change)
    }

    /// Linearizable read: a `ReadState` with this context appears in a later Ready; the read is
    /// linearizable once the shell has applied up to its index.
    pub fn read_index(&mut self, context: Vec<u8>) -> Result<(), ProposeError> {
        self.request_read_index(context)
    }

    pub fn transfer_leader(&mut self, to: NodeId) -> Result<(), ProposeError> {
        self.start_leader_transfer(to)
    }

    /// Start an election now (as if the election timeout had passed), e.g. to speed up tests
    /// or a bootstrap. Goes through PreVote when it is enabled.
    pub fn campaign(&mut self) -> Result<(), ProposeError> {
        if !self.is_promotable() {
            return Err(ProposeError::Learner);
        }
        if self.role != Role::Leader {
            self.start_election(false);
        }
        Ok(())
    }

    /// A follower or learner forgets the leader it follows and stays a leaderless follower in
    /// its term, without campaigning (as etcd raft's `ForgetLeader`): it then grants votes at
    /// once instead of waiting out the election timeout. For an operator who knows the leader is
    /// gone, and for tests that elect someone by hand. No-op on a leader or candidate.
    pub fn forget_leader(&mut self) {
        if matches!(self.role, Role::Follower | Role::Learner) {
            self.leader = None;
        }
    }

    /// The transport could not deliver to `id`: stop pipelining to it and probe instead.
    pub fn report_unreachable(&mut self, id: NodeId) {
        if self.role != Role::Leader {
            return;
        }
        if let Some(pr) = self.progress.get_mut(&id) {
            if pr.state == crate::progress::ProgressState::Replicate {
                pr.become_probe();
            }
        }
    }

    /// Feed a message from a peer. Stale, foreign or malformed messages are ignored (peer input
    /// is checked before use, e.g. `is_well_formed_append`): nothing a peer sends is the shell's
    /// mistake, so stepping cannot fail and returns nothing to handle.
    pub fn step(&mut self, msg: Message) {
        self.step_message(msg);
        self.check_conf_change();
    }

    // ---- output ------------------------------------------------------------------------

    /// True if `ready()` has something to hand out. Always false while a Ready is in flight.
    pub fn has_ready(&self) -> bool {
        if self.in_flight.is_some() {
            return false;
        }
        self.soft_state() != self.prev_soft_state
            || self.hard_state() != self.prev_hard_state
            || self.log.has_unstable()
            || self.snapshot_to_install.is_some()
            || !self.msgs.is_empty()
            || !self.msgs_after_persist.is_empty()
            || self.log.has_committed_to_apply()
            || !self.read_states.is_empty()
            || self.broadcast_pending
            || self.read_only.has_unsent_round()
    }

    /// The next batch of work for the shell (see `Ready` for the order). Only one Ready is in
    /// flight at a time: until it is acknowledged with `advance`, this returns an empty Ready
    /// numbered 0.
    pub fn ready(&mut self) -> Ready {
        if self.in_flight.is_some() {
            return Ready::default();
        }
        self.flush_broadcasts();
        let number = self.next_ready_number;
        self.next_ready_number += 1;
        let mut ready = Ready {
            number,
            ..Ready::default()
        };
        let soft_state = self.soft_state();
        if soft_state != self.prev_soft_state {
            ready.soft_state = Some(soft_state);
            self.prev_soft_state = soft_state;
        }
        let hard_state = self.hard_state();
        if hard_state != self.prev_hard_state {
            ready.must_sync |= hard_state.term != self.prev_hard_state.term
                || hard_state.vote != self.prev_hard_state.vote;
            ready.hard_state = Some(hard_state);
            self.prev_hard_state = hard_state;
        }
        ready.snapshot = self.snapshot_to_install.take();
        ready.entries = self.log.unstable_entries().to_vec();
        self.log.mark_handed_out();
        ready.must_sync |= ready.snapshot.is_some() || !ready.entries.is_empty();
        ready.messages = std::mem::take(&mut self.msgs);
        ready.persisted_messages = self.take_persisted_messages();
        ready.committed_entries = self
            .log
            .next_committed_entries(COMMITTED_BYTES_PER_READY_MAX);
        ready.read_states = std::mem::take(&mut self.read_states);
        // The contract shells rely on (see `Ready::snapshot`): a snapshot replaces the state
        // machine, so nothing may be applied on top of it in the same batch.
        assert!(
            ready.snapshot.is_none() || ready.committed_entries.is_empty(),
            "a Ready with a snapshot carries no committed entries"
        );
        self.in_flight = Some(ReadyInFlight {
            number,
            hard_state: ready.hard_state,
            snapshot_index: ready.snapshot.as_ref().map(|s| s.meta.index),
            last_entry: ready.entries.last().map(|e| (e.index, e.term)),
            applied_to: ready.committed_entries.last().map(|e| e.index),
        });
        ready
    }

    /// Acknowledge the Ready in flight: `synced` proves its state durable; its messages are
    /// sent and its committed entries applied. Acknowledging anything but the Ready in flight is
    /// a bug in the shell.
    pub fn advance(&mut self, synced: Synced) {
        let ready_number = synced.number;
        if ready_number == 0 {
            return;
        }
        let done = self
            .in_flight
            .take()
            .expect("advance without a Ready in flight");
        assert_eq!(
            done.number, ready_number,
            "advance of a Ready not in flight"
        );
        if let Some(hard_state) = done.hard_state {
            self.persisted_hard_state = hard_state;
        }
        if let Some(index) = done.snapshot_index {
            self.log.snapshot_persisted(index);
        }
        if let Some((index, term)) = done.last_entry {
            self.log.stable_to(index, term);
        }
        if let Some(index) = done.applied_to {
            self.log.applied_to(index);
        }
        match self.role {
            Role::Leader => self.maybe_commit_and_broadcast(),
            Role::Candidate => self.count_own_durable_vote(),
            _ => {}
        }
        self.check_conf_change();
    }

    /// The messages to send once this Ready is durable, minus acknowledgements addressed to a
    /// leader of a term this node has since left. Such an acknowledgement may promise entries
    /// that a newer leader's append replaced in this same batch, so they never reach the disk;
    /// the newer term already deposes its addressee, so dropping it costs nothing and keeps the
    /// durability rule literal: every acknowledgement that leaves describes the disk. (Votes
    /// stay: a vote for an older term is kept by the newer term on disk, as no vote in the older
    /// term can follow it.)
    fn take_persisted_messages(&mut self) -> Vec<Message> {
        let term = self.term;
        let mut messages = std::mem::take(&mut self.msgs_after_persist);
        messages.retain(|m| {
            let acknowledgement = matches!(
                m.body,
                MessageBody::AppendResponse { .. } | MessageBody::InstallSnapshotResponse { .. }
            );
            !(acknowledgement && m.term < term)
        });
        messages
    }

    // ---- shared helpers for the protocol modules ------------------------------------------

    pub(crate) fn soft_state(&self) -> SoftState {
        SoftState {
            leader: self.leader,
            role: self.role,
        }
    }

    pub(crate) fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.log.committed,
        }
    }

    /// A message that may leave right away.
    pub(crate) fn send(&mut self, to: NodeId, body: MessageBody) {
        self.send_with_term(to, self.term, body);
    }

    pub(crate) fn send_with_term(&mut self, to: NodeId, term: Term, body: MessageBody) {
        self.msgs.push(Message {
            from: self.id(),
            to,
            term,
            body,
        });
    }

    /// A message that promises durable state (a vote, an append acknowledgement): the shell
    /// sends it only after the Ready that carries it is durable (thesis §3.8 / §10.2.1).
    pub(crate) fn send_after_persist(&mut self, to: NodeId, body: MessageBody) {
        if self.config.mutated(Mutant::AckBeforeFsync) {
            self.send(to, body);
            return;
        }
        self.msgs_after_persist.push(Message {
            from: self.id(),
            to,
            term: self.term,
            body,
        });
    }

    pub(crate) fn reset_election_timer(&mut self) {
        self.election_elapsed = 0;
        let timeout = self.config.election_timeout_ticks;
        self.randomized_election_timeout = self.rng.gen_range(timeout..2 * timeout);
    }

    /// Follower or Learner, by this node's place in the configuration in effect.
    pub(crate) fn follower_role(&self) -> Role {
        if quorum::is_learner(self.log.conf_state(), self.id()) {
            Role::Learner
        } else {
            Role::Follower
        }
    }

    /// The configuration that votes, commits, CheckQuorum and reads are counted under: the one
    /// in effect (only a mutant drops the outgoing half of a joint configuration).
    pub(crate) fn voting_conf(&self) -> std::borrow::Cow<'_, ConfState> {
        let conf = self.log.conf_state();
        if self.config.mutated(Mutant::JointIgnoresOutgoing) && !conf.voters_outgoing.is_empty() {
            let mut incoming_only = conf.clone();
            incoming_only.voters_outgoing.clear();
            return std::borrow::Cow::Owned(incoming_only);
        }
        std::borrow::Cow::Borrowed(conf)
    }

    /// True if this node may campaign: it votes in the configuration its elections are counted
    /// under (see [`RawNode::election_conf`]), or it is a learner that a candidate needed and
    /// refused for an older log.
    ///
    /// Such a learner may hold the log that has to win. A candidate asks only the voters of its
    /// own latest configuration; when that configuration is an uncommitted promotion of this
    /// learner which our log (of a later leader) has already overwritten, the candidate needs our
    /// vote and can never get it, while the voters of our configuration, who would elect our
    /// log, never campaign with it: with one voter faulty nobody is ever elected. So the learner
    /// campaigns, counted under its own configuration without its own vote, until it hears from
    /// a leader. That is as safe as any campaign with this log and configuration (the quorum
    /// argument never uses the candidate's own vote); once elected it steps down as soon as its
    /// term's first entry commits (see `on_commit_membership`), handing over to a voter.
    pub(crate) fn is_promotable(&self) -> bool {
        let me = self.id();
        if quorum::is_voter(&self.election_conf(), me) {
            return true;
        }
        self.refused_staler_candidate
            && quorum::is_learner(self.log.conf_state(), me)
            && !self.config.mutated(Mutant::NeededLearnerNeverCampaigns)
    }

    /// The configuration this node's own campaigns are counted under: the one in effect, except
    /// for a node that its latest, not yet committed configuration entry removed entirely.
    ///
    /// Only the leader that appended such an entry can hold it (a leader stops replicating to a
    /// node the moment it appends the entry that removes it). If that leader crashed before the
    /// entry reached anyone, it holds the freshest log but is no voter of its latest
    /// configuration, so it would never campaign while refusing the others' votes for their
    /// shorter logs: with a two-voter outgoing half, or one faulty voter, nobody could ever be
    /// elected. Such a node still campaigns (thesis §4.2.2: it "might still be needed until the
    /// Cnew entry is committed"), counted under the configuration before that entry. That is
    /// safe: any quorum of it meets any quorum of the next configuration (every change is one
    /// voter or one joint step), and a later leader's committed entry of a higher term, on a
    /// quorum of that next configuration, makes every such quorum refuse this node's log.
    pub(crate) fn election_conf(&self) -> std::borrow::Cow<'_, ConfState> {
        let latest = self.log.conf_state();
        let me = self.id();
        let latest_index = self.log.confs.latest_index();
        let removed_by_uncommitted_entry = latest_index > self.log.committed
            && !quorum::members(latest).contains(&me)
            && !self.config.mutated(Mutant::RemovedLeaderNeverCampaigns);
        if removed_by_uncommitted_entry {
            let previous = self.log.confs.at(latest_index - 1);
            if quorum::is_voter(previous, me) {
                return std::borrow::Cow::Owned(previous.clone());
            }
        }
        self.voting_conf()
    }

    /// React if the configuration in effect changed since we last looked.
    pub(crate) fn check_conf_change(&mut self) {
        if self.log.confs.generation != self.conf_generation {
            self.conf_generation = self.log.confs.generation;
            self.on_conf_changed();
        }
    }
}

fn validate_config(config: &Config) -> Result<(), RaftError> {
    let fail = |reason: &str| Err(RaftError::InvalidConfig(reason.to_string()));
    if config.id == 0 {
        return fail("node id 0 is invalid");
    }
    if config.heartbeat_interval_ticks == 0 {
        return fail("heartbeat_interval_ticks must be at least 1");
    }
    if config.election_timeout_ticks <= config.heartbeat_interval_ticks {
        return fail("election_timeout_ticks must exceed heartbeat_interval_ticks");
    }
    if config.lease_read && !config.check_quorum {
        return fail("lease_read needs check_quorum");
    }
    if config.lease_read && config.clock_drift_percent_max >= 100 {
        return fail("clock_drift_percent_max must be below 100");
    }
    if config.lease_read && config.lease_ticks() == 0 {
        return fail("election_timeout_ticks is too short for a lease under this clock drift");
    }
    if config.inflight_msgs_max == 0 || config.inflight_bytes_max == 0 {
        return fail("in-flight bounds must be at least 1");
    }
    if config.snapshot_chunk_bytes_max == 0 || config.append_bytes_max == 0 {
        return fail("message byte bounds must be at least 1");
    }
    Ok(())
}
