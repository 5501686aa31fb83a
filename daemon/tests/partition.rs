//! A real network partition on loopback: nftables drops every UDP datagram to and from the
//! leader's QUIC port. The majority elects a new leader and goes on; nothing the isolated leader
//! was asked to commit is acknowledged; after healing, every node holds the same log.
//! Needs root and nft (CI runs as root; scripts/setup.sh installs nftables).

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::{wait_until, Cluster};
use ringraft_daemon::config::Config;
use ringraft_daemon::dev;
use ringraft_proto::Status;

/// One nftables table per test process, removed on drop even if the test fails.
struct Partition {
    table: String,
}

impl Partition {
    fn isolate_udp_port(port: u16) -> Partition {
        let table = format!("ringraft_test_{}", std::process::id());
        let script = format!(
            "table inet {table} {{\n\
               chain input {{ type filter hook input priority -10; policy accept;\n\
                 udp dport {port} drop\n\
                 udp sport {port} drop\n\
               }}\n\
             }}\n"
        );
        let status = Command::new("nft")
            .arg("-f")
            .arg("-")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child
                    .stdin
                    .take()
                    .expect("nft stdin")
                    .write_all(script.as_bytes())?;
                child.wait()
            });
        match status {
            Ok(status) if status.success() => Partition { table },
            other => {
                assert!(
                    std::env::var_os("RINGRAFT_SKIP_ROOT_TESTS").is_some(),
                    "cannot install the nftables partition ({other:?}): this test needs root and \
                     nft (scripts/setup.sh installs it); set RINGRAFT_SKIP_ROOT_TESTS=1 to skip \
                     it knowingly"
                );
                Partition {
                    table: String::new(),
                }
            }
        }
    }

    fn is_active(&self) -> bool {
        !self.table.is_empty()
    }

    fn heal(&mut self) {
        if self.is_active() {
            let _ = Command::new("nft")
                .args(["delete", "table", "inet", &self.table])
                .status();
            self.table.clear();
        }
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        self.heal();
    }
}

#[test]
fn isolated_leader_acknowledges_nothing_and_the_majority_goes_on() {
    let cluster = Cluster::start("partition", 3, &[]);
    let leader = cluster.wait_for_leader(&[1, 2, 3]);
    let mut acknowledged = BTreeMap::new();
    for i in 0..10 {
        let data = format!("before-{i}").into_bytes();
        acknowledged.insert(cluster.propose_retrying(leader, &data), data);
    }
    let port = Config::load(&dev::config_path(&cluster.dir, leader))
        .expect("leader config")
        .listen
        .port();
    let mut partition = Partition::isolate_udp_port(port);
    if !partition.is_active() {
        return;
    }
    let majority: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    let new_leader = cluster.wait_for_leader(&majority);
    assert_ne!(new_leader, leader);

    // The isolated node cannot commit: its proposals time out or are refused, never acknowledged.
    match cluster
        .client(leader)
        .unwrap()
        .call(ringraft_proto::Request::Propose {
            data: b"lost in the partition".to_vec(),
            timeout_ms: 1500,
        }) {
        Ok(answer) => panic!("the isolated node acknowledged a proposal: {answer:?}"),
        Err(err) => assert!(
            matches!(
                err.status,
                Status::Timeout | Status::NoLeader | Status::NotLeader
            ),
            "{err}"
        ),
    }
    for i in 0..10 {
        let data = format!("majority-{i}").into_bytes();
        let via = majority[i % 2];
        acknowledged.insert(cluster.propose_retrying(via, &data), data);
    }

    partition.heal();
    let last = *acknowledged.keys().last().unwrap();
    wait_until("the healed node catches up", || {
        cluster
            .status(leader)
            .is_ok_and(|s| s.applied_index >= last)
    });
    let logs: Vec<_> = (1..=3).map(|id| cluster.read_all(id)).collect();
    assert_eq!(logs[0], logs[1]);
    assert_eq!(logs[0], logs[2]);
    let log: BTreeMap<u64, Vec<u8>> = logs[0].iter().map(|r| (r.index, r.data.clone())).collect();
    for (index, data) in &acknowledged {
        assert_eq!(log.get(index), Some(data), "index {index} lost");
    }
    assert!(
        !log.values().any(|data| data == b"lost in the partition"),
        "a proposal the isolated leader could not commit appeared after all"
    );
}
