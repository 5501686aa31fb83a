//! Admin requests: membership changes, leadership transfer, snapshots. The daemon allows them only
//! to the uids in its admin list (else RINGRAFT_PERMISSION_DENIED). None is ever sent twice: a
//! connection lost with one in flight gives RINGRAFT_UNAVAILABLE, and the change may or may not
//! have happened (ringraft_members() tells).

use ringraft_proto::{Request, Response};

use super::{input_str, ringraft_client, with_client, write_out};
use crate::client::{unexpected, Client, Retry};
use crate::error::{Error, Result};
use crate::status::ringraft_status;
use crate::types::{RINGRAFT_ADDRESS_MAX, RINGRAFT_NAME_MAX, RINGRAFT_ZONE_MAX};

fn admin(client: &Client, request: Request, index: *mut u64) -> Result<()> {
    match client
        .shared
        .call(request, Retry::Never, client.shared.deadline())?
    {
        Response::Done { index: raft_index } => {
            // SAFETY: `index` is NULL or a caller's u64, as the header requires.
            unsafe { write_out(index, raft_index) };
            Ok(())
        }
        other => Err(unexpected("an admin request", &other)),
    }
}

/// `text` must fit a ringraft_node array of `array_bytes` (with its NUL), so every member joined
/// through libringraft reads back whole.
fn fitting(text: &str, array_bytes: usize, what: &str) -> Result<String> {
    if text.len() >= array_bytes {
        return Err(Error::invalid(format!(
            "{what} is {} bytes; at most {} fit",
            text.len(),
            array_bytes - 1
        )));
    }
    Ok(text.to_owned())
}

/// Adds a member: node `id` named `name`, reachable by its peers at `address` (its QUIC address,
/// an IP literal and port; host names are refused), in failure zone `zone` ("" for none) with ring weight `weight`. It joins as a
/// learner; ringraft_promote() makes it a voter. `*index` (may be NULL) receives the Raft index
/// of the change's own entry, which is the ring's new epoch. Joining again with the same id, name,
/// address, zone and weight (a retry) succeeds and gives the index of the original change (0 if
/// the leader no longer knows it, for members older than the snapshot format that records it).
///
/// Blocks: yes, until the change is applied by the connected node (up to the client timeout). A
/// change that cannot start yet (a previous change in flight, a leader just elected, no leader)
/// waits within the daemon's deadline rather than failing.
/// Ownership: the strings are only read during the call.
/// Errors: RINGRAFT_INVALID_ARGUMENT (`client`, `name`, `address` or `zone` NULL, not UTF-8,
/// longer than RINGRAFT_NAME_MAX-1 / RINGRAFT_ADDRESS_MAX-1 / RINGRAFT_ZONE_MAX-1 bytes, `id` 0,
/// `weight` 0, `address` not an ip:port), RINGRAFT_CONFLICT (another member has this id, name or
/// address; the message names it), RINGRAFT_PERMISSION_DENIED, RINGRAFT_TIMEOUT (the change did
/// not start or commit within the daemon's deadline; it may still), RINGRAFT_UNAVAILABLE,
/// RINGRAFT_CLOSED.
#[no_mangle]
pub unsafe extern "C" fn ringraft_join(
    client: *mut ringraft_client,
    id: u64,
    name: *const std::ffi::c_char,
    address: *const std::ffi::c_char,
    zone: *const std::ffi::c_char,
    weight: u32,
    index: *mut u64,
) -> ringraft_status {
    with_client(client, |client| {
        let name = fitting(input_str(name, "name")?, RINGRAFT_NAME_MAX, "name")?;
        let address = fitting(
            input_str(address, "address")?,
            RINGRAFT_ADDRESS_MAX,
            "address",
        )?;
        let zone = fitting(input_str(zone, "zone")?, RINGRAFT_ZONE_MAX, "zone")?;
        if id == 0 {
            return Err(Error::invalid("id 0 is not a node id"));
        }
        if weight == 0 {
            return Err(Error::invalid("weight must be at least 1"));
        }
        let request = Request::Join {
            id,
            name,
            address,
            zone,
            weight,
        };
        admin(client, request, index)
    })
}

/// Removes member `id` from the cluster (its keys move to the others). `*index` (may be NULL)
/// receives the Raft index of the change's own entry, which is the ring's new epoch.
///
/// Blocks: yes, until the change is applied by the connected node (up to the client timeout),
/// waiting within the daemon's deadline while a previous change is in flight or a new leader is
/// not yet able to change membership.
/// Errors: RINGRAFT_INVALID_ARGUMENT (`client` NULL), RINGRAFT_NOT_FOUND (no such member),
/// RINGRAFT_PERMISSION_DENIED, RINGRAFT_TIMEOUT (the change did not start or commit within the
/// daemon's deadline; it may still), RINGRAFT_UNAVAILABLE, RINGRAFT_CLOSED.
#[no_mangle]
pub unsafe extern "C" fn ringraft_remove(
    client: *mut ringraft_client,
    id: u64,
    index: *mut u64,
) -> ringraft_status {
    with_client(client, |client| {
        admin(client, Request::Remove { id }, index)
    })
}

/// Makes learner `id` a voter. The leader accepts only a learner it has heard from within the
/// failure detector's window (`down_after_ms`) whose log is at most `promote_lag_entries_max`
/// entries behind its own. `*index` (may be NULL) receives the Raft index of the change's own
/// entry, which is the ring's new epoch.
///
/// Blocks: yes, until the change is applied by the connected node (up to the client timeout),
/// waiting within the daemon's deadline while a previous change is in flight or a new leader is
/// not yet able to change membership.
/// Errors: RINGRAFT_INVALID_ARGUMENT (`client` NULL), RINGRAFT_NOT_FOUND (no such member),
/// RINGRAFT_CONFLICT (`id` is already a voter), RINGRAFT_UNAVAILABLE (the learner is not
/// reachable or not caught up: the message names how far behind it is and when it was last heard
/// from; or the daemon cannot be reached), RINGRAFT_PERMISSION_DENIED, RINGRAFT_TIMEOUT,
/// RINGRAFT_CLOSED.
#[no_mangle]
pub unsafe extern "C" fn ringraft_promote(
    client: *mut ringraft_client,
    id: u64,
    index: *mut u64,
) -> ringraft_status {
    with_client(client, |client| {
        admin(client, Request::Promote { id }, index)
    })
}

/// Asks the leader to hand leadership to voter `id`. `*index` (may be NULL) receives what the
/// daemon reports (0 if no log entry carried it).
///
/// Blocks: yes, until the daemon answers (up to the client timeout).
/// Errors: RINGRAFT_INVALID_ARGUMENT (`client` NULL), RINGRAFT_NOT_FOUND,
/// RINGRAFT_TRANSFER_IN_PROGRESS, RINGRAFT_PERMISSION_DENIED, RINGRAFT_NO_LEADER,
/// RINGRAFT_TIMEOUT, RINGRAFT_UNAVAILABLE, RINGRAFT_CLOSED.
#[no_mangle]
pub unsafe extern "C" fn ringraft_transfer_leader(
    client: *mut ringraft_client,
    id: u64,
    index: *mut u64,
) -> ringraft_status {
    with_client(client, |client| {
        admin(client, Request::TransferLeader { id }, index)
    })
}

/// Makes the connected node take a snapshot now and compact its log. `*index` (may be NULL)
/// receives the snapshot's last included index.
///
/// Blocks: yes, until the snapshot is written (up to the client timeout).
/// Errors: RINGRAFT_INVALID_ARGUMENT (`client` NULL), RINGRAFT_PERMISSION_DENIED,
/// RINGRAFT_BUSY, RINGRAFT_TIMEOUT, RINGRAFT_UNAVAILABLE, RINGRAFT_CLOSED.
#[no_mangle]
pub unsafe extern "C" fn ringraft_snapshot(
    client: *mut ringraft_client,
    index: *mut u64,
) -> ringraft_status {
    with_client(client, |client| admin(client, Request::Snapshot, index))
}
