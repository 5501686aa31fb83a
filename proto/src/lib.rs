//! ringraft-proto: the local-socket protocol between ringraftd and its clients (libringraft,
//! ringraftctl): messages, framing, the handshake and the status codes.

pub mod messages;
pub mod status;

pub use messages::*;
pub use status::Status;
