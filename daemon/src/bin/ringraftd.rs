//! ringraftd: the node-local coordination daemon.

use clap::{Parser, Subcommand};
use ringraft_daemon::dev::{dev, DevArgs};
use ringraft_daemon::run::{run, RunArgs};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "ringraftd",
    version,
    about = "Node-local coordination daemon: Raft over QUIC, membership and a consistent-hash ring",
    long_about = "Node-local coordination daemon: Raft over QUIC, membership and a consistent-hash \
                  ring.\n\nWithout a subcommand, runs one node (same as `ringraftd run`).\n\
                  `ringraftd dev --nodes 3 --dir DIR` starts a working local cluster.",
    after_help = ringraft_daemon::run::exit_codes_help()
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run one node (the service).
    #[command(after_help = ringraft_daemon::run::exit_codes_help())]
    Run(RunArgs),
    /// Run a local N-node cluster in the foreground, with generated certificates.
    Dev(DevArgs),
}

fn main() {
    // RINGRAFT_LOG first, then the usual RUST_LOG, then our default.
    let filter = EnvFilter::try_from_env("RINGRAFT_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info,quinn=warn,rustls=warn"));
    // Colours only for a person at a terminal: log files and the journal get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let code = match cli.command {
        Some(Command::Run(args)) => run(args),
        Some(Command::Dev(args)) => dev(args),
        None => run(cli.run),
    };
    std::process::exit(code);
}
