//! Scripted schedules under the simulator's checkers: the same shells, disks and invariants as the
//! random runs, but the test decides who campaigns, crashes and restarts, and which messages get
//! through. Random runs rarely line up the few steps some bugs need (the paper's figure 8 takes
//! four leaders in a precise order); these scripts line them up on purpose, and the checkers
//! (not hand-written expectations) decide whether the cluster stayed safe.
//!
//! Every write is made durable at once (the fsync completes immediately), so crashes lose nothing
//! the core was told is durable.

use std::collections::{BTreeMap, VecDeque};

use ringraft_raft::{ConfState, Config, Message, NodeId, Snapshot, SnapshotMeta, Status};

use super::checkers::Invariants;
use super::disk::DurableState;
use super::node::{Effects, NodeShell, ShellBug};
use super::state_machine::{Command, RequestId, Write};

/// Drops a message when it returns true; it sees the nodes as they are when the message arrives.
pub type DropRule = Box<dyn FnMut(&Message, &BTreeMap<NodeId, NodeShell>) -> bool>;

/// Bound on messages delivered by one `deliver` (a script that needs more is a message storm).
const DELIVERIES_MAX: usize = 100_000;
/// Bound on fsyncs completed back to back for one input.
const FSYNCS_PER_INPUT_MAX: usize = 64;
/// The scripts never compact.
const COMPACTION_THRESHOLD: u64 = 1 << 40;

pub struct ScriptedCluster {
    pub nodes: BTreeMap<NodeId, NodeShell>,
    configs: BTreeMap<NodeId, Config>,
    queue: VecDeque<Message>,
    pub invariants: Invariants,
    pub drop_rule: Option<DropRule>,
    next_request: u64,
}

impl ScriptedCluster {
    /// Voters `1..=voters`, bootstrapped and up. Elections happen only when the script calls
    /// `campaign` (nothing ticks), so PreVote and CheckQuorum are off: they exist to keep timers
    /// from disrupting a leader, and there are no timers here.
    pub fn new(voters: u64, tweak: impl Fn(&mut Config)) -> ScriptedCluster {
        let bootstrap = DurableState {
            snapshot: Some(Snapshot {
                meta: SnapshotMeta {
                    index: 0,
                    term: 0,
                    conf_state: ConfState {
                        voters: (1..=voters).collect(),
                        ..ConfState::default()
                    },
                },
                data: Vec::new(),
            }),
            ..DurableState::default()
        };
        let mut cluster = ScriptedCluster {
            nodes: BTreeMap::new(),
            configs: BTreeMap::new(),
            queue: VecDeque::new(),
            invariants: Invariants::default(),
            drop_rule: None,
            next_request: 1,
        };
        for id in 1..=voters {
            let mut config = Config::new(id);
            config.pre_vote = false;
            config.check_quorum = false;
            tweak(&mut config);
            let shell = NodeShell::new(
                id,
                bootstrap.clone(),
                ShellBug::None,
                COMPACTION_THRESHOLD,
                0,
            );
            cluster.nodes.insert(id, shell);
            cluster.configs.insert(id, config);
            cluster.restart(id);
        }
        cluster
    }

    pub fn status(&self, id: NodeId) -> Status {
        self.nodes[&id].raw().expect("node is up").status()
    }

    pub fn durable(&self, id: NodeId) -> &DurableState {
        self.nodes[&id].durable()
    }

    /// The first broken invariant or contract, if any.
    pub fn violation(&mut self) -> Option<String> {
        self.invariants.take_violation().map(|(_, what)| what)
    }

    /// Power loss (nothing unsynced exists to lose); messages to and from it vanish.
    pub fn crash(&mut self, id: NodeId) {
        self.nodes.get_mut(&id).expect("known node").crash(1.0);
        self.queue.retain(|m| m.to != id && m.from != id);
    }

    pub fn restart(&mut self, id: NodeId) {
        let config = self.configs[&id].clone();
        let mut effects = Effects::default();
        let node = self.nodes.get_mut(&id).expect("known node");
        node.restart(config, &mut effects)
            .expect("the node restarts from its disk");
        self.settle(id, effects);
    }

    /// `id` campaigns as if its election timer had run out while nobody heard from a leader:
    /// every other node forgets its leader first (else, heard from within the minimum election
    /// timeout, it would ignore the campaign; thesis §4.2.3).
    pub fn campaign(&mut self, id: NodeId) {
        for node in self.nodes.values_mut() {
            if let Some(raw) = node.raw_mut() {
                raw.forget_leader();
            }
        }
        self.raw_mut(id).campaign().expect("a voter campaigns");
        self.settle(id, Effects::default());
    }

    /// Proposes a write on `id` (a leader, or a follower that forwards it).
    pub fn propose(&mut self, id: NodeId, value: i64) {
        let command = Command {
            id: RequestId {
                client: 1,
                seq: self.next_request,
            },
            write: Write::Put { key: 0, value },
        };
        self.next_request += 1;
        self.raw_mut(id)
            .propose(command.encode())
            .expect("proposal accepted");
        self.settle(id, Effects::default());
    }

    /// Ticks every node that is up, delivering after each round.
    pub fn tick_all(&mut self, rounds: usize) {
        for _ in 0..rounds {
            let up: Vec<NodeId> = self
                .nodes
                .iter()
                .filter(|(_, n)| n.is_up())
                .map(|(&id, _)| id)
                .collect();
            for id in up {
                self.raw_mut(id).tick();
                self.settle(id, Effects::default());
            }
            self.deliver();
        }
    }

    /// Hands `message` to its addressee now, as if the network had carried it.
    pub fn inject(&mut self, message: Message) {
        let to = message.to;
        self.raw_mut(to).step(message);
        self.settle(to, Effects::default());
    }

    /// Delivers queued messages in order until none is left, except those `drop_rule` drops and
    /// those addressed to a node that is down.
    pub fn deliver(&mut self) {
        for _ in 0..DELIVERIES_MAX {
            let Some(message) = self.queue.pop_front() else {
                return;
            };
            if !self.nodes.get(&message.to).is_some_and(|n| n.is_up()) {
                continue;
            }
            if let Some(rule) = self.drop_rule.as_mut() {
                if rule(&message, &self.nodes) {
                    continue;
                }
            }
            self.inject(message);
        }
        panic!("the script never quiesces");
    }

    fn raw_mut(&mut self, id: NodeId) -> &mut ringraft_raft::RawNode {
        self.nodes
            .get_mut(&id)
            .and_then(|n| n.raw_mut())
            .expect("node is up")
    }

    /// Runs the node's shell until it waits for input (fsyncs complete at once), queues what it
    /// sends and feeds what it did to the checkers.
    fn settle(&mut self, id: NodeId, mut effects: Effects) {
        let node = self.nodes.get_mut(&id).expect("known node");
        node.drive(&mut effects);
        for _ in 0..FSYNCS_PER_INPUT_MAX {
            if effects.fsync_started.take().is_none() {
                break;
            }
            node.fsync_done(&mut effects);
        }
        assert!(effects.fsync_started.is_none(), "endless fsyncs");
        self.queue.extend(effects.messages.drain(..));
        let Some(raw) = node.raw() else { return };
        let (role, term) = (raw.role(), raw.term());
        for (from, observation) in effects.observations.drain(..) {
            self.invariants.observe(from, term, &observation);
        }
        self.invariants
            .observe_role(id, node.incarnation, role, term, &node.mirror);
    }
}

#[cfg(test)]
mod tests {
    use ringraft_raft::{MessageBody, Role};

    use super::*;

    fn role(cluster: &ScriptedCluster, id: NodeId) -> Role {
        cluster.nodes[&id].raw().expect("node is up").role()
    }

    /// Campaigns until `id` wins (a first try may only teach it the current term).
    fn elect(cluster: &mut ScriptedCluster, id: NodeId) {
        for _ in 0..3 {
            cluster.campaign(id);
            cluster.deliver();
            if role(cluster, id) == Role::Leader {
                return;
            }
        }
        panic!("node {id} cannot win an election");
    }

    fn assert_safe(cluster: &mut ScriptedCluster) {
        if let Some(violation) = cluster.violation() {
            panic!("{violation}");
        }
    }

    /// Thesis §3.6.2, figure 3.7 (figure 8 of the paper), step by step. If a leader committed
    /// the entry of an older term that it replicated to a majority in (c), the leader of (d)
    /// would overwrite a committed entry, and the checkers would see two different histories
    /// applied at one index (or a leader lacking a committed entry).
    #[test]
    fn figure_8_old_term_entry_on_a_majority_is_not_committed() {
        // One entry per append, so that an older entry can travel without the leader's own.
        let mut cluster = ScriptedCluster::new(5, |config| config.append_bytes_max = 1);
        elect(&mut cluster, 1);
        // (a) S1 leads; its next entry (index 2) reaches S2 only.
        cluster.drop_rule = Some(Box::new(|m, _| m.from == 1 && m.to != 2));
        cluster.propose(1, 10);
        cluster.deliver();
        let index = cluster.status(1).last_index;
        let old_term = cluster.status(1).term;
        // (b) S1 crashes; S5 leads the next term (votes of S3, S4) and appends at that index
        // an entry that stays with it.
        cluster.crash(1);
        cluster.drop_rule = Some(Box::new(|m, _| {
            m.from == 5 && matches!(m.body, MessageBody::Append { .. })
        }));
        elect(&mut cluster, 5);
        cluster.propose(5, 20);
        cluster.deliver();
        assert!(cluster.durable(5).holds(index, cluster.status(5).term));
        // (c) S5 crashes; S1 restarts and leads a later term (votes of S2, S3, S4). It brings
        // S3 and S4 the old entry, but its own entries never reach a node that holds the old
        // entry: the old entry sits on a majority, alone.
        cluster.crash(5);
        cluster.restart(1);
        cluster.drop_rule = Some(Box::new(move |m, nodes| {
            let carries_own_term = matches!(&m.body,
                MessageBody::Append { entries, .. } if entries.iter().any(|e| e.term == m.term));
            m.from == 1 && carries_own_term && nodes[&m.to].durable().holds(index, old_term)
        }));
        elect(&mut cluster, 1);
        cluster.deliver();
        let holders = (1..=5)
            .filter(|&id| cluster.durable(id).holds(index, old_term))
            .count();
        assert!(holders >= 3, "the old entry must sit on a majority");
        // (d) S1 crashes; S5 restarts and wins (its last term beats the old entry's) with the
        // votes of S2, S3, S4, then replicates its own log over theirs.
        cluster.crash(1);
        cluster.restart(5);
        cluster.drop_rule = None;
        elect(&mut cluster, 5);
        cluster.propose(5, 30);
        cluster.deliver();
        cluster.restart(1);
        cluster.propose(5, 40);
        cluster.tick_all(5);
        assert_safe(&mut cluster);
        let commit = cluster.status(5).commit;
        for id in 1..=5 {
            assert_eq!(cluster.nodes[&id].store.applied_index, commit, "node {id}");
        }
    }

    /// A follower commits only up to what the append it accepted verified (thesis figure 3.1,
    /// AppendEntries step 5: min(leaderCommit, index of the last new entry)). Entries after that
    /// may be an old leader's that the new leader's log replaces at the same index.
    #[test]
    fn follower_commits_only_what_the_append_verified() {
        let mut cluster = ScriptedCluster::new(5, |_| {});
        elect(&mut cluster, 1);
        // S1's next entry reaches S5 only and is never committed.
        cluster.drop_rule = Some(Box::new(|m, _| m.from == 1 && m.to != 5));
        cluster.propose(1, 10);
        cluster.deliver();
        let stale = cluster.status(5).last_index;
        let stale_term = cluster.status(5).term;
        // S1 crashes and S5 is cut off; S2 leads with S3 and S4 and commits its own entry at
        // the index where S5 holds the stale one.
        cluster.crash(1);
        cluster.drop_rule = Some(Box::new(|m, _| m.from == 5 || m.to == 5));
        elect(&mut cluster, 2);
        cluster.propose(2, 20);
        cluster.deliver();
        let status = cluster.status(2);
        assert!(status.commit > stale);
        assert!(!cluster.durable(2).holds(stale, stale_term));
        // The new leader's first AppendEntries to S5, as any leader may send it: nextIndex
        // starts after the leader's last index at election, which S5 matches; no entries, the
        // leader's commit index.
        cluster.inject(Message {
            from: 2,
            to: 5,
            term: status.term,
            body: MessageBody::Append {
                prev_log_index: stale - 1,
                prev_log_term: stale_term,
                entries: Vec::new(),
                leader_commit: status.commit,
            },
        });
        cluster.drop_rule = None;
        cluster.propose(2, 30);
        cluster.tick_all(5);
        assert_safe(&mut cluster);
        let commit = cluster.status(2).commit;
        assert_eq!(cluster.nodes[&5].store.applied_index, commit);
    }
}
