//! A removed member learns that it was removed (DESIGN.md, "Membership changes"): it logs one
//! ERROR line naming the epoch, answers `Removed` to ring and log queries (Status still answers),
//! and exits with `EXIT_REMOVED`, which the systemd unit does not restart. It learns it also when
//! it was down while it was removed: its peers no longer list it.

mod common;

use common::{wait_until, Cluster};
use ringraft_client::Client;
use ringraft_daemon::dev;
use ringraft_daemon::run::EXIT_REMOVED;
use ringraft_proto::{Request, Response, Status};

fn admin(cluster: &Cluster, via: u64, request: Request) -> Response {
    cluster
        .client(via)
        .expect("connect")
        .call(request)
        .unwrap_or_else(|err| panic!("admin request through n{via} failed: {err}"))
}

/// Removes `id` through the leader; returns the epoch of the survivors once none lists it.
fn remove(cluster: &Cluster, leader: u64, survivors: &[u64], id: u64) -> u64 {
    match admin(cluster, leader, Request::Remove { id }) {
        Response::Done { .. } => {}
        other => panic!("unexpected answer to Remove: {other:?}"),
    }
    wait_until("no survivor lists the removed node", || {
        survivors
            .iter()
            .all(|s| !cluster.members(*s).1.iter().any(|m| m.id == id))
    });
    let epochs: Vec<u64> = survivors.iter().map(|s| cluster.members(*s).0).collect();
    assert!(
        epochs.iter().all(|e| *e == epochs[0]),
        "survivors agree on the epoch: {epochs:?}"
    );
    epochs[0]
}

/// The log lines written after byte `from`.
fn log_since(cluster: &Cluster, id: u64, from: usize) -> String {
    let log = cluster.log(id);
    log.get(from..).unwrap_or_default().to_string()
}

fn removal_line(log: &str) -> Option<&str> {
    log.lines()
        .find(|line| line.contains("was removed from the cluster at epoch"))
}

/// Exactly one ERROR line, and it names the epoch.
fn assert_one_error_naming(log: &str, epoch: u64) {
    let errors: Vec<&str> = log.lines().filter(|line| line.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "exactly one ERROR line: {errors:#?}");
    assert!(
        errors[0].contains(&format!("removed from the cluster at epoch {epoch}:")),
        "the ERROR line names epoch {epoch}: {}",
        errors[0]
    );
}

fn assert_removed(client: &mut Client, request: Request) {
    let what = format!("{request:?}");
    match client.call(request) {
        Err(err) => {
            assert_eq!(err.status, Status::Removed, "{what}: {err}");
            assert!(err.message.contains("removed"), "{what}: {}", err.message);
        }
        Ok(answer) => panic!("{what} answered {answer:?} on a removed node"),
    }
}

/// Waits for node `id` (restarted by this test) to exit by itself; returns its exit code.
fn exit_code(cluster: &Cluster, id: u64, pid: i32) -> Option<i32> {
    wait_until(&format!("node {id} exits by itself"), || {
        !dev::process_alive(pid)
    });
    cluster.wait_exit(id, pid).code()
}

#[test]
fn removed_live_follower_says_so_answers_removed_and_exits_with_its_code() {
    let cluster = Cluster::start("removal-live", 3, &[]);
    let leader = cluster.wait_for_leader(&[1, 2, 3]);
    let removed = (1..=3).find(|id| *id != leader).unwrap();
    let survivors: Vec<u64> = (1..=3).filter(|id| *id != removed).collect();
    // Run the follower as this test's own child, to see its exit code.
    cluster.kill9(removed);
    cluster.restart(removed);
    // Whoever leads now carries out the removal (should it be the removed node itself, it learns
    // of its removal by applying the entry instead of from its peers).
    let leader = cluster.wait_for_leader(&[1, 2, 3]);
    cluster.propose_retrying(leader, b"before the removal");
    let pid = cluster.pid(removed).expect("pid");
    let log_start = cluster.log(removed).len();

    // A watch open across the removal is ended with Removed.
    let watcher = cluster.client(removed).expect("connect");
    let watch = watcher.watch_log(1).expect("start a watch");

    let epoch = remove(&cluster, leader, &survivors, removed);
    wait_until("the removed node logs that it was removed", || {
        removal_line(&log_since(&cluster, removed, log_start)).is_some()
    });

    let mut client = cluster
        .client(removed)
        .expect("connect to the removed node");
    assert_removed(
        &mut client,
        Request::Owner {
            key: b"k".to_vec(),
            linearizable: false,
        },
    );
    assert_removed(
        &mut client,
        Request::Replicas {
            key: b"k".to_vec(),
            n: 2,
            linearizable: false,
        },
    );
    assert_removed(
        &mut client,
        Request::Ring {
            linearizable: false,
        },
    );
    assert_removed(&mut client, Request::ReadLog { from: 1, max: 10 });
    assert_removed(
        &mut client,
        Request::Propose {
            data: b"after".to_vec(),
            timeout_ms: 1000,
        },
    );
    let status = client.status().expect("Status still answers");
    assert_eq!(status.node_id, removed);
    loop {
        let response = watch
            .next_response()
            .expect("the watch ends with an answer");
        match response {
            Response::LogRecords { .. } => continue,
            Response::Error { status, .. } => {
                assert_eq!(status, Status::Removed, "the watch ends with Removed");
                break;
            }
            other => panic!("unexpected watch frame {other:?}"),
        }
    }

    assert_eq!(exit_code(&cluster, removed, pid), Some(EXIT_REMOVED));
    assert_one_error_naming(&log_since(&cluster, removed, log_start), epoch);
    // The survivors go on without it.
    cluster.propose_retrying(survivors[0], b"after the removal");
}

#[test]
fn node_removed_while_down_learns_it_from_its_peers_and_exits_with_its_code() {
    let cluster = Cluster::start("removal-down", 3, &[]);
    let leader = cluster.wait_for_leader(&[1, 2, 3]);
    let removed = (1..=3).find(|id| *id != leader).unwrap();
    let survivors: Vec<u64> = (1..=3).filter(|id| *id != removed).collect();
    cluster.propose_retrying(leader, b"before the removal");

    cluster.kill9(removed);
    let epoch = remove(&cluster, leader, &survivors, removed);
    // Later entries, so the removed node's log is behind and it never sees its removal applied.
    cluster.propose_retrying(leader, b"while it is down");

    let log_start = cluster.log(removed).len();
    cluster.restart(removed);
    let pid = cluster.pid(removed).expect("pid");
    wait_until("the restarted node learns that it was removed", || {
        removal_line(&log_since(&cluster, removed, log_start)).is_some()
    });
    let line = removal_line(&log_since(&cluster, removed, log_start))
        .unwrap_or_default()
        .to_string();
    assert!(line.contains("peer"), "learned from a peer: {line}");
    let mut client = cluster
        .client(removed)
        .expect("connect to the removed node");
    assert_removed(
        &mut client,
        Request::Owner {
            key: b"k".to_vec(),
            linearizable: false,
        },
    );

    assert_eq!(exit_code(&cluster, removed, pid), Some(EXIT_REMOVED));
    assert_one_error_naming(&log_since(&cluster, removed, log_start), epoch);
}
