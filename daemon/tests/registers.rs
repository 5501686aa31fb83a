//! Per-key registers on real ringraftd processes: every node answers for every key, writes are
//! seen from every node, versions and conflicts behave as documented, a restarted node keeps
//! what it accepted, and a kill of one acceptor does not stop the rest.

mod common;

use std::collections::BTreeMap;

use common::{prepare_joiner_with, wait_until, Cluster};
use ringraft_client::{Client, Status};
use ringraft_proto::limits::KV_ANY_VERSION;

const TIMEOUT_MS: u32 = 10_000;

fn clients(cluster: &Cluster) -> Vec<Client> {
    (1..=cluster.size)
        .map(|id| cluster.client(id).expect("connect"))
        .collect()
}

/// Writes through one node's socket are read back through every node's, with versions counting
/// writes, CAS refusing a stale version with the current one, and delete leaving an absent key.
#[test]
fn registers_are_one_value_per_key_across_nodes() {
    let cluster = Cluster::start("registers-basic", 3, &[]);
    let clients = clients(&cluster);
    let key = b"lease:partition-7";

    let absent = clients[0].kv_get(key, TIMEOUT_MS).expect("get");
    assert_eq!((absent.value.as_deref(), absent.version), (None, 0));

    let first = clients[1]
        .kv_cas(key, 0, b"owner=a", TIMEOUT_MS)
        .expect("create");
    assert_eq!(first.version, 1);
    let err = clients[2]
        .kv_cas(key, 0, b"owner=b", TIMEOUT_MS)
        .expect_err("not absent any more");
    assert_eq!(err.status, Status::Conflict);
    assert_eq!(err.current_version, Some(1));

    for client in &clients {
        let entry = client.kv_get(key, TIMEOUT_MS).expect("get");
        assert_eq!(entry.value.as_deref(), Some(&b"owner=a"[..]));
        assert_eq!(entry.version, 1);
        assert!(entry.epoch > 0);
    }
    let second = clients[2]
        .kv_cas(key, 1, b"owner=b", TIMEOUT_MS)
        .expect("cas");
    assert_eq!(second.version, 2);
    let put = clients[0].kv_put(key, b"owner=c", TIMEOUT_MS).expect("put");
    assert_eq!(put.version, 3);

    let err = clients[1]
        .kv_delete(key, 2, TIMEOUT_MS)
        .expect_err("stale delete");
    assert_eq!(
        (err.status, err.current_version),
        (Status::Conflict, Some(3))
    );
    let deleted = clients[1].kv_delete(key, 3, TIMEOUT_MS).expect("delete");
    assert_eq!(deleted.version, 0);
    let gone = clients[2].kv_get(key, TIMEOUT_MS).expect("get");
    assert_eq!((gone.value, gone.version), (None, 0));
    let again = clients[0]
        .kv_delete(key, KV_ANY_VERSION, TIMEOUT_MS)
        .expect("deleting an absent key is a write of the tombstone");
    assert_eq!(again.version, 0);
}

/// Concurrent CAS increments from every node on a few keys: each acknowledged increment counts
/// exactly once. Then one node is killed (a minority of every key's acceptors), increments go
/// on through the others, and the restarted node answers with everything that was acknowledged.
#[test]
fn cas_increments_survive_a_killed_acceptor() {
    let cluster = Cluster::start("registers-increments", 3, &[]);
    let keys: Vec<Vec<u8>> = (0..4)
        .map(|k| format!("counter-{k}").into_bytes())
        .collect();
    let mut acknowledged: BTreeMap<Vec<u8>, u64> = BTreeMap::new();

    let increment = |client: &Client, key: &[u8]| -> bool {
        // Read, then CAS from the version read; a conflict means someone else won: read again.
        for _ in 0..50 {
            let entry = match client.kv_get(key, TIMEOUT_MS) {
                Ok(entry) => entry,
                Err(_) => continue,
            };
            let count: u64 = entry
                .value
                .as_deref()
                .map(|v| String::from_utf8_lossy(v).parse().expect("a count"))
                .unwrap_or(0);
            let next = (count + 1).to_string();
            match client.kv_cas(key, entry.version, next.as_bytes(), TIMEOUT_MS) {
                Ok(_) => return true,
                Err(err) if err.status == Status::Conflict => continue,
                // A timeout's outcome is unknown: the counter may have moved; the final check
                // allows for it by counting only acknowledged increments as a lower bound.
                Err(err) if err.status == Status::Timeout => return false,
                Err(_) => continue,
            }
        }
        false
    };

    let run_round = |ids: &[u64], acknowledged: &mut BTreeMap<Vec<u8>, u64>| {
        let results: Vec<(Vec<u8>, bool)> = std::thread::scope(|scope| {
            let handles: Vec<_> = ids
                .iter()
                .flat_map(|&id| {
                    let socket = cluster.socket(id);
                    keys.iter().map(move |key| (socket.clone(), key.clone()))
                })
                .map(|(socket, key)| {
                    scope.spawn(move || {
                        let client =
                            Client::connect(&socket, Some(std::time::Duration::from_secs(10)))
                                .expect("connect");
                        let mut done = Vec::new();
                        for _ in 0..5 {
                            done.push((key.clone(), increment(&client, &key)));
                        }
                        done
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("client thread"))
                .collect()
        });
        for (key, ok) in results {
            if ok {
                *acknowledged.entry(key).or_default() += 1;
            }
        }
    };

    run_round(&[1, 2, 3], &mut acknowledged);
    cluster.kill9(3);
    run_round(&[1, 2], &mut acknowledged);
    cluster.restart(3);
    let restarted = {
        let mut client = None;
        wait_until("node 3 serves registers again", || {
            client = cluster.client(3).ok();
            client
                .as_ref()
                .is_some_and(|c| c.kv_get(b"counter-0", TIMEOUT_MS).is_ok())
        });
        client.expect("client")
    };
    for key in &keys {
        let entry = restarted.kv_get(key, TIMEOUT_MS).expect("get");
        let count: u64 = String::from_utf8_lossy(entry.value.as_deref().expect("written"))
            .parse()
            .expect("a count");
        let acked = acknowledged.get(key).copied().unwrap_or(0);
        // Every acknowledged increment is in; a timed-out one may be too (outcome unknown), and
        // no increment counts twice: the count equals the version (one write per increment).
        assert!(count >= acked, "{key:?}: {count} < {acked} acknowledged");
        assert_eq!(count, entry.version, "{key:?}: count and version differ");
    }
}

/// Reads one gauge from a node's `/metrics`.
fn gauge(metrics: std::net::SocketAddr, name: &str) -> Option<u64> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(metrics).ok()?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).ok()?;
    body.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// A join moves acceptor sets (replication 3 of 4 members: node 4 replaces one member of many
/// keys' sets). Values are written while node 2 is down, so they live on nodes 1 and 3 only;
/// after the join's transition completes node 3 is killed, so every read needs nodes of the new
/// sets that never saw the writes (2 and 4) unless the handoff carried the values to them.
/// Every value is read back unchanged from every live node, and writes go on.
#[test]
fn a_join_hands_registers_off_to_the_new_sets() {
    let cluster = Cluster::start("registers-join", 3, &[]);
    cluster.kill9(2);
    // Requests for keys node 2 owns are forwarded to it until the failure detector holds it
    // down; this test is about the handoff, not that window.
    wait_until("node 2 is marked down", || {
        cluster
            .members(1)
            .1
            .iter()
            .any(|m| m.id == 2 && m.state == ringraft_proto::MemberState::Down)
    });
    let writer = cluster.client(1).expect("connect");
    let keys: Vec<Vec<u8>> = (0..100).map(|k| format!("key-{k}").into_bytes()).collect();
    for (k, key) in keys.iter().enumerate() {
        let value = format!("value-{k}");
        writer
            .kv_put(key, value.as_bytes(), TIMEOUT_MS)
            .expect("put");
    }
    let before = writer.kv_get(&keys[0], TIMEOUT_MS).expect("get").epoch;
    cluster.restart(2);

    let metrics = unused_tcp_address();
    prepare_joiner_with(&cluster, 4, |config| {
        config.metrics_listen = Some(metrics);
    });
    cluster.restart(4);
    wait_until(
        "node 4 is a member and its registers' transition completed",
        || {
            gauge(metrics, "ringraft_registers_stable_epoch").is_some_and(|epoch| epoch > before)
                && gauge(metrics, "ringraft_registers_transition_epoch") == Some(0)
        },
    );
    // Status says the same as the metrics: the new stable epoch, no transition left.
    let stable = gauge(metrics, "ringraft_registers_stable_epoch");
    let status = cluster
        .client(4)
        .expect("connect")
        .status()
        .expect("status");
    assert!(status.registers.enabled);
    assert_eq!(Some(status.registers.stable_epoch), stable);
    assert_eq!(
        (
            status.registers.transition_epoch,
            status.registers.sets_waiting
        ),
        (0, 0)
    );
    cluster.kill9(3);
    wait_until("node 3 is marked down", || {
        cluster
            .members(1)
            .1
            .iter()
            .any(|m| m.id == 3 && m.state == ringraft_proto::MemberState::Down)
    });
    let live = [1, 2, 4];
    for (k, key) in keys.iter().enumerate() {
        let expected = format!("value-{k}");
        for id in live {
            let client = cluster.client(id).expect("connect");
            let entry = client.kv_get(key, TIMEOUT_MS).expect("get after the join");
            assert_eq!(
                entry.value.as_deref(),
                Some(expected.as_bytes()),
                "key-{k} read through n{id}"
            );
            assert_eq!(entry.version, 1, "key-{k}");
            assert!(entry.epoch > before, "key-{k} answered under the new sets");
        }
    }
    let newcomer = cluster.client(4).expect("connect");
    let written = newcomer
        .kv_cas(&keys[7], 1, b"after", TIMEOUT_MS)
        .expect("cas");
    assert_eq!(written.version, 2);
    let first = cluster.client(1).expect("connect");
    assert_eq!(
        first
            .kv_get(&keys[7], TIMEOUT_MS)
            .expect("get")
            .value
            .as_deref(),
        Some(&b"after"[..])
    );
}

fn unused_tcp_address() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
}
