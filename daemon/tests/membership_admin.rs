//! The admin API's membership rules on real ringraftd processes (DESIGN.md, "Membership
//! changes"): `promote` only for a reachable, caught-up learner; `join` refuses an id, name or
//! address in use; `join`, `remove` and `promote` answer with the index of the change's own entry
//! (the ring's new epoch), also when forwarded and under load; and a change asked for right after
//! the leader is killed waits for the new leader instead of failing, with every node applying the
//! same entries.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{prepare_joiner, unused_udp_address, wait_until, Cluster, WAIT};
use ringraft_client::{Client, Error as ClientError};
use ringraft_daemon::dev;
use ringraft_proto::{MemberRole, Request, Response, Status};
use ringraft_raft::{ConfChangeStep, Entry, EntryPayload};
use ringraft_storage::{Storage, StorageError, StorageOptions};

/// Longer than the daemon's own admin deadline, so its answer (even a timeout) arrives.
const CLIENT_WAIT: Duration = Duration::from_secs(30);
/// Clients proposing while membership changes.
const PROPOSERS: usize = 16;

fn connect(socket: &Path) -> Result<Client, ClientError> {
    Client::connect(socket, Some(CLIENT_WAIT))
}

/// An admin request through node `via`: the index it answers, or its error.
fn admin(cluster: &Cluster, via: u64, request: Request) -> Result<u64, ClientError> {
    match connect(&cluster.socket(via))?.call(request)? {
        Response::Done { index } => Ok(index),
        other => panic!("unexpected answer to an admin request: {other:?}"),
    }
}

fn join(id: u64, name: &str, address: &str) -> Request {
    Request::Join {
        id,
        name: name.to_string(),
        address: address.to_string(),
        zone: String::new(),
        weight: 1,
    }
}

/// A loopback address nothing listens on (the port was free a moment ago).
fn unused_address() -> String {
    unused_udp_address().to_string()
}

fn member_address(cluster: &Cluster, id: u64) -> String {
    let (_, members) = cluster.members(1);
    members
        .into_iter()
        .find(|m| m.id == id)
        .map(|m| m.address)
        .unwrap_or_else(|| panic!("member {id} not found"))
}

fn others(ids: &[u64], but: u64) -> Vec<u64> {
    ids.iter().copied().filter(|id| *id != but).collect()
}

fn expect_error(result: Result<u64, ClientError>, status: Status, what: &str) -> String {
    match result {
        Ok(index) => panic!("{what} was accepted (index {index}); expected {status:?}"),
        Err(err) => {
            assert_eq!(err.status, status, "{what}: {err}");
            err.message
        }
    }
}

/// Waits until node `id` has applied `index`, then checks that its ring is at epoch `index`:
/// the caller made no other membership change since.
fn assert_epoch_on(cluster: &Cluster, id: u64, index: u64, what: &str) {
    wait_until(&format!("n{id} to apply {what} at {index}"), || {
        cluster.status(id).is_ok_and(|s| s.applied_index >= index)
    });
    let client = connect(&cluster.socket(id)).expect("connect");
    match client.call(Request::Ring {
        linearizable: false,
    }) {
        Ok(Response::Ring { epoch, .. }) => assert_eq!(
            epoch, index,
            "n{id}: the ring's epoch after {what} is not the index the change answered"
        ),
        other => panic!("unexpected answer to Ring: {other:?}"),
    }
}

/// Clients that propose through the given sockets until stopped, each on its own connection.
struct Load {
    stop: Arc<AtomicBool>,
    acknowledged: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(sockets: Vec<PathBuf>, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged = Arc::new(AtomicU64::new(0));
        let threads = (0..clients)
            .map(|n| {
                let socket = sockets[n % sockets.len()].clone();
                let stop = stop.clone();
                let acknowledged = acknowledged.clone();
                std::thread::spawn(move || {
                    let mut client = None;
                    let mut sequence = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let Some(c) = client.as_mut() else {
                            // The node may be down (killed by the test): try again shortly.
                            client = connect(&socket).ok();
                            if client.is_none() {
                                std::thread::sleep(Duration::from_millis(50));
                            }
                            continue;
                        };
                        sequence += 1;
                        let data = format!("load-{n}-{sequence}").into_bytes();
                        match c.call(Request::Propose {
                            data,
                            timeout_ms: 5_000,
                        }) {
                            Ok(Response::Proposed { .. }) => {
                                acknowledged.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(other) => panic!("unexpected answer to Propose: {other:?}"),
                            // Elections, kills and timeouts are expected here; the load only
                            // has to keep coming.
                            Err(err) if err.status == Status::Unavailable => client = None,
                            Err(_) => std::thread::sleep(Duration::from_millis(20)),
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            acknowledged,
            threads,
        }
    }

    fn acknowledged(&self) -> u64 {
        self.acknowledged.load(Ordering::Relaxed)
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            thread.join().expect("a load client panicked");
        }
        self.acknowledged.load(Ordering::Relaxed)
    }
}

/// What node `id` holds on disk: its committed index and its log entries by index. The node
/// must be stopped (the storage lock keeps a running daemon's directory to itself).
fn disk_log(cluster: &Cluster, id: u64) -> (u64, BTreeMap<u64, Entry>) {
    let dir = dev::node_dir(&cluster.dir, id).join("raft");
    // A killed process's other threads may still be exiting, holding its files (and the lock) a
    // moment after it shows as dead.
    let mut opened = None;
    wait_until(
        &format!("n{id}'s storage to be unlocked"),
        || match Storage::open(&dir, StorageOptions::default()) {
            Ok(storage) => {
                opened = Some(storage);
                true
            }
            Err(StorageError::Locked { .. }) => false,
            Err(err) => panic!("n{id}: open its storage: {err}"),
        },
    );
    let (_storage, recovered) = opened.expect("opened");
    let entries = recovered
        .entries
        .into_iter()
        .map(|e| (e.index, e))
        .collect();
    (recovered.hard_state.commit, entries)
}

/// The changes answered (index, step) are the entries at those indexes, on every node that
/// still holds them, and the nodes agree on every committed entry they both hold.
fn assert_logs_agree(cluster: &Cluster, ids: &[u64], changes: &[(u64, ConfChangeStep)]) {
    let logs: BTreeMap<u64, (u64, BTreeMap<u64, Entry>)> =
        ids.iter().map(|id| (*id, disk_log(cluster, *id))).collect();
    for (index, step) in changes {
        let mut seen = 0;
        for (id, (_, entries)) in &logs {
            let Some(entry) = entries.get(index) else {
                continue;
            };
            seen += 1;
            match &entry.payload {
                EntryPayload::ConfChange(change) => assert_eq!(
                    change.changes,
                    vec![*step],
                    "n{id}: the entry at {index} is another change"
                ),
                other => panic!(
                    "n{id}: the change answered index {index}, but the entry there is {other:?}"
                ),
            }
        }
        assert!(seen > 0, "no node still holds the entry at {index}");
    }
    let commit = logs.values().map(|(commit, _)| *commit).min().unwrap_or(0);
    let (first_id, (_, first)) = logs.iter().next().expect("at least one node");
    for (id, (_, entries)) in &logs {
        for (index, entry) in entries.range(..=commit) {
            if let Some(other) = first.get(index) {
                assert_eq!(
                    entry, other,
                    "n{id} and n{first_id} hold different committed entries at {index}"
                );
            }
        }
    }
}

#[test]
fn promote_refuses_an_unreachable_learner_and_names_its_lag() {
    let cluster = Cluster::start("promote-unreachable", 3, &[]);
    let leader = cluster.wait_for_leader(&[1, 2, 3]);
    let follower = others(&[1, 2, 3], leader)[0];

    let joined = admin(&cluster, follower, join(9, "ghost", &unused_address())).expect("join");
    for via in [leader, follower] {
        let message = expect_error(
            admin(&cluster, via, Request::Promote { id: 9 }),
            Status::Unavailable,
            &format!("promotion (through n{via}) of a learner nothing runs for"),
        );
        assert!(
            message.contains("member 9") && message.contains("entries behind"),
            "the refusal names the member and its lag: {message}"
        );
        assert!(
            message.contains("heard from"),
            "the refusal says it was not heard from: {message}"
        );
    }
    for id in 1..=3 {
        wait_until(&format!("n{id} to apply the join"), || {
            cluster.status(id).is_ok_and(|s| s.applied_index >= joined)
        });
        let (_, members) = cluster.members(id);
        let ghost = members.iter().find(|m| m.id == 9).expect("the learner");
        assert_eq!(ghost.role, MemberRole::Learner, "n{id}: still a learner");
        assert_eq!(
            members
                .iter()
                .filter(|m| m.role == MemberRole::Voter)
                .count(),
            3
        );
    }

    let message = expect_error(
        admin(&cluster, follower, Request::Promote { id: leader }),
        Status::Conflict,
        "promotion of a voter",
    );
    assert!(message.contains("already a voter"), "{message}");
    expect_error(
        admin(&cluster, leader, Request::Promote { id: 77 }),
        Status::NotFound,
        "promotion of a non-member",
    );
}

#[test]
fn join_refuses_an_id_name_or_address_in_use() {
    // No failure detector: its verdicts on the silent learner would move the epoch.
    let cluster = Cluster::start("join-conflicts", 3, &["--down-after-ms", "0"]);
    let leader = cluster.wait_for_leader(&[1, 2, 3]);
    let follower = others(&[1, 2, 3], leader)[0];
    let ghost_address = unused_address();
    let other_address = unused_address();

    let joined = admin(&cluster, follower, join(9, "ghost", &ghost_address)).expect("join");
    // The log moves on, so "the index of the original change" is not just the last one.
    let proposed = cluster.propose_retrying(leader, b"after the join");
    assert!(proposed > joined);
    for via in [leader, follower] {
        assert_eq!(
            admin(&cluster, via, join(9, "ghost", &ghost_address)).expect("the same join again"),
            joined,
            "a retried join (through n{via}) answers the original change's index"
        );
    }
    let n2_address = member_address(&cluster, 2);
    let refusals = [
        (join(9, "ghost", &other_address), "member 9"),
        (join(9, "ghost-2", &ghost_address), "member 9"),
        (join(10, "ghost", &other_address), "name \"ghost\""),
        (join(10, "ghost-2", &ghost_address), "address"),
        (join(10, "ghost-2", &n2_address), "member 2"),
        (join(10, "n1", &other_address), "member 1"),
    ];
    for (request, named) in refusals {
        for via in [leader, follower] {
            let message = expect_error(
                admin(&cluster, via, request.clone()),
                Status::Conflict,
                &format!("{request:?} through n{via}"),
            );
            assert!(
                message.contains(named),
                "the refusal names {named}: {message}"
            );
        }
    }
    for id in 1..=3 {
        assert_epoch_on(&cluster, id, joined, "the join");
        let (_, members) = cluster.members(id);
        assert_eq!(members.len(), 4, "n{id}: only the first join took effect");
        assert!(!members.iter().any(|m| m.id == 10));
    }
}

#[test]
fn changes_answer_with_their_own_entry_index_under_load() {
    // No failure detector (its verdicts move the epoch too); a log that is never compacted, so
    // the entries can be read back from disk at the end.
    let cluster = Cluster::start(
        "change-index",
        3,
        &[
            "--down-after-ms",
            "0",
            "--snapshot-every-entries",
            "100000000",
        ],
    );
    let leader = cluster.wait_for_leader(&[1, 2, 3]);
    let followers = others(&[1, 2, 3], leader);
    let load = Load::start((1..=3).map(|id| cluster.socket(id)).collect(), PROPOSERS);
    wait_until("the load to commit", || load.acknowledged() > 0);

    let mut changes: Vec<(u64, ConfChangeStep)> = Vec::new();
    let mut running = vec![1, 2, 3];
    let check = |changes: &mut Vec<(u64, ConfChangeStep)>,
                 running: &[u64],
                 index: u64,
                 step: ConfChangeStep| {
        for id in running {
            assert_epoch_on(&cluster, *id, index, &format!("{step:?}"));
        }
        changes.push((index, step));
    };

    // A real node: admitted through a follower first, then started (its own join is then the
    // identical join again), promoted once it has caught up.
    let n4_address = prepare_joiner(&cluster, 4);
    let index = admin(&cluster, followers[0], join(4, "n4", &n4_address)).expect("join n4");
    check(&mut changes, &running, index, ConfChangeStep::AddLearner(4));
    cluster.restart(4);
    running.push(4);
    wait_until("n4 to have the cluster state", || {
        cluster.members(4).1.iter().any(|m| m.id == 4)
    });
    let deadline = Instant::now() + WAIT;
    let index = loop {
        match admin(&cluster, followers[1], Request::Promote { id: 4 }) {
            Ok(index) => break index,
            // Still catching up, or not heard from yet: the refusal is right; ask again.
            Err(err) if err.status == Status::Unavailable && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Err(err) => panic!("promotion of n4: {err}"),
        }
    };
    check(&mut changes, &running, index, ConfChangeStep::AddVoter(4));

    // Learners that never run, joined and removed through each node in turn.
    for (round, ghost) in (20..26u64).enumerate() {
        let via = [leader, followers[0], followers[1]][round % 3];
        let name = format!("ghost-{ghost}");
        let index =
            admin(&cluster, via, join(ghost, &name, &unused_address())).expect("join a ghost");
        check(
            &mut changes,
            &running,
            index,
            ConfChangeStep::AddLearner(ghost),
        );
        let via = [followers[1], leader, followers[0]][round % 3];
        let index = admin(&cluster, via, Request::Remove { id: ghost }).expect("remove a ghost");
        check(
            &mut changes,
            &running,
            index,
            ConfChangeStep::RemoveNode(ghost),
        );
    }
    let index = admin(&cluster, leader, Request::Remove { id: 4 }).expect("remove n4");
    running.retain(|id| *id != 4);
    check(&mut changes, &running, index, ConfChangeStep::RemoveNode(4));

    assert!(load.stop() > 0);
    for id in 1..=4 {
        if cluster.pid(id).is_some_and(dev::process_alive) {
            cluster.kill9(id);
        }
    }
    assert_logs_agree(&cluster, &[1, 2, 3], &changes);
}

#[test]
fn changes_right_after_the_leader_is_killed_wait_for_the_next_leader() {
    let cluster = Cluster::start(
        "change-after-kill",
        3,
        &["--snapshot-every-entries", "100000000"],
    );
    let all = [1u64, 2, 3];
    let load = Load::start(all.iter().map(|id| cluster.socket(*id)).collect(), 4);
    let mut changes = Vec::new();
    for round in 0..6u64 {
        let leader = cluster.wait_for_leader(&all);
        cluster.kill9(leader);
        let survivors = others(&all, leader);
        // At once, before the survivors even notice, two changes through the two survivors: each
        // first finds the old leader gone, then the new leader busy with the other change.
        // Even rounds admit two learners, odd rounds remove them again.
        let first_ghost = 100 + 2 * (round / 2);
        let requests: Vec<(u64, Request, ConfChangeStep)> = (0..2u64)
            .map(|k| {
                let ghost = first_ghost + k;
                let via = survivors[((round + k) % 2) as usize];
                if round % 2 == 0 {
                    let name = format!("ghost-{ghost}");
                    let request = join(ghost, &name, &unused_address());
                    (via, request, ConfChangeStep::AddLearner(ghost))
                } else {
                    (
                        via,
                        Request::Remove { id: ghost },
                        ConfChangeStep::RemoveNode(ghost),
                    )
                }
            })
            .collect();
        let answers: Vec<Result<u64, ClientError>> = std::thread::scope(|scope| {
            let calls: Vec<_> = requests
                .iter()
                .map(|(via, request, _)| {
                    let cluster = &cluster;
                    scope.spawn(move || admin(cluster, *via, request.clone()))
                })
                .collect();
            calls
                .into_iter()
                .map(|call| call.join().expect("admin thread"))
                .collect()
        });
        for ((via, request, step), answer) in requests.into_iter().zip(answers) {
            let index = answer.unwrap_or_else(|err| {
                panic!(
                    "round {round}: {request:?} through n{via} right after n{leader} was \
                     killed: {err}"
                )
            });
            changes.push((index, step));
        }
        cluster.restart(leader);
    }
    load.stop();
    let mut indexes: Vec<u64> = changes.iter().map(|(index, _)| *index).collect();
    indexes.sort_unstable();
    indexes.dedup();
    assert_eq!(
        indexes.len(),
        changes.len(),
        "each change has its own index"
    );
    let last_index = indexes.last().copied().unwrap_or(0);

    // Everyone catches up to the same point and holds the same state.
    wait_until("every node to apply the same last index", || {
        let statuses: Vec<_> = all
            .iter()
            .filter_map(|id| cluster.status(*id).ok())
            .collect();
        statuses.len() == all.len()
            && statuses.iter().all(|s| {
                s.applied_index == statuses[0].applied_index && s.applied_index >= last_index
            })
    });
    let first_members = cluster.members(1);
    let first_log = cluster.read_all(1);
    for id in [2, 3] {
        assert_eq!(
            cluster.members(id),
            first_members,
            "n{id}: other members or epoch"
        );
        assert_eq!(
            cluster.read_all(id),
            first_log,
            "n{id}: another application log"
        );
    }
    assert!(
        !first_members.1.iter().any(|m| m.id >= 100),
        "every ghost was removed again"
    );
    for id in all {
        cluster.kill9(id);
    }
    assert_logs_agree(&cluster, &all, &changes);
}
