//! Every bound and special number of the registers, defined once. The daemon, the local protocol
//! and the C and Python bindings take them from here.

/// Default bound on a register's value (`kv_value_bytes_max`); larger values are refused with
/// [`crate::ProposeError::TooLarge`] at the proposer and [`crate::Refusal::TooLarge`] at an
/// acceptor.
pub const VALUE_BYTES_MAX_DEFAULT: usize = 64 << 10;

/// Default bound on how many client operations of one key run in one round
/// ([`crate::Config::batch_ops_max`]).
pub const BATCH_OPS_MAX_DEFAULT: usize = 64;

/// Default bound on the value bytes of the operations batched into one round
/// ([`crate::Config::batch_value_bytes_max`]): the work of computing the batch (each write copies
/// its value), not what the round sends (an accept carries only the final register).
pub const BATCH_VALUE_BYTES_MAX_DEFAULT: usize = 1 << 20;

/// Keys longer than this are refused everywhere (the ring hashes any bytes; this bounds memory).
pub const KEY_BYTES_MAX: usize = 4096;

/// `expected_version` meaning "whatever the version is": a cas with it is a put
/// (`RINGRAFT_KV_ANY_VERSION` in C).
pub const ANY_VERSION: u64 = u64::MAX;

/// A register's version never goes past this, so it can never equal [`ANY_VERSION`]; a write
/// that would is answered [`crate::Outcome::VersionExhausted`].
pub const VERSION_MAX: u64 = u64::MAX - 1;

/// At most this many acceptors per key (per set of a transition): a bound on every vote set.
pub const ACCEPTORS_MAX: usize = 16;

/// A proposer reserves ballot counters in blocks of this many with one durable record, so a
/// restarted proposer never reuses a ballot (two values under one ballot would break Paxos).
pub const BALLOT_RESERVE_BLOCK: u64 = 1 << 16;

/// Ballot counters above this are malformed (dropped on receipt): a peer cannot push a proposer's
/// counter to where `counter + 1` would saturate and a ballot would repeat. A proposer whose
/// counter reaches it refuses to start rounds (at one round per microsecond that takes 146,000
/// years).
pub const BALLOT_COUNTER_MAX: u64 = u64::MAX / 4;

/// A ballot counter more than this far above what a party has seen is implausible: an acceptor
/// refuses a request whose counter is that far above every counter it promised (its
/// `counter_high`), and a proposer does not adopt a refusal's counter that far above its own.
/// So one message from a buggy peer cannot push a key, an acceptor's floor or a proposer to
/// [`BALLOT_COUNTER_MAX`] (that takes at least `BALLOT_COUNTER_MAX / BALLOT_JUMP_MAX` = 64
/// maximal jumps). Honest counters grow by one per round plus [`BALLOT_RESERVE_BLOCK`] per
/// restart, so honest parties differ by less than this for centuries (2^56 rounds is 2,283 years
/// at a million rounds per second across the cluster). Refusing is always safe (Paxos never
/// depends on which ballots are refused); see docs/paxos.md, "Ballots".
pub const BALLOT_JUMP_MAX: u64 = 1 << 56;

const _: () = assert!(BALLOT_JUMP_MAX < BALLOT_COUNTER_MAX / 16);
const _: () = assert!(BALLOT_RESERVE_BLOCK < BALLOT_JUMP_MAX >> 32);
