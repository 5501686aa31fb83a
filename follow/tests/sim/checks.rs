//! Checks on a tree, shared by the simulator (after every epoch) and the topology tests.

use ringraft_follow::{NodeId, Topology};

/// Every member has at most `fan_out` downstreams.
pub fn check_fan_out(topology: &Topology) -> Result<(), String> {
    let fan_out = topology.fan_out() as usize;
    for member in topology
        .observers()
        .chain(topology.voters().iter().copied())
    {
        let children = topology.children(member).len();
        if children > fan_out {
            return Err(format!(
                "fan-out: {member} has {children} downstreams > {fan_out}"
            ));
        }
    }
    Ok(())
}

/// Every observer has an upstream; its fallback differs from it and lies outside its subtree.
pub fn check_fallbacks(topology: &Topology) -> Result<(), String> {
    for member in topology.observers() {
        let candidates = topology.candidates(member);
        let Some(&upstream) = candidates.first() else {
            return Err(format!("fallback: observer {member} has no upstream"));
        };
        if let Some(&fallback) = candidates.get(1) {
            if fallback == upstream || topology.in_subtree(member, fallback) {
                return Err(format!(
                    "fallback-in-subtree: {member}'s fallback {fallback} is below it"
                ));
            }
        }
    }
    Ok(())
}

/// Upstreams of every member, for the stability check.
pub fn upstreams(topology: &Topology) -> Vec<(NodeId, Option<NodeId>)> {
    let mut all: Vec<(NodeId, Option<NodeId>)> = topology
        .observers()
        .map(|m| (m, topology.upstream(m)))
        .collect();
    all.sort_unstable();
    all
}

/// The bound on members re-parented by one change: each of the at most `depth + 1` intervals
/// whose holder changes re-parents its at most `fan_out` downstreams and its new holder.
pub fn reparent_bound(before: &Topology, after: &Topology) -> usize {
    let depth = before.depth().max(after.depth()) as usize;
    (depth + 1) * (before.fan_out() as usize + 1) + 1
}

/// One change re-parented at most [`reparent_bound`] members (members present on both sides).
pub fn check_stability(
    before: &[(NodeId, Option<NodeId>)],
    after: &[(NodeId, Option<NodeId>)],
    bound: usize,
) -> Result<usize, String> {
    let mut moved = 0;
    let (mut i, mut j) = (0, 0);
    while i < before.len() && j < after.len() {
        match before[i].0.cmp(&after[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                if before[i].1 != after[j].1 {
                    moved += 1;
                }
                i += 1;
                j += 1;
            }
        }
    }
    if moved > bound {
        return Err(format!(
            "stability: one change re-parented {moved} members > bound {bound}"
        ));
    }
    Ok(moved)
}
