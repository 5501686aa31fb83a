//! Rings in process: `RingView` is one answer of the Ring request rebuilt with ringraft-ring
//! (the same code the daemon runs, so the same owner for every key), and `RingCache` keeps the
//! current view of a client fresh from a background thread.
//!
//! Freshness: every `refresh` the thread asks the daemon for its Status (a small answer carrying
//! the ring epoch) and, only when the epoch moved, fetches the changes since its own epoch
//! (`RingSince`: O(change) bytes, applied to a copy of the cached ring), or the whole ring when
//! the daemon no longer keeps that history. Answers from the socket
//! that carry a newer epoch wake it at once. A cached answer may therefore lag the daemon by up to
//! one refresh interval plus a round trip; while the daemon is unreachable the last ring keeps
//! answering.

use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use ringraft_proto::{Member, Request, Response, Status};
use ringraft_ring::{Ring, RingDelta};

use super::{unexpected, Retry, Shared};
use crate::error::{Error, Result};
use crate::types::ringraft_node;

pub struct RingView {
    ring: Ring,
    epoch: u64,
    replication_factor: u32,
    /// Ascending id (the daemon's order): the cached owner path finds a member by binary
    /// search, which beats hashing within its budget of tens of nanoseconds.
    members: Vec<ringraft_node>,
    /// The whole ring's encoding, made when first asked for: a view that follows by deltas
    /// never needs it unless a program asks.
    encoded: OnceLock<Vec<u8>>,
}

fn malformed(what: impl std::fmt::Display) -> Error {
    Error::new(Status::Malformed, what.to_string())
}

impl RingView {
    /// Asks the daemon for its whole ring and rebuilds it here.
    pub fn fetch(shared: &Shared) -> Result<RingView> {
        let request = Request::Ring {
            linearizable: shared.linearizable(),
        };
        let response = shared.call(request, Retry::Idempotent, shared.deadline())?;
        RingView::from_ring(response)
    }

    /// The view at the daemon's epoch, fetched as the changes since this one (O(change) bytes
    /// on the socket), or whole when the daemon no longer holds those changes.
    pub fn refresh(&self, shared: &Shared) -> Result<RingView> {
        let request = Request::RingSince {
            epoch: self.epoch,
            linearizable: shared.linearizable(),
        };
        match shared.call(request, Retry::Idempotent, shared.deadline())? {
            Response::RingDelta {
                from_epoch,
                epoch,
                delta,
                members,
                removed,
                replication_factor,
            } => {
                if from_epoch != self.epoch || epoch < from_epoch {
                    return Err(malformed(format_args!(
                        "the daemon's ring delta goes from epoch {from_epoch} to {epoch}, asked \
                         from {}",
                        self.epoch
                    )));
                }
                let delta = RingDelta::decode(&delta)
                    .map_err(|e| malformed(format_args!("the daemon's ring delta: {e}")))?;
                let mut ring = self.ring.clone();
                ring.apply_delta(&delta).map_err(|e| {
                    malformed(format_args!("the daemon's ring delta does not apply: {e}"))
                })?;
                Ok(RingView {
                    ring,
                    epoch,
                    replication_factor,
                    members: merge_members(&self.members, &members, &removed)?,
                    encoded: OnceLock::new(),
                })
            }
            other => RingView::from_ring(other),
        }
    }

    fn from_ring(response: Response) -> Result<RingView> {
        match response {
            Response::Ring {
                epoch,
                ring,
                members,
                replication_factor,
            } => {
                let decoded = Ring::decode(&ring).map_err(|e| {
                    malformed(format_args!("the daemon's ring does not decode: {e}"))
                })?;
                let mut members: Vec<ringraft_node> =
                    members.iter().map(ringraft_node::from_member).collect();
                members.sort_unstable_by_key(|member| member.id);
                Ok(RingView {
                    ring: decoded,
                    epoch,
                    replication_factor,
                    members,
                    encoded: OnceLock::from(ring),
                })
            }
            other => Err(unexpected("Ring", &other)),
        }
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn replication_factor(&self) -> u32 {
        self.replication_factor
    }

    pub fn members(&self) -> &[ringraft_node] {
        &self.members
    }

    /// The ring in the ringraft-ring encoding (docs/ring.md).
    pub fn encoded(&self) -> &[u8] {
        self.encoded.get_or_init(|| self.ring.encode())
    }

    fn node(&self, id: u64) -> Result<&ringraft_node> {
        let found = self.members.binary_search_by_key(&id, |member| member.id);
        found.map(|at| &self.members[at]).map_err(|_| {
            Error::new(
                Status::Malformed,
                format!("the ring names member {id}, which the member list lacks"),
            )
        })
    }

    /// The owner of `key`, by reference: the caller copies it once, straight to its destination.
    pub fn owner(&self, key: &[u8]) -> Result<&ringraft_node> {
        let owner = self
            .ring
            .owner(key)
            .ok_or_else(|| Error::new(Status::NotFound, "no active member owns keys"))?;
        self.node(owner.member)
    }

    /// Up to `n` replicas, owner first, written to the front of `out`; returns how many.
    pub fn replicas_into(&self, key: &[u8], out: &mut [ringraft_node]) -> Result<usize> {
        let replicas = self.ring.replicas(key, out.len());
        if replicas.members.is_empty() {
            return Err(Error::new(Status::NotFound, "no active member owns keys"));
        }
        for (slot, id) in out.iter_mut().zip(&replicas.members) {
            *slot = *self.node(*id)?;
        }
        Ok(replicas.members.len())
    }
}

/// `old` (ascending id) with the members in `changed` put in and those in `removed` taken out:
/// ascending id again. The daemon names each at most once; a list that is not ascending, or
/// names an id both ways, is malformed.
fn merge_members(
    old: &[ringraft_node],
    changed: &[Member],
    removed: &[u64],
) -> Result<Vec<ringraft_node>> {
    let changed_ids: Vec<u64> = changed.iter().map(|member| member.id).collect();
    let ascending = |ids: &[u64]| ids.windows(2).all(|pair| pair[0] < pair[1]);
    if !ascending(&changed_ids) || !ascending(removed) {
        return Err(malformed(
            "the daemon's ring delta lists members out of order",
        ));
    }
    if changed
        .iter()
        .any(|member| removed.binary_search(&member.id).is_ok())
    {
        return Err(malformed(
            "the daemon's ring delta both changes and removes a member",
        ));
    }
    let mut merged = Vec::with_capacity(old.len() + changed.len());
    let mut changed = changed.iter().peekable();
    for node in old {
        while let Some(member) = changed.next_if(|member| member.id < node.id) {
            merged.push(ringraft_node::from_member(member));
        }
        if changed.peek().is_some_and(|member| member.id == node.id) {
            continue;
        }
        if removed.binary_search(&node.id).is_err() {
            merged.push(*node);
        }
    }
    merged.extend(changed.map(ringraft_node::from_member));
    Ok(merged)
}

struct RefresherControl {
    /// (stop requested, refresh requested now)
    flags: Mutex<(bool, bool)>,
    wake: Condvar,
}

struct Refresher {
    control: Arc<RefresherControl>,
    thread: JoinHandle<()>,
}

#[derive(Default)]
pub struct RingCache {
    current: Arc<ArcSwapOption<RingView>>,
    refresher: Mutex<Option<Refresher>>,
}

impl RingCache {
    /// The current view, if the cache is on.
    pub fn view(&self) -> Option<arc_swap::Guard<Option<Arc<RingView>>>> {
        let guard = self.current.load();
        guard.is_some().then_some(guard)
    }

    /// Fetches the ring now (so errors show here) and starts the refresher; enabling again only
    /// changes the interval.
    pub fn enable(&self, shared: &Arc<Shared>, refresh: Duration) -> Result<()> {
        let view = RingView::fetch(shared)?;
        self.disable();
        self.current.store(Some(Arc::new(view)));
        let control = Arc::new(RefresherControl {
            flags: Mutex::new((false, false)),
            wake: Condvar::new(),
        });
        let thread = {
            let control = Arc::clone(&control);
            let shared = Arc::clone(shared);
            let current = Arc::clone(&self.current);
            std::thread::Builder::new()
                .name("ringraft-ring-cache".into())
                .spawn(move || refresh_loop(&control, &shared, &current, refresh))
                .map_err(|e| Error::internal(format!("cannot start the ring cache thread: {e}")))?
        };
        *self.refresher.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(Refresher { control, thread });
        Ok(())
    }

    /// Stops the refresher (waiting for it) and drops the cached ring.
    pub fn disable(&self) {
        let refresher = self
            .refresher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(refresher) = refresher {
            refresher
                .control
                .flags
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .0 = true;
            refresher.control.wake.notify_all();
            let _ = refresher.thread.join();
        }
        self.current.store(None);
    }

    /// An answer from the daemon carried `epoch`: refresh at once if the cache is behind it.
    pub fn saw_epoch(&self, epoch: u64) {
        let behind = self
            .current
            .load()
            .as_ref()
            .is_some_and(|view| view.epoch < epoch);
        if !behind {
            return;
        }
        if let Some(refresher) = self
            .refresher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            refresher
                .control
                .flags
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .1 = true;
            refresher.control.wake.notify_all();
        }
    }
}

fn refresh_loop(
    control: &RefresherControl,
    shared: &Shared,
    current: &ArcSwapOption<RingView>,
    refresh: Duration,
) {
    loop {
        {
            let flags = control.flags.lock().unwrap_or_else(|p| p.into_inner());
            let (mut flags, _) = control
                .wake
                .wait_timeout_while(flags, refresh, |(stop, now)| !*stop && !*now)
                .unwrap_or_else(|p| p.into_inner());
            if flags.0 {
                return;
            }
            flags.1 = false;
        }
        let daemon_epoch = match shared.call(Request::Status, Retry::Idempotent, shared.deadline())
        {
            Ok(Response::Status(info)) => info.epoch,
            // Unreachable daemon or odd answer: keep serving the last ring, try next round.
            _ => continue,
        };
        let cached = current.load_full();
        let fresh = match &cached {
            Some(view) if view.epoch == daemon_epoch => continue,
            // A delta that does not fit the cached ring (the daemon's history was reset by a
            // snapshot, say) is no reason to stay behind: the whole ring then.
            Some(view) => view.refresh(shared).or_else(|_| RingView::fetch(shared)),
            None => RingView::fetch(shared),
        };
        if let Ok(view) = fresh {
            current.store(Some(Arc::new(view)));
        }
    }
}
