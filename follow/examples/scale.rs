//! Scale figures of the follow plane, from the deterministic simulator (virtual time) plus the
//! real cost of updating the tree: `cargo run -p ringraft-follow --release --example scale`.
//!
//! For 1,000 and 10,000 observers (and 5 voters, 1 learner): the time for a membership change to
//! reach every member (p50 and max over the changes), the leader's messages per committed batch,
//! messages per member per second at idle, the tree update per change (real µs, incremental, and
//! a full rebuild for comparison), and the time to decide a silent member down (measured, and the
//! bound derived from the settings and the tree's depth).

#[path = "../tests/sim/mod.rs"]
mod sim;

use std::time::Instant;

use ringraft_follow::{Config, MembershipChange, Role, Topology};
use sim::{run, SimConfig, TICK_MS};

fn percentile(values: &mut [u64], p: f64) -> u64 {
    if values.is_empty() {
        return 0;
    }
    values.sort_unstable();
    values[((values.len() - 1) as f64 * p).round() as usize]
}

fn percentile_f(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    values[((values.len() - 1) as f64 * p).round() as usize]
}

fn quiet(seed: u64, observers: usize) -> SimConfig {
    let mut cfg = SimConfig::swarm(seed, observers);
    cfg.drop_per_mille = 0;
    cfg.tamper_per_mille = 0;
    cfg.cuts = 0;
    cfg.pauses = 0;
    cfg.changes = 16;
    cfg.idle_ms = 2_000;
    cfg
}

/// Real cost of one incremental change against a full rebuild, on a tree of `observers`.
fn tree_costs(observers: u64) -> (f64, f64, f64) {
    let config = Config::default();
    let members = (1..=5)
        .map(|v| (v, Role::Voter))
        .chain((0..observers).map(|o| (1000 + o, Role::Observer)));
    let started = Instant::now();
    let mut topology = Topology::from_members(&config, members).expect("members");
    let rebuild_us = started.elapsed().as_secs_f64() * 1e6;
    let mut costs = Vec::new();
    for i in 0..200u64 {
        let change = if i % 2 == 0 {
            MembershipChange::Set(100_000 + i, Role::Observer)
        } else {
            MembershipChange::Remove(1000 + i * 3)
        };
        let started = Instant::now();
        topology.apply(change).expect("change");
        costs.push(started.elapsed().as_secs_f64() * 1e6);
    }
    let p50 = percentile_f(&mut costs.clone(), 0.5);
    let max = percentile_f(&mut costs, 1.0);
    (p50, max, rebuild_us)
}

fn main() {
    println!(
        "follow plane at scale (5 voters, 1 learner, fan-out 16, tick = {TICK_MS} ms, 1 ms links)"
    );
    for observers in [1_000usize, 10_000] {
        let started = Instant::now();
        let report = run(quiet(1, observers));
        let wall = started.elapsed().as_secs_f64();
        assert!(report.violations.is_empty(), "{:?}", report.violations);
        let s = report.stats;
        let mut reach = s.change_reach_ms.clone();
        let batches = s.batches.max(1);
        println!(
            "\n{observers} observers (simulated {:.1} s in {wall:.1} s real, tree depth {})",
            s.virtual_ms as f64 / 1000.0,
            s.depth
        );
        println!(
            "  change reaches every member: p50 {} ms, max {} ms (over {} changes, virtual)",
            percentile(&mut reach.clone(), 0.5),
            percentile(&mut reach, 1.0),
            s.change_reach_ms.len()
        );
        println!(
            "  leader messages per committed batch: mean {:.1}, max {} (Raft appends to 4 voters + 1 learner included)",
            s.leader_msgs_total as f64 / batches as f64,
            s.leader_msgs_per_batch_max
        );
        println!(
            "  idle: {:.2} messages per member per second (sent)",
            s.idle_msgs_per_member_per_s
        );
        let mut apply = s.tree_apply_us.clone();
        println!(
            "  tree update per change in the run: p50 {:.1} µs, max {:.1} µs; most members re-parented by one change: {}",
            percentile_f(&mut apply.clone(), 0.5),
            percentile_f(&mut apply, 1.0),
            s.reparented_max
        );
        let (p50, max, rebuild) = tree_costs(observers as u64);
        println!("  tree update, 200 alternating joins/removals: p50 {p50:.1} µs, max {max:.1} µs; full rebuild {rebuild:.0} µs");

        let mut silent = SimConfig::swarm(2, observers);
        silent.drop_per_mille = 0;
        silent.tamper_per_mille = 0;
        silent.cuts = 0;
        silent.pauses = 3;
        let report = run(silent);
        assert!(report.violations.is_empty(), "{:?}", report.violations);
        let mut detect: Vec<u64> = report.stats.down_detect_ms.clone();
        println!(
            "  silent member decided down after: {:?} ms (bound {} ms at depth {})",
            {
                detect.sort_unstable();
                detect
            },
            report.stats.down_bound_ms,
            report.stats.depth
        );
    }
    let config = Config::default();
    for depth in [4u32, 5, 6] {
        println!(
            "down bound at depth {depth}: {} ticks = {} ms",
            config.down_bound_ticks(depth),
            config.down_bound_ticks(depth) * TICK_MS
        );
    }
}
