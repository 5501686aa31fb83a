//! The batch of work the core hands to its shell, the order in which the shell must do it, and
//! the types that make the durability rule a matter of compiling: a message that promises
//! durable state can only be taken from the [`Synced`] that [`Written::sync`] returns, and only a
//! `Synced` acknowledges the batch ([`crate::RawNode::advance`]).

use crate::types::{Entry, HardState, Message, ReadState, Snapshot, SoftState};

/// Where a Ready's state goes to be durable: the shell's log on disk (the daemon's WAL and
/// snapshot files, the simulator's disk, a test's vector).
pub trait DurableLog {
    type Error;

    /// Store what one Ready must make durable, in this order: a snapshot from the leader (which
    /// replaces the log it covers), the entries (they may begin below the last stored index:
    /// truncate the stored log from `entries[0].index` first), the hard state. None of it needs
    /// to be durable before [`DurableLog::sync`].
    fn write(&mut self, batch: WriteBatch<'_>) -> Result<(), Self::Error>;

    /// Make everything written so far durable (one fsync, or fdatasync). Called once per Ready
    /// whose writes need it.
    fn sync(&mut self) -> Result<(), Self::Error>;
}

/// The writes of one Ready (see [`DurableLog::write`]).
#[derive(Debug, Clone, Copy)]
pub struct WriteBatch<'a> {
    pub snapshot: Option<&'a Snapshot>,
    pub entries: &'a [Entry],
    pub hard_state: Option<HardState>,
}

/// Everything the shell must do after feeding inputs to the core. Process in this order (the
/// daemon's node loop does exactly this):
///
/// 1. [`Ready::take_messages`]: may be sent right away, before anything is durable (the
///    leader's own AppendEntries go out while its fsync runs; thesis §10.2.1).
/// 2. [`Ready::snapshot`]: replace the state machine with its data.
/// 3. [`Ready::take_committed_entries`]: apply to the state machine, in order, and answer the
///    clients waiting for them; then [`Ready::take_read_states`]: answer each read once applied
///    up to its index.
/// 4. [`Ready::write`] hands the snapshot, entries and hard state to the [`DurableLog`];
///    [`Written::sync`] makes them durable (one fsync when needed) and returns the [`Synced`]
///    token.
/// 5. [`Synced::take_persisted_messages`]: votes, append and snapshot acknowledgements, which
///    exist only once the batch is durable.
/// 6. [`crate::RawNode::advance`] with the `Synced`. Until then `ready()` returns nothing new.
///
/// Steps 2 and 3 need not wait for this batch's fsync. Committed entries are committed on a
/// quorum and already durable on this node: the core hands out only entries that an earlier Ready
/// made durable and `advance` acknowledged, so no crash can take back what a client was told, and
/// a read's index is such a committed index. A snapshot from the leader holds committed state
/// only; if a crash loses it before step 4, the node restarts from its older durable state (what
/// it applied is gone with its memory) and the leader sends the snapshot again. Applying after the
/// fsync is also correct; it only delays the answers by one fsync.
///
/// The acknowledgements cannot be reached before the sync:
///
/// ```compile_fail,E0616
/// fn ack_early(ready: ringraft_raft::Ready) -> Vec<ringraft_raft::Message> {
///     ready.persisted_messages
/// }
/// ```
#[must_use = "a Ready must be sent, applied, written, synced and then acknowledged with advance()"]
#[derive(Debug, Default)]
pub struct Ready {
    pub(crate) soft_state: Option<SoftState>,
    pub(crate) hard_state: Option<HardState>,
    pub(crate) snapshot: Option<Snapshot>,
    pub(crate) entries: Vec<Entry>,
    pub(crate) messages: Vec<Message>,
    pub(crate) persisted_messages: Vec<Message>,
    pub(crate) committed_entries: Vec<Entry>,
    pub(crate) read_states: Vec<ReadState>,
    pub(crate) must_sync: bool,
    pub(crate) number: u64,
}

impl Ready {
    /// The role or leader changed: for logs, status and metrics.
    pub fn soft_state(&self) -> Option<SoftState> {
        self.soft_state
    }

    /// The hard state to store, if it changed (written by [`Ready::write`]).
    pub fn hard_state(&self) -> Option<HardState> {
        self.hard_state
    }

    /// A snapshot received from the leader: replace the state machine with its data (applied
    /// becomes `meta.index`); [`Ready::write`] stores it. A node that joined with no
    /// configuration first gets the leader's snapshot even at index 0 (possibly with empty
    /// data): it carries the configuration. A Ready with a snapshot carries no committed entries.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// Entries to append to the log (written by [`Ready::write`]).
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Messages that may leave before anything is durable.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    pub fn take_messages(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.messages)
    }

    /// Committed and durable on this node (never ahead of the local log), in order.
    pub fn committed_entries(&self) -> &[Entry] {
        &self.committed_entries
    }

    pub fn take_committed_entries(&mut self) -> Vec<Entry> {
        std::mem::take(&mut self.committed_entries)
    }

    pub fn read_states(&self) -> &[ReadState] {
        &self.read_states
    }

    pub fn take_read_states(&mut self) -> Vec<ReadState> {
        std::mem::take(&mut self.read_states)
    }

    /// True when the writes need an fsync before the acknowledgements may leave.
    pub fn must_sync(&self) -> bool {
        self.must_sync
    }

    /// Step 4: hands this batch's writes to `log` (nothing is written for a batch without any).
    /// What remains, the acknowledgements and the right to `advance`, comes out of
    /// [`Written::sync`].
    pub fn write<L: DurableLog + ?Sized>(self, log: &mut L) -> Result<Written, L::Error> {
        if self.snapshot.is_some() || !self.entries.is_empty() || self.hard_state.is_some() {
            log.write(WriteBatch {
                snapshot: self.snapshot.as_ref(),
                entries: &self.entries,
                hard_state: self.hard_state,
            })?;
        }
        Ok(Written {
            persisted_messages: self.persisted_messages,
            must_sync: self.must_sync,
            number: self.number,
        })
    }
}

/// A Ready whose writes the [`DurableLog`] has taken but not necessarily made durable.
#[must_use = "a written Ready must be synced and then acknowledged with advance()"]
#[derive(Debug)]
pub struct Written {
    persisted_messages: Vec<Message>,
    must_sync: bool,
    number: u64,
}

impl Written {
    /// True when [`Written::sync`] will call [`DurableLog::sync`].
    pub fn must_sync(&self) -> bool {
        self.must_sync
    }

    /// Makes the batch durable when it needs it, and returns the token that releases its
    /// acknowledgements and acknowledges it to the core.
    pub fn sync<L: DurableLog + ?Sized>(self, log: &mut L) -> Result<Synced, L::Error> {
        if self.must_sync {
            log.sync()?;
        }
        Ok(Synced {
            persisted_messages: self.persisted_messages,
            number: self.number,
        })
    }

    /// Test-only (feature `mutants`): the acknowledgements before the sync, for a shell that
    /// breaks the durability rule on purpose to prove the simulator's checkers catch it.
    #[cfg(feature = "mutants")]
    pub fn take_persisted_messages_unsynced(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.persisted_messages)
    }
}

/// A durable Ready: its acknowledgements may leave, and [`crate::RawNode::advance`] takes it.
#[must_use = "a synced Ready must be acknowledged with advance()"]
#[derive(Debug)]
pub struct Synced {
    persisted_messages: Vec<Message>,
    pub(crate) number: u64,
}

impl Synced {
    /// Votes and append or snapshot acknowledgements: they describe the disk as it is now.
    pub fn persisted_messages(&self) -> &[Message] {
        &self.persisted_messages
    }

    pub fn take_persisted_messages(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.persisted_messages)
    }
}
