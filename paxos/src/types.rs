//! The values the registers are made of: ballots, registers, operations, key configurations.

use crate::limits::{ANY_VERSION, VERSION_MAX};

pub type NodeId = u64;
/// The ring epoch: the Raft log index of the ring change that set a key's acceptors.
pub type Epoch = u64;
/// The caller's name for one operation; answers carry it back.
pub type OpId = u64;

/// A Paxos ballot. Ordered by counter, then node, so two proposers never share one; `ZERO` is
/// below every ballot a proposer uses (counters start at 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Ballot {
    pub counter: u64,
    pub node: NodeId,
}

impl Ballot {
    pub const ZERO: Ballot = Ballot {
        counter: 0,
        node: 0,
    };

    /// The same proposer's next ballot. An acceptor that accepts `b` promises `b.successor()`
    /// with it, which lets that proposer skip phase 1 of its next round (one round trip).
    pub fn successor(self) -> Ballot {
        Ballot {
            counter: self.counter.saturating_add(1),
            node: self.node,
        }
    }
}

/// A register: its value and its version. `value: None` is absent (also the tombstone a delete
/// leaves), and then `version` is 0; every successful write sets `previous + 1`, a delete sets 0.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Register {
    pub value: Option<Vec<u8>>,
    pub version: u64,
}

impl Register {
    pub fn absent() -> Register {
        Register::default()
    }

    /// True if this register can exist: absent exactly when version 0, and a value no longer
    /// than `value_bytes_max`. Checked on every register a peer sends.
    pub fn is_well_formed(&self, value_bytes_max: usize) -> bool {
        let sized = self
            .value
            .as_ref()
            .is_none_or(|v| v.len() <= value_bytes_max);
        sized && self.value.is_none() == (self.version == 0) && self.version <= VERSION_MAX
    }
}

/// A client operation on one key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Op {
    /// Linearizable read (a round that writes the value back unchanged).
    Get,
    /// Write `value` if the version is `expected_version` (0: only if absent; [`ANY_VERSION`]:
    /// whatever it is), else answer [`crate::Outcome::Conflict`] with the current version.
    Cas {
        expected_version: u64,
        value: Vec<u8>,
    },
    /// Unconditional write.
    Put { value: Vec<u8> },
    /// Leave a tombstone if the version is `expected_version` (`None` or [`ANY_VERSION`]: any).
    Delete { expected_version: Option<u64> },
}

impl Op {
    /// One spelling per meaning, so the rest of the crate never sees `ANY_VERSION`.
    pub(crate) fn normalized(self) -> Op {
        match self {
            Op::Cas {
                expected_version: ANY_VERSION,
                value,
            } => Op::Put { value },
            Op::Delete {
                expected_version: Some(ANY_VERSION),
            } => Op::Delete {
                expected_version: None,
            },
            other => other,
        }
    }

    pub(crate) fn value_len(&self) -> usize {
        match self {
            Op::Cas { value, .. } | Op::Put { value } => value.len(),
            Op::Get | Op::Delete { .. } => 0,
        }
    }
}

/// Who the acceptors of a key are, as the ring (through the Raft log) says.
///
/// `previous` is set while a handoff is pending: the key moved from `previous.1` (at epoch
/// `previous.0`) to `acceptors` at `epoch`, and every phase needs a majority of both sets. Once
/// the handoff completion is committed, the caller sets the same epoch with `previous: None`.
/// At most one transition per key at a time: the next change waits for the handoff to complete.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyConfig {
    pub epoch: Epoch,
    pub acceptors: Vec<NodeId>,
    pub previous: Option<(Epoch, Vec<NodeId>)>,
}

impl KeyConfig {
    pub fn stable(epoch: Epoch, acceptors: Vec<NodeId>) -> KeyConfig {
        KeyConfig {
            epoch,
            acceptors,
            previous: None,
        }
    }

    /// True if `node` is an acceptor of either set.
    pub fn has_member(&self, node: NodeId) -> bool {
        self.acceptors.contains(&node)
            || self
                .previous
                .as_ref()
                .is_some_and(|(_, set)| set.contains(&node))
    }

    /// Non-empty sets of distinct nodes, at most `ACCEPTORS_MAX` each, older epoch before.
    pub fn is_well_formed(&self) -> bool {
        let set_ok = |set: &[NodeId]| {
            let distinct: std::collections::BTreeSet<_> = set.iter().collect();
            !set.is_empty()
                && set.len() <= crate::limits::ACCEPTORS_MAX
                && distinct.len() == set.len()
        };
        set_ok(&self.acceptors)
            && self
                .previous
                .as_ref()
                .is_none_or(|(e, set)| *e < self.epoch && set_ok(set))
    }
}
