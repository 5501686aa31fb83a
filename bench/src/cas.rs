//! Compare-and-swap load, the same for every store: each operation is one increment of a
//! counter register, read-modify-write from the version the client last saw, retried on a
//! conflict until it takes effect. Only the store's two calls differ (`CasStore`): ringraft's
//! `kv_cas` on its per-key registers, etcd's Txn comparing the key's mod_revision.
//!
//! The counter's value is derived from the version it replaces, so the version a conflict
//! reports is all a retry needs: no extra read. After an unknown outcome (a timeout: the write
//! may have taken effect) the client reads the key before it tries again.

use std::time::{Duration, Instant};

use crate::load::{OpCounts, Operation};

/// Which keys the clients of one phase share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    /// `count` keys shared by every client: each client walks them in turn (starting at its own
    /// index), so all of them meet on every key.
    Hot { count: usize },
    /// `per_client` keys of each client's own: no other writer, so no conflicts.
    Cold { per_client: usize },
}

impl Keys {
    pub fn name(self) -> &'static str {
        match self {
            Keys::Hot { .. } => "hot",
            Keys::Cold { .. } => "cold",
        }
    }

    /// How many keys one client writes.
    fn slots(self) -> usize {
        match self {
            Keys::Hot { count } => count.max(1),
            Keys::Cold { per_client } => per_client.max(1),
        }
    }

    /// The slot client `client` writes at `sequence`.
    fn slot(self, client: usize, sequence: u64) -> usize {
        let slots = self.slots() as u64;
        match self {
            Keys::Hot { .. } => ((client as u64).wrapping_add(sequence) % slots) as usize,
            Keys::Cold { .. } => (sequence % slots) as usize,
        }
    }

    /// The key of `slot` for `client`, under a prefix of its own phase (`tag`) so that every
    /// phase starts from absent keys.
    fn key(self, tag: &str, client: usize, slot: usize) -> Vec<u8> {
        match self {
            Keys::Hot { .. } => format!("bench/{tag}/hot/{slot}").into_bytes(),
            Keys::Cold { .. } => format!("bench/{tag}/cold/{client}/{slot}").into_bytes(),
        }
    }
}

/// The answer to one compare-and-swap attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CasAnswer {
    /// Written; the key's new version (what the next swap must expect).
    Written(u64),
    /// Not written: the key is at `current` (what to expect next time).
    Conflict(u64),
    /// Timed out: it may or may not have taken effect.
    Unknown(String),
    /// Refused as overloaded; nothing was written.
    Busy(String),
    /// Any other failure: the operation fails.
    Failed(String),
}

/// One client's connection to a store with per-key versions. A version is whatever the store
/// compares (ringraft: the register's version; etcd: the key's mod_revision), 0 for an absent key.
pub trait CasStore {
    /// Writes `value` under `key` if its version is `expected`.
    fn cas(&mut self, key: &[u8], expected: u64, value: &[u8]) -> CasAnswer;
    /// The key's current version (a linearizable read).
    fn version(&mut self, key: &[u8]) -> Result<u64, String>;
}

/// Attempts one increment may take before it is given up as an error.
pub const ATTEMPTS_PER_OP_MAX: u32 = 1_000;
/// Time one increment may take, retries included, before it is given up as an error.
pub const OP_TIME_MAX: Duration = Duration::from_secs(30);
/// The wait after a Busy answer before the next attempt.
const BUSY_PAUSE: Duration = Duration::from_millis(1);

/// Increments under `keys`, one per `run`, through `store`.
pub struct CasWorkload<S> {
    store: S,
    keys: Keys,
    tag: String,
    client: usize,
    value_bytes: usize,
    /// Per slot: the version this client last wrote or was told of; `None` after an unknown
    /// outcome (read it before the next attempt).
    versions: Vec<Option<u64>>,
    counts: OpCounts,
}

impl<S: CasStore> CasWorkload<S> {
    /// `tag` names the phase (its keys start absent); values are `value_bytes` long.
    pub fn new(store: S, keys: Keys, tag: &str, client: usize, value_bytes: usize) -> Self {
        CasWorkload {
            store,
            keys,
            tag: tag.to_string(),
            client,
            value_bytes: value_bytes.max(20),
            versions: vec![Some(0); keys.slots()],
            counts: OpCounts::default(),
        }
    }

    /// The counter value written over `version`, as decimal digits padded to the value size.
    fn value_after(&self, version: u64) -> Vec<u8> {
        let mut value = format!("{:020}", version.saturating_add(1)).into_bytes();
        value.resize(self.value_bytes, b'.');
        value
    }
}

impl<S: CasStore> Operation for CasWorkload<S> {
    fn run(&mut self, sequence: u64) -> Result<(), String> {
        let slot = self.keys.slot(self.client, sequence);
        let key = self.keys.key(&self.tag, self.client, slot);
        let give_up = Instant::now() + OP_TIME_MAX;
        for _ in 0..ATTEMPTS_PER_OP_MAX {
            if Instant::now() >= give_up {
                break;
            }
            let expected = match self.versions[slot] {
                Some(version) => version,
                None => self.store.version(&key)?,
            };
            self.versions[slot] = Some(expected);
            let value = self.value_after(expected);
            match self.store.cas(&key, expected, &value) {
                CasAnswer::Written(version) => {
                    self.versions[slot] = Some(version);
                    return Ok(());
                }
                CasAnswer::Conflict(current) => {
                    self.counts.conflicts += 1;
                    self.versions[slot] = Some(current);
                }
                CasAnswer::Unknown(_) => {
                    self.counts.unknown += 1;
                    self.versions[slot] = None;
                }
                CasAnswer::Busy(_) => {
                    self.counts.busy += 1;
                    std::thread::sleep(BUSY_PAUSE);
                }
                CasAnswer::Failed(err) => return Err(err),
            }
        }
        Err(format!(
            "increment of {} not done within {ATTEMPTS_PER_OP_MAX} attempts or {OP_TIME_MAX:?}",
            String::from_utf8_lossy(&key)
        ))
    }

    fn counts(&self) -> OpCounts {
        self.counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, VecDeque};

    /// A store of versions in memory, with answers to force first.
    #[derive(Default)]
    struct Memory {
        versions: BTreeMap<Vec<u8>, u64>,
        forced: VecDeque<CasAnswer>,
        reads: u64,
        written: Vec<(Vec<u8>, u64, Vec<u8>)>,
    }

    impl CasStore for Memory {
        fn cas(&mut self, key: &[u8], expected: u64, value: &[u8]) -> CasAnswer {
            if let Some(answer) = self.forced.pop_front() {
                return answer;
            }
            let current = self.versions.get(key).copied().unwrap_or(0);
            if current != expected {
                return CasAnswer::Conflict(current);
            }
            self.versions.insert(key.to_vec(), current + 1);
            self.written.push((key.to_vec(), expected, value.to_vec()));
            CasAnswer::Written(current + 1)
        }

        fn version(&mut self, key: &[u8]) -> Result<u64, String> {
            self.reads += 1;
            Ok(self.versions.get(key).copied().unwrap_or(0))
        }
    }

    #[test]
    fn hot_keys_are_shared_and_cold_keys_are_not() {
        let hot = Keys::Hot { count: 4 };
        let cold = Keys::Cold { per_client: 2 };
        assert_eq!(hot.key("p1", 3, hot.slot(3, 2)), b"bench/p1/hot/1".to_vec());
        assert_eq!(hot.key("p1", 0, hot.slot(0, 1)), b"bench/p1/hot/1".to_vec());
        assert_eq!(
            cold.key("p1", 3, cold.slot(3, 5)),
            b"bench/p1/cold/3/1".to_vec()
        );
        assert_ne!(cold.key("p1", 3, 0), cold.key("p1", 4, 0));
        assert_ne!(cold.key("p1", 3, 0), cold.key("p2", 3, 0));
    }

    #[test]
    fn a_conflict_is_retried_from_the_version_it_reported() {
        let mut store = Memory::default();
        store.versions.insert(b"bench/t/hot/0".to_vec(), 7);
        let mut workload = CasWorkload::new(store, Keys::Hot { count: 1 }, "t", 0, 64);
        workload.run(0).expect("increment");
        assert_eq!(workload.counts().conflicts, 1);
        assert_eq!(workload.store.reads, 0);
        let (_, expected, value) = &workload.store.written[0];
        assert_eq!(*expected, 7);
        assert_eq!(value.len(), 64);
        assert!(value.starts_with(b"00000000000000000008"));
        workload.run(1).expect("increment");
        assert_eq!(workload.counts().conflicts, 1, "the new version was kept");
    }

    #[test]
    fn an_unknown_outcome_is_counted_and_read_before_the_next_attempt() {
        let mut store = Memory::default();
        store
            .forced
            .push_back(CasAnswer::Unknown("timed out".into()));
        store.forced.push_back(CasAnswer::Busy("busy".into()));
        let mut workload = CasWorkload::new(store, Keys::Cold { per_client: 1 }, "t", 0, 8);
        workload.run(0).expect("increment");
        assert_eq!(
            workload.counts(),
            OpCounts {
                conflicts: 0,
                unknown: 1,
                busy: 1
            }
        );
        assert_eq!(workload.store.reads, 1);
        assert_eq!(workload.store.versions[&b"bench/t/cold/0/0".to_vec()], 1);
    }

    #[test]
    fn a_failure_fails_the_operation_and_endless_conflicts_are_bounded() {
        let mut store = Memory::default();
        store.forced.push_back(CasAnswer::Failed("broken".into()));
        let mut workload = CasWorkload::new(store, Keys::Cold { per_client: 1 }, "t", 0, 8);
        assert_eq!(workload.run(0), Err("broken".to_string()));
        let conflicts = (0..ATTEMPTS_PER_OP_MAX).map(|_| CasAnswer::Conflict(0));
        workload.store.forced.extend(conflicts);
        let err = workload.run(0).unwrap_err();
        assert!(err.contains("not done"), "{err}");
    }
}
