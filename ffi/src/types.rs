//! The plain structs libringraft hands to C. They are part of the ABI: fixed layout, no padding
//! (so a filled struct compares with memcmp), strings in fixed NUL-terminated arrays, no pointers
//! except in the log batch and the register entry, whose memory the library owns until
//! ringraft_log_batch_free() / ringraft_kv_entry_free().

use std::ffi::{c_char, c_void};

use ringraft_proto::{limits, Member, MemberRole, MemberState, NodeRole, StatusInfo};

/// Size of ringraft_node.name, including the terminating NUL (so at most 63 bytes of name, the
/// daemon's limit).
pub const RINGRAFT_NAME_MAX: usize = 64;
/// Size of ringraft_node.address, including the terminating NUL (at most 255 bytes of
/// `ip:port`: the daemon takes IP literals only, no host names).
pub const RINGRAFT_ADDRESS_MAX: usize = 256;
/// Size of ringraft_node.zone, including the terminating NUL (at most 255 bytes, the daemon's and
/// the ring's limit).
pub const RINGRAFT_ZONE_MAX: usize = 256;

// The header's sizes are literals (cbindgen writes them as they are); they are the one set of
// limits in `ringraft_proto::limits`, plus the NUL.
const _: () = assert!(RINGRAFT_NAME_MAX == limits::MEMBER_NAME_BYTES_MAX + 1);
const _: () = assert!(RINGRAFT_ADDRESS_MAX == limits::MEMBER_ADDRESS_BYTES_MAX + 1);
const _: () = assert!(RINGRAFT_ZONE_MAX == limits::MEMBER_ZONE_BYTES_MAX + 1);
const _: () = assert!(ringraft_ring::ZONE_BYTES_MAX == limits::MEMBER_ZONE_BYTES_MAX);
/// Size of ringraft_cluster_info.daemon_version, including the terminating NUL.
pub const RINGRAFT_VERSION_STRING_MAX: usize = 32;

/// ringraft_node.flags bit: a string field was longer than its array and was cut (at a UTF-8
/// character boundary) to fit. The id is always exact.
pub const RINGRAFT_NODE_TRUNCATED: u8 = 1;

/// Whether a member votes in Raft or only follows the log.
#[repr(u8)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ringraft_member_role {
    RINGRAFT_ROLE_VOTER = 0,
    RINGRAFT_ROLE_LEARNER = 1,
}

/// A member's state. Only active members own keys.
#[repr(u8)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ringraft_member_state {
    RINGRAFT_STATE_ACTIVE = 0,
    /// Leaving on purpose: owns no keys, still replicates the log.
    RINGRAFT_STATE_DRAINING = 1,
    /// Not heard from within the failure detector's timeout: owns no keys.
    RINGRAFT_STATE_DOWN = 2,
}

/// The Raft role of the node the client is connected to.
#[repr(u8)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ringraft_node_role {
    RINGRAFT_NODE_FOLLOWER = 0,
    RINGRAFT_NODE_CANDIDATE = 1,
    RINGRAFT_NODE_LEADER = 2,
    RINGRAFT_NODE_LEARNER = 3,
}

/// One cluster member, by value. 592 bytes, no padding, no pointers: two answers about the same
/// member are byte-for-byte equal, so memcmp compares them. Every string is NUL-terminated and
/// zero-filled to the end of its array. The daemon refuses names, addresses and zones over 63
/// bytes, so today every string fits; should a later daemon allow longer ones, they are cut to
/// fit (at a UTF-8 character boundary) and `flags` has RINGRAFT_NODE_TRUNCATED set.
/// ringraft_join() refuses strings that would not fit.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ringraft_node {
    /// The member's node id (never 0).
    pub id: u64,
    /// Relative share of the ring (tokens = vnodes × weight).
    pub weight: u32,
    pub role: ringraft_member_role,
    pub state: ringraft_member_state,
    /// RINGRAFT_NODE_TRUNCATED or 0.
    pub flags: u8,
    /// Always 0.
    pub reserved: u8,
    /// The member's name, NUL-terminated.
    pub name: [c_char; RINGRAFT_NAME_MAX],
    /// The member's peer (QUIC) address, an IP literal and port (`10.0.0.11:7400`,
    /// `[fd00::11]:7400`; the daemon takes no host names), NUL-terminated.
    pub address: [c_char; RINGRAFT_ADDRESS_MAX],
    /// The member's failure zone, NUL-terminated; empty when zones are not used.
    pub zone: [c_char; RINGRAFT_ZONE_MAX],
}

/// What ringraft_cluster_status() reports about the node the client is connected to. 176 bytes,
/// no padding, no pointers.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ringraft_cluster_info {
    pub node_id: u64,
    /// The cluster's id. Shown to people as 16 lowercase hex digits, zero-padded
    /// (`printf("%016" PRIx64, info.cluster_id)`), the form ringraftctl and the daemon's logs use.
    pub cluster_id: u64,
    pub term: u64,
    /// 0 when no leader is known.
    pub leader_id: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    pub last_index: u64,
    pub snapshot_index: u64,
    /// Raft index of the last membership change: the ring's epoch.
    pub epoch: u64,
    pub member_count: u32,
    pub role: ringraft_node_role,
    /// Always 0.
    pub reserved: [u8; 3],
    /// This node's name, NUL-terminated (cut to fit like ringraft_node.name).
    pub name: [c_char; RINGRAFT_NAME_MAX],
    /// The daemon's version string, NUL-terminated.
    pub daemon_version: [c_char; RINGRAFT_VERSION_STRING_MAX],
}

/// One committed application proposal, as read from the log.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy)]
pub struct ringraft_log_record {
    /// The Raft index that committed it: its place in the cluster's one order.
    pub index: u64,
    /// The proposal's bytes, owned by the batch that holds this record (NULL when len is 0).
    pub data: *const u8,
    pub len: usize,
}

/// A batch of log records returned by ringraft_read_log() and ringraft_watch_next(). The caller
/// owns the struct; the library owns `records` and every record's data until
/// ringraft_log_batch_free(), which must be called once for every batch a call filled.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug)]
pub struct ringraft_log_batch {
    /// `count` records in index order (NULL when count is 0).
    pub records: *const ringraft_log_record,
    pub count: usize,
    /// The lowest index the node still keeps (older records were compacted away).
    pub first_index: u64,
    /// The highest committed index applied on the node when it answered.
    pub last_index: u64,
    /// The library's bookkeeping; do not touch.
    pub internal: *mut c_void,
}

/// `expected_version` of ringraft_kv_cas() and ringraft_kv_delete() meaning "whatever the
/// version is": a cas with it is a put, a delete with it deletes unconditionally.
pub const RINGRAFT_KV_ANY_VERSION: u64 = u64::MAX;

const _: () = assert!(RINGRAFT_KV_ANY_VERSION == limits::KV_ANY_VERSION);

/// A register as ringraft_kv_get() found it. 32 bytes on 64-bit targets (8-byte pointer and
/// size_t), no padding. The caller owns the struct; the library owns `value` until
/// ringraft_kv_entry_free(), which must be called once for every entry ringraft_kv_get() filled
/// (it is harmless on a zeroed or already freed entry).
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug)]
pub struct ringraft_kv_entry {
    /// The value's bytes, owned by the library until ringraft_kv_entry_free() (NULL when
    /// value_len is 0: an empty value, or an absent register).
    pub value: *mut u8,
    pub value_len: usize,
    /// Counts the successful writes since the register was last absent; 0: absent.
    pub version: u64,
    /// The ring epoch the answer was made under.
    pub epoch: u64,
}

impl ringraft_kv_entry {
    pub(crate) const fn zeroed() -> Self {
        ringraft_kv_entry {
            value: std::ptr::null_mut(),
            value_len: 0,
            version: 0,
            epoch: 0,
        }
    }
}

const _: () = assert!(
    std::mem::size_of::<ringraft_kv_entry>()
        == 2 * std::mem::size_of::<usize>() + 2 * std::mem::size_of::<u64>()
);

const _: () = assert!(std::mem::size_of::<ringraft_node>() == 592);
const _: () = assert!(std::mem::size_of::<ringraft_cluster_info>() == 176);

/// Copies `src` into a fixed C string array: NUL-terminated, zero-filled. Returns true when it
/// had to cut `src` (at a UTF-8 character boundary) to fit.
pub(crate) fn copy_c_string<const N: usize>(dst: &mut [c_char; N], src: &str) -> bool {
    let mut len = src.len().min(N - 1);
    while !src.is_char_boundary(len) {
        len -= 1;
    }
    dst.fill(0);
    for (slot, byte) in dst.iter_mut().zip(&src.as_bytes()[..len]) {
        *slot = *byte as c_char;
    }
    len < src.len()
}

impl ringraft_node {
    pub(crate) const fn zeroed() -> Self {
        ringraft_node {
            id: 0,
            weight: 0,
            role: ringraft_member_role::RINGRAFT_ROLE_VOTER,
            state: ringraft_member_state::RINGRAFT_STATE_ACTIVE,
            flags: 0,
            reserved: 0,
            name: [0; RINGRAFT_NAME_MAX],
            address: [0; RINGRAFT_ADDRESS_MAX],
            zone: [0; RINGRAFT_ZONE_MAX],
        }
    }

    pub(crate) fn from_member(member: &Member) -> Self {
        let mut node = ringraft_node {
            id: member.id,
            weight: member.weight,
            ..ringraft_node::zeroed()
        };
        node.role = match member.role {
            MemberRole::Voter => ringraft_member_role::RINGRAFT_ROLE_VOTER,
            MemberRole::Learner => ringraft_member_role::RINGRAFT_ROLE_LEARNER,
        };
        node.state = match member.state {
            MemberState::Active => ringraft_member_state::RINGRAFT_STATE_ACTIVE,
            MemberState::Draining => ringraft_member_state::RINGRAFT_STATE_DRAINING,
            MemberState::Down => ringraft_member_state::RINGRAFT_STATE_DOWN,
        };
        let mut truncated = copy_c_string(&mut node.name, &member.name);
        truncated |= copy_c_string(&mut node.address, &member.address);
        truncated |= copy_c_string(&mut node.zone, &member.zone);
        if truncated {
            node.flags |= RINGRAFT_NODE_TRUNCATED;
        }
        node
    }
}

impl ringraft_cluster_info {
    pub(crate) fn from_status(info: &StatusInfo) -> Self {
        let mut out = ringraft_cluster_info {
            node_id: info.node_id,
            cluster_id: info.cluster_id,
            term: info.term,
            leader_id: info.leader_id,
            commit_index: info.commit_index,
            applied_index: info.applied_index,
            last_index: info.last_index,
            snapshot_index: info.snapshot_index,
            epoch: info.epoch,
            member_count: info.member_count,
            role: match info.role {
                NodeRole::Follower => ringraft_node_role::RINGRAFT_NODE_FOLLOWER,
                NodeRole::Candidate => ringraft_node_role::RINGRAFT_NODE_CANDIDATE,
                NodeRole::Leader => ringraft_node_role::RINGRAFT_NODE_LEADER,
                NodeRole::Learner => ringraft_node_role::RINGRAFT_NODE_LEARNER,
            },
            reserved: [0; 3],
            name: [0; RINGRAFT_NAME_MAX],
            daemon_version: [0; RINGRAFT_VERSION_STRING_MAX],
        };
        copy_c_string(&mut out.name, &info.name);
        copy_c_string(&mut out.daemon_version, &info.daemon_version);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn as_bytes<const N: usize>(array: &[c_char; N]) -> Vec<u8> {
        array.iter().map(|c| *c as u8).collect()
    }

    #[test]
    fn short_strings_are_zero_filled_and_not_truncated() {
        let mut dst = [7 as c_char; 8];
        assert!(!copy_c_string(&mut dst, "abc"));
        assert_eq!(as_bytes(&dst), b"abc\0\0\0\0\0");
    }

    #[test]
    fn long_strings_are_cut_at_a_char_boundary_and_terminated() {
        let mut dst = [0 as c_char; 6];
        // "aaaé" is 5 bytes; with room for 5 it fits exactly.
        assert!(!copy_c_string(&mut dst, "aaaé"));
        // "aaaaé" is 6 bytes; the 2-byte é cannot be split, so 4 bytes remain.
        assert!(copy_c_string(&mut dst, "aaaaé"));
        assert_eq!(as_bytes(&dst), b"aaaa\0\0");
    }
}
