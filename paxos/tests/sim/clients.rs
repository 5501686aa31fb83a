//! Clients: each issues one random operation at a time on a random key through a random node,
//! and records it in the history: with its output if answered, as unknown if the outcome is
//! unknown (timed out, node crashed), left out if it certainly did not take effect.

use rand::Rng;
use ringraft_paxos::limits::VALUE_BYTES_MAX_DEFAULT;
use ringraft_paxos::{Answer, NodeId, Op, OpId, Outcome, ProposeError};

use super::cluster::{key_name, value_bytes, value_id, Event, Who, World};
use super::linearizability::{Input, Operation, Output, NEVER_RETURNED};
use super::scenario::MS;

/// Client id of the final reads.
const FINAL_CLIENT: u64 = u64::MAX;

impl World {
    fn time(&mut self) -> u64 {
        self.seq += 1;
        self.now * 1_000_000 + self.seq
    }

    fn random_op(&mut self, c: usize, k: usize) -> (Op, Input) {
        let known = self.clients[c].versions.get(&k).copied().unwrap_or(0);
        let value = self.next_value;
        let pad = self.rng.gen_range(0..32);
        let roll = self.rng.gen_range(0..100);
        if roll < 30 {
            return (Op::Get, Input::Get);
        }
        if roll < 70 {
            self.next_value += 1;
        }
        match roll {
            30..=44 => (
                Op::Put {
                    value: value_bytes(value, pad),
                },
                Input::Put(value),
            ),
            45..=69 => {
                let expected = if self.rng.gen_bool(0.8) {
                    known
                } else {
                    self.rng.gen_range(0..=known + 1)
                };
                let op = Op::Cas {
                    expected_version: expected,
                    value: value_bytes(value, pad),
                };
                (op, Input::Cas { expected, value })
            }
            70..=84 => (
                Op::Delete {
                    expected_version: None,
                },
                Input::Delete { expected: None },
            ),
            _ => (
                Op::Delete {
                    expected_version: Some(known),
                },
                Input::Delete {
                    expected: Some(known),
                },
            ),
        }
    }

    pub fn client_wake(&mut self, c: usize) -> Result<(), String> {
        if self.clients[c].busy {
            return Ok(());
        }
        let k = self.rng.gen_range(0..self.ring.len());
        // Mostly through the key's sticky proposer (the first acceptor, as the owner would
        // be), which takes the one-round-trip path; otherwise any node, which contends.
        let owner = self.ring[k].config.acceptors[0];
        let n: NodeId = if self.rng.gen_bool(0.75) {
            owner
        } else {
            self.rng.gen_range(1..=self.s.nodes)
        };
        if !self.node(n).up {
            let d = self.rng.gen_range(1..=20) * MS;
            self.at(d, Event::ClientWake(c));
            return Ok(());
        }
        self.node(n).configure(&key_name(k))?;
        // Now and then a value past the limit: refused before anything is sent.
        if self.rng.gen_ratio(1, 50) {
            let op = Op::Put {
                value: vec![0; VALUE_BYTES_MAX_DEFAULT + 1],
            };
            match self.node(n).proposer.propose(0, &key_name(k), op) {
                Err(ProposeError::TooLarge { .. }) => {}
                other => return Err(format!("an oversized put was answered {other:?}")),
            }
        }
        let (op, input) = self.random_op(c, k);
        let id = self.next_op;
        self.next_op += 1;
        let call = self.time();
        self.history.push(Operation {
            client: c as u64,
            key: k as u64,
            input,
            output: None,
            call,
            ret: NEVER_RETURNED,
        });
        self.failed.push(false);
        let index = self.history.len() - 1;
        self.node(n)
            .proposer
            .propose(id, &key_name(k), op)
            .map_err(|e| format!("propose refused: {e}"))?;
        self.clients[c].busy = true;
        self.inflight.insert(id, (n, Who::Client(c, index)));
        self.drain(n)
    }

    pub fn final_read(&mut self, k: usize) -> Result<(), String> {
        let up: Vec<NodeId> = (1..=self.s.nodes)
            .filter(|&n| self.nodes[n as usize - 1].up)
            .collect();
        let n = up[self.rng.gen_range(0..up.len())];
        let id = self.next_op;
        self.next_op += 1;
        let call = self.time();
        self.history.push(Operation {
            client: FINAL_CLIENT,
            key: k as u64,
            input: Input::Get,
            output: None,
            call,
            ret: NEVER_RETURNED,
        });
        self.failed.push(false);
        let index = self.history.len() - 1;
        self.node(n).configure(&key_name(k))?;
        self.node(n)
            .proposer
            .propose(id, &key_name(k), Op::Get)
            .map_err(|e| e.to_string())?;
        self.inflight.insert(id, (n, Who::Final(k, index)));
        self.drain(n)
    }

    /// The node crashed with `op` in flight: its outcome is unknown (it stays in the history
    /// with no output).
    pub fn lost_answer(&mut self, op: OpId) {
        match self.inflight.remove(&op) {
            Some((_, Who::Client(c, _))) => {
                self.summary.ops_unknown += 1;
                self.clients[c].busy = false;
                let d = self.rng.gen_range(1..=50) * MS;
                self.at(d, Event::ClientWake(c));
            }
            Some((_, Who::Final(k, _))) => self.at(10 * MS, Event::FinalRead(k)),
            Some((_, Who::Handoff(k))) => {
                self.ring[k].handoff_pending = false;
                self.at(10 * MS, Event::Handoff(k));
            }
            Some((_, Who::Collect)) | None => {}
        }
    }

    pub fn on_answer(&mut self, n: NodeId, answer: Answer) -> Result<(), String> {
        let Some((_, who)) = self.inflight.remove(&answer.op) else {
            return Ok(()); // an immediate refusal of an op id 0 (the oversized put)
        };
        let _ = n;
        match who {
            Who::Client(c, index) => {
                let backoff = self.record(index, &answer.outcome)?;
                if let Some(Output::Written { version })
                | Some(Output::Conflict { current: version }) = self.history[index].output
                {
                    let k = self.history[index].key as usize;
                    self.clients[c].versions.insert(k, version);
                }
                if let Some(Output::Value { version, .. }) = self.history[index].output {
                    let k = self.history[index].key as usize;
                    self.clients[c].versions.insert(k, version);
                }
                self.clients[c].busy = false;
                let think = self.rng.gen_range(0..=20) * MS;
                self.at(think + backoff * 10 * MS, Event::ClientWake(c));
            }
            Who::Final(k, index) => {
                self.record(index, &answer.outcome)?;
                if self.history[index].output.is_some() {
                    self.finals_done[k] = true;
                } else {
                    self.at(20 * MS, Event::FinalRead(k));
                }
            }
            Who::Handoff(k) => self.handoff_answered(k, &answer)?,
            Who::Collect => {
                if answer.outcome == Outcome::Collected {
                    self.summary.collected += 1;
                }
            }
        }
        Ok(())
    }

    /// Records an answer in the history; returns the backoff it asks for, in ticks.
    fn record(&mut self, index: usize, outcome: &Outcome) -> Result<u64, String> {
        let output = match outcome {
            Outcome::Value(register) => Output::Value {
                value: value_id(&register.value)?,
                version: register.version,
            },
            Outcome::Written { version } => Output::Written { version: *version },
            Outcome::Conflict { current_version } => Output::Conflict {
                current: *current_version,
            },
            Outcome::Retry { backoff_ticks, .. } => {
                self.summary.ops_retried += 1;
                self.failed[index] = true;
                return Ok(*backoff_ticks);
            }
            Outcome::Unknown { backoff_ticks, .. } => {
                self.summary.ops_unknown += 1;
                return Ok(*backoff_ticks);
            }
            other => return Err(format!("a client operation was answered {other:?}")),
        };
        self.summary.ops_ok += 1;
        self.history[index].output = Some(output);
        self.history[index].ret = self.time();
        Ok(0)
    }
}
