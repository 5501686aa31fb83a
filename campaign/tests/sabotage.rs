//! The campaign must be able to fail on real processes, not only in the checker's self-tests: a
//! run in which the harness deletes every node's Raft data half way through (a cluster that
//! forgets everything it acknowledged) must end with lost acknowledgements and a FAIL verdict.
//! Needs root, like the campaign; elsewhere it prints a SKIPPED line and passes.

use std::io::Write as _;
use std::time::Duration;

use ringraft_campaign::campaign::{self, Settings, WorkloadKind};
use ringraft_campaign::checker::Kind;

#[test]
fn a_cluster_that_forgets_what_it_acknowledged_fails_the_campaign() {
    if let Some(reason) = campaign::skip_reason() {
        let _ = writeln!(std::io::stderr(), "SKIPPED: sabotaged campaign: {reason}");
        return;
    }
    let (target_dir, ringraftd) = campaign::locate().unwrap_or_else(|err| panic!("{err}"));
    let settings = Settings {
        seed: 99,
        nodes: 3,
        duration: Duration::from_secs(16),
        target_dir,
        ringraftd,
        // No fault kind is called this: the sabotage is the only fault.
        only: vec!["no-other-fault".to_string()],
        sabotage: true,
        workload: WorkloadKind::Log,
        membership_once: false,
    };
    let result = campaign::run(&settings).unwrap_or_else(|err| panic!("harness: {err}"));
    let _ = writeln!(std::io::stderr(), "{}", result.summary);
    let report = &result.report;
    assert!(
        !report.passed(),
        "the sabotaged run passed: {}",
        result.summary
    );
    assert!(
        report.count(Kind::Lost) > 0,
        "deleting every node's data must lose acknowledged proposals:\n{}",
        report.details(20)
    );
    assert!(
        result.summary.contains("verdict=FAIL"),
        "{}",
        result.summary
    );
    // The saved history gives the same verdict.
    let again = ringraft_campaign::checker::check(
        &ringraft_campaign::history::History::load(&result.history).expect("history"),
    );
    assert_eq!(again.count(Kind::Lost), report.count(Kind::Lost));
    if let Some(dir) = result.kept_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    let _ = std::fs::remove_file(&result.history);
}
