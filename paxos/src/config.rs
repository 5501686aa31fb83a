//! Settings of one proposer or acceptor.

use crate::limits::{
    BATCH_OPS_MAX_DEFAULT, BATCH_VALUE_BYTES_MAX_DEFAULT, VALUE_BYTES_MAX_DEFAULT,
};
use crate::types::NodeId;

#[derive(Debug, Clone)]
pub struct Config {
    pub id: NodeId,
    /// Values longer than this are refused (`kv_value_bytes_max`).
    pub value_bytes_max: usize,
    /// An operation not answered within this many of the proposer's ticks is given up: a
    /// [`crate::Outcome::Retry`] if no accept was sent for it yet, else
    /// [`crate::Outcome::Unknown`] (it may have taken effect).
    pub op_timeout_ticks: u64,
    /// Messages of a round are sent again to acceptors that have not answered after this many
    /// ticks (the network may lose them; acceptors answer duplicates the same way).
    pub resend_interval_ticks: u64,
    /// A refused operation is answered with a backoff drawn uniformly from
    /// `[backoff_ticks_min, backoff_ticks_max]`, so contending proposers spread apart.
    pub backoff_ticks_min: u64,
    pub backoff_ticks_max: u64,
    /// At most this many operations wait or run in one proposer (all keys together).
    pub ops_queued_max: usize,
    /// Skip phase 1 when this proposer's previous round on the key left its next ballot
    /// promised (one round trip). Off, every round prepares first: for a proposer that is not
    /// the key's only writer, whose cached accept a competing prepare would refuse, leaving the
    /// client an unknown outcome where a prepare refusal would have been a clean retry.
    pub one_round_trip: bool,
    /// A round of a key takes up to this many of its queued client operations (in queue order)
    /// and applies them one after the other to the register it read: one phase 2 (one fsync on
    /// each acceptor) for all of them, each answered from the register the ones before it left,
    /// once the final register is chosen. 1: one operation per round. Handoff and garbage
    /// collection rounds never carry client operations. See docs/paxos.md, "Batched rounds".
    pub batch_ops_max: usize,
    /// A batch stops before the operation that would take the values it carries past this many
    /// bytes (its first operation always goes).
    pub batch_value_bytes_max: usize,
    /// Seed of the RNG that draws backoffs: same seed and inputs, same outputs.
    pub seed: u64,
    /// Test-only: break one protocol rule on purpose (see [`crate::Mutant`]).
    #[cfg(feature = "mutants")]
    pub mutant: Option<crate::Mutant>,
}

impl Config {
    pub fn new(id: NodeId) -> Config {
        Config {
            id,
            value_bytes_max: VALUE_BYTES_MAX_DEFAULT,
            op_timeout_ticks: 50,
            resend_interval_ticks: 5,
            backoff_ticks_min: 1,
            backoff_ticks_max: 8,
            ops_queued_max: 4096,
            one_round_trip: true,
            batch_ops_max: BATCH_OPS_MAX_DEFAULT,
            batch_value_bytes_max: BATCH_VALUE_BYTES_MAX_DEFAULT,
            seed: id,
            #[cfg(feature = "mutants")]
            mutant: None,
        }
    }
}
