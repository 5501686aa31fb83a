//! What travels between daemons: frames of `u32` little-endian length + rkyv bytes, and the
//! values inside them.
//!
//! Everything here is decoded from bytes a peer chose, so: the length is checked against a
//! maximum before anything is allocated, the body is copied into an aligned buffer and checked
//! with bytecheck (`rkyv::from_bytes`), and every failure is an error value, never a panic.

use rkyv::rancor;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Serialize};

use ringraft_raft::{Message, NodeId};

/// Bytes of the length prefix.
pub const FRAME_HEADER_BYTES: usize = 4;
/// Version of the peer protocol carried in [`Hello`]; peers with another version are refused.
pub const PEER_PROTOCOL_VERSION: u32 = 1;
/// ALPN of a connection that carries Raft traffic between two members.
pub const LINK_ALPN: &[u8] = b"ringraft-link/1";
/// ALPN of a short connection that carries one or more [`PeerRequest`] calls.
pub const CALL_ALPN: &[u8] = b"ringraft-call/1";

/// The first frame each side sends on a link connection's handshake stream.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Hello {
    pub version: u32,
    /// The node id the sender claims; must equal the id in its certificate.
    pub node_id: NodeId,
    /// Random per process start: a new value means the peer restarted, so a connection made
    /// with an older value is stale even if it has not timed out yet.
    pub incarnation: u64,
}

/// A frame on a link connection.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum LinkFrame {
    /// Only on the handshake (bidirectional) stream.
    Hello(Hello),
    /// Only on unidirectional streams.
    Raft(Message),
}

/// A daemon-level request from one node to a member (not Raft traffic).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum PeerRequest {
    /// A new node asks to join the cluster as a learner.
    Join {
        id: NodeId,
        name: String,
        /// The QUIC address the new node listens on, as `host:port`.
        address: String,
        zone: Option<String>,
        weight: u32,
    },
    /// A member forwards an admin request of its local API (rkyv-encoded
    /// `ringraft_proto::Request`) to the node it believes leads.
    Admin { request: Vec<u8> },
    /// A member that has not heard from a leader for a while asks whether the caller (its
    /// certified id) is still a member: a node removed while it was down or partitioned never
    /// receives the entry that removes it.
    Membership,
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum PeerResponse {
    JoinResult {
        /// A `ringraft_proto::Status` code.
        status: u32,
        message: String,
        /// When the member is not the leader: the leader's QUIC address, if known.
        leader_address: Option<String>,
    },
    /// The rkyv-encoded `ringraft_proto::Response` to an `Admin` request.
    Admin { response: Vec<u8> },
    /// The answer to `Membership`, from the answering node's applied state.
    Membership {
        /// Whether the caller is a member in that state.
        member: bool,
        /// The index that state stands for: only a state at or past the caller's own can show
        /// that the caller was removed.
        applied_index: u64,
        /// The ring epoch of that state.
        epoch: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the maximum of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("empty frame")]
    Empty,
    #[error("frame body is not a valid message: {0}")]
    Malformed(String),
    #[error("stream ended inside a frame")]
    Truncated,
    #[error("cannot encode frame: {0}")]
    Encode(String),
}

/// Reads the length prefix and checks it before anyone allocates for the body.
pub fn parse_frame_header(
    header: [u8; FRAME_HEADER_BYTES],
    frame_bytes_max: usize,
) -> Result<usize, FrameError> {
    let len = u32::from_le_bytes(header) as usize;
    if len == 0 {
        return Err(FrameError::Empty);
    }
    if len > frame_bytes_max {
        return Err(FrameError::TooLarge {
            len,
            max: frame_bytes_max,
        });
    }
    Ok(len)
}

/// Checks and deserializes a frame body. `body` may have any alignment: it is copied into an
/// aligned buffer first (rkyv requires it), then validated by bytecheck.
pub fn decode_body<T>(body: &[u8]) -> Result<T, FrameError>
where
    T: Archive,
    T::Archived: for<'a> rkyv::bytecheck::CheckBytes<rkyv::api::high::HighValidator<'a, rancor::Error>>
        + Deserialize<T, rkyv::api::high::HighDeserializer<rancor::Error>>,
{
    let mut aligned = AlignedVec::<16>::with_capacity(body.len());
    aligned.extend_from_slice(body);
    decode_aligned(&aligned)
}

/// Like [`decode_body`] for a body that is already in an aligned buffer.
pub fn decode_aligned<T>(body: &AlignedVec<16>) -> Result<T, FrameError>
where
    T: Archive,
    T::Archived: for<'a> rkyv::bytecheck::CheckBytes<rkyv::api::high::HighValidator<'a, rancor::Error>>
        + Deserialize<T, rkyv::api::high::HighDeserializer<rancor::Error>>,
{
    if body.is_empty() {
        return Err(FrameError::Empty);
    }
    rkyv::from_bytes::<T, rancor::Error>(body).map_err(|e| FrameError::Malformed(e.to_string()))
}

/// Appends one frame (length prefix + rkyv bytes) for `value` to `out`.
pub fn encode_frame_into<T>(
    value: &T,
    frame_bytes_max: usize,
    out: &mut Vec<u8>,
) -> Result<(), FrameError>
where
    T: for<'a> Serialize<
        rkyv::api::high::HighSerializer<
            AlignedVec,
            rkyv::ser::allocator::ArenaHandle<'a>,
            rancor::Error,
        >,
    >,
{
    let body =
        rkyv::to_bytes::<rancor::Error>(value).map_err(|e| FrameError::Encode(e.to_string()))?;
    if body.len() > frame_bytes_max || body.len() > u32::MAX as usize {
        return Err(FrameError::TooLarge {
            len: body.len(),
            max: frame_bytes_max,
        });
    }
    out.reserve(FRAME_HEADER_BYTES + body.len());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(())
}

/// One frame for `value`, as a fresh buffer.
pub fn encode_frame<T>(value: &T, frame_bytes_max: usize) -> Result<Vec<u8>, FrameError>
where
    T: for<'a> Serialize<
        rkyv::api::high::HighSerializer<
            AlignedVec,
            rkyv::ser::allocator::ArenaHandle<'a>,
            rancor::Error,
        >,
    >,
{
    let mut out = Vec::new();
    encode_frame_into(value, frame_bytes_max, &mut out)?;
    Ok(out)
}

/// A sans-IO splitter over a byte buffer holding consecutive frames: the same checks as the
/// stream reader, for the fuzzer and for tests.
pub struct FrameSplitter<'a> {
    rest: &'a [u8],
    frame_bytes_max: usize,
    failed: bool,
}

impl<'a> FrameSplitter<'a> {
    pub fn new(bytes: &'a [u8], frame_bytes_max: usize) -> FrameSplitter<'a> {
        FrameSplitter {
            rest: bytes,
            frame_bytes_max,
            failed: false,
        }
    }
}

impl<'a> Iterator for FrameSplitter<'a> {
    /// A frame body, or the error that ends the stream.
    type Item = Result<&'a [u8], FrameError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let result = split_one(self.rest, self.frame_bytes_max);
        match result {
            Ok((body, rest)) => {
                self.rest = rest;
                Some(Ok(body))
            }
            Err(e) => {
                // A stream cannot resynchronise after a bad length: stop, like the reader does.
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

fn split_one(bytes: &[u8], frame_bytes_max: usize) -> Result<(&[u8], &[u8]), FrameError> {
    let (header, rest) = bytes
        .split_first_chunk::<FRAME_HEADER_BYTES>()
        .ok_or(FrameError::Truncated)?;
    let len = parse_frame_header(*header, frame_bytes_max)?;
    if rest.len() < len {
        return Err(FrameError::Truncated);
    }
    Ok(rest.split_at(len))
}

/// Decodes a byte buffer the way a link stream reader would: frames until the first error.
/// Returns how many frames decoded, and the error that stopped it (if any). The fuzz target.
pub fn decode_link_stream(bytes: &[u8], frame_bytes_max: usize) -> (usize, Option<FrameError>) {
    let mut decoded = 0;
    for body in FrameSplitter::new(bytes, frame_bytes_max) {
        match body.and_then(decode_body::<LinkFrame>) {
            Ok(_) => decoded += 1,
            Err(e) => return (decoded, Some(e)),
        }
    }
    (decoded, None)
}
