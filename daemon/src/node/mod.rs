//! The node: one thread that owns the Raft core, the storage and the replicated state, fed by one
//! event queue (peer messages, API commands, the clock). Everything that changes cluster state
//! happens here, in one order.
//!
//! Data flow per DESIGN.md: socket request → api → node loop (this) → raft core → storage +
//! transport → commit → state machine → answers.

// Error answers are protocol `Response`s that travel by value to the socket anyway; boxing them
// on the way would only add an allocation.
#![allow(clippy::result_large_err)]

mod admin;
mod boot;
mod driver;
mod failure;
mod handle;
pub mod journal;
mod pending;
mod removal;
pub mod view;

use std::time::Instant;

use ringraft_proto::{Request, Response};
use tokio::sync::{mpsc, oneshot};

pub use boot::{start, NodeError, RunningNode};
pub use handle::NodeHandle;
pub use removal::REMOVED_EXIT_DELAY;
pub use view::ClusterView;

use crate::transport::Inbound;

/// Bound on queued events: past it the API answers Busy and peer messages are dropped (Raft
/// retries them), so memory stays bounded under overload.
pub const EVENT_QUEUE_MAX: usize = 16 * 1024;

/// How the node loop ended, when not on a fatal error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeExit {
    /// It was asked to stop (SIGTERM, SIGINT).
    Stopped,
    /// This node was removed from the cluster; `epoch` is the epoch that no longer lists it.
    Removed { epoch: u64 },
}

pub(crate) enum Event {
    Peer(Inbound),
    Command(Command),
    /// Stop: a leader hands leadership over first (bounded), then the loop exits.
    Shutdown,
    /// The peers' answers to a membership check (see `removal`): the most advanced state that
    /// no longer lists this node, if any peer holds one.
    MembershipChecked(Option<removal::PeerVerdict>),
}

pub(crate) enum Command {
    Propose {
        data: Vec<u8>,
        deadline: Instant,
        reply: oneshot::Sender<Response>,
    },
    /// Answers `Response::Done` once a ReadIndex round confirmed leadership and the read index
    /// is applied locally.
    ReadIndex {
        deadline: Instant,
        reply: oneshot::Sender<Response>,
    },
    ReadLog {
        from: u64,
        max: usize,
        reply: oneshot::Sender<Response>,
    },
    Watch {
        from: u64,
        sink: mpsc::Sender<Response>,
    },
    /// Answers `Response::Done` once this node has applied `index` (a change the leader made on
    /// our behalf is then visible to this node's readers too).
    AwaitApplied {
        index: u64,
        deadline: Instant,
        reply: oneshot::Sender<Response>,
    },
    /// Join, Remove, Promote, TransferLeader, Snapshot; from the local socket or forwarded by a
    /// peer.
    Admin {
        request: Request,
        deadline: Instant,
        reply: oneshot::Sender<Response>,
    },
    /// Propose a state command of this node's own (the registers' handoff report). Nobody waits
    /// for it: the sender watches the applied state and sends it again if it does not appear.
    Submit { command: crate::state::StateCommand },
    /// The registers' store failed: the node stops as on any storage failure (a node that
    /// answered Raft but not its registers would be a silent missing vote in its keys' sets).
    RegistersFailed { reason: String },
}

/// Lets a part of this node other than the API propose state commands (see `Command::Submit`).
#[derive(Clone)]
pub struct CommandSubmitter {
    pub(crate) events: std::sync::mpsc::SyncSender<Event>,
}

impl CommandSubmitter {
    /// Queues `command` without waiting; dropped if the node loop is saturated or stopped (the
    /// caller sends it again).
    pub fn submit(&self, command: crate::state::StateCommand) {
        let _ = self
            .events
            .try_send(Event::Command(Command::Submit { command }));
    }

    /// Stops the node on a fatal error of the registers; waits for room in the queue (it must
    /// not be lost), so call it from the registers' own thread only.
    pub fn fail(&self, reason: String) {
        let _ = self
            .events
            .send(Event::Command(Command::RegistersFailed { reason }));
    }
}
