//! ringraft-raft: a deterministic, sans-IO Raft core.

pub mod config;
pub mod ready;
pub mod types;

pub use config::Config;
pub use ready::Ready;
pub use types::*;
