//! A fatal error on the admin `snapshot` path stops the node like every other fatal error: the
//! client gets Internal with the cause, the log names it, and the process exits non-zero instead
//! of serving on with a storage it can no longer trust. The data directory is a small tmpfs the
//! test fills up (needs root, like disk_full.rs; CI runs as root).

mod common;

use std::io::Write;
use std::process::Command;

use common::{wait_until, Cluster, TempDir};
use ringraft_daemon::config::Config;
use ringraft_daemon::dev;
use ringraft_daemon::run::EXIT_FATAL;
use ringraft_proto::{Request, Status};

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

    /// Writes a file until the filesystem has no page left.
    fn fill(&self) {
        let mut filler = std::fs::File::create(self.path.join("filler")).expect("filler file");
        let page = [0xa5u8; 4096];
        let mut written = 0usize;
        loop {
            match filler.write(&page) {
                Ok(0) => break,
                Ok(n) => written += n,
                Err(err) => {
                    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "filling: {err}");
                    break;
                }
            }
            assert!(written < 64 << 20, "the small tmpfs never filled up");
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

#[test]
fn snapshot_on_a_full_disk_stops_the_node_with_the_error() {
    let cluster = Cluster::start("fatal-snapshot", 1, &[]);
    cluster.wait_for_leader(&[1]);
    let scratch = TempDir::new("fatal-snapshot-mnt");
    let disk = Tmpfs::mount(scratch.0.join("data"), "4m");
    if !disk.mounted {
        return;
    }
    // Move node 1's state onto the small disk: a fresh one-node cluster bootstraps there.
    cluster.kill9(1);
    let path = dev::config_path(&cluster.dir, 1);
    let mut config = Config::load(&path).expect("config");
    config.data_dir = disk.path.clone();
    std::fs::write(&path, toml::to_string_pretty(&config).unwrap()).unwrap();
    cluster.restart(1);
    cluster.wait_for_leader(&[1]);
    // Something to snapshot: the applied index moves past the last snapshot.
    cluster.propose_retrying(1, b"to be snapshotted");
    let pid = cluster.pid(1).expect("pid");

    disk.fill();
    let client = cluster.client(1).expect("connect");
    let err = client
        .call(Request::Snapshot)
        .expect_err("a snapshot cannot be written to a full disk");
    assert_eq!(err.status, Status::Internal, "{err}");
    assert!(
        err.message.contains("No space left on device"),
        "the answer names the cause: {err}"
    );

    wait_until("the node to exit after the fatal error", || {
        !dev::process_alive(pid)
    });
    let status = cluster.wait_exit(1, pid);
    assert_eq!(status.code(), Some(EXIT_FATAL), "exit status {status}");
    let log = cluster.log(1);
    assert!(
        log.contains("fatal error: stopping the node") && log.contains("No space left on device"),
        "the log names the error"
    );
}
