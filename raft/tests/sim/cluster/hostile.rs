//! Malformed messages. A peer with a bug, a corrupted frame that passed its checksum, or a
//! confused node of another life sends what no correct peer would: entries that do not follow
//! each other, terms above the message's own, indexes beyond anything held, snapshot offsets past
//! the end, answers from nodes that are no members. The core must ignore every one of them (it
//! cannot tell a forged but well-formed message from a true one, so none is sent: that would be a
//! Byzantine fault, outside Raft's model). The checkers then see whether anything leaked in.

use rand::Rng;
use ringraft_raft::{
    ConfState, Entry, EntryPayload, LogIndex, Message, MessageBody, NodeId, Role, SnapshotMeta,
};

use super::{Sim, NODES_MAX};

impl Sim {
    /// Hands one malformed message straight to a running node (no network: its content is the
    /// fault, not its delivery).
    pub(super) fn send_hostile_message(&mut self) {
        let running = self.running_nodes();
        if running.is_empty() {
            return;
        }
        let to = running[self.rng.gen_range(0..running.len())];
        let Some(node) = self.nodes.get(&to) else {
            return;
        };
        let Some(raw) = node.raw() else {
            return;
        };
        let (term, role, leader) = (raw.term(), raw.role(), raw.leader());
        let last = raw.status().last_index;
        // An entry the receiver holds, so that a malformed append passes the log-matching check
        // and only its own checks can refuse it.
        let anchor = (node.mirror.last_index(), node.mirror.last_term());
        let Some(message) = self.malformed_message(to, term, role, leader, last, anchor) else {
            return;
        };
        self.summary.hostile_messages += 1;
        let line = format!("hostile message to {to}: {message:?}");
        self.note(|| line);
        let raw = self
            .nodes
            .get_mut(&to)
            .and_then(|n| n.raw_mut())
            .expect("running");
        raw.step(message);
        let mut effects = super::Effects::default();
        self.drive(to, &mut effects);
        self.settle(effects, &[to]);
    }

    fn malformed_message(
        &mut self,
        to: NodeId,
        term: u64,
        role: Role,
        leader: Option<NodeId>,
        last: LogIndex,
        (anchor_index, anchor_term): (LogIndex, u64),
    ) -> Option<Message> {
        // A sender that is no member of any configuration the simulator makes.
        let stranger = NODES_MAX + 1 + self.rng.gen_range(0..4);
        let message = |from: NodeId, body: MessageBody| Message {
            from,
            to,
            term,
            body,
        };
        let garbage = |index: LogIndex, entry_term: u64| Entry {
            index,
            term: entry_term,
            payload: EntryPayload::Normal(vec![0xff; 7]),
        };
        let leader_of_follower = leader.filter(|&l| l != to);
        match self.rng.gen_range(0..8) {
            // Entries out of order, after an entry the follower holds.
            0 => leader_of_follower.map(|from| {
                message(
                    from,
                    MessageBody::Append {
                        prev_log_index: anchor_index,
                        prev_log_term: anchor_term,
                        entries: vec![
                            garbage(anchor_index + 2, term),
                            garbage(anchor_index + 1, term),
                        ],
                        leader_commit: anchor_index + 2,
                    },
                )
            }),
            // An entry of a term above the message's own.
            1 => leader_of_follower.map(|from| {
                message(
                    from,
                    MessageBody::Append {
                        prev_log_index: anchor_index,
                        prev_log_term: anchor_term,
                        entries: vec![garbage(
                            anchor_index + 1,
                            term + 1 + self.rng.gen_range(0..5),
                        )],
                        leader_commit: anchor_index + 1,
                    },
                )
            }),
            // Indexes at the end of the number range.
            2 => leader_of_follower.map(|from| {
                message(
                    from,
                    MessageBody::Append {
                        prev_log_index: LogIndex::MAX - self.rng.gen_range(0..2),
                        prev_log_term: term,
                        entries: vec![garbage(LogIndex::MAX, term)],
                        leader_commit: LogIndex::MAX,
                    },
                )
            }),
            // A snapshot chunk past its own end.
            3 => leader_of_follower.map(|from| {
                let total_bytes = self.rng.gen_range(1..64);
                message(
                    from,
                    MessageBody::InstallSnapshot {
                        meta: SnapshotMeta {
                            index: last + self.rng.gen_range(1..100),
                            term,
                            conf_state: ConfState::default(),
                        },
                        offset: total_bytes + self.rng.gen_range(1..u64::MAX / 2),
                        total_bytes,
                        chunk: vec![0xff; 3],
                        done: true,
                    },
                )
            }),
            // A follower acknowledging entries the leader never had.
            4 if role == Role::Leader => {
                let from = self.member_other_than(to)?;
                Some(message(
                    from,
                    MessageBody::AppendResponse {
                        index: last + 1 + self.rng.gen_range(0..1_000),
                        reject: false,
                        reject_hint_index: 0,
                        reject_hint_term: 0,
                    },
                ))
            }
            5 if role == Role::Leader => {
                let from = self.member_other_than(to)?;
                Some(message(
                    from,
                    MessageBody::InstallSnapshotResponse {
                        snapshot_index: last + 1 + self.rng.gen_range(0..1_000),
                        next_offset: u64::MAX,
                        reject: false,
                    },
                ))
            }
            // Answers from a node that belongs to no configuration.
            6 => {
                let body = match self.rng.gen_range(0..5) {
                    0 => MessageBody::AppendResponse {
                        index: last,
                        reject: false,
                        reject_hint_index: 0,
                        reject_hint_term: 0,
                    },
                    1 => MessageBody::HeartbeatResponse {
                        read_round: self.rng.gen(),
                    },
                    2 => MessageBody::VoteResponse { reject: false },
                    3 => MessageBody::ReadIndexResponse {
                        context: vec![0xff; 4],
                        index: last,
                    },
                    _ => MessageBody::InstallSnapshotResponse {
                        snapshot_index: last,
                        next_offset: 0,
                        reject: false,
                    },
                };
                Some(message(stranger, body))
            }
            // A message claiming to come from no node at all, or from the receiver itself.
            _ => {
                let from = if self.rng.gen_bool(0.5) { 0 } else { to };
                Some(message(
                    from,
                    MessageBody::Append {
                        prev_log_index: last,
                        prev_log_term: term,
                        entries: vec![garbage(last + 1, term)],
                        leader_commit: last + 1,
                    },
                ))
            }
        }
    }

    fn member_other_than(&mut self, id: NodeId) -> Option<NodeId> {
        let others: Vec<NodeId> = self.nodes.keys().copied().filter(|&o| o != id).collect();
        if others.is_empty() {
            return None;
        }
        Some(others[self.rng.gen_range(0..others.len())])
    }
}
