//! The batch of work the core hands to its shell, and the order in which the shell must do it.

use crate::types::{Entry, HardState, Message, ReadState, Snapshot, SoftState};

/// Everything the shell must do after feeding inputs to the core. Process in this order (the
/// daemon's node loop does exactly this):
///
/// 1. `messages`: may be sent right away, before anything is durable (the leader's own
///    AppendEntries go out while its fsync runs; thesis §10.2.1).
/// 2. `snapshot`: store it and replace the state machine with its data.
/// 3. `committed_entries`: apply to the state machine, in order, and answer the clients waiting
///    for them; then `read_states`: answer each read once applied up to its index.
/// 4. `entries`, `hard_state` (and the log change a snapshot implies): make durable together (one
///    fsync when `must_sync`). `entries` may begin below the last stored index: truncate the
///    stored log from `entries[0].index` first.
/// 5. `persisted_messages`: send only after step 4 is durable (votes, append and snapshot
///    acknowledgements).
/// 6. Call `RawNode::advance(ready)` to acknowledge. Until then `ready()` returns nothing new.
///
/// Steps 2 and 3 need not wait for this batch's fsync. Committed entries are committed on a
/// quorum and already durable on this node: the core hands out only entries that an earlier Ready
/// made durable and `advance` acknowledged, so no crash can take back what a client was told, and
/// a read's index is such a committed index. A snapshot from the leader holds committed state
/// only; if a crash loses it before step 4, the node restarts from its older durable state (what
/// it applied is gone with its memory) and the leader sends the snapshot again. Applying after the
/// fsync is also correct; it only delays the answers by one fsync.
#[must_use = "a Ready must be persisted, sent, applied and then acknowledged with advance()"]
#[derive(Debug, Default)]
pub struct Ready {
    pub soft_state: Option<SoftState>,
    pub hard_state: Option<HardState>,
    /// A snapshot received from the leader: persist it, then replace the state machine with its
    /// data (applied becomes `meta.index`). A node that joined with no configuration first gets
    /// the leader's snapshot even at index 0 (possibly with empty data): it carries the
    /// configuration. A Ready with a snapshot carries no `committed_entries`.
    pub snapshot: Option<Snapshot>,
    pub entries: Vec<Entry>,
    pub messages: Vec<crate::types::Message>,
    pub persisted_messages: Vec<Message>,
    /// Committed and durable on this node (never ahead of the local log), in order.
    pub committed_entries: Vec<Entry>,
    pub read_states: Vec<ReadState>,
    /// True when `entries`, `hard_state` or `snapshot` needs an fsync before step 5.
    pub must_sync: bool,
    /// Identifies this batch for `advance`; assigned by the core.
    pub number: u64,
}
