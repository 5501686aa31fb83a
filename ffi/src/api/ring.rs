//! The whole ring, as an immutable in-process view that answers owner and replicas offline.

use std::sync::Arc;

use super::{
    guarded, guarded_value, key_bytes, output_array, replica_count, require_out, ringraft_client,
    with_client, write_out,
};
use crate::client::RingView;
use crate::error::{Error, NO_CLIENT};
use crate::status::ringraft_status;
use crate::types::ringraft_node;

/// A snapshot of the cluster's ring at one epoch, rebuilt in this process. Opaque and immutable:
/// any number of threads may query it at once. Free with ringraft_ring_view_free().
pub struct ringraft_ring_view {
    view: Arc<RingView>,
}

/// The ring now: members, replication factor, epoch, and the encoded ring, as a view that answers
/// owner and replicas in process (ringraft_ring_view_owner()). With the ring cache on (and the
/// client not linearizable) this is the cached ring and costs no round trip.
///
/// Blocks: without the cache, one round trip (up to the client timeout).
/// Ownership: on success the caller owns `*out` and frees it with ringraft_ring_view_free(); it
/// stays valid after the client is closed.
/// Errors: RINGRAFT_INVALID_ARGUMENT (`client` or `out` NULL), RINGRAFT_MALFORMED (the ring does
/// not decode), RINGRAFT_UNAVAILABLE, RINGRAFT_TIMEOUT, RINGRAFT_NO_LEADER (when linearizable),
/// RINGRAFT_CLOSED.
#[no_mangle]
pub unsafe extern "C" fn ringraft_ring(
    client: *mut ringraft_client,
    out: *mut *mut ringraft_ring_view,
) -> ringraft_status {
    with_client(client, |client| {
        require_out(out, "out")?;
        let cached = if client.shared.linearizable() {
            None
        } else {
            client
                .cache
                .view()
                .and_then(|guard| guard.as_ref().map(Arc::clone))
        };
        let view = match cached {
            Some(view) => view,
            None => {
                let view = RingView::fetch(&client.shared)?;
                client.cache.saw_epoch(view.epoch());
                Arc::new(view)
            }
        };
        write_out(out, Box::into_raw(Box::new(ringraft_ring_view { view })));
        Ok(())
    })
}

/// Frees a view from ringraft_ring(). Accepts NULL. Never fails, never blocks.
#[no_mangle]
pub unsafe extern "C" fn ringraft_ring_view_free(view: *mut ringraft_ring_view) {
    if !view.is_null() {
        // SAFETY: the caller hands back a pointer from ringraft_ring(), once.
        let view = Box::from_raw(view);
        guarded_value((), || drop(view));
    }
}

/// The view's epoch: the Raft index of the last membership change it includes. 0 for NULL.
/// Never blocks.
#[no_mangle]
pub unsafe extern "C" fn ringraft_ring_view_epoch(view: *const ringraft_ring_view) -> u64 {
    guarded_value(0, || view.as_ref().map_or(0, |view| view.view.epoch()))
}

/// The cluster's replication factor (the usual `n` for replicas). 0 for NULL. Never blocks.
#[no_mangle]
pub unsafe extern "C" fn ringraft_ring_view_replication_factor(
    view: *const ringraft_ring_view,
) -> u32 {
    view.as_ref()
        .map_or(0, |view| view.view.replication_factor())
}

/// The ring in the ringraft-ring encoding (docs/ring.md), for programs that compute owners
/// themselves; `*len` receives its length. NULL (and `*len` 0) for a NULL view.
///
/// Never blocks. Ownership: the bytes belong to the view and live until
/// ringraft_ring_view_free().
#[no_mangle]
pub unsafe extern "C" fn ringraft_ring_view_bytes(
    view: *const ringraft_ring_view,
    len: *mut usize,
) -> *const u8 {
    guarded_value(std::ptr::null(), || {
        let (data, size) = match view.as_ref() {
            Some(view) => (view.view.encoded().as_ptr(), view.view.encoded().len()),
            None => (std::ptr::null(), 0),
        };
        write_out(len, size);
        data
    })
}

/// The view's members, like ringraft_members(): `capacity` slots at `out`, `*count` written or,
/// with RINGRAFT_BUFFER_TOO_SMALL, needed.
///
/// Never blocks. Errors (message in ringraft_last_error(NULL)): RINGRAFT_INVALID_ARGUMENT
/// (`view` or `count` NULL, `out` NULL with capacity > 0), RINGRAFT_BUFFER_TOO_SMALL.
#[no_mangle]
pub unsafe extern "C" fn ringraft_ring_view_members(
    view: *const ringraft_ring_view,
    out: *mut ringraft_node,
    capacity: usize,
    count: *mut usize,
) -> ringraft_status {
    guarded(NO_CLIENT, || {
        let view = view_ref(view)?;
        require_out(count, "count")?;
        let out = output_array(out, capacity, "out")?;
        let members = view.view.members();
        write_out(count, members.len());
        if members.len() > out.len() {
            return Err(Error::new(
                ringraft_proto::Status::BufferTooSmall,
                format!("{} members, room for {}", members.len(), out.len()),
            ));
        }
        for (slot, member) in out.iter_mut().zip(members) {
            slot.write(*member);
        }
        Ok(())
    })
}

/// The owner of `key` in this view, like ringraft_owner().
///
/// Never blocks. Errors (message in ringraft_last_error(NULL)): RINGRAFT_INVALID_ARGUMENT
/// (`view`, `key` or `out` NULL, `len` 0), RINGRAFT_NOT_FOUND (no active member owns keys).
#[no_mangle]
pub unsafe extern "C" fn ringraft_ring_view_owner(
    view: *const ringraft_ring_view,
    key: *const u8,
    len: usize,
    out: *mut ringraft_node,
) -> ringraft_status {
    guarded(NO_CLIENT, || {
        let view = view_ref(view)?;
        require_out(out, "out")?;
        let key = key_bytes(key, len)?;
        write_out(out, *view.view.owner(key)?);
        Ok(())
    })
}

/// The `n` replicas of `key` in this view, like ringraft_replicas(): `out` has room for `n`,
/// `*count` receives the number written.
///
/// Never blocks. Errors (message in ringraft_last_error(NULL)): RINGRAFT_INVALID_ARGUMENT
/// (`view`, `key`, `out` or `count` NULL, `len` 0, `n` 0), RINGRAFT_NOT_FOUND.
#[no_mangle]
pub unsafe extern "C" fn ringraft_ring_view_replicas(
    view: *const ringraft_ring_view,
    key: *const u8,
    len: usize,
    n: usize,
    out: *mut ringraft_node,
    count: *mut usize,
) -> ringraft_status {
    guarded(NO_CLIENT, || {
        let view = view_ref(view)?;
        require_out(count, "count")?;
        require_out(out, "out")?;
        let key = key_bytes(key, len)?;
        replica_count(n)?;
        let out = output_array(out, n, "out")?;
        let mut nodes = vec![ringraft_node::zeroed(); n.min(view.view.members().len())];
        let written = view.view.replicas_into(key, &mut nodes)?;
        for (slot, node) in out.iter_mut().zip(&nodes[..written]) {
            slot.write(*node);
        }
        write_out(count, written);
        Ok(())
    })
}

/// The view behind a handle from C; NULL is an argument error.
///
/// # Safety
/// A non-NULL `view` must come from ringraft_ring() and not be freed yet.
unsafe fn view_ref<'a>(view: *const ringraft_ring_view) -> Result<&'a ringraft_ring_view, Error> {
    view.as_ref().ok_or_else(|| Error::invalid("view is NULL"))
}
