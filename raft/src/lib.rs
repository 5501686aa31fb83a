//! ringraft-raft: a deterministic, sans-IO Raft core.
//!
//! No threads, sockets, clock or disk: the shell (the daemon's node loop, or a test) feeds inputs
//! into a [`RawNode`] and carries out the [`Ready`] batches it hands back. Given the same
//! [`Config::seed`] and the same sequence of inputs, a node produces the same outputs: all
//! randomness (election timeouts) comes from a ChaCha RNG seeded by the caller, and all internal
//! collections iterate in key order.
//!
//! # The contract
//!
//! Inputs: [`RawNode::tick`] (the logical clock), [`RawNode::step`] (a peer's message),
//! [`RawNode::propose`], [`RawNode::propose_conf_change`], [`RawNode::read_index`],
//! [`RawNode::transfer_leader`], [`RawNode::report_unreachable`], [`RawNode::report_snapshot`],
//! [`RawNode::compact`].
//!
//! Output: while [`RawNode::has_ready`], take [`RawNode::ready`] and process it in the order
//! documented on [`Ready`]: write it to the shell's [`DurableLog`] ([`Ready::write`]), sync it
//! ([`Written::sync`]), then call [`RawNode::advance`] with the [`Synced`] token that returns.
//! Only one Ready is in flight at a time; inputs may keep arriving meanwhile.
//!
//! # The durability rule (thesis §3.8, §10.2.1)
//!
//! A message that promises durable state leaves only after that state is on disk: votes and
//! append (or final snapshot) acknowledgements come out of [`Synced::take_persisted_messages`],
//! and only [`Written::sync`] makes a `Synced`, after the Ready's snapshot, entries and hard
//! state are fsynced: a shell that sends them earlier does not compile. Everything else, notably
//! the leader's own AppendEntries, is in [`Ready::take_messages`] and may go out before the
//! fsync: the leader replicates while its own write runs. The leader counts itself toward a
//! commit quorum only up to what it has made durable (known at `advance`), and a candidate counts
//! its own vote only once that vote is durable. Committed entries are handed out for applying only once they
//! are durable on this node too, so the applied state never runs ahead of the local log.
//!
//! # Features and where they come from
//!
//! - Election with randomized timeouts in `[election_timeout, 2 × election_timeout)` (§3.4),
//!   PreVote (§9.6), CheckQuorum (§6.2). Whatever the settings, a node that heard from a leader
//!   within the election timeout ignores (pre)vote requests, except for a campaign that follows a
//!   leadership transfer (§4.2.3), and a stale append or heartbeat is answered with our term
//!   (§5.1).
//! - Replication with per-follower progress (probe / replicate / snapshot), bounded in-flight
//!   messages and bytes, fast back-off with the follower's (index, term) hint (§5.3 of the
//!   thesis' log-compaction chapter and etcd raft). A leader commits only entries of its own term
//!   by counting replicas (§3.6.2, figure 3.7) and appends an empty entry when elected.
//! - ReadIndex (§6.4): the leader waits for an entry of its term to commit, records the commit
//!   index, confirms leadership with a heartbeat round; followers forward the request to the
//!   leader and get a `ReadIndexResponse`. Lease reads (§6.4.1) are opt-in (`lease_read`, only
//!   together with `check_quorum`): see "Lease reads assume bounded clock drift" below.
//! - Snapshots (§5.1–5.3): [`RawNode::compact`] drops the log behind an application snapshot
//!   (and answers `Ok(None)` if the log is already compacted that far, e.g. by a leader's
//!   snapshot still on its way to the shell); a follower that needs compacted entries receives
//!   the snapshot in chunks of at most `snapshot_chunk_bytes_max`, and a transfer resumes from
//!   the follower's acknowledged offset.
//! - Membership (§4): a change of at most one voter applies directly; several voter changes go
//!   through joint consensus, left by an empty [`ConfChange`] (or automatically with
//!   `auto_leave`). Learners receive the log and candidates never ask them for votes (a
//!   candidate whose configuration already promotes one does); a learner campaigns only after it
//!   refused such a candidate for its older log, until it hears from a leader, counted under its
//!   own configuration without its own vote, and steps down for a voter once elected (see
//!   `RawNode::is_promotable`). `AddVoter` on a learner promotes it. The configuration in effect is the latest in the
//!   log, committed or not; a truncated configuration entry reverts to the previous one. A leader
//!   appends a change only once an entry of its own term and the previous change have committed
//!   (thesis errata, raft-dev 2015). A leader that removed itself steps down once that change
//!   commits; until then, should it restart, it still campaigns, counted under the configuration
//!   before its removal (§4.2.2). A leader never appends its own demotion to learner: it hands
//!   leadership to a voter of the new configuration first ([`ProposeError::TransferInProgress`]),
//!   and the next leader makes the change. A node joining an existing cluster
//!   starts with no configuration ([`InitialState::snapshot`] = `None`) and first receives the
//!   leader's snapshot, which carries the configuration.
//! - Leadership transfer (§3.10): the leader brings the transferee up to date, then sends
//!   `TimeoutNow`; the transfer is abandoned after an election timeout. Proposals and
//!   membership changes meanwhile fail with [`ProposeError::TransferInProgress`].
//!
//! # Lease reads assume bounded clock drift
//!
//! Everything else in this crate is safe whatever the clocks do: ticks only decide when things
//! happen, never whether they are correct. Lease reads are the exception, which is why they are
//! off by default. A leader with `lease_read` answers reads without a heartbeat round while it
//! holds a lease: it starts when the leader started the newest heartbeat round that a quorum
//! acknowledged (not when the acknowledgements arrived) and lasts [`Config::lease_ticks`] of the
//! leader's ticks, `(election_timeout_ticks - 1) × (100 - d) / (100 + d)` for
//! `d = clock_drift_percent_max`. It rests on CheckQuorum's stickiness: a follower that heard
//! from the leader ignores (pre)votes for `election_timeout_ticks` of its own ticks (the lower
//! bound of the randomized timeout), so no other leader can be elected before the lease ends,
//! PROVIDED that every node's tick interval stays within `d`% of the nominal one (a node paused
//! or throttled for longer breaks the promise). Every member must run with the same
//! `lease_read`, `check_quorum`, `election_timeout_ticks` and drift bound. A new leader has no
//! lease until a round of its own term is acknowledged; a leader forfeits its lease for the rest
//! of its term once it sends `TimeoutNow` (those votes ignore stickiness); a node with
//! `lease_read` refuses (pre)votes for an election timeout after it starts, because a restart
//! forgets the leader it acknowledged. Without a valid lease, reads fall back to the heartbeat
//! round of plain ReadIndex.
//!
//! # Proposals on followers: forwarded
//!
//! [`RawNode::propose`] on a follower or learner forwards the data to the leader it knows
//! (`MessageBody::Propose`); without a known leader it fails with [`ProposeError::NoLeader`].
//! The leader may still drop a forwarded proposal (transfer under way, too many uncommitted
//! bytes, leadership lost), so the shell learns of success only by seeing its entry committed:
//! tag proposals with a request id and retry on timeout. Read requests are forwarded the same
//! way. Membership changes and leadership transfers are NOT forwarded: they fail with
//! [`ProposeError::NotLeader`] carrying the leader hint, so that the caller sees validation
//! errors.
//!
//! # Faults
//!
//! Messages are untrusted: out-of-range indexes, malformed entry runs, bogus terms or unknown
//! senders are ignored, never a panic. Broken internal invariants (commit going backwards or past
//! the last index, truncating committed entries, a Ready acknowledged out of turn) panic, in
//! release builds too: a node that stops is better than one that corrupts the replicated state.

mod conf_change;
pub mod config;
mod election;
pub mod errors;
mod log;
mod membership;
mod mutants;
mod progress;
mod quorum;
mod raw_node;
mod read_only;
pub mod ready;
mod replication;
mod snapshot;
pub mod status;
mod step;
pub mod types;

pub use conf_change::apply_conf_change;
pub use config::Config;
pub use errors::{ProposeError, RaftError};
pub use mutants::Mutant;
pub use progress::ProgressState;
pub use raw_node::{InitialState, RawNode};
pub use ready::{DurableLog, Ready, Synced, WriteBatch, Written};
pub use status::{PeerProgress, Status};
pub use types::*;
