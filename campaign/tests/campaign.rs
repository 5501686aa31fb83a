//! The fault campaign in the test command (DESIGN.md, "Testing layers"; issue 10): real ringraftd
//! processes in network namespaces, clients on every node's socket, faults at random from a seed,
//! and the checker over the whole history. Needs root (CI runs as root); elsewhere it prints a
//! SKIPPED line and passes.
//!
//! By default: two fixed seeds (3 and 5 nodes) and one seed drawn at random (printed), about
//! three minutes in all. `RINGRAFT_CAMPAIGN_SECONDS=T` runs one longer campaign instead, with
//! `RINGRAFT_CAMPAIGN_SEED` (default: random), `RINGRAFT_CAMPAIGN_NODES` (default 5) and
//! `RINGRAFT_CAMPAIGN_FAULTS=kind,kind` (default: every kind). Each run prints one summary line
//! and writes its history under `target/campaign/`; `ringraft-campaign check FILE` re-checks it.

use std::io::Write as _;
use std::time::Duration;

use ringraft_campaign::campaign::{self, Settings, WorkloadKind};

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a number")),
    )
}

#[test]
fn fault_campaign() {
    if let Some(reason) = campaign::skip_reason() {
        let _ = writeln!(std::io::stderr(), "SKIPPED: fault campaign: {reason}");
        return;
    }
    let (target_dir, ringraftd) = campaign::locate().unwrap_or_else(|err| panic!("{err}"));
    let only: Vec<String> = std::env::var("RINGRAFT_CAMPAIGN_FAULTS")
        .map(|v| {
            v.split(',')
                .map(str::to_string)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    for kind in &only {
        assert!(
            campaign::fault_kinds().contains(&kind.as_str()),
            "RINGRAFT_CAMPAIGN_FAULTS: unknown kind {kind:?}; kinds: {:?}",
            campaign::fault_kinds()
        );
    }
    let settings = |seed: u64, nodes: u64, seconds: u64| Settings {
        seed,
        nodes,
        duration: Duration::from_secs(seconds),
        target_dir: target_dir.clone(),
        ringraftd: ringraftd.clone(),
        only: only.clone(),
        sabotage: false,
        workload: WorkloadKind::Log,
        membership_once: false,
    };
    let runs = match env_u64("RINGRAFT_CAMPAIGN_SECONDS") {
        Some(seconds) => vec![settings(
            env_u64("RINGRAFT_CAMPAIGN_SEED").unwrap_or_else(campaign::random_seed),
            env_u64("RINGRAFT_CAMPAIGN_NODES").unwrap_or(5),
            seconds,
        )],
        None => {
            let random = env_u64("RINGRAFT_CAMPAIGN_SEED").unwrap_or_else(campaign::random_seed);
            vec![
                settings(1, 3, 45),
                settings(2, 5, 45),
                settings(random, 3 + 2 * (random % 2), 40),
            ]
        }
    };
    let failures = campaign::run_all(&runs);
    assert!(
        failures.is_empty(),
        "the fault campaign failed:\n{}",
        failures.join("\n")
    );
}
