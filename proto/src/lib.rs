//! ringraft-proto: the local-socket protocol between ringraftd and its clients (libringraft,
//! ringraftctl): messages, framing, the handshake and the status codes; and the one checked
//! codec and framing that the daemon also uses between peers and for its state commands. The
//! local wire format is written down in docs/protocol.md.

pub mod codec;
pub mod frame;
pub mod handshake;
pub mod limits;
pub mod messages;
pub mod status;

pub use codec::{decode, encode, CodecError};
pub use frame::{
    decode_request, decode_response, encode_frame, encode_frame_into, encode_request_frame,
    encode_response_frame, parse_frame_header, FrameDecoder, FRAME_BYTES_MAX, FRAME_HEADER_BYTES,
    RESPONSE_FRAME_BYTES_MAX,
};
pub use handshake::{
    ClientHello, HandshakeError, ServerHello, ServerLimits, CLIENT_HELLO_BYTES, MAGIC,
    PROTOCOL_VERSION, SERVER_HELLO_BYTES, SERVER_LIMITS_BYTES,
};
pub use messages::*;
pub use status::Status;
