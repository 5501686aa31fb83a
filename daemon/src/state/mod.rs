//! The replicated state machine: cluster id, members, the ring built from them, and the
//! application log. Every node applies the same committed entries in the same order and so holds
//! the same state; nothing here does IO.

pub mod app_log;
pub mod command;
mod image;
pub mod registers;

use std::collections::BTreeMap;

use ringraft_proto::{LogRecord, Member, MemberRole, MemberState, NodeId};
use ringraft_raft::{ConfChangeStep, Entry, EntryPayload, LogIndex};
use ringraft_ring::RingState;
use tracing::warn;

pub use app_log::{AppLog, Retention};
pub use command::{decode_command, encode_command, encode_member, StateCommand};
pub use image::ImageError;
pub use registers::RegisterPlane;

/// Tokens per unit of weight. The ring allocates tokens where they even out the load, so a small
/// count already balances well (see BENCHMARKS.md, "Ring").
pub const DEFAULT_VNODES: u32 = ringraft_ring::DEFAULT_VNODES;

/// The initial voters start from a snapshot at index 1, term 1 that holds the bootstrap state,
/// identical on each of them. A node that joins later has nothing at index 1, so the leader must
/// send it that snapshot (or a later one): no node can ever replay the log without the initial
/// membership.
pub const BOOTSTRAP_INDEX: u64 = 1;
pub const BOOTSTRAP_TERM: u64 = 1;

/// What applying one entry means for the node that applied it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Nothing,
    /// An application proposal committed at `index`.
    Proposal {
        origin: NodeId,
        request_id: u64,
        index: LogIndex,
    },
    /// Members or the ring changed; the epoch is now `index`. `touched`: the members the change
    /// named (added, removed or changed), so a view of the membership can follow in O(change).
    MembershipChanged {
        index: LogIndex,
        touched: Vec<NodeId>,
    },
    /// Only the registers' plane changed (a handoff was reported or a transition completed).
    RegistersChanged,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicatedState {
    cluster_id: u64,
    members: BTreeMap<NodeId, Member>,
    ring: RingState,
    replication_factor: u32,
    /// Raft index of the last change to membership or member states.
    epoch: u64,
    /// Per member, the Raft index of the change that added it (`BOOTSTRAP_INDEX` for the initial
    /// voters), so a retried join can answer with the index of the original change. A member
    /// restored from a version-1 snapshot image has no entry: that index is not known.
    member_since: BTreeMap<NodeId, LogIndex>,
    applied_index: u64,
    log: AppLog,
    /// The per-key registers' acceptor sets and their handoff (see `registers`).
    registers: RegisterPlane,
}

impl ReplicatedState {
    /// The state every initial voter starts from, identical on each of them: the initial members,
    /// all voters. It stands for log index 1 (see `BOOTSTRAP_INDEX`).
    pub fn bootstrap(
        mut initial: Vec<Member>,
        replication_factor: u32,
        retention: Retention,
    ) -> Result<ReplicatedState, String> {
        initial.sort_by_key(|member| member.id);
        let mut ring = RingState::new(DEFAULT_VNODES).map_err(|err| err.to_string())?;
        let mut members = BTreeMap::new();
        for mut member in initial {
            member.role = MemberRole::Voter;
            member.state = MemberState::Active;
            ring.join(ring_member(&member), BOOTSTRAP_INDEX)
                .map_err(|err| format!("initial member {}: {err}", member.id))?;
            members.insert(member.id, member);
        }
        let member_since = members.keys().map(|id| (*id, BOOTSTRAP_INDEX)).collect();
        let registers = RegisterPlane::stable(BOOTSTRAP_INDEX, &ring);
        Ok(ReplicatedState {
            cluster_id: cluster_id_of(members.values()),
            members,
            ring,
            replication_factor,
            epoch: BOOTSTRAP_INDEX,
            member_since,
            applied_index: BOOTSTRAP_INDEX,
            log: AppLog::from_parts(retention, 1, BOOTSTRAP_INDEX, Vec::new()),
            registers,
        })
    }

    /// The state of a node that has not received the cluster's state yet (joining).
    pub fn empty(retention: Retention) -> ReplicatedState {
        let ring = RingState::new(DEFAULT_VNODES)
            .unwrap_or_else(|err| panic!("the default vnodes setting is valid: {err}"));
        ReplicatedState {
            cluster_id: 0,
            members: BTreeMap::new(),
            // A joining node gets the plane with the leader's snapshot.
            registers: RegisterPlane::disabled(),
            ring,
            replication_factor: 0,
            epoch: 0,
            member_since: BTreeMap::new(),
            applied_index: 0,
            log: AppLog::new(retention),
        }
    }

    pub fn cluster_id(&self) -> u64 {
        self.cluster_id
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    pub fn replication_factor(&self) -> u32 {
        self.replication_factor
    }

    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    pub fn member(&self, id: NodeId) -> Option<&Member> {
        self.members.get(&id)
    }

    /// The Raft index of the change that added member `id`, when known (see `member_since`).
    pub fn member_since(&self, id: NodeId) -> Option<LogIndex> {
        self.member_since.get(&id).copied()
    }

    pub fn ring(&self) -> &RingState {
        &self.ring
    }

    pub fn log(&self) -> &AppLog {
        &self.log
    }

    pub fn registers(&self) -> &RegisterPlane {
        &self.registers
    }

    /// Applies one committed entry. Entries at or below the applied index are ignored (a restart
    /// replays entries the snapshot already holds).
    pub fn apply(&mut self, entry: &Entry) -> Applied {
        if entry.index <= self.applied_index {
            return Applied::Nothing;
        }
        // The core hands out committed entries in order from what this state applied: a gap
        // means a bug on one side, and applying past it would make this member's state diverge.
        assert_eq!(
            entry.index,
            self.applied_index + 1,
            "committed entry {} handed out after applied index {}",
            entry.index,
            self.applied_index
        );
        self.applied_index = entry.index;
        let applied = match &entry.payload {
            EntryPayload::Empty => Applied::Nothing,
            EntryPayload::Normal(bytes) => self.apply_command(entry.index, bytes),
            EntryPayload::ConfChange(change) => {
                let context = if change.context.is_empty() {
                    None
                } else {
                    match command::decode_member(&change.context) {
                        Ok(member) => Some(member),
                        Err(err) => {
                            warn!(index = entry.index, %err, "conf change with a bad member record");
                            None
                        }
                    }
                };
                for step in &change.changes {
                    self.apply_conf_step(entry.index, *step, context.as_ref());
                }
                self.epoch = entry.index;
                self.registers
                    .ring_changed(&self.ring, self.replication_factor);
                let touched = change
                    .changes
                    .iter()
                    .map(|step| step_member(*step))
                    .collect();
                Applied::MembershipChanged {
                    index: entry.index,
                    touched,
                }
            }
        };
        self.log.mark_applied(entry.index);
        applied
    }

    fn apply_command(&mut self, index: LogIndex, bytes: &[u8]) -> Applied {
        let command = match decode_command(bytes) {
            Ok(command) => command,
            Err(err) => {
                warn!(index, %err, "skipping an entry that is not a state command");
                return Applied::Nothing;
            }
        };
        match command {
            StateCommand::Proposal {
                origin,
                request_id,
                data,
            } => {
                self.log.push(LogRecord { index, data });
                Applied::Proposal {
                    origin,
                    request_id,
                    index,
                }
            }
            StateCommand::SetMemberState { id, state } => {
                let Some(member) = self.members.get_mut(&id) else {
                    warn!(index, id, "state change for an unknown member");
                    return Applied::Nothing;
                };
                if member.state == state {
                    return Applied::Nothing;
                }
                let before = std::mem::replace(&mut member.state, state);
                if let Err(err) = self.ring.set_state(id, ring_state(state), index) {
                    warn!(index, id, %err, "ring refused a member state change");
                }
                self.epoch = index;
                // Down and active members are the same acceptors (a down acceptor is a missing
                // vote), and a pending transition waits on reports and removals, not states:
                // `ring_changed` would find nothing to do, after an O(ring) comparison that
                // the failure detector's verdicts would pay at every member (30 ms at 10,000).
                if !is_liveness_change(before, state) {
                    self.registers
                        .ring_changed(&self.ring, self.replication_factor);
                }
                Applied::MembershipChanged {
                    index,
                    touched: vec![id],
                }
            }
            StateCommand::RegistersEnabled => {
                if self.registers.enable(index, &self.ring) {
                    Applied::RegistersChanged
                } else {
                    Applied::Nothing
                }
            }
            StateCommand::RegistersHandedOff { node, epoch } => {
                let changed = self.members.contains_key(&node)
                    && self
                        .registers
                        .handed_off(node, epoch, &self.ring, self.replication_factor);
                if changed {
                    Applied::RegistersChanged
                } else {
                    Applied::Nothing
                }
            }
        }
    }

    fn apply_conf_step(&mut self, index: LogIndex, step: ConfChangeStep, context: Option<&Member>) {
        match step {
            ConfChangeStep::AddVoter(id) | ConfChangeStep::AddLearner(id) => {
                let role = if matches!(step, ConfChangeStep::AddVoter(_)) {
                    MemberRole::Voter
                } else {
                    MemberRole::Learner
                };
                if let Some(member) = self.members.get_mut(&id) {
                    member.role = role;
                    return;
                }
                let mut member = match context {
                    Some(member) if member.id == id => member.clone(),
                    _ => {
                        warn!(index, id, "new member without its record; using defaults");
                        Member {
                            id,
                            name: format!("node-{id}"),
                            address: String::new(),
                            zone: String::new(),
                            weight: 1,
                            role,
                            state: MemberState::Active,
                        }
                    }
                };
                member.role = role;
                member.state = MemberState::Active;
                if let Err(err) = self.ring.join(ring_member(&member), index) {
                    warn!(index, id, %err, "ring refused a new member");
                }
                self.members.insert(id, member);
                self.member_since.insert(id, index);
            }
            ConfChangeStep::RemoveNode(id) => {
                self.member_since.remove(&id);
                if self.members.remove(&id).is_some() {
                    if let Err(err) = self.ring.leave(id, index) {
                        warn!(index, id, %err, "ring refused a removal");
                    }
                }
            }
        }
    }
}

/// A change between `active` and `down` only: the failure detector's verdicts.
fn is_liveness_change(before: MemberState, after: MemberState) -> bool {
    let live_or_down = |state| matches!(state, MemberState::Active | MemberState::Down);
    live_or_down(before) && live_or_down(after)
}

fn step_member(step: ConfChangeStep) -> NodeId {
    match step {
        ConfChangeStep::AddVoter(id)
        | ConfChangeStep::AddLearner(id)
        | ConfChangeStep::RemoveNode(id) => id,
    }
}

fn ring_member(member: &Member) -> ringraft_ring::Member {
    ringraft_ring::Member::new(member.id, member.weight)
        .with_zone(member.zone.clone())
        .with_state(ring_state(member.state))
}

fn ring_state(state: MemberState) -> ringraft_ring::MemberState {
    match state {
        MemberState::Active => ringraft_ring::MemberState::Active,
        MemberState::Draining => ringraft_ring::MemberState::Draining,
        MemberState::Down => ringraft_ring::MemberState::Down,
    }
}

/// Derived from the initial members, so every initial voter computes the same id without talking
/// to the others.
fn cluster_id_of<'a>(members: impl Iterator<Item = &'a Member>) -> u64 {
    let mut bytes = Vec::new();
    for member in members {
        bytes.extend_from_slice(&member.id.to_le_bytes());
        bytes.extend_from_slice(member.address.as_bytes());
        bytes.push(0);
    }
    xxhash_rust::xxh3::xxh3_64(&bytes)
}

/// A member record for tests: a voter of weight 1, named `n<id>`, at 127.0.0.1:7000+id.
#[cfg(test)]
pub(crate) fn test_member(id: NodeId) -> Member {
    Member {
        id,
        name: format!("n{id}"),
        address: format!("127.0.0.1:{}", 7000 + id),
        zone: String::new(),
        weight: 1,
        role: MemberRole::Voter,
        state: MemberState::Active,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringraft_raft::ConfChange;

    fn member(id: NodeId) -> Member {
        test_member(id)
    }

    fn set_state(state: &mut ReplicatedState, id: NodeId, to: MemberState) -> RegisterPlane {
        let index = state.applied_index() + 1;
        let command = encode_command(&StateCommand::SetMemberState { id, state: to });
        state.apply(&Entry {
            term: 1,
            index,
            payload: EntryPayload::Normal(command),
        });
        assert_eq!(state.member(id).map(|m| m.state), Some(to));
        state.registers().clone()
    }

    /// Marking members down and active again leaves the registers' plane exactly as a full
    /// `ring_changed` would, with and without a transition pending; draining is not skipped.
    #[test]
    fn liveness_verdicts_leave_the_plane_as_a_full_recomputation_would() {
        let initial = (1..=5).map(member).collect();
        let mut state = ReplicatedState::bootstrap(initial, 3, Retention::default()).unwrap();
        let recomputed = |state: &ReplicatedState, plane: &RegisterPlane| {
            let mut full = plane.clone();
            full.ring_changed(state.ring(), state.replication_factor());
            full
        };
        for pending in [false, true] {
            if pending && state.registers().pending().is_none() {
                let index = state.applied_index() + 1;
                state.apply(&Entry {
                    term: 1,
                    index,
                    payload: EntryPayload::ConfChange(ConfChange {
                        changes: vec![ConfChangeStep::AddLearner(9)],
                        auto_leave: true,
                        context: encode_member(&member(9)),
                    }),
                });
                assert!(state.registers().pending().is_some());
            }
            for (id, to) in [
                (2, MemberState::Down),
                (3, MemberState::Down),
                (2, MemberState::Active),
                (3, MemberState::Active),
            ] {
                let before = state.registers().clone();
                let after = set_state(&mut state, id, to);
                assert!(after == recomputed(&state, &before), "{id} {to:?}");
            }
            if !pending {
                // Draining moves acceptor sets: it starts a transition.
                let before = state.registers().clone();
                let drained = set_state(&mut state, 4, MemberState::Draining);
                assert!(drained.pending().is_some());
                assert!(drained == recomputed(&state, &before), "draining");
            }
        }
    }
}
