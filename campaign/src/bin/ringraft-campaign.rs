//! `ringraft-campaign check HISTORY_FILE`: re-checks a saved campaign history; prints the summary
//! line and every violation, exits 0 if it passes, 1 if it does not, 2 if it cannot be read.
//!
//! `ringraft-campaign run [--seed S] [--nodes N] [--seconds T]`: runs one campaign (as root)
//! with the `ringraftd` built next to this binary (or `$RINGRAFTD`); exits 0 if it passes.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use ringraft_campaign::campaign::{self, Settings, WorkloadKind};
use ringraft_campaign::checker;
use ringraft_campaign::history::Call;
use ringraft_campaign::history::History;
use ringraft_campaign::kv_checker;
use ringraft_campaign::kv_workload::KvPlan;

const USAGE: &str = "usage: ringraft-campaign check HISTORY_FILE\n       \
                     ringraft-campaign run [--seed S] [--nodes N] [--seconds T] [--registers]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("check") if args.len() == 2 => check(PathBuf::from(&args[1])),
        Some("run") => run(&args[1..]),
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn check(path: PathBuf) -> ExitCode {
    let history = match History::load(&path) {
        Ok(history) => history,
        Err(err) => {
            eprintln!("ringraft-campaign: {err}");
            return ExitCode::from(2);
        }
    };
    let report = checker::check(&history);
    // A registers run's history: its register ops are judged too.
    let registers = history
        .ops
        .iter()
        .any(|op| matches!(op.call, Call::KvGet { .. } | Call::KvCas { .. }))
        .then(|| kv_checker::check(&history));
    if let Some(registers) = &registers {
        println!("{}", registers.summary_line());
        print!("{}", registers.details(usize::MAX));
    }
    println!("{} history={}", report.summary_line(), path.display());
    print!("{}", report.details(usize::MAX));
    if report.passed() && registers.as_ref().is_none_or(|r| r.passed()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn run(args: &[String]) -> ExitCode {
    let mut seed = campaign::random_seed();
    let mut nodes = 5;
    let mut seconds = 60;
    let mut registers = false;
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        if flag == "--registers" {
            registers = true;
            continue;
        }
        let value = rest.next().and_then(|v| v.parse::<u64>().ok());
        match (flag.as_str(), value) {
            ("--seed", Some(v)) => seed = v,
            ("--nodes", Some(v)) => nodes = v,
            ("--seconds", Some(v)) => seconds = v,
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    if let Some(reason) = campaign::skip_reason() {
        eprintln!("ringraft-campaign: cannot run here: {reason}");
        return ExitCode::from(2);
    }
    let (target_dir, ringraftd) = match campaign::locate() {
        Ok(found) => found,
        Err(err) => {
            eprintln!("ringraft-campaign: {err}");
            return ExitCode::from(2);
        }
    };
    let failures = campaign::run_all(&[Settings {
        seed,
        nodes,
        duration: Duration::from_secs(seconds),
        target_dir,
        ringraftd,
        only: std::env::var("RINGRAFT_CAMPAIGN_FAULTS")
            .map(|v| {
                v.split(',')
                    .map(str::to_string)
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
        sabotage: false,
        workload: if registers {
            WorkloadKind::Registers(KvPlan::for_nodes(nodes))
        } else {
            WorkloadKind::Log
        },
        membership_once: registers,
    }]);
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
