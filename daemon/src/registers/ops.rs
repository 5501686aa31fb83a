//! Client operations in flight: what each waits for, and how the core's outcome becomes the
//! client's answer. A round refused before it could take effect is tried again (after the
//! core's backoff) until the request's deadline; one that may have taken effect is never tried
//! again: its answer is "unknown", and the client must read before retrying.

use std::collections::BTreeMap;
use std::time::Instant;

use ringraft_paxos::{Answer, Op, OpId, Outcome, ProposeError, RetryReason};
use ringraft_proto::limits::KV_ANY_VERSION;
use ringraft_proto::{Request, Response, Status};
use tokio::sync::oneshot;

use crate::node::view::error;

pub struct ClientOp {
    pub key: Vec<u8>,
    pub op: Op,
    pub deadline: Instant,
    pub reply: oneshot::Sender<Response>,
    /// The owner this op was forwarded to (only that node's answer counts).
    pub forwarded_to: Option<u64>,
}

impl ClientOp {
    pub fn forwarded_to(mut self, owner: u64) -> ClientOp {
        self.forwarded_to = Some(owner);
        self
    }

    /// The request that asks the same of another node, with what is left of the deadline.
    pub fn to_request(&self, now: Instant) -> Request {
        let left = self.deadline.saturating_duration_since(now).as_millis();
        let timeout_ms = u32::try_from(left).unwrap_or(u32::MAX).max(1);
        let key = self.key.clone();
        match &self.op {
            Op::Get => Request::KvGet { key, timeout_ms },
            Op::Cas {
                expected_version,
                value,
            } => Request::KvCas {
                key,
                expected_version: *expected_version,
                value: value.clone(),
                timeout_ms,
            },
            Op::Put { value } => Request::KvCas {
                key,
                expected_version: KV_ANY_VERSION,
                value: value.clone(),
                timeout_ms,
            },
            Op::Delete { expected_version } => Request::KvDelete {
                key,
                expected_version: expected_version.unwrap_or(KV_ANY_VERSION),
                timeout_ms,
            },
        }
    }

    /// The answer when the deadline passed with the op in flight somewhere (a round, or at the
    /// owner it was forwarded to): a read did nothing; a write may have taken effect.
    pub fn late_answer(&self) -> Response {
        match self.op {
            Op::Get => error(
                Status::Timeout,
                "no quorum of the key's acceptors answered before the deadline",
            ),
            _ => unknown("the deadline passed while it was in flight"),
        }
    }
}

struct Waiting {
    client: ClientOp,
    /// Set while the op sits out a backoff: the tick at which it is proposed again.
    retry_at_tick: Option<u64>,
    last_retry: Option<RetryReason>,
}

#[derive(Default)]
pub struct ClientOps {
    waiting: BTreeMap<OpId, Waiting>,
}

impl ClientOps {
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    pub fn insert(&mut self, id: OpId, client: ClientOp) {
        self.waiting.insert(
            id,
            Waiting {
                client,
                retry_at_tick: None,
                last_retry: None,
            },
        );
    }

    /// The key and op to propose again.
    pub fn op_of(&self, id: OpId) -> Option<(Vec<u8>, Op)> {
        self.waiting
            .get(&id)
            .map(|w| (w.client.key.clone(), w.client.op.clone()))
    }

    /// The core would not start the op: answer at once.
    pub fn refuse(&mut self, id: OpId, err: &ProposeError) {
        let Some(waiting) = self.waiting.remove(&id) else {
            return;
        };
        let status = match err {
            ProposeError::TooLarge { .. } | ProposeError::KeyTooLong { .. } => Status::TooLarge,
            ProposeError::NoAcceptors => Status::Unavailable,
            ProposeError::Busy => Status::Busy,
        };
        let _ = waiting.client.reply.send(error(status, err.to_string()));
    }

    /// Answers `id` with `response` (the runtime's own verdict, e.g. not ready to serve).
    pub fn fail(&mut self, id: OpId, response: Response) {
        if let Some(waiting) = self.waiting.remove(&id) {
            let _ = waiting.client.reply.send(response);
        }
    }

    /// The core answered `answer`; `tick` is now, `tick_ms` the length of one tick. A retry
    /// waits for `due` to hand the op back once its backoff has passed.
    pub fn answered(&mut self, answer: Answer, tick: u64, tick_ms: u64) {
        let Some(mut waiting) = self.waiting.remove(&answer.op) else {
            return; // answered already (its deadline passed)
        };
        let epoch = answer.epoch;
        let response = match answer.outcome {
            Outcome::Value(register) => Response::KvEntry {
                value: register.value,
                version: register.version,
                epoch,
            },
            Outcome::Written { version } => Response::KvWritten { version, epoch },
            Outcome::Conflict { current_version } => Response::KvConflict {
                current_version,
                epoch,
            },
            Outcome::Retry {
                reason,
                backoff_ticks,
            } => {
                let at = tick.saturating_add(backoff_ticks.max(1));
                let retry_time = Instant::now()
                    + std::time::Duration::from_millis(backoff_ticks.saturating_mul(tick_ms));
                if retry_time < waiting.client.deadline {
                    waiting.retry_at_tick = Some(at);
                    waiting.last_retry = Some(reason);
                    self.waiting.insert(answer.op, waiting);
                    return;
                }
                error(
                    Status::Timeout,
                    format!(
                        "no quorum of the key's acceptors took the operation before the deadline \
                         ({}); it did not take effect",
                        reason_text(reason)
                    ),
                )
            }
            Outcome::Unknown { reason, .. } => unknown(reason_text(reason)),
            Outcome::VersionExhausted => error(
                Status::InvalidArgument,
                "the register's version cannot grow further; nothing was written",
            ),
            other => error(
                Status::Internal,
                format!("a client operation was answered {other:?}"),
            ),
        };
        let _ = waiting.client.reply.send(response);
    }

    /// Ops waiting out a backoff whose tick has come.
    pub fn due(&mut self, tick: u64) -> Vec<OpId> {
        let mut due = Vec::new();
        for (id, waiting) in &mut self.waiting {
            if waiting.retry_at_tick.is_some_and(|at| at <= tick) {
                waiting.retry_at_tick = None;
                due.push(*id);
            }
        }
        due
    }

    /// Answers every op whose deadline passed. A write that is in a round may have taken
    /// effect; one sitting out a backoff did not (its last round was refused before any accept).
    pub fn expire(&mut self, now: Instant) {
        let late: Vec<OpId> = self
            .waiting
            .iter()
            .filter(|(_, w)| w.client.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            let Some(waiting) = self.waiting.remove(&id) else {
                continue;
            };
            let response = match (&waiting.client.op, waiting.retry_at_tick) {
                (Op::Get, _) | (_, None) => waiting.client.late_answer(),
                (_, Some(_)) => error(
                    Status::Timeout,
                    format!(
                        "no quorum of the key's acceptors took the write before the deadline ({}); \
                         it did not take effect",
                        waiting.last_retry.map_or("no answer", reason_text)
                    ),
                ),
            };
            let _ = waiting.client.reply.send(response);
        }
    }

    /// The runtime stops: every waiting client is told.
    pub fn fail_all(&mut self, response: &Response) {
        for (_, waiting) in std::mem::take(&mut self.waiting) {
            let _ = waiting.client.reply.send(response.clone());
        }
    }
}

fn unknown(why: &str) -> Response {
    error(
        Status::Timeout,
        format!(
            "the outcome is unknown: the write may or may not have taken effect ({why}); \
             read the key before retrying"
        ),
    )
}

fn reason_text(reason: RetryReason) -> &'static str {
    match reason {
        RetryReason::Contended => "other proposers are writing the key",
        RetryReason::StaleEpoch { .. } => "the acceptors know a newer ring",
        RetryReason::EpochAhead => "the acceptors have not learned this ring yet",
        RetryReason::NotAcceptor => "an acceptor asked is not in the key's set",
        RetryReason::TimedOut => "acceptors did not answer",
    }
}
