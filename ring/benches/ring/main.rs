//! Ring benchmarks: balance, movement, lookup time, build time and memory, for the
//! allocated ring and for three reference schemes. Prints tables; asserts nothing.
//!
//!     cargo bench -p ringraft-ring --bench ring [balance|movement|lookup|build]

mod reference;

use std::hint::black_box;
use std::time::Instant;

use reference::{jump, rendezvous, rendezvous3, HashedRing};
use ringraft_ring::{key_position, Member, Ring, RingState, DEFAULT_VNODES};

const KEYS: u64 = 1_000_000;
const SPAN: f64 = 18_446_744_073_709_551_616.0;

fn main() {
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .collect();
    let run = |section: &str| wanted.is_empty() || wanted.iter().any(|w| w == section);
    let positions: Vec<u64> = (0..KEYS).map(|i| key_position(&i.to_le_bytes())).collect();
    if run("balance") {
        balance(&positions);
    }
    if run("movement") {
        movement(&positions);
    }
    if run("lookup") {
        lookup();
    }
    if run("build") {
        build();
    }
}

/// A ring of members 1..=n, each joined in id order with weight 1.
fn allocated(n: u64, vnodes: u32) -> RingState {
    let mut state = RingState::new(vnodes).expect("valid vnodes");
    for id in 1..=n {
        state.join(Member::new(id, 1), id).expect("join");
    }
    state
}

struct Spread {
    max_over_mean: f64,
    min_over_mean: f64,
    stddev_over_mean: f64,
}

fn spread(values: &[f64]) -> Spread {
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let max = values.iter().copied().fold(f64::MIN, f64::max);
    let min = values.iter().copied().fold(f64::MAX, f64::min);
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64;
    Spread {
        max_over_mean: max / mean,
        min_over_mean: min / mean,
        stddev_over_mean: variance.sqrt() / mean,
    }
}

fn exact_spread(state: &RingState) -> Spread {
    let shares: Vec<f64> = state
        .token_coverage()
        .values()
        .map(|&c| c as f64 / SPAN)
        .collect();
    spread(&shares)
}

fn sampled_spread(members: &[u64], positions: &[u64], owner: impl Fn(u64) -> u64) -> Spread {
    let index: std::collections::HashMap<u64, usize> =
        members.iter().enumerate().map(|(i, &m)| (m, i)).collect();
    let mut counts = vec![0f64; members.len()];
    for &position in positions {
        counts[index[&owner(position)]] += 1.0;
    }
    spread(&counts)
}

fn balance(positions: &[u64]) {
    let n = 100u64;
    let members: Vec<u64> = (1..=n).collect();
    println!("\n## Balance: {n} members of weight 1, {KEYS} keys");
    println!("exact = share of the circle; keys = counted over the keys; after leave = member 50 removed;");
    println!("after churn = 10 members removed and 10 joined. Ratios are max/mean, min/mean, stddev/mean.\n");
    println!("| scheme | vnodes | exact max | keys max | keys min | keys stddev | after leave max | after churn max | ring bytes/member |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for vnodes in [8, 16, 32, 64, 128, 256] {
        let state = allocated(n, vnodes);
        let exact = exact_spread(&state);
        let ring = Ring::new(state.clone());
        let keys = sampled_spread(&members, positions, |p| {
            ring.owner_at(p).expect("non-empty").member
        });
        let mut left = state.clone();
        left.leave(50, n + 1).expect("leave");
        let mut churned = state.clone();
        for round in 0..10u64 {
            let epoch = n + 1 + 2 * round;
            churned.leave(5 + 10 * round, epoch).expect("leave");
            churned
                .join(Member::new(n + 1 + round, 1), epoch + 1)
                .expect("join");
        }
        println!(
            "| allocated | {vnodes} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {} |",
            exact.max_over_mean,
            keys.max_over_mean,
            keys.min_over_mean,
            keys.stddev_over_mean,
            exact_spread(&left).max_over_mean,
            exact_spread(&churned).max_over_mean,
            ring.memory_bytes() / n as usize
        );
    }
    for vnodes in [16, 64, 256, 1024, 4096] {
        let ring = HashedRing::new(&members, vnodes);
        let shares: Vec<f64> = ring.coverage().into_iter().map(|(_, s)| s).collect();
        let exact = spread(&shares);
        let keys = sampled_spread(&members, positions, |p| ring.owner_at(p));
        let left_members: Vec<u64> = members.iter().copied().filter(|&m| m != 50).collect();
        let left = HashedRing::new(&left_members, vnodes);
        let left_shares: Vec<f64> = left.coverage().into_iter().map(|(_, s)| s).collect();
        println!(
            "| hashed tokens | {vnodes} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | - | {} |",
            exact.max_over_mean,
            keys.max_over_mean,
            keys.min_over_mean,
            keys.stddev_over_mean,
            spread(&left_shares).max_over_mean,
            ring.memory_bytes() / n as usize
        );
    }
    let buckets: Vec<u64> = (0..n).collect();
    let keys = sampled_spread(&buckets, positions, |p| u64::from(jump(p, n as u32)));
    println!(
        "| jump | - | 1 (by design) | {:.4} | {:.4} | {:.4} | - | - | 0 |",
        keys.max_over_mean, keys.min_over_mean, keys.stddev_over_mean
    );
    let keys = sampled_spread(&members, positions, |p| rendezvous(p, &members));
    println!(
        "| rendezvous | - | 1 (expected) | {:.4} | {:.4} | {:.4} | - | - | 8 |",
        keys.max_over_mean, keys.min_over_mean, keys.stddev_over_mean
    );
    println!("\nAllocated, default vnodes ({DEFAULT_VNODES}), exact max/mean by ring size:\n");
    println!("| members | exact max | exact min | after leave max |");
    println!("|---:|---:|---:|---:|");
    for n in [10u64, 100, 1000] {
        let state = allocated(n, DEFAULT_VNODES);
        let exact = exact_spread(&state);
        let mut left = state.clone();
        left.leave(n / 2, n + 1).expect("leave");
        println!(
            "| {n} | {:.4} | {:.4} | {:.4} |",
            exact.max_over_mean,
            exact.min_over_mean,
            exact_spread(&left).max_over_mean
        );
    }
    weighted();
}

/// Members of weights 1..=4 in turn: the worst ratio of share to weight-proportional share.
fn weighted() {
    let mut state = RingState::new(DEFAULT_VNODES).expect("vnodes");
    let weight = |id: u64| (id % 4) as u32 + 1;
    for id in 1..=100u64 {
        state.join(Member::new(id, weight(id)), id).expect("join");
    }
    let total: u64 = (1..=100u64).map(|id| u64::from(weight(id))).sum();
    let ratios: Vec<f64> = state
        .token_coverage()
        .iter()
        .map(|(&id, &c)| (c as f64 / SPAN) / (f64::from(weight(id)) / total as f64))
        .collect();
    let max = ratios.iter().copied().fold(f64::MIN, f64::max);
    let min = ratios.iter().copied().fold(f64::MAX, f64::min);
    println!("\nWeighted (100 members, weights 1-4, vnodes {DEFAULT_VNODES}): share / weight-proportional share in [{min:.4}, {max:.4}]");
}

fn moved(positions: &[u64], before: impl Fn(u64) -> u64, after: impl Fn(u64) -> u64) -> f64 {
    let moved = positions.iter().filter(|&&p| before(p) != after(p)).count();
    moved as f64 / positions.len() as f64
}

fn movement(positions: &[u64]) {
    println!(
        "\n## Keys moved: n members, one joins (n → n+1), then an old member leaves (n+1 → n)"
    );
    println!("Ideal for both: 1/(n+1). Ratio = moved / ideal over {KEYS} keys; exact = from the circle shares.");
    println!("Jump can only remove the last bucket, so its leave removes the newest.\n");
    println!("| scheme | n | join ratio (keys) | join ratio (exact) | leave ratio (keys) | leave ratio (exact) |");
    println!("|---|---:|---:|---:|---:|---:|");
    for n in [10u64, 100, 1000] {
        let ideal = 1.0 / (n + 1) as f64;
        let leaver = n / 2;
        let before = allocated(n, DEFAULT_VNODES);
        let mut joined = before.clone();
        joined.join(Member::new(n + 1, 1), n + 1).expect("join");
        let mut left = joined.clone();
        left.leave(leaver, n + 2).expect("leave");
        let coverage = joined.token_coverage();
        let (r0, r1, r2) = (
            Ring::new(before),
            Ring::new(joined.clone()),
            Ring::new(left),
        );
        let owner = |ring: &Ring, p: u64| ring.owner_at(p).expect("non-empty").member;
        println!(
            "| allocated | {n} | {:.4} | {:.4} | {:.4} | {:.4} |",
            moved(positions, |p| owner(&r0, p), |p| owner(&r1, p)) / ideal,
            coverage[&(n + 1)] as f64 / SPAN / ideal,
            moved(positions, |p| owner(&r1, p), |p| owner(&r2, p)) / ideal,
            coverage[&leaver] as f64 / SPAN / ideal,
        );
        let members: Vec<u64> = (1..=n).collect();
        let mut grown = members.clone();
        grown.push(n + 1);
        let shrunk: Vec<u64> = grown.iter().copied().filter(|&m| m != leaver).collect();
        for vnodes in [128, 1024] {
            let (h0, h1, h2) = (
                HashedRing::new(&members, vnodes),
                HashedRing::new(&grown, vnodes),
                HashedRing::new(&shrunk, vnodes),
            );
            let shares: std::collections::BTreeMap<u64, f64> = h1.coverage().into_iter().collect();
            println!(
                "| hashed tokens ({vnodes}) | {n} | {:.4} | {:.4} | {:.4} | {:.4} |",
                moved(positions, |p| h0.owner_at(p), |p| h1.owner_at(p)) / ideal,
                shares[&(n + 1)] / ideal,
                moved(positions, |p| h1.owner_at(p), |p| h2.owner_at(p)) / ideal,
                shares[&leaver] / ideal,
            );
        }
        let buckets = n as u32;
        println!(
            "| jump | {n} | {:.4} | - | {:.4} | - |",
            moved(
                positions,
                |p| u64::from(jump(p, buckets)),
                |p| u64::from(jump(p, buckets + 1))
            ) / ideal,
            moved(
                positions,
                |p| u64::from(jump(p, buckets + 1)),
                |p| u64::from(jump(p, buckets))
            ) / ideal,
        );
        println!(
            "| rendezvous | {n} | {:.4} | - | {:.4} | - |",
            moved(
                positions,
                |p| rendezvous(p, &members),
                |p| rendezvous(p, &grown)
            ) / ideal,
            moved(
                positions,
                |p| rendezvous(p, &grown),
                |p| rendezvous(p, &shrunk)
            ) / ideal,
        );
    }
}

/// Best of three runs of `lookups` calls, in nanoseconds per call.
fn time_per_call(lookups: u64, mut call: impl FnMut(u64) -> u64) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let mut sum = 0u64;
        for i in 0..lookups {
            sum = sum.wrapping_add(call(black_box(i)));
        }
        black_box(sum);
        best = best.min(started.elapsed().as_nanos() as f64 / lookups as f64);
    }
    best
}

fn lookup() {
    println!(
        "\n## Lookup time (ns per call, key = 8 bytes, hashing included, best of 3 × 1M calls)"
    );
    println!("Allocated ring with default vnodes ({DEFAULT_VNODES}); zoned = members spread over 3 zones.\n");
    println!("| n | owner | replicas(3) | replicas(3) zoned | hashed-tokens owner (1024) | jump owner | rendezvous owner | rendezvous 3 |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for n in [10u64, 100, 1000] {
        let ring = Ring::new(allocated(n, DEFAULT_VNODES));
        let mut zoned_state = RingState::new(DEFAULT_VNODES).expect("vnodes");
        for id in 1..=n {
            let zone = format!("zone-{}", id % 3);
            zoned_state
                .join(Member::new(id, 1).with_zone(zone), id)
                .expect("join");
        }
        let zoned = Ring::new(zoned_state);
        let members: Vec<u64> = (1..=n).collect();
        let hashed = HashedRing::new(&members, 1024);
        let mut out = Vec::with_capacity(3);
        let owner = time_per_call(KEYS, |i| {
            ring.owner(&i.to_le_bytes()).map_or(0, |o| o.member)
        });
        let replicas = time_per_call(KEYS, |i| {
            ring.replicas_into(&i.to_le_bytes(), 3, &mut out);
            out[2]
        });
        let replicas_zoned = time_per_call(KEYS, |i| {
            zoned.replicas_into(&i.to_le_bytes(), 3, &mut out);
            out[2]
        });
        let hashed_owner = time_per_call(KEYS, |i| hashed.owner_at(key_position(&i.to_le_bytes())));
        let jump_owner = time_per_call(KEYS, |i| {
            u64::from(jump(key_position(&i.to_le_bytes()), n as u32))
        });
        let rendezvous_calls = if n >= 1000 { KEYS / 10 } else { KEYS };
        let rendezvous_owner = time_per_call(rendezvous_calls, |i| {
            rendezvous(key_position(&i.to_le_bytes()), &members)
        });
        let rendezvous_three = time_per_call(rendezvous_calls, |i| {
            rendezvous3(key_position(&i.to_le_bytes()), &members)[2]
        });
        println!(
            "| {n} | {owner:.1} | {replicas:.1} | {replicas_zoned:.1} | {hashed_owner:.1} | {jump_owner:.1} | {rendezvous_owner:.1} | {rendezvous_three:.1} |"
        );
    }
}

fn build() {
    println!("\n## Build time and memory (default vnodes {DEFAULT_VNODES})");
    println!("joins = building the state by n successive joins (what a fresh cluster's log does);");
    println!("one join = the n-th join alone; lookup view = Ring::new; decode = Ring::decode of the encoding.\n");
    println!("| n | joins total | one join | lookup view | decode | encoding bytes | ring bytes | bytes/member |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for n in [10u64, 100, 1000] {
        let started = Instant::now();
        let almost = allocated(n - 1, DEFAULT_VNODES);
        let mut state = almost.clone();
        let one_started = Instant::now();
        state.join(Member::new(n, 1), n).expect("join");
        let one_join = one_started.elapsed();
        let joins = started.elapsed();
        let view_started = Instant::now();
        let ring = Ring::new(state.clone());
        let view = view_started.elapsed();
        let encoded = state.encode();
        let decode_started = Instant::now();
        let decoded = Ring::decode(&encoded).expect("decode");
        let decode = decode_started.elapsed();
        black_box(decoded);
        println!(
            "| {n} | {joins:.1?} | {one_join:.1?} | {view:.1?} | {decode:.1?} | {} | {} | {} |",
            encoded.len(),
            ring.memory_bytes(),
            ring.memory_bytes() / n as usize
        );
    }
}
