//! One member's follow-plane state machine: the upstream side (serving fetches from the served
//! log, long polls), the downstream side (a [`FetchSession`] on observers) and liveness.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use thiserror::Error;

use crate::config::{Config, ConfigError};
use crate::fetch::{FetchCounters, FetchSession, Refusal, SessionOutput};
use crate::liveness::{Liveness, LivenessDecision};
use crate::messages::{Digest, Message, RequestId};
use crate::served::{Served, ServedLog};
use crate::topology::{Topology, TopologyError};
use crate::types::{Entry, LogIndex, MembershipChange, NodeId, Role, Snapshot, Term};

/// Where a node starts: what it has applied (its durable state, from the shell).
#[derive(Debug, Clone, Default)]
pub struct Start {
    pub applied_index: LogIndex,
    pub applied_term: Term,
    /// The snapshot the applied state came from, if any: the node serves it to downstreams
    /// behind its tail.
    pub snapshot: Option<Snapshot>,
}

/// What the shell must carry out, drained with [`Node::poll_output`] after every input.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Output {
    /// Send `message` to `to` (over the follow-plane stream of the connection to `to`).
    Send { to: NodeId, message: Message },
    /// Committed entries, contiguous after what was applied before: apply them in order.
    Apply(Vec<Entry>),
    /// Replace the applied state with this snapshot (the next `Apply` follows its index).
    InstallSnapshot(Snapshot),
    /// The served tail is over its bounds: hand a snapshot of the applied state (at any index up
    /// to `applied_index`) to [`Node::set_snapshot`].
    SnapshotWanted { applied_index: LogIndex },
    /// The leader's liveness decision, to commit through the log.
    Liveness(LivenessDecision),
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum CommitError {
    #[error("committed entries must follow index {expected}, got {got}")]
    NotContiguous { expected: LogIndex, got: LogIndex },
    #[error("only voters and learners take commits from Raft")]
    NotRaftMember,
}

#[derive(Debug, Clone, Copy)]
struct Parked {
    request_id: RequestId,
    from: LogIndex,
    max_bytes: u64,
    since: u64,
}

/// Counters for the shell's metrics and the tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeCounters {
    pub entries_responses_sent: u64,
    /// Of those, answered at once rather than from a long poll (a downstream catching up).
    pub immediate_responses_sent: u64,
    pub snapshot_chunks_sent: u64,
    pub fetches_refused_full: u64,
    pub snapshot_fetches_refused: u64,
    pub digests_sent: u64,
    pub served_log_resets: u64,
}

pub struct Node {
    id: NodeId,
    config: Config,
    epoch: u64,
    topology: Arc<Topology>,
    /// This node's role in `topology`, kept with it (asked on every input).
    role: Option<Role>,
    now: u64,
    served: ServedLog,
    session: FetchSession,
    parked: BTreeMap<NodeId, Parked>,
    liveness: Liveness,
    leader: Option<NodeId>,
    last_digest_at: u64,
    last_digest_empty: bool,
    snapshot_wanted_at: Option<u64>,
    outputs: VecDeque<Output>,
    counters: NodeCounters,
}

impl Node {
    /// A node at `epoch` of `topology`. The topology is shared (`Arc`): a process holds one, and a
    /// simulator may hand the same one to many nodes; [`Node::apply_membership`] updates it in
    /// place when this node holds the only reference.
    pub fn new(
        id: NodeId,
        config: Config,
        epoch: u64,
        topology: Arc<Topology>,
        start: Start,
    ) -> Result<Node, ConfigError> {
        config.validate()?;
        let served = ServedLog::new(start.applied_index, start.applied_term, start.snapshot);
        let mut node = Node {
            id,
            session: FetchSession::new(served.last_index(), served.last_term()),
            served,
            config,
            epoch,
            role: topology.role(id),
            topology,
            now: 0,
            parked: BTreeMap::new(),
            liveness: Liveness::default(),
            leader: None,
            last_digest_at: 0,
            last_digest_empty: true,
            snapshot_wanted_at: None,
            outputs: VecDeque::new(),
            counters: NodeCounters::default(),
        };
        node.refresh_candidates();
        Ok(node)
    }

    // ---- getters --------------------------------------------------------------------------

    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn topology(&self) -> &Arc<Topology> {
        &self.topology
    }

    pub fn role(&self) -> Option<Role> {
        self.role
    }

    /// The last index applied (observers) or committed by Raft (voters and learners).
    pub fn applied_index(&self) -> LogIndex {
        match self.role() {
            Some(Role::Observer) => self.session.applied(),
            _ => self.served.last_index(),
        }
    }

    /// The highest commit index an upstream has told this observer about.
    pub fn commit_seen(&self) -> LogIndex {
        self.session.commit_seen()
    }

    /// The member this observer fetches from now.
    pub fn current_upstream(&self) -> Option<NodeId> {
        match self.role() {
            Some(Role::Observer) => self.session.current_upstream(),
            _ => None,
        }
    }

    pub fn on_primary(&self) -> bool {
        self.session.on_primary()
    }

    pub fn fetch_counters(&self) -> &FetchCounters {
        &self.session.counters
    }

    pub fn counters(&self) -> &NodeCounters {
        &self.counters
    }

    /// Downstreams with a fetch held here now.
    pub fn parked_downstreams(&self) -> usize {
        self.parked.len()
    }

    pub fn served_tail(&self) -> (usize, u64) {
        (self.served.tail_len(), self.served.tail_bytes())
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    // ---- inputs -----------------------------------------------------------------------------

    /// The shell learned who leads (voters: from Raft). Voters send their digests there, and the
    /// leader decides liveness.
    pub fn set_leader(&mut self, leader: Option<NodeId>) {
        self.leader = leader;
    }

    /// The membership at `epoch` (a committed change, or a snapshot's membership). Epochs only
    /// go forward; an older one is ignored.
    pub fn set_topology(&mut self, epoch: u64, topology: Arc<Topology>) {
        if epoch < self.epoch {
            return;
        }
        self.epoch = epoch;
        self.topology = topology;
        self.refresh_candidates();
    }

    /// Apply one committed membership change at `epoch` to this node's own tree, in place
    /// (O(fan_out · depth)) when the tree is not shared.
    pub fn apply_membership(
        &mut self,
        epoch: u64,
        change: MembershipChange,
    ) -> Result<(), TopologyError> {
        if epoch <= self.epoch {
            return Ok(());
        }
        Arc::make_mut(&mut self.topology).apply(change)?;
        self.epoch = epoch;
        self.refresh_candidates();
        Ok(())
    }

    /// Entries Raft committed on this voter or learner, in order: served to the downstreams.
    pub fn commit(&mut self, entries: &[Entry]) -> Result<(), CommitError> {
        if !matches!(self.role(), Some(Role::Voter | Role::Learner)) {
            return Err(CommitError::NotRaftMember);
        }
        for (expected, entry) in (self.served.last_index() + 1..).zip(entries) {
            if entry.index != expected {
                return Err(CommitError::NotContiguous {
                    expected,
                    got: entry.index,
                });
            }
        }
        if let Err(last) = self.served.append(entries) {
            unreachable!("entries checked contiguous after {last}");
        }
        self.after_growth();
        Ok(())
    }

    /// A snapshot of this node's applied state, to serve downstreams behind the tail.
    pub fn set_snapshot(&mut self, snapshot: Snapshot) {
        self.served.set_snapshot(snapshot);
        self.snapshot_wanted_at = None;
        self.served
            .trim(self.config.tail_entries_max, self.config.tail_bytes_max);
    }

    pub fn tick(&mut self) {
        self.now += 1;
        let now = self.now;
        // Long polls that waited long enough are answered empty: the downstream's heartbeat.
        let expired: Vec<(NodeId, Parked)> = self
            .parked
            .iter()
            .filter(|(_, p)| now.saturating_sub(p.since) >= self.config.park_ticks as u64)
            .map(|(&d, &p)| (d, p))
            .collect();
        for (downstream, parked) in expired {
            self.parked.remove(&downstream);
            self.send_entries(downstream, parked.request_id, Vec::new(), false);
        }
        if self.role() == Some(Role::Observer) {
            let mut out = SessionOutput::default();
            self.session.tick(&self.config, now, &mut out);
            self.absorb(out);
        }
        self.liveness_tick();
    }

    pub fn step(&mut self, from: NodeId, message: Message) {
        let now = self.now;
        match message {
            Message::Fetch {
                request_id,
                from: from_index,
                max_bytes,
                digest,
            } => {
                self.liveness.heard(from, now);
                if let Some(digest) = digest {
                    self.liveness.record_digest(from, digest, now);
                }
                self.on_fetch(from, request_id, from_index, max_bytes);
            }
            Message::SnapshotFetch {
                request_id,
                index,
                offset,
            } => {
                self.liveness.heard(from, now);
                self.on_snapshot_fetch(from, request_id, index, offset);
            }
            Message::Probe { request_id } => {
                self.liveness.heard(from, now);
                self.push_send(from, Message::ProbeAck { request_id });
            }
            Message::DigestOnly { digest } => {
                self.liveness.heard(from, now);
                self.liveness.record_digest(from, digest, now);
            }
            Message::ProbeAck { request_id } => {
                let mut out = SessionOutput::default();
                self.session
                    .on_probe_ack(from, request_id, &self.config, now, &mut out);
                self.absorb(out);
            }
            Message::Entries {
                request_id,
                entries,
                commit,
            } => self.observer_answer(|session, config, out| {
                session.on_entries(from, request_id, entries, commit, config, now, out)
            }),
            Message::SnapshotNeeded {
                request_id,
                index,
                term,
                total_bytes,
            } => self.observer_answer(|session, config, out| {
                session.on_snapshot_needed(
                    from,
                    request_id,
                    index,
                    term,
                    total_bytes,
                    config,
                    now,
                    out,
                )
            }),
            Message::SnapshotChunk {
                request_id,
                index,
                term,
                offset,
                total_bytes,
                data,
            } => self.observer_answer(|session, config, out| {
                session.on_snapshot_chunk(
                    from,
                    request_id,
                    index,
                    term,
                    offset,
                    total_bytes,
                    data,
                    config,
                    now,
                    out,
                )
            }),
        }
    }

    // ---- upstream side ----------------------------------------------------------------------

    fn on_fetch(&mut self, from: NodeId, request_id: RequestId, index: LogIndex, max_bytes: u64) {
        if !self.parked.contains_key(&from) && self.parked.len() >= self.config.downstreams_max {
            self.counters.fetches_refused_full += 1;
            return;
        }
        // A newer fetch from the same downstream replaces its parked one: one answer per fetch.
        self.parked.remove(&from);
        let max_bytes = max_bytes.min(self.config.fetch_bytes_max);
        match self.served.serve(index, max_bytes) {
            Served::Entries(entries) => self.send_entries(from, request_id, entries, true),
            Served::SnapshotNeeded(snapshot) => self.push_send(
                from,
                Message::SnapshotNeeded {
                    request_id,
                    index: snapshot.index,
                    term: snapshot.term,
                    total_bytes: snapshot.data.len() as u64,
                },
            ),
            Served::Nothing => {
                self.parked.insert(
                    from,
                    Parked {
                        request_id,
                        from: index,
                        max_bytes,
                        since: self.now,
                    },
                );
            }
        }
    }

    fn on_snapshot_fetch(
        &mut self,
        from: NodeId,
        request_id: RequestId,
        index: LogIndex,
        offset: u64,
    ) {
        let Some(snapshot) = self.served.snapshot().cloned() else {
            self.counters.snapshot_fetches_refused += 1;
            return;
        };
        let total = snapshot.data.len() as u64;
        if snapshot.index != index || offset > total {
            // We moved on to a newer snapshot: tell the downstream to start over with it.
            self.push_send(
                from,
                Message::SnapshotNeeded {
                    request_id,
                    index: snapshot.index,
                    term: snapshot.term,
                    total_bytes: total,
                },
            );
            return;
        }
        let end = total.min(offset + self.config.snapshot_chunk_bytes_max);
        let data: Arc<[u8]> = snapshot.data[offset as usize..end as usize].into();
        self.counters.snapshot_chunks_sent += 1;
        self.push_send(
            from,
            Message::SnapshotChunk {
                request_id,
                index,
                term: snapshot.term,
                offset,
                total_bytes: total,
                data,
            },
        );
    }

    fn send_entries(
        &mut self,
        to: NodeId,
        request_id: RequestId,
        entries: Vec<Entry>,
        immediate: bool,
    ) {
        self.counters.entries_responses_sent += 1;
        if immediate {
            self.counters.immediate_responses_sent += 1;
        }
        let commit = self.served.last_index();
        self.push_send(
            to,
            Message::Entries {
                request_id,
                entries,
                commit,
            },
        );
    }

    /// The served log grew: answer the long polls that can now be answered, bound the tail.
    fn after_growth(&mut self) {
        let ready: Vec<(NodeId, Parked)> = self
            .parked
            .iter()
            .filter(|(_, p)| p.from <= self.served.last_index())
            .map(|(&d, &p)| (d, p))
            .collect();
        for (downstream, parked) in ready {
            match self.served.serve(parked.from, parked.max_bytes) {
                Served::Entries(entries) => {
                    self.parked.remove(&downstream);
                    self.send_entries(downstream, parked.request_id, entries, false);
                }
                // We installed a snapshot past what the downstream asked for: it needs it too.
                Served::SnapshotNeeded(snapshot) => {
                    self.parked.remove(&downstream);
                    self.push_send(
                        downstream,
                        Message::SnapshotNeeded {
                            request_id: parked.request_id,
                            index: snapshot.index,
                            term: snapshot.term,
                            total_bytes: snapshot.data.len() as u64,
                        },
                    );
                }
                Served::Nothing => {}
            }
        }
        let over = self
            .served
            .trim(self.config.tail_entries_max, self.config.tail_bytes_max);
        let asked_lately = self
            .snapshot_wanted_at
            .is_some_and(|t| self.now.saturating_sub(t) < self.config.park_ticks as u64);
        if over && !asked_lately {
            self.snapshot_wanted_at = Some(self.now);
            self.outputs.push_back(Output::SnapshotWanted {
                applied_index: self.served.last_index(),
            });
        }
    }

    // ---- downstream side --------------------------------------------------------------------

    fn refresh_candidates(&mut self) {
        self.role = self.topology.role(self.id);
        let candidates = self.topology.candidates(self.id);
        let mut out = SessionOutput::default();
        self.session
            .set_candidates(candidates, &self.config, self.now, &mut out);
        self.absorb(out);
    }

    /// Carry out what the session asked: applied entries go to the shell and into the served
    /// log (this observer serves its own downstreams from them); a due digest rides on a fetch.
    /// An upstream's answer to this observer's fetch session; other roles fetch nothing, so
    /// they ignore it. A refused answer is counted by the session and changes nothing else.
    fn observer_answer(
        &mut self,
        answer: impl FnOnce(&mut FetchSession, &Config, &mut SessionOutput) -> Result<(), Refusal>,
    ) {
        if self.role() != Some(Role::Observer) {
            return;
        }
        let mut out = SessionOutput::default();
        let _refused = answer(&mut self.session, &self.config, &mut out);
        self.absorb(out);
    }

    fn absorb(&mut self, out: SessionOutput) {
        if let Some(snapshot) = out.install {
            self.served.install(snapshot.clone());
            self.outputs.push_back(Output::InstallSnapshot(snapshot));
            self.after_growth();
        }
        if !out.apply.is_empty() {
            // The session applies only contiguous entries; if that rule is ever broken (the
            // mutants do), stop serving downstream rather than serve a log with a hole.
            if self.served.append(&out.apply).is_err() {
                self.counters.served_log_resets += 1;
                self.served = ServedLog::new(self.session.applied(), 0, None);
            }
            self.outputs.push_back(Output::Apply(out.apply));
            self.after_growth();
        }
        for (to, mut message) in out.send {
            if let Message::Fetch { digest, .. } = &mut message {
                if self.digest_due() {
                    *digest = Some(self.next_digest());
                }
            }
            self.push_send(to, message);
        }
    }

    fn push_send(&mut self, to: NodeId, message: Message) {
        self.outputs.push_back(Output::Send { to, message });
    }

    // ---- liveness ---------------------------------------------------------------------------

    fn digest_due(&self) -> bool {
        self.now.saturating_sub(self.last_digest_at) >= self.config.digest_interval_ticks as u64
    }

    fn next_digest(&mut self) -> Digest {
        let digest = self
            .liveness
            .build_digest(self.id, &self.topology, &self.config, self.now);
        self.last_digest_at = self.now;
        self.last_digest_empty = digest.silent.is_empty() && digest.adopted_alive.is_empty();
        self.counters.digests_sent += 1;
        digest
    }

    fn liveness_tick(&mut self) {
        if self.leader == Some(self.id) {
            let decisions = self
                .liveness
                .decide(self.id, &self.topology, &self.config, self.now);
            self.outputs
                .extend(decisions.into_iter().map(Output::Liveness));
            return;
        }
        if !self.digest_due() {
            return;
        }
        let target = match self.role() {
            Some(Role::Voter) => self.leader,
            Some(Role::Observer) => self.session.current_upstream(),
            _ => None,
        };
        let Some(target) = target else {
            return;
        };
        let was_empty = self.last_digest_empty;
        let digest = self.next_digest();
        let empty = digest.silent.is_empty() && digest.adopted_alive.is_empty();
        // An observer's empty digest rides on its next fetch; alone it is sent only to replace a
        // non-empty one (the upstream would otherwise keep the old reports until they go stale).
        if self.role() == Some(Role::Voter) || !empty || !was_empty {
            self.push_send(target, Message::DigestOnly { digest });
        }
    }
}
