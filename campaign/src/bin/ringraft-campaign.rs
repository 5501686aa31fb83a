//! `ringraft-campaign check HISTORY_FILE`: re-checks a saved campaign history; prints the summary
//! line and every violation, exits 0 if it passes, 1 if it does not, 2 if it cannot be read.

use std::path::PathBuf;
use std::process::ExitCode;

use ringraft_campaign::checker;
use ringraft_campaign::history::History;

const USAGE: &str = "usage: ringraft-campaign check HISTORY_FILE";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["check", path] => check(PathBuf::from(path)),
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
    println!("{} history={}", report.summary_line(), path.display());
    print!("{}", report.details(usize::MAX));
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
