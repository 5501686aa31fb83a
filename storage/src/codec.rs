//! Payload encodings, hand-written little-endian (docs/storage.md, "Payloads").
//!
//! Every count read from disk is checked against the bytes that remain before anything is
//! allocated, so a hostile length can cost at most the record it sits in.

use ringraft_raft::{
    ConfChange, ConfChangeStep, ConfState, Entry, EntryPayload, HardState, LogIndex, SnapshotMeta,
    Term,
};

use crate::record::record_type;

pub const SEGMENT_MAGIC: [u8; 8] = *b"RRWALSEG";
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"RRSNAPSH";
pub const FORMAT_VERSION: u32 = 1;

/// Why a payload whose checksum holds still does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

pub(crate) fn parse_error(reason: impl Into<String>) -> ParseError {
    ParseError(reason.into())
}

/// The first record of every segment: where the log stood when the segment was created, so a
/// segment can be replayed after the ones before it were compacted away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    pub seq: u64,
    pub base_index: LogIndex,
    pub base_term: Term,
    pub last_index: LogIndex,
    pub hard_state: HardState,
}

/// Written to the WAL when a snapshot is saved: the log now starts after `index`, and of the
/// entries that were stored only those up to `last_index_after` remain (Raft figure 13, step 6
/// and 7: a matching entry keeps its suffix, otherwise the whole log goes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotMarker {
    pub index: LogIndex,
    pub term: Term,
    pub last_index_after: LogIndex,
}

/// A parsed WAL record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalRecord {
    SegmentHeader(SegmentHeader),
    Entry(Entry),
    HardState(HardState),
    SnapshotMarker(SnapshotMarker),
    /// The last record of a segment that was closed: segment `next_seq` was durably created before
    /// this record was written, so a sealed last segment means a later one went missing.
    SegmentSeal {
        next_seq: u64,
    },
}

/// The first record of a snapshot file. The data follows in chunk records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFileHeader {
    pub meta: SnapshotMeta,
    pub data_bytes: u64,
}

pub fn encode_wal_record(record: &WalRecord, out: &mut Vec<u8>) -> u8 {
    match record {
        WalRecord::SegmentHeader(header) => {
            out.extend_from_slice(&SEGMENT_MAGIC);
            put_u32(out, FORMAT_VERSION);
            put_u64(out, header.seq);
            put_u64(out, header.base_index);
            put_u64(out, header.base_term);
            put_u64(out, header.last_index);
            put_hard_state(out, &header.hard_state);
            record_type::SEGMENT_HEADER
        }
        WalRecord::Entry(entry) => encode_entry(entry, out),
        WalRecord::HardState(hard_state) => {
            put_hard_state(out, hard_state);
            record_type::HARD_STATE
        }
        WalRecord::SnapshotMarker(marker) => {
            put_u64(out, marker.index);
            put_u64(out, marker.term);
            put_u64(out, marker.last_index_after);
            record_type::SNAPSHOT_MARKER
        }
        WalRecord::SegmentSeal { next_seq } => {
            put_u64(out, *next_seq);
            record_type::SEGMENT_SEAL
        }
    }
}

pub fn decode_wal_record(record_type: u8, payload: &[u8]) -> Result<WalRecord, ParseError> {
    let mut reader = Reader::new(payload);
    let record = match record_type {
        record_type::SEGMENT_HEADER => {
            if reader.array::<8>()? != SEGMENT_MAGIC {
                return Err(parse_error("segment header has a wrong magic number"));
            }
            let version = reader.u32()?;
            if version != FORMAT_VERSION {
                return Err(parse_error(format!(
                    "segment format version {version} is not supported (expected {FORMAT_VERSION})"
                )));
            }
            WalRecord::SegmentHeader(SegmentHeader {
                seq: reader.u64()?,
                base_index: reader.u64()?,
                base_term: reader.u64()?,
                last_index: reader.u64()?,
                hard_state: reader.hard_state()?,
            })
        }
        record_type::ENTRY => WalRecord::Entry(reader.entry()?),
        record_type::HARD_STATE => WalRecord::HardState(reader.hard_state()?),
        record_type::SNAPSHOT_MARKER => WalRecord::SnapshotMarker(SnapshotMarker {
            index: reader.u64()?,
            term: reader.u64()?,
            last_index_after: reader.u64()?,
        }),
        record_type::SEGMENT_SEAL => WalRecord::SegmentSeal {
            next_seq: reader.u64()?,
        },
        other => return Err(parse_error(format!("unknown WAL record type {other}"))),
    };
    reader.finish()?;
    Ok(record)
}

pub fn encode_snapshot_header(header: &SnapshotFileHeader, out: &mut Vec<u8>) {
    out.extend_from_slice(&SNAPSHOT_MAGIC);
    put_u32(out, FORMAT_VERSION);
    put_u64(out, header.meta.index);
    put_u64(out, header.meta.term);
    let conf = &header.meta.conf_state;
    for ids in [
        &conf.voters,
        &conf.voters_outgoing,
        &conf.learners,
        &conf.learners_next,
    ] {
        put_len(out, ids.len());
        for id in ids {
            put_u64(out, *id);
        }
    }
    out.push(u8::from(conf.auto_leave));
    put_u64(out, header.data_bytes);
}

pub fn decode_snapshot_header(payload: &[u8]) -> Result<SnapshotFileHeader, ParseError> {
    let mut reader = Reader::new(payload);
    if reader.array::<8>()? != SNAPSHOT_MAGIC {
        return Err(parse_error("snapshot header has a wrong magic number"));
    }
    let version = reader.u32()?;
    if version != FORMAT_VERSION {
        return Err(parse_error(format!(
            "snapshot format version {version} is not supported (expected {FORMAT_VERSION})"
        )));
    }
    let index = reader.u64()?;
    let term = reader.u64()?;
    let conf_state = ConfState {
        voters: reader.id_list()?,
        voters_outgoing: reader.id_list()?,
        learners: reader.id_list()?,
        learners_next: reader.id_list()?,
        auto_leave: reader.bool()?,
    };
    let data_bytes = reader.u64()?;
    reader.finish()?;
    Ok(SnapshotFileHeader {
        meta: SnapshotMeta {
            index,
            term,
            conf_state,
        },
        data_bytes,
    })
}

const PAYLOAD_EMPTY: u8 = 0;
const PAYLOAD_NORMAL: u8 = 1;
const PAYLOAD_CONF_CHANGE: u8 = 2;
const STEP_ADD_VOTER: u8 = 0;
const STEP_ADD_LEARNER: u8 = 1;
const STEP_REMOVE_NODE: u8 = 2;

/// Encodes an entry's payload (the hot path: no `WalRecord` is built) and returns its type.
pub fn encode_entry(entry: &Entry, out: &mut Vec<u8>) -> u8 {
    put_u64(out, entry.term);
    put_u64(out, entry.index);
    match &entry.payload {
        EntryPayload::Empty => out.push(PAYLOAD_EMPTY),
        EntryPayload::Normal(data) => {
            out.push(PAYLOAD_NORMAL);
            put_bytes(out, data);
        }
        EntryPayload::ConfChange(change) => {
            out.push(PAYLOAD_CONF_CHANGE);
            out.push(u8::from(change.auto_leave));
            put_len(out, change.changes.len());
            for step in &change.changes {
                let (kind, id) = match *step {
                    ConfChangeStep::AddVoter(id) => (STEP_ADD_VOTER, id),
                    ConfChangeStep::AddLearner(id) => (STEP_ADD_LEARNER, id),
                    ConfChangeStep::RemoveNode(id) => (STEP_REMOVE_NODE, id),
                };
                out.push(kind);
                put_u64(out, id);
            }
            put_bytes(out, &change.context);
        }
    }
    record_type::ENTRY
}

/// The encoded payload size of an entry, for size checks before encoding.
pub fn entry_payload_bytes(entry: &Entry) -> usize {
    17 + match &entry.payload {
        EntryPayload::Empty => 0,
        EntryPayload::Normal(data) => 4 + data.len(),
        EntryPayload::ConfChange(change) => {
            1 + 4 + 9 * change.changes.len() + 4 + change.context.len()
        }
    }
}

fn put_hard_state(out: &mut Vec<u8>, hard_state: &HardState) {
    put_u64(out, hard_state.term);
    out.push(u8::from(hard_state.vote.is_some()));
    put_u64(out, hard_state.vote.unwrap_or(0));
    put_u64(out, hard_state.commit);
}

pub(crate) fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

pub(crate) fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

pub(crate) fn put_len(out: &mut Vec<u8>, len: usize) {
    put_u32(
        out,
        u32::try_from(len).expect("callers bound lengths below u32::MAX"),
    );
}

pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_len(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// Reads a payload front to back; every length is checked against what is left.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, position: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.position
    }

    pub(crate) fn take(&mut self, len: usize) -> Result<&'a [u8], ParseError> {
        if len > self.remaining() {
            return Err(parse_error(format!(
                "payload ends early: {len} bytes wanted at payload offset {}, {} left",
                self.position,
                self.remaining()
            )));
        }
        let slice = &self.bytes[self.position..self.position + len];
        self.position += len;
        Ok(slice)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], ParseError> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, ParseError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32, ParseError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, ParseError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub(crate) fn bool(&mut self) -> Result<bool, ParseError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(parse_error(format!("boolean byte is {other}"))),
        }
    }

    /// A u32 count of items of `item_bytes` each, checked against what is left.
    pub(crate) fn count(&mut self, item_bytes: usize) -> Result<usize, ParseError> {
        let count = self.u32()? as usize;
        if count.saturating_mul(item_bytes) > self.remaining() {
            return Err(parse_error(format!(
                "count {count} at payload offset {} exceeds the {} bytes left",
                self.position - 4,
                self.remaining()
            )));
        }
        Ok(count)
    }

    pub(crate) fn byte_vec(&mut self) -> Result<Vec<u8>, ParseError> {
        let len = self.count(1)?;
        Ok(self.take(len)?.to_vec())
    }

    fn id_list(&mut self) -> Result<Vec<u64>, ParseError> {
        let count = self.count(8)?;
        (0..count).map(|_| self.u64()).collect()
    }

    fn hard_state(&mut self) -> Result<HardState, ParseError> {
        let term = self.u64()?;
        let has_vote = self.bool()?;
        let vote = self.u64()?;
        let commit = self.u64()?;
        if !has_vote && vote != 0 {
            return Err(parse_error(
                "hard state has a vote id without the vote flag",
            ));
        }
        Ok(HardState {
            term,
            vote: has_vote.then_some(vote),
            commit,
        })
    }

    fn entry(&mut self) -> Result<Entry, ParseError> {
        let term = self.u64()?;
        let index = self.u64()?;
        if index == 0 {
            return Err(parse_error("entry index 0 (the first entry has index 1)"));
        }
        let payload = match self.u8()? {
            PAYLOAD_EMPTY => EntryPayload::Empty,
            PAYLOAD_NORMAL => EntryPayload::Normal(self.byte_vec()?),
            PAYLOAD_CONF_CHANGE => {
                let auto_leave = self.bool()?;
                let step_count = self.count(9)?;
                let changes = (0..step_count)
                    .map(|_| self.conf_change_step())
                    .collect::<Result<Vec<_>, _>>()?;
                let context = self.byte_vec()?;
                EntryPayload::ConfChange(ConfChange {
                    changes,
                    auto_leave,
                    context,
                })
            }
            other => return Err(parse_error(format!("unknown entry payload kind {other}"))),
        };
        Ok(Entry {
            term,
            index,
            payload,
        })
    }

    fn conf_change_step(&mut self) -> Result<ConfChangeStep, ParseError> {
        let kind = self.u8()?;
        let id = self.u64()?;
        match kind {
            STEP_ADD_VOTER => Ok(ConfChangeStep::AddVoter(id)),
            STEP_ADD_LEARNER => Ok(ConfChangeStep::AddLearner(id)),
            STEP_REMOVE_NODE => Ok(ConfChangeStep::RemoveNode(id)),
            other => Err(parse_error(format!(
                "unknown conf change step kind {other}"
            ))),
        }
    }

    pub(crate) fn finish(self) -> Result<(), ParseError> {
        if self.remaining() != 0 {
            return Err(parse_error(format!(
                "{} unexpected bytes after the payload",
                self.remaining()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(record: WalRecord) {
        let mut payload = Vec::new();
        let record_type = encode_wal_record(&record, &mut payload);
        assert_eq!(decode_wal_record(record_type, &payload), Ok(record.clone()));
        if let WalRecord::Entry(entry) = &record {
            assert_eq!(entry_payload_bytes(entry), payload.len());
        }
        for cut in 0..payload.len() {
            assert!(decode_wal_record(record_type, &payload[..cut]).is_err());
        }
        payload.push(0);
        assert!(decode_wal_record(record_type, &payload).is_err());
    }

    #[test]
    fn every_wal_record_round_trips_and_rejects_cuts_and_trailing_bytes() {
        round_trip(WalRecord::Entry(Entry {
            term: 3,
            index: 9,
            payload: EntryPayload::Empty,
        }));
        round_trip(WalRecord::Entry(Entry {
            term: 3,
            index: 10,
            payload: EntryPayload::Normal(b"abc".to_vec()),
        }));
        round_trip(WalRecord::Entry(Entry {
            term: 4,
            index: 11,
            payload: EntryPayload::ConfChange(ConfChange {
                changes: vec![
                    ConfChangeStep::AddVoter(1),
                    ConfChangeStep::AddLearner(2),
                    ConfChangeStep::RemoveNode(3),
                ],
                auto_leave: true,
                context: b"ctx".to_vec(),
            }),
        }));
        round_trip(WalRecord::HardState(HardState {
            term: 5,
            vote: Some(2),
            commit: 8,
        }));
        round_trip(WalRecord::SnapshotMarker(SnapshotMarker {
            index: 7,
            term: 2,
            last_index_after: 12,
        }));
        round_trip(WalRecord::SegmentSeal { next_seq: 9 });
        round_trip(WalRecord::SegmentHeader(SegmentHeader {
            seq: 4,
            base_index: 7,
            base_term: 2,
            last_index: 12,
            hard_state: HardState::default(),
        }));
    }

    #[test]
    fn snapshot_header_round_trips() {
        let header = SnapshotFileHeader {
            meta: SnapshotMeta {
                index: 40,
                term: 6,
                conf_state: ConfState {
                    voters: vec![1, 2, 3],
                    voters_outgoing: vec![4],
                    learners: vec![],
                    learners_next: vec![5],
                    auto_leave: true,
                },
            },
            data_bytes: 1234,
        };
        let mut payload = Vec::new();
        encode_snapshot_header(&header, &mut payload);
        assert_eq!(decode_snapshot_header(&payload), Ok(header));
    }

    #[test]
    fn hostile_count_is_rejected_without_allocating() {
        let mut payload = Vec::new();
        put_u64(&mut payload, 1);
        put_u64(&mut payload, 1);
        payload.push(PAYLOAD_NORMAL);
        put_u32(&mut payload, u32::MAX);
        assert!(decode_wal_record(record_type::ENTRY, &payload).is_err());
    }
}
