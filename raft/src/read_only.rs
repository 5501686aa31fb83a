//! Linearizable reads without writing to the log (Raft thesis §6.4): the leader records its
//! commit index, confirms it is still leader with a round of heartbeats, and the read may be
//! served once the state machine has applied up to that index. With `lease_read` (and
//! CheckQuorum) the heartbeat round is skipped (§6.4.1): faster, but it trusts bounded clock drift.

use std::collections::{BTreeSet, VecDeque};

use crate::errors::ProposeError;
use crate::quorum;
use crate::raw_node::RawNode;
use crate::types::{LogIndex, MessageBody, NodeId, ReadState, Role};

/// At most this many reads wait on the leader; more are refused (local) or dropped (forwarded).
const PENDING_READS_MAX: usize = 16 * 1024;

#[derive(Debug)]
struct PendingRead {
    /// Heartbeat round whose acknowledgements confirm this read.
    round: u64,
    index: LogIndex,
    context: Vec<u8>,
    requester: NodeId,
    acks: BTreeSet<NodeId>,
}

#[derive(Debug, Default)]
pub(crate) struct ReadOnly {
    /// The latest heartbeat round sent.
    round: u64,
    /// Reads registered for the next round, which goes out with the next Ready.
    round_wanted: bool,
    pending: VecDeque<PendingRead>,
    /// Reads that arrived before the leader committed an entry of its own term.
    waiting_for_commit: Vec<(NodeId, Vec<u8>)>,
}

impl ReadOnly {
    pub fn current_round(&self) -> u64 {
        self.round
    }

    pub fn has_unsent_round(&self) -> bool {
        self.round_wanted
    }

    pub fn start_round(&mut self) {
        self.round += 1;
        self.round_wanted = false;
    }

    fn len(&self) -> usize {
        self.pending.len() + self.waiting_for_commit.len()
    }
}

impl RawNode {
    pub(crate) fn request_read_index(&mut self, context: Vec<u8>) -> Result<(), ProposeError> {
        if self.role == Role::Leader {
            if self.read_only.len() >= PENDING_READS_MAX {
                return Err(ProposeError::TooManyUncommitted);
            }
            let me = self.id();
            self.leader_read_index(me, context);
            return Ok(());
        }
        let leader = self.leader.ok_or(ProposeError::NoLeader)?;
        self.send(leader, MessageBody::ReadIndex { context });
        Ok(())
    }

    pub(crate) fn leader_read_index(&mut self, requester: NodeId, context: Vec<u8>) {
        if self.read_only.len() >= PENDING_READS_MAX {
            return;
        }
        // Until an entry of this term is committed, the leader does not know the latest commit
        // index (thesis §6.4 step 1).
        if self.log.term(self.log.committed) != Some(self.term) {
            self.read_only.waiting_for_commit.push((requester, context));
            return;
        }
        let index = self.log.committed;
        if self.config.lease_read && self.config.check_quorum {
            self.answer_read(requester, context, index);
            return;
        }
        let me = self.id();
        self.read_only.round_wanted = true;
        self.read_only.pending.push_back(PendingRead {
            round: self.read_only.round + 1,
            index,
            context,
            requester,
            acks: BTreeSet::from([me]),
        });
        // A single voter confirms itself.
        self.answer_confirmed_reads();
    }

    pub(crate) fn release_reads_waiting_for_commit(&mut self) {
        if self.log.term(self.log.committed) != Some(self.term) {
            return;
        }
        for (requester, context) in std::mem::take(&mut self.read_only.waiting_for_commit) {
            self.leader_read_index(requester, context);
        }
    }

    /// A heartbeat response for `round` confirms our leadership for every read registered for
    /// that round or an earlier one.
    pub(crate) fn on_read_ack(&mut self, from: NodeId, round: u64) {
        if round == 0 {
            return;
        }
        for read in self.read_only.pending.iter_mut() {
            if read.round > round {
                break;
            }
            read.acks.insert(from);
        }
        self.answer_confirmed_reads();
    }

    fn answer_confirmed_reads(&mut self) {
        loop {
            let confirmed = match self.read_only.pending.front() {
                Some(read) => {
                    quorum::is_quorum(self.log.conf_state(), |id| read.acks.contains(&id))
                }
                None => false,
            };
            if !confirmed {
                break;
            }
            if let Some(read) = self.read_only.pending.pop_front() {
                self.answer_read(read.requester, read.context, read.index);
            }
        }
    }

    fn answer_read(&mut self, requester: NodeId, context: Vec<u8>, index: LogIndex) {
        if requester == self.id() {
            self.read_states.push(ReadState { context, index });
        } else {
            self.send(requester, MessageBody::ReadIndexResponse { context, index });
        }
    }
}
