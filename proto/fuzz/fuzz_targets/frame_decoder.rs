//! Fuzz the local-socket frame decoder and the checked rkyv decode behind it: any byte stream,
//! split at fuzzer-chosen points and with a fuzzer-chosen limit, must yield frames within the
//! limit or typed errors, never a panic or an out-of-bounds read.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ringraft_proto::{decode_request, decode_response, FrameDecoder, FRAME_BYTES_MAX};

fuzz_target!(|data: &[u8]| {
    let Some((&control, stream)) = data.split_first() else {
        return;
    };
    let limit = match control & 3 {
        0 => 64,
        1 => 4096,
        _ => FRAME_BYTES_MAX,
    };
    let chunk = 1 + (control >> 2) as usize;
    let mut decoder = FrameDecoder::new(limit);
    for part in stream.chunks(chunk) {
        decoder.feed(part);
        loop {
            match decoder.next_frame() {
                Ok(Some(payload)) => {
                    assert!(payload.len() <= limit);
                    let _ = decode_request(&payload);
                    let _ = decode_response(&payload);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
