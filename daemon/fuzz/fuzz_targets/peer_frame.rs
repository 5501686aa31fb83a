//! The peer frame decoder over arbitrary bytes: no panic, no allocation beyond the frame limit,
//! and whatever decodes re-encodes to a frame that decodes to the same value.
#![no_main]

use ringraft_daemon::transport::wire::{self, LinkFrame, PeerRequest, PeerResponse};

const FRAME_BYTES_MAX: usize = 1 << 20;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // As a link stream: frames until the first error.
    let _ = wire::decode_link_stream(data, FRAME_BYTES_MAX);

    // Each frame body as every message type that travels between peers.
    for body in wire::FrameSplitter::new(data, FRAME_BYTES_MAX) {
        let Ok(body) = body else { break };
        if let Ok(frame) = wire::decode_body::<LinkFrame>(body) {
            let again = wire::encode_frame(&frame, usize::MAX >> 1).expect("re-encode");
            let decoded = wire::decode_body::<LinkFrame>(&again[4..]).expect("decode re-encoded");
            assert_eq!(decoded, frame);
        }
        if let Ok(request) = wire::decode_body::<PeerRequest>(body) {
            let again = wire::encode_frame(&request, usize::MAX >> 1).expect("re-encode");
            assert_eq!(
                wire::decode_body::<PeerRequest>(&again[4..]).expect("decode"),
                request
            );
        }
        if let Ok(response) = wire::decode_body::<PeerResponse>(body) {
            let again = wire::encode_frame(&response, usize::MAX >> 1).expect("re-encode");
            assert_eq!(
                wire::decode_body::<PeerResponse>(&again[4..]).expect("decode"),
                response
            );
        }
    }
});
