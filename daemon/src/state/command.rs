//! What the daemon writes into Raft entries, and how it reads them back.
//!
//! Normal entries carry a `StateCommand`; ConfChange entries carry a `Member` in their context. The
//! bytes come from the replicated log, which a buggy or hostile peer may have fed: decode with
//! checked rkyv access only and treat a bad entry as a no-op that is logged, never a crash, so all
//! nodes stay in step (every node sees the same bytes and makes the same decision).

use ringraft_proto::{Member, MemberState, NodeId};
use rkyv::{Archive, Deserialize, Serialize};

/// Largest encoded command accepted from the log (a proposal plus its envelope).
pub const COMMAND_BYTES_MAX: usize = 16 << 20;

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum StateCommand {
    /// An application proposal. `origin` and `request_id` let the proposing node answer its client
    /// once the entry is applied; other nodes ignore them.
    Proposal {
        origin: NodeId,
        request_id: u64,
        data: Vec<u8>,
    },
    /// The failure detector's or an operator's verdict on a member.
    SetMemberState { id: NodeId, state: MemberState },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("command of {0} bytes exceeds the limit")]
    TooLarge(usize),
    #[error("malformed command: {0}")]
    Malformed(String),
}

pub fn encode_command(command: &StateCommand) -> Vec<u8> {
    rkyv::to_bytes::<rkyv::rancor::Error>(command)
        .map(|bytes| bytes.into_vec())
        .unwrap_or_else(|err| panic!("encoding a StateCommand cannot fail: {err}"))
}

pub fn decode_command(bytes: &[u8]) -> Result<StateCommand, DecodeError> {
    decode_checked::<StateCommand>(bytes)
}

pub fn encode_member(member: &Member) -> Vec<u8> {
    rkyv::to_bytes::<rkyv::rancor::Error>(member)
        .map(|bytes| bytes.into_vec())
        .unwrap_or_else(|err| panic!("encoding a Member cannot fail: {err}"))
}

pub fn decode_member(bytes: &[u8]) -> Result<Member, DecodeError> {
    decode_checked::<Member>(bytes)
}

/// Copies into aligned memory (log bytes carry no alignment promise), validates, deserializes.
pub(crate) fn decode_checked<T>(bytes: &[u8]) -> Result<T, DecodeError>
where
    T: Archive,
    T::Archived: for<'a> rkyv::bytecheck::CheckBytes<rkyv::api::high::HighValidator<'a, rkyv::rancor::Error>>
        + rkyv::Deserialize<T, rkyv::api::high::HighDeserializer<rkyv::rancor::Error>>,
{
    if bytes.len() > COMMAND_BYTES_MAX {
        return Err(DecodeError::TooLarge(bytes.len()));
    }
    let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(bytes.len());
    aligned.extend_from_slice(bytes);
    rkyv::from_bytes::<T, rkyv::rancor::Error>(&aligned)
        .map_err(|err| DecodeError::Malformed(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringraft_proto::MemberRole;

    #[test]
    fn commands_round_trip() {
        let command = StateCommand::Proposal {
            origin: 3,
            request_id: 99,
            data: b"hello".to_vec(),
        };
        assert_eq!(decode_command(&encode_command(&command)).unwrap(), command);
        let member = Member {
            id: 4,
            name: "n4".into(),
            address: "127.0.0.1:1".into(),
            zone: "z".into(),
            weight: 2,
            role: MemberRole::Learner,
            state: MemberState::Active,
        };
        assert_eq!(decode_member(&encode_member(&member)).unwrap(), member);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let encoded = encode_command(&StateCommand::SetMemberState {
            id: 1,
            state: MemberState::Down,
        });
        for cut in 0..encoded.len() {
            let _ = decode_command(&encoded[..cut]);
        }
        let mut flipped = encoded.clone();
        for i in 0..flipped.len() {
            flipped[i] ^= 0xff;
            let _ = decode_command(&flipped);
            flipped[i] ^= 0xff;
        }
        assert!(decode_command(&[0xff; 7]).is_err());
    }
}
