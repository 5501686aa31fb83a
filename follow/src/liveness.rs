//! Failure detection that scales: each member reports only on the members it is responsible for
//! (its tree children, and the children of a silent child, whose reports no longer come), merged
//! with its downstreams' digests, to its own upstream. The leader receives O(fan_out) digests per
//! interval (its direct downstreams' and the other voters') and decides `down` and `active`.
//!
//! Down rule (at the leader): member `m` is down when a fresh report says it has been silent for
//! `down_after_ticks`, no fresh digest lists it as alive on a fallback, and, if the report was made
//! on behalf of `m`'s silent upstream `p` (`through = p`), `p` is reported silent too and not alive
//! elsewhere. It is active again once no fresh report lists it silent.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::Config;
use crate::messages::{Digest, SilentReport};
use crate::mutants::Mutant;
use crate::topology::Topology;
use crate::types::NodeId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LivenessStatus {
    Down,
    Active,
}

/// The leader's decision; the shell commits it through the log (this crate only decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LivenessDecision {
    pub member: NodeId,
    pub status: LivenessStatus,
    /// For `Down`: how long the member had been silent when decided.
    pub silent_ticks: u64,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Liveness {
    /// When we last heard anything from a member that talks to us (fetch, probe, digest).
    heard: BTreeMap<NodeId, u64>,
    /// When a member we never heard from became our responsibility: its silence counts from then.
    responsible_since: BTreeMap<NodeId, u64>,
    /// The latest digest from each downstream, with the tick it arrived.
    digests: BTreeMap<NodeId, (u64, Digest)>,
    /// Members the leader decided down (so it decides each change once).
    decided_down: BTreeSet<NodeId>,
    pub(crate) digests_dropped: u64,
}

impl Liveness {
    pub(crate) fn heard(&mut self, from: NodeId, now: u64) {
        self.heard.insert(from, now);
        self.responsible_since.remove(&from);
    }

    pub(crate) fn record_digest(&mut self, from: NodeId, digest: Digest, now: u64) {
        self.digests.insert(from, (now, digest));
    }

    fn last_heard(&self, member: NodeId) -> Option<u64> {
        self.heard
            .get(&member)
            .or_else(|| self.responsible_since.get(&member))
            .copied()
    }

    /// This member's digest: its own observations plus its downstreams' fresh digests, aged.
    pub(crate) fn build_digest(
        &mut self,
        me: NodeId,
        topology: &Topology,
        config: &Config,
        now: u64,
    ) -> Digest {
        let mut digest = Digest::default();
        let suspect = config.suspect_ticks as u64;
        let children = topology.children(me);
        // Breadth-first over the members we answer for: a silent one's children are ours too.
        let mut queue: Vec<(NodeId, Option<NodeId>, u64)> = Vec::new();
        for &child in &children {
            let since = match self.last_heard(child) {
                Some(t) => t,
                None => {
                    self.responsible_since.insert(child, now);
                    now
                }
            };
            queue.push((child, None, since));
        }
        let mut responsible: BTreeSet<NodeId> = BTreeSet::new();
        let mut at = 0;
        while at < queue.len() && queue.len() <= config.downstreams_max {
            let (member, through, default_since) = queue[at];
            at += 1;
            if !responsible.insert(member) {
                continue;
            }
            let since = self.heard.get(&member).copied().unwrap_or(default_since);
            let silent_ticks = now.saturating_sub(since);
            if silent_ticks >= suspect {
                digest.silent.push(SilentReport {
                    member,
                    silent_ticks,
                    through,
                });
                for grandchild in topology.children(member) {
                    queue.push((grandchild, Some(member), since));
                }
            }
        }
        let primary_children: BTreeSet<NodeId> = children.iter().copied().collect();
        for (&member, &t) in &self.heard {
            if now.saturating_sub(t) < suspect && !primary_children.contains(&member) {
                digest.adopted_alive.push(member);
            }
        }
        // Forget what we are no longer responsible for and no longer hear.
        let forget_after = 2 * config.down_after_ticks as u64;
        self.heard
            .retain(|m, t| responsible.contains(m) || now.saturating_sub(*t) < forget_after);
        self.responsible_since
            .retain(|m, _| responsible.contains(m));
        let stale = config.digest_stale_ticks as u64;
        self.digests
            .retain(|_, (received, _)| now.saturating_sub(*received) < stale);
        if !config.mutated(Mutant::DigestDropsSilent) {
            for (received, d) in self.digests.values() {
                let age = now.saturating_sub(*received);
                digest.silent.extend(d.silent.iter().map(|r| SilentReport {
                    silent_ticks: r.silent_ticks.saturating_add(age),
                    ..*r
                }));
                digest.dropped = digest.dropped.saturating_add(d.dropped);
            }
        }
        for (_, d) in self.digests.values() {
            digest.adopted_alive.extend(d.adopted_alive.iter().copied());
        }
        digest.adopted_alive.sort_unstable();
        digest.adopted_alive.dedup();
        let max = config.digest_members_max;
        for list_len in [digest.silent.len(), digest.adopted_alive.len()] {
            if list_len > max {
                digest.dropped = digest.dropped.saturating_add((list_len - max) as u32);
            }
        }
        digest.silent.truncate(max);
        digest.adopted_alive.truncate(max);
        self.digests_dropped += digest.dropped as u64;
        digest
    }

    /// The leader's decisions this tick, from its own view merged with every fresh digest.
    pub(crate) fn decide(
        &mut self,
        me: NodeId,
        topology: &Topology,
        config: &Config,
        now: u64,
    ) -> Vec<LivenessDecision> {
        let view = self.build_digest(me, topology, config, now);
        let alive: BTreeSet<NodeId> = view.adopted_alive.iter().copied().collect();
        let mut silent: BTreeMap<NodeId, SilentReport> = BTreeMap::new();
        for report in &view.silent {
            let keep = match silent.get(&report.member) {
                None => true,
                // A report from the member's own upstream beats one made on its behalf.
                Some(old) => {
                    (report.through.is_none() && old.through.is_some())
                        || (report.through.is_none() == old.through.is_none()
                            && report.silent_ticks > old.silent_ticks)
                }
            };
            if keep {
                silent.insert(report.member, *report);
            }
        }
        let counts = |r: &SilentReport| {
            !alive.contains(&r.member)
                && match r.through {
                    None => true,
                    Some(p) => silent.contains_key(&p) && !alive.contains(&p),
                }
        };
        let mut decisions = Vec::new();
        for report in silent.values() {
            if report.silent_ticks >= config.down_after_ticks as u64
                && counts(report)
                && topology.role(report.member).is_some()
                && !self.decided_down.contains(&report.member)
            {
                self.decided_down.insert(report.member);
                decisions.push(LivenessDecision {
                    member: report.member,
                    status: LivenessStatus::Down,
                    silent_ticks: report.silent_ticks,
                });
            }
        }
        let returned: Vec<NodeId> = self
            .decided_down
            .iter()
            .copied()
            .filter(|m| topology.role(*m).is_none() || !silent.get(m).is_some_and(counts))
            .collect();
        for member in returned {
            self.decided_down.remove(&member);
            if topology.role(member).is_some() {
                decisions.push(LivenessDecision {
                    member,
                    status: LivenessStatus::Active,
                    silent_ticks: 0,
                });
            }
        }
        decisions
    }
}
