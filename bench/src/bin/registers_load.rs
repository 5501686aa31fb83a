//! Registers load generator (issue 12): compare-and-swap increments on ringraft's per-key
//! registers (hot keys shared by every client, cold keys of each client's own) beside etcd's Txn
//! compare-and-swap and ringraft's Raft propose, for 3- and 5-node clusters on loopback, fsync
//! on, in one bounded run.
//!
//! Build and run from the workspace root:
//!     cargo build --release -p ringraft-daemon -p ringraft-bench
//!     bash bench/run-registers-bench.sh    # installs etcd when missing, then runs this

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use ringraft_bench::registers::{run_registers, RegistersPlan};
use ringraft_bench::registers_summary;
use ringraft_bench::suite::{load_average, sibling_binary, PhaseBounds};

#[derive(Debug, Parser)]
#[command(about = "ringraft registers (kv_cas) vs etcd Txn CAS vs ringraft propose, fsync on")]
struct Args {
    /// The ringraftd binary; by default the one next to this program.
    #[arg(long)]
    ringraftd: Option<PathBuf>,
    /// The etcd server binary.
    #[arg(long, default_value = "etcd")]
    etcd: PathBuf,
    /// Scratch directory for the clusters (a new one under $TMPDIR by default, removed at the
    /// end).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the scratch directory (logs, data) after the run.
    #[arg(long)]
    keep_dir: bool,
    /// Length of each measured phase, in seconds.
    #[arg(long, default_value_t = 4.0)]
    phase_seconds: f64,
    /// Operations per phase at most, over all its clients.
    #[arg(long, default_value_t = 1_000_000)]
    phase_ops_max: u64,
    /// Cluster sizes (ringraft nodes and etcd members), run one after the other.
    #[arg(long, value_delimiter = ',', default_value = "3,5")]
    nodes: Vec<usize>,
    /// Concurrent client counts (besides the single client), spread over all nodes.
    #[arg(long, value_delimiter = ',', default_value = "16,64")]
    clients: Vec<usize>,
    /// Keys every client shares in the hot phases.
    #[arg(long, default_value_t = 4)]
    hot_keys: usize,
    /// Keys of each client's own in the cold phases.
    #[arg(long, default_value_t = 8)]
    cold_keys_per_client: usize,
    /// Size of each value and proposal (at least 20: the counter's digits).
    #[arg(long, default_value_t = 64)]
    value_bytes: usize,
    #[arg(long)]
    skip_ringraft: bool,
    #[arg(long)]
    skip_etcd: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let dir = args.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("ringraft-registers-bench-{}", std::process::id()))
    });
    if let Err(err) = std::fs::create_dir_all(&dir) {
        eprintln!("registers_load: {}: {err}", dir.display());
        return ExitCode::FAILURE;
    }
    let load_at_start = load_average();
    let ringraftd = args
        .ringraftd
        .clone()
        .unwrap_or_else(|| sibling_binary("ringraftd"));
    let sizes: Vec<usize> = args.nodes.iter().copied().filter(|n| *n > 0).collect();
    let plan = RegistersPlan {
        ringraftd: (!args.skip_ringraft).then_some(ringraftd.as_path()),
        etcd: (!args.skip_etcd).then_some(args.etcd.as_path()),
        dir: &dir,
        bounds: PhaseBounds {
            duration: Duration::from_secs_f64(args.phase_seconds.clamp(0.1, 60.0)),
            ops_total_max: args.phase_ops_max.max(1),
            warmup_ops_per_client: 20,
        },
        sizes: &sizes,
        concurrency: &args.clients,
        hot_keys: args.hot_keys.max(1),
        cold_keys_per_client: args.cold_keys_per_client.max(1),
        value_bytes: args.value_bytes.clamp(20, 64 * 1024),
    };
    let phases = run_registers(&plan);
    println!(
        "Machine: {} CPUs; load average (1, 5, 15 min) at start {load_at_start}, at end {}; \
         scratch directory {}\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average(),
        dir.display()
    );
    println!("{}", registers_summary::render(&phases));
    if args.keep_dir {
        eprintln!("registers_load: kept {}", dir.display());
    } else if let Err(err) = std::fs::remove_dir_all(&dir) {
        eprintln!("registers_load: removing {}: {err}", dir.display());
    }
    let failed = phases
        .iter()
        .any(|p| p.outcome.as_ref().map(|r| r.errors > 0).unwrap_or(true));
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
