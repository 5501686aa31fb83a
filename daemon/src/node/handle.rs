//! The API's way into the node: local reads straight from the published view, everything else as
//! a command to the node loop with a reply channel.

use std::sync::atomic::AtomicU64;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringraft_proto::{RegistersStatus, Request, Response, Status, StatusInfo};
use tokio::sync::{mpsc, oneshot, watch};

use super::view::{error, ClusterView};
use super::{Command, Event};
use crate::api::backend::{Backend, ResponseFuture, WatchStream};
use crate::config::Limits;
use crate::registers::RegistersHandle;

/// How long a request that names no timeout may wait for the cluster (a linearizable read, an
/// admin change).
pub(crate) const DEFAULT_WAIT: Duration = Duration::from_secs(10);
/// Records buffered per watcher before the node loop waits for the client to catch up.
const WATCH_BUFFER: usize = 64;

#[derive(Clone)]
pub struct NodeHandle {
    events: SyncSender<Event>,
    view: watch::Receiver<Arc<ClusterView>>,
    limits: Limits,
    progress: Arc<AtomicU64>,
    registers: RegistersHandle,
}

impl NodeHandle {
    pub(crate) fn new(
        events: SyncSender<Event>,
        view: watch::Receiver<Arc<ClusterView>>,
        limits: Limits,
        progress: Arc<AtomicU64>,
        registers: RegistersHandle,
    ) -> NodeHandle {
        NodeHandle {
            events,
            view,
            limits,
            progress,
            registers,
        }
    }

    pub fn registers(&self) -> &RegistersHandle {
        &self.registers
    }

    /// A counter the node loop bumps on every turn (at least once per tick, even when idle).
    /// It stands still only while the loop is stuck (a hung fsync, a deadlock), which is what
    /// the systemd watchdog must notice.
    pub fn loop_progress(&self) -> Arc<AtomicU64> {
        self.progress.clone()
    }

    pub fn view(&self) -> Arc<ClusterView> {
        self.view.borrow().clone()
    }

    /// The Status answer: the node's published status with the registers' plane and this
    /// node's handoff progress as of now.
    pub fn status(&self) -> StatusInfo {
        let view = self.view();
        let plane = &view.registers;
        let pending = plane.pending();
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let mut status = view.status.clone();
        status.registers = RegistersStatus {
            enabled: plane.is_enabled(),
            stable_epoch: plane.stable_epoch(),
            transition_epoch: pending.map_or(0, |t| t.epoch),
            sets_waiting: pending
                .map_or(0, |t| count(t.sets_waiting(view.membership.ring.state()))),
            reports: pending.map_or(0, |t| count(t.reported.len())),
            handoff_keys_remaining: self
                .registers
                .metrics()
                .handoff_keys_remaining
                .load(std::sync::atomic::Ordering::Relaxed),
        };
        status
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<ClusterView>> {
        self.view.clone()
    }

    fn send(&self, command: Command) -> Result<(), Response> {
        match self.events.try_send(Event::Command(command)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(error(
                Status::Busy,
                "the node loop is saturated; retry shortly",
            )),
            Err(TrySendError::Disconnected(_)) => {
                Err(error(Status::ShuttingDown, "the node is shutting down"))
            }
        }
    }

    /// Sends a command built around a reply channel and waits for the answer.
    fn ask(&self, build: impl FnOnce(oneshot::Sender<Response>) -> Command) -> ResponseFuture {
        let (reply, answer) = oneshot::channel();
        let sent = self.send(build(reply));
        Box::pin(async move {
            if let Err(response) = sent {
                return response;
            }
            answer.await.unwrap_or_else(|_| {
                error(Status::ShuttingDown, "the node stopped before answering")
            })
        })
    }

    /// Answers from the view, after a ReadIndex round when `linearizable` is set.
    fn read(
        &self,
        linearizable: bool,
        answer: impl FnOnce(&ClusterView) -> Response + Send + 'static,
    ) -> ResponseFuture {
        if !linearizable {
            let view = self.view();
            return Box::pin(async move { answer(&view) });
        }
        let deadline = Instant::now() + DEFAULT_WAIT;
        let confirmed = self.ask(|reply| Command::ReadIndex { deadline, reply });
        let view = self.view.clone();
        Box::pin(async move {
            match confirmed.await {
                Response::Done { .. } => {
                    let snapshot = view.borrow().clone();
                    answer(&snapshot)
                }
                other => other,
            }
        })
    }

    fn check_key(&self, key: &[u8]) -> Result<(), Response> {
        self.limits.check_key(key)
    }
}

fn ready(response: Response) -> ResponseFuture {
    Box::pin(async move { response })
}

impl Backend for NodeHandle {
    fn handle(&self, request: Request) -> ResponseFuture {
        if !matches!(request, Request::Status) {
            let view = self.view.borrow();
            if let Some(response) = view.removed_error() {
                return ready(response);
            }
            if view.shutting_down {
                return ready(error(Status::ShuttingDown, "the node is shutting down"));
            }
        }
        match request {
            Request::Status => ready(Response::Status(self.status())),
            Request::Members { linearizable } => {
                self.read(linearizable, |view| view.membership.members_response())
            }
            Request::Ring { linearizable } => {
                self.read(linearizable, |view| view.membership.ring_response())
            }
            Request::RingSince {
                epoch,
                linearizable,
            } => self.read(linearizable, move |view| view.membership.ring_since(epoch)),
            Request::Owner { key, linearizable } => match self.check_key(&key) {
                Err(response) => ready(response),
                Ok(()) => self.read(linearizable, move |view| view.membership.owner(&key)),
            },
            Request::Replicas {
                key,
                n,
                linearizable,
            } => {
                if let Err(response) = self.check_key(&key) {
                    return ready(response);
                }
                if n == 0 {
                    return ready(error(Status::InvalidArgument, "n must be at least 1"));
                }
                self.read(linearizable, move |view| view.membership.replicas(&key, n))
            }
            Request::Propose { data, timeout_ms } => {
                if data.len() > self.limits.proposal_bytes_max {
                    return ready(error(
                        Status::TooLarge,
                        format!(
                            "proposal of {} bytes exceeds the limit of {}",
                            data.len(),
                            self.limits.proposal_bytes_max
                        ),
                    ));
                }
                if let Err(response) = self.limits.check_timeout_ms(timeout_ms) {
                    return ready(response);
                }
                let deadline = Instant::now() + Duration::from_millis(u64::from(timeout_ms));
                self.ask(|reply| Command::Propose {
                    data,
                    deadline,
                    reply,
                })
            }
            Request::ReadLog { from, max } => {
                if max == 0 {
                    return ready(error(Status::InvalidArgument, "max must be at least 1"));
                }
                if from == 0 {
                    return ready(error(
                        Status::InvalidArgument,
                        "log indexes start at 1: read from 1 or later",
                    ));
                }
                self.ask(|reply| Command::ReadLog {
                    from,
                    max: max.min(4096) as usize,
                    reply,
                })
            }
            Request::KvGet { .. } | Request::KvCas { .. } | Request::KvDelete { .. } => {
                self.registers.handle(request)
            }
            Request::WatchLog { .. } | Request::Cancel { .. } => ready(error(
                Status::Internal,
                "WatchLog and Cancel are handled by the connection, not the node",
            )),
            admin => {
                let deadline = Instant::now() + DEFAULT_WAIT;
                self.ask(|reply| Command::Admin {
                    request: admin,
                    deadline,
                    reply,
                })
            }
        }
    }

    fn watch_log(&self, from: u64) -> Result<WatchStream, Response> {
        if let Some(response) = self.view.borrow().removed_error() {
            return Err(response);
        }
        let (sink, stream) = mpsc::channel(WATCH_BUFFER);
        self.send(Command::Watch { from, sink })?;
        Ok(stream)
    }
}
