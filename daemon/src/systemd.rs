//! systemd integration: readiness, status line, watchdog and stopping notices (sd_notify).
//! Socket activation lives with the listener in `api`. Outside systemd every call is a no-op.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ringraft_proto::NodeRole;
use sd_notify::NotifyState;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::node::ClusterView;

fn notify(states: &[NotifyState]) {
    if let Err(err) = sd_notify::notify(false, states) {
        debug!(%err, "sd_notify failed");
    }
}

/// READY=1: recovery is done and the socket listens.
pub fn notify_ready() {
    notify(&[NotifyState::Ready]);
}

pub fn notify_stopping() {
    notify(&[NotifyState::Stopping]);
}

pub fn status_line(view: &ClusterView) -> String {
    if let Some(epoch) = view.removed {
        return format!(
            "removed from the cluster at epoch {epoch}; exiting with code {}",
            crate::run::EXIT_REMOVED
        );
    }
    let role = match view.status.role {
        NodeRole::Leader => "leader",
        NodeRole::Follower => "follower",
        NodeRole::Candidate => "candidate",
        NodeRole::Learner => "learner",
    };
    let leader = match view.status.leader_id {
        0 => "none".to_string(),
        id => id.to_string(),
    };
    format!(
        "{role}, term {}, leader {leader}, applied {}, {} members",
        view.status.term, view.status.applied_index, view.status.member_count
    )
}

/// The watchdog interval systemd asks for, as libsystemd's `sd_watchdog_enabled` reads it:
/// WATCHDOG_USEC set and positive, and WATCHDOG_PID, when set, naming this process (a child that
/// inherited the variables must not feed its parent's watchdog).
pub fn watchdog_interval(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|usec| *usec > 0)?;
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok() != Some(own_pid) {
            return None;
        }
    }
    Some(Duration::from_micros(usec))
}

/// Decides, at each watchdog check, whether the node loop has turned since the last one.
#[derive(Debug, Default)]
pub struct WatchdogGate {
    last_seen: Option<u64>,
}

impl WatchdogGate {
    /// `progress` is the node loop's counter now; true means WATCHDOG=1 may be sent.
    pub fn progressed(&mut self, progress: u64) -> bool {
        let moved = self.last_seen != Some(progress);
        self.last_seen = Some(progress);
        moved
    }
}

/// Sends STATUS= whenever the view changes, and checks the node loop every half watchdog
/// interval: WATCHDOG=1 goes out only if the loop has turned since the previous check (it turns
/// at least once per Raft tick, even when idle). A loop stuck in fsync or deadlocked thus stops
/// feeding the watchdog and systemd restarts the daemon; meanwhile STATUS= says it is stalled.
pub async fn report(mut view: watch::Receiver<Arc<ClusterView>>, progress: Arc<AtomicU64>) {
    let interval = watchdog_interval(
        std::env::var("WATCHDOG_USEC").ok().as_deref(),
        std::env::var("WATCHDOG_PID").ok().as_deref(),
        std::process::id(),
    );
    let watchdog = interval.is_some();
    let period = interval.map_or(Duration::from_secs(3600), |interval| interval / 2);
    let mut last_status = String::new();
    let mut gate = WatchdogGate::default();
    let mut stalled_checks = 0u64;
    let mut ticker = tokio::time::interval(period.max(Duration::from_millis(100)));
    loop {
        tokio::select! {
            changed = view.changed() => {
                if changed.is_err() {
                    return;
                }
                let line = status_line(&view.borrow());
                if line != last_status {
                    notify(&[NotifyState::Status(&line)]);
                    last_status = line;
                }
            }
            _ = ticker.tick(), if watchdog => {
                if gate.progressed(progress.load(Ordering::Relaxed)) {
                    notify(&[NotifyState::Watchdog]);
                    if stalled_checks > 0 {
                        info!(stalled_checks, "the node loop makes progress again; feeding the watchdog");
                        stalled_checks = 0;
                        last_status = status_line(&view.borrow());
                        notify(&[NotifyState::Status(&last_status)]);
                    }
                } else {
                    stalled_checks += 1;
                    if stalled_checks == 1 {
                        warn!(
                            "the node loop made no progress since the last watchdog check: \
                             withholding WATCHDOG=1 (systemd restarts the daemon if this lasts)"
                        );
                    }
                    let line = format!(
                        "stalled: the node loop made no progress for {stalled_checks} watchdog \
                         checks; WATCHDOG=1 withheld"
                    );
                    notify(&[NotifyState::Status(&line)]);
                    last_status = line;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{watchdog_interval, WatchdogGate};

    #[test]
    fn the_watchdog_interval_is_read_like_libsystemd_does() {
        let second = Some(Duration::from_secs(1));
        assert_eq!(watchdog_interval(Some("1000000"), None, 7), second);
        assert_eq!(watchdog_interval(Some("1000000"), Some("7"), 7), second);
        assert_eq!(watchdog_interval(Some("1000000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval(Some("1000000"), Some("x"), 7), None);
        assert_eq!(watchdog_interval(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval(Some("-5"), None, 7), None);
        assert_eq!(watchdog_interval(None, Some("7"), 7), None);
    }

    #[test]
    fn the_watchdog_is_fed_only_when_the_loop_turned() {
        let mut gate = WatchdogGate::default();
        assert!(gate.progressed(0), "the first check feeds it");
        assert!(!gate.progressed(0));
        assert!(!gate.progressed(0));
        assert!(gate.progressed(1));
        assert!(gate.progressed(7));
        assert!(!gate.progressed(7));
    }
}
