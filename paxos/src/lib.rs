//! ringraft-paxos: a deterministic, sans-IO CASPaxos core for per-key linearizable registers.
//!
//! No threads, sockets, clock or disk. A node runs one [`Acceptor`] and one [`Proposer`]; the
//! shell feeds them inputs and carries out the [`Ready`] batches they hand back. The protocol,
//! its quorum rule, the handoff across ring epochs, deletes and the safety argument are in
//! `docs/paxos.md`; this page is the contract.
//!
//! # Inputs
//!
//! - [`Proposer::propose`] (get, cas, put, delete), [`Proposer::handoff`],
//!   [`Proposer::collect`] (garbage collection of a tombstone). A key runs one round at a time;
//!   the client operations queued meanwhile run together in its next round, each answered from
//!   the register the ones before it left, once the round's register is chosen
//!   ([`Config::batch_ops_max`]; `docs/paxos.md`, "Batched rounds");
//! - [`Proposer::step`] / [`Acceptor::step`]: a peer's message, checked before use and dropped
//!   if malformed; neither ever panics on input;
//! - [`Proposer::tick`]: the logical clock (timeouts and resends; never safety);
//! - `set_key_config` on both: the ring's acceptor sets of a key and whether a handoff is pending
//!   ([`KeyConfig`]);
//! - [`Proposer::forget_idle`] / [`Acceptor::forget_views_without_state`]: let idle per-key state
//!   go (call now and then). Afterwards hand a forgotten key's configuration in again before
//!   its next operation or message, never an older one than before (`docs/paxos.md`, "Bounded
//!   state").
//!
//! # Outputs and the durability rule
//!
//! [`Ready`]: records to make durable, `messages` that may leave at once, `persisted_messages`
//! that leave only once the records (of this and every earlier batch) are durable, and answers
//! to clients. Every promise and accept an acceptor makes is a record, and its reply is a
//! persisted message: an acceptor never says what a crash could make it forget. Refusals promise
//! nothing and leave at once. The proposer's only record reserves ballot counters, so a restart
//! never reuses a ballot.
//!
//! # Determinism
//!
//! Backoffs come from a ChaCha RNG seeded with [`Config::seed`]; every collection iterates in key
//! order. Same seed and inputs, same outputs.
//!
//! # Outcomes
//!
//! Every answer carries the epoch its round ran under. [`Outcome::Retry`] means the operation did
//! not take effect; [`Outcome::Unknown`] means it may have (an accept that changes the register
//! went out): the caller must read before assuming either.

mod acceptor;
mod config;
pub mod limits;
mod message;
mod mutants;
mod outcome;
mod proposer;
mod quorum;
mod ready;
mod register;
mod round;
mod types;
mod validate;

pub use acceptor::Acceptor;
pub use config::Config;
pub use message::{Body, Message, Refusal};
pub use mutants::Mutant;
pub use outcome::{Answer, Outcome, PaxosError, ProposeError, RetryReason};
pub use proposer::Proposer;
pub use ready::{KeyState, Ready, Record};
pub use types::{Ballot, Epoch, KeyConfig, NodeId, Op, OpId, Register};
