//! The command line of ringraftctl.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::certs::CertsArgs;

pub const DEFAULT_SOCKET: &str = "/run/ringraft/ringraftd.sock";

/// Talk to the local ringraftd over its Unix socket.
#[derive(Debug, Parser)]
#[command(name = "ringraftctl", version)]
pub struct Cli {
    /// The daemon's socket.
    #[arg(long, global = true, env = "RINGRAFT_SOCKET", default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// Print one JSON document per answer instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// How long to wait for an answer, in milliseconds, at least 1 (watch waits forever).
    #[arg(long, global = true, default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub wait_ms: u64,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// This node's view: role, term, leader, indexes, epoch.
    Status,
    /// The cluster's members.
    Members {
        /// Confirm with the leader (ReadIndex) before answering.
        #[arg(long)]
        linearizable: bool,
    },
    /// The ring: members, settings and its epoch.
    Ring {
        /// Confirm with the leader (ReadIndex) before answering.
        #[arg(long)]
        linearizable: bool,
    },
    /// The member that owns KEY.
    Owner {
        /// The key, as UTF-8 bytes.
        key: String,
        /// Confirm with the leader (ReadIndex) before answering.
        #[arg(long)]
        linearizable: bool,
    },
    /// The N members that hold KEY.
    Replicas {
        /// The key, as UTF-8 bytes.
        key: String,
        /// How many distinct members.
        #[arg(short = 'n', value_name = "N", default_value_t = 3)]
        n: u32,
        /// Confirm with the leader (ReadIndex) before answering.
        #[arg(long)]
        linearizable: bool,
    },
    /// Commit DATA to the application log; prints its index.
    Propose {
        /// The proposal, as UTF-8 bytes.
        data: String,
        /// How long the daemon may take to commit it.
        #[arg(long, default_value_t = 5_000)]
        timeout_ms: u32,
    },
    /// Read committed records from index FROM.
    Read {
        /// The first index wanted.
        from: u64,
        /// At most this many records.
        #[arg(long, default_value_t = 100)]
        max: u32,
    },
    /// Follow the application log from index FROM (Ctrl-C to stop).
    Watch {
        /// The first index wanted.
        from: u64,
        /// Stop after this many records.
        #[arg(long)]
        records: Option<u64>,
    },
    /// Add a member (as a learner); prints the index of the change (the ring's new epoch).
    /// Refused (conflict) if another member has the id, name or address. Admin.
    Join {
        /// The new member's node id (>= 1).
        #[arg(long)]
        id: u64,
        /// Its human-readable name.
        #[arg(long)]
        name: String,
        /// QUIC address, host:port.
        #[arg(long)]
        address: String,
        /// Failure domain (empty: zones not used).
        #[arg(long, default_value = "")]
        zone: String,
        /// Share of the ring relative to other members.
        #[arg(long, default_value_t = 1)]
        weight: u32,
    },
    /// Remove member ID; prints the index of the change (the ring's new epoch). Admin.
    Remove { id: u64 },
    /// Make learner ID a voter; prints the index of the change (the ring's new epoch). Refused
    /// with conflict if ID is already a voter, unavailable if the leader has not heard from it
    /// lately or its log is too far behind (the error says how far). Admin.
    Promote { id: u64 },
    /// Hand leadership to member ID. Admin.
    TransferLeader { id: u64 },
    /// Take a snapshot and compact the log now. Admin.
    Snapshot,
    /// Create a cluster CA and issue node certificates (no daemon needed).
    Certs(CertsArgs),
}
