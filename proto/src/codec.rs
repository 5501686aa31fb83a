//! The one checked rkyv codec of the project: every value that travels between processes (local
//! frames, peer frames) or comes back from the Raft log (state commands, members, state images)
//! is encoded by [`encode`] and decoded by [`decode`], and every failure is a [`CodecError`] in
//! our own words.
//!
//! Decoding distrusts its input: the bytes are validated by bytecheck before anything is
//! deserialized (rkyv's checked API only, never unchecked access), an input that is not aligned
//! for rkyv's root is copied into an aligned buffer first (socket and log buffers promise no
//! alignment), and rkyv's own error text (which, in release builds, only says to enable debug
//! assertions) never reaches a user.
//!
//! Length-prefix framing on top of this codec lives in [`crate::frame`].

use rkyv::api::high::{HighDeserializer, HighSerializer, HighValidator};
use rkyv::bytecheck::CheckBytes;
use rkyv::rancor::{self, Failure};
use rkyv::ser::allocator::ArenaHandle;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Serialize};

use crate::status::Status;

/// rkyv archives need their root aligned; 16 covers every type we encode.
pub const ARCHIVE_ALIGNMENT: usize = 16;

/// An encoded value, aligned so that it can be decoded in place.
pub type Encoded = AlignedVec<ARCHIVE_ALIGNMENT>;

/// Why bytes could not be framed, encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// A length prefix (or a value to encode) is larger than the limit in force.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    /// A length prefix of 0: no value encodes to nothing.
    #[error("empty frame (a length prefix of 0)")]
    Empty,
    /// The stream or buffer ended inside a frame.
    #[error("the stream ended inside a frame")]
    Truncated,
    /// The bytes are not a valid encoding of the expected type.
    #[error("malformed {what} ({len} bytes): {reason}")]
    Malformed {
        what: &'static str,
        len: usize,
        reason: &'static str,
    },
    /// Serializing a value failed (not expected for our types).
    #[error("cannot encode {what}: {reason}")]
    Encode { what: &'static str, reason: String },
}

impl CodecError {
    /// The status code a peer or caller should be told for this error.
    pub fn status(&self) -> Status {
        match self {
            CodecError::TooLarge { .. } => Status::TooLarge,
            CodecError::Empty | CodecError::Truncated | CodecError::Malformed { .. } => {
                Status::Malformed
            }
            CodecError::Encode { .. } => Status::Internal,
        }
    }
}

/// A type [`decode`] can check and deserialize.
pub trait Decode:
    Sized
    + Archive<
        Archived: for<'a> CheckBytes<HighValidator<'a, Failure>>
                      + Deserialize<Self, HighDeserializer<Failure>>,
    >
{
}

impl<T> Decode for T where
    T: Archive<
        Archived: for<'a> CheckBytes<HighValidator<'a, Failure>>
                      + Deserialize<T, HighDeserializer<Failure>>,
    >
{
}

/// A type [`encode`] can serialize.
pub trait Encode:
    for<'a> Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, rancor::Error>>
{
}

impl<T> Encode for T where
    T: for<'a> Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, rancor::Error>>
{
}

/// Encodes `value` as an rkyv archive.
pub fn encode<T: Encode>(value: &T) -> Result<Encoded, CodecError> {
    rkyv::to_bytes::<rancor::Error>(value).map_err(|error| CodecError::Encode {
        what: short_type_name::<T>(),
        reason: error.to_string(),
    })
}

/// Checks `bytes` and deserializes a `T` from them. `bytes` may have any alignment (it is copied
/// into an aligned buffer when it is not aligned already) and any content: whatever is wrong
/// comes back as `CodecError::Malformed`, never as a panic or an out-of-bounds read.
pub fn decode<T: Decode>(bytes: &[u8]) -> Result<T, CodecError> {
    let malformed = |reason| CodecError::Malformed {
        what: short_type_name::<T>(),
        len: bytes.len(),
        reason,
    };
    if bytes.is_empty() {
        return Err(malformed("no bytes at all"));
    }
    let root_bytes = std::mem::size_of::<T::Archived>();
    if bytes.len() < root_bytes {
        return Err(malformed("shorter than the fixed part of one"));
    }
    let checked = if bytes.as_ptr().align_offset(ARCHIVE_ALIGNMENT) == 0 {
        rkyv::from_bytes::<T, Failure>(bytes)
    } else {
        let mut aligned = Encoded::with_capacity(bytes.len());
        aligned.extend_from_slice(bytes);
        rkyv::from_bytes::<T, Failure>(&aligned)
    };
    checked.map_err(|Failure| {
        malformed("validation failed (an enum tag, length, offset or character is out of range)")
    })
}

/// `ringraft_proto::messages::RequestFrame` → `RequestFrame`: what errors call the type.
fn short_type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    let path = full.split('<').next().unwrap_or(full);
    path.rsplit("::").next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{Member, MemberRole, MemberState, Request, RequestFrame};

    fn member() -> Member {
        Member {
            id: 7,
            name: "n7".into(),
            address: "127.0.0.1:7007".into(),
            zone: "z1".into(),
            weight: 3,
            role: MemberRole::Voter,
            state: MemberState::Active,
        }
    }

    #[test]
    fn roundtrips_aligned_and_misaligned() {
        let bytes = encode(&member()).unwrap();
        assert_eq!(decode::<Member>(&bytes).unwrap(), member());
        // The same bytes at an odd address: copied, then decoded alike.
        let mut shifted = vec![0u8; bytes.len() + 1];
        shifted[1..].copy_from_slice(&bytes);
        assert_ne!(shifted[1..].as_ptr().align_offset(ARCHIVE_ALIGNMENT), 0);
        assert_eq!(decode::<Member>(&shifted[1..]).unwrap(), member());
    }

    #[test]
    fn garbage_is_malformed_in_our_words() {
        let error = decode::<RequestFrame>(&[0xFF; 64]).unwrap_err();
        assert_eq!(error.status(), Status::Malformed);
        let text = error.to_string();
        assert!(
            text.starts_with("malformed RequestFrame (64 bytes): "),
            "{text}"
        );
        assert!(!text.contains("debug assertions"), "{text}");
    }

    #[test]
    fn empty_and_short_inputs_say_so() {
        let empty = decode::<Member>(&[]).unwrap_err();
        assert_eq!(
            empty.to_string(),
            "malformed Member (0 bytes): no bytes at all"
        );
        let short = decode::<Member>(&[0; 3]).unwrap_err();
        assert!(short.to_string().contains("shorter than"), "{short}");
    }

    #[test]
    fn every_cut_and_every_flipped_byte_is_an_error_or_another_value() {
        let original = RequestFrame {
            id: 9,
            request: Request::Owner {
                key: b"user:42".to_vec(),
                linearizable: true,
            },
        };
        let bytes = encode(&original).unwrap();
        for cut in 0..bytes.len() {
            if let Ok(decoded) = decode::<RequestFrame>(&bytes[..cut]) {
                assert_ne!(decoded, original, "cut at {cut}");
            }
        }
        let mut flipped = bytes.to_vec();
        for i in 0..flipped.len() {
            flipped[i] ^= 0xFF;
            if let Err(error) = decode::<RequestFrame>(&flipped) {
                assert!(!error.to_string().contains("debug assertions"));
            }
            flipped[i] ^= 0xFF;
        }
    }

    #[test]
    fn invalid_utf8_in_a_string_is_malformed() {
        let mut bytes = encode(&member()).unwrap().to_vec();
        // "n7" is stored inline in the archived String (padded with 0xFF); a UTF-8 lead byte
        // followed by '7' is invalid UTF-8.
        let at = bytes.windows(2).position(|w| w == b"n7").unwrap();
        bytes[at] = 0xC3;
        assert!(matches!(
            decode::<Member>(&bytes),
            Err(CodecError::Malformed { what: "Member", .. })
        ));
    }
}
