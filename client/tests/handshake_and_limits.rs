//! The client against a scripted server: it learns the daemon's limits in the handshake and
//! refuses, unsent, what the daemon would refuse for its size; it reports another protocol
//! version with both numbers.

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::Duration;

use ringraft_client::{Client, Status};
use ringraft_proto::{
    decode_request, encode_response_frame, FrameDecoder, Request, Response, ResponseFrame,
    ServerHello, ServerLimits, CLIENT_HELLO_BYTES, FRAME_BYTES_MAX, PROTOCOL_VERSION,
};

const WAIT: Option<Duration> = Some(Duration::from_secs(10));

/// Serves one connection: answers the hello with `hello` (+ `limits` after an ok), then answers
/// every request `Proposed{index: 1}`; returns the requests it received once the client is gone.
fn serve_one(
    hello: ServerHello,
    limits: ServerLimits,
) -> (tempfile::TempDir, PathBuf, JoinHandle<Vec<Request>>) {
    serve_one_answering(hello, limits, |_| Response::Proposed { index: 1 })
}

/// [`serve_one`], answering each request with `answer(request)`.
fn serve_one_answering(
    hello: ServerHello,
    limits: ServerLimits,
    answer: fn(&Request) -> Response,
) -> (tempfile::TempDir, PathBuf, JoinHandle<Vec<Request>>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fake.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut client_hello = [0u8; CLIENT_HELLO_BYTES];
        stream.read_exact(&mut client_hello).unwrap();
        let mut bytes = hello.encode().to_vec();
        if hello.status() == Some(Status::Ok) {
            bytes.extend_from_slice(&limits.encode());
        }
        stream.write_all(&bytes).unwrap();
        let mut decoder = FrameDecoder::new(FRAME_BYTES_MAX);
        let mut received = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return received,
                Ok(n) => n,
            };
            decoder.feed(&chunk[..n]);
            while let Ok(Some(payload)) = decoder.next_frame() {
                let frame = decode_request(&payload).unwrap();
                let answer = ResponseFrame {
                    id: frame.id,
                    response: answer(&frame.request),
                };
                received.push(frame.request);
                let _ = stream.write_all(&encode_response_frame(&answer).unwrap());
            }
        }
    });
    (dir, path, server)
}

fn ok_hello() -> ServerHello {
    ServerHello {
        version: ringraft_proto::PROTOCOL_VERSION,
        status_code: Status::Ok.code(),
    }
}

/// A whole ring of ~10,000 members is an answer larger than any request may be: the client reads
/// it (answers have their own, larger, limit).
#[test]
fn an_answer_larger_than_the_request_limit_is_read_whole() {
    let limits = ServerLimits {
        frame_bytes_max: FRAME_BYTES_MAX as u32,
        proposal_bytes_max: FRAME_BYTES_MAX as u32,
        kv_value_bytes_max: 1024,
    };
    let (_dir, path, _server) = serve_one_answering(ok_hello(), limits, |_| Response::Ring {
        epoch: 9,
        ring: vec![0xab; 10_000 * 1_042],
        members: Vec::new(),
        replication_factor: 3,
    });
    let client = Client::connect(&path, WAIT).unwrap();
    let answer = client.ring(false).unwrap();
    assert_eq!(answer.ring.len(), 10_000 * 1_042);
}

#[test]
fn requests_over_the_daemons_limits_are_refused_unsent() {
    let limits = ServerLimits {
        frame_bytes_max: 1024,
        proposal_bytes_max: 100,
        kv_value_bytes_max: 100,
    };
    let (_dir, path, server) = serve_one(ok_hello(), limits);
    let client = Client::connect(&path, WAIT).unwrap();
    assert_eq!(client.limits(), limits);

    let error = client.propose(&[7; 101], 1000).unwrap_err();
    assert_eq!(error.status, Status::TooLarge, "{error}");
    assert!(error.message.contains("proposal"), "{error}");
    assert!(error.message.contains("not sent"), "{error}");

    // Within the proposal limit of a generous daemon but over its frame limit.
    let error = client.owner(&[1; 2000], false).unwrap_err();
    assert_eq!(error.status, Status::TooLarge, "{error}");
    assert!(error.message.contains("frame"), "{error}");

    // Over what any daemon reads: refused while encoding.
    let error = client
        .propose(&vec![0; FRAME_BYTES_MAX + 1], 1000)
        .unwrap_err();
    assert_eq!(error.status, Status::TooLarge, "{error}");

    // The connection is still good, and only this one request ever reached the server.
    assert_eq!(client.propose(&[7; 100], 1000).unwrap(), 1);
    drop(client);
    let received = server.join().unwrap();
    assert_eq!(received.len(), 1, "{received:?}");
    assert!(matches!(&received[0], Request::Propose { data, .. } if data.len() == 100));
}

#[test]
fn another_protocol_version_is_reported_with_both_numbers() {
    let refusal = ServerHello {
        version: 9,
        status_code: Status::UnsupportedVersion.code(),
    };
    let (_dir, path, _server) = serve_one(
        refusal,
        ServerLimits {
            frame_bytes_max: 0,
            proposal_bytes_max: 0,
            kv_value_bytes_max: 0,
        },
    );
    let error = Client::connect(&path, WAIT).err().expect("refused");
    assert_eq!(error.status, Status::UnsupportedVersion);
    assert!(
        error.message.contains("version 9")
            && error
                .message
                .contains(&format!("speaks {PROTOCOL_VERSION}")),
        "{error}"
    );
}

#[test]
fn an_ok_from_a_server_of_another_version_is_not_trusted() {
    // A version-1 server never sends limits; taking its ok would misread its first answer.
    let old = ServerHello {
        version: 1,
        status_code: Status::Ok.code(),
    };
    let (_dir, path, _server) = serve_one(
        old,
        ServerLimits {
            frame_bytes_max: 0,
            proposal_bytes_max: 0,
            kv_value_bytes_max: 0,
        },
    );
    let error = Client::connect(&path, WAIT).err().expect("refused");
    assert_eq!(error.status, Status::UnsupportedVersion, "{error}");
}
