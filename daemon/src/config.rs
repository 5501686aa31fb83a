//! The daemon's configuration: a TOML file, overridden by command-line flags.
//!
//! Every setting has a default that works for a single machine; a real cluster sets at least
//! `node_id`, `listen`, `tls` and either `initial_members` (the first voters) or `join`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ringraft_proto::limits::{MEMBER_NAME_BYTES_MAX, MEMBER_ZONE_BYTES_MAX};
use serde::{Deserialize, Serialize};

pub const DEFAULT_SOCKET_PATH: &str = "/run/ringraft/ringraftd.sock";
pub const DEFAULT_DATA_DIR: &str = "/var/lib/ringraft";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// This node's id; must match the id in its certificate. Never 0.
    pub node_id: u64,
    /// Human-readable name shown in answers; defaults to `node-<id>`.
    pub name: String,
    pub zone: String,
    pub weight: u32,
    pub data_dir: PathBuf,
    pub socket_path: PathBuf,
    /// QUIC listen address for peers.
    pub listen: SocketAddr,
    /// The address other members dial; defaults to `listen`.
    pub advertise: Option<SocketAddr>,
    pub tls: TlsConfig,
    /// The first voters of a new cluster (this node among them). Empty when joining.
    pub initial_members: Vec<InitialMember>,
    /// Addresses of existing members to ask for admission when this node has no state yet.
    pub join: Vec<SocketAddr>,
    /// Uids allowed to make admin requests, besides root and the daemon's own uid.
    pub admin_uids: Vec<u32>,
    pub raft: RaftSettings,
    pub ring: RingSettings,
    pub limits: Limits,
    /// A member not heard from for this long is marked down by the leader (0 disables).
    pub down_after_ms: u64,
    /// `promote` accepts a learner only if its log is at most this many entries behind the
    /// leader's last index (and the leader heard from it within `down_after_ms`, or within two
    /// election timeouts when the failure detector is off).
    pub promote_lag_entries_max: u64,
    /// Take a snapshot and compact the log after this many applied entries.
    pub snapshot_every_entries: u64,
    /// ...or once the log entries held in memory reach this many bytes, whichever comes first
    /// (10,000 entries of 64 KiB would otherwise hold 655 MB).
    pub snapshot_every_bytes: u64,
    /// After a compaction the leader keeps this many entries before the snapshot in memory, so
    /// that a follower a little behind catches up from the log, not a whole snapshot (etcd's
    /// SnapshotCatchUpEntries; also bounded to 16 MiB of entries and half of
    /// `snapshot_every_bytes`).
    pub snapshot_catch_up_entries: u64,
    /// Keep at most this many application records readable through ReadLog / WatchLog...
    pub log_retention_records: u64,
    /// ...and at most this many bytes of them (the window travels in every snapshot).
    pub log_retention_bytes: u64,
    /// Serve Prometheus metrics over HTTP on this address (off when unset).
    pub metrics_listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct InitialMember {
    pub id: u64,
    pub address: SocketAddr,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub zone: String,
    #[serde(default = "default_weight")]
    pub weight: u32,
}

fn default_weight() -> u32 {
    1
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftSettings {
    pub tick_ms: u64,
    pub election_timeout_ticks: u32,
    pub heartbeat_interval_ticks: u32,
    pub pre_vote: bool,
    pub check_quorum: bool,
}

impl Default for RaftSettings {
    fn default() -> Self {
        RaftSettings {
            tick_ms: 50,
            election_timeout_ticks: 10,
            heartbeat_interval_ticks: 2,
            pre_vote: true,
            check_quorum: true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RingSettings {
    pub replication_factor: u32,
}

impl Default for RingSettings {
    fn default() -> Self {
        RingSettings {
            replication_factor: 3,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub proposal_bytes_max: usize,
    /// Largest per-key register value (`ringraftctl kv put`, `ringraft_kv_cas`).
    pub kv_value_bytes_max: usize,
    pub key_bytes_max: usize,
    pub frame_bytes_max: usize,
    pub connections_max: usize,
    pub requests_in_flight_per_connection_max: usize,
    /// Log watches (`watch_log`) running at once on one client connection; one more is refused
    /// `Busy` when it is started. At least 1.
    pub watches_per_connection_max: usize,
    pub propose_timeout_ms_max: u32,
}

/// Bound on `limits.watches_per_connection_max`: each watch is a task and a queue in the daemon.
pub const WATCHES_PER_CONNECTION_MAX_BOUND: usize = 4096;

impl Limits {
    /// A key the node answers for (owner, replicas, registers): not empty, within
    /// `key_bytes_max`. The error is the answer to the client.
    #[allow(clippy::result_large_err)]
    pub fn check_key(&self, key: &[u8]) -> Result<(), ringraft_proto::Response> {
        use ringraft_proto::{Response, Status};
        if key.is_empty() {
            return Err(Response::Error {
                status: Status::InvalidArgument,
                message: "the key is empty".into(),
            });
        }
        if key.len() > self.key_bytes_max {
            return Err(Response::Error {
                status: Status::TooLarge,
                message: format!(
                    "key of {} bytes exceeds the limit of {}",
                    key.len(),
                    self.key_bytes_max
                ),
            });
        }
        Ok(())
    }

    /// A request's own timeout (propose, registers): in 1..=`propose_timeout_ms_max`.
    #[allow(clippy::result_large_err)]
    pub fn check_timeout_ms(&self, timeout_ms: u32) -> Result<(), ringraft_proto::Response> {
        if timeout_ms == 0 || timeout_ms > self.propose_timeout_ms_max {
            return Err(ringraft_proto::Response::Error {
                status: ringraft_proto::Status::InvalidArgument,
                message: format!("timeout_ms must be in 1..={}", self.propose_timeout_ms_max),
            });
        }
        Ok(())
    }
}

// The registers' bounds and the protocol's are the same facts (the protocol cannot depend on the
// sans-IO core, nor the core on the protocol).
const _: () = assert!(
    ringraft_proto::limits::KV_VALUE_BYTES_MAX_DEFAULT
        == ringraft_paxos::limits::VALUE_BYTES_MAX_DEFAULT
);
const _: () =
    assert!(ringraft_proto::limits::KV_ANY_VERSION == ringraft_paxos::limits::ANY_VERSION);

impl Default for Limits {
    fn default() -> Self {
        Limits {
            proposal_bytes_max: 64 << 10,
            kv_value_bytes_max: ringraft_proto::limits::KV_VALUE_BYTES_MAX_DEFAULT,
            key_bytes_max: 4 << 10,
            frame_bytes_max: 1 << 20,
            connections_max: 1024,
            requests_in_flight_per_connection_max: 256,
            watches_per_connection_max: 16,
            propose_timeout_ms_max: 60_000,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            node_id: 0,
            name: String::new(),
            zone: String::new(),
            weight: 1,
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            socket_path: PathBuf::from(DEFAULT_SOCKET_PATH),
            listen: SocketAddr::from(([127, 0, 0, 1], 7400)),
            advertise: None,
            tls: TlsConfig::default(),
            initial_members: Vec::new(),
            join: Vec::new(),
            admin_uids: Vec::new(),
            raft: RaftSettings::default(),
            ring: RingSettings::default(),
            limits: Limits::default(),
            down_after_ms: 10_000,
            promote_lag_entries_max: 1000,
            snapshot_every_entries: 10_000,
            snapshot_every_bytes: 64 << 20,
            snapshot_catch_up_entries: 5_000,
            log_retention_records: 100_000,
            log_retention_bytes: 64 << 20,
            metrics_listen: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    pub fn retention(&self) -> crate::state::Retention {
        crate::state::Retention {
            records: usize::try_from(self.log_retention_records.max(1)).unwrap_or(usize::MAX),
            bytes: usize::try_from(self.log_retention_bytes.max(1)).unwrap_or(usize::MAX),
        }
    }

    pub fn advertise_addr(&self) -> SocketAddr {
        self.advertise.unwrap_or(self.listen)
    }

    pub fn display_name(&self) -> String {
        if self.name.is_empty() {
            format!("node-{}", self.node_id)
        } else {
            self.name.clone()
        }
    }

    /// Checks what serde cannot: relations between settings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |msg: String| Err(ConfigError::Invalid(msg));
        if self.node_id == 0 {
            return invalid("node_id must be set and non-zero".into());
        }
        if self.weight == 0 || self.weight > 1000 {
            return invalid(format!("weight {} is outside 1..=1000", self.weight));
        }
        let members = self.initial_members.iter().map(|m| (&m.name, &m.zone));
        for (name, zone) in std::iter::once((&self.name, &self.zone)).chain(members) {
            if name.len() > MEMBER_NAME_BYTES_MAX {
                return invalid(format!(
                    "name {name:?} is longer than {MEMBER_NAME_BYTES_MAX} bytes"
                ));
            }
            if zone.len() > MEMBER_ZONE_BYTES_MAX {
                return invalid(format!(
                    "zone {zone:?} is longer than {MEMBER_ZONE_BYTES_MAX} bytes"
                ));
            }
        }
        if self.raft.tick_ms == 0 || self.raft.election_timeout_ticks < 2 {
            return invalid("raft.tick_ms must be > 0 and election_timeout_ticks >= 2".into());
        }
        if self.raft.heartbeat_interval_ticks == 0
            || self.raft.heartbeat_interval_ticks >= self.raft.election_timeout_ticks
        {
            return invalid(
                "raft.heartbeat_interval_ticks must be in 1..election_timeout_ticks".into(),
            );
        }
        let acceptors_max = ringraft_paxos::limits::ACCEPTORS_MAX as u32;
        if self.ring.replication_factor == 0 || self.ring.replication_factor > acceptors_max {
            // A key's replicas are its registers' acceptors: the registers' completion rule
            // counts majorities of exactly those sets.
            return invalid(format!(
                "ring.replication_factor must be in 1..={acceptors_max}"
            ));
        }
        if self.snapshot_every_entries == 0 || self.snapshot_every_bytes < 1 << 20 {
            return invalid(
                "snapshot_every_entries must be at least 1 and snapshot_every_bytes at least \
                 1048576 (1 MiB)"
                    .into(),
            );
        }
        if !self.initial_members.is_empty()
            && !self.initial_members.iter().any(|m| m.id == self.node_id)
        {
            return invalid(format!(
                "initial_members does not include this node ({})",
                self.node_id
            ));
        }
        let mut ids: Vec<u64> = self.initial_members.iter().map(|m| m.id).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) || ids.contains(&0) {
            return invalid("initial_members ids must be distinct and non-zero".into());
        }
        if self.initial_members.is_empty() && self.join.is_empty() {
            return invalid("set initial_members (new cluster) or join (existing cluster)".into());
        }
        if self.limits.proposal_bytes_max + 1024 > self.limits.frame_bytes_max {
            return invalid("limits.proposal_bytes_max must leave room in frame_bytes_max".into());
        }
        if self.limits.kv_value_bytes_max + self.limits.key_bytes_max + 1024
            > self.limits.frame_bytes_max
        {
            return invalid(
                "limits.kv_value_bytes_max plus key_bytes_max must leave room in frame_bytes_max"
                    .into(),
            );
        }
        if !(1..=WATCHES_PER_CONNECTION_MAX_BOUND).contains(&self.limits.watches_per_connection_max)
        {
            return invalid(format!(
                "limits.watches_per_connection_max must be in 1..={WATCHES_PER_CONNECTION_MAX_BOUND}"
            ));
        }
        if self.limits.key_bytes_max > ringraft_paxos::limits::KEY_BYTES_MAX {
            return invalid(format!(
                "limits.key_bytes_max is at most {} (the registers' bound)",
                ringraft_paxos::limits::KEY_BYTES_MAX
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single_node() -> Config {
        Config {
            node_id: 1,
            initial_members: vec![InitialMember {
                id: 1,
                address: "127.0.0.1:7400".parse().unwrap(),
                name: String::new(),
                zone: String::new(),
                weight: 1,
            }],
            ..Config::default()
        }
    }

    #[test]
    fn example_file_parses_and_validates() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/ringraftd.toml");
        let config = Config::load(&path).expect("packaging/ringraftd.toml parses");
        config
            .validate()
            .expect("packaging/ringraftd.toml is valid");
    }

    #[test]
    fn member_addresses_are_ip_literals_and_the_docs_say_so() {
        // Host names are not resolved anywhere: every address key takes an IP literal only.
        for text in [
            "listen = \"localhost:7400\"",
            "advertise = \"node-1.example:7400\"",
            "join = [\"node-1.example:7400\"]",
            "[[initial_members]]\nid = 1\naddress = \"node-1.example:7400\"",
        ] {
            assert!(toml::from_str::<Config>(text).is_err(), "accepted: {text}");
        }
        assert!(toml::from_str::<Config>("join = [\"[fd00::11]:7400\"]").is_ok());
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for doc in [
            "README.md",
            "packaging/ringraftd.toml",
            "include/ringraft.h",
        ] {
            let text = std::fs::read_to_string(root.join(doc)).expect(doc);
            assert!(
                text.contains("an IP literal and port"),
                "{doc} says that addresses are an IP literal and port"
            );
            assert!(!text.contains("`host:port`"), "{doc} promises host names");
        }
    }

    #[test]
    fn replication_is_bounded_by_the_registers_acceptor_sets() {
        let mut c = single_node();
        c.ring.replication_factor = ringraft_paxos::limits::ACCEPTORS_MAX as u32;
        assert!(c.validate().is_ok());
        c.ring.replication_factor += 1;
        let err = c.validate().unwrap_err().to_string();
        assert!(
            err.contains("replication_factor must be in 1..=16"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = toml::from_str::<Config>("node_idd = 3").unwrap_err();
        assert!(err.to_string().contains("node_idd"), "{err}");
    }

    #[test]
    fn validation_catches_missing_self_and_zero_id() {
        assert!(single_node().validate().is_ok());
        let mut c = single_node();
        c.node_id = 2;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("does not include"));
        c.node_id = 0;
        assert!(c.validate().unwrap_err().to_string().contains("non-zero"));
    }

    #[test]
    fn validation_refuses_a_compaction_trigger_that_would_snapshot_every_entry() {
        let mut c = single_node();
        c.snapshot_every_bytes = 1 << 20;
        assert!(c.validate().is_ok());
        c.snapshot_every_bytes = 4096;
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("snapshot_every_bytes"), "{err}");
        let mut c = single_node();
        c.snapshot_every_entries = 0;
        assert!(c.validate().is_err());
    }

    #[test]
    fn validation_applies_the_member_limits() {
        let mut c = single_node();
        c.name = "n".repeat(MEMBER_NAME_BYTES_MAX);
        c.initial_members[0].zone = "z".repeat(MEMBER_ZONE_BYTES_MAX);
        assert!(c.validate().is_ok());
        c.name.push('n');
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("longer than"));
        let mut c = single_node();
        c.initial_members[0]
            .zone
            .push_str(&"z".repeat(MEMBER_ZONE_BYTES_MAX + 1));
        assert!(c.validate().unwrap_err().to_string().contains("zone"));
    }

    #[test]
    fn watches_per_connection_is_a_limit_of_at_least_one() {
        let parsed: Config = toml::from_str("[limits]\nwatches_per_connection_max = 3").unwrap();
        assert_eq!(parsed.limits.watches_per_connection_max, 3);
        assert_eq!(Limits::default().watches_per_connection_max, 16);
        let mut c = single_node();
        c.limits.watches_per_connection_max = 1;
        assert!(c.validate().is_ok());
        for bad in [0, WATCHES_PER_CONNECTION_MAX_BOUND + 1] {
            c.limits.watches_per_connection_max = bad;
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains("watches_per_connection_max"), "{err}");
        }
    }

    #[test]
    fn validation_requires_bootstrap_or_join() {
        let mut c = single_node();
        c.initial_members.clear();
        assert!(c.validate().is_err());
        c.join = vec!["127.0.0.1:7401".parse().unwrap()];
        assert!(c.validate().is_ok());
    }
}
