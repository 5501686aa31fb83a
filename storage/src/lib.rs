//! Durable storage for the ringraft Raft log: WAL segments, snapshots, recovery
