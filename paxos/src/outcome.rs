//! What a proposer answers: the outcome of each operation, and the errors of its API.

use crate::types::{Epoch, OpId, Register};

/// The answer to one operation. `epoch` is the key's epoch the round ran under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub op: OpId,
    pub key: Vec<u8>,
    pub epoch: Epoch,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A get: the register as chosen (`value: None` if absent).
    Value(Register),
    /// A cas, put or delete took effect; `version` is the register's new version (0 after a
    /// delete).
    Written { version: u64 },
    /// The expected version was not the current one; nothing was written.
    Conflict { current_version: u64 },
    /// The operation did not take effect; try again after `backoff_ticks`.
    Retry {
        reason: RetryReason,
        backoff_ticks: u64,
    },
    /// The operation may or may not have taken effect (an accept for it was sent and then the
    /// round was refused or timed out): the caller must read before assuming either.
    Unknown {
        reason: RetryReason,
        backoff_ticks: u64,
    },
    /// The write would take the version past `VERSION_MAX`; nothing was written.
    VersionExhausted,
    /// A handoff round completed under the joint quorum at `epoch`: the caller may record the
    /// handoff of this key as complete (through the Raft log).
    HandedOff,
    /// A handoff was asked for a key with no transition pending.
    NoHandoffPending,
    /// Garbage collection removed the tombstone from every acceptor.
    Collected,
    /// Garbage collection found a live value (or a transition pending): nothing to collect now.
    NotCollectable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryReason {
    /// Refused for a higher ballot: another proposer is working on the key.
    Contended,
    /// An acceptor knows a newer epoch than ours: refresh the ring first.
    StaleEpoch { epoch: Epoch },
    /// Acceptors have not yet learned our epoch.
    EpochAhead,
    /// An acceptor we asked is not an acceptor of the key at our epoch.
    NotAcceptor,
    /// No quorum answered within `op_timeout_ticks`.
    TimedOut,
}

/// Why [`crate::Proposer`] refused to start an operation (nothing was sent).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    #[error("value of {bytes} bytes exceeds the {max}-byte limit")]
    TooLarge { bytes: usize, max: usize },
    #[error("key of {bytes} bytes exceeds the {max}-byte limit")]
    KeyTooLong { bytes: usize, max: usize },
    #[error("no acceptor set is known for this key")]
    NoAcceptors,
    #[error("too many operations queued")]
    Busy,
}

/// The shell handed the core something that cannot be right (fatal for the node).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaxosError {
    #[error("invalid key configuration: {0}")]
    InvalidKeyConfig(String),
    #[error("invalid durable record: {0}")]
    InvalidRecord(String),
}
