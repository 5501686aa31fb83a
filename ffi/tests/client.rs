//! The C functions against a fake daemon that speaks the real protocol (tests/fake): behaviour
//! of the client itself. The C suite in bindings/c covers the same calls against a real cluster.

mod fake;

use std::ffi::{CStr, CString};
use std::ptr;
use std::time::{Duration, Instant};

use fake::{FakeDaemon, HANG, SLOW_PREFIX};
use ringraft::*;
use ringraft_proto::{Member, Request};

struct Client(*mut ringraft_client);

// SAFETY: the library documents ringraft_client as usable from many threads at once.
unsafe impl Send for Client {}
unsafe impl Sync for Client {}

impl Drop for Client {
    fn drop(&mut self) {
        // SAFETY: the pointer came from ringraft_connect and is closed once.
        unsafe { ringraft_close(self.0) };
    }
}

fn connect(daemon: &FakeDaemon) -> Client {
    let path = CString::new(daemon.path.to_str().unwrap()).unwrap();
    let mut client = ptr::null_mut();
    // SAFETY: valid C string and out-pointer.
    let status = unsafe { ringraft_connect(path.as_ptr(), &mut client) };
    assert_eq!(status, ringraft_status::RINGRAFT_OK);
    Client(client)
}

fn last_error(client: &Client) -> String {
    // SAFETY: ringraft_last_error returns a valid NUL-terminated string.
    unsafe { CStr::from_ptr(ringraft_last_error(client.0)) }
        .to_string_lossy()
        .into_owned()
}

fn owner(client: &Client, key: &[u8]) -> Result<ringraft_node, ringraft_status> {
    let mut node = std::mem::MaybeUninit::<ringraft_node>::uninit();
    // SAFETY: key and out are valid for the call.
    let status = unsafe { ringraft_owner(client.0, key.as_ptr(), key.len(), node.as_mut_ptr()) };
    if status == ringraft_status::RINGRAFT_OK {
        // SAFETY: written on success.
        Ok(unsafe { node.assume_init() })
    } else {
        Err(status)
    }
}

fn name_of(node: &ringraft_node) -> String {
    // SAFETY: name is NUL-terminated by contract.
    unsafe { CStr::from_ptr(node.name.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// The owner the fake daemon's ring gives, computed here independently.
fn expected_owner(daemon: &FakeDaemon, key: &[u8]) -> u64 {
    daemon
        .cluster
        .lock()
        .unwrap()
        .ring
        .owner(key)
        .unwrap()
        .member
}

fn wait_until(what: &str, deadline: Duration, mut condition: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !condition() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn connect_to_a_missing_socket_is_unavailable_with_a_message() {
    let path = CString::new("/nonexistent/ringraft.sock").unwrap();
    let mut client = std::ptr::dangling_mut::<ringraft_client>();
    // SAFETY: valid arguments.
    let status = unsafe { ringraft_connect(path.as_ptr(), &mut client) };
    assert_eq!(status, ringraft_status::RINGRAFT_UNAVAILABLE);
    assert!(client.is_null(), "out is reset to NULL on failure");
    // SAFETY: NULL asks for the client-less message.
    let message = unsafe { CStr::from_ptr(ringraft_last_error(ptr::null())) };
    assert!(
        message
            .to_str()
            .unwrap()
            .contains("/nonexistent/ringraft.sock"),
        "{message:?}"
    );
}

#[test]
fn null_arguments_are_refused_not_dereferenced() {
    let daemon = FakeDaemon::start();
    let client = connect(&daemon);
    let mut node = ringraft_node_zeroed();
    // SAFETY: the library must check every pointer it is handed.
    unsafe {
        assert_eq!(
            ringraft_connect(ptr::null(), ptr::null_mut()),
            ringraft_status::RINGRAFT_INVALID_ARGUMENT
        );
        assert_eq!(
            ringraft_owner(ptr::null_mut(), b"k".as_ptr(), 1, &mut node),
            ringraft_status::RINGRAFT_INVALID_ARGUMENT
        );
        assert_eq!(
            ringraft_owner(client.0, ptr::null(), 1, &mut node),
            ringraft_status::RINGRAFT_INVALID_ARGUMENT
        );
        assert_eq!(
            ringraft_owner(client.0, b"k".as_ptr(), 0, &mut node),
            ringraft_status::RINGRAFT_INVALID_ARGUMENT
        );
        assert_eq!(
            ringraft_owner(client.0, b"k".as_ptr(), 1, ptr::null_mut()),
            ringraft_status::RINGRAFT_INVALID_ARGUMENT
        );
        let mut count = 0usize;
        assert_eq!(
            ringraft_replicas(client.0, b"k".as_ptr(), 1, 0, &mut node, &mut count),
            ringraft_status::RINGRAFT_INVALID_ARGUMENT
        );
        assert_eq!(
            ringraft_set_timeout(client.0, 0),
            ringraft_status::RINGRAFT_INVALID_ARGUMENT
        );
        ringraft_close(ptr::null_mut());
        ringraft_log_batch_free(ptr::null_mut());
        ringraft_watch_close(ptr::null_mut());
        ringraft_ring_view_free(ptr::null_mut());
    }
    assert!(
        last_error(&client).contains("timeout_ms"),
        "{}",
        last_error(&client)
    );
}

fn ringraft_node_zeroed() -> ringraft_node {
    // SAFETY: all-zero bytes are a valid ringraft_node (enums at their 0 variant).
    unsafe { std::mem::zeroed() }
}

#[test]
fn owner_answers_agree_with_the_ring_and_compare_with_memcmp() {
    let daemon = FakeDaemon::start();
    let client = connect(&daemon);
    for i in 0..200 {
        let key = format!("key-{i}");
        let node = owner(&client, key.as_bytes()).unwrap();
        assert_eq!(node.id, expected_owner(&daemon, key.as_bytes()));
        assert_eq!(name_of(&node), format!("node-{}", node.id));
        let again = owner(&client, key.as_bytes()).unwrap();
        assert_eq!(
            // SAFETY: plain bytes of two fully written structs.
            unsafe { std::slice::from_raw_parts(&node as *const _ as *const u8, 592) },
            unsafe { std::slice::from_raw_parts(&again as *const _ as *const u8, 592) }
        );
    }
}

#[test]
fn threads_share_one_connection_and_answers_overtake_each_other() {
    let daemon = FakeDaemon::start();
    let client = connect(&daemon);
    std::thread::scope(|scope| {
        // A slow request in flight must not hold up the others on the same connection.
        let slow = scope.spawn(|| {
            let key = [SLOW_PREFIX, b"a"].concat();
            let started = Instant::now();
            let node = owner(&client, &key).unwrap();
            (node.id, started.elapsed())
        });
        let mut fast_done = Vec::new();
        for t in 0..4 {
            let client = &client;
            let daemon = &daemon;
            fast_done.push(scope.spawn(move || {
                for i in 0..500 {
                    let key = format!("t{t}-{i}");
                    assert_eq!(
                        owner(client, key.as_bytes()).unwrap().id,
                        expected_owner(daemon, key.as_bytes())
                    );
                }
            }));
        }
        for handle in fast_done {
            handle.join().unwrap();
        }
        let (id, elapsed) = slow.join().unwrap();
        assert_eq!(id, expected_owner(&daemon, &[SLOW_PREFIX, b"a"].concat()));
        assert!(elapsed >= fake::SLOW_DELAY);
    });
    assert_eq!(
        daemon.connections.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one connection"
    );
}

#[test]
fn a_proposal_that_gets_no_answer_times_out_and_the_client_goes_on() {
    let daemon = FakeDaemon::start();
    let client = connect(&daemon);
    // SAFETY: valid arguments throughout.
    unsafe {
        assert_eq!(
            ringraft_set_timeout(client.0, 50),
            ringraft_status::RINGRAFT_OK
        );
        let mut index = 0u64;
        let status = ringraft_propose(client.0, HANG.as_ptr(), HANG.len(), 50, &mut index);
        assert_eq!(status, ringraft_status::RINGRAFT_TIMEOUT);
        assert!(
            last_error(&client).contains("timed out"),
            "{}",
            last_error(&client)
        );
        let status = ringraft_propose(client.0, b"x".as_ptr(), 1, 1000, &mut index);
        assert_eq!(status, ringraft_status::RINGRAFT_OK);
        assert_eq!(index, 1);
    }
}

#[test]
fn too_large_data_is_refused_before_sending() {
    let daemon = FakeDaemon::start();
    let client = connect(&daemon);
    let data = vec![7u8; 5 * 1024 * 1024];
    let mut index = 0u64;
    // SAFETY: valid arguments.
    let status = unsafe { ringraft_propose(client.0, data.as_ptr(), data.len(), 1000, &mut index) };
    assert_eq!(status, ringraft_status::RINGRAFT_TOO_LARGE);
    assert_eq!(
        daemon.count_received(|r| matches!(r, Request::Propose { .. })),
        0
    );
    assert!(owner(&client, b"still-works").is_ok());
}

#[test]
fn reads_reconnect_after_a_restart_and_proposals_are_not_resent() {
    let mut daemon = FakeDaemon::start();
    let client = connect(&daemon);
    assert!(owner(&client, b"before").is_ok());
    daemon.restart();
    // The first read after the restart finds the old connection dead and reconnects.
    assert_eq!(
        owner(&client, b"after").unwrap().id,
        expected_owner(&daemon, b"after")
    );
    // So does a proposal on a connection that went stale while idle: it reaches the new daemon.
    daemon.restart();
    let mut index = 0u64;
    // SAFETY: valid arguments.
    let status = unsafe { ringraft_propose(client.0, b"p".as_ptr(), 1, 1_000, &mut index) };
    assert_eq!(
        status,
        ringraft_status::RINGRAFT_OK,
        "{}",
        last_error(&client)
    );

    // A proposal in flight when the daemon goes away is reported, not sent again.
    let proposing = {
        let client = &client;
        std::thread::scope(|scope| {
            let handle = scope.spawn(move || {
                let mut index = 0u64;
                // SAFETY: valid arguments.
                let status = unsafe {
                    ringraft_propose(client.0, HANG.as_ptr(), HANG.len(), 5_000, &mut index)
                };
                (status, last_error(client))
            });
            wait_until(
                "the proposal to reach the daemon",
                Duration::from_secs(5),
                || {
                    daemon.count_received(
                        |r| matches!(r, Request::Propose { data, .. } if data == HANG),
                    ) == 1
                },
            );
            daemon.restart();
            handle.join().unwrap()
        })
    };
    let (status, message) = proposing;
    assert_eq!(status, ringraft_status::RINGRAFT_UNAVAILABLE);
    assert!(message.contains("not sent again"), "{message}");
    assert_eq!(
        daemon.count_received(|r| matches!(r, Request::Propose { data, .. } if data == HANG)),
        1
    );
}

#[test]
fn a_read_in_flight_during_a_restart_is_retried_once() {
    let mut daemon = FakeDaemon::start();
    let client = connect(&daemon);
    std::thread::scope(|scope| {
        let handle = scope.spawn(|| owner(&client, &[SLOW_PREFIX, b"r"].concat()));
        wait_until(
            "the slow read to reach the daemon",
            Duration::from_secs(5),
            || daemon.count_received(|r| matches!(r, Request::Owner { .. })) == 1,
        );
        daemon.restart();
        let node = handle
            .join()
            .unwrap()
            .expect("retried on the new connection");
        assert_eq!(
            node.id,
            expected_owner(&daemon, &[SLOW_PREFIX, b"r"].concat())
        );
    });
    assert_eq!(
        daemon.count_received(|r| matches!(r, Request::Owner { .. })),
        2
    );
}

#[test]
fn daemon_down_gives_unavailable_and_recovers_when_it_returns() {
    let mut daemon = FakeDaemon::start();
    let client = connect(&daemon);
    // SAFETY: valid client. A read that lost its connection waits for the daemon up to this.
    assert_eq!(
        unsafe { ringraft_set_timeout(client.0, 200) },
        ringraft_status::RINGRAFT_OK
    );
    daemon.stop();
    assert_eq!(
        owner(&client, b"k").unwrap_err(),
        ringraft_status::RINGRAFT_UNAVAILABLE
    );
    assert_eq!(
        owner(&client, b"k").unwrap_err(),
        ringraft_status::RINGRAFT_UNAVAILABLE
    );
    daemon.restart();
    assert!(owner(&client, b"k").is_ok());
}

#[test]
fn ring_cache_answers_like_the_daemon_and_follows_epoch_changes() {
    let daemon = FakeDaemon::start();
    let client = connect(&daemon);
    // SAFETY: valid arguments.
    assert_eq!(
        unsafe { ringraft_enable_ring_cache(client.0, 10) },
        ringraft_status::RINGRAFT_OK
    );
    let owners_before = daemon.count_received(|r| matches!(r, Request::Owner { .. }));
    for i in 0..1000 {
        let key = format!("cached-{i}");
        assert_eq!(
            owner(&client, key.as_bytes()).unwrap().id,
            expected_owner(&daemon, key.as_bytes())
        );
    }
    assert_eq!(
        daemon.count_received(|r| matches!(r, Request::Owner { .. })),
        owners_before,
        "no round trips"
    );

    let mut newcomer = fake::members(4).pop().unwrap();
    newcomer.name = "newcomer".into();
    daemon.add_member(newcomer);
    let moved_key = (0..10_000)
        .map(|i| format!("probe-{i}"))
        .find(|key| expected_owner(&daemon, key.as_bytes()) == 4)
        .expect("the new member owns some key");
    wait_until(
        "the cache to pick up the new epoch",
        Duration::from_secs(5),
        || owner(&client, moved_key.as_bytes()).unwrap().id == 4,
    );
    let mut count = 0usize;
    let mut nodes = [ringraft_node_zeroed(); 3];
    // SAFETY: valid arguments; room for 3.
    let status = unsafe {
        ringraft_replicas(
            client.0,
            moved_key.as_ptr(),
            moved_key.len(),
            3,
            nodes.as_mut_ptr(),
            &mut count,
        )
    };
    assert_eq!(status, ringraft_status::RINGRAFT_OK);
    let expected = daemon
        .cluster
        .lock()
        .unwrap()
        .ring
        .replicas(moved_key.as_bytes(), 3)
        .members;
    assert_eq!(
        nodes[..count].iter().map(|n| n.id).collect::<Vec<_>>(),
        expected
    );
    // SAFETY: valid client.
    assert_eq!(
        unsafe { ringraft_disable_ring_cache(client.0) },
        ringraft_status::RINGRAFT_OK
    );
}

#[test]
fn members_report_buffer_too_small_with_the_needed_count() {
    let daemon = FakeDaemon::start();
    let client = connect(&daemon);
    let mut count = 0usize;
    let mut epoch = 0u64;
    let mut nodes = [ringraft_node_zeroed(); 3];
    // SAFETY: valid arguments.
    unsafe {
        let status = ringraft_members(client.0, nodes.as_mut_ptr(), 2, &mut count, &mut epoch);
        assert_eq!(status, ringraft_status::RINGRAFT_BUFFER_TOO_SMALL);
        assert_eq!(count, 3);
        let status = ringraft_members(client.0, nodes.as_mut_ptr(), 3, &mut count, &mut epoch);
        assert_eq!(status, ringraft_status::RINGRAFT_OK);
    }
    assert_eq!(
        nodes.iter().map(|n| n.id).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(epoch, 3);
}

#[test]
fn read_log_and_watch_deliver_every_record_once_across_a_restart() {
    let mut daemon = FakeDaemon::start();
    let client = connect(&daemon);
    let propose = |data: &[u8]| {
        let mut index = 0u64;
        // SAFETY: valid arguments.
        let status =
            unsafe { ringraft_propose(client.0, data.as_ptr(), data.len(), 1000, &mut index) };
        assert_eq!(status, ringraft_status::RINGRAFT_OK);
        index
    };
    assert_eq!(propose(b"one"), 1);
    let mut watch = ptr::null_mut();
    // SAFETY: valid arguments.
    assert_eq!(
        unsafe { ringraft_watch_log(client.0, 1, &mut watch) },
        ringraft_status::RINGRAFT_OK
    );
    let mut seen = Vec::new();
    let next = |seen: &mut Vec<(u64, Vec<u8>)>| {
        let mut batch = std::mem::MaybeUninit::<ringraft_log_batch>::uninit();
        // SAFETY: valid watch and out-pointer; the batch is freed below.
        let status = unsafe { ringraft_watch_next(watch, 2000, batch.as_mut_ptr()) };
        assert_eq!(status, ringraft_status::RINGRAFT_OK);
        // SAFETY: set on every return.
        let mut batch = unsafe { batch.assume_init() };
        for i in 0..batch.count {
            // SAFETY: count records, each with len bytes, owned by the batch.
            let record = unsafe { &*batch.records.add(i) };
            let data = unsafe { std::slice::from_raw_parts(record.data, record.len) }.to_vec();
            seen.push((record.index, data));
        }
        // SAFETY: frees what the call allocated.
        unsafe { ringraft_log_batch_free(&mut batch) };
        assert!(batch.records.is_null() && batch.internal.is_null());
    };
    next(&mut seen);
    assert_eq!(propose(b"two"), 2);
    next(&mut seen);
    daemon.restart();
    assert_eq!(propose(b"three"), 3);
    while seen.len() < 3 {
        next(&mut seen);
    }
    assert_eq!(
        seen,
        vec![
            (1, b"one".to_vec()),
            (2, b"two".to_vec()),
            (3, b"three".to_vec())
        ]
    );
    // SAFETY: closes once.
    unsafe { ringraft_watch_close(watch) };

    let mut batch = std::mem::MaybeUninit::<ringraft_log_batch>::uninit();
    // SAFETY: valid arguments.
    let status = unsafe { ringraft_read_log(client.0, 2, 10, batch.as_mut_ptr()) };
    assert_eq!(status, ringraft_status::RINGRAFT_OK);
    // SAFETY: set on every return.
    let mut batch = unsafe { batch.assume_init() };
    assert_eq!(batch.count, 2);
    // SAFETY: first of count records.
    assert_eq!(unsafe { (*batch.records).index }, 2);
    // SAFETY: frees what the call allocated.
    unsafe { ringraft_log_batch_free(&mut batch) };
}

#[test]
fn status_and_admin_calls_fill_their_outputs() {
    let daemon = FakeDaemon::start();
    let client = connect(&daemon);
    let mut info = std::mem::MaybeUninit::<ringraft_cluster_info>::uninit();
    let name = CString::new("n4").unwrap();
    let address = CString::new("127.0.0.1:7004").unwrap();
    let zone = CString::new("").unwrap();
    let too_long = CString::new("x".repeat(RINGRAFT_NAME_MAX)).unwrap();
    // SAFETY: valid arguments.
    unsafe {
        assert_eq!(
            ringraft_cluster_status(client.0, info.as_mut_ptr()),
            ringraft_status::RINGRAFT_OK
        );
        let info = info.assume_init();
        assert_eq!((info.node_id, info.leader_id, info.epoch), (1, 1, 3));
        assert_eq!(info.role, ringraft_node_role::RINGRAFT_NODE_LEADER);
        let mut index = 0u64;
        let status = ringraft_join(
            client.0,
            4,
            name.as_ptr(),
            address.as_ptr(),
            zone.as_ptr(),
            1,
            &mut index,
        );
        assert_eq!(status, ringraft_status::RINGRAFT_OK);
        assert_eq!(index, 4);
        let status = ringraft_join(
            client.0,
            5,
            too_long.as_ptr(),
            address.as_ptr(),
            zone.as_ptr(),
            1,
            &mut index,
        );
        assert_eq!(status, ringraft_status::RINGRAFT_INVALID_ARGUMENT);
        assert_eq!(
            ringraft_promote(client.0, 4, ptr::null_mut()),
            ringraft_status::RINGRAFT_OK
        );
        assert_eq!(
            ringraft_remove(client.0, 4, ptr::null_mut()),
            ringraft_status::RINGRAFT_OK
        );
        assert_eq!(
            ringraft_transfer_leader(client.0, 2, ptr::null_mut()),
            ringraft_status::RINGRAFT_OK
        );
        assert_eq!(
            ringraft_snapshot(client.0, ptr::null_mut()),
            ringraft_status::RINGRAFT_OK
        );
    }
    assert_eq!(
        daemon.count_received(|r| matches!(r, Request::Join { .. })),
        1
    );
}

#[test]
fn a_ring_view_answers_offline_after_the_client_is_closed() {
    let daemon = FakeDaemon::start();
    let client = connect(&daemon);
    let mut view = ptr::null_mut();
    // SAFETY: valid arguments.
    assert_eq!(
        unsafe { ringraft_ring(client.0, &mut view) },
        ringraft_status::RINGRAFT_OK
    );
    drop(client);
    let mut node = ringraft_node_zeroed();
    // SAFETY: the view outlives its client; arguments valid.
    unsafe {
        assert_eq!(ringraft_ring_view_epoch(view), 3);
        assert_eq!(ringraft_ring_view_replication_factor(view), 3);
        assert_eq!(
            ringraft_ring_view_owner(view, b"k".as_ptr(), 1, &mut node),
            ringraft_status::RINGRAFT_OK
        );
        let mut len = 0usize;
        assert!(!ringraft_ring_view_bytes(view, &mut len).is_null());
        assert!(len > 0);
        ringraft_ring_view_free(view);
    }
    assert_eq!(node.id, expected_owner(&daemon, b"k"));
}

// --- per-key registers --------------------------------------------------------------------

fn kv_get(client: &Client, key: &[u8]) -> (ringraft_status, ringraft_kv_entry) {
    // Garbage in: the call must overwrite the struct, never read it.
    let mut entry = ringraft_kv_entry {
        value: ptr::dangling_mut(),
        value_len: 77,
        version: 99,
        epoch: 99,
    };
    // SAFETY: key and out are valid for the call.
    let status = unsafe { ringraft_kv_get(client.0, key.as_ptr(), key.len(), &mut entry) };
    (status, entry)
}

/// The value of a filled entry, and the entry freed (twice: the second must be harmless).
fn take_value(mut entry: ringraft_kv_entry) -> Vec<u8> {
    let value = if entry.value.is_null() {
        assert_eq!(entry.value_len, 0);
        Vec::new()
    } else {
        // SAFETY: value_len bytes owned by the entry until it is freed below.
        unsafe { std::slice::from_raw_parts(entry.value, entry.value_len) }.to_vec()
    };
    // SAFETY: an entry ringraft_kv_get filled; freeing it twice is allowed.
    unsafe {
        ringraft_kv_entry_free(&mut entry);
        ringraft_kv_entry_free(&mut entry);
    }
    assert!(entry.value.is_null() && entry.value_len == 0 && entry.version == 0);
    value
}

fn kv_cas(client: &Client, key: &[u8], expected: u64, value: &[u8]) -> (ringraft_status, u64) {
    let mut version = 12_345u64;
    // SAFETY: valid arguments.
    let status = unsafe {
        ringraft_kv_cas(
            client.0,
            key.as_ptr(),
            key.len(),
            expected,
            value.as_ptr(),
            value.len(),
            &mut version,
        )
    };
    (status, version)
}

fn kv_delete(client: &Client, key: &[u8], expected: u64) -> ringraft_status {
    // SAFETY: valid arguments.
    unsafe { ringraft_kv_delete(client.0, key.as_ptr(), key.len(), expected) }
}

fn is_kv(request: &Request) -> bool {
    matches!(
        request,
        Request::KvGet { .. } | Request::KvCas { .. } | Request::KvDelete { .. }
    )
}

#[test]
fn kv_versions_count_writes_and_a_mismatch_reports_the_current_version() {
    use ringraft_status::*;
    let daemon = FakeDaemon::start();
    let client = connect(&daemon);

    let (status, entry) = kv_get(&client, b"k");
    assert_eq!(status, RINGRAFT_NOT_FOUND, "{}", last_error(&client));
    assert!(
        last_error(&client).contains("absent"),
        "{}",
        last_error(&client)
    );
    assert!(entry.value.is_null());
    assert_eq!((entry.value_len, entry.version, entry.epoch), (0, 0, 0));
    assert!(take_value(entry).is_empty(), "a zeroed entry frees");

    assert_eq!(kv_cas(&client, b"k", 0, b"one"), (RINGRAFT_OK, 1));
    let (status, entry) = kv_get(&client, b"k");
    assert_eq!(status, RINGRAFT_OK);
    assert_eq!((entry.version, entry.epoch), (1, 3));
    assert_eq!(take_value(entry), b"one");

    // Expecting absent, or a version it does not have: CONFLICT with the current version.
    assert_eq!(kv_cas(&client, b"k", 0, b"x"), (RINGRAFT_CONFLICT, 1));
    assert!(
        last_error(&client).contains("version is 1"),
        "{}",
        last_error(&client)
    );
    assert_eq!(kv_cas(&client, b"k", 5, b"x"), (RINGRAFT_CONFLICT, 1));
    assert_eq!(
        kv_cas(&client, b"k", RINGRAFT_KV_ANY_VERSION, b"two"),
        (RINGRAFT_OK, 2)
    );
    // An empty value is present, with a version; `version` may be NULL.
    // SAFETY: NULL value with length 0 and a NULL version are allowed.
    let status = unsafe {
        ringraft_kv_cas(
            client.0,
            b"k".as_ptr(),
            1,
            2,
            ptr::null(),
            0,
            ptr::null_mut(),
        )
    };
    assert_eq!(status, RINGRAFT_OK);
    let (status, entry) = kv_get(&client, b"k");
    assert_eq!((status, entry.version), (RINGRAFT_OK, 3));
    assert_eq!(take_value(entry), b"");

    assert_eq!(kv_delete(&client, b"k", 2), RINGRAFT_CONFLICT);
    assert!(
        last_error(&client).contains("version is 3"),
        "{}",
        last_error(&client)
    );
    assert_eq!(
        kv_get(&client, b"k").1.version,
        3,
        "a refused delete deletes nothing"
    );
    take_value(kv_get(&client, b"k").1);
    assert_eq!(kv_delete(&client, b"k", 3), RINGRAFT_OK);
    assert_eq!(kv_get(&client, b"k").0, RINGRAFT_NOT_FOUND);
    assert_eq!(
        kv_delete(&client, b"k", RINGRAFT_KV_ANY_VERSION),
        RINGRAFT_OK
    );
    // After a delete the versions start again.
    assert_eq!(kv_cas(&client, b"k", 0, b"again"), (RINGRAFT_OK, 1));
    let (status, entry) = kv_get(&client, b"k");
    assert_eq!(status, RINGRAFT_OK);
    assert_eq!(take_value(entry), b"again");
}

#[test]
fn kv_null_and_empty_arguments_are_refused_unsent() {
    use ringraft_status::*;
    let daemon = FakeDaemon::start();
    let client = connect(&daemon);
    let mut entry = ringraft_kv_entry {
        value: ptr::dangling_mut(),
        value_len: 1,
        version: 1,
        epoch: 1,
    };
    let mut version = 0u64;
    // SAFETY: the library must check every pointer it is handed.
    unsafe {
        assert_eq!(
            ringraft_kv_get(ptr::null_mut(), b"k".as_ptr(), 1, &mut entry),
            RINGRAFT_INVALID_ARGUMENT
        );
        assert_eq!(
            ringraft_kv_get(client.0, b"k".as_ptr(), 1, ptr::null_mut()),
            RINGRAFT_INVALID_ARGUMENT
        );
        assert_eq!(
            ringraft_kv_get(client.0, ptr::null(), 1, &mut entry),
            RINGRAFT_INVALID_ARGUMENT
        );
        assert!(
            entry.value.is_null() && entry.version == 0,
            "zeroed on failure"
        );
        assert_eq!(
            ringraft_kv_get(client.0, b"k".as_ptr(), 0, &mut entry),
            RINGRAFT_INVALID_ARGUMENT
        );
        assert_eq!(
            ringraft_kv_cas(
                ptr::null_mut(),
                b"k".as_ptr(),
                1,
                0,
                b"v".as_ptr(),
                1,
                &mut version
            ),
            RINGRAFT_INVALID_ARGUMENT
        );
        assert_eq!(
            ringraft_kv_cas(client.0, ptr::null(), 1, 0, b"v".as_ptr(), 1, &mut version),
            RINGRAFT_INVALID_ARGUMENT
        );
        assert_eq!(
            ringraft_kv_cas(client.0, b"k".as_ptr(), 1, 0, ptr::null(), 1, &mut version),
            RINGRAFT_INVALID_ARGUMENT
        );
        assert!(
            last_error(&client).contains("value"),
            "{}",
            last_error(&client)
        );
        assert_eq!(
            ringraft_kv_delete(ptr::null_mut(), b"k".as_ptr(), 1, 0),
            RINGRAFT_INVALID_ARGUMENT
        );
        assert_eq!(
            ringraft_kv_delete(client.0, ptr::null(), 1, 0),
            RINGRAFT_INVALID_ARGUMENT
        );
        assert_eq!(
            ringraft_kv_delete(client.0, b"k".as_ptr(), 0, 0),
            RINGRAFT_INVALID_ARGUMENT
        );
        ringraft_kv_entry_free(ptr::null_mut());
        ringraft_kv_entry_free(&mut entry);
    }
    assert_eq!(version, 0, "untouched on failure");
    assert_eq!(daemon.count_received(is_kv), 0);
}

#[test]
fn kv_keys_and_values_over_the_limits_are_too_large_and_unsent() {
    use ringraft_status::*;
    let daemon = FakeDaemon::start();
    let client = connect(&daemon);
    let value_max = ringraft_proto::limits::KV_VALUE_BYTES_MAX_DEFAULT;
    let (status, version) = kv_cas(&client, b"k", 0, &vec![1; value_max + 1]);
    assert_eq!((status, version), (RINGRAFT_TOO_LARGE, 12_345));
    assert!(
        last_error(&client).contains("not sent"),
        "{}",
        last_error(&client)
    );
    let long_key = vec![b'k'; ::ringraft_client::KV_KEY_BYTES_MAX + 1];
    assert_eq!(kv_get(&client, &long_key).0, RINGRAFT_TOO_LARGE);
    assert_eq!(kv_cas(&client, &long_key, 0, b"v").0, RINGRAFT_TOO_LARGE);
    assert_eq!(kv_delete(&client, &long_key, 0), RINGRAFT_TOO_LARGE);
    assert_eq!(daemon.count_received(is_kv), 0);

    // At the limits exactly: stored.
    let key = vec![b'k'; ::ringraft_client::KV_KEY_BYTES_MAX];
    assert_eq!(
        kv_cas(&client, &key, 0, &vec![2; value_max]),
        (RINGRAFT_OK, 1)
    );
    let (status, entry) = kv_get(&client, &key);
    assert_eq!(status, RINGRAFT_OK);
    assert_eq!(take_value(entry), vec![2; value_max]);
}

#[test]
fn kv_writes_are_never_resent_and_a_lost_answer_is_an_unknown_outcome() {
    use ringraft_status::*;
    let mut daemon = FakeDaemon::start();
    let client = connect(&daemon);
    // SAFETY: valid client.
    assert_eq!(unsafe { ringraft_set_timeout(client.0, 50) }, RINGRAFT_OK);
    let (status, _) = kv_cas(&client, HANG, RINGRAFT_KV_ANY_VERSION, b"v");
    assert_eq!(status, RINGRAFT_TIMEOUT);
    assert!(
        last_error(&client).contains("may or may not have taken effect"),
        "{}",
        last_error(&client)
    );
    assert_eq!(
        kv_delete(&client, HANG, RINGRAFT_KV_ANY_VERSION),
        RINGRAFT_TIMEOUT
    );
    // SAFETY: valid client.
    assert_eq!(
        unsafe { ringraft_set_timeout(client.0, 5_000) },
        RINGRAFT_OK
    );
    assert_eq!(kv_cas(&client, b"after", 0, b"v"), (RINGRAFT_OK, 1));

    // A write in flight when the daemon goes away is reported, not sent again.
    let (status, message) = std::thread::scope(|scope| {
        let handle = scope.spawn(|| {
            let (status, _) = kv_cas(&client, HANG, 0, b"v");
            (status, last_error(&client))
        });
        wait_until(
            "the write to reach the daemon",
            Duration::from_secs(5),
            || {
                daemon.count_received(|r| matches!(r, Request::KvCas { key, .. } if key == HANG))
                    == 2
            },
        );
        daemon.restart();
        handle.join().unwrap()
    });
    assert_eq!(status, RINGRAFT_UNAVAILABLE);
    assert!(message.contains("not sent again"), "{message}");
    assert_eq!(
        daemon.count_received(|r| matches!(r, Request::KvCas { key, .. } if key == HANG)),
        2,
        "the timed-out write and the lost one, each once"
    );
    assert_eq!(
        daemon.count_received(|r| matches!(r, Request::KvDelete { key, .. } if key == HANG)),
        1
    );
}

#[test]
fn a_kv_get_in_flight_during_a_restart_is_retried_once() {
    let mut daemon = FakeDaemon::start();
    let client = connect(&daemon);
    let key = [SLOW_PREFIX, b"reg"].concat();
    assert_eq!(
        kv_cas(&client, &key, 0, b"kept").0,
        ringraft_status::RINGRAFT_OK
    );
    let (status, version, value) = std::thread::scope(|scope| {
        let handle = scope.spawn(|| {
            let (status, entry) = kv_get(&client, &key);
            (status, entry.version, take_value(entry))
        });
        wait_until(
            "the read to reach the daemon",
            Duration::from_secs(5),
            || daemon.count_received(|r| matches!(r, Request::KvGet { .. })) == 1,
        );
        daemon.restart();
        handle.join().unwrap()
    });
    assert_eq!(
        status,
        ringraft_status::RINGRAFT_OK,
        "{}",
        last_error(&client)
    );
    assert_eq!((version, value), (1, b"kept".to_vec()));
    assert_eq!(
        daemon.count_received(|r| matches!(r, Request::KvGet { .. })),
        2
    );
}

/// The cached view, its epoch, encoded ring and member ids.
fn cached_ring(client: &Client) -> (u64, Vec<u8>, Vec<u64>) {
    let mut view = ptr::null_mut();
    // SAFETY: valid arguments; the view is freed below.
    unsafe {
        assert_eq!(
            ringraft_ring(client.0, &mut view),
            ringraft_status::RINGRAFT_OK
        );
        let mut len = 0usize;
        let bytes = std::slice::from_raw_parts(ringraft_ring_view_bytes(view, &mut len), len);
        let bytes = bytes.to_vec();
        let mut nodes = [ringraft_node_zeroed(); 8];
        let mut count = 0usize;
        assert_eq!(
            ringraft_ring_view_members(view, nodes.as_mut_ptr(), nodes.len(), &mut count),
            ringraft_status::RINGRAFT_OK
        );
        let epoch = ringraft_ring_view_epoch(view);
        ringraft_ring_view_free(view);
        (epoch, bytes, nodes[..count].iter().map(|n| n.id).collect())
    }
}

fn whole_ring(daemon: &FakeDaemon) -> (u64, Vec<u8>, Vec<u64>) {
    let cluster = daemon.cluster.lock().unwrap();
    (
        cluster.ring.epoch(),
        cluster.ring.encode(),
        cluster.members.iter().map(|m| m.id).collect(),
    )
}

#[test]
fn the_ring_cache_follows_joins_removals_and_changes_by_deltas() {
    let daemon = FakeDaemon::start();
    let client = connect(&daemon);
    // SAFETY: valid arguments.
    assert_eq!(
        unsafe { ringraft_enable_ring_cache(client.0, 10) },
        ringraft_status::RINGRAFT_OK
    );
    let whole_rings = || daemon.count_received(|r| matches!(r, Request::Ring { .. }));
    assert_eq!(whole_rings(), 1, "enabling fetches the ring once");

    let mut members = fake::members(5);
    let changes: [fn(&mut Vec<Member>); 4] = [
        |_| {},
        |members| members.retain(|m| m.id != 2),
        |members| members[0].weight = 3,
        |members| members[1].name = "renamed".into(),
    ];
    for change in &changes {
        change(&mut members);
        daemon.set_members(members.clone());
        let expected = whole_ring(&daemon);
        wait_until(
            "the cache to reach the daemon's epoch",
            Duration::from_secs(5),
            || cached_ring(&client).0 == expected.0,
        );
        assert_same_ring(cached_ring(&client), expected);
    }
    let renamed = owner_named(&client, &daemon, 3);
    assert_eq!(
        renamed, "renamed",
        "a changed member's record follows the delta"
    );
    assert_eq!(whole_rings(), 1, "every change came as a delta");
    assert!(daemon.count_received(|r| matches!(r, Request::RingSince { .. })) >= changes.len());

    // A daemon whose history no longer reaches the cached epoch answers the whole ring.
    daemon.cluster.lock().unwrap().answers_ring_deltas = false;
    members.push(fake::members(6).pop().unwrap());
    daemon.set_members(members);
    let expected = whole_ring(&daemon);
    wait_until(
        "the cache to take the whole ring",
        Duration::from_secs(5),
        || cached_ring(&client).0 == expected.0,
    );
    assert_same_ring(cached_ring(&client), expected);
    assert_eq!(
        whole_rings(),
        1,
        "the whole ring came as the answer to RingSince"
    );
}

fn assert_same_ring(cached: (u64, Vec<u8>, Vec<u64>), daemon: (u64, Vec<u8>, Vec<u64>)) {
    assert_eq!(
        (cached.0, &cached.2),
        (daemon.0, &daemon.2),
        "epoch and member ids"
    );
    assert!(
        cached.1 == daemon.1,
        "the cached ring is the daemon's, byte for byte"
    );
}

/// The name of the cached owner of some key member `id` owns.
fn owner_named(client: &Client, daemon: &FakeDaemon, id: u64) -> String {
    let key = (0..100_000)
        .map(|i| format!("probe-{i}"))
        .find(|key| expected_owner(daemon, key.as_bytes()) == id)
        .expect("the member owns some key");
    name_of(&owner(client, key.as_bytes()).unwrap())
}
