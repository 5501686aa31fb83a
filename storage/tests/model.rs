//! Property test: random appends, conflicting truncations, hard states, snapshots, compactions,
//! clean restarts and crashes (drop without sync) against an in-memory model.

mod common;

use common::*;
use proptest::prelude::*;
use ringraft_raft::{
    ConfChange, ConfChangeStep, Entry, EntryPayload, HardState, Snapshot, SnapshotMeta,
};
use ringraft_storage::Storage;

#[derive(Debug, Clone, PartialEq)]
struct ModelState {
    snapshot: Option<Snapshot>,
    /// Entries after the snapshot.
    entries: Vec<Entry>,
}

impl ModelState {
    fn base(&self) -> (u64, u64) {
        self.snapshot
            .as_ref()
            .map_or((0, 0), |s| (s.meta.index, s.meta.term))
    }

    fn last_index(&self) -> u64 {
        self.base().0 + self.entries.len() as u64
    }

    fn term(&self, index: u64) -> Option<u64> {
        let (base_index, base_term) = self.base();
        if index == base_index {
            return Some(base_term);
        }
        let offset = index.checked_sub(base_index + 1)?;
        self.entries.get(offset as usize).map(|e| e.term)
    }

    fn append_one(&mut self, entry: &Entry) {
        let base_index = self.base().0;
        if entry.index <= base_index {
            return;
        }
        assert!(entry.index <= self.last_index() + 1);
        self.entries
            .truncate((entry.index - base_index - 1) as usize);
        self.entries.push(entry.clone());
    }

    fn install(&mut self, snapshot: &Snapshot) {
        let keep = self.term(snapshot.meta.index) == Some(snapshot.meta.term);
        let base_index = self.base().0;
        if keep {
            self.entries
                .drain(..(snapshot.meta.index - base_index) as usize);
        } else {
            self.entries.clear();
        }
        self.snapshot = Some(snapshot.clone());
    }
}

/// A change since the last sync, at the granularity at which it can reach the disk.
#[derive(Debug, Clone)]
enum PendingOp {
    AppendOne(Entry),
    Snapshot(Snapshot),
}

fn apply(state: &mut ModelState, op: &PendingOp) {
    match op {
        PendingOp::AppendOne(entry) => state.append_one(entry),
        PendingOp::Snapshot(snapshot) => state.install(snapshot),
    }
}

#[derive(Debug, Clone)]
enum Op {
    Append {
        back: u8,
        count: u8,
        new_term: bool,
        size: u8,
    },
    HardState {
        commit_back: u8,
        vote: Option<u8>,
    },
    LocalSnapshot {
        back: u8,
        data_len: u16,
    },
    InstallSnapshot {
        ahead: u8,
        data_len: u16,
    },
    Compact {
        back: u8,
    },
    Sync,
    Restart,
    Crash,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0u8..12, 1u8..10, prop::bool::weighted(0.2), any::<u8>()).prop_map(
            |(back, count, new_term, size)| Op::Append { back, count, new_term, size }
        ),
        2 => (0u8..10, prop::option::of(1u8..4))
            .prop_map(|(commit_back, vote)| Op::HardState { commit_back, vote }),
        1 => (0u8..20, 0u16..3000).prop_map(|(back, data_len)| Op::LocalSnapshot { back, data_len }),
        1 => (any::<u8>(), 0u16..3000).prop_map(|(ahead, data_len)| Op::InstallSnapshot { ahead, data_len }),
        1 => (0u8..20).prop_map(|back| Op::Compact { back }),
        3 => Just(Op::Sync),
        1 => Just(Op::Restart),
        1 => Just(Op::Crash),
    ]
}

fn make_entry(index: u64, term: u64, size: u8) -> Entry {
    let payload = match size % 7 {
        0 => EntryPayload::Empty,
        1 => EntryPayload::ConfChange(ConfChange {
            changes: vec![
                ConfChangeStep::AddVoter(index),
                ConfChangeStep::RemoveNode(term),
            ],
            auto_leave: index.is_multiple_of(2),
            context: vec![size; 3],
        }),
        _ => EntryPayload::Normal(vec![(index % 251) as u8; size as usize]),
    };
    Entry {
        term,
        index,
        payload,
    }
}

struct Harness {
    dir: tempfile::TempDir,
    storage: Option<Storage>,
    current: ModelState,
    durable: ModelState,
    pending: Vec<PendingOp>,
    hard_state: HardState,
    durable_hard_state: HardState,
    term: u64,
}

impl Harness {
    fn storage(&mut self) -> &mut Storage {
        self.storage.as_mut().expect("storage open")
    }

    fn mark_synced(&mut self) {
        self.durable = self.current.clone();
        self.durable_hard_state = self.hard_state;
        self.pending.clear();
    }

    fn run(&mut self, op: &Op) {
        match *op {
            Op::Append {
                back,
                count,
                new_term,
                size,
            } => {
                if new_term {
                    self.term += 1;
                }
                // Raft never truncates committed entries.
                let start = (self.current.last_index() + 1)
                    .saturating_sub(u64::from(back))
                    .max(self.hard_state.commit + 1);
                let batch: Vec<Entry> = (start..start + u64::from(count))
                    .map(|index| make_entry(index, self.term, size))
                    .collect();
                self.storage().append(&batch).unwrap();
                for entry in batch {
                    self.current.append_one(&entry);
                    self.pending.push(PendingOp::AppendOne(entry));
                }
            }
            Op::HardState { commit_back, vote } => {
                let commit = self
                    .current
                    .last_index()
                    .saturating_sub(u64::from(commit_back))
                    .max(self.hard_state.commit);
                self.hard_state = HardState {
                    term: self.term,
                    vote: vote.map(u64::from),
                    commit,
                };
                let hard_state = self.hard_state;
                self.storage().save_hard_state(&hard_state).unwrap();
            }
            Op::LocalSnapshot { back, data_len } => {
                let (base_index, _) = self.current.base();
                let index = self
                    .current
                    .last_index()
                    .saturating_sub(u64::from(back))
                    .max(base_index);
                let term = self.current.term(index).unwrap();
                self.save_snapshot(index, term, data_len);
            }
            Op::InstallSnapshot { ahead, data_len } => {
                // Anywhere above the commit index: over conflicting entries or past the log.
                let lowest = self.hard_state.commit.max(self.current.base().0) + 1;
                let span = self.current.last_index() + 8 - lowest;
                let index = lowest + u64::from(ahead) % span;
                self.term += 1;
                let term = self.term;
                self.save_snapshot(index, term, data_len);
            }
            Op::Compact { back } => {
                let index = self.current.last_index().saturating_sub(u64::from(back));
                self.storage().compact(index).unwrap();
                self.mark_synced();
            }
            Op::Sync => {
                self.storage().sync().unwrap();
                self.mark_synced();
            }
            Op::Restart => {
                self.storage().sync().unwrap();
                self.mark_synced();
                self.storage = None;
                let (storage, recovered) = open(self.dir.path());
                self.storage = Some(storage);
                assert_eq!(recovered.snapshot, self.current.snapshot);
                assert_eq!(recovered.entries, self.current.entries);
                assert_eq!(recovered.hard_state, self.hard_state);
            }
            Op::Crash => self.crash(),
        }
        let storage = self.storage.as_ref().unwrap();
        assert_eq!(storage.last_index(), self.current.last_index());
        assert_eq!(storage.first_index(), self.current.base().0 + 1);
    }

    fn save_snapshot(&mut self, index: u64, term: u64, data_len: u16) {
        let snapshot = Snapshot {
            meta: SnapshotMeta {
                index,
                term,
                ..snapshot(0, 0, b"").meta
            },
            data: vec![(index % 256) as u8; data_len as usize],
        };
        self.storage().save_snapshot(&snapshot).unwrap();
        self.current.install(&snapshot);
        self.pending.push(PendingOp::Snapshot(snapshot));
    }

    /// Drop without syncing: whatever was handed to the kernel survives (no power loss here), so
    /// the recovered state is the durable one plus some prefix of the pending changes, with the
    /// newest snapshot file applied on top if its marker is not in that prefix.
    fn crash(&mut self) {
        self.storage = None;
        let (storage, recovered) = open(self.dir.path());
        self.storage = Some(storage);
        let newest_snapshot = self
            .pending
            .iter()
            .enumerate()
            .rev()
            .find_map(|(at, op)| match op {
                PendingOp::Snapshot(snapshot) => Some((at, snapshot.clone())),
                PendingOp::AppendOne(_) => None,
            });
        let mut candidates = Vec::new();
        let mut state = self.durable.clone();
        for k in 0..=self.pending.len() {
            if k > 0 {
                apply(&mut state, &self.pending[k - 1]);
            }
            let mut candidate = state.clone();
            if let Some((at, snapshot)) = &newest_snapshot {
                if *at >= k {
                    candidate.install(snapshot);
                }
            }
            candidates.push(candidate);
        }
        let got = ModelState {
            snapshot: recovered.snapshot,
            entries: recovered.entries,
        };
        assert!(
            candidates.contains(&got),
            "recovered state after a crash is no prefix of the pending changes: {got:?}\n\
             durable: {:?}\npending: {:?}",
            self.durable,
            self.pending
        );
        assert_eq!(recovered.hard_state, self.durable_hard_state);
        self.current = got;
        self.hard_state = self.durable_hard_state;
        self.mark_synced();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn storage_matches_the_model(ops in prop::collection::vec(op_strategy(), 1..80)) {
        let dir = tempfile::tempdir().unwrap();
        let (storage, recovered) = open(dir.path());
        prop_assert_eq!(recovered, Default::default());
        let mut harness = Harness {
            dir,
            storage: Some(storage),
            current: ModelState { snapshot: None, entries: Vec::new() },
            durable: ModelState { snapshot: None, entries: Vec::new() },
            pending: Vec::new(),
            hard_state: HardState::default(),
            durable_hard_state: HardState::default(),
            term: 1,
        };
        for op in &ops {
            harness.run(op);
        }
        harness.run(&Op::Restart);
    }
}
