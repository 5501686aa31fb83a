//! Messages between proposers and acceptors. Every message names its key and carries an epoch:
//! a request the proposer's epoch of the key, a reply the acceptor's.

use crate::types::{Ballot, Epoch, NodeId, Register};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Message {
    pub from: NodeId,
    pub to: NodeId,
    pub key: Vec<u8>,
    pub epoch: Epoch,
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Body {
    /// Phase 1a: promise to accept nothing below `ballot`, and tell what you accepted.
    Prepare { ballot: Ballot },
    /// Phase 1b: promised `ballot`; `accepted` is the highest (ballot, register) accepted.
    Promise {
        ballot: Ballot,
        accepted: Option<(Ballot, Register)>,
    },
    /// Phase 2a: accept `register` at `ballot`.
    Accept { ballot: Ballot, register: Register },
    /// Phase 2b: accepted at `ballot`, and promised `ballot.successor()` with it.
    Accepted { ballot: Ballot },
    /// A request at `ballot` refused; nothing was promised or accepted.
    Refuse { ballot: Ballot, reason: Refusal },
    /// Garbage collection: drop the key if what you accepted is the tombstone at `ballot`.
    Forget { ballot: Ballot },
    /// The key is gone from this acceptor (now, or already).
    Forgot { ballot: Ballot },
}

/// Why an acceptor refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// It promised (or accepted) this higher ballot: choose a higher counter.
    Promised(Ballot),
    /// The request's epoch is older than the acceptor's (in the reply's `epoch`): refresh the ring.
    StaleEpoch,
    /// The request's epoch is newer than any ring the acceptor has seen: retry when it caught up.
    EpochAhead,
    /// The acceptor is not in the key's acceptor sets at this epoch.
    NotAcceptor,
    /// The value is longer than the acceptor's `value_bytes_max`.
    TooLarge,
    /// Forget refused: what the acceptor holds is not the tombstone at that ballot.
    NotTombstone,
}

impl Body {
    /// The ballot every message is about.
    pub fn ballot(&self) -> Ballot {
        match self {
            Body::Prepare { ballot }
            | Body::Promise { ballot, .. }
            | Body::Accept { ballot, .. }
            | Body::Accepted { ballot }
            | Body::Refuse { ballot, .. }
            | Body::Forget { ballot }
            | Body::Forgot { ballot } => *ballot,
        }
    }
}
