//! The body shared by the cargo-fuzz target and the CI-sized random-input test: runs every decoder
//! of on-disk bytes (the Raft WAL's and the register store's) over arbitrary input and checks
//! that what decodes re-encodes to the same bytes.

use crate::codec::{
    decode_snapshot_header, decode_wal_record, encode_snapshot_header, encode_wal_record,
};
use crate::record::{scan_records, ScanEnd};
use crate::registers::format::{
    decode_checkpoint_record, decode_log_record, encode_checkpoint_record, encode_log_record,
};

/// A small limit so hostile lengths are exercised both below and above it.
const FUZZ_RECORD_BYTES_MAX: u32 = 1 << 16;

/// Panics only if a decoder accepts bytes that do not round-trip (or panics itself).
pub fn check_decoders(bytes: &[u8]) {
    let mut records = 0usize;
    let end = scan_records(bytes, FUZZ_RECORD_BYTES_MAX, |offset, record| {
        records += 1;
        assert!(offset as usize + record.encoded_len() <= bytes.len());
        if let Ok(decoded) = decode_wal_record(record.record_type, record.payload) {
            let mut again = Vec::new();
            let kind = encode_wal_record(&decoded, &mut again);
            assert_eq!(
                kind, record.record_type,
                "record type changed in a round trip"
            );
            assert_eq!(
                again, record.payload,
                "WAL record does not round-trip: {decoded:?}"
            );
        }
        check_register_payload(record.record_type, record.payload);
        if let Ok(header) = decode_snapshot_header(record.payload) {
            let mut again = Vec::new();
            encode_snapshot_header(&header, &mut again);
            assert_eq!(again, record.payload, "snapshot header does not round-trip");
        }
        true
    });
    if let ScanEnd::TornTail { offset, .. } | ScanEnd::Corrupt { offset, .. } = end {
        assert!(offset as usize <= bytes.len());
    }
    // The payload decoders also see the raw input, framing or not.
    if let Some((&kind, payload)) = bytes.split_first() {
        check_register_payload(kind, payload);
        if let Ok(decoded) = decode_wal_record(kind, payload) {
            let mut again = Vec::new();
            encode_wal_record(&decoded, &mut again);
            assert_eq!(
                again, payload,
                "WAL record does not round-trip: {decoded:?}"
            );
        }
    }
}

/// The register store's decoders (log and checkpoint records) on one payload: no panic, and what
/// decodes re-encodes to the same bytes and type.
pub fn check_register_payload(kind: u8, payload: &[u8]) {
    if let Ok(decoded) = decode_log_record(kind, payload) {
        let mut again = Vec::new();
        assert_eq!(encode_log_record(&decoded, &mut again), kind);
        assert_eq!(
            again, payload,
            "register log record does not round-trip: {decoded:?}"
        );
    }
    if let Ok(decoded) = decode_checkpoint_record(kind, payload) {
        let mut again = Vec::new();
        assert_eq!(encode_checkpoint_record(&decoded, &mut again), kind);
        assert_eq!(
            again, payload,
            "checkpoint record does not round-trip: {decoded:?}"
        );
    }
}
