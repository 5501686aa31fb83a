//! Read-only questions: cluster status, members, owner, replicas.

use std::mem::MaybeUninit;

use ringraft_proto::{Request, Response, Status};

use super::{
    key_bytes, output_array, replica_count, require_out, ringraft_client, with_client, write_out,
};
use crate::client::{unexpected, Client, Retry};
use crate::error::{Error, Result};
use crate::status::ringraft_status;
use crate::types::{ringraft_cluster_info, ringraft_node};

/// Writes `members` into the caller's array, or reports how many are needed.
fn fill_nodes(
    members: &[ringraft_node],
    out: &mut [MaybeUninit<ringraft_node>],
    count: *mut usize,
) -> Result<()> {
    // SAFETY: `count` was checked non-NULL by the caller of this helper.
    unsafe { write_out(count, members.len()) };
    if members.len() > out.len() {
        return Err(Error::new(
            Status::BufferTooSmall,
            format!("{} members, room for {}", members.len(), out.len()),
        ));
    }
    for (slot, member) in out.iter_mut().zip(members) {
        slot.write(*member);
    }
    Ok(())
}

/// Asks the daemon (no cache) for the replicas of `key`.
fn replicas_from_daemon(
    client: &Client,
    key: &[u8],
    n: usize,
) -> Result<(u64, Vec<ringraft_node>)> {
    let request = Request::Replicas {
        key: key.to_vec(),
        n: u32::try_from(n).unwrap_or(u32::MAX),
        linearizable: client.shared.linearizable(),
    };
    match client
        .shared
        .call(request, Retry::Idempotent, client.shared.deadline())?
    {
        Response::Replicas { epoch, members } => Ok((
            epoch,
            members.iter().map(ringraft_node::from_member).collect(),
        )),
        other => Err(unexpected("Replicas", &other)),
    }
}

/// Status of the node the client is connected to: its id, name, Raft role, term, leader, log
/// indexes and the ring epoch.
///
/// Blocks: yes, one round trip (up to the client timeout).
/// Ownership: `out` belongs to the caller and is written only on success.
/// Errors: RINGRAFT_INVALID_ARGUMENT (`client` or `out` NULL), RINGRAFT_UNAVAILABLE (daemon
/// unreachable even after one reconnection), RINGRAFT_TIMEOUT, RINGRAFT_CLOSED.
#[no_mangle]
pub unsafe extern "C" fn ringraft_cluster_status(
    client: *mut ringraft_client,
    out: *mut ringraft_cluster_info,
) -> ringraft_status {
    with_client(client, |client| {
        require_out(out, "out")?;
        match client
            .shared
            .call(Request::Status, Retry::Idempotent, client.shared.deadline())?
        {
            Response::Status(info) => {
                client.cache.saw_epoch(info.epoch);
                write_out(out, ringraft_cluster_info::from_status(&info));
                Ok(())
            }
            other => Err(unexpected("Status", &other)),
        }
    })
}

/// All members of the cluster (active, draining and down), by value.
///
/// `out` has room for `capacity` nodes. On success `*count` is the number written. When there
/// are more members than `capacity`, nothing is written, `*count` is the number needed and the
/// call returns RINGRAFT_BUFFER_TOO_SMALL (call again with a larger array). `epoch`, if not NULL,
/// receives the ring epoch of the answer. `out` may be NULL when `capacity` is 0 (to ask the
/// size).
///
/// Blocks: yes, one round trip (up to the client timeout).
/// Ownership: `out`, `count` and `epoch` belong to the caller.
/// Errors: RINGRAFT_INVALID_ARGUMENT (`client` or `count` NULL, `out` NULL with capacity > 0),
/// RINGRAFT_BUFFER_TOO_SMALL, RINGRAFT_UNAVAILABLE, RINGRAFT_TIMEOUT, RINGRAFT_NO_LEADER (when
/// linearizable), RINGRAFT_CLOSED.
#[no_mangle]
pub unsafe extern "C" fn ringraft_members(
    client: *mut ringraft_client,
    out: *mut ringraft_node,
    capacity: usize,
    count: *mut usize,
    epoch: *mut u64,
) -> ringraft_status {
    with_client(client, |client| {
        require_out(count, "count")?;
        let out = output_array(out, capacity, "out")?;
        let request = Request::Members {
            linearizable: client.shared.linearizable(),
        };
        match client
            .shared
            .call(request, Retry::Idempotent, client.shared.deadline())?
        {
            Response::Members {
                epoch: answer_epoch,
                members,
            } => {
                client.cache.saw_epoch(answer_epoch);
                let nodes: Vec<ringraft_node> =
                    members.iter().map(ringraft_node::from_member).collect();
                fill_nodes(&nodes, out, count)?;
                write_out(epoch, answer_epoch);
                Ok(())
            }
            other => Err(unexpected("Members", &other)),
        }
    })
}

/// The node that owns `key` (the `len` bytes at `key`): the member of the first ring token at or
/// after the key's position. Answered from the ring cache when it is on (and the client is not
/// linearizable), else by the daemon.
///
/// Blocks: with the ring cache, no (a few tens of nanoseconds); else one round trip (up to the
/// client timeout).
/// Ownership: `key` is only read during the call; `out` belongs to the caller and is written
/// only on success (all 592 bytes, so answers compare with memcmp).
/// Errors: RINGRAFT_INVALID_ARGUMENT (`client`, `key` or `out` NULL, `len` 0),
/// RINGRAFT_TOO_LARGE (key over the frame limit), RINGRAFT_NOT_FOUND (no active member owns
/// keys), RINGRAFT_UNAVAILABLE, RINGRAFT_TIMEOUT, RINGRAFT_NO_LEADER (when linearizable),
/// RINGRAFT_CLOSED.
#[no_mangle]
pub unsafe extern "C" fn ringraft_owner(
    client: *mut ringraft_client,
    key: *const u8,
    len: usize,
    out: *mut ringraft_node,
) -> ringraft_status {
    with_client(client, |client| {
        require_out(out, "out")?;
        let key = key_bytes(key, len)?;
        if !client.shared.linearizable() {
            if let Some(view) = client.cache.view() {
                if let Some(view) = view.as_ref() {
                    write_out(out, *view.owner(key)?);
                    return Ok(());
                }
            }
        }
        let request = Request::Owner {
            key: key.to_vec(),
            linearizable: client.shared.linearizable(),
        };
        match client
            .shared
            .call(request, Retry::Idempotent, client.shared.deadline())?
        {
            Response::Owner { epoch, member } => {
                client.cache.saw_epoch(epoch);
                write_out(out, ringraft_node::from_member(&member));
                Ok(())
            }
            other => Err(unexpected("Owner", &other)),
        }
    })
}

/// The `n` nodes that hold `key`, owner first: distinct members, distinct zones first when zones
/// are set. Fewer than `n` when fewer members own keys. `out` must have room for `n` nodes;
/// `*count` receives the number written. Answered from the ring cache when it is on (and the
/// client is not linearizable), else by the daemon.
///
/// Blocks: with the ring cache, no; else one round trip (up to the client timeout).
/// Ownership: `key` is only read during the call; `out` and `count` belong to the caller.
/// Errors: RINGRAFT_INVALID_ARGUMENT (`client`, `key`, `out` or `count` NULL, `len` 0, `n` 0),
/// RINGRAFT_TOO_LARGE, RINGRAFT_NOT_FOUND (no active member owns keys), RINGRAFT_UNAVAILABLE,
/// RINGRAFT_TIMEOUT, RINGRAFT_NO_LEADER (when linearizable), RINGRAFT_CLOSED.
#[no_mangle]
pub unsafe extern "C" fn ringraft_replicas(
    client: *mut ringraft_client,
    key: *const u8,
    len: usize,
    n: usize,
    out: *mut ringraft_node,
    count: *mut usize,
) -> ringraft_status {
    with_client(client, |client| {
        require_out(count, "count")?;
        require_out(out, "out")?;
        let key = key_bytes(key, len)?;
        replica_count(n)?;
        let out = output_array(out, n, "out")?;
        if !client.shared.linearizable() {
            if let Some(view) = client.cache.view() {
                if let Some(view) = view.as_ref() {
                    let mut nodes = vec![ringraft_node::zeroed(); n.min(view.members().len())];
                    let written = view.replicas_into(key, &mut nodes)?;
                    return fill_nodes(&nodes[..written], out, count);
                }
            }
        }
        let (epoch, nodes) = replicas_from_daemon(client, key, n)?;
        client.cache.saw_epoch(epoch);
        // A daemon sending more than asked would overrun nothing: fill_nodes refuses it.
        fill_nodes(&nodes, out, count)
    })
}
