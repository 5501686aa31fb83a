//! The application the simulated nodes replicate: integer registers addressed by key, written with
//! `Put` and `Add`, deduplicated by request id (a forwarded proposal may be duplicated by the
//! network, and clients retry), plus a hash chain over every applied entry so checkers can compare
//! whole applied histories in O(1).

use std::collections::BTreeMap;

use ringraft_raft::{ConfChangeStep, Entry, EntryPayload, LogIndex, SnapshotMeta, Term};

/// Identifies one client operation across retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId {
    pub client: u64,
    pub seq: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    Put { key: u64, value: i64 },
    Add { key: u64, delta: i64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command {
    pub id: RequestId,
    pub write: Write,
}

const COMMAND_BYTES: usize = 33;

impl Command {
    pub fn encode(&self) -> Vec<u8> {
        let (tag, key, value) = match self.write {
            Write::Put { key, value } => (1u8, key, value),
            Write::Add { key, delta } => (2u8, key, delta),
        };
        let mut bytes = Vec::with_capacity(COMMAND_BYTES);
        bytes.push(tag);
        bytes.extend_from_slice(&self.id.client.to_le_bytes());
        bytes.extend_from_slice(&self.id.seq.to_le_bytes());
        bytes.extend_from_slice(&key.to_le_bytes());
        bytes.extend_from_slice(&value.to_le_bytes());
        bytes
    }

    pub fn decode(bytes: &[u8]) -> Result<Command, String> {
        if bytes.len() != COMMAND_BYTES {
            return Err(format!("command of {} bytes", bytes.len()));
        }
        let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let id = RequestId {
            client: word(1),
            seq: word(9),
        };
        let (key, value) = (word(17), word(25) as i64);
        let write = match bytes[0] {
            1 => Write::Put { key, value },
            2 => Write::Add { key, delta: value },
            tag => return Err(format!("unknown command tag {tag}")),
        };
        Ok(Command { id, write })
    }
}

/// FNV-1a, then a final avalanche: stable across platforms and runs, unlike `DefaultHasher`.
pub fn hash_bytes(seed: u64, bytes: &[u8]) -> u64 {
    let mut hash = seed ^ 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= byte as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    mix(hash)
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

pub fn payload_digest(payload: &EntryPayload) -> u64 {
    match payload {
        EntryPayload::Empty => hash_bytes(1, &[]),
        EntryPayload::Normal(data) => hash_bytes(2, data),
        EntryPayload::ConfChange(change) => {
            let mut bytes = vec![change.auto_leave as u8];
            for step in &change.changes {
                let (tag, id) = match step {
                    ConfChangeStep::AddVoter(id) => (1u8, id),
                    ConfChangeStep::AddLearner(id) => (2u8, id),
                    ConfChangeStep::RemoveNode(id) => (3u8, id),
                };
                bytes.push(tag);
                bytes.extend_from_slice(&id.to_le_bytes());
            }
            bytes.extend_from_slice(&change.context);
            hash_bytes(3, &bytes)
        }
    }
}

/// The hash of a log prefix ending with the entry (`index`, `term`, `payload`), given the hash of
/// the prefix before it. Equal chain hashes mean equal prefixes.
pub fn chain_hash(previous: u64, index: LogIndex, term: Term, payload: &EntryPayload) -> u64 {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&previous.to_le_bytes());
    bytes[8..16].copy_from_slice(&index.to_le_bytes());
    bytes[16..24].copy_from_slice(&term.to_le_bytes());
    bytes[24..].copy_from_slice(&payload_digest(payload).to_le_bytes());
    hash_bytes(4, &bytes)
}

/// What applying one entry did, for answering the client that proposed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOutcome {
    pub id: RequestId,
    /// The register's value right after the write took effect (the first time it was applied).
    pub value: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvStore {
    pub applied_index: LogIndex,
    pub applied_term: Term,
    /// Chain hash of the applied prefix of the log.
    pub chain: u64,
    values: BTreeMap<u64, i64>,
    /// Every write ever applied, with its outcome: the deduplication table.
    outcomes: BTreeMap<RequestId, i64>,
}

impl KvStore {
    /// Applies the next entry of the log. The caller has checked that `entry.index` follows
    /// `applied_index`.
    pub fn apply(&mut self, entry: &Entry) -> Option<WriteOutcome> {
        assert_eq!(
            entry.index,
            self.applied_index + 1,
            "entries applied out of order"
        );
        self.chain = chain_hash(self.chain, entry.index, entry.term, &entry.payload);
        self.applied_index = entry.index;
        self.applied_term = entry.term;
        let EntryPayload::Normal(data) = &entry.payload else {
            return None;
        };
        let command = Command::decode(data).expect("the simulator only proposes valid commands");
        if let Some(&value) = self.outcomes.get(&command.id) {
            return Some(WriteOutcome {
                id: command.id,
                value,
            });
        }
        let value = match command.write {
            Write::Put { key, value } => {
                self.values.insert(key, value);
                value
            }
            Write::Add { key, delta } => {
                let slot = self.values.entry(key).or_insert(0);
                *slot = slot.wrapping_add(delta);
                *slot
            }
        };
        self.outcomes.insert(command.id, value);
        Some(WriteOutcome {
            id: command.id,
            value,
        })
    }

    pub fn read(&self, key: u64) -> i64 {
        self.values.get(&key).copied().unwrap_or(0)
    }

    pub fn outcome(&self, id: RequestId) -> Option<i64> {
        self.outcomes.get(&id).copied()
    }

    pub fn encode(&self) -> Vec<u8> {
        self.encode_with_ballast(0)
    }

    /// The snapshot data, followed by about `ballast_bytes` of words that depend on the state's
    /// history: snapshots of megabytes travel in many chunks, and a chunk of another snapshot
    /// stitched in fails `decode`.
    pub fn encode_with_ballast(&self, ballast_bytes: usize) -> Vec<u8> {
        let ballast_words = (ballast_bytes / 8) as u64;
        let mut bytes = Vec::with_capacity(ballast_bytes + 64);
        for word in [
            self.applied_index,
            self.applied_term,
            self.chain,
            self.values.len() as u64,
            self.outcomes.len() as u64,
        ] {
            bytes.extend_from_slice(&word.to_le_bytes());
        }
        for (&key, &value) in &self.values {
            bytes.extend_from_slice(&key.to_le_bytes());
            bytes.extend_from_slice(&value.to_le_bytes());
        }
        for (id, &value) in &self.outcomes {
            bytes.extend_from_slice(&id.client.to_le_bytes());
            bytes.extend_from_slice(&id.seq.to_le_bytes());
            bytes.extend_from_slice(&value.to_le_bytes());
        }
        bytes.extend_from_slice(&ballast_words.to_le_bytes());
        for i in 0..ballast_words {
            bytes.extend_from_slice(&self.ballast_word(i).to_le_bytes());
        }
        bytes
    }

    fn ballast_word(&self, i: u64) -> u64 {
        (self.chain ^ self.applied_index.rotate_left(32))
            .wrapping_add(i)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    /// Rebuilds the store from snapshot data; empty data is the empty store of a bootstrap
    /// snapshot at index 0.
    pub fn decode(meta: &SnapshotMeta, data: &[u8]) -> Result<KvStore, String> {
        if data.is_empty() {
            if meta.index != 0 {
                return Err(format!("empty snapshot data at index {}", meta.index));
            }
            return Ok(KvStore::default());
        }
        let mut words = data.chunks_exact(8).map(|chunk| {
            u64::from_le_bytes(chunk.try_into().expect("chunks_exact yields 8 bytes"))
        });
        if !data.len().is_multiple_of(8) {
            return Err(format!("snapshot data of {} bytes", data.len()));
        }
        let mut next = || words.next().ok_or_else(|| "truncated snapshot".to_string());
        let mut store = KvStore {
            applied_index: next()?,
            applied_term: next()?,
            chain: next()?,
            ..KvStore::default()
        };
        let (value_count, outcome_count) = (next()?, next()?);
        for _ in 0..value_count {
            let key = next()?;
            store.values.insert(key, next()? as i64);
        }
        for _ in 0..outcome_count {
            let id = RequestId {
                client: next()?,
                seq: next()?,
            };
            store.outcomes.insert(id, next()? as i64);
        }
        let ballast_words = next()?;
        for i in 0..ballast_words {
            if next()? != store.ballast_word(i) {
                return Err(format!(
                    "snapshot ballast word {i} belongs to another state"
                ));
            }
        }
        if next().is_ok() {
            return Err("trailing bytes in snapshot".into());
        }
        if (store.applied_index, store.applied_term) != (meta.index, meta.term) {
            return Err(format!(
                "snapshot data at ({}, {}) under metadata ({}, {})",
                store.applied_index, store.applied_term, meta.index, meta.term
            ));
        }
        Ok(store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: LogIndex, term: Term, command: Option<Command>) -> Entry {
        Entry {
            index,
            term,
            payload: match command {
                Some(c) => EntryPayload::Normal(c.encode()),
                None => EntryPayload::Empty,
            },
        }
    }

    fn command(client: u64, seq: u64, write: Write) -> Command {
        Command {
            id: RequestId { client, seq },
            write,
        }
    }

    #[test]
    fn command_round_trips_and_rejects_garbage() {
        let c = command(3, 9, Write::Add { key: 2, delta: -7 });
        assert_eq!(Command::decode(&c.encode()), Ok(c));
        assert!(Command::decode(&[1, 2, 3]).is_err());
        let mut bad = c.encode();
        bad[0] = 9;
        assert!(Command::decode(&bad).is_err());
    }

    #[test]
    fn duplicate_requests_apply_once() {
        let mut store = KvStore::default();
        let add = command(1, 1, Write::Add { key: 0, delta: 5 });
        assert_eq!(
            store.apply(&entry(1, 1, Some(add))).map(|o| o.value),
            Some(5)
        );
        assert_eq!(
            store.apply(&entry(2, 1, Some(add))).map(|o| o.value),
            Some(5)
        );
        assert_eq!(store.read(0), 5);
        assert_eq!(store.apply(&entry(3, 2, None)), None);
        assert_eq!(store.applied_index, 3);
    }

    #[test]
    fn snapshot_round_trips_and_chain_tracks_history() {
        let mut a = KvStore::default();
        let mut b = KvStore::default();
        let put = command(1, 1, Write::Put { key: 4, value: 8 });
        a.apply(&entry(1, 1, Some(put)));
        b.apply(&entry(1, 2, Some(put)));
        assert_ne!(
            a.chain, b.chain,
            "same command in another term is another history"
        );
        let meta = SnapshotMeta {
            index: 1,
            term: 1,
            ..SnapshotMeta::default()
        };
        assert_eq!(KvStore::decode(&meta, &a.encode()), Ok(a.clone()));
        let wrong_meta = SnapshotMeta {
            term: 2,
            ..meta.clone()
        };
        assert!(KvStore::decode(&wrong_meta, &a.encode()).is_err());
        let mut truncated = a.encode();
        truncated.truncate(truncated.len() - 8);
        assert!(KvStore::decode(&SnapshotMeta::default(), &truncated).is_err());
        let heavy = a.encode_with_ballast(1 << 16);
        assert_eq!(KvStore::decode(&meta, &heavy), Ok(a.clone()));
        let mut stitched = heavy.clone();
        let other = b.encode_with_ballast(1 << 16);
        stitched[1 << 15..].copy_from_slice(&other[1 << 15..]);
        assert!(
            KvStore::decode(&meta, &stitched).is_err(),
            "a chunk of another snapshot is caught"
        );
    }
}
