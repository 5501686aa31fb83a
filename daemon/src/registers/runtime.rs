//! The registers' loop: one thread that owns this node's acceptor, proposer and register store,
//! fed by client operations, peers' register messages, the node's published view and a clock.
//! Each turn takes every input that is ready, then carries out the cores' `Ready` batches in the
//! order their contract gives (docs/paxos.md, "Durability rule"): messages and answers at once,
//! the records appended and made durable with one fdatasync, then the messages that rest on them.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringraft_paxos::{Acceptor, Answer, Body, Message, NodeId, Op, OpId, Proposer, Ready};
use ringraft_proto::Status;
use ringraft_storage::{RegisterStore, StorageError};
use tokio::sync::{mpsc, watch};
use tracing::{debug, error, info, warn};

use super::acceptor_sets::AcceptorSets;
use super::handoff::Handoff;
use super::ops::{ClientOp, ClientOps};
use super::RegisterMetrics;
use crate::node::view::error;
use crate::node::{ClusterView, CommandSubmitter};
use crate::state::StateCommand;
use crate::transport::{RegisterInbound, TransportHandle};

/// One tick of the proposers' clock (timeouts, resends and backoffs are counted in ticks).
pub const TICK: Duration = Duration::from_millis(10);
/// Inputs taken in one turn before the batch is made durable: bounds a turn's latency.
const INPUTS_PER_TURN_MAX: usize = 1024;
/// A forwarded read not answered within this is proposed here instead: a read changes nothing,
/// so running it twice is harmless, and the owner may have just died (a write cannot be
/// retried this way: it may have taken effect at the owner).
const FORWARDED_READ_PATIENCE: Duration = Duration::from_millis(500);
/// Past this many keys configured or tracked in either core, idle per-key state is forgotten
/// (docs/paxos.md, "Bounded state"): a sweep costs the owner one extra prepare per cached key
/// it writes again, so it runs on size, not on a timer. `configure` hands every key's current
/// configuration in again before its next message or operation, from a plane that only moves
/// forward: the contract of both forget calls.
const KEYS_TRACKED_MAX: usize = 100_000;
/// The sweep bound is checked this often (in ticks).
const SWEEP_CHECK_TICKS: u64 = 100;

pub struct Runtime {
    pub id: NodeId,
    pub limits: crate::config::Limits,
    pub acceptor: Acceptor,
    pub proposer: Proposer,
    pub store: RegisterStore,
    pub transport: TransportHandle,
    pub node: CommandSubmitter,
    pub view: watch::Receiver<Arc<ClusterView>>,
    /// The node serves registers once it has applied at least this index (what it had
    /// committed before it stopped): until then its view of the acceptor sets may be older than
    /// the epochs it already took part in.
    pub serve_from_index: u64,
    pub metrics: Arc<RegisterMetrics>,
}

struct Loop {
    rt: Runtime,
    sets: Option<AcceptorSets>,
    ops: ClientOps,
    next_op: OpId,
    handoff: Option<Handoff>,
    /// Messages from this node to itself (its proposer and its acceptor).
    local: VecDeque<Message>,
    tick: u64,
    /// Requests forwarded to their key's owner, by call id, until its answer or the deadline,
    /// with when they were sent.
    forwarded: BTreeMap<u64, (Instant, ClientOp)>,
    next_call: u64,
    /// The node's latest view (who is down, for forwarding).
    latest: Option<Arc<ClusterView>>,
}

impl Runtime {
    pub async fn run(
        self,
        mut requests: mpsc::Receiver<ClientOp>,
        mut inbound: mpsc::Receiver<RegisterInbound>,
    ) {
        let mut this = Loop {
            rt: self,
            sets: None,
            ops: ClientOps::default(),
            next_op: 1,
            handoff: None,
            local: VecDeque::new(),
            tick: 0,
            forwarded: BTreeMap::new(),
            next_call: 1,
            latest: None,
        };
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        this.on_view();
        let stopped = loop {
            tokio::select! {
                op = requests.recv() => match op {
                    Some(op) => this.start_client_op(op),
                    None => break "every handle was dropped",
                },
                Some(msg) = inbound.recv() => this.on_inbound(msg),
                _ = ticker.tick() => this.on_tick(),
                changed = this.rt.view.changed() => {
                    if changed.is_err() {
                        break "the node stopped";
                    }
                    this.on_view();
                }
            }
            for _ in 0..INPUTS_PER_TURN_MAX {
                if let Ok(msg) = inbound.try_recv() {
                    this.on_inbound(msg);
                } else if let Ok(op) = requests.try_recv() {
                    this.start_client_op(op);
                } else {
                    break;
                }
            }
            if let Err(err) = this.flush() {
                error!(%err, "register store failed: stopping the node");
                this.ops.fail_all(&error(
                    Status::Internal,
                    format!("the registers stopped on a storage error: {err}"),
                ));
                this.rt.node.fail(err.to_string());
                break "a storage error";
            }
        };
        info!("registers stopped: {stopped}");
        let stopping = error(Status::ShuttingDown, "the node is shutting down");
        this.ops.fail_all(&stopping);
        for (_, (_, op)) in std::mem::take(&mut this.forwarded) {
            let _ = op.reply.send(stopping.clone());
        }
    }
}

impl Loop {
    fn serving(&self) -> Option<&AcceptorSets> {
        self.sets.as_ref()
    }

    /// Gives both cores the ring's configuration of `key`; false if no member owns keys.
    fn configure(&mut self, key: &[u8]) -> bool {
        let Some(config) = self.serving().and_then(|sets| sets.config_of(key)) else {
            return false;
        };
        if self.rt.acceptor.key_config(key) != Some(&config) {
            if let Err(err) = self.rt.acceptor.set_key_config(key, config.clone()) {
                warn!(%err, "acceptor refused a key configuration");
                return false;
            }
        }
        if self.rt.proposer.key_config(key) != Some(&config) {
            if let Err(err) = self.rt.proposer.set_key_config(key, config) {
                warn!(%err, "proposer refused a key configuration");
                return false;
            }
        }
        true
    }

    fn on_view(&mut self) {
        let view = self.rt.view.borrow_and_update().clone();
        self.latest = Some(view.clone());
        if view.removed.is_some() || view.membership.members.is_empty() {
            self.sets = None;
            return;
        }
        if view.applied_index < self.rt.serve_from_index {
            return;
        }
        let plane = view.registers.clone();
        if !plane.is_enabled() {
            // A state from a daemon that ran no registers: the leader enables them through the
            // log; until then nothing is served (see `state::registers`).
            self.sets = None;
            return;
        }
        if self.sets.as_ref().is_some_and(|sets| sets.is_of(&plane)) {
            self.check_handoff();
            return;
        }
        let first = self.sets.is_none();
        self.sets = Some(AcceptorSets::new(
            plane.clone(),
            view.membership.replication_factor,
        ));
        if first {
            info!(
                epoch = plane.epoch(),
                keys = self.rt.acceptor.held_keys().len(),
                "registers serving"
            );
        }
        // Held keys learn the new sets now: the epoch fence and the drop rule apply to them
        // whether or not a message comes. Other keys learn them with their next message.
        let held: Vec<Vec<u8>> = self.rt.acceptor.held_keys().map(<[u8]>::to_vec).collect();
        for key in &held {
            self.configure(key);
        }
        self.rt
            .metrics
            .plane_epoch
            .store(plane.epoch(), std::sync::atomic::Ordering::Relaxed);
        self.check_handoff();
    }

    /// Starts this node's handoff for a new transition, or ends one that is over.
    fn check_handoff(&mut self) {
        let Some(sets) = self.sets.as_ref() else {
            return;
        };
        let Some(transition) = sets.plane().pending() else {
            self.handoff = None;
            return;
        };
        if self
            .handoff
            .as_ref()
            .is_some_and(|h| h.epoch == transition.epoch)
        {
            return;
        }
        let epoch = transition.epoch;
        let moving: Vec<Vec<u8>> = self
            .rt
            .acceptor
            .held_keys()
            .filter(|key| {
                sets.config_of(key)
                    .is_some_and(|config| config.previous.is_some())
            })
            .map(<[u8]>::to_vec)
            .collect();
        info!(
            epoch,
            keys = moving.len(),
            "registers transition: handing off held keys"
        );
        self.handoff = Some(Handoff::new(epoch, moving));
    }

    fn next_op_id(&mut self) -> OpId {
        let id = self.next_op;
        self.next_op += 1;
        id
    }

    fn on_inbound(&mut self, inbound: RegisterInbound) {
        match inbound {
            RegisterInbound::Message(msg) => self.step(msg),
            RegisterInbound::Call {
                from,
                call,
                request,
            } => self.answer_call(from, call, request),
            RegisterInbound::Answer {
                from,
                call,
                response,
            } => {
                // Only the node the call went to may answer it.
                let from_owner = self
                    .forwarded
                    .get(&call)
                    .is_some_and(|(_, op)| op.forwarded_to == Some(from));
                if let Some((_, op)) = from_owner.then(|| self.forwarded.remove(&call)).flatten() {
                    let _ = op.reply.send(response);
                }
            }
        }
    }

    /// A peer forwarded a request to this node as the key's owner: propose it here (never
    /// forward again) and send the answer back.
    fn answer_call(&mut self, from: NodeId, call: u64, request: ringraft_proto::Request) {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let transport = self.rt.transport.clone();
        let parsed = super::parse_request(&self.rt.limits, request);
        tokio::spawn(async move {
            if let Ok(response) = answer.await {
                transport.send_register_answer(from, call, response);
            }
        });
        match parsed {
            Err(response) => {
                let _ = reply.send(response);
            }
            Ok((key, op, timeout_ms)) => {
                self.rt
                    .metrics
                    .answered_for_peers
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let deadline = Instant::now() + Duration::from_millis(u64::from(timeout_ms));
                self.start_local(ClientOp {
                    key,
                    op,
                    deadline,
                    reply,
                    forwarded_to: None,
                });
            }
        }
    }

    /// The node this key's requests go to, if not this one: the owner on the newest acceptor
    /// ring, when the failure detector does not hold it down.
    fn forward_target(&self, key: &[u8]) -> Option<NodeId> {
        let owner = self.sets.as_ref()?.owner_of(key)?;
        let view = self.latest.as_ref()?;
        let active = view
            .membership
            .members
            .get(&owner)
            .is_some_and(|m| m.state == ringraft_proto::MemberState::Active);
        (owner != self.rt.id && active).then_some(owner)
    }

    fn start_client_op(&mut self, op: ClientOp) {
        if self.sets.is_none() {
            let _ = op.reply.send(error(
                Status::Unavailable,
                "the registers are not serving yet (the node is joining, recovering or removed)",
            ));
            return;
        }
        if let Some(owner) = self.forward_target(&op.key) {
            let call = self.next_call;
            self.next_call += 1;
            if self
                .rt
                .transport
                .send_register_call(owner, call, op.to_request(Instant::now()))
            {
                self.rt
                    .metrics
                    .forwarded
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.forwarded
                    .insert(call, (Instant::now(), op.forwarded_to(owner)));
                return;
            }
        }
        self.start_local(op);
    }

    fn start_local(&mut self, op: ClientOp) {
        if self.sets.is_none() {
            let _ = op.reply.send(error(
                Status::Unavailable,
                "the registers are not serving yet (the node is joining, recovering or removed)",
            ));
            return;
        }
        let id = self.next_op_id();
        self.ops.insert(id, op);
        self.rt
            .metrics
            .ops
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.propose(id);
    }

    fn propose(&mut self, id: OpId) {
        let Some((key, op)) = self.ops.op_of(id) else {
            return;
        };
        if !self.configure(&key) {
            self.ops
                .fail(id, error(Status::Unavailable, "no active member owns keys"));
            return;
        }
        if let Err(err) = self.rt.proposer.propose(id, &key, op) {
            self.ops.refuse(id, &err);
        }
    }

    /// A peer's (or this node's own) register message. Nothing is remembered for a key the
    /// message cannot be about: an over-long key, or a reply about a key this proposer never
    /// proposed for (a peer could otherwise make both cores keep a view per key it invents).
    fn step(&mut self, msg: Message) {
        if self.sets.is_none() || msg.key.len() > ringraft_paxos::limits::KEY_BYTES_MAX {
            return;
        }
        let is_request = matches!(
            msg.body,
            Body::Prepare { .. } | Body::Accept { .. } | Body::Forget { .. }
        );
        if !is_request && self.rt.proposer.key_config(&msg.key).is_none() {
            return;
        }
        if !self.configure(&msg.key) {
            return;
        }
        if is_request {
            self.rt.acceptor.step(msg);
        } else {
            self.rt.proposer.step(msg);
        }
    }

    fn on_tick(&mut self) {
        self.tick += 1;
        self.rt.proposer.tick();
        let now = Instant::now();
        self.ops.expire(now);
        let late: Vec<u64> = self
            .forwarded
            .iter()
            .filter(|(_, (sent, op))| {
                op.deadline <= now
                    || (op.op == Op::Get && now.duration_since(*sent) >= FORWARDED_READ_PATIENCE)
            })
            .map(|(call, _)| *call)
            .collect();
        for call in late {
            let Some((_, op)) = self.forwarded.remove(&call) else {
                continue;
            };
            if op.deadline > now {
                // A read the owner has not answered: run it here.
                self.start_local(ClientOp {
                    forwarded_to: None,
                    ..op
                });
            } else {
                let response = op.late_answer();
                let _ = op.reply.send(response);
            }
        }
        for id in self.ops.due(self.tick) {
            self.propose(id);
        }
        self.drive_handoff();
        if self.tick.is_multiple_of(SWEEP_CHECK_TICKS) {
            self.sweep_idle_keys();
        }
        self.rt.metrics.publish(
            self.ops.len(),
            self.rt.acceptor.held_keys().len(),
            self.handoff.as_ref().map_or(0, Handoff::remaining),
            self.rt.store.log_bytes(),
        );
    }

    fn sweep_idle_keys(&mut self) {
        let proposer = &self.rt.proposer;
        let largest = proposer
            .configured_keys()
            .max(proposer.tracked_keys())
            .max(self.rt.acceptor.configured_keys());
        if largest <= KEYS_TRACKED_MAX {
            return;
        }
        let proposer_forgot = self.rt.proposer.forget_idle();
        let acceptor_forgot = self.rt.acceptor.forget_views_without_state();
        info!(
            proposer_forgot,
            acceptor_forgot, "forgot idle per-key state of the registers"
        );
    }

    fn drive_handoff(&mut self) {
        let tick = self.tick;
        let Some(mut handoff) = self.handoff.take() else {
            return;
        };
        for key in handoff.next_keys(tick) {
            if !self.configure(&key) {
                handoff.requeue(key, tick);
                continue;
            }
            let id = self.next_op_id();
            match self.rt.proposer.handoff(id, &key) {
                Ok(()) => handoff.started(id, key),
                Err(err) => {
                    debug!(%err, "handoff round could not start; later");
                    handoff.requeue(key, tick);
                }
            }
        }
        let already = self
            .sets
            .as_ref()
            .and_then(|sets| sets.plane().pending())
            .is_some_and(|t| t.epoch == handoff.epoch && t.reported.contains(&self.rt.id));
        if !already && handoff.report_due(Instant::now()) {
            info!(
                epoch = handoff.epoch,
                keys = handoff.handed_off(),
                "registers handed off: reporting"
            );
            self.rt.node.submit(StateCommand::RegistersHandedOff {
                node: self.rt.id,
                epoch: handoff.epoch,
            });
        }
        self.handoff = Some(handoff);
    }

    fn on_answer(&mut self, answer: Answer) {
        if let Some(handoff) = self.handoff.as_mut().filter(|h| h.owns(answer.op)) {
            handoff.answered(answer.op, &answer.outcome, self.tick);
            return;
        }
        self.ops
            .answered(answer, self.tick, TICK.as_millis() as u64);
    }

    fn route(&mut self, msg: Message) {
        if msg.to == self.rt.id {
            self.local.push_back(msg);
        } else {
            self.rt.transport.send_register(msg);
        }
    }

    /// Carries out the cores' work until none is left (messages to itself make more).
    fn flush(&mut self) -> Result<(), StorageError> {
        loop {
            let accepted: Ready = self.rt.acceptor.ready();
            let proposed: Ready = self.rt.proposer.ready();
            if accepted.is_empty() && proposed.is_empty() && self.local.is_empty() {
                self.rt.proposer.advance(proposed.number);
                break;
            }
            for msg in accepted.messages.into_iter().chain(proposed.messages) {
                self.route(msg);
            }
            for answer in proposed.answers {
                self.on_answer(answer);
            }
            let mut records = accepted.records;
            records.extend(proposed.records);
            if !records.is_empty() {
                self.rt.store.append(&records)?;
                self.rt.store.sync()?;
            }
            for msg in accepted
                .persisted_messages
                .into_iter()
                .chain(proposed.persisted_messages)
            {
                self.route(msg);
            }
            self.rt.proposer.advance(proposed.number);
            while let Some(msg) = self.local.pop_front() {
                self.step(msg);
            }
        }
        if self.rt.store.needs_compaction() {
            let mut live = self.rt.acceptor.checkpoint();
            live.push(self.rt.proposer.checkpoint());
            self.rt.store.compact(live)?;
            info!(
                keys = self.rt.acceptor.held_keys().len(),
                "register store compacted"
            );
        }
        Ok(())
    }
}
