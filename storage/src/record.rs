//! Record framing shared by WAL segments and snapshot files (docs/storage.md, "Records").
//!
//! ```text
//! 0..4    payload length, u32 LE
//! 4       record type
//! 5..8    reserved, zero
//! 8..12   CRC32C of the payload, u32 LE
//! 12..16  CRC32C of bytes 0..12, u32 LE
//! 16..    payload
//! ```
//!
//! The header has its own checksum so a damaged length is recognised before it is believed:
//! without it a flipped length bit in the middle of a segment would look like a record running
//! past the end of the file, that is, like a torn tail, and recovery would drop acknowledged data.

pub const RECORD_HEADER_BYTES: usize = 16;

/// Record types. Values are part of the on-disk format: only ever add.
pub mod record_type {
    pub const SEGMENT_HEADER: u8 = 1;
    pub const ENTRY: u8 = 2;
    pub const HARD_STATE: u8 = 3;
    pub const SNAPSHOT_MARKER: u8 = 4;
    pub const SEGMENT_SEAL: u8 = 5;
    pub const SNAPSHOT_META: u8 = 16;
    pub const SNAPSHOT_CHUNK: u8 = 17;
    /// The register store (docs/storage.md, "Register store"). Its segments end with a
    /// `SEGMENT_SEAL` (5), with the same payload and meaning as in the Raft WAL.
    pub const REGISTER_SEGMENT_HEADER: u8 = 32;
    pub const REGISTER_KEY: u8 = 33;
    pub const REGISTER_FORGOT: u8 = 34;
    pub const REGISTER_BALLOTS_RESERVED: u8 = 35;
    pub const CHECKPOINT_HEADER: u8 = 36;
    pub const CHECKPOINT_END: u8 = 37;
}

/// A record whose header and payload checksums both hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawRecord<'a> {
    pub record_type: u8,
    pub payload: &'a [u8],
}

impl RawRecord<'_> {
    pub fn encoded_len(&self) -> usize {
        RECORD_HEADER_BYTES + self.payload.len()
    }
}

/// Why the bytes at some offset are not a valid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The buffer ends inside the header or inside the payload the header announces.
    Incomplete,
    /// The 16 header bytes are all zero (a zero-filled region, as a torn write can leave).
    ZeroHeader,
    BadHeaderChecksum,
    /// The header checksum holds but the reserved bytes are not zero: a newer format.
    UnknownHeaderFormat,
    /// The header checksum holds but the length is above the configured limit.
    TooLarge {
        payload_bytes: u32,
        limit_bytes: u32,
    },
    BadPayloadChecksum,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Incomplete => write!(f, "record cut short by the end of the file"),
            FrameError::ZeroHeader => write!(f, "zero-filled record header"),
            FrameError::BadHeaderChecksum => write!(f, "record header checksum mismatch"),
            FrameError::UnknownHeaderFormat => write!(f, "record header has unknown flags set"),
            FrameError::TooLarge {
                payload_bytes,
                limit_bytes,
            } => write!(
                f,
                "record payload of {payload_bytes} bytes exceeds the limit of {limit_bytes} bytes"
            ),
            FrameError::BadPayloadChecksum => write!(f, "record payload checksum mismatch"),
        }
    }
}

/// Appends one framed record to `out`.
pub fn encode_record(record_type: u8, payload: &[u8], out: &mut Vec<u8>) {
    let payload_len =
        u32::try_from(payload.len()).expect("callers bound payloads below u32::MAX bytes");
    let mut header = [0u8; RECORD_HEADER_BYTES];
    header[0..4].copy_from_slice(&payload_len.to_le_bytes());
    header[4] = record_type;
    header[8..12].copy_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    let header_crc = crc32c::crc32c(&header[0..12]);
    header[12..16].copy_from_slice(&header_crc.to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(payload);
}

/// Decodes the record at the start of `buf`. Never panics and never allocates, whatever the bytes.
pub fn decode_record(buf: &[u8], payload_bytes_max: u32) -> Result<RawRecord<'_>, FrameError> {
    let Some(header) = buf.get(..RECORD_HEADER_BYTES) else {
        return Err(FrameError::Incomplete);
    };
    if header.iter().all(|&b| b == 0) {
        return Err(FrameError::ZeroHeader);
    }
    let stored_header_crc = le_u32(&header[12..16]);
    if crc32c::crc32c(&header[0..12]) != stored_header_crc {
        return Err(FrameError::BadHeaderChecksum);
    }
    if header[5..8] != [0, 0, 0] {
        return Err(FrameError::UnknownHeaderFormat);
    }
    let payload_bytes = le_u32(&header[0..4]);
    if payload_bytes > payload_bytes_max {
        return Err(FrameError::TooLarge {
            payload_bytes,
            limit_bytes: payload_bytes_max,
        });
    }
    let payload_end = RECORD_HEADER_BYTES + payload_bytes as usize;
    let Some(payload) = buf.get(RECORD_HEADER_BYTES..payload_end) else {
        return Err(FrameError::Incomplete);
    };
    if crc32c::crc32c(payload) != le_u32(&header[8..12]) {
        return Err(FrameError::BadPayloadChecksum);
    }
    Ok(RawRecord {
        record_type: header[4],
        payload,
    })
}

/// How a scan of a whole file ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanEnd {
    /// Every byte belongs to a valid record.
    Clean,
    /// A torn write: from `offset` on the file holds only a cut-short record, a record whose
    /// payload fails its checksum with nothing but zeros after it, or a header-sized fragment
    /// followed by zeros. Everything from `offset` on was never acknowledged.
    TornTail { offset: u64, cause: FrameError },
    /// A bad record with more data after it: damage inside data that was acknowledged.
    Corrupt { offset: u64, cause: FrameError },
}

/// Splits a file into records. Valid records before the first bad one are handed to `on_record`
/// with their offsets; the return value says how the file ended. The decision between a torn tail
/// and corruption is the one specified in docs/storage.md ("Recovery").
pub fn scan_records<'a>(
    bytes: &'a [u8],
    payload_bytes_max: u32,
    mut on_record: impl FnMut(u64, RawRecord<'a>) -> bool,
) -> ScanEnd {
    let mut offset = 0usize;
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        match decode_record(rest, payload_bytes_max) {
            Ok(record) => {
                if !on_record(offset as u64, record) {
                    return ScanEnd::Clean;
                }
                offset += record.encoded_len();
            }
            Err(cause) => {
                let offset_u64 = offset as u64;
                return if is_torn(rest, cause) {
                    ScanEnd::TornTail {
                        offset: offset_u64,
                        cause,
                    }
                } else {
                    ScanEnd::Corrupt {
                        offset: offset_u64,
                        cause,
                    }
                };
            }
        }
    }
    ScanEnd::Clean
}

fn is_torn(rest: &[u8], cause: FrameError) -> bool {
    let all_zero_after = |from: usize| rest.get(from..).is_none_or(|t| t.iter().all(|&b| b == 0));
    match cause {
        FrameError::Incomplete => true,
        FrameError::ZeroHeader | FrameError::BadHeaderChecksum => {
            all_zero_after(RECORD_HEADER_BYTES)
        }
        FrameError::BadPayloadChecksum => {
            let payload_bytes = le_u32(&rest[0..4]) as usize;
            all_zero_after(RECORD_HEADER_BYTES + payload_bytes)
        }
        FrameError::TooLarge { .. } | FrameError::UnknownHeaderFormat => false,
    }
}

fn le_u32(bytes: &[u8]) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[..4]);
    u32::from_le_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_cut_is_incomplete() {
        let mut buf = Vec::new();
        encode_record(record_type::ENTRY, b"hello world", &mut buf);
        let record = decode_record(&buf, 1024).unwrap();
        assert_eq!(record.record_type, record_type::ENTRY);
        assert_eq!(record.payload, b"hello world");
        for cut in 0..buf.len() {
            assert_eq!(
                decode_record(&buf[..cut], 1024),
                Err(FrameError::Incomplete),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let mut buf = Vec::new();
        encode_record(record_type::HARD_STATE, &[7u8; 40], &mut buf);
        for bit in 0..buf.len() * 8 {
            let mut damaged = buf.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(
                decode_record(&damaged, 1024).is_err(),
                "bit {bit} went unnoticed"
            );
        }
    }

    #[test]
    fn length_above_limit_is_rejected_before_reading_payload() {
        let mut buf = Vec::new();
        encode_record(record_type::ENTRY, &[1u8; 100], &mut buf);
        assert_eq!(
            decode_record(&buf, 99),
            Err(FrameError::TooLarge {
                payload_bytes: 100,
                limit_bytes: 99
            })
        );
    }

    #[test]
    fn damaged_length_in_the_middle_is_corruption_not_a_torn_tail() {
        let mut buf = Vec::new();
        for _ in 0..3 {
            encode_record(record_type::ENTRY, &[3u8; 20], &mut buf);
        }
        buf[RECORD_HEADER_BYTES + 20 + 2] ^= 0x40;
        let end = scan_records(&buf, 1 << 20, |_, _| true);
        assert!(
            matches!(end, ScanEnd::Corrupt { offset: 36, .. }),
            "{end:?}"
        );
    }
}
