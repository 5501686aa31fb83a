//! The acceptor: keeps, per key, the promise, the accepted register and the newest epoch it took,
//! and answers prepares, accepts and forgets. What it promises is made durable before it says so.

use std::collections::BTreeMap;

use crate::config::Config;
use crate::limits::BALLOT_JUMP_MAX;
use crate::message::{Body, Message, Refusal};
use crate::mutants::Mutant;
use crate::outcome::PaxosError;
use crate::ready::{KeyState, Ready, Record};
use crate::types::{Ballot, Epoch, KeyConfig, Register};
use crate::validate::is_well_formed_request;

pub struct Acceptor {
    config: Config,
    keys: BTreeMap<Vec<u8>, KeyState>,
    /// The ring's word on each key's acceptors (newest epoch wins).
    views: BTreeMap<Vec<u8>, KeyConfig>,
    /// Every ballot up to this is refused for a key held nothing of: it covers the promises of
    /// the keys dropped, so dropping one never takes a promise back.
    floor: Ballot,
    /// The highest ballot counter this acceptor promised for any key (or covers with its
    /// floor). A request more than `BALLOT_JUMP_MAX` above it is refused. Derived from the
    /// durable state (rebuilt by `restore`), so a restart never lowers it below a promise.
    counter_high: u64,
    ready: Ready,
}

impl Acceptor {
    pub fn new(config: Config) -> Acceptor {
        Acceptor {
            config,
            keys: BTreeMap::new(),
            views: BTreeMap::new(),
            floor: Ballot::ZERO,
            counter_high: 0,
            ready: Ready::default(),
        }
    }

    /// Rebuilds the durable state from the records of earlier batches, in order. Key
    /// configurations are not records: the shell hands them in again from the ring.
    pub fn restore<'a>(
        config: Config,
        records: impl IntoIterator<Item = &'a Record>,
    ) -> Result<Acceptor, PaxosError> {
        let mut acceptor = Acceptor::new(config);
        for record in records {
            match record {
                Record::Key { key, state } => {
                    let sane = state
                        .accepted
                        .as_ref()
                        .is_none_or(|(b, r)| *b <= state.promised && r.is_well_formed(usize::MAX));
                    if !sane {
                        return Err(PaxosError::InvalidRecord(format!("{state:?}")));
                    }
                    acceptor.counter_high = acceptor.counter_high.max(state.promised.counter);
                    acceptor.keys.insert(key.clone(), state.clone());
                }
                Record::Forgot { key, floor } => {
                    acceptor.keys.remove(key);
                    acceptor.floor = acceptor.floor.max(*floor);
                    acceptor.counter_high = acceptor.counter_high.max(floor.counter);
                }
                Record::BallotsReserved { .. } => {}
            }
        }
        Ok(acceptor)
    }

    /// The ring changed for `key`. A key that moved away for good (handoff complete, or not a
    /// member at all) is dropped: it must not come back to life if this node joins its set
    /// again after the remaining copies were garbage-collected.
    pub fn set_key_config(&mut self, key: &[u8], view: KeyConfig) -> Result<(), PaxosError> {
        if !view.is_well_formed() {
            return Err(PaxosError::InvalidKeyConfig(format!("{view:?}")));
        }
        if self.views.get(key).is_some_and(|v| v.epoch > view.epoch) {
            return Ok(()); // an older ring than the one we have: nothing to learn
        }
        // A copy held by a node that is not in the sets, or that joins the key's set now (it is
        // not in the previous one), predates the sets the key lived on since: it is dropped.
        // Kept, it could outlive the garbage collection of a tombstone on the other acceptors
        // and later be found as the highest accepted register (a deleted value back to life).
        // A view older than what the copy was last used at is history (replayed after a
        // restart) and drops nothing: the copy may come from a later membership.
        let taken = self.keys.get(key).map_or(0, |s| s.epoch);
        let joining = view
            .previous
            .as_ref()
            .is_some_and(|(_, previous)| !previous.contains(&self.config.id));
        let outside = !view.has_member(self.config.id) && taken <= view.epoch;
        if outside || (joining && taken < view.epoch) {
            self.forget(key);
        }
        self.views.insert(key.to_vec(), view);
        Ok(())
    }

    pub fn key_state(&self, key: &[u8]) -> Option<&KeyState> {
        self.keys.get(key)
    }

    /// The configuration the ring last gave `key` (what [`Acceptor::set_key_config`] kept).
    pub fn key_config(&self, key: &[u8]) -> Option<&KeyConfig> {
        self.views.get(key)
    }

    /// Forgets the configuration of every key this acceptor holds no state of (a key it
    /// refused as `NotAcceptor`, dropped, or only heard of); held keys keep theirs. Returns how
    /// many were forgotten. O(keys configured): call it now and then, not per message.
    ///
    /// Contract: before the next message about a forgotten key, the shell hands in the key's
    /// configuration again, **no older than the one it handed in before** (the same rule as
    /// after a restart, when every configuration is gone). Then the acceptor behaves exactly as
    /// if it had never forgotten: for a key without state its answers depend only on the
    /// configuration and the floor, and the floor stays. Until it does, requests about the key
    /// are refused `EpochAhead` (nothing is promised). Why the contract matters, in
    /// docs/paxos.md "Bounded state".
    pub fn forget_views_without_state(&mut self) -> usize {
        let before = self.views.len();
        let keys = &self.keys;
        self.views.retain(|key, _| keys.contains_key(key));
        before - self.views.len()
    }

    /// How many keys this acceptor holds a configuration of.
    pub fn configured_keys(&self) -> usize {
        self.views.len()
    }

    /// The highest ballot counter this acceptor promised for any key, or covers with its
    /// floor: it refuses requests more than [`crate::limits::BALLOT_JUMP_MAX`] above.
    pub fn counter_high(&self) -> u64 {
        self.counter_high
    }

    /// The keys this acceptor holds state of, in key order.
    pub fn held_keys(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        self.keys.keys().map(Vec::as_slice)
    }

    /// Records whose replay gives this acceptor's durable state and nothing else: the floor
    /// first (as a `Forgot` of the empty key, which `restore` reads as "raise the floor"), then
    /// every held key. What a store writes when it compacts its log.
    pub fn checkpoint(&self) -> Vec<Record> {
        let mut records = Vec::with_capacity(self.keys.len() + 1);
        records.push(Record::Forgot {
            key: Vec::new(),
            floor: self.floor,
        });
        records.extend(self.keys.iter().map(|(key, state)| Record::Key {
            key: key.clone(),
            state: state.clone(),
        }));
        records
    }

    pub fn floor(&self) -> Ballot {
        self.floor
    }

    pub fn ready(&mut self) -> Ready {
        std::mem::take(&mut self.ready)
    }

    /// Handles one message from a peer. Anything malformed or not addressed to an acceptor is
    /// dropped; the acceptor never panics on input.
    pub fn step(&mut self, message: Message) {
        if message.to != self.config.id || !is_well_formed_request(&message) {
            return;
        }
        if let Body::Accept { register, .. } = &message.body {
            if !register.is_well_formed(self.config.value_bytes_max) {
                return self.refuse(&message, self.epoch_of(&message.key), Refusal::TooLarge);
            }
        }
        if let Err((epoch, reason)) = self.check_epoch(&message) {
            return self.refuse(&message, epoch, reason);
        }
        match message.body.clone() {
            Body::Prepare { ballot } => self.on_prepare(&message, ballot),
            Body::Accept { ballot, register } => self.on_accept(&message, ballot, register),
            Body::Forget { ballot } => self.on_forget(&message, ballot),
            _ => {}
        }
    }

    /// The newest epoch known for `key`: the ring's, or a request's this acceptor took.
    fn epoch_of(&self, key: &[u8]) -> Epoch {
        let view = self.views.get(key).map_or(0, |v| v.epoch);
        let taken = self.keys.get(key).map_or(0, |s| s.epoch);
        view.max(taken)
    }

    /// The epoch fence: refuse older epochs (a proposer with a stale ring), epochs the ring has
    /// not shown us yet (we cannot check membership), and keys we are no acceptor of.
    fn check_epoch(&self, message: &Message) -> Result<(), (Epoch, Refusal)> {
        let known = self.epoch_of(&message.key);
        let stale_ok = self.config.mutated(Mutant::AcceptStaleEpoch);
        if message.epoch < known && !stale_ok {
            return Err((known, Refusal::StaleEpoch));
        }
        let Some(view) = self.views.get(&message.key) else {
            return Err((known, Refusal::EpochAhead));
        };
        if message.epoch > view.epoch {
            return Err((known, Refusal::EpochAhead));
        }
        if !view.has_member(self.config.id) {
            return Err((known, Refusal::NotAcceptor));
        }
        Ok(())
    }

    fn state_of(&self, key: &[u8]) -> KeyState {
        self.keys.get(key).cloned().unwrap_or(KeyState {
            epoch: 0,
            promised: self.floor,
            accepted: None,
        })
    }

    /// True if `ballot` jumps implausibly far above every counter promised here: a buggy peer's
    /// request, refused so that it cannot push this key (and, once the key is dropped, the
    /// floor of every key) to `BALLOT_COUNTER_MAX`. Refusing is always safe.
    fn is_implausible(&self, ballot: Ballot) -> bool {
        ballot.counter > self.counter_high.saturating_add(BALLOT_JUMP_MAX)
    }

    /// Phase 1b: promise if `ballot` is at or above the promise (at: a resent prepare).
    fn on_prepare(&mut self, message: &Message, ballot: Ballot) {
        let mut state = self.state_of(&message.key);
        if ballot < state.promised || self.is_implausible(ballot) {
            return self.refuse(message, state.epoch, Refusal::Promised(state.promised));
        }
        state.promised = ballot;
        state.epoch = state.epoch.max(message.epoch);
        let reply = Body::Promise {
            ballot,
            accepted: state.accepted.clone(),
        };
        self.persist_and_reply(message, state, reply);
    }

    /// Phase 2b: accept at or above the promise, and promise the proposer's next ballot with it
    /// (one round trip). The same accept again is acknowledged again (the reply may be lost).
    fn on_accept(&mut self, message: &Message, ballot: Ballot, register: Register) {
        let mut state = self.state_of(&message.key);
        let again = state
            .accepted
            .as_ref()
            .is_some_and(|(b, r)| *b == ballot && *r == register);
        let promise_ok = ballot >= state.promised || self.config.mutated(Mutant::SkipPromiseCheck);
        if !again && (!promise_ok || self.is_implausible(ballot)) {
            return self.refuse(message, state.epoch, Refusal::Promised(state.promised));
        }
        if !again && state.accepted.as_ref().is_some_and(|(b, _)| *b >= ballot) {
            // Only under the mutant: a lower accept must not replace a higher one either way.
            let promised = state.promised.max(ballot);
            return self.refuse(message, state.epoch, Refusal::Promised(promised));
        }
        state.promised = state.promised.max(ballot.successor());
        state.epoch = state.epoch.max(message.epoch);
        state.accepted = Some((ballot, register));
        self.persist_and_reply(message, state, Body::Accepted { ballot });
    }

    /// Garbage collection: drop the key only if it holds the tombstone accepted at `ballot`,
    /// which the proposer has seen on every acceptor.
    fn on_forget(&mut self, message: &Message, ballot: Ballot) {
        let Some(state) = self.keys.get(&message.key) else {
            return self.reply_after_persist(message, 0, Body::Forgot { ballot });
        };
        let tombstone = Some((ballot, Register::absent()));
        if state.accepted != tombstone {
            return self.refuse(message, state.epoch, Refusal::NotTombstone);
        }
        let epoch = state.epoch;
        self.forget(&message.key);
        self.reply_after_persist(message, epoch, Body::Forgot { ballot });
    }

    /// Drops `key`, raising the floor over its promise so no promise is taken back.
    fn forget(&mut self, key: &[u8]) {
        let Some(state) = self.keys.remove(key) else {
            return;
        };
        let accepted = state.accepted.map_or(Ballot::ZERO, |(b, _)| b);
        self.floor = self.floor.max(state.promised).max(accepted);
        self.counter_high = self.counter_high.max(self.floor.counter);
        self.ready.records.push(Record::Forgot {
            key: key.to_vec(),
            floor: self.floor,
        });
    }

    fn persist_and_reply(&mut self, message: &Message, state: KeyState, reply: Body) {
        let epoch = state.epoch;
        if self.keys.get(&message.key) != Some(&state) {
            self.counter_high = self.counter_high.max(state.promised.counter);
            self.keys.insert(message.key.clone(), state.clone());
            self.ready.records.push(Record::Key {
                key: message.key.clone(),
                state,
            });
        }
        self.reply_after_persist(message, epoch, reply);
    }

    /// Even a reply that changed nothing waits for the batch: the state it reports may come from
    /// a record that is not durable yet (batches are made durable in order).
    fn reply_after_persist(&mut self, message: &Message, epoch: Epoch, body: Body) {
        let reply = reply_to(message, epoch, body);
        if self.config.mutated(Mutant::ReplyBeforeDurable) {
            self.ready.messages.push(reply);
        } else {
            self.ready.persisted_messages.push(reply);
        }
    }

    /// A refusal promises nothing, so it leaves at once.
    fn refuse(&mut self, message: &Message, epoch: Epoch, reason: Refusal) {
        let ballot = message.body.ballot();
        let reply = reply_to(message, epoch, Body::Refuse { ballot, reason });
        self.ready.messages.push(reply);
    }
}

fn reply_to(message: &Message, epoch: Epoch, body: Body) -> Message {
    Message {
        from: message.to,
        to: message.from,
        key: message.key.clone(),
        epoch,
        body,
    }
}
