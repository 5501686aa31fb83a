//! The core's [`DurableLog`] on this storage: a Ready's writes go to the WAL (and a snapshot
//! from the leader to its own file), and `sync` is the batch's one fdatasync.

use ringraft_raft::{DurableLog, WriteBatch};

use crate::error::StorageError;
use crate::storage::Storage;

impl DurableLog for Storage {
    type Error = StorageError;

    fn write(&mut self, batch: WriteBatch<'_>) -> Result<(), StorageError> {
        if let Some(snapshot) = batch.snapshot {
            self.save_snapshot(snapshot)?;
            // The segments the snapshot covers go now: a follower that needed a snapshot is far
            // behind, and what it held before is of no use to anyone.
            self.compact(snapshot.meta.index)?;
        }
        if !batch.entries.is_empty() {
            self.append(batch.entries)?;
        }
        if let Some(hard_state) = batch.hard_state {
            self.save_hard_state(&hard_state)?;
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        Storage::sync(self)
    }
}
