//! The batch of work the core hands to its shell, and the order in which the shell must do it.

use crate::types::{Entry, HardState, Message, ReadState, Snapshot, SoftState};

/// Everything the shell must do after feeding inputs to the core. Process in this order:
///
/// 1. `messages`: may be sent right away, before anything is durable (the leader's own
///    AppendEntries go out while its fsync runs; thesis §10.2.1).
/// 2. `snapshot`, `entries`, `hard_state`: make durable together (one fsync). `entries` may begin
///    below the last stored index: truncate the stored log from `entries[0].index` first.
/// 3. `persisted_messages`: send only after step 2 is durable (votes, append acknowledgements).
/// 4. `committed_entries`: apply to the state machine, in order.
/// 5. `read_states`: answer reads once applied up to their index.
/// 6. Call `RawNode::advance(ready)` to acknowledge. Until then `ready()` returns nothing new.
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
    /// True when `entries`, `hard_state` or `snapshot` needs an fsync before step 3.
    pub must_sync: bool,
    /// Identifies this batch for `advance`; assigned by the core.
    pub number: u64,
}
