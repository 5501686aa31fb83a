//! A full disk stops the node (never retry-and-go-on), with a clear error and a non-zero exit,
//! and loses nothing it acknowledged: once space returns, it restarts and recovers. The data
//! directory is a small tmpfs the test mounts (needs root; CI runs as root).

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::{wait_until, Cluster, TempDir};
use ringraft_daemon::config::Config;
use ringraft_daemon::dev;
use ringraft_proto::Request;

struct Tmpfs {
    path: std::path::PathBuf,
    mounted: bool,
}

impl Tmpfs {
    fn mount(path: std::path::PathBuf, size: &str) -> Tmpfs {
        std::fs::create_dir_all(&path).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .status();
        let mounted = matches!(status, Ok(s) if s.success());
        assert!(
            mounted || std::env::var_os("RINGRAFT_SKIP_ROOT_TESTS").is_some(),
            "cannot mount a tmpfs at {} ({status:?}): this test needs root; set \
             RINGRAFT_SKIP_ROOT_TESTS=1 to skip it knowingly",
            path.display()
        );
        Tmpfs { path, mounted }
    }

    fn grow(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.path)
            .status()
            .expect("remount");
        assert!(status.success(), "remount of the tmpfs failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

/// A one-node dev cluster whose node was moved onto a 2 MiB tmpfs (a fresh one-node cluster
/// bootstraps there); `None` when the tmpfs cannot be mounted and the test is skipped knowingly.
fn one_node_on_a_small_disk(tag: &str) -> Option<(Cluster, Tmpfs, TempDir)> {
    let cluster = Cluster::start(tag, 1, &[]);
    cluster.wait_for_leader(&[1]);
    let scratch = TempDir::new(&format!("{tag}-mnt"));
    let disk = Tmpfs::mount(scratch.0.join("data"), "2m");
    if !disk.mounted {
        return None;
    }
    cluster.kill9(1);
    let path = dev::config_path(&cluster.dir, 1);
    let mut config = Config::load(&path).expect("config");
    config.data_dir = disk.path.clone();
    std::fs::write(&path, toml::to_string_pretty(&config).unwrap()).unwrap();
    cluster.restart(1);
    cluster.wait_for_leader(&[1]);
    Some((cluster, disk, scratch))
}

#[test]
fn full_disk_stops_the_node_and_loses_nothing_acknowledged() {
    let Some((cluster, disk, _scratch)) = one_node_on_a_small_disk("diskfull") else {
        return;
    };
    let pid = cluster.pid(1).expect("pid");

    let mut acknowledged = BTreeMap::new();
    let failure = loop {
        let data = vec![acknowledged.len() as u8; 60 << 10];
        match cluster.propose(1, &data) {
            Ok(index) => {
                acknowledged.insert(index, data);
                assert!(acknowledged.len() < 1000, "2 MiB never filled up");
            }
            Err(err) => break err,
        }
    };
    let status = cluster.wait_exit(1, pid);
    assert!(
        !status.success(),
        "the node must stop on a full disk, got {status}"
    );
    let log = cluster.log(1);
    assert!(
        log.contains("storage failed") && log.contains("No space left on device"),
        "the log names the cause; the client saw: {failure}"
    );

    disk.grow("64m");
    std::fs::remove_file(dev::pid_path(&cluster.dir, 1)).ok();
    cluster.restart(1);
    cluster.wait_for_leader(&[1]);
    let last = *acknowledged.keys().last().unwrap();
    wait_until("the node has applied what it acknowledged", || {
        cluster.status(1).is_ok_and(|s| s.applied_index >= last)
    });
    let log: BTreeMap<u64, Vec<u8>> = cluster
        .read_all(1)
        .into_iter()
        .map(|r| (r.index, r.data))
        .collect();
    for (index, data) in &acknowledged {
        assert_eq!(
            log.get(index),
            Some(data),
            "index {index} was acknowledged, then lost"
        );
    }
    let client = cluster.client(1).unwrap();
    let after = client.call(Request::Propose {
        data: b"space is back".to_vec(),
        timeout_ms: 10_000,
    });
    assert!(after.is_ok(), "proposals work again: {after:?}");
}

/// The registers' store on a full disk stops the node too (it must not keep answering Raft while
/// its registers are gone: a silent missing vote in every set it belongs to), and every register
/// write it acknowledged is there after the restart.
#[test]
fn full_disk_under_the_registers_stops_the_node_and_loses_no_acknowledged_write() {
    let Some((cluster, disk, _scratch)) = one_node_on_a_small_disk("diskfull-registers") else {
        return;
    };
    let pid = cluster.pid(1).expect("pid");

    let client = cluster.client(1).expect("connect");
    let mut acknowledged = BTreeMap::new();
    let failure = loop {
        let key = format!("key-{}", acknowledged.len()).into_bytes();
        let value = vec![acknowledged.len() as u8; 60 << 10];
        match client.kv_put(&key, &value, 10_000) {
            Ok(written) => {
                assert_eq!(written.version, 1);
                acknowledged.insert(key, value);
                assert!(acknowledged.len() < 1000, "2 MiB never filled up");
            }
            Err(err) => break err,
        }
    };
    let status = cluster.wait_exit(1, pid);
    assert!(
        !status.success(),
        "the node must stop when its register store fails, got {status}"
    );
    let log = cluster.log(1);
    assert!(
        log.contains("register store failed") && log.contains("No space left on device"),
        "the log names the cause; the client saw: {failure}"
    );

    disk.grow("64m");
    std::fs::remove_file(dev::pid_path(&cluster.dir, 1)).ok();
    cluster.restart(1);
    cluster.wait_for_leader(&[1]);
    let client = {
        let mut client = None;
        wait_until("the registers serve again", || {
            client = cluster.client(1).ok();
            client
                .as_ref()
                .is_some_and(|c| c.kv_get(b"key-0", 10_000).is_ok())
        });
        client.expect("client")
    };
    for (key, value) in &acknowledged {
        let entry = client.kv_get(key, 10_000).expect("get");
        assert_eq!(
            entry.value.as_ref(),
            Some(value),
            "{} was acknowledged, then lost",
            String::from_utf8_lossy(key)
        );
    }
    assert!(client.kv_put(b"after", b"space is back", 10_000).is_ok());
}
