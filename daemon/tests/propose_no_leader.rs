//! With no leader, a propose waits (within its deadline) for one instead of failing at once
//! with `no_leader`: real ringraftd processes, two of three killed, one restarted meanwhile.

mod common;

use std::time::{Duration, Instant};

use common::*;
use ringraft_client::Client;
use ringraft_proto::{Request, Response, Status};

/// Proposes `data` through node `id` with the daemon's deadline `timeout_ms`; the answer and how
/// long it took.
fn propose_timed(
    cluster: &Cluster,
    id: u64,
    data: &[u8],
    timeout_ms: u32,
) -> (Result<u64, Status>, Duration) {
    let client = Client::connect(&cluster.socket(id), Some(Duration::from_secs(30))).unwrap();
    let started = Instant::now();
    let answer = client.call(Request::Propose {
        data: data.to_vec(),
        timeout_ms,
    });
    let elapsed = started.elapsed();
    let answer = match answer {
        Ok(Response::Proposed { index }) => Ok(index),
        Ok(other) => panic!("unexpected answer to propose: {other:?}"),
        Err(error) => Err(error.status),
    };
    (answer, elapsed)
}

#[test]
fn propose_waits_for_a_leader_within_its_deadline() {
    let cluster = Cluster::start("propose-no-leader", 3, &[]);
    let leader = cluster.wait_for_leader(&[1, 2, 3]);
    cluster.propose_retrying(leader, b"before");
    let survivor = (1..=3).find(|id| *id != leader).unwrap();
    let other = (1..=3).find(|id| *id != leader && *id != survivor).unwrap();
    cluster.kill9(leader);
    cluster.kill9(other);
    wait_until("the survivor to know no leader", || {
        cluster.status(survivor).is_ok_and(|s| s.leader_id == 0)
    });

    // Nobody comes back: the answer comes at the deadline, not at once, and says why.
    let (answer, elapsed) = propose_timed(&cluster, survivor, b"never", 1_500);
    assert!(
        matches!(answer, Err(Status::NoLeader | Status::Timeout)),
        "{answer:?}"
    );
    assert!(
        elapsed >= Duration::from_millis(1_200),
        "answered after {elapsed:?}: the propose did not wait for a leader"
    );

    // A node comes back while the propose waits: it commits.
    let proposer = std::thread::scope(|scope| {
        let proposer = scope.spawn(|| propose_timed(&cluster, survivor, b"after", 3_000));
        std::thread::sleep(Duration::from_millis(200));
        cluster.restart(other);
        proposer.join().unwrap()
    });
    let (answer, elapsed) = proposer;
    let index = answer.unwrap_or_else(|status| {
        panic!("the propose failed with {status:?} after {elapsed:?} though a leader came back")
    });
    let records = cluster.read_all(survivor);
    let committed: Vec<&[u8]> = records.iter().map(|r| r.data.as_slice()).collect();
    assert_eq!(committed, [&b"before"[..], b"after"]);
    assert_eq!(records[1].index, index);
}
