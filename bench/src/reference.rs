//! The machine's raw limits, measured in the same run: a Unix-socket round trip through an
//! echo thread, and a 4 KiB write followed by fdatasync on the cluster's filesystem.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::load::{run_load, LoadResult, LoadSpec, Operation};

/// Round trips of `message_bytes` through an echo thread on a Unix socket in `dir`.
pub fn unix_ping_pong(
    dir: &Path,
    message_bytes: usize,
    spec: &LoadSpec,
) -> Result<LoadResult, String> {
    let path = dir.join("echo.sock");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).map_err(|err| format!("{}: {err}", path.display()))?;
    let clients = spec.clients;
    let echo = std::thread::spawn(move || {
        // One echo thread per client connection, as a server with a thread per client would.
        let mut workers = Vec::new();
        for _ in 0..clients {
            let Ok((stream, _)) = listener.accept() else {
                break;
            };
            workers.push(std::thread::spawn(move || {
                echo_until_closed(stream, message_bytes)
            }));
        }
        for worker in workers {
            let _ = worker.join();
        }
    });
    let result = run_load(spec, &[], |_| PingPong::connect(&path, message_bytes));
    let _ = echo.join();
    let _ = std::fs::remove_file(&path);
    Ok(result)
}

fn echo_until_closed(mut stream: UnixStream, message_bytes: usize) {
    let mut buffer = vec![0u8; message_bytes];
    while stream.read_exact(&mut buffer).is_ok() {
        if stream.write_all(&buffer).is_err() {
            break;
        }
    }
}

struct PingPong {
    stream: UnixStream,
    buffer: Vec<u8>,
}

impl PingPong {
    fn connect(path: &Path, message_bytes: usize) -> Result<PingPong, String> {
        let stream =
            UnixStream::connect(path).map_err(|err| format!("{}: {err}", path.display()))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|err| err.to_string())?;
        Ok(PingPong {
            stream,
            buffer: vec![0x5a; message_bytes],
        })
    }
}

impl Operation for PingPong {
    fn run(&mut self, _sequence: u64) -> Result<(), String> {
        self.stream
            .write_all(&self.buffer)
            .and_then(|()| self.stream.read_exact(&mut self.buffer))
            .map_err(|err| err.to_string())
    }
}

/// How each 4 KiB block lands in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WritePattern {
    /// Each block extends the file, as a write-ahead log does: fdatasync must also persist the
    /// new size.
    Append,
    /// Blocks overwrite a file written and synced beforehand: data only.
    Overwrite,
}

/// Latency of one `block_bytes` write plus fdatasync in `dir`, single-threaded.
pub fn write_fdatasync(
    dir: &Path,
    block_bytes: usize,
    pattern: WritePattern,
    spec: &LoadSpec,
) -> Result<LoadResult, String> {
    let path = dir.join(format!("fdatasync-{pattern:?}.dat").to_lowercase());
    let blocks_max = spec.ops_per_client_max + spec.warmup_ops_per_client;
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|err| format!("{}: {err}", path.display()))?;
    if pattern == WritePattern::Overwrite {
        preallocate(&file, block_bytes, blocks_max)
            .map_err(|err| format!("{}: {err}", path.display()))?;
    }
    let single = LoadSpec {
        clients: 1,
        ..*spec
    };
    let writer = Mutex::new(Some(SyncedWriter {
        file,
        path: path.clone(),
        block: vec![0xa5; block_bytes],
        blocks_max,
    }));
    let result = run_load(&single, &[], |_| {
        writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
            .ok_or_else(|| "one writer only".to_string())
    });
    let _ = std::fs::remove_file(&path);
    Ok(result)
}

/// Runs `work` while every CPU is kept busy by a lowest-priority spinning thread. On this kind of
/// VM an idle vCPU takes the disk's completion interrupt up to a timer tick (4 ms) late, so an
/// fdatasync measured on an idle machine shows the wake-up, not the disk.
pub fn with_busy_cpus<T>(work: impl FnOnce() -> T) -> T {
    let stop = AtomicBool::new(false);
    let spinners = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..spinners {
            let stop = &stop;
            scope.spawn(move || {
                // SAFETY: gettid and setpriority on this very thread; nice 19 lets every other
                // runnable thread go first.
                unsafe {
                    let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                    libc::setpriority(libc::PRIO_PROCESS, tid, 19);
                }
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            });
        }
        let result = work();
        stop.store(true, Ordering::Relaxed);
        result
    })
}

fn preallocate(file: &File, block_bytes: usize, blocks: u64) -> std::io::Result<()> {
    let zeros = vec![0u8; block_bytes];
    for block in 0..blocks {
        file.write_all_at(&zeros, block * block_bytes as u64)?;
    }
    file.sync_all()
}

struct SyncedWriter {
    file: File,
    path: PathBuf,
    block: Vec<u8>,
    blocks_max: u64,
}

impl Operation for SyncedWriter {
    fn run(&mut self, sequence: u64) -> Result<(), String> {
        if sequence >= self.blocks_max {
            return Err(format!(
                "{}: past the bounded file size",
                self.path.display()
            ));
        }
        let offset = sequence * self.block.len() as u64;
        self.file
            .write_all_at(&self.block, offset)
            .and_then(|()| self.file.sync_data())
            .map_err(|err| format!("{}: {err}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> LoadSpec {
        LoadSpec {
            clients: 1,
            duration: Duration::from_secs(600),
            ops_per_client_max: 20,
            warmup_ops_per_client: 2,
        }
    }

    fn scratch_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("ringraft-bench-test-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    #[test]
    fn ping_pong_measures_every_round_trip_of_every_client() {
        let dir = scratch_dir("ping");
        let result = unix_ping_pong(
            &dir,
            64,
            &LoadSpec {
                clients: 2,
                ..spec()
            },
        )
        .expect("ping-pong");
        assert_eq!(
            (result.ops, result.errors),
            (40, 0),
            "{:?}",
            result.first_error
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn synced_writes_land_and_the_file_is_removed() {
        let dir = scratch_dir("sync");
        for pattern in [WritePattern::Append, WritePattern::Overwrite] {
            let result = write_fdatasync(&dir, 4096, pattern, &spec()).expect("writes");
            assert_eq!(
                (result.ops, result.errors),
                (20, 0),
                "{:?}",
                result.first_error
            );
        }
        assert_eq!(std::fs::read_dir(&dir).expect("dir").count(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
