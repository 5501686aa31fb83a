//! Length-prefix framing, the one used on the local socket and between daemons: a little-endian
//! `u32` payload length followed by that many bytes of a [`crate::codec`] encoding.
//!
//! - [`encode_frame`] / [`encode_frame_into`] build a frame, refusing one over the limit given;
//! - [`parse_frame_header`] checks a length prefix against a limit before anyone allocates;
//! - [`FrameDecoder`] is sans-IO: fed whatever a socket delivered, it hands back whole payloads
//!   (the tokio daemon and the blocking client library share it);
//! - with the `tokio` feature, [`read_frame`] / [`write_frame`] do the same over any tokio
//!   stream (the peer transport's QUIC streams).
//!
//! The local API adds its own caps ([`FRAME_BYTES_MAX`] for requests,
//! [`RESPONSE_FRAME_BYTES_MAX`] for answers) and the typed helpers for its two message
//! types ([`encode_request_frame`], [`decode_request`] and the response pair).

use crate::codec::{self, CodecError, Encode};
use crate::messages::{RequestFrame, ResponseFrame};

/// Bytes of the length prefix in front of every payload.
pub const FRAME_HEADER_BYTES: usize = 4;

/// The largest local-socket request payload the daemon ever accepts. It may configure a smaller
/// limit; nothing configures a larger one. (Peer frames have their own, configured, limit.)
pub const FRAME_BYTES_MAX: usize = 4 * 1024 * 1024;

/// The largest local-socket answer payload: a whole ring is about 1.1 KiB per member with its
/// record, so 64 MiB carries one of some 60,000 members (4 MiB stopped near 3,800). Clients read
/// answers up to this; requests stay within [`FRAME_BYTES_MAX`].
pub const RESPONSE_FRAME_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Appends one frame (length prefix + encoding of `value`) to `out`, refusing a payload larger
/// than `frame_bytes_max` (or than a `u32` can count). `out` is untouched on error.
pub fn encode_frame_into<T: Encode>(
    value: &T,
    frame_bytes_max: usize,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    let payload = codec::encode(value)?;
    let max = frame_bytes_max.min(u32::MAX as usize);
    if payload.len() > max {
        return Err(CodecError::TooLarge {
            len: payload.len(),
            max,
        });
    }
    out.reserve(FRAME_HEADER_BYTES + payload.len());
    // Fits: checked against u32::MAX just above.
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(())
}

/// One frame for `value`, as a fresh buffer.
pub fn encode_frame<T: Encode>(value: &T, frame_bytes_max: usize) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    encode_frame_into(value, frame_bytes_max, &mut out)?;
    Ok(out)
}

/// Reads a length prefix and checks it against `frame_bytes_max` before anyone allocates for the
/// payload. A length of 0 is refused: no value encodes to nothing.
pub fn parse_frame_header(
    header: [u8; FRAME_HEADER_BYTES],
    frame_bytes_max: usize,
) -> Result<usize, CodecError> {
    let len = u32::from_le_bytes(header) as usize;
    if len == 0 {
        return Err(CodecError::Empty);
    }
    if len > frame_bytes_max {
        return Err(CodecError::TooLarge {
            len,
            max: frame_bytes_max,
        });
    }
    Ok(len)
}

/// Encodes one local-socket request as a complete frame, refusing payloads over
/// `FRAME_BYTES_MAX`.
pub fn encode_request_frame(frame: &RequestFrame) -> Result<Vec<u8>, CodecError> {
    encode_frame(frame, FRAME_BYTES_MAX)
}

/// Encodes one local-socket response as a complete frame, refusing payloads over
/// `RESPONSE_FRAME_BYTES_MAX`.
pub fn encode_response_frame(frame: &ResponseFrame) -> Result<Vec<u8>, CodecError> {
    encode_frame(frame, RESPONSE_FRAME_BYTES_MAX)
}

/// Decodes a request payload (without its length prefix), validating every byte first.
pub fn decode_request(payload: &[u8]) -> Result<RequestFrame, CodecError> {
    codec::decode(payload)
}

/// Decodes a response payload (without its length prefix), validating every byte first.
pub fn decode_response(payload: &[u8]) -> Result<ResponseFrame, CodecError> {
    codec::decode(payload)
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
    failed: Option<CodecError>,
}

impl FrameDecoder {
    /// A decoder accepting payloads up to `frame_bytes_max` bytes.
    pub fn new(frame_bytes_max: usize) -> FrameDecoder {
        FrameDecoder {
            buffer: Vec::new(),
            consumed: 0,
            frame_bytes_max,
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
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, CodecError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let pending = &self.buffer[self.consumed..];
        let Some(header) = pending.first_chunk::<FRAME_HEADER_BYTES>() else {
            return Ok(None);
        };
        let len = match parse_frame_header(*header, self.frame_bytes_max) {
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

    /// The stream has ended: an error if it ended inside a frame (or had failed before).
    pub fn finish(&self) -> Result<(), CodecError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        if self.buffered_bytes() > 0 {
            return Err(CodecError::Truncated);
        }
        Ok(())
    }
}

#[cfg(feature = "tokio")]
pub use self::tokio_io::{read_frame, write_frame, ReadFrameError};

#[cfg(feature = "tokio")]
mod tokio_io {
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

    use super::{encode_frame, parse_frame_header, FRAME_HEADER_BYTES};
    use crate::codec::{CodecError, Encode, Encoded};

    /// Why [`read_frame`] returned no frame.
    #[derive(Debug, thiserror::Error)]
    pub enum ReadFrameError {
        /// The bytes are not a valid frame: the stream cannot be trusted any more.
        #[error(transparent)]
        Frame(#[from] CodecError),
        /// The stream itself failed.
        #[error("stream: {0}")]
        Io(#[from] std::io::Error),
    }

    /// Reads one frame's payload into an aligned buffer (so that [`crate::codec::decode`] needs
    /// no copy). `Ok(None)` when the stream ends cleanly between frames; an end inside a frame is
    /// `CodecError::Truncated`. The length is checked before the payload buffer is allocated.
    pub async fn read_frame<R: AsyncRead + Unpin>(
        reader: &mut R,
        frame_bytes_max: usize,
    ) -> Result<Option<Encoded>, ReadFrameError> {
        let mut header = [0u8; FRAME_HEADER_BYTES];
        let mut filled = 0;
        while filled < FRAME_HEADER_BYTES {
            match reader.read(&mut header[filled..]).await? {
                0 if filled == 0 => return Ok(None),
                0 => return Err(CodecError::Truncated.into()),
                read => filled += read,
            }
        }
        let len = parse_frame_header(header, frame_bytes_max)?;
        let mut payload = Encoded::with_capacity(len);
        payload.resize(len, 0);
        match reader.read_exact(&mut payload).await {
            Ok(_) => Ok(Some(payload)),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Err(CodecError::Truncated.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Writes `value` as one frame, refusing a payload over `frame_bytes_max`.
    pub async fn write_frame<W: AsyncWrite + Unpin, T: Encode>(
        writer: &mut W,
        value: &T,
        frame_bytes_max: usize,
    ) -> Result<(), ReadFrameError> {
        let frame = encode_frame(value, frame_bytes_max)?;
        writer.write_all(&frame).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{Request, Response};
    use crate::status::Status;

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
        assert_eq!(decoder.finish(), Ok(()));
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
        let error = decoder.next_frame().unwrap_err();
        assert_eq!(
            error,
            CodecError::TooLarge {
                len: 1025,
                max: 1024
            }
        );
        assert_eq!(error.status(), Status::TooLarge);
        assert_eq!(
            error.to_string(),
            "frame of 1025 bytes exceeds the limit of 1024 bytes"
        );
        // The stream cannot be resynchronised: the decoder stays failed.
        decoder.feed(&encode_request_frame(&owner_request(1)).unwrap());
        assert!(matches!(
            decoder.next_frame(),
            Err(CodecError::TooLarge { .. })
        ));
        assert!(decoder.finish().is_err());
    }

    #[test]
    fn zero_length_prefix_is_refused() {
        assert_eq!(parse_frame_header([0; 4], 10), Err(CodecError::Empty));
        assert_eq!(
            parse_frame_header(11u32.to_le_bytes(), 10),
            Err(CodecError::TooLarge { len: 11, max: 10 })
        );
        assert_eq!(parse_frame_header(10u32.to_le_bytes(), 10), Ok(10));
        let mut decoder = FrameDecoder::new(FRAME_BYTES_MAX);
        decoder.feed(&[0, 0, 0, 0]);
        assert_eq!(
            decoder.next_frame().unwrap_err().status(),
            Status::Malformed
        );
    }

    #[test]
    fn a_stream_that_ends_inside_a_frame_is_truncated() {
        let bytes = encode_request_frame(&owner_request(3)).unwrap();
        for cut in 1..bytes.len() {
            let mut decoder = FrameDecoder::new(FRAME_BYTES_MAX);
            decoder.feed(&bytes[..cut]);
            assert_eq!(decoder.next_frame(), Ok(None), "cut at {cut}");
            assert_eq!(decoder.finish(), Err(CodecError::Truncated), "cut at {cut}");
        }
        assert_eq!(
            CodecError::Truncated.to_string(),
            "the stream ended inside a frame"
        );
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
        for error in [
            decode_request(&garbage).unwrap_err(),
            decode_response(&garbage).unwrap_err(),
        ] {
            assert_eq!(error.status(), Status::Malformed);
            assert!(!error.to_string().contains("debug assertions"), "{error}");
        }
    }

    #[test]
    fn empty_and_truncated_payloads_are_malformed() {
        assert!(matches!(
            decode_request(&[]),
            Err(CodecError::Malformed { .. })
        ));
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

    /// A whole ring of ~10,000 members (about 12 MB) is one answer: larger than any request may
    /// be, within the answers' limit, and read whole by a decoder at that limit.
    #[test]
    fn answers_may_exceed_the_request_limit_up_to_their_own() {
        let ring_of_ten_thousand = ResponseFrame {
            id: 7,
            response: Response::Ring {
                epoch: 3,
                ring: vec![0xab; 10_000 * 1_042],
                members: Vec::new(),
                replication_factor: 3,
            },
        };
        let bytes = encode_response_frame(&ring_of_ten_thousand).unwrap();
        assert!(bytes.len() > FRAME_BYTES_MAX);
        let mut decoder = FrameDecoder::new(RESPONSE_FRAME_BYTES_MAX);
        decoder.feed(&bytes);
        let payload = decoder.next_frame().unwrap().unwrap();
        assert_eq!(decode_response(&payload).unwrap(), ring_of_ten_thousand);

        let too_large = ResponseFrame {
            id: 8,
            response: Response::Ring {
                epoch: 3,
                ring: vec![0; RESPONSE_FRAME_BYTES_MAX],
                members: Vec::new(),
                replication_factor: 3,
            },
        };
        assert!(matches!(
            encode_response_frame(&too_large),
            Err(CodecError::TooLarge {
                max: RESPONSE_FRAME_BYTES_MAX,
                ..
            })
        ));
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
            Err(CodecError::TooLarge {
                max: FRAME_BYTES_MAX,
                ..
            })
        ));
        let mut out = vec![1, 2, 3];
        assert!(encode_frame_into(&owner_request(1), 8, &mut out).is_err());
        assert_eq!(out, vec![1, 2, 3], "untouched on error");
    }

    #[cfg(feature = "tokio")]
    #[tokio::test]
    async fn async_read_and_write_share_the_checks() {
        let mut stream = Vec::new();
        write_frame(&mut stream, &owner_request(4), FRAME_BYTES_MAX)
            .await
            .unwrap();
        let mut reader = &stream[..];
        let payload = read_frame(&mut reader, FRAME_BYTES_MAX)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(decode_request(&payload).unwrap(), owner_request(4));
        assert!(read_frame(&mut reader, FRAME_BYTES_MAX)
            .await
            .unwrap()
            .is_none());
        // Cut inside the header and inside the payload: truncated.
        for cut in [2, stream.len() - 1] {
            let mut reader = &stream[..cut];
            let error = read_frame(&mut reader, FRAME_BYTES_MAX).await.unwrap_err();
            assert!(
                matches!(error, ReadFrameError::Frame(CodecError::Truncated)),
                "cut at {cut}: {error}"
            );
        }
        let mut reader = &stream[..];
        assert!(matches!(
            read_frame(&mut reader, 4).await,
            Err(ReadFrameError::Frame(CodecError::TooLarge { max: 4, .. }))
        ));
    }
}
