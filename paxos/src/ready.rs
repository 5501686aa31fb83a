//! The batch of work a proposer or acceptor hands to its shell, and the order to do it in.

use crate::message::Message;
use crate::outcome::Answer;
use crate::types::{Ballot, Epoch, Register};

/// An acceptor's durable state of one key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyState {
    /// The newest epoch of a request it took for this key: older ones are refused.
    pub epoch: Epoch,
    /// It accepts nothing below this ballot.
    pub promised: Ballot,
    /// The highest ballot it accepted, with the register.
    pub accepted: Option<(Ballot, Register)>,
}

/// A record to make durable. Replayed in order, they rebuild the state (`Acceptor::restore`,
/// `Proposer::restore`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Record {
    /// The acceptor's state of `key` is now `state` (replaces any earlier record of the key).
    Key { key: Vec<u8>, state: KeyState },
    /// The acceptor dropped `key` (garbage collection, or the key moved away) and refuses every
    /// ballot up to `floor` for keys it holds nothing of.
    Forgot { key: Vec<u8>, floor: Ballot },
    /// The proposer may use ballot counters below this one.
    BallotsReserved { counter_below: u64 },
}

/// Everything the shell must do after feeding inputs. Process in this order:
///
/// 1. `messages`: may be sent at once (refusals, which promise nothing; a proposer's requests
///    under an already durable ballot reservation).
/// 2. `answers`: may be given to clients at once (they rest on acceptors' durable replies).
/// 3. `records`: append and make durable (one fsync for the batch), after the records of every
///    earlier batch.
/// 4. `persisted_messages`: send only after step 3 is durable (promises, accepts, and proposer
///    requests under a fresh reservation). A crash before then must drop them.
/// 5. For a proposer, call `Proposer::advance(number)`.
#[must_use = "a Ready must be persisted and sent"]
#[derive(Debug, Default)]
pub struct Ready {
    pub records: Vec<Record>,
    pub messages: Vec<Message>,
    pub persisted_messages: Vec<Message>,
    pub answers: Vec<Answer>,
    /// Identifies this batch for `Proposer::advance`.
    pub number: u64,
}

impl Ready {
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
            && self.messages.is_empty()
            && self.persisted_messages.is_empty()
            && self.answers.is_empty()
    }
}
