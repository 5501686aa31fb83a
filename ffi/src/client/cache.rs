//! Rings in process: `RingView` is one answer of the Ring request rebuilt with ringraft-ring
//! (the same code the daemon runs, so the same owner for every key), and `RingCache` keeps the
//! current view of a client fresh from a background thread.
//!
//! Freshness: every `refresh` the thread asks the daemon for its Status (a small answer carrying
//! the ring epoch) and fetches the whole ring only when the epoch moved. Answers from the socket
//! that carry a newer epoch wake it at once. A cached answer may therefore lag the daemon by up to
//! one refresh interval plus a round trip; while the daemon is unreachable the last ring keeps
//! answering.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use ringraft_proto::{Request, Response, Status};
use ringraft_ring::Ring;

use super::{unexpected, Retry, Shared};
use crate::error::{Error, Result};
use crate::types::ringraft_node;

pub struct RingView {
    ring: Ring,
    epoch: u64,
    replication_factor: u32,
    /// Members in the daemon's order.
    members: Vec<ringraft_node>,
    /// (node id, index into `members`), sorted by id: a binary search beats hashing on the
    /// cached owner path, which has a budget of tens of nanoseconds.
    by_id: Vec<(u64, usize)>,
    encoded: Vec<u8>,
}

impl RingView {
    /// Asks the daemon for its ring and rebuilds it here.
    pub fn fetch(shared: &Shared) -> Result<RingView> {
        let request = Request::Ring {
            linearizable: shared.linearizable(),
        };
        match shared.call(request, Retry::Idempotent, shared.deadline())? {
            Response::Ring {
                epoch,
                ring,
                members,
                replication_factor,
            } => {
                let decoded = Ring::decode(&ring).map_err(|e| {
                    Error::new(
                        Status::Malformed,
                        format!("the daemon's ring does not decode: {e}"),
                    )
                })?;
                let members: Vec<ringraft_node> =
                    members.iter().map(ringraft_node::from_member).collect();
                let mut by_id: Vec<(u64, usize)> =
                    members.iter().enumerate().map(|(i, m)| (m.id, i)).collect();
                by_id.sort_unstable();
                Ok(RingView {
                    ring: decoded,
                    epoch,
                    replication_factor,
                    members,
                    by_id,
                    encoded: ring,
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
        &self.encoded
    }

    fn node(&self, id: u64) -> Result<&ringraft_node> {
        let found = self.by_id.binary_search_by_key(&id, |&(member, _)| member);
        found
            .map(|at| &self.members[self.by_id[at].1])
            .map_err(|_| {
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
        let cached_epoch = current.load().as_ref().map(|view| view.epoch);
        let daemon_epoch = match shared.call(Request::Status, Retry::Idempotent, shared.deadline())
        {
            Ok(Response::Status(info)) => info.epoch,
            // Unreachable daemon or odd answer: keep serving the last ring, try next round.
            _ => continue,
        };
        if cached_epoch != Some(daemon_epoch) {
            if let Ok(view) = RingView::fetch(shared) {
                current.store(Some(Arc::new(view)));
            }
        }
    }
}
