//! Framing: every message after the handshake travels as one frame, a little-endian `u32` payload
//! length followed by that many bytes of rkyv-encoded `RequestFrame` / `ResponseFrame`.
//!
//! Sans-IO: the encoders return bytes, the `FrameDecoder` is fed whatever the socket delivered and
//! hands back complete payloads, so the tokio daemon and a blocking C-library client share it.
//! Payloads are decoded with rkyv's checked API only (bytecheck validates every byte before use).

use rkyv::rancor;
use rkyv::util::AlignedVec;

use crate::messages::{RequestFrame, ResponseFrame};
use crate::status::Status;

/// Bytes of the length prefix in front of every payload.
pub const FRAME_HEADER_BYTES: usize = 4;

/// The largest payload either side ever accepts. A side may configure a smaller limit; nothing
/// configures a larger one.
pub const FRAME_BYTES_MAX: usize = 4 * 1024 * 1024;

/// rkyv's archives need their root aligned; 16 covers every type in `messages`.
const PAYLOAD_ALIGNMENT: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A length prefix (or a message to encode) is larger than the limit in force.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    /// The payload is not a valid archive of the expected message type.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// Serializing a message failed (rkyv reported an error; not expected for these types).
    #[error("cannot encode frame: {0}")]
    Encode(String),
}

impl FrameError {
    /// The status code a peer should be told for this error.
    pub fn status(&self) -> Status {
        match self {
            FrameError::TooLarge { .. } => Status::TooLarge,
            FrameError::Malformed(_) => Status::Malformed,
            FrameError::Encode(_) => Status::Internal,
        }
    }
}

/// Encode one request as a complete frame (length prefix included), refusing payloads larger
/// than `FRAME_BYTES_MAX`.
pub fn encode_request_frame(frame: &RequestFrame) -> Result<Vec<u8>, FrameError> {
    let payload =
        rkyv::to_bytes::<rancor::Error>(frame).map_err(|e| FrameError::Encode(e.to_string()))?;
    prefix_with_length(&payload)
}

/// Encode one response as a complete frame (length prefix included), refusing payloads larger
/// than `FRAME_BYTES_MAX`.
pub fn encode_response_frame(frame: &ResponseFrame) -> Result<Vec<u8>, FrameError> {
    let payload =
        rkyv::to_bytes::<rancor::Error>(frame).map_err(|e| FrameError::Encode(e.to_string()))?;
    prefix_with_length(&payload)
}

fn prefix_with_length(payload: &[u8]) -> Result<Vec<u8>, FrameError> {
    if payload.len() > FRAME_BYTES_MAX {
        return Err(FrameError::TooLarge {
            len: payload.len(),
            max: FRAME_BYTES_MAX,
        });
    }
    let mut bytes = Vec::with_capacity(FRAME_HEADER_BYTES + payload.len());
    // Fits: checked against FRAME_BYTES_MAX, which is far below u32::MAX.
    bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    bytes.extend_from_slice(payload);
    Ok(bytes)
}

/// Read a length prefix and check it against `frame_bytes_max` (for clients that read the header
/// and then exactly the payload with blocking reads).
pub fn payload_len(
    header: [u8; FRAME_HEADER_BYTES],
    frame_bytes_max: usize,
) -> Result<usize, FrameError> {
    let len = u32::from_le_bytes(header) as usize;
    let max = frame_bytes_max.min(FRAME_BYTES_MAX);
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    Ok(len)
}

/// Decode a request payload (without its length prefix), validating every byte first.
pub fn decode_request(payload: &[u8]) -> Result<RequestFrame, FrameError> {
    let aligned = aligned_copy(payload)?;
    rkyv::from_bytes::<RequestFrame, rancor::Error>(&aligned)
        .map_err(|e| FrameError::Malformed(e.to_string()))
}

/// Decode a response payload (without its length prefix), validating every byte first.
pub fn decode_response(payload: &[u8]) -> Result<ResponseFrame, FrameError> {
    let aligned = aligned_copy(payload)?;
    rkyv::from_bytes::<ResponseFrame, rancor::Error>(&aligned)
        .map_err(|e| FrameError::Malformed(e.to_string()))
}

/// Socket buffers carry no alignment promise; rkyv's root must be aligned, so copy first.
fn aligned_copy(payload: &[u8]) -> Result<AlignedVec<PAYLOAD_ALIGNMENT>, FrameError> {
    if payload.len() > FRAME_BYTES_MAX {
        return Err(FrameError::TooLarge {
            len: payload.len(),
            max: FRAME_BYTES_MAX,
        });
    }
    let mut aligned = AlignedVec::<PAYLOAD_ALIGNMENT>::with_capacity(payload.len());
    aligned.extend_from_slice(payload);
    Ok(aligned)
}

/// Push-based frame splitter: `feed` it bytes as they arrive, then call `next_frame` until it
/// returns `Ok(None)`. An oversized length prefix is reported as soon as its 4 bytes are in,
/// before anything is allocated for the payload; after an error the decoder stays failed, since
/// the stream can no longer be split reliably.
#[derive(Debug)]
pub struct FrameDecoder {
    buffer: Vec<u8>,
    /// Bytes at the front of `buffer` already handed out; dropped lazily to keep `feed` cheap.
    consumed: usize,
    frame_bytes_max: usize,
    failed: Option<FrameError>,
}

impl FrameDecoder {
    /// A decoder accepting payloads up to `frame_bytes_max` bytes (capped at `FRAME_BYTES_MAX`).
    pub fn new(frame_bytes_max: usize) -> FrameDecoder {
        FrameDecoder {
            buffer: Vec::new(),
            consumed: 0,
            frame_bytes_max: frame_bytes_max.min(FRAME_BYTES_MAX),
            failed: None,
        }
    }

    pub fn frame_bytes_max(&self) -> usize {
        self.frame_bytes_max
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered_bytes(&self) -> usize {
        self.buffer.len() - self.consumed
    }

    /// Append bytes received from the peer. The buffer never holds more than one incomplete
    /// frame plus what was fed since the last `next_frame`, and the caller bounds the latter by
    /// draining frames after each read.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        if self.consumed > 0 {
            self.buffer.drain(..self.consumed);
            self.consumed = 0;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete payload, `Ok(None)` if more bytes are needed, or the error that ended
    /// this stream.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let pending = &self.buffer[self.consumed..];
        let Some(header) = pending.first_chunk::<FRAME_HEADER_BYTES>() else {
            return Ok(None);
        };
        let len = match payload_len(*header, self.frame_bytes_max) {
            Ok(len) => len,
            Err(error) => {
                self.failed = Some(error.clone());
                self.buffer = Vec::new();
                self.consumed = 0;
                return Err(error);
            }
        };
        let frame_end = FRAME_HEADER_BYTES + len;
        if pending.len() < frame_end {
            return Ok(None);
        }
        let payload = pending[FRAME_HEADER_BYTES..frame_end].to_vec();
        self.consumed += frame_end;
        if self.consumed == self.buffer.len() {
            self.buffer.clear();
            self.consumed = 0;
        }
        Ok(Some(payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{Request, Response};

    fn owner_request(id: u64) -> RequestFrame {
        RequestFrame {
            id,
            request: Request::Owner {
                key: b"user:42".to_vec(),
                linearizable: false,
            },
        }
    }

    #[test]
    fn request_roundtrips_through_decoder() {
        let bytes = encode_request_frame(&owner_request(7)).unwrap();
        let mut decoder = FrameDecoder::new(FRAME_BYTES_MAX);
        decoder.feed(&bytes);
        let payload = decoder.next_frame().unwrap().unwrap();
        assert_eq!(decode_request(&payload).unwrap(), owner_request(7));
        assert_eq!(decoder.next_frame().unwrap(), None);
        assert_eq!(decoder.buffered_bytes(), 0);
    }

    #[test]
    fn frames_split_byte_by_byte_come_out_whole_and_in_order() {
        let mut stream = Vec::new();
        for id in 0..5 {
            stream.extend(encode_request_frame(&owner_request(id)).unwrap());
        }
        let mut decoder = FrameDecoder::new(FRAME_BYTES_MAX);
        let mut ids = Vec::new();
        for byte in &stream {
            decoder.feed(std::slice::from_ref(byte));
            while let Some(payload) = decoder.next_frame().unwrap() {
                ids.push(decode_request(&payload).unwrap().id);
            }
        }
        assert_eq!(ids, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn oversized_length_is_refused_from_the_header_alone() {
        let mut decoder = FrameDecoder::new(1024);
        decoder.feed(&1025u32.to_le_bytes());
        assert_eq!(
            decoder.next_frame(),
            Err(FrameError::TooLarge {
                len: 1025,
                max: 1024
            })
        );
        // The stream cannot be resynchronised: the decoder stays failed.
        decoder.feed(&encode_request_frame(&owner_request(1)).unwrap());
        assert!(matches!(
            decoder.next_frame(),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn configured_limit_is_capped_at_frame_bytes_max() {
        let mut decoder = FrameDecoder::new(usize::MAX);
        assert_eq!(decoder.frame_bytes_max(), FRAME_BYTES_MAX);
        decoder.feed(&u32::MAX.to_le_bytes());
        assert_eq!(decoder.next_frame().unwrap_err().status(), Status::TooLarge);
    }

    #[test]
    fn response_roundtrips_and_garbage_is_malformed() {
        let response = ResponseFrame {
            id: 3,
            response: Response::Error {
                status: Status::NotLeader,
                message: "leader is 2".into(),
            },
        };
        let bytes = encode_response_frame(&response).unwrap();
        assert_eq!(decode_response(&bytes[4..]).unwrap(), response);
        // 0xFF is no variant tag of either enum.
        let garbage = vec![0xFF; 64];
        assert_eq!(
            decode_request(&garbage).unwrap_err().status(),
            Status::Malformed
        );
        assert_eq!(
            decode_response(&garbage).unwrap_err().status(),
            Status::Malformed
        );
    }

    #[test]
    fn empty_and_truncated_payloads_are_malformed() {
        assert!(matches!(decode_request(&[]), Err(FrameError::Malformed(_))));
        let bytes = encode_request_frame(&owner_request(9)).unwrap();
        let payload = &bytes[4..];
        // rkyv's root sits at the end of the archive, so a cut payload can happen to validate as
        // some other request; it must never panic nor pass for the original.
        let mut refused = 0;
        for cut in 0..payload.len() {
            match decode_request(&payload[..cut]) {
                Ok(frame) => assert_ne!(frame, owner_request(9), "cut at {cut}"),
                Err(e) => {
                    assert_eq!(e.status(), Status::Malformed);
                    refused += 1;
                }
            }
        }
        assert!(refused > payload.len() / 2, "only {refused} cuts refused");
    }

    #[test]
    fn encode_refuses_payload_over_the_maximum() {
        let frame = RequestFrame {
            id: 1,
            request: Request::Propose {
                data: vec![0; FRAME_BYTES_MAX],
                timeout_ms: 0,
            },
        };
        assert!(matches!(
            encode_request_frame(&frame),
            Err(FrameError::TooLarge {
                max: FRAME_BYTES_MAX,
                ..
            })
        ));
    }
}
