//! Starting a node: recover (or bootstrap) the durable state, start the peer transport, run the
//! node loop on its own thread, and join an existing cluster when this node is new.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringraft_proto::{Member, MemberRole, MemberState, Status};
use ringraft_raft::{ConfState, HardState, InitialState, RawNode, Snapshot, SnapshotMeta};
use ringraft_storage::{Storage, StorageOptions};
use std::hash::{BuildHasher, Hasher};
use tokio::sync::watch;
use tracing::{info, warn};

use super::driver::{Driver, FatalError, DEBUG_STALL_FILE_ENV};
use super::failure::FailureDetector;
use super::journal::MembershipJournal;
use super::pending::Pending;
use super::removal::MembershipCheck;
use super::view::{ClusterView, MembershipView};
use super::{Event, NodeExit, NodeHandle, EVENT_QUEUE_MAX};
use crate::certs::{TlsFiles, TlsMaterial};
use crate::config::Config;
use crate::state::{ReplicatedState, Retention, BOOTSTRAP_INDEX, BOOTSTRAP_TERM};
use crate::transport::{PeerRequest, PeerResponse, Transport, TransportConfig};

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("{0}")]
    Config(String),
    #[error("storage: {0}")]
    Storage(#[from] ringraft_storage::StorageError),
    #[error("recovered state: {0}")]
    State(#[from] crate::state::ImageError),
    #[error("raft: {0}")]
    Raft(String),
    #[error("peer transport: {0}")]
    Transport(String),
    #[error("registers: {0}")]
    Registers(String),
    #[error(transparent)]
    Fatal(#[from] FatalError),
}

/// A started node. Dropping it does not stop the node: call `shutdown`.
pub struct RunningNode {
    pub handle: NodeHandle,
    events: SyncSender<Event>,
    thread: Option<std::thread::JoinHandle<Result<NodeExit, FatalError>>>,
    pub peer_addr: std::net::SocketAddr,
}

impl RunningNode {
    /// Asks the node to stop (a leader hands over leadership first) and waits for the loop.
    pub fn shutdown(mut self) -> Result<NodeExit, NodeError> {
        let _ = self.events.send(Event::Shutdown);
        self.wait()
    }

    /// Waits for the node loop to end (on shutdown, removal or a fatal error).
    pub fn wait(&mut self) -> Result<NodeExit, NodeError> {
        match self.thread.take().map(|thread| thread.join()) {
            Some(Ok(result)) => result.map_err(NodeError::from),
            Some(Err(_)) => Err(NodeError::Raft("the node loop panicked".into())),
            None => Ok(NodeExit::Stopped),
        }
    }

    pub fn is_finished(&self) -> bool {
        self.thread
            .as_ref()
            .is_none_or(|thread| thread.is_finished())
    }
}

/// Recovers or bootstraps, then starts everything. Must be called inside a tokio runtime.
pub async fn start(config: Config) -> Result<RunningNode, NodeError> {
    config
        .validate()
        .map_err(|err| NodeError::Config(err.to_string()))?;
    // Everything that can refuse the configuration (certificates, their id, the listen address)
    // comes before the storage opens: a node that cannot serve leaves its data dir as it found
    // it (no raft/ made, no cluster bootstrapped), so the operator fixes the file and starts
    // again from the same place. Peers reaching the endpoint meanwhile wait in its queue.
    let tls = TlsMaterial::load(&TlsFiles {
        ca_cert: config.tls.ca.clone(),
        node_cert: config.tls.cert.clone(),
        node_key: config.tls.key.clone(),
    })
    .map_err(|err| NodeError::Config(format!("TLS files: {err}")))?;
    let mut transport_config = TransportConfig::new(config.node_id, config.listen, tls);
    transport_config.frame_bytes_max = transport_config
        .frame_bytes_max
        .max(2 * config.limits.proposal_bytes_max + (1 << 20));
    let (transport, mut inbound) =
        Transport::start(transport_config).map_err(|err| NodeError::Transport(err.to_string()))?;
    let peer_addr = transport.local_addr();

    let retention = config.retention();
    let (mut storage, recovered) =
        Storage::open(&config.data_dir.join("raft"), StorageOptions::default())?;

    // What this node had committed before it stopped: the registers serve only once it has
    // applied that much again (see `registers::runtime`).
    let committed_before = recovered.hard_state.commit;
    let is_new = recovered.snapshot.is_none()
        && recovered.entries.is_empty()
        && recovered.hard_state == HardState::default();
    let (state, initial) = if is_new && !config.initial_members.is_empty() {
        bootstrap(&config, &mut storage, retention)?
    } else if let Some(snapshot) = recovered.snapshot {
        let state = ReplicatedState::decode_image(&snapshot.data, retention)?;
        let applied = snapshot.meta.index;
        let initial = InitialState {
            hard_state: recovered.hard_state,
            snapshot: Some(snapshot.meta),
            snapshot_data: snapshot.data,
            entries: recovered.entries,
            applied,
        };
        (state, initial)
    } else {
        info!("no local state: waiting to be admitted to the cluster");
        let initial = InitialState {
            hard_state: recovered.hard_state,
            snapshot: None,
            snapshot_data: Vec::new(),
            entries: recovered.entries,
            applied: 0,
        };
        (ReplicatedState::empty(retention), initial)
    };
    let snapshot_index = initial.snapshot.as_ref().map_or(0, |meta| meta.index);

    let raw = RawNode::new(raft_config(&config), initial)
        .map_err(|err| NodeError::Raft(err.to_string()))?;

    let (events_tx, events_rx) = sync_channel(EVENT_QUEUE_MAX);
    let journal = MembershipJournal::new(state.epoch(), state.ring().epoch());
    let membership = Arc::new(MembershipView::of(&state, journal.clone()));
    let registers = Arc::new(state.registers().clone());
    let (view_tx, view_rx) = watch::channel(Arc::new(ClusterView {
        status: initial_status(&config, &state),
        membership: membership.clone(),
        registers: registers.clone(),
        applied_index: state.applied_index(),
        shutting_down: false,
        removed: None,
    }));

    let forward = events_tx.clone();
    tokio::spawn(async move {
        while let Some(message) = inbound.recv().await {
            match forward.try_send(Event::Peer(message)) {
                Ok(()) => {}
                // Raft retries whatever is dropped; a call gets no answer and the caller times out.
                Err(TrySendError::Full(_)) => warn!("event queue full: dropped a peer message"),
                Err(TrySendError::Disconnected(_)) => break,
            }
        }
    });

    let needs_admission = state.member(config.node_id).is_none();
    let progress = Arc::new(AtomicU64::new(0));
    let driver = Driver {
        id: config.node_id,
        raw,
        storage,
        failure: FailureDetector::new(config.node_id, Duration::from_millis(config.down_after_ms)),
        state,
        transport: transport.clone(),
        runtime: tokio::runtime::Handle::current(),
        events: events_rx,
        events_tx: events_tx.clone(),
        view_tx,
        membership,
        spare_membership: None,
        journal,
        registers,
        registers_enable_proposed_at: None,
        pending: Pending::default(),
        // Proposals are matched to their clients by (origin, request id) when applied. An entry
        // proposed before a restart may commit after it: start each run at a random point so it
        // cannot be mistaken for a new proposal of this run.
        next_request_id: random_u64() >> 1,
        snapshot_index,
        peers: BTreeMap::new(),
        shutdown_deadline: None,
        fatal: None,
        // Two election timeouts without a leader before asking the peers.
        membership_check: MembershipCheck::new(
            Instant::now(),
            2 * Duration::from_millis(
                config.raft.tick_ms * u64::from(config.raft.election_timeout_ticks),
            ),
        ),
        removed: None,
        progress: progress.clone(),
        debug_stall_file: debug_stall_file(),
        config: config.clone(),
    };
    // The loop logs its own fatal error (`Driver::stop_on_fatal`).
    let thread = std::thread::Builder::new()
        .name(format!("ringraft-node-{}", config.node_id))
        .spawn(move || driver.run())
        .map_err(|err| NodeError::Raft(format!("cannot start the node thread: {err}")))?;

    let registers = crate::registers::start(crate::registers::RegistersSetup {
        id: config.node_id,
        data_dir: &config.data_dir,
        limits: config.limits.clone(),
        transport: transport.clone(),
        node: super::CommandSubmitter {
            events: events_tx.clone(),
        },
        view: view_rx.clone(),
        serve_from_index: committed_before,
    })
    .map_err(|err| NodeError::Registers(err.to_string()))?;
    let handle = NodeHandle::new(
        events_tx.clone(),
        view_rx,
        config.limits.clone(),
        progress,
        registers,
    );
    if needs_admission && !config.join.is_empty() {
        tokio::spawn(ask_to_join(config.clone(), transport, handle.subscribe()));
    }
    Ok(RunningNode {
        handle,
        events: events_tx,
        thread: Some(thread),
        peer_addr,
    })
}

fn bootstrap(
    config: &Config,
    storage: &mut Storage,
    retention: Retention,
) -> Result<(ReplicatedState, InitialState), NodeError> {
    let members: Vec<Member> = config
        .initial_members
        .iter()
        .map(|m| Member {
            id: m.id,
            name: if m.name.is_empty() {
                format!("node-{}", m.id)
            } else {
                m.name.clone()
            },
            address: m.address.to_string(),
            zone: m.zone.clone(),
            weight: m.weight,
            role: MemberRole::Voter,
            state: MemberState::Active,
        })
        .collect();
    let voters: Vec<u64> = members.iter().map(|m| m.id).collect();
    let state = ReplicatedState::bootstrap(members, config.ring.replication_factor, retention)
        .map_err(NodeError::Config)?;
    let snapshot = Snapshot {
        meta: SnapshotMeta {
            index: BOOTSTRAP_INDEX,
            term: BOOTSTRAP_TERM,
            conf_state: ConfState {
                voters: voters.clone(),
                ..ConfState::default()
            },
        },
        data: state.encode_image(),
    };
    let hard_state = HardState {
        term: BOOTSTRAP_TERM,
        vote: None,
        commit: BOOTSTRAP_INDEX,
    };
    storage.save_snapshot(&snapshot)?;
    storage.save_hard_state(&hard_state)?;
    storage.sync()?;
    info!(
        ?voters,
        cluster_id = %ringraft_proto::cluster_id_text(state.cluster_id()),
        "bootstrapped a new cluster"
    );
    let initial = InitialState {
        hard_state,
        snapshot: Some(snapshot.meta),
        snapshot_data: snapshot.data,
        entries: Vec::new(),
        applied: BOOTSTRAP_INDEX,
    };
    Ok((state, initial))
}

/// The test hook of `DEBUG_STALL_FILE_ENV`, honoured in debug builds only.
fn debug_stall_file() -> Option<std::path::PathBuf> {
    if !cfg!(debug_assertions) {
        return None;
    }
    let path = std::env::var_os(DEBUG_STALL_FILE_ENV)?;
    warn!(
        path = %std::path::Path::new(&path).display(),
        "debug build: the node loop blocks while this file exists ({DEBUG_STALL_FILE_ENV})"
    );
    Some(path.into())
}

/// What Status answers before the node loop publishes its first view.
fn initial_status(config: &Config, state: &ReplicatedState) -> ringraft_proto::StatusInfo {
    ringraft_proto::StatusInfo {
        node_id: config.node_id,
        name: config.display_name(),
        cluster_id: state.cluster_id(),
        role: ringraft_proto::NodeRole::Follower,
        term: 0,
        leader_id: 0,
        commit_index: 0,
        applied_index: state.applied_index(),
        last_index: 0,
        snapshot_index: 0,
        epoch: state.epoch(),
        member_count: state.members().count() as u32,
        daemon_version: env!("CARGO_PKG_VERSION").to_string(),
        // Filled in by the handle when answered (see `NodeHandle::status`).
        registers: ringraft_proto::RegistersStatus::default(),
    }
}

fn raft_config(config: &Config) -> ringraft_raft::Config {
    let mut raft = ringraft_raft::Config::new(config.node_id);
    raft.election_timeout_ticks = config.raft.election_timeout_ticks;
    raft.heartbeat_interval_ticks = config.raft.heartbeat_interval_ticks;
    raft.pre_vote = config.raft.pre_vote;
    raft.check_quorum = config.raft.check_quorum;
    raft.snapshot_catch_up_entries = config.snapshot_catch_up_entries;
    // The retained tail stays below half the byte trigger of compaction, or every applied entry
    // would set off another snapshot.
    let half_trigger = usize::try_from(config.snapshot_every_bytes / 2).unwrap_or(usize::MAX);
    raft.snapshot_catch_up_bytes_max = raft.snapshot_catch_up_bytes_max.min(half_trigger);
    // Real nodes must not share election timers: the seed only matters for the simulator.
    raft.seed = random_u64();
    raft
}

/// A random number from the standard library's per-process hash seed: enough for timer jitter.
fn random_u64() -> u64 {
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// Asks the configured members, in turn, to admit this node, following leader hints, until the
/// applied state lists this node.
async fn ask_to_join(
    config: Config,
    transport: crate::transport::TransportHandle,
    mut view: watch::Receiver<Arc<ClusterView>>,
) {
    let request = PeerRequest::Join {
        id: config.node_id,
        name: config.display_name(),
        address: config.advertise_addr().to_string(),
        zone: Some(config.zone.clone()).filter(|zone| !zone.is_empty()),
        weight: config.weight,
    };
    let mut backoff = Duration::from_millis(100);
    let mut targets: Vec<std::net::SocketAddr> = config.join.clone();
    let mut next = 0usize;
    loop {
        if view
            .borrow()
            .membership
            .members
            .contains_key(&config.node_id)
        {
            info!("admitted to the cluster");
            return;
        }
        let target = targets[next % targets.len()];
        next += 1;
        match transport.call(target, request.clone()).await {
            Ok(PeerResponse::JoinResult {
                status,
                message,
                leader_address,
            }) => {
                if status == Status::Ok.code() {
                    info!(%target, "join accepted; waiting for the cluster state");
                } else {
                    let refusal =
                        super::admin::join_refusal(status, &message, leader_address.as_deref());
                    warn!(%target, "join refused: {refusal}");
                    if let Some(Ok(leader)) = leader_address.map(|addr| addr.parse()) {
                        if !targets.contains(&leader) {
                            targets.push(leader);
                        }
                        next = targets.iter().position(|t| *t == leader).unwrap_or(next);
                    }
                }
            }
            Ok(other) => warn!(%target, ?other, "unexpected answer to a join request"),
            Err(err) => warn!(%target, %err, "cannot reach a member to join through"),
        }
        let jitter = random_u64() % (backoff.as_millis() as u64 / 2 + 1);
        let wait = backoff + Duration::from_millis(jitter);
        let _ = tokio::time::timeout(wait, view.changed()).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
