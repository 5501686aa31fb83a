//! The fault layer around the model: injected errors, stalled fsyncs, power loss, and the
//! `Controller` that a harness drives them with.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use fuser::{Errno, ReplyEmpty, ReplyWrite};

use crate::state::{Ino, PowerLoss, State};

/// Faults in force until `heal`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// Every fsync and fdatasync (of files and directories) fails with this error.
    pub fsync_error: Option<Errno>,
    /// Every write fails with this error.
    pub write_error: Option<Errno>,
    /// Every fsync and fdatasync is answered only after this long (or at `heal`).
    pub fsync_stall: Option<Duration>,
}

/// A snapshot of the filesystem's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Memory held by cached pages that differ from the backing files.
    pub cache_bytes: u64,
    /// Files whose content or size an fsync would change.
    pub unsynced_files: u64,
    /// Directories whose entries a directory fsync would change.
    pub unsynced_dirs: u64,
    pub inodes: u64,
    pub open_handles: u64,
    /// Fsyncs being held by a stall right now.
    pub stalled_fsyncs: usize,
    /// Fsyncs and fdatasyncs answered, successfully or not.
    pub fsyncs: u64,
    pub injected_fsync_errors: u64,
    pub injected_write_errors: u64,
    pub power_losses: u64,
    pub faults: Faults,
}

/// The reply an fsync owes: an fsync's, or an O_SYNC/O_DSYNC write's (which is answered with the
/// bytes written once the file is durable).
pub(crate) enum Answer {
    Fsync(ReplyEmpty),
    SyncWrite(ReplyWrite, u32),
}

impl Answer {
    fn send(self, result: Result<(), Errno>) {
        match (self, result) {
            (Answer::Fsync(reply), Ok(())) => reply.ok(),
            (Answer::Fsync(reply), Err(errno)) => reply.error(errno),
            (Answer::SyncWrite(reply, written), Ok(())) => reply.written(written),
            (Answer::SyncWrite(reply, _), Err(errno)) => reply.error(errno),
        }
    }
}

pub(crate) struct Stalled {
    deadline: Instant,
    ino: Ino,
    dir: bool,
    reply: Answer,
}

pub(crate) struct Inner {
    pub state: State,
    faults: Faults,
    stalled: Vec<Stalled>,
    stalled_max: usize,
    fsyncs: u64,
    injected_fsync_errors: u64,
    injected_write_errors: u64,
    power_losses: u64,
    shutting_down: bool,
}

impl Inner {
    /// Runs one fsync now, with the injected error if there is one.
    fn run_fsync(&mut self, ino: Ino, dir: bool) -> Result<(), Errno> {
        self.fsyncs += 1;
        if let Some(errno) = self.faults.fsync_error {
            self.injected_fsync_errors += 1;
            if !dir {
                self.state.fsync_failed(ino);
            }
            return Err(errno);
        }
        let result = if dir {
            self.state.fsync_dir(ino)
        } else {
            self.state.fsync_file(ino)
        };
        result.map_err(Errno::from_i32)
    }

    /// The error an injected write fault gives, if one is in force.
    pub fn write_fault(&mut self) -> Option<Errno> {
        let errno = self.faults.write_error?;
        self.injected_write_errors += 1;
        Some(errno)
    }
}

pub(crate) struct Shared {
    inner: Mutex<Inner>,
    changed: Condvar,
}

impl Shared {
    pub fn new(state: State, stalled_max: usize) -> Arc<Shared> {
        Arc::new(Shared {
            inner: Mutex::new(Inner {
                state,
                faults: Faults::default(),
                stalled: Vec::new(),
                stalled_max,
                fsyncs: 0,
                injected_fsync_errors: 0,
                injected_write_errors: 0,
                power_losses: 0,
                shutting_down: false,
            }),
            changed: Condvar::new(),
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic in a request handler while holding the lock is a bug that the tests would show;
        // the model is still the best knowledge there is, so carry on with it.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// An fsync from the kernel (or the sync part of an O_SYNC write): answered now, or held by a
    /// stall.
    pub fn fsync(&self, ino: Ino, dir: bool, reply: Answer) {
        self.fsync_locked(self.lock(), ino, dir, reply);
    }

    /// As `fsync`, with the lock already held (released before the reply is sent).
    pub fn fsync_locked(
        &self,
        mut inner: MutexGuard<'_, Inner>,
        ino: Ino,
        dir: bool,
        reply: Answer,
    ) {
        if let Some(stall) = inner.faults.fsync_stall {
            if inner.stalled.len() >= inner.stalled_max {
                drop(inner);
                reply.send(Err(Errno::EIO));
                return;
            }
            inner.stalled.push(Stalled {
                deadline: Instant::now() + stall,
                ino,
                dir,
                reply,
            });
            drop(inner);
            self.changed.notify_all();
            return;
        }
        let result = inner.run_fsync(ino, dir);
        drop(inner);
        self.changed.notify_all();
        reply.send(result);
    }

    /// The thread that answers stalled fsyncs when their time comes (or at heal / shutdown).
    pub fn run_staller(&self) {
        let mut inner = self.lock();
        loop {
            if inner.shutting_down {
                let stalled = std::mem::take(&mut inner.stalled);
                drop(inner);
                for item in stalled {
                    item.reply.send(Err(Errno::EIO));
                }
                return;
            }
            let now = Instant::now();
            if inner.stalled.iter().any(|s| s.deadline <= now) {
                let (due, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut inner.stalled)
                    .into_iter()
                    .partition(|s| s.deadline <= now);
                inner.stalled = waiting;
                let answers: Vec<_> = due
                    .into_iter()
                    .map(|s| {
                        let result = inner.run_fsync(s.ino, s.dir);
                        (s.reply, result)
                    })
                    .collect();
                drop(inner);
                self.changed.notify_all();
                for (reply, result) in answers {
                    reply.send(result);
                }
                inner = self.lock();
                continue;
            }
            let next = inner.stalled.iter().map(|s| s.deadline).min();
            inner = match next {
                Some(deadline) => {
                    let wait = deadline.saturating_duration_since(now);
                    self.changed
                        .wait_timeout(inner, wait)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
                None => self.changed.wait(inner).unwrap_or_else(|p| p.into_inner()),
            };
        }
    }

    /// Makes the staller answer what it holds with EIO and exit.
    pub fn shut_down(&self) {
        self.lock().shutting_down = true;
        self.changed.notify_all();
    }
}

/// Drives the faults of one mounted filesystem; cheap to clone and usable from any thread.
#[derive(Clone)]
pub struct Controller {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Controller {
    /// Power loss: every change not made durable by fsync is dropped at once (see the crate docs
    /// for exactly what is durable). Fsyncs held by a stall fail with EIO and make nothing
    /// durable. Faults stay in force. Kill the processes using the filesystem first: their open
    /// files of vanished inodes fail with EIO from now on.
    pub fn power_loss(&self) -> PowerLoss {
        let mut inner = self.shared.lock();
        let stalled = std::mem::take(&mut inner.stalled);
        let report = inner.state.power_loss();
        inner.power_losses += 1;
        drop(inner);
        self.shared.changed.notify_all();
        for item in stalled {
            item.reply.send(Err(Errno::EIO));
        }
        tracing::info!(?report, "power loss");
        report
    }

    /// From now on every fsync and fdatasync fails with `errno` (e.g. `Errno::EIO`,
    /// `Errno::ENOSPC`). A failed file fsync marks the file's dirty pages clean without writing
    /// them, as Linux does: a retried fsync succeeds but the data is lost at a power loss.
    pub fn fail_fsync(&self, errno: Errno) {
        self.set(|faults| faults.fsync_error = Some(errno));
    }

    /// From now on every write fails with `errno` and changes nothing.
    pub fn fail_write(&self, errno: Errno) {
        self.set(|faults| faults.write_error = Some(errno));
    }

    /// From now on every fsync and fdatasync is answered `stall` after it arrives (or at `heal`),
    /// while every other operation goes on normally.
    pub fn stall_fsync(&self, stall: Duration) {
        self.set(|faults| faults.fsync_stall = Some(stall));
    }

    /// Ends every fault; fsyncs held by a stall are carried out and answered now.
    pub fn heal(&self) {
        let mut inner = self.shared.lock();
        inner.faults = Faults::default();
        let now = Instant::now();
        for item in &mut inner.stalled {
            item.deadline = now;
        }
        drop(inner);
        self.shared.changed.notify_all();
    }

    fn set(&self, change: impl FnOnce(&mut Faults)) {
        change(&mut self.shared.lock().faults);
        self.shared.changed.notify_all();
    }

    pub fn stats(&self) -> Stats {
        let inner = self.shared.lock();
        stats_of(&inner)
    }

    /// Waits until `condition` holds for the stats, or `timeout` passes (then `None`). Woken by
    /// every fsync queued or answered, fault change and power loss.
    pub fn wait_for(&self, timeout: Duration, condition: impl Fn(&Stats) -> bool) -> Option<Stats> {
        let deadline = Instant::now() + timeout;
        let mut inner = self.shared.lock();
        loop {
            let stats = stats_of(&inner);
            if condition(&stats) {
                return Some(stats);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            inner = self
                .shared
                .changed
                .wait_timeout(inner, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Checks the model's internal invariants (for tests).
    pub fn check_invariants(&self) -> Result<(), String> {
        self.shared.lock().state.check_invariants()
    }
}

fn stats_of(inner: &Inner) -> Stats {
    let unsynced = inner.state.unsynced();
    Stats {
        cache_bytes: unsynced.cache_bytes,
        unsynced_files: unsynced.files,
        unsynced_dirs: unsynced.dirs,
        inodes: unsynced.inodes,
        open_handles: unsynced.handles,
        stalled_fsyncs: inner.stalled.len(),
        fsyncs: inner.fsyncs,
        injected_fsync_errors: inner.injected_fsync_errors,
        injected_write_errors: inner.injected_write_errors,
        power_losses: inner.power_losses,
        faults: inner.faults,
    }
}
