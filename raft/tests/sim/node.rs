//! One simulated node: a `RawNode` driven by a shell that follows the `Ready` contract of
//! `raft/src/ready.rs` exactly, over a simulated disk, with the key-value store as its application.
//!
//! A `Ready` is processed in the daemon's order (`daemon/src/node/driver.rs`), in two halves
//! around a simulated fsync of some latency. First the messages go out, a snapshot from the leader
//! replaces the state machine, committed entries are applied and clients answered (they are
//! durable on this node already: the core hands out nothing beyond what an earlier fsync made
//! durable), and the writes are queued on the disk. When the fsync completes, the writes are
//! durable, `persisted_messages` go out and the core is acknowledged. The core keeps taking ticks
//! and messages in between, which the contract allows (the daemon's loop, which blocks in fsync,
//! feeds them to the core at its next batch instead).

use ringraft_raft::{
    Config, Entry, EntryPayload, InitialState, LogIndex, Message, MessageBody, NodeId, RawNode,
    ReadState, Ready, Role, Snapshot, Term, Written,
};

use super::disk::{DurableState, SimDisk};
use super::mirror::{LogMirror, MirroredEntry};
use super::state_machine::{KvStore, WriteOutcome};

/// A shell that breaks the contract on purpose, to prove the checkers can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShellBug {
    None,
    /// Sends `persisted_messages` (votes, append acknowledgements) before the fsync.
    AckBeforeFsync,
    /// Applies entries to the state machine as soon as they are appended, before commit.
    ApplyUncommitted,
    /// Answers a ReadIndex read at once, without waiting to apply up to its index.
    ReadWithoutWaiting,
}

/// What the checkers learn from one node.
#[derive(Debug, Clone)]
pub enum Observation {
    /// The node's log now holds these entries (replacing whatever it had from the first on).
    Appended(Vec<MirroredEntry>),
    Applied(MirroredEntry),
    /// The state machine was replaced by a snapshot at this point of the log.
    SnapshotRestored(MirroredEntry),
    /// The core broke the shell contract.
    Violation(String),
    /// A message promised durable state that a crash right now would lose.
    BrokenPromise(String),
    /// A message only a leader sends (append, heartbeat, snapshot, TimeoutNow, read answer) of
    /// this term left the shell in this life of the node: from here on the node's leadership of
    /// the term is visible to others. Reported once per (term, life).
    SentAsLeader {
        term: Term,
        incarnation: u32,
    },
}

/// Everything one call into a node produced for the rest of the simulation.
#[derive(Debug, Default)]
pub struct Effects {
    pub messages: Vec<Message>,
    pub writes: Vec<(NodeId, WriteOutcome)>,
    /// Answered reads: (node, read context, value).
    pub reads: Vec<(NodeId, Vec<u8>, i64)>,
    pub observations: Vec<(NodeId, Observation)>,
    /// The node started an fsync that completes later (the caller schedules it).
    pub fsync_started: Option<NodeId>,
    /// Leaders that appended a configuration entry to their log, and its index.
    pub conf_appended: Vec<(NodeId, LogIndex)>,
}

/// A Ready whose writes are on the disk's queue, waiting for the fsync.
type InFlightReady = Written;

/// Bound on Ready batches processed back to back in one call (each needs new input to exist, so
/// hitting it means the core keeps producing work from nothing).
const READY_LOOP_MAX: usize = 64;

pub struct NodeShell {
    pub id: NodeId,
    /// Bumped at every restart; events of an earlier life are ignored.
    pub incarnation: u32,
    raw: Option<RawNode>,
    disk: SimDisk,
    pub store: KvStore,
    pub mirror: LogMirror,
    in_flight: Option<InFlightReady>,
    pending_reads: Vec<ReadState>,
    bug: ShellBug,
    compaction_threshold: u64,
    /// Bytes of ballast in each snapshot this node makes (see `KvStore::encode_with_ballast`).
    snapshot_ballast_bytes: usize,
    /// The index of this life's latest compaction.
    pub last_compaction: LogIndex,
    pub compactions: u64,
    /// The last term of this life in which a leader's message left (see `SentAsLeader`).
    sent_as_leader_term: Option<Term>,
    /// The highest append this node acknowledged in the latest term it acknowledged one in:
    /// (index, the entry's term, the term of the acknowledgement). Its disk must keep that entry
    /// for as long as the node is in that term, crashes and snapshots included.
    ack_promise: Option<(LogIndex, Term, Term)>,
}

/// Whether only a leader sends messages of this kind.
pub fn is_leader_message(body: &MessageBody) -> bool {
    matches!(
        body,
        MessageBody::Append { .. }
            | MessageBody::Heartbeat { .. }
            | MessageBody::InstallSnapshot { .. }
            | MessageBody::TimeoutNow
            | MessageBody::ReadIndexResponse { .. }
    )
}

/// Reads carry the key they read in their context: (client, seq, key).
pub fn read_context(client: u64, seq: u64, key: u64) -> Vec<u8> {
    [client, seq, key]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect()
}

pub fn parse_read_context(context: &[u8]) -> Option<(u64, u64, u64)> {
    if context.len() != 24 {
        return None;
    }
    let word = |i: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&context[i * 8..i * 8 + 8]);
        u64::from_le_bytes(bytes)
    };
    Some((word(0), word(1), word(2)))
}

impl NodeShell {
    /// A node whose disk holds `durable` (a bootstrap snapshot for initial voters, nothing for
    /// a node that will join). It starts down; call `restart`.
    pub fn new(
        id: NodeId,
        durable: DurableState,
        bug: ShellBug,
        compaction_threshold: u64,
        snapshot_ballast_bytes: usize,
    ) -> Self {
        NodeShell {
            id,
            incarnation: 0,
            raw: None,
            disk: SimDisk::new(durable),
            store: KvStore::default(),
            mirror: LogMirror::default(),
            in_flight: None,
            pending_reads: Vec::new(),
            bug,
            compaction_threshold,
            snapshot_ballast_bytes,
            last_compaction: 0,
            compactions: 0,
            sent_as_leader_term: None,
            ack_promise: None,
        }
    }

    pub fn durable(&self) -> &DurableState {
        self.disk.durable()
    }

    pub fn is_up(&self) -> bool {
        self.raw.is_some()
    }

    pub fn raw(&self) -> Option<&RawNode> {
        self.raw.as_ref()
    }

    pub fn raw_mut(&mut self) -> Option<&mut RawNode> {
        self.raw.as_mut()
    }

    /// Power loss: the core, its in-memory state and a suffix of the unsynced writes are gone.
    /// `loss_fraction` of the unsynced writes (rounded up) is lost.
    /// Returns how many writes were lost.
    pub fn crash(&mut self, loss_fraction: f64) -> usize {
        let unsynced = self.disk.unsynced_writes();
        let lost = ((unsynced as f64) * loss_fraction).ceil() as usize;
        self.disk.crash(unsynced.saturating_sub(lost));
        self.raw = None;
        self.in_flight = None;
        self.pending_reads.clear();
        self.sent_as_leader_term = None;
        lost
    }

    /// Starts a fresh core from what the disk holds, as the daemon does at boot.
    pub fn restart(&mut self, config: Config, effects: &mut Effects) -> Result<(), String> {
        assert!(self.raw.is_none(), "restart of a running node");
        self.incarnation += 1;
        let durable = self.disk.durable().clone();
        self.store = match &durable.snapshot {
            Some(snapshot) => KvStore::decode(&snapshot.meta, &snapshot.data)
                .map_err(|e| format!("node {}: unreadable snapshot on disk: {e}", self.id))?,
            None => KvStore::default(),
        };
        self.mirror = LogMirror::starting_at(
            self.store.applied_index,
            self.store.applied_term,
            self.store.chain,
        );
        let appended = self
            .mirror
            .append(&durable.entries)
            .map_err(|e| format!("node {}: durable log unusable: {e}", self.id))?;
        effects
            .observations
            .push((self.id, Observation::Appended(appended)));
        self.last_compaction = self.store.applied_index;
        let initial = InitialState {
            hard_state: durable.hard_state,
            snapshot: durable.snapshot.as_ref().map(|s| s.meta.clone()),
            snapshot_data: durable
                .snapshot
                .as_ref()
                .map(|s| s.data.clone())
                .unwrap_or_default(),
            entries: durable.entries.clone(),
            applied: self.store.applied_index,
        };
        let raw = RawNode::new(config, initial)
            .map_err(|e| format!("node {}: RawNode::new refused its own disk: {e}", self.id))?;
        self.raw = Some(raw);
        Ok(())
    }

    /// Processes every Ready the core has, up to the first one that must wait for an fsync.
    pub fn drive(&mut self, effects: &mut Effects) {
        for _ in 0..READY_LOOP_MAX {
            let Some(raw) = self.raw.as_mut() else { return };
            if self.in_flight.is_some() || !raw.has_ready() {
                return;
            }
            let ready = raw.ready();
            self.begin_ready(ready, effects);
            match &self.in_flight {
                Some(in_flight) if in_flight.must_sync() => {
                    effects.fsync_started = Some(self.id);
                    return;
                }
                _ => self.finish_ready(effects),
            }
        }
        effects.observations.push((
            self.id,
            Observation::Violation(format!(
                "core produced {READY_LOOP_MAX} Ready batches without new input"
            )),
        ));
    }

    /// The fsync started by the in-flight Ready completed.
    pub fn fsync_done(&mut self, effects: &mut Effects) {
        if self.in_flight.as_ref().is_some_and(|r| r.must_sync()) {
            self.finish_ready(effects);
            self.drive(effects);
        }
    }

    fn violation(&self, effects: &mut Effects, what: String) {
        effects
            .observations
            .push((self.id, Observation::Violation(what)));
    }

    /// The first half, up to the fsync: send `messages`, install a snapshot, apply
    /// `committed_entries` and answer reads, queue the writes (durable at the fsync).
    fn begin_ready(&mut self, mut ready: Ready, effects: &mut Effects) {
        self.send(&mut ready.take_messages(), "before the fsync", effects);
        if let Some(snapshot) = ready.snapshot() {
            match KvStore::decode(&snapshot.meta, &snapshot.data) {
                Ok(store) => self.mirror.install_snapshot(
                    snapshot.meta.index,
                    snapshot.meta.term,
                    store.chain,
                ),
                Err(e) => self.violation(effects, format!("snapshot from the core: {e}")),
            }
            self.restore_snapshot(snapshot, effects);
        }
        self.apply_committed(&ready.take_committed_entries(), effects);
        self.pending_reads.append(&mut ready.take_read_states());
        self.answer_reads(effects);
        if !ready.entries().is_empty() {
            let leading = self.raw.as_ref().is_some_and(|r| r.role() == Role::Leader);
            let conf = |e: &&Entry| matches!(e.payload, EntryPayload::ConfChange(_));
            if let Some(entry) = ready.entries().iter().find(conf).filter(|_| leading) {
                effects.conf_appended.push((self.id, entry.index));
            }
            match self.mirror.append(ready.entries()) {
                Ok(appended) => effects
                    .observations
                    .push((self.id, Observation::Appended(appended))),
                Err(e) => self.violation(effects, e),
            }
            if self.bug == ShellBug::ApplyUncommitted {
                for entry in ready.entries() {
                    if entry.index == self.store.applied_index + 1 {
                        self.apply(entry, effects);
                    }
                }
            }
        }
        let Ok(mut written) = ready.write(&mut self.disk);
        if self.bug == ShellBug::AckBeforeFsync {
            let mut early = written.take_persisted_messages_unsynced();
            self.send(&mut early, "before the fsync", effects);
        }
        self.in_flight = Some(written);
    }

    /// Applies what the core handed out as committed (and durable here), in order.
    fn apply_committed(&mut self, entries: &[Entry], effects: &mut Effects) {
        for entry in entries {
            if entry.index <= self.store.applied_index && self.bug == ShellBug::ApplyUncommitted {
                continue;
            }
            if entry.index != self.store.applied_index + 1 {
                self.violation(
                    effects,
                    format!(
                        "committed entry {} handed out after applied index {}",
                        entry.index, self.store.applied_index
                    ),
                );
                continue;
            }
            self.apply(entry, effects);
        }
    }

    /// The second half: durable now; send `persisted_messages`, advance; then maybe compact.
    fn finish_ready(&mut self, effects: &mut Effects) {
        let Some(written) = self.in_flight.take() else {
            return;
        };
        let synced_now = written.must_sync();
        let Ok(mut synced) = written.sync(&mut self.disk);
        if synced_now {
            self.check_ack_promise(effects);
        }
        self.send(
            &mut synced.take_persisted_messages(),
            "after the fsync",
            effects,
        );
        let raw = self
            .raw
            .as_mut()
            .expect("a Ready in flight means the node is up");
        raw.advance(synced);
        self.maybe_compact(effects);
    }

    /// An acknowledged append is a promise for the rest of its term: the leader may count it
    /// toward a commit at any time. Within that term the entry may leave the disk only for a
    /// snapshot that covers it (a leader never sends different entries in its term).
    fn check_ack_promise(&mut self, effects: &mut Effects) {
        let (Some((index, entry_term, term)), Some(raw)) = (self.ack_promise, self.raw.as_ref())
        else {
            return;
        };
        if raw.term() != term || self.disk.durable().holds(index, entry_term) {
            return;
        }
        let what = format!(
            "acknowledged index {index} (term {entry_term}) in term {term}, then its disk lost it \
             while still in that term"
        );
        effects
            .observations
            .push((self.id, Observation::BrokenPromise(what)));
    }

    /// Puts messages on the wire, checking the durability rule: a granted vote or a successful
    /// append acknowledgement may leave only once what it promises is on disk.
    fn send(&mut self, messages: &mut Vec<Message>, when: &str, effects: &mut Effects) {
        let durable = self.disk.durable();
        for message in messages.iter() {
            let broken = match &message.body {
                MessageBody::VoteResponse { reject: false } => {
                    // Kept if the disk holds this vote, or a later term (no vote in this term
                    // can follow then).
                    let hard = durable.hard_state;
                    let kept = hard.term > message.term
                        || (hard.term == message.term && hard.vote == Some(message.to));
                    (!kept).then(|| {
                        format!(
                            "vote for {} in term {} sent {when} while the disk holds term {} \
                             vote {:?}",
                            message.to, message.term, hard.term, hard.vote
                        )
                    })
                }
                MessageBody::AppendResponse {
                    index,
                    reject: false,
                    ..
                } => {
                    // Whatever its term: the core drops acknowledgements of a term it left
                    // before the Ready went out, whose entries a newer leader may have replaced.
                    // An index the shell never saw cannot be on its disk.
                    let held = match self.mirror.term_at(*index) {
                        Some(term) => durable.holds(*index, term),
                        None => *index < self.mirror.last_index() && durable.holds_index(*index),
                    };
                    (!held).then(|| {
                        format!(
                            "append acknowledged up to {index} in term {} {when}, while the log \
                             holds term {:?} there and the disk has {} entries after {:?}",
                            message.term,
                            self.mirror.term_at(*index),
                            durable.entries.len(),
                            durable
                                .snapshot
                                .as_ref()
                                .map(|s| (s.meta.index, s.meta.term)),
                        )
                    })
                }
                _ => None,
            };
            if let Some(what) = broken {
                effects
                    .observations
                    .push((self.id, Observation::BrokenPromise(what)));
            }
            if is_leader_message(&message.body) && self.sent_as_leader_term != Some(message.term) {
                self.sent_as_leader_term = Some(message.term);
                effects.observations.push((
                    self.id,
                    Observation::SentAsLeader {
                        term: message.term,
                        incarnation: self.incarnation,
                    },
                ));
            }
        }
        effects.messages.append(messages);
    }

    fn restore_snapshot(&mut self, snapshot: &Snapshot, effects: &mut Effects) {
        if snapshot.meta.index < self.store.applied_index {
            if self.bug != ShellBug::ApplyUncommitted {
                self.violation(
                    effects,
                    format!(
                        "snapshot at {} handed out below applied index {}",
                        snapshot.meta.index, self.store.applied_index
                    ),
                );
            }
            return;
        }
        match KvStore::decode(&snapshot.meta, &snapshot.data) {
            Ok(store) => {
                self.store = store;
                self.last_compaction = self.store.applied_index;
                let restored = MirroredEntry {
                    index: self.store.applied_index,
                    term: self.store.applied_term,
                    chain: self.store.chain,
                };
                effects
                    .observations
                    .push((self.id, Observation::SnapshotRestored(restored)));
            }
            Err(e) => self.violation(effects, format!("snapshot from the core: {e}")),
        }
    }

    fn apply(&mut self, entry: &Entry, effects: &mut Effects) {
        let outcome = self.store.apply(entry);
        effects.observations.push((
            self.id,
            Observation::Applied(MirroredEntry {
                index: entry.index,
                term: entry.term,
                chain: self.store.chain,
            }),
        ));
        if let Some(outcome) = outcome {
            effects.writes.push((self.id, outcome));
        }
        if let EntryPayload::ConfChange(_) = entry.payload {
            // The core switched configuration when the entry was appended; the application
            // would update its membership metadata here. The simulator reads it from the core.
        }
    }

    fn answer_reads(&mut self, effects: &mut Effects) {
        let applied = match self.bug {
            ShellBug::ReadWithoutWaiting => LogIndex::MAX,
            _ => self.store.applied_index,
        };
        let store = &self.store;
        let id = self.id;
        self.pending_reads.retain(|read| {
            if read.index > applied {
                return true;
            }
            if let Some((_, _, key)) = parse_read_context(&read.context) {
                effects
                    .reads
                    .push((id, read.context.clone(), store.read(key)));
            }
            false
        });
    }

    fn maybe_compact(&mut self, effects: &mut Effects) {
        let applied = self.store.applied_index;
        // A shell that applies ahead of the core cannot hand it a snapshot of what it applied.
        if self.bug == ShellBug::ApplyUncommitted
            || applied < self.last_compaction + self.compaction_threshold
        {
            return;
        }
        let raw = self.raw.as_mut().expect("compaction runs on a live node");
        let data = self.store.encode_with_ballast(self.snapshot_ballast_bytes);
        match raw.compact(applied, data) {
            Ok(Some(snapshot)) => {
                self.disk.persist_compaction(snapshot);
                self.mirror.compact(applied);
                self.last_compaction = applied;
                self.compactions += 1;
            }
            // A snapshot from the leader replaced the core's log while the last Ready was in
            // flight; it comes in the next Ready. Nothing else may make compaction a no-op.
            Ok(None) => {
                let snapshot_index = raw.status().snapshot_index;
                if snapshot_index < applied {
                    self.violation(
                        effects,
                        format!(
                            "compaction at applied {applied} did nothing, but the core's log is \
                             compacted only to {snapshot_index}"
                        ),
                    );
                }
            }
            Err(e) => self.violation(effects, format!("compaction at applied {applied}: {e}")),
        }
    }
}
