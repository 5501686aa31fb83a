//! Clients of the simulated cluster: each runs one operation at a time (closed loop) against a
//! register/counter workload, retries on another node when its node does not answer, and records
//! the history the linearizability checker reads.
//!
//! A client talks to one node per attempt, as a program talks to its local daemon: it learns the
//! outcome only from that node (a write when that node applies it, a read when that node's
//! ReadIndex is answered). A write the client gave up on is "possibly applied".

use rand::Rng;
use ringraft_raft::NodeId;

use super::clock::Micros;
use super::linearizability::{Input, Operation, NEVER_RETURNED};
use super::node::read_context;
use super::state_machine::{Command, RequestId, Write};

/// The kinds of operations a key sees: pure registers let the checker drop unobserved timed-out
/// writes, counters exercise results that depend on every earlier write.
fn inputs_for_key(key: u64) -> &'static [u8] {
    match key % 3 {
        0 => &[0, 2],    // register: put, read
        1 => &[1, 2],    // counter: add, read
        _ => &[0, 1, 2], // both
    }
}

/// A node a client keeps talking to for a while.
#[derive(Debug, Clone, Copy)]
pub struct Home {
    pub node: NodeId,
    pub until: Micros,
    /// Only reads go there (a reader of a leader that was cut off: its writes would only hang).
    pub reads_only: bool,
}

#[derive(Debug, Clone)]
pub struct Attempt {
    pub node: NodeId,
    pub incarnation: u32,
}

#[derive(Debug, Clone)]
pub struct PendingOp {
    pub seq: u64,
    pub key: u64,
    pub input: Input,
    /// Index of this operation in the history.
    history_index: usize,
    pub attempt: Option<Attempt>,
    pub give_up_at: Micros,
}

impl PendingOp {
    pub fn command(&self, client: u64) -> Option<Command> {
        let id = RequestId {
            client,
            seq: self.seq,
        };
        let write = match self.input {
            Input::Put(value) => Write::Put {
                key: self.key,
                value,
            },
            Input::Add(delta) => Write::Add {
                key: self.key,
                delta,
            },
            Input::Read => return None,
        };
        Some(Command { id, write })
    }

    pub fn read_context(&self, client: u64) -> Vec<u8> {
        read_context(client, self.seq, self.key)
    }
}

pub struct Client {
    pub id: u64,
    next_seq: u64,
    pub current: Option<PendingOp>,
    /// Ignores wake-ups scheduled before the last change.
    pub wake_generation: u64,
    /// Sequence number of the last operation that completed.
    pub last_completed_seq: u64,
    /// Until the given time, the client talks only to this node (the nemesis sends clients to a
    /// leader it just cut off, as programs whose local daemon that leader is).
    pub home: Option<Home>,
}

impl Client {
    /// The sequence number of the latest operation started.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }
}

pub struct Workload {
    pub clients: Vec<Client>,
    pub keys: u64,
    /// Logical time: bumped at every invocation and response so each is unique.
    logical: u64,
    history: Vec<Operation>,
    /// Acknowledged writes and the value they produced.
    pub acknowledged: Vec<(RequestId, i64)>,
    pub completed: u64,
    pub reads_completed: u64,
    pub given_up: u64,
}

impl Workload {
    pub fn new(clients: usize, keys: u64) -> Workload {
        Workload {
            clients: (0..clients as u64)
                .map(|i| Client {
                    id: i + 1,
                    next_seq: 0,
                    current: None,
                    wake_generation: 0,
                    last_completed_seq: 0,
                    home: None,
                })
                .collect(),
            keys,
            logical: 0,
            history: Vec::new(),
            acknowledged: Vec::new(),
            completed: 0,
            reads_completed: 0,
            given_up: 0,
        }
    }

    fn tick(&mut self) -> u64 {
        self.logical += 1;
        self.logical
    }

    /// Starts a new random operation for client `index`.
    pub fn start(&mut self, index: usize, give_up_at: Micros, rng: &mut impl Rng) {
        let key = rng.gen_range(0..self.keys);
        let kinds = inputs_for_key(key);
        let client = &mut self.clients[index];
        client.next_seq += 1;
        let seq = client.next_seq;
        // A client sent to read from a node reads only, while it is there.
        let reader = client.home.is_some_and(|h| h.reads_only);
        let kind = kinds[rng.gen_range(0..kinds.len())];
        let input = match if reader { 2 } else { kind } {
            // Unique values, so a read names the write it saw.
            0 => Input::Put(((client.id as i64) << 32) | seq as i64),
            1 => Input::Add(rng.gen_range(1..10)),
            _ => Input::Read,
        };
        let client_id = client.id;
        let call = self.tick();
        self.history.push(Operation {
            client: client_id,
            key,
            input,
            output: None,
            call,
            ret: NEVER_RETURNED,
        });
        self.clients[index].current = Some(PendingOp {
            seq,
            key,
            input,
            history_index: self.history.len() - 1,
            attempt: None,
            give_up_at,
        });
    }

    fn complete(&mut self, index: usize, output: Option<i64>) {
        let op = self.clients[index]
            .current
            .take()
            .expect("completing a pending operation");
        let ret = self.tick();
        let entry = &mut self.history[op.history_index];
        entry.ret = ret;
        entry.output = output;
        if let Some(command) = op.command(self.clients[index].id) {
            let value = match command.write {
                Write::Put { value, .. } => value,
                Write::Add { .. } => output.expect("an acknowledged add has a result"),
            };
            self.acknowledged.push((command.id, value));
        }
        self.clients[index].last_completed_seq = op.seq;
        self.clients[index].wake_generation += 1;
        self.completed += 1;
    }

    /// The client stops waiting: a write stays in the history as possibly applied, a read (which
    /// changed nothing) leaves it.
    pub fn give_up(&mut self, index: usize) {
        let op = self.clients[index]
            .current
            .take()
            .expect("giving up a pending operation");
        if op.input == Input::Read {
            // Mark for removal; removal would shift the indices of pending operations.
            self.history[op.history_index].call = 0;
        }
        self.clients[index].wake_generation += 1;
        self.given_up += 1;
    }

    fn pending_at(&self, node: NodeId, incarnation: u32) -> impl Iterator<Item = usize> + '_ {
        self.clients.iter().enumerate().filter_map(move |(i, c)| {
            let attempt = c.current.as_ref()?.attempt.as_ref()?;
            (attempt.node == node && attempt.incarnation == incarnation).then_some(i)
        })
    }

    /// Node `node` applied a write; the client waiting on it there learns the outcome.
    /// Returns the clients whose operation completed.
    pub fn on_write_applied(
        &mut self,
        node: NodeId,
        incarnation: u32,
        id: RequestId,
        value: i64,
    ) -> Vec<usize> {
        let waiting: Vec<usize> = self.pending_at(node, incarnation).collect();
        let mut completed = Vec::new();
        for index in waiting {
            let client = &self.clients[index];
            let op = client.current.as_ref().expect("pending");
            if client.id == id.client && op.seq == id.seq {
                let output = match op.input {
                    Input::Put(_) => None,
                    _ => Some(value),
                };
                if let Input::Put(written) = op.input {
                    assert_eq!(written, value, "a put's outcome is the value it wrote");
                }
                self.complete(index, output);
                completed.push(index);
            }
        }
        completed
    }

    /// Node `node` answered a read.
    pub fn on_read(
        &mut self,
        node: NodeId,
        incarnation: u32,
        context: &[u8],
        value: i64,
    ) -> Vec<usize> {
        let waiting: Vec<usize> = self.pending_at(node, incarnation).collect();
        let mut completed = Vec::new();
        for index in waiting {
            let client = &self.clients[index];
            let op = client.current.as_ref().expect("pending");
            if op.input == Input::Read && op.read_context(client.id) == context {
                self.complete(index, Some(value));
                self.reads_completed += 1;
                completed.push(index);
            }
        }
        completed
    }

    /// The history for the checker, without the reads nobody answered.
    pub fn history(&self) -> Vec<Operation> {
        self.history
            .iter()
            .filter(|op| op.call != 0)
            .cloned()
            .collect()
    }
}
