//! The limits that cross a boundary (daemon, library, ring, C header, Python), in one place.
//! The daemon enforces them when a member joins; the C structs are sized from them (the header's
//! `RINGRAFT_*_MAX` count the terminating NUL, and `ffi/src/types.rs` asserts at compile time
//! that they are these plus one); the ring's own zone bound is asserted equal (ffi, daemon).

/// A member's name, in bytes of UTF-8.
pub const MEMBER_NAME_BYTES_MAX: usize = 63;

/// A member's QUIC address, in bytes: an IP literal and a port (`10.0.0.5:7400`,
/// `[fd00::5]:7400`). Host names are not accepted (they are not resolved): the longest literal
/// is 47 bytes, and the room left is for a future that resolves names.
pub const MEMBER_ADDRESS_BYTES_MAX: usize = 255;

/// A member's zone (failure domain), in bytes of UTF-8; empty when zones are not used.
pub const MEMBER_ZONE_BYTES_MAX: usize = 255;

/// `expected_version` of `KvCas` / `KvDelete` meaning "whatever the version is"
/// (`RINGRAFT_KV_ANY_VERSION` in C, `None` in Python). The daemon asserts at compile time that
/// it is the registers' own `ringraft_paxos::limits::ANY_VERSION`.
pub const KV_ANY_VERSION: u64 = u64::MAX;

/// Default bound on a register's value (`limits.kv_value_bytes_max`); the daemon asserts it is
/// `ringraft_paxos::limits::VALUE_BYTES_MAX_DEFAULT`.
pub const KV_VALUE_BYTES_MAX_DEFAULT: usize = 64 << 10;

/// The longest key a register takes, in bytes. The handshake does not carry it: it is the same
/// for every daemon of this protocol version. The daemon asserts it is
/// `ringraft_paxos::limits::KEY_BYTES_MAX`.
pub const KV_KEY_BYTES_MAX: usize = 4096;
