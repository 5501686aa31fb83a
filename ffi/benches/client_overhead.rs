//! What libringraft itself adds to a socket round trip: ringraft_owner() against the test suite's
//! fake daemon (one blocking thread per connection, no runtime, no node loop) next to a raw
//! Unix-socket ping-pong between two threads, in the same run. The difference is the library's
//! share (framing, rkyv, demultiplexing); the daemon's share is what bench/c/bench_owner.c shows
//! beyond this.
//!
//!   cargo bench -p ringraft-ffi --bench client_overhead

#[path = "../tests/fake/mod.rs"]
#[allow(dead_code)]
mod fake;

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Instant;

use ringraft::*;

const CALLS: usize = 50_000;

fn summary(label: &str, mut nanos: Vec<u64>) {
    nanos.sort_unstable();
    let p50 = nanos[nanos.len() / 2] as f64 / 1e3;
    let p99 = nanos[nanos.len() * 99 / 100] as f64 / 1e3;
    println!(
        "{label:<34} p50 {p50:6.1} us  p99 {p99:6.1} us  ({} calls)",
        nanos.len()
    );
}

fn raw_ping_pong() -> Vec<u64> {
    let (mut client, mut server) = UnixStream::pair().unwrap();
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 32];
        while server.read_exact(&mut buf).is_ok() {
            if server.write_all(&buf).is_err() {
                break;
            }
        }
    });
    let mut buf = [0u8; 32];
    let mut nanos = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let started = Instant::now();
        client.write_all(&buf).unwrap();
        client.read_exact(&mut buf).unwrap();
        nanos.push(started.elapsed().as_nanos() as u64);
    }
    drop(client);
    echo.join().unwrap();
    nanos
}

fn owner_calls(client: *mut ringraft_client) -> Vec<u64> {
    let mut node = std::mem::MaybeUninit::<ringraft_node>::uninit();
    let mut nanos = Vec::with_capacity(CALLS);
    for i in 0..CALLS {
        let key = format!("user:{}", i % 4096);
        let started = Instant::now();
        // SAFETY: valid client, key and out-pointer.
        let status = unsafe { ringraft_owner(client, key.as_ptr(), key.len(), node.as_mut_ptr()) };
        nanos.push(started.elapsed().as_nanos() as u64);
        assert_eq!(status, ringraft_status::RINGRAFT_OK);
    }
    nanos
}

fn main() {
    let daemon = fake::FakeDaemon::start();
    let path = CString::new(daemon.path.to_str().unwrap()).unwrap();
    let mut client = std::ptr::null_mut();
    // SAFETY: valid path and out-pointer.
    assert_eq!(
        unsafe { ringraft_connect(path.as_ptr(), &mut client) },
        ringraft_status::RINGRAFT_OK
    );
    owner_calls(client); // warm-up
    summary("raw unix ping-pong", raw_ping_pong());
    summary("ringraft_owner, fake daemon", owner_calls(client));
    summary("raw unix ping-pong", raw_ping_pong());
    // SAFETY: closes the client once.
    unsafe { ringraft_close(client) };
}
