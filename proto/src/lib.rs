//! ringraft-proto: the local-socket protocol between ringraftd and its clients (libringraft,
//! ringraftctl): messages, framing, the handshake and the status codes. The wire format is written
//! down in docs/protocol.md.

pub mod frame;
pub mod handshake;
pub mod messages;
pub mod status;

pub use frame::{
    decode_request, decode_response, encode_request_frame, encode_response_frame, payload_len,
    FrameDecoder, FrameError, FRAME_BYTES_MAX, FRAME_HEADER_BYTES,
};
pub use handshake::{
    ClientHello, HandshakeError, ServerHello, CLIENT_HELLO_BYTES, MAGIC, PROTOCOL_VERSION,
    SERVER_HELLO_BYTES,
};
pub use messages::*;
pub use status::Status;
