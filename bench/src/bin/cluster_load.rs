//! Cluster load generator: ringraft's 3-node dev cluster and a 3-member etcd cluster side by
//! side on loopback, fsync on, plus the machine's raw limits, all in one bounded run.
//!
//! Build and run from the workspace root:
//!     cargo build --release -p ringraft-daemon -p ringraft-bench
//!     bash bench/run-cluster-bench.sh      # installs etcd when missing, then runs this

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use ringraft_bench::clusters::{run_clusters, ClusterPlan};
use ringraft_bench::suite::{self, load_average, Measurement, PhaseBounds, Placement};
use ringraft_bench::summary;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PlacementArg {
    Leader,
    Spread,
    Both,
}

#[derive(Debug, Parser)]
#[command(about = "ringraft vs etcd on a 3-node loopback cluster, fsync on")]
struct Args {
    /// The ringraftd binary; by default the one next to this program.
    #[arg(long)]
    ringraftd: Option<PathBuf>,
    /// The etcd server binary.
    #[arg(long, default_value = "etcd")]
    etcd: PathBuf,
    /// Scratch directory for the clusters and reference files (a new one under $TMPDIR by
    /// default, removed at the end).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the scratch directory (logs, data) after the run.
    #[arg(long)]
    keep_dir: bool,
    /// Length of each measured phase, in seconds.
    #[arg(long, default_value_t = 5.0)]
    phase_seconds: f64,
    /// Operations per phase at most, over all its clients.
    #[arg(long, default_value_t = 1_000_000)]
    phase_ops_max: u64,
    /// Concurrent client counts (besides the single client).
    #[arg(long, value_delimiter = ',', default_value = "16,64")]
    clients: Vec<usize>,
    /// Where concurrent clients connect.
    #[arg(long, value_enum, default_value_t = PlacementArg::Both)]
    placement: PlacementArg,
    /// Size of each proposal / etcd value.
    #[arg(long, default_value_t = 64)]
    payload_bytes: usize,
    #[arg(long)]
    skip_ringraft: bool,
    #[arg(long)]
    skip_etcd: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let dir = args.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("ringraft-cluster-bench-{}", std::process::id()))
    });
    if let Err(err) = std::fs::create_dir_all(&dir) {
        eprintln!("cluster_load: {}: {err}", dir.display());
        return ExitCode::FAILURE;
    }
    let load_at_start = load_average();
    let measurements = run(&args, &dir);
    println!(
        "Machine: {} CPUs; load average (1, 5, 15 min) at start {load_at_start}, at end {}; \
         scratch directory {}\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average(),
        dir.display()
    );
    println!("{}", summary::render(&measurements));
    if args.keep_dir {
        eprintln!("cluster_load: kept {}", dir.display());
    } else if let Err(err) = std::fs::remove_dir_all(&dir) {
        eprintln!("cluster_load: removing {}: {err}", dir.display());
    }
    let failed = measurements
        .iter()
        .any(|m| m.outcome.as_ref().map(|r| r.errors > 0).unwrap_or(true));
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Every phase, in order; a system that fails to start is recorded as a failed measurement and
/// the run goes on with the next one. Clusters are stopped before this returns (their guards
/// stop them on every path, including a panic).
fn run(args: &Args, dir: &std::path::Path) -> Vec<Measurement> {
    let bounds = PhaseBounds {
        duration: Duration::from_secs_f64(args.phase_seconds.clamp(0.1, 60.0)),
        ops_total_max: args.phase_ops_max.max(1),
        warmup_ops_per_client: 20,
    };
    let placements: &[Placement] = match args.placement {
        PlacementArg::Leader => &[Placement::Leader],
        PlacementArg::Spread => &[Placement::Spread],
        PlacementArg::Both => &[Placement::Leader, Placement::Spread],
    };
    let concurrency: Vec<usize> = args.clients.iter().copied().filter(|c| *c > 0).collect();
    let payload = vec![0x42u8; args.payload_bytes.clamp(1, 64 * 1024)];
    let mut measurements = Vec::new();
    suite::run_references(dir, &bounds, &mut measurements);
    let ringraftd = args
        .ringraftd
        .clone()
        .unwrap_or_else(|| suite::sibling_binary("ringraftd"));
    let plan = ClusterPlan {
        ringraftd: (!args.skip_ringraft).then_some(ringraftd.as_path()),
        etcd: (!args.skip_etcd).then_some(args.etcd.as_path()),
        dir,
        bounds,
        concurrency: &concurrency,
        placements,
        payload: &payload,
    };
    run_clusters(&plan, &mut measurements);
    suite::run_closing_reference(dir, &bounds, &mut measurements);
    measurements
}
