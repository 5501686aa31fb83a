//! The command line of ringraftctl.

use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::certs::CertsArgs;

pub const DEFAULT_SOCKET: &str = "/run/ringraft/ringraftd.sock";

/// The global options that only matter to commands that talk to a daemon: hidden from the help
/// of `certs`, which needs no daemon (they are still accepted there, and ignored).
const DAEMON_OPTION_IDS: [&str; 2] = ["socket", "wait_ms"];

/// The whole command tree, as `--help` shows it: [`Cli`]'s, with the daemon-only global options
/// hidden under `certs`.
pub fn command() -> clap::Command {
    let mut command = Cli::command();
    // Global options reach subcommands when the tree is built; hide them after that.
    command.build();
    command.mut_subcommands(|sub| {
        if sub.get_name() == "certs" {
            hide_daemon_options(sub)
        } else {
            sub
        }
    })
}

fn hide_daemon_options(command: clap::Command) -> clap::Command {
    command
        .mut_args(|arg| {
            if DAEMON_OPTION_IDS.contains(&arg.get_id().as_str()) {
                arg.hide(true)
            } else {
                arg
            }
        })
        .mut_subcommands(hide_daemon_options)
}

/// Parse the process's arguments with [`command`] (exits with status 2 on a usage error).
pub fn parse() -> Cli {
    let matches = command().get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit())
}

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
    ///
    /// DATA is committed as its UTF-8 bytes; `-` reads the proposal from stdin instead, and
    /// --file PATH from a file, byte for byte (binary data too, up to the daemon's proposal
    /// limit). To commit the one-byte text `-`, pipe it: `printf - | ringraftctl propose -`.
    /// While no leader is known the daemon waits for one, up to --timeout-ms, before it answers
    /// `no_leader` (nothing was proposed then).
    Propose {
        /// The proposal as UTF-8 text, or `-` to read it from stdin.
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        data: Option<String>,
        /// Read the proposal from this file (any bytes).
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
        /// How long the daemon may take to commit it (waiting for a leader included).
        #[arg(long, default_value_t = 5_000)]
        timeout_ms: u32,
    },
    /// Read committed records from index FROM.
    ///
    /// One line per record: its index, a tab, its data. Data that is printable UTF-8 text is
    /// printed as is; anything else (binary data, control characters such as a newline or a
    /// tab, or text that itself begins with `hex:`) is printed as `hex:` and its bytes in
    /// lowercase hex, so a line is never ambiguous. --json gives both `data` and `data_hex`.
    Read {
        /// The first index wanted.
        from: u64,
        /// At most this many records.
        #[arg(long, default_value_t = 100)]
        max: u32,
    },
    /// Follow the application log from index FROM (Ctrl-C to stop).
    ///
    /// Text: one line per record, as `read` prints them (data that is not printable text, or
    /// that begins with `hex:`, is printed as `hex:` and its bytes in hex). --json: JSON Lines,
    /// one document per record (`{"index", "data", "data_hex"}`), as etcdctl watch.
    Watch {
        /// The first index wanted.
        from: u64,
        /// Stop after this many records.
        #[arg(long)]
        records: Option<u64>,
    },
    /// Per-key registers: get, put (compare-and-set with --expect-version), delete.
    ///
    /// A linearizable value and version per key (0: absent; every write adds 1), replicated by
    /// CASPaxos on the key's ring replicas.
    #[command(subcommand)]
    Kv(KvCommand),
    /// Add a member (as a learner); prints the index of the change (the ring's new epoch).
    /// Refused (conflict) if another member has the id, name or address. Admin.
    Join {
        /// The new member's node id (>= 1).
        #[arg(long)]
        id: u64,
        /// Its human-readable name.
        #[arg(long)]
        name: String,
        /// QUIC address: an IP literal and port (10.0.0.11:7400); host names are not accepted.
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
    Remove {
        /// The member's node id.
        id: u64,
    },
    /// Make learner ID a voter; prints the index of the change (the ring's new epoch). Refused
    /// with conflict if ID is already a voter, unavailable if the leader has not heard from it
    /// lately or its log is too far behind (the error says how far). Admin.
    Promote {
        /// The learner's node id.
        id: u64,
    },
    /// Hand leadership to member ID. Admin.
    TransferLeader {
        /// The node id of the voter to hand leadership to.
        id: u64,
    },
    /// Take a snapshot and compact the log now. Admin.
    Snapshot,
    /// Create a cluster CA and issue node certificates (no daemon needed).
    Certs(CertsArgs),
}

/// The register subcommands. Exit status 0 on success, 1 on any error (the register absent on
/// `get`, a version mismatch, a timeout...), 2 on a usage error.
#[derive(Debug, Subcommand)]
pub enum KvCommand {
    /// Print the value of KEY's register.
    ///
    /// As text, or `hex:` and its bytes in hex when it is not printable text or itself begins
    /// with `hex:` (so the two never look alike); --json adds its version and ring
    /// epoch. An absent register prints nothing on stdout and exits 1 (`error: not_found: ...`
    /// on stderr).
    Get {
        /// The key, as UTF-8 bytes (at most 4096).
        key: String,
        /// How long the daemon may take for the read.
        #[arg(long, default_value_t = 5_000)]
        timeout_ms: u32,
    },
    /// Write VALUE to KEY's register; prints the new version.
    ///
    /// With --expect-version N only if the version is N (0: only if absent); a mismatch writes
    /// nothing, prints the current version (`error: conflict: the register's version is M ...`)
    /// and exits 1. A write that times out may still have taken effect: read the register
    /// before trying again.
    Put {
        /// The key, as UTF-8 bytes (at most 4096).
        key: String,
        /// The value, as UTF-8 bytes (at most the daemon's kv_value_bytes_max, 64 KiB by default).
        value: String,
        /// Write only if the register's version is N (0: only if absent).
        #[arg(long, value_name = "N")]
        expect_version: Option<u64>,
        /// How long the daemon may take for the write.
        #[arg(long, default_value_t = 5_000)]
        timeout_ms: u32,
    },
    /// Delete KEY's register (afterwards absent, version 0).
    ///
    /// With --expect-version N only if the version is N; a mismatch deletes nothing, prints the
    /// current version and exits 1. Deleting an absent register succeeds. A delete that times
    /// out may still have taken effect.
    Delete {
        /// The key, as UTF-8 bytes (at most 4096).
        key: String,
        /// Delete only if the register's version is N.
        #[arg(long, value_name = "N")]
        expect_version: Option<u64>,
        /// How long the daemon may take for the delete.
        #[arg(long, default_value_t = 5_000)]
        timeout_ms: u32,
    },
}
