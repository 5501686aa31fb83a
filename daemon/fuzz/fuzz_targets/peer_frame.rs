//! The peer frame decoder over arbitrary bytes: no panic, no allocation beyond the frame limit,
//! and whatever decodes re-encodes to a frame that decodes to the same value.
#![no_main]

use ringraft_daemon::transport::wire::{self, LinkFrame, PeerRequest, PeerResponse};
use ringraft_proto::codec::decode;
use ringraft_proto::{encode_frame, FrameDecoder};

const FRAME_BYTES_MAX: usize = 1 << 20;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // As a link stream: frames until the first error.
    let _ = wire::decode_link_stream(data, FRAME_BYTES_MAX);

    // Each frame body as every message type that travels between peers.
    let mut frames = FrameDecoder::new(FRAME_BYTES_MAX);
    frames.feed(data);
    while let Ok(Some(body)) = frames.next_frame() {
        let body = &body[..];
        if let Ok(frame) = decode::<LinkFrame>(body) {
            let again = encode_frame(&frame, usize::MAX >> 1).expect("re-encode");
            let decoded = decode::<LinkFrame>(&again[4..]).expect("decode re-encoded");
            assert_eq!(decoded, frame);
        }
        if let Ok(request) = decode::<PeerRequest>(body) {
            let again = encode_frame(&request, usize::MAX >> 1).expect("re-encode");
            assert_eq!(
                decode::<PeerRequest>(&again[4..]).expect("decode"),
                request
            );
        }
        if let Ok(response) = decode::<PeerResponse>(body) {
            let again = encode_frame(&response, usize::MAX >> 1).expect("re-encode");
            assert_eq!(
                decode::<PeerResponse>(&again[4..]).expect("decode"),
                response
            );
        }
    }
});
