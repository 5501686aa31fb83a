//! Errors of the core's API: `RaftError` for contract violations by the shell (fatal for the node),
//! `ProposeError` for requests the core refuses (tell the client, retry elsewhere or later).

use crate::types::{LogIndex, NodeId};

/// The shell handed the core something that cannot be right. The node should stop.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum RaftError {
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    #[error("invalid initial state: {0}")]
    InvalidInitialState(String),
    #[error("cannot compact at index {index}: {reason}")]
    Compaction { index: LogIndex, reason: String },
}

/// Why a proposal, read, conf change or transfer was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ProposeError {
    #[error("no known leader")]
    NoLeader,
    #[error("not the leader (leader hint: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    #[error("leadership transfer in progress")]
    TransferInProgress,
    #[error(
        "a previous membership change is not yet committed, the configuration is still joint, or \
         the leader has not yet committed an entry of its term"
    )]
    ConfChangePending,
    #[error("invalid membership change: {0}")]
    InvalidConfChange(String),
    #[error("too many uncommitted bytes on the leader")]
    TooManyUncommitted,
    #[error("a learner cannot do this")]
    Learner,
    #[error("node {0} is not a voter of the current configuration")]
    NotVoter(NodeId),
}
