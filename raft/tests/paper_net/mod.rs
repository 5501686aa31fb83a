//! A tiny in-memory cluster for the paper scenarios: every node has a "disk" that keeps exactly
//! what its Readies made durable, messages sit in one FIFO queue, links can be cut. Not the
//! simulator (tests/sim*): no clock, no randomness, just enough to drive scenarios by hand.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use ringraft_raft::{
    ConfState, Config, DurableLog, Entry, EntryPayload, HardState, InitialState, LogIndex, Message,
    NodeId, RawNode, ReadState, Ready, Role, Snapshot, SnapshotMeta, Synced, WriteBatch,
};

/// What a node made durable.
#[derive(Debug, Clone, Default)]
pub struct Disk {
    pub hard_state: HardState,
    pub snapshot: Option<Snapshot>,
    pub entries: Vec<Entry>,
    pub applied: LogIndex,
}

impl Disk {
    fn persist_entries(&mut self, entries: &[Entry]) {
        let Some(first) = entries.first() else {
            return;
        };
        self.entries.retain(|e| e.index < first.index);
        self.entries.extend_from_slice(entries);
    }

    /// Writes `ready` here and syncs it (a write is durable at once on this disk).
    pub fn persist(&mut self, ready: Ready) -> Synced {
        let Ok(written) = ready.write(self);
        let Ok(synced) = written.sync(self);
        synced
    }

    pub fn last_index(&self) -> LogIndex {
        self.entries
            .last()
            .map(|e| e.index)
            .or(self.snapshot.as_ref().map(|s| s.meta.index))
            .unwrap_or(0)
    }
}

impl DurableLog for Disk {
    type Error = std::convert::Infallible;

    fn write(&mut self, batch: WriteBatch<'_>) -> Result<(), Self::Error> {
        if let Some(snapshot) = batch.snapshot {
            self.entries.clear();
            self.snapshot = Some(snapshot.clone());
            self.applied = snapshot.meta.index;
        }
        self.persist_entries(batch.entries);
        if let Some(hard_state) = batch.hard_state {
            self.hard_state = hard_state;
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Decides whether to drop a message (true = drop).
pub type DropFilter = Box<dyn FnMut(&Message) -> bool>;

pub struct Network {
    pub nodes: BTreeMap<NodeId, RawNode>,
    pub disks: BTreeMap<NodeId, Disk>,
    pub configs: BTreeMap<NodeId, Config>,
    /// Every committed entry each node applied, in order (snapshots reset it to their index).
    pub applied: BTreeMap<NodeId, Vec<Entry>>,
    pub read_states: BTreeMap<NodeId, Vec<ReadState>>,
    pub queue: VecDeque<Message>,
    /// Links that lose every message, as (from, to).
    pub cut: BTreeSet<(NodeId, NodeId)>,
    /// Every message delivered, in order (for determinism checks and counting).
    pub delivered: Vec<Message>,
    /// Drops a message when it returns true.
    pub drop_filter: Option<DropFilter>,
}

pub fn config(id: NodeId) -> Config {
    let mut config = Config::new(id);
    config.election_timeout_ticks = 10;
    config.heartbeat_interval_ticks = 1;
    config
}

pub fn entry(index: LogIndex, term: u64) -> Entry {
    Entry {
        index,
        term,
        payload: EntryPayload::Normal(format!("{index}@{term}").into_bytes()),
    }
}

impl Network {
    /// A fresh cluster bootstrapped with `voters` and `learners`.
    pub fn new(voters: &[NodeId], learners: &[NodeId]) -> Network {
        Network::with_config(voters, learners, |_| {})
    }

    pub fn with_config(
        voters: &[NodeId],
        learners: &[NodeId],
        tweak: impl Fn(&mut Config),
    ) -> Network {
        let conf = ConfState {
            voters: voters.to_vec(),
            learners: learners.to_vec(),
            ..ConfState::default()
        };
        let mut network = Network::empty();
        for &id in voters.iter().chain(learners) {
            let mut c = config(id);
            tweak(&mut c);
            let disk = Disk {
                snapshot: Some(Snapshot {
                    meta: SnapshotMeta {
                        index: 0,
                        term: 0,
                        conf_state: conf.clone(),
                    },
                    data: Vec::new(),
                }),
                ..Disk::default()
            };
            network.add_node(c, disk);
        }
        network
    }

    pub fn empty() -> Network {
        Network {
            nodes: BTreeMap::new(),
            disks: BTreeMap::new(),
            configs: BTreeMap::new(),
            applied: BTreeMap::new(),
            read_states: BTreeMap::new(),
            queue: VecDeque::new(),
            cut: BTreeSet::new(),
            delivered: Vec::new(),
            drop_filter: None,
        }
    }

    /// Start (or restart) a node from `disk`.
    pub fn add_node(&mut self, config: Config, disk: Disk) {
        let id = config.id;
        let initial = InitialState {
            hard_state: disk.hard_state,
            snapshot: disk.snapshot.as_ref().map(|s| s.meta.clone()),
            snapshot_data: disk
                .snapshot
                .as_ref()
                .map(|s| s.data.clone())
                .unwrap_or_default(),
            entries: disk.entries.clone(),
            applied: disk.applied,
        };
        let node = RawNode::new(config.clone(), initial).expect("valid initial state");
        self.nodes.insert(id, node);
        self.disks.insert(id, disk);
        self.configs.insert(id, config);
        self.applied.entry(id).or_default();
    }

    /// A node that will join: no configuration, no log.
    pub fn add_joining_node(&mut self, id: NodeId) {
        self.add_node(config(id), Disk::default());
    }

    /// Crash `id` (losing nothing it made durable: the disk is exactly its Readies) and restart.
    pub fn restart(&mut self, id: NodeId) {
        let disk = self.disks[&id].clone();
        let config = self.configs[&id].clone();
        self.queue.retain(|m| m.to != id && m.from != id);
        self.add_node(config, disk);
    }

    pub fn node(&self, id: NodeId) -> &RawNode {
        &self.nodes[&id]
    }

    pub fn node_mut(&mut self, id: NodeId) -> &mut RawNode {
        self.nodes.get_mut(&id).expect("node exists")
    }

    /// Drain every Ready of `id`, doing what the shell does, in the documented order.
    pub fn process(&mut self, id: NodeId) {
        for _ in 0..1000 {
            let node = self.nodes.get_mut(&id).expect("node exists");
            if !node.has_ready() {
                return;
            }
            let mut ready = node.ready();
            self.queue.extend(ready.take_messages());
            let applied = self.applied.get_mut(&id).expect("applied exists");
            if let Some(snapshot) = ready.snapshot() {
                applied.retain(|e| e.index <= snapshot.meta.index);
            }
            let committed = ready.take_committed_entries();
            let read_states = ready.take_read_states();
            let disk = self.disks.get_mut(&id).expect("disk exists");
            let mut synced = disk.persist(ready);
            self.queue.extend(synced.take_persisted_messages());
            for entry in &committed {
                disk.applied = entry.index;
            }
            applied.extend(committed);
            self.read_states.entry(id).or_default().extend(read_states);
            node.advance(synced);
        }
        panic!("node {id} never stops producing Readies");
    }

    /// Takes one Ready of `id`, persists and acknowledges it without delivering anything;
    /// returns whether it carried a snapshot, and its messages (those sent at once, then those
    /// after the sync).
    pub fn take_one_ready(&mut self, id: NodeId) -> (bool, Vec<Message>) {
        let node = self.nodes.get_mut(&id).expect("node exists");
        let mut ready = node.ready();
        let had_snapshot = ready.snapshot().is_some();
        let mut messages = ready.take_messages();
        let disk = self.disks.get_mut(&id).expect("disk exists");
        let mut synced = disk.persist(ready);
        messages.extend(synced.take_persisted_messages());
        node.advance(synced);
        (had_snapshot, messages)
    }

    pub fn process_all(&mut self) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in ids {
            self.process(id);
        }
    }

    fn is_dropped(&mut self, msg: &Message) -> bool {
        if self.cut.contains(&(msg.from, msg.to)) || !self.nodes.contains_key(&msg.to) {
            return true;
        }
        self.drop_filter.as_mut().is_some_and(|f| f(msg))
    }

    /// Deliver messages until none is left (bounded).
    pub fn deliver(&mut self) {
        for _ in 0..100_000 {
            self.process_all();
            let Some(msg) = self.queue.pop_front() else {
                return;
            };
            if self.is_dropped(&msg) {
                continue;
            }
            self.delivered.push(msg.clone());
            let to = msg.to;
            self.node_mut(to).step(msg);
        }
        panic!("the network never quiesces");
    }

    /// Tick every node once and deliver everything that follows.
    pub fn tick_all(&mut self, times: usize) {
        for _ in 0..times {
            let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
            for id in ids {
                self.node_mut(id).tick();
            }
            self.deliver();
        }
    }

    /// Make `id` campaign and deliver until quiet; it must win.
    pub fn elect(&mut self, id: NodeId) {
        self.node_mut(id).campaign().expect("voter");
        self.deliver();
        assert_eq!(
            self.node(id).role(),
            Role::Leader,
            "node {id} failed to win"
        );
    }

    pub fn leader(&self) -> Option<NodeId> {
        let leaders: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.role() == Role::Leader)
            .map(|(&id, _)| id)
            .collect();
        leaders
            .iter()
            .copied()
            .max_by_key(|id| self.node(*id).term())
    }

    pub fn isolate(&mut self, id: NodeId) {
        let others: Vec<NodeId> = self.nodes.keys().copied().filter(|&o| o != id).collect();
        for other in others {
            self.cut.insert((id, other));
            self.cut.insert((other, id));
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    pub fn propose(&mut self, id: NodeId, data: &str) {
        self.node_mut(id)
            .propose(data.as_bytes().to_vec())
            .expect("proposal accepted");
        self.deliver();
    }

    /// The application snapshots its state at its applied index; the shell persists the result.
    pub fn compact(&mut self, id: NodeId, data: Vec<u8>) {
        let index = self.node(id).status().applied;
        let Some(snapshot) = self.node_mut(id).compact(index, data).expect("compaction") else {
            return;
        };
        let disk = self.disks.get_mut(&id).expect("disk exists");
        disk.entries.retain(|e| e.index > index);
        disk.snapshot = Some(snapshot);
    }

    /// Messages delivered so far that match `pred`.
    pub fn count_delivered(&self, pred: impl Fn(&Message) -> bool) -> usize {
        self.delivered.iter().filter(|m| pred(m)).count()
    }

    /// The application data each node applied, as strings.
    pub fn applied_data(&self, id: NodeId) -> Vec<String> {
        self.applied[&id]
            .iter()
            .filter_map(|e| match &e.payload {
                EntryPayload::Normal(data) => Some(String::from_utf8_lossy(data).into_owned()),
                _ => None,
            })
            .collect()
    }

    /// (index, term) of each entry in a node's durable log.
    pub fn log_terms(&self, id: NodeId) -> Vec<(LogIndex, u64)> {
        self.disks[&id]
            .entries
            .iter()
            .map(|e| (e.index, e.term))
            .collect()
    }
}

/// A node's durable state built by hand: bootstrapped with `voters`, holding `terms` as its log.
pub fn disk_with_log(voters: &[NodeId], term: u64, terms: &[u64], commit: LogIndex) -> Disk {
    Disk {
        hard_state: HardState {
            term,
            vote: None,
            commit,
        },
        snapshot: Some(Snapshot {
            meta: SnapshotMeta {
                index: 0,
                term: 0,
                conf_state: ConfState {
                    voters: voters.to_vec(),
                    ..ConfState::default()
                },
            },
            data: Vec::new(),
        }),
        entries: terms
            .iter()
            .enumerate()
            .map(|(i, &t)| entry(i as u64 + 1, t))
            .collect(),
        applied: 0,
    }
}
