//! What the daemon writes into Raft entries, and how it reads them back.
//!
//! Normal entries carry a `StateCommand`; ConfChange entries carry a `Member` in their context. The
//! bytes come from the replicated log, which a buggy or hostile peer may have fed: decode with
//! checked rkyv access only and treat a bad entry as a no-op that is logged, never a crash, so all
//! nodes stay in step (every node sees the same bytes and makes the same decision).

use ringraft_proto::codec::{self, CodecError, Decode};
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
    /// `node` has handed off every register it holds for the registers' transition at `epoch`
    /// (see `state::registers`).
    RegistersHandedOff { node: NodeId, epoch: u64 },
    /// The registers start here (see `state::registers`, `enabled`): proposed by a leader whose
    /// state came from a daemon that ran none.
    RegistersEnabled,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("command of {0} bytes exceeds the limit of {COMMAND_BYTES_MAX} bytes")]
    TooLarge(usize),
    #[error(transparent)]
    Malformed(#[from] CodecError),
}

pub fn encode_command(command: &StateCommand) -> Vec<u8> {
    codec::encode(command)
        .map(|bytes| bytes.into_vec())
        .unwrap_or_else(|err| panic!("encoding a StateCommand cannot fail: {err}"))
}

pub fn decode_command(bytes: &[u8]) -> Result<StateCommand, DecodeError> {
    decode_checked::<StateCommand>(bytes)
}

pub fn encode_member(member: &Member) -> Vec<u8> {
    codec::encode(member)
        .map(|bytes| bytes.into_vec())
        .unwrap_or_else(|err| panic!("encoding a Member cannot fail: {err}"))
}

pub fn decode_member(bytes: &[u8]) -> Result<Member, DecodeError> {
    decode_checked::<Member>(bytes)
}

/// Checks the size, then decodes with the one checked codec (`ringraft_proto::codec`). Used for
/// everything read back from the log and from snapshots; the encoding itself is rkyv's, as ever.
pub(crate) fn decode_checked<T: Decode>(bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.len() > COMMAND_BYTES_MAX {
        return Err(DecodeError::TooLarge(bytes.len()));
    }
    Ok(codec::decode(bytes)?)
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
        let error = decode_command(&[0xff; 7]).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("malformed StateCommand (7 bytes)"),
            "{error}"
        );
        assert!(matches!(
            decode_command(&vec![0; COMMAND_BYTES_MAX + 1]),
            Err(DecodeError::TooLarge(_))
        ));
    }

    /// The log's bytes are the ones written before the codec moved into ringraft-proto: a
    /// command encoded then must decode now, and encode to the same bytes.
    #[test]
    fn encoding_is_unchanged() {
        let command = StateCommand::SetMemberState {
            id: 0x0102,
            state: MemberState::Down,
        };
        let old = rkyv::to_bytes::<rkyv::rancor::Error>(&command).unwrap();
        assert_eq!(encode_command(&command), old.to_vec());
        assert_eq!(decode_command(&old).unwrap(), command);
    }
}
