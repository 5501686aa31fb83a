//! Property test: random appends, syncs, compactions, clean reopens and crashes (drop without a
//! sync) of the register store against an in-memory model of durable and pending records.

mod common;

use common::registers::*;
use proptest::prelude::*;
use ringraft_paxos::{Ballot, KeyState, Record, Register};
use ringraft_storage::RegisterStore;

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<Record>),
    Sync,
    Compact,
    Reopen,
    Crash,
}

fn ballot() -> impl Strategy<Value = Ballot> {
    (0u64..50, 1u64..4).prop_map(|(counter, node)| Ballot { counter, node })
}

fn record() -> impl Strategy<Value = Record> {
    let key = (0..KEYS.len()).prop_map(|k| KEYS[k].to_vec());
    let register = prop_oneof![
        Just(Register::absent()),
        (prop::collection::vec(any::<u8>(), 0..300), 1u64..100).prop_map(|(value, version)| {
            Register {
                value: Some(value),
                version,
            }
        }),
    ];
    prop_oneof![
        6 => (key.clone(), 0u64..5, ballot(), prop::option::of((ballot(), register))).prop_map(
            |(key, epoch, promised, accepted)| Record::Key {
                key,
                state: KeyState { epoch, promised, accepted },
            }
        ),
        1 => (key, ballot()).prop_map(|(key, floor)| Record::Forgot { key, floor }),
        1 => (0u64..1 << 20).prop_map(|counter_below| Record::BallotsReserved { counter_below }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => prop::collection::vec(record(), 0..8).prop_map(Op::Append),
        3 => Just(Op::Sync),
        1 => Just(Op::Compact),
        1 => Just(Op::Reopen),
        1 => Just(Op::Crash),
    ]
}

struct Harness {
    dir: tempfile::TempDir,
    store: Option<RegisterStore>,
    /// The state of every record durable so far.
    durable: State,
    /// Appended since the last sync, in order.
    pending: Vec<Record>,
}

impl Harness {
    fn store(&mut self) -> &mut RegisterStore {
        self.store.as_mut().expect("store open")
    }

    fn current(&self) -> State {
        let mut state = self.durable.clone();
        self.pending.iter().for_each(|r| state.apply(r));
        state
    }

    fn synced(&mut self) {
        self.durable = self.current();
        self.pending.clear();
    }

    fn run(&mut self, op: &Op) {
        match op {
            Op::Append(records) => {
                self.store().append(records).unwrap();
                self.pending.extend(records.iter().cloned());
            }
            Op::Sync => {
                self.store().sync().unwrap();
                self.synced();
            }
            Op::Compact => {
                let live = self.current().live();
                self.store().compact(live).unwrap();
                self.synced();
                assert_eq!(register_segments(self.dir.path()).len(), 1);
                assert_eq!(checkpoints(self.dir.path()).len(), 1);
            }
            Op::Reopen => {
                self.store().sync().unwrap();
                self.synced();
                self.store = None;
                let (store, recovered) = open(self.dir.path());
                self.store = Some(store);
                assert_eq!(State::of(&recovered), self.durable);
            }
            Op::Crash => {
                self.store = None;
                let (store, recovered) = open(self.dir.path());
                self.store = Some(store);
                let got = State::of(&recovered);
                let mut candidate = self.durable.clone();
                let mut found = candidate == got;
                for record in &self.pending {
                    candidate.apply(record);
                    found |= candidate == got;
                }
                assert!(
                    found,
                    "after a crash: no prefix of the {} pending records gives {got:?}\n\
                     durable: {:?}",
                    self.pending.len(),
                    self.durable
                );
                self.durable = got;
                self.pending.clear();
            }
        }
        let store = self.store.as_ref().unwrap();
        assert_eq!(
            store.needs_compaction(),
            store.log_bytes() > small_options().compact_after_bytes
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_store_matches_the_model(ops in prop::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let (store, recovered) = open(dir.path());
        prop_assert!(recovered.is_empty());
        let mut harness = Harness {
            dir,
            store: Some(store),
            durable: State::default(),
            pending: Vec::new(),
        };
        for op in &ops {
            harness.run(op);
        }
        harness.run(&Op::Reopen);
    }
}
