//! The register calls against a scripted server keeping registers in memory: answers become
//! entries, versions and `Conflict` errors with the current version; keys and values over the
//! limits are refused unsent; a write whose answer never comes times out and is not resent.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ringraft_client::{Client, Status, KV_ANY_VERSION, KV_KEY_BYTES_MAX};
use ringraft_proto::{
    decode_request, encode_response_frame, FrameDecoder, Request, Response, ResponseFrame,
    ServerHello, ServerLimits, CLIENT_HELLO_BYTES, FRAME_BYTES_MAX,
};

const VALUE_MAX: u32 = 100;
const EPOCH: u64 = 5;
/// A key whose requests the server never answers.
const HANG: &[u8] = b"hang";

type Received = Arc<Mutex<Vec<Request>>>;

fn answer(registers: &mut HashMap<Vec<u8>, (Vec<u8>, u64)>, request: Request) -> Response {
    let version_of = |registers: &HashMap<Vec<u8>, (Vec<u8>, u64)>, key: &[u8]| {
        registers.get(key).map_or(0, |(_, version)| *version)
    };
    match request {
        Request::KvGet { key, .. } => match registers.get(&key) {
            Some((value, version)) => Response::KvEntry {
                value: Some(value.clone()),
                version: *version,
                epoch: EPOCH,
            },
            None => Response::KvEntry {
                value: None,
                version: 0,
                epoch: EPOCH,
            },
        },
        Request::KvCas {
            key,
            expected_version,
            value,
            ..
        } => {
            let current = version_of(registers, &key);
            if expected_version != KV_ANY_VERSION && expected_version != current {
                return Response::KvConflict {
                    current_version: current,
                    epoch: EPOCH,
                };
            }
            registers.insert(key, (value, current + 1));
            Response::KvWritten {
                version: current + 1,
                epoch: EPOCH,
            }
        }
        Request::KvDelete {
            key,
            expected_version,
            ..
        } => {
            let current = version_of(registers, &key);
            if expected_version != KV_ANY_VERSION && expected_version != current {
                return Response::KvConflict {
                    current_version: current,
                    epoch: EPOCH,
                };
            }
            registers.remove(&key);
            Response::KvWritten {
                version: 0,
                epoch: EPOCH,
            }
        }
        other => Response::Error {
            status: Status::InvalidArgument,
            message: format!("not a register request: {}", other.name()),
        },
    }
}

fn serve() -> (tempfile::TempDir, PathBuf, Received) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let received: Received = Arc::default();
    let log = Arc::clone(&received);
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut hello = [0u8; CLIENT_HELLO_BYTES];
        stream.read_exact(&mut hello).unwrap();
        let mut bytes = ServerHello {
            version: ringraft_proto::PROTOCOL_VERSION,
            status_code: Status::Ok.code(),
        }
        .encode()
        .to_vec();
        bytes.extend_from_slice(
            &ServerLimits {
                frame_bytes_max: FRAME_BYTES_MAX as u32,
                proposal_bytes_max: 1 << 16,
                kv_value_bytes_max: VALUE_MAX,
            }
            .encode(),
        );
        stream.write_all(&bytes).unwrap();
        let mut registers = HashMap::new();
        let mut decoder = FrameDecoder::new(FRAME_BYTES_MAX);
        let mut chunk = [0u8; 4096];
        loop {
            let n = match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            decoder.feed(&chunk[..n]);
            while let Ok(Some(payload)) = decoder.next_frame() {
                let frame = decode_request(&payload).unwrap();
                log.lock().unwrap().push(frame.request.clone());
                let hangs = matches!(&frame.request,
                    Request::KvCas { key, .. } | Request::KvDelete { key, .. } if key == HANG);
                if hangs {
                    continue;
                }
                let response = answer(&mut registers, frame.request);
                let bytes = encode_response_frame(&ResponseFrame {
                    id: frame.id,
                    response,
                })
                .unwrap();
                let _ = stream.write_all(&bytes);
            }
        }
    });
    (dir, path, received)
}

fn connect(path: &Path) -> Client {
    Client::connect(path, Some(Duration::from_secs(10))).unwrap()
}

#[test]
fn get_cas_put_delete_follow_the_versions() {
    let (_dir, path, _received) = serve();
    let client = connect(&path);
    let absent = client.kv_get(b"k", 1000).unwrap();
    assert_eq!(
        (absent.value, absent.version, absent.epoch),
        (None, 0, EPOCH)
    );

    let written = client.kv_cas(b"k", 0, b"one", 1000).unwrap();
    assert_eq!((written.version, written.epoch), (1, EPOCH));
    let entry = client.kv_get(b"k", 1000).unwrap();
    assert_eq!(
        (entry.value.as_deref(), entry.version),
        (Some(&b"one"[..]), 1)
    );

    // Expecting absent when it is not, or an old version: Conflict with the current one.
    for expected in [0, 7] {
        let error = client.kv_cas(b"k", expected, b"x", 1000).unwrap_err();
        assert_eq!(error.status, Status::Conflict, "{error}");
        assert_eq!(error.current_version, Some(1), "{error}");
    }
    assert_eq!(client.kv_put(b"k", b"two", 1000).unwrap().version, 2);
    assert_eq!(client.kv_cas(b"k", 2, b"", 1000).unwrap().version, 3);
    assert_eq!(
        client.kv_get(b"k", 1000).unwrap().value.as_deref(),
        Some(&b""[..]),
        "an empty value is present, not absent"
    );

    let error = client.kv_delete(b"k", 1, 1000).unwrap_err();
    assert_eq!(
        (error.status, error.current_version),
        (Status::Conflict, Some(3))
    );
    assert_eq!(client.kv_delete(b"k", 3, 1000).unwrap().version, 0);
    assert_eq!(client.kv_get(b"k", 1000).unwrap().value, None);
    assert_eq!(
        client
            .kv_delete(b"k", KV_ANY_VERSION, 1000)
            .unwrap()
            .version,
        0
    );
}

#[test]
fn keys_and_values_over_the_limits_are_refused_unsent() {
    let (_dir, path, received) = serve();
    let client = connect(&path);
    let error = client
        .kv_put(b"k", &[0; VALUE_MAX as usize + 1], 1000)
        .unwrap_err();
    assert_eq!(error.status, Status::TooLarge, "{error}");
    assert!(
        error.message.contains("value") && error.message.contains("not sent"),
        "{error}"
    );
    let long_key = vec![b'k'; KV_KEY_BYTES_MAX + 1];
    for error in [
        client.kv_get(&long_key, 1000).unwrap_err(),
        client.kv_put(&long_key, b"v", 1000).unwrap_err(),
        client.kv_delete(&long_key, 1, 1000).unwrap_err(),
    ] {
        assert_eq!(error.status, Status::TooLarge, "{error}");
        assert!(error.message.contains("key"), "{error}");
    }
    let error = client.kv_get(b"", 1000).unwrap_err();
    assert_eq!(error.status, Status::InvalidArgument, "{error}");
    assert!(received.lock().unwrap().is_empty(), "nothing was sent");

    // At the limits exactly: sent and stored.
    let key = vec![b'k'; KV_KEY_BYTES_MAX];
    let value = [9; VALUE_MAX as usize];
    assert_eq!(client.kv_put(&key, &value, 1000).unwrap().version, 1);
    assert_eq!(received.lock().unwrap().len(), 1);
}

#[test]
fn a_write_whose_answer_never_comes_times_out_and_is_not_resent() {
    let (_dir, path, received) = serve();
    let client = Client::connect(&path, Some(Duration::from_millis(200))).unwrap();
    let error = client.kv_put(HANG, b"v", 100).unwrap_err();
    assert_eq!(error.status, Status::Timeout, "{error}");
    assert_eq!(error.current_version, None);
    // The client goes on; the lost write reached the server exactly once.
    assert_eq!(client.kv_put(b"other", b"v", 100).unwrap().version, 1);
    let writes_of_hang = received
        .lock()
        .unwrap()
        .iter()
        .filter(|r| matches!(r, Request::KvCas { key, .. } if key == HANG))
        .count();
    assert_eq!(writes_of_hang, 1);
}
