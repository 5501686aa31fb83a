//! What travels between daemons: the values inside the frames.
//!
//! Framing and decoding are `ringraft_proto`'s, the same as on the local socket (`frame`,
//! `codec`): the length is checked against the configured maximum before anything is allocated,
//! the body is checked with bytecheck before use, and every failure is an error value, never a
//! panic.

use ringraft_proto::codec::{self, CodecError};
use ringraft_proto::frame::FrameDecoder;
use rkyv::{Archive, Deserialize, Serialize};

use ringraft_raft::{Message, NodeId};

/// Version of the link protocol carried in [`Hello`]; peers with another version are refused.
/// 2: `LinkFrame::Registers`.
pub const PEER_PROTOCOL_VERSION: u32 = 2;
/// ALPN of a connection that carries Raft and register traffic between two members. The version
/// is in the ALPN too, so a member of another link version fails the TLS handshake instead of
/// misreading a frame.
pub const LINK_ALPN: &[u8] = b"ringraft-link/2";
/// ALPN of a short connection that carries one or more [`PeerRequest`] calls. The version is in
/// the ALPN, so a member of another call version fails the TLS handshake ("no application
/// protocol") instead of misreading a call. 2: `Admin` carries the typed request and answer
/// (version 1 carried their rkyv bytes inside the frame).
pub const CALL_ALPN: &[u8] = b"ringraft-call/2";

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
    /// A per-key register message (only on unidirectional streams).
    Registers(super::register_wire::RegisterMessage),
    /// A register request forwarded to the key's owner, the one proposer that keeps the key's
    /// next ballot promised (one round trip); answered with `RegisterAnswer` of the same `call`.
    RegisterCall {
        call: u64,
        request: ringraft_proto::Request,
    },
    RegisterAnswer {
        call: u64,
        response: ringraft_proto::Response,
    },
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
    /// A member forwards an admin request of its local API to the node it believes leads.
    Admin { request: ringraft_proto::Request },
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
    /// The answer to an `Admin` request.
    Admin { response: ringraft_proto::Response },
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

/// Decodes a byte buffer the way a link stream reader would: frames until the first error.
/// Returns how many frames decoded, and the error that stopped it (if any). The fuzz target.
pub fn decode_link_stream(bytes: &[u8], frame_bytes_max: usize) -> (usize, Option<CodecError>) {
    let mut decoder = FrameDecoder::new(frame_bytes_max);
    decoder.feed(bytes);
    let mut decoded = 0;
    loop {
        match decoder.next_frame() {
            Ok(Some(body)) => match codec::decode::<LinkFrame>(&body) {
                Ok(_) => decoded += 1,
                Err(e) => return (decoded, Some(e)),
            },
            Ok(None) => return (decoded, decoder.finish().err()),
            Err(e) => return (decoded, Some(e)),
        }
    }
}
