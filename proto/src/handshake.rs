//! The handshake: fixed little-endian binary, deliberately not rkyv, so that any two versions can
//! always tell each other apart even if their message layouts differ.
//!
//! Client → server, 12 bytes: magic `b"RINGRAFT"`, `u16` protocol version, `u16` reserved (0).
//! Server → client, 14 bytes: magic, `u16` the server's protocol version, `u32` status code
//! (`Status::Ok`, or `Status::UnsupportedVersion` after which the server closes the connection).
//! After `Ok` only, and since version 2, more bytes (8 in version 2, 12 since 3): the server's limits ([`ServerLimits`]).
//! The first 14 bytes never change shape, so a client of any version reads a refusal whole and
//! can say which versions differ.

use crate::status::Status;

pub const MAGIC: [u8; 8] = *b"RINGRAFT";

/// The protocol version this crate speaks. Bumped whenever a message layout changes.
/// 1: the first. 2: the server's `Ok` hello is followed by its [`ServerLimits`]. 3: the per-key
/// register requests (`KvGet`, `KvCas`, `KvDelete`), and `kv_value_bytes_max` in the limits.
/// 4: `RingSince`, answered by `RingDelta` (a cached ring follows in O(change) bytes).
pub const PROTOCOL_VERSION: u16 = 4;

pub const CLIENT_HELLO_BYTES: usize = 12;
pub const SERVER_HELLO_BYTES: usize = 14;
/// Bytes of the limits that follow a server's `Ok` hello.
pub const SERVER_LIMITS_BYTES: usize = 12;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("the peer does not speak the ringraft protocol (bad magic {0:02x?})")]
    BadMagic([u8; 8]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientHello {
    pub version: u16,
}

impl ClientHello {
    /// The hello of a client speaking this crate's version.
    pub fn current() -> ClientHello {
        ClientHello {
            version: PROTOCOL_VERSION,
        }
    }

    pub fn encode(&self) -> [u8; CLIENT_HELLO_BYTES] {
        let mut bytes = [0u8; CLIENT_HELLO_BYTES];
        bytes[..8].copy_from_slice(&MAGIC);
        bytes[8..10].copy_from_slice(&self.version.to_le_bytes());
        // bytes[10..12]: reserved, sent as zero and ignored on receipt.
        bytes
    }

    pub fn decode(bytes: &[u8; CLIENT_HELLO_BYTES]) -> Result<ClientHello, HandshakeError> {
        check_magic(bytes)?;
        Ok(ClientHello {
            version: u16::from_le_bytes([bytes[8], bytes[9]]),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerHello {
    pub version: u16,
    /// Kept as the raw code so a client can report a status it does not know by number.
    pub status_code: u32,
}

impl ServerHello {
    /// The server's answer to `hello`: Ok when it speaks the same version.
    pub fn answer(hello: &ClientHello) -> ServerHello {
        let status = if hello.version == PROTOCOL_VERSION {
            Status::Ok
        } else {
            Status::UnsupportedVersion
        };
        ServerHello {
            version: PROTOCOL_VERSION,
            status_code: status.code(),
        }
    }

    /// `None` for a code this version does not know.
    pub fn status(&self) -> Option<Status> {
        Status::from_code(self.status_code)
    }

    pub fn encode(&self) -> [u8; SERVER_HELLO_BYTES] {
        let mut bytes = [0u8; SERVER_HELLO_BYTES];
        bytes[..8].copy_from_slice(&MAGIC);
        bytes[8..10].copy_from_slice(&self.version.to_le_bytes());
        bytes[10..14].copy_from_slice(&self.status_code.to_le_bytes());
        bytes
    }

    pub fn decode(bytes: &[u8; SERVER_HELLO_BYTES]) -> Result<ServerHello, HandshakeError> {
        check_magic(bytes)?;
        Ok(ServerHello {
            version: u16::from_le_bytes([bytes[8], bytes[9]]),
            status_code: u32::from_le_bytes([bytes[10], bytes[11], bytes[12], bytes[13]]),
        })
    }
}

/// What the server accepts, sent right after its `Ok` hello so that a client can refuse a request
/// the server would refuse, instead of sending it (a frame over the limit would cost the
/// connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// The largest request payload (frame without its length prefix) the server reads.
    pub frame_bytes_max: u32,
    /// The largest proposal (`Request::Propose` data) the cluster commits.
    pub proposal_bytes_max: u32,
    /// The largest register value (`Request::KvCas` value) the cluster stores.
    pub kv_value_bytes_max: u32,
}

impl ServerLimits {
    pub fn encode(&self) -> [u8; SERVER_LIMITS_BYTES] {
        let mut bytes = [0u8; SERVER_LIMITS_BYTES];
        bytes[..4].copy_from_slice(&self.frame_bytes_max.to_le_bytes());
        bytes[4..8].copy_from_slice(&self.proposal_bytes_max.to_le_bytes());
        bytes[8..].copy_from_slice(&self.kv_value_bytes_max.to_le_bytes());
        bytes
    }

    pub fn decode(bytes: &[u8; SERVER_LIMITS_BYTES]) -> ServerLimits {
        let word = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        ServerLimits {
            frame_bytes_max: word(0),
            proposal_bytes_max: word(4),
            kv_value_bytes_max: word(8),
        }
    }
}

fn check_magic(bytes: &[u8]) -> Result<(), HandshakeError> {
    let mut magic = [0u8; 8];
    magic.copy_from_slice(&bytes[..8]);
    if magic != MAGIC {
        return Err(HandshakeError::BadMagic(magic));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_hello_wire_bytes_are_fixed() {
        let bytes = ClientHello { version: 0x0102 }.encode();
        assert_eq!(&bytes, b"RINGRAFT\x02\x01\x00\x00");
        assert_eq!(ClientHello::decode(&bytes).unwrap().version, 0x0102);
    }

    #[test]
    fn server_hello_wire_bytes_are_fixed() {
        let hello = ServerHello {
            version: 1,
            status_code: Status::UnsupportedVersion.code(),
        };
        let bytes = hello.encode();
        assert_eq!(&bytes, b"RINGRAFT\x01\x00\x07\x00\x00\x00");
        assert_eq!(ServerHello::decode(&bytes).unwrap(), hello);
        assert_eq!(hello.status(), Some(Status::UnsupportedVersion));
    }

    #[test]
    fn server_refuses_other_versions() {
        assert_eq!(
            ServerHello::answer(&ClientHello::current()).status(),
            Some(Status::Ok)
        );
        let old = ClientHello {
            version: PROTOCOL_VERSION.wrapping_sub(1),
        };
        let answer = ServerHello::answer(&old);
        assert_eq!(answer.status(), Some(Status::UnsupportedVersion));
        assert_eq!(answer.version, PROTOCOL_VERSION);
    }

    #[test]
    fn bad_magic_is_refused() {
        let mut bytes = ClientHello::current().encode();
        bytes[0] = b'X';
        assert!(matches!(
            ClientHello::decode(&bytes),
            Err(HandshakeError::BadMagic(_))
        ));
        // e.g. an HTTP client talking to the socket by mistake.
        assert!(ServerHello::decode(b"HTTP/1.1 200 O").is_err());
    }

    #[test]
    fn server_limits_wire_bytes_are_fixed() {
        let limits = ServerLimits {
            frame_bytes_max: 0x0010_0000,
            proposal_bytes_max: 0x0001_0000,
            kv_value_bytes_max: 0x0002_0000,
        };
        let bytes = limits.encode();
        assert_eq!(&bytes, b"\x00\x00\x10\x00\x00\x00\x01\x00\x00\x00\x02\x00");
        assert_eq!(ServerLimits::decode(&bytes), limits);
    }

    #[test]
    fn unknown_status_code_is_kept_raw() {
        let hello = ServerHello {
            version: 9,
            status_code: 4000,
        };
        let decoded = ServerHello::decode(&hello.encode()).unwrap();
        assert_eq!(decoded.status_code, 4000);
        assert_eq!(decoded.status(), None);
    }
}
