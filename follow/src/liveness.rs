//! Failure detection that scales: each member reports only on the members it is responsible for
//! (its tree children, and the children of a silent child, whose reports no longer come), merged
//! with its downstreams' digests, to its own upstream. The leader receives O(fan_out) digests per
//! interval (its direct downstreams' and the other voters') and decides `down` and `active`.
//!
//! Down rule (at the leader): member `m` is down when its *effective silence* reaches
//! `down_after_ticks`: the silence a fresh report states, cut to the freshest evidence that `m` was
//! heard anywhere (digests list members heard through the fallback rule, with their age), and, for
//! a report made on behalf of `m`'s silent upstream `p` (`through = p`), cut to `p`'s effective
//! silence (nothing if `p` is not reported silent). The leader remembers since when a member has
//! been silent across a change of reporter (a report whose reporter never heard the member keeps
//! the earlier start). It is active again once no report counts it silent for a grace period, or
//! as soon as it is heard anywhere after its silence began.

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
    /// When each member we answer for (a tree child, or one below a silent child) became ours:
    /// its silence counts from then at the earliest.
    responsible_since: BTreeMap<NodeId, u64>,
    /// The latest digest from each downstream, with the tick it arrived.
    digests: BTreeMap<NodeId, (u64, Digest)>,
    /// Members the leader decided down (so it decides each change once).
    decided_down: BTreeSet<NodeId>,
    /// The leader: when a digest last said a member was heard on a fallback. A silence report
    /// counts only from then on: reports climb the tree more slowly than the evidence that
    /// contradicts them goes stale, so a member that returned to its primary would otherwise be
    /// decided down on the primary's old report.
    alive_seen: BTreeMap<NodeId, u64>,
    /// The leader: since when each member has been silent as far as it knows, and when a reporter
    /// last made a report of it (not when a stored copy of that report last arrived). It outlives a change of reporter (a new upstream reports only after
    /// `suspect_ticks`, and counts from when the member became its own), so a member silent across
    /// a re-parenting is not given a fresh start.
    silent_since: BTreeMap<NodeId, (u64, u64)>,
    pub(crate) digests_dropped: u64,
}

impl Liveness {
    pub(crate) fn heard(&mut self, from: NodeId, now: u64) {
        self.heard.insert(from, now);
    }

    pub(crate) fn record_digest(&mut self, from: NodeId, digest: Digest, now: u64) {
        self.digests.insert(from, (now, digest));
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
        // A member's silence counts from the later of when we last heard it and when it became
        // ours (an old `heard` from an earlier spell as our downstream must not count).
        let mut queue: Vec<(NodeId, Option<NodeId>, u64)> = Vec::new();
        for &child in &children {
            let became_ours = *self.responsible_since.entry(child).or_insert(now);
            queue.push((child, None, became_ours));
        }
        let mut responsible: BTreeSet<NodeId> = BTreeSet::new();
        let mut at = 0;
        while at < queue.len() && queue.len() <= config.downstreams_max {
            let (member, through, floor) = queue[at];
            at += 1;
            if !responsible.insert(member) {
                continue;
            }
            // A member we answer for through a silent upstream counts from that upstream's silence,
            // but never from before it became ours (a joiner below a dead upstream is new).
            let became_ours = *self.responsible_since.entry(member).or_insert(now);
            let heard = self.heard.get(&member).copied().unwrap_or(0);
            let floor = floor.max(became_ours);
            let since = heard.max(floor);
            let silent_ticks = now.saturating_sub(since);
            if silent_ticks >= suspect {
                digest.silent.push(SilentReport {
                    member,
                    silent_ticks,
                    through,
                    never_heard: heard < floor,
                    age_ticks: 0,
                });
                for grandchild in topology.children(member) {
                    queue.push((grandchild, Some(member), since));
                }
            }
        }
        let children: BTreeSet<NodeId> = children.into_iter().collect();
        for (&member, &t) in &self.heard {
            if now.saturating_sub(t) < suspect && !children.contains(&member) {
                digest.adopted_alive.push((member, now.saturating_sub(t)));
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
                    age_ticks: r.age_ticks.saturating_add(age),
                    ..*r
                }));
                digest.dropped = digest.dropped.saturating_add(d.dropped);
            }
        }
        for (received, d) in self.digests.values() {
            let age = now.saturating_sub(*received);
            digest.adopted_alive.extend(
                d.adopted_alive
                    .iter()
                    .map(|&(m, ago)| (m, ago.saturating_add(age))),
            );
        }
        // One entry per member, the freshest evidence.
        digest.adopted_alive.sort_unstable();
        digest.adopted_alive.dedup_by_key(|(m, _)| *m);
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
        for &(member, ago) in &view.adopted_alive {
            let seen = now.saturating_sub(ago);
            let slot = self.alive_seen.entry(member).or_insert(seen);
            *slot = (*slot).max(seen);
        }
        let forget_after = 2 * config.down_after_ticks as u64;
        self.alive_seen
            .retain(|_, seen| now.saturating_sub(*seen) < forget_after);
        let mut silent: BTreeMap<NodeId, SilentReport> = BTreeMap::new();
        for report in &view.silent {
            let mut report = *report;
            if let Some(&seen) = self.alive_seen.get(&report.member) {
                report.silent_ticks = report.silent_ticks.min(now.saturating_sub(seen));
            }
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
                silent.insert(report.member, report);
            }
        }
        // A report made on behalf of a silent upstream counts only if that upstream's own report
        // counts, up the chain: a member below an upstream that is alive elsewhere is not lost.
        // Silence counts from the freshest evidence of life anywhere (the reports' ticks were cut
        // to it above). A report made on behalf of a silent upstream says nothing the upstream's
        // own silence does not: the member's silence is at most its upstream's, up the chain, and
        // none if the upstream is not reported silent (a member below an upstream alive
        // elsewhere is not lost).
        let effective = |r: &SilentReport| -> u64 {
            let mut ticks = r.silent_ticks;
            let mut at = *r;
            for _ in 0..=silent.len() {
                match at.through {
                    None => return ticks,
                    Some(p) => match silent.get(&p) {
                        Some(upstream) => {
                            ticks = ticks.min(upstream.silent_ticks);
                            at = *upstream;
                        }
                        None => return 0,
                    },
                }
            }
            0
        };
        let suspect = config.suspect_ticks as u64;
        let mut decisions = Vec::new();
        let mut counted_now: BTreeSet<NodeId> = BTreeSet::new();
        for report in silent.values() {
            let silent_ticks = effective(report);
            if silent_ticks < suspect {
                continue;
            }
            counted_now.insert(report.member);
            let mut since = now.saturating_sub(silent_ticks);
            // A reporter that never heard the member since taking it over continues an earlier
            // silence only if that silence was still being reported when the takeover began
            // (within one digest interval): otherwise the member may have been heard between.
            // Only for reports from the member's own upstream: one made through a silent upstream is
            // bounded by that upstream's silence, which the memory must not outlast.
            if report.never_heard && report.through.is_none() {
                if let Some(&(earlier, reported)) = self.silent_since.get(&report.member) {
                    if reported + config.digest_interval_ticks as u64 + 1 >= since {
                        since = since.min(earlier);
                    }
                }
            }
            if let Some(&seen) = self.alive_seen.get(&report.member) {
                since = since.max(seen);
            }
            let reported = now.saturating_sub(report.age_ticks);
            let entry = self
                .silent_since
                .entry(report.member)
                .or_insert((since, reported));
            *entry = (since, entry.1.max(reported));
        }
        // A member stays silent in our view through a short gap in its reports (a change of
        // reporter); past it, or with newer evidence of life, it is not.
        let grace = (config.digest_stale_ticks
            + config.suspect_ticks
            + config.digest_interval_ticks) as u64;
        let alive_seen = &self.alive_seen;
        self.silent_since.retain(|member, (since, reported)| {
            now.saturating_sub(*reported) <= grace
                && alive_seen.get(member).is_none_or(|&seen| seen <= *since)
                && topology.role(*member).is_some()
        });
        // Only a member a report counts silent right now is decided down; the memory only carries
        // the start of its silence across a change of reporter.
        for (&member, &(since, _)) in &self.silent_since {
            let silent_ticks = now.saturating_sub(since);
            if silent_ticks >= config.down_after_ticks as u64
                && counted_now.contains(&member)
                && !self.decided_down.contains(&member)
            {
                self.decided_down.insert(member);
                decisions.push(LivenessDecision {
                    member,
                    status: LivenessStatus::Down,
                    silent_ticks,
                });
            }
        }
        let returned: Vec<NodeId> = self
            .decided_down
            .iter()
            .copied()
            .filter(|m| !self.silent_since.contains_key(m))
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
