//! Linearizable reads without writing to the log (Raft thesis §6.4): the leader records its
//! commit index, confirms it is still leader with a round of heartbeats, and the read may be
//! served once the state machine has applied up to that index. With `lease_read` (and
//! CheckQuorum) the heartbeat round is skipped while the leader holds a lease (§6.4.1): faster,
//! but it trusts bounded clock drift.
//!
//! # Why the lease is safe (under bounded drift)
//!
//! Every heartbeat broadcast is a numbered round, stamped with the leader's tick count when it
//! was started (no later than it goes on the wire). A follower that accepts a heartbeat resets its
//! election timer, and with CheckQuorum it then ignores (pre)vote requests until
//! `election_timeout_ticks` of ITS ticks have passed: at least `election_timeout_ticks - 1` of its
//! tick intervals of real time (the first tick may follow at once). A leader must win a quorum's
//! votes, so no new leader can exist before that window closes on some member of every quorum
//! that acknowledged the round. The leader therefore holds a lease from the start of the newest
//! round a quorum acknowledged, for [`crate::Config::lease_ticks`] of its own ticks:
//! `(election_timeout_ticks - 1) × (100 - d) / (100 + d)` with `d = clock_drift_percent_max`, so
//! that a leader tick running slow by `d`% still ends the lease before a follower tick running
//! fast by `d`% ends the stickiness. Rounds are counted per term: a new leader has no lease until
//! a quorum acknowledged a round of its own term. A leader that asked for a leadership transfer
//! (TimeoutNow lets voters ignore their stickiness) forfeits its lease for the rest of the term.
//! Without a lease, reads take the heartbeat round as without `lease_read`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::errors::ProposeError;
use crate::mutants::Mutant;
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

/// Everything a leader knows about its read rounds and its lease; reset with the role, so a new
/// term starts without a lease.
#[derive(Debug, Default)]
pub(crate) struct ReadOnly {
    /// The latest heartbeat round sent.
    round: u64,
    /// Reads registered for the next round, which goes out with the next Ready.
    round_wanted: bool,
    pending: VecDeque<PendingRead>,
    /// Reads that arrived before the leader committed an entry of its own term.
    waiting_for_commit: Vec<(NodeId, Vec<u8>)>,
    /// (first round started at that tick, tick), for the ticks young enough to extend the lease.
    round_ticks: VecDeque<(u64, u64)>,
    /// Per peer: the start tick of the newest round it acknowledged.
    acked_round_tick: BTreeMap<NodeId, u64>,
    /// TimeoutNow went out this term: voters may elect someone else at once.
    lease_forfeited: bool,
}

impl ReadOnly {
    pub fn has_unsent_round(&self) -> bool {
        self.round_wanted
    }

    /// Starts the next round at tick `now`; returns its number for the heartbeats to carry.
    pub fn start_round(&mut self, now: u64, lease_ticks: u64) -> u64 {
        self.round += 1;
        self.round_wanted = false;
        if self.round_ticks.back().is_none_or(|&(_, tick)| tick < now) {
            self.round_ticks.push_back((self.round, now));
        }
        // A round started `lease_ticks` ago or earlier can no longer give a lease.
        while self
            .round_ticks
            .front()
            .is_some_and(|&(_, tick)| tick + lease_ticks <= now)
        {
            self.round_ticks.pop_front();
        }
        self.round
    }

    /// `from` acknowledged a heartbeat of `round`: it heard from us after that round started.
    fn on_round_acked(&mut self, from: NodeId, round: u64) {
        if round > self.round {
            return;
        }
        let Some(&(_, tick)) = self
            .round_ticks
            .iter()
            .rev()
            .find(|&&(first, _)| first <= round)
        else {
            return;
        };
        let acked = self.acked_round_tick.entry(from).or_insert(tick);
        *acked = (*acked).max(tick);
    }

    pub fn forfeit_lease(&mut self) {
        self.lease_forfeited = true;
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
        if self.log.term(self.log.committed) != Some(self.term)
            && !self.config.mutated(Mutant::ReadIndexBeforeTermCommit)
        {
            self.read_only.waiting_for_commit.push((requester, context));
            return;
        }
        let index = self.log.committed;
        if self.holds_lease() {
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

    /// True while this leader may answer reads from its lease (see the module docs): a quorum,
    /// counting ourselves, acknowledged a round of this term started less than
    /// `Config::lease_ticks` of our ticks ago, and we asked nobody to take over.
    pub(crate) fn holds_lease(&self) -> bool {
        if !self.config.lease_read || self.role != Role::Leader || self.read_only.lease_forfeited {
            return false;
        }
        let now = self.ticks;
        let me = self.id();
        let acked = &self.read_only.acked_round_tick;
        // Start tick + 1 of the newest round each voter acknowledged; 0 for none.
        let lease_start = quorum::quorum_index(&self.voting_conf(), |id| {
            if id == me {
                now + 1
            } else {
                acked.get(&id).map_or(0, |&tick| tick + 1)
            }
        });
        lease_start > 0 && now - (lease_start - 1) < self.config.lease_ticks()
    }

    /// A heartbeat response for `round` confirms our leadership for every read registered for
    /// that round or an earlier one, and may extend the lease.
    pub(crate) fn on_read_ack(&mut self, from: NodeId, round: u64) {
        if round == 0 {
            return;
        }
        self.read_only.on_round_acked(from, round);
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
                Some(read) => quorum::is_quorum(&self.voting_conf(), |id| read.acks.contains(&id)),
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
