//! Settings of one follow-plane node. Every member of a cluster must use the same values for the
//! settings that shape the tree (`fan_out`); the rest are local.

use thiserror::Error;

#[derive(Debug, Clone)]
pub struct Config {
    /// At most this many downstreams hang below one upstream in the tree (default 16).
    pub fan_out: u32,
    /// An upstream holds a fetch with nothing new for at most this many ticks, then answers it
    /// empty (a long poll: at idle this is the heartbeat of the plane).
    pub park_ticks: u32,
    /// A fetch unanswered for this many ticks means the upstream stopped answering: the observer
    /// moves on to its next candidate (primary → fallback → further up).
    pub upstream_timeout_ticks: u32,
    /// While on a fallback, an observer probes its primary this often and returns once answered.
    pub primary_probe_ticks: u32,
    /// A member sends its liveness digest up at most this often (riding on a fetch when one is
    /// due, alone otherwise).
    pub digest_interval_ticks: u32,
    /// An upstream reports a downstream silent once it has not heard from it for this long. Must
    /// exceed `park_ticks` plus a round trip, or live idle members look silent.
    pub suspect_ticks: u32,
    /// The leader decides `down` for a member reported silent this long.
    pub down_after_ticks: u32,
    /// A digest from a downstream is forgotten after this many ticks without a newer one.
    pub digest_stale_ticks: u32,
    /// Upper bound on the bytes of entries in one fetch response (a downstream may ask less).
    pub fetch_bytes_max: u64,
    /// The served tail keeps at most this many entries past the latest snapshot before it asks the
    /// shell for a newer snapshot.
    pub tail_entries_max: usize,
    /// ... and at most this many bytes.
    pub tail_bytes_max: u64,
    /// A snapshot goes downstream in chunks of at most this many bytes.
    pub snapshot_chunk_bytes_max: u64,
    /// An observer refuses a snapshot announced larger than this.
    pub snapshot_bytes_max: u64,
    /// A digest carries at most this many silent members and this many adopted ones; the rest are
    /// counted as dropped (they come in the next interval, once the first ones are decided).
    pub digest_members_max: usize,
    /// An upstream keeps sessions for at most this many downstreams (its tree children, adoptees
    /// through the fallback rule, members in transit between trees); fetches beyond are refused.
    pub downstreams_max: usize,
    /// Test-only: break one rule on purpose (see [`crate::Mutant`]).
    #[cfg(feature = "mutants")]
    pub mutant: Option<crate::Mutant>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            fan_out: 16,
            park_ticks: 25,
            upstream_timeout_ticks: 40,
            primary_probe_ticks: 50,
            digest_interval_ticks: 25,
            suspect_ticks: 60,
            down_after_ticks: 300,
            digest_stale_ticks: 100,
            fetch_bytes_max: 1 << 20,
            tail_entries_max: 256,
            tail_bytes_max: 4 << 20,
            snapshot_chunk_bytes_max: 256 << 10,
            snapshot_bytes_max: 256 << 20,
            digest_members_max: 4096,
            downstreams_max: 256,
            #[cfg(feature = "mutants")]
            mutant: None,
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("fan_out must be at least 2 (got {0})")]
    FanOut(u32),
    #[error("suspect_ticks ({suspect}) must exceed park_ticks + 2 ({park})")]
    SuspectBelowPark { suspect: u32, park: u32 },
    #[error("upstream_timeout_ticks ({timeout}) must exceed park_ticks ({park}) or idle upstreams look dead")]
    TimeoutBelowPark { timeout: u32, park: u32 },
    #[error("down_after_ticks ({down}) must be at least suspect_ticks ({suspect})")]
    DownBelowSuspect { down: u32, suspect: u32 },
    #[error("{0} must be positive")]
    Zero(&'static str),
}

impl Config {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.fan_out < 2 {
            return Err(ConfigError::FanOut(self.fan_out));
        }
        for (name, value) in [
            ("park_ticks", self.park_ticks as u64),
            ("primary_probe_ticks", self.primary_probe_ticks as u64),
            ("digest_interval_ticks", self.digest_interval_ticks as u64),
            ("digest_stale_ticks", self.digest_stale_ticks as u64),
            ("fetch_bytes_max", self.fetch_bytes_max),
            ("tail_entries_max", self.tail_entries_max as u64),
            ("snapshot_chunk_bytes_max", self.snapshot_chunk_bytes_max),
            ("downstreams_max", self.downstreams_max as u64),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        if self.upstream_timeout_ticks <= self.park_ticks {
            return Err(ConfigError::TimeoutBelowPark {
                timeout: self.upstream_timeout_ticks,
                park: self.park_ticks,
            });
        }
        if self.suspect_ticks <= self.park_ticks + 2 {
            return Err(ConfigError::SuspectBelowPark {
                suspect: self.suspect_ticks,
                park: self.park_ticks + 2,
            });
        }
        if self.down_after_ticks < self.suspect_ticks {
            return Err(ConfigError::DownBelowSuspect {
                down: self.down_after_ticks,
                suspect: self.suspect_ticks,
            });
        }
        Ok(())
    }

    /// The time, in ticks, within which the leader decides `down` for a member that went silent,
    /// in a tree of `depth` observer levels whose members on the path up are alive: the member's
    /// upstream reports it after `suspect_ticks`; the report climbs at most `depth` hops to a
    /// voter and one more to the leader, each hop waiting at most one digest interval plus a link
    /// (under a tick); ages travel with the report, so the leader decides as soon as it holds a
    /// report whose age reaches `down_after_ticks`, at its next tick.
    pub fn down_bound_ticks(&self, depth: u32) -> u64 {
        let climb = self.suspect_ticks as u64
            + (depth as u64 + 1) * (self.digest_interval_ticks as u64 + 1);
        climb.max(self.down_after_ticks as u64) + 1
    }
}
