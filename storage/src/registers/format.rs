//! Payloads of the register store's records, hand-written little-endian like the Raft WAL's
//! (docs/storage.md, "Register store"). Framing is `crate::record`'s, unchanged.
//!
//! The encoding is canonical: decoding then encoding gives the same bytes (the fuzz target and
//! `tests/registers_hostile.rs` check it).

use ringraft_paxos::{Ballot, KeyState, Record, Register};

use crate::codec::{parse_error, put_bytes, put_u32, put_u64, ParseError, Reader};
use crate::record::record_type;

pub const REGISTER_SEGMENT_MAGIC: [u8; 8] = *b"RRREGSEG";
pub const CHECKPOINT_MAGIC: [u8; 8] = *b"RRREGCKP";
pub const REGISTER_FORMAT_VERSION: u32 = 1;

/// One record of a register log segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogRecord {
    /// First record of every segment; `seq` must equal the file name's.
    SegmentHeader { seq: u64 },
    /// A record of the paxos core (`Ready::records`).
    Paxos(Record),
    /// Last record of a closed segment: segment `next_seq` was durably created before it.
    SegmentSeal { next_seq: u64 },
}

/// One record of a checkpoint file: a header, the live records, an end record with their count
/// (so a file cut at a record boundary is recognised).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointRecord {
    /// `log_seq` is the first log segment the checkpoint does not cover (the file name's).
    Header {
        log_seq: u64,
    },
    Paxos(Record),
    End {
        record_count: u64,
    },
}

/// The payload size `encode_paxos_record` will produce, to refuse oversized records before
/// anything is written.
pub fn paxos_record_payload_bytes(record: &Record) -> usize {
    match record {
        Record::Key { key, state } => {
            4 + key.len()
                + 8
                + 16
                + 1
                + state.accepted.as_ref().map_or(0, |(_, register)| {
                    16 + 1 + register.value.as_ref().map_or(0, |v| 4 + v.len()) + 8
                })
        }
        Record::Forgot { key, .. } => 4 + key.len() + 16,
        Record::BallotsReserved { .. } => 8,
    }
}

/// Appends the payload of `record` to `out` and returns its record type.
pub fn encode_paxos_record(record: &Record, out: &mut Vec<u8>) -> u8 {
    match record {
        Record::Key { key, state } => {
            put_bytes(out, key);
            put_u64(out, state.epoch);
            put_ballot(out, state.promised);
            match &state.accepted {
                None => out.push(0),
                Some((ballot, register)) => {
                    out.push(1);
                    put_ballot(out, *ballot);
                    match &register.value {
                        None => out.push(0),
                        Some(value) => {
                            out.push(1);
                            put_bytes(out, value);
                        }
                    }
                    put_u64(out, register.version);
                }
            }
            record_type::REGISTER_KEY
        }
        Record::Forgot { key, floor } => {
            put_bytes(out, key);
            put_ballot(out, *floor);
            record_type::REGISTER_FORGOT
        }
        Record::BallotsReserved { counter_below } => {
            put_u64(out, *counter_below);
            record_type::REGISTER_BALLOTS_RESERVED
        }
    }
}

/// Decodes a paxos record of type `kind`; any other type is an error.
pub fn decode_paxos_record(kind: u8, payload: &[u8]) -> Result<Record, ParseError> {
    let mut reader = Reader::new(payload);
    let record = read_paxos_record(kind, &mut reader)?
        .ok_or_else(|| parse_error(format!("record type {kind} is not a register record")))?;
    reader.finish()?;
    Ok(record)
}

fn read_paxos_record(kind: u8, reader: &mut Reader) -> Result<Option<Record>, ParseError> {
    let record = match kind {
        record_type::REGISTER_KEY => {
            let key = reader.byte_vec()?;
            let epoch = reader.u64()?;
            let promised = read_ballot(reader)?;
            let accepted = if reader.bool()? {
                let ballot = read_ballot(reader)?;
                let value = if reader.bool()? {
                    Some(reader.byte_vec()?)
                } else {
                    None
                };
                let version = reader.u64()?;
                Some((ballot, Register { value, version }))
            } else {
                None
            };
            Record::Key {
                key,
                state: KeyState {
                    epoch,
                    promised,
                    accepted,
                },
            }
        }
        record_type::REGISTER_FORGOT => Record::Forgot {
            key: reader.byte_vec()?,
            floor: read_ballot(reader)?,
        },
        record_type::REGISTER_BALLOTS_RESERVED => Record::BallotsReserved {
            counter_below: reader.u64()?,
        },
        _ => return Ok(None),
    };
    Ok(Some(record))
}

pub fn encode_log_record(record: &LogRecord, out: &mut Vec<u8>) -> u8 {
    match record {
        LogRecord::SegmentHeader { seq } => {
            out.extend_from_slice(&REGISTER_SEGMENT_MAGIC);
            put_u32(out, REGISTER_FORMAT_VERSION);
            put_u64(out, *seq);
            record_type::REGISTER_SEGMENT_HEADER
        }
        LogRecord::Paxos(record) => encode_paxos_record(record, out),
        LogRecord::SegmentSeal { next_seq } => {
            put_u64(out, *next_seq);
            record_type::SEGMENT_SEAL
        }
    }
}

pub fn decode_log_record(kind: u8, payload: &[u8]) -> Result<LogRecord, ParseError> {
    let mut reader = Reader::new(payload);
    let record = match kind {
        record_type::REGISTER_SEGMENT_HEADER => {
            read_magic_and_version(&mut reader, &REGISTER_SEGMENT_MAGIC, "register segment")?;
            LogRecord::SegmentHeader { seq: reader.u64()? }
        }
        record_type::SEGMENT_SEAL => LogRecord::SegmentSeal {
            next_seq: reader.u64()?,
        },
        other => match read_paxos_record(other, &mut reader)? {
            Some(record) => LogRecord::Paxos(record),
            None => {
                return Err(parse_error(format!(
                    "unknown register log record type {other}"
                )))
            }
        },
    };
    reader.finish()?;
    Ok(record)
}

pub fn encode_checkpoint_record(record: &CheckpointRecord, out: &mut Vec<u8>) -> u8 {
    match record {
        CheckpointRecord::Header { log_seq } => {
            out.extend_from_slice(&CHECKPOINT_MAGIC);
            put_u32(out, REGISTER_FORMAT_VERSION);
            put_u64(out, *log_seq);
            record_type::CHECKPOINT_HEADER
        }
        CheckpointRecord::Paxos(record) => encode_paxos_record(record, out),
        CheckpointRecord::End { record_count } => {
            put_u64(out, *record_count);
            record_type::CHECKPOINT_END
        }
    }
}

pub fn decode_checkpoint_record(kind: u8, payload: &[u8]) -> Result<CheckpointRecord, ParseError> {
    let mut reader = Reader::new(payload);
    let record = match kind {
        record_type::CHECKPOINT_HEADER => {
            read_magic_and_version(&mut reader, &CHECKPOINT_MAGIC, "checkpoint")?;
            CheckpointRecord::Header {
                log_seq: reader.u64()?,
            }
        }
        record_type::CHECKPOINT_END => CheckpointRecord::End {
            record_count: reader.u64()?,
        },
        other => match read_paxos_record(other, &mut reader)? {
            Some(record) => CheckpointRecord::Paxos(record),
            None => {
                return Err(parse_error(format!(
                    "unknown checkpoint record type {other}"
                )))
            }
        },
    };
    reader.finish()?;
    Ok(record)
}

fn read_magic_and_version(
    reader: &mut Reader,
    magic: &[u8; 8],
    what: &str,
) -> Result<(), ParseError> {
    if reader.array::<8>()? != *magic {
        return Err(parse_error(format!(
            "{what} header has a wrong magic number"
        )));
    }
    let version = reader.u32()?;
    if version != REGISTER_FORMAT_VERSION {
        return Err(parse_error(format!(
            "{what} format version {version} is not supported (expected \
             {REGISTER_FORMAT_VERSION})"
        )));
    }
    Ok(())
}

fn put_ballot(out: &mut Vec<u8>, ballot: Ballot) {
    put_u64(out, ballot.counter);
    put_u64(out, ballot.node);
}

fn read_ballot(reader: &mut Reader) -> Result<Ballot, ParseError> {
    Ok(Ballot {
        counter: reader.u64()?,
        node: reader.u64()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Record> {
        let ballot = Ballot {
            counter: 7,
            node: 2,
        };
        vec![
            Record::Key {
                key: b"k".to_vec(),
                state: KeyState {
                    epoch: 3,
                    promised: ballot,
                    accepted: None,
                },
            },
            Record::Key {
                key: b"key two".to_vec(),
                state: KeyState {
                    epoch: 4,
                    promised: ballot.successor(),
                    accepted: Some((
                        ballot,
                        Register {
                            value: Some(b"value".to_vec()),
                            version: 9,
                        },
                    )),
                },
            },
            Record::Key {
                key: Vec::new(),
                state: KeyState {
                    epoch: 0,
                    promised: ballot,
                    accepted: Some((ballot, Register::absent())),
                },
            },
            Record::Forgot {
                key: b"gone".to_vec(),
                floor: ballot,
            },
            Record::BallotsReserved {
                counter_below: 1 << 16,
            },
        ]
    }

    #[test]
    fn every_record_round_trips_and_rejects_cuts_and_trailing_bytes() {
        for record in samples() {
            let mut payload = Vec::new();
            let kind = encode_paxos_record(&record, &mut payload);
            assert_eq!(paxos_record_payload_bytes(&record), payload.len());
            assert_eq!(decode_paxos_record(kind, &payload), Ok(record.clone()));
            assert_eq!(
                decode_log_record(kind, &payload),
                Ok(LogRecord::Paxos(record.clone()))
            );
            assert_eq!(
                decode_checkpoint_record(kind, &payload),
                Ok(CheckpointRecord::Paxos(record.clone()))
            );
            for cut in 0..payload.len() {
                assert!(decode_paxos_record(kind, &payload[..cut]).is_err());
            }
            payload.push(0);
            assert!(decode_paxos_record(kind, &payload).is_err());
        }
        for record in [
            LogRecord::SegmentHeader { seq: 4 },
            LogRecord::SegmentSeal { next_seq: 5 },
        ] {
            let mut payload = Vec::new();
            let kind = encode_log_record(&record, &mut payload);
            assert_eq!(decode_log_record(kind, &payload), Ok(record));
        }
        for record in [
            CheckpointRecord::Header { log_seq: 4 },
            CheckpointRecord::End { record_count: 5 },
        ] {
            let mut payload = Vec::new();
            let kind = encode_checkpoint_record(&record, &mut payload);
            assert_eq!(decode_checkpoint_record(kind, &payload), Ok(record));
        }
    }

    #[test]
    fn raft_record_types_are_not_register_records() {
        let mut payload = Vec::new();
        put_u64(&mut payload, 1);
        for kind in [
            record_type::ENTRY,
            record_type::HARD_STATE,
            record_type::SEGMENT_HEADER,
        ] {
            assert!(decode_log_record(kind, &payload).is_err());
            assert!(decode_checkpoint_record(kind, &payload).is_err());
        }
        // A checkpoint has no seal, a log no checkpoint end.
        assert!(decode_checkpoint_record(record_type::SEGMENT_SEAL, &payload).is_err());
        assert!(decode_log_record(record_type::CHECKPOINT_END, &payload).is_err());
    }

    #[test]
    fn a_bad_boolean_or_a_hostile_length_is_an_error() {
        let mut payload = Vec::new();
        encode_paxos_record(&samples()[1], &mut payload);
        let flag_at = 4 + b"key two".len() + 8 + 16;
        payload[flag_at] = 2;
        assert!(decode_paxos_record(record_type::REGISTER_KEY, &payload).is_err());
        let mut hostile = Vec::new();
        put_u32(&mut hostile, u32::MAX);
        assert!(decode_paxos_record(record_type::REGISTER_KEY, &hostile).is_err());
    }
}
