//! Helpers of the register store tests: a real acceptor driven by seeded random messages, the
//! state its records replay to, and small store options.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use ringraft_paxos::{
    Acceptor, Ballot, Body, Config, KeyConfig, KeyState, Message, Record, Register,
};
use ringraft_storage::{RegisterStore, RegisterStoreOptions, StorageError};

pub const NODE: u64 = 1;
pub const KEYS: [&[u8]; 6] = [b"alpha", b"beta", b"gamma", b"delta", b"epsilon", b"zeta"];

/// Small segments so a few dozen records span several files.
pub fn small_options() -> RegisterStoreOptions {
    RegisterStoreOptions {
        segment_bytes: 1024,
        compact_after_bytes: 4096,
        record_bytes_max: 64 << 10,
    }
}

pub fn open(dir: &Path) -> (RegisterStore, Vec<Record>) {
    RegisterStore::open(dir, small_options()).unwrap_or_else(|e| panic!("open: {e}"))
}

pub fn try_open(dir: &Path) -> Result<(RegisterStore, Vec<Record>), StorageError> {
    RegisterStore::open(dir, small_options())
}

/// What a sequence of records replays to: the acceptor's keys and floor, the proposer's
/// reservation. The same fold as `Acceptor::restore` and `Proposer::restore`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    pub keys: BTreeMap<Vec<u8>, KeyState>,
    pub floor: Ballot,
    pub counter_below: u64,
}

impl State {
    pub fn of(records: &[Record]) -> State {
        let mut state = State::default();
        for record in records {
            state.apply(record);
        }
        state
    }

    pub fn apply(&mut self, record: &Record) {
        match record {
            Record::Key { key, state } => {
                self.keys.insert(key.clone(), state.clone());
            }
            Record::Forgot { key, floor } => {
                self.keys.remove(key);
                self.floor = self.floor.max(*floor);
            }
            Record::BallotsReserved { counter_below } => {
                self.counter_below = self.counter_below.max(*counter_below);
            }
        }
    }

    /// What `compact` is given: the floor, the reservation, one record per held key.
    pub fn live(&self) -> Vec<Record> {
        let mut live = vec![
            Record::Forgot {
                key: Vec::new(),
                floor: self.floor,
            },
            Record::BallotsReserved {
                counter_below: self.counter_below,
            },
        ];
        live.extend(self.keys.iter().map(|(key, state)| Record::Key {
            key: key.clone(),
            state: state.clone(),
        }));
        live
    }
}

/// The key states and floor of a real acceptor, over `KEYS`.
pub fn acceptor_state(acceptor: &Acceptor) -> (BTreeMap<Vec<u8>, KeyState>, Ballot) {
    let keys = KEYS
        .iter()
        .filter_map(|key| Some((key.to_vec(), acceptor.key_state(key)?.clone())))
        .collect();
    (keys, acceptor.floor())
}

/// Acceptor 1 of every key (acceptor sets {1, 2, 3}), fed seeded random prepares, accepts
/// (values, tombstones) and forgets from proposers 2 and 3.
pub struct Driver {
    pub acceptor: Acceptor,
    rng: rand::rngs::SmallRng,
    epoch: u64,
    /// Ballots grow with it, so prepares keep winning promises.
    clock: u64,
}

impl Driver {
    pub fn new(seed: u64) -> Driver {
        let mut acceptor = Acceptor::new(Config::new(NODE));
        for key in KEYS {
            acceptor
                .set_key_config(key, KeyConfig::stable(1, vec![1, 2, 3]))
                .unwrap();
        }
        let _ = acceptor.ready();
        Driver {
            acceptor,
            rng: rand::rngs::SmallRng::seed_from_u64(seed),
            epoch: 1,
            clock: 1,
        }
    }

    /// Steps `messages` random requests and returns the Ready's records (one batch).
    pub fn batch(&mut self, messages: usize) -> Vec<Record> {
        for _ in 0..messages {
            let message = self.random_message();
            self.acceptor.step(message);
        }
        self.acceptor.ready().records
    }

    fn random_message(&mut self) -> Message {
        let key = KEYS[self.rng.gen_range(0..KEYS.len())].to_vec();
        let from = self.rng.gen_range(2..=3);
        self.clock += 1;
        let ballot = Ballot {
            counter: self.rng.gen_range(self.clock / 2 + 1..self.clock + 4),
            node: from,
        };
        let held = self.acceptor.key_state(&key).cloned();
        let body = match self.rng.gen_range(0..10) {
            0..=3 => Body::Prepare { ballot },
            4..=7 => {
                // Mostly at the promise, so accepts go through.
                let ballot = match &held {
                    Some(state) if self.rng.gen_bool(0.7) && state.promised.node == from => {
                        state.promised
                    }
                    _ => ballot,
                };
                let register = if self.rng.gen_bool(0.25) {
                    Register::absent()
                } else {
                    let len = self.rng.gen_range(0..200);
                    Register {
                        value: Some((0..len).map(|_| self.rng.gen()).collect()),
                        version: self.rng.gen_range(1..1000),
                    }
                };
                Body::Accept { ballot, register }
            }
            _ => {
                // Garbage collection of a tombstone this acceptor holds, if any.
                let tombstone = held
                    .and_then(|s| s.accepted)
                    .filter(|(_, r)| r.value.is_none());
                match tombstone {
                    Some((ballot, _)) => Body::Forget { ballot },
                    None => Body::Prepare { ballot },
                }
            }
        };
        let ballot_node = body.ballot().node;
        Message {
            from: ballot_node,
            to: NODE,
            key,
            epoch: self.epoch,
            body,
        }
    }
}

/// Log segment files (`wal-*.seg`) in sequence order.
pub fn register_segments(dir: &Path) -> Vec<PathBuf> {
    files_named(dir, "wal-", ".seg")
}

pub fn checkpoints(dir: &Path) -> Vec<PathBuf> {
    files_named(dir, "ckpt-", ".ckpt")
}

fn files_named(dir: &Path, prefix: &str, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|item| item.unwrap().path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_str().unwrap();
            name.starts_with(prefix) && name.ends_with(suffix)
        })
        .collect();
    files.sort();
    files
}

pub fn copy_dir(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for item in std::fs::read_dir(from).unwrap() {
        let path = item.unwrap().path();
        std::fs::copy(&path, to.path().join(path.file_name().unwrap())).unwrap();
    }
    to
}
