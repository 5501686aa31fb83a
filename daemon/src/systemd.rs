//! systemd integration: readiness, status line, watchdog and stopping notices (sd_notify).
//! Socket activation lives with the listener in `api`. Outside systemd every call is a no-op.

use std::sync::Arc;
use std::time::Duration;

use ringraft_proto::NodeRole;
use sd_notify::NotifyState;
use tokio::sync::watch;
use tracing::debug;

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

/// Sends STATUS= whenever the view changes and WATCHDOG=1 at half the watchdog interval, from the
/// runtime. The watchdog is fed only while the node loop publishes, so a wedged loop is restarted.
pub async fn report(mut view: watch::Receiver<Arc<ClusterView>>) {
    let mut watchdog_usec = 0u64;
    let watchdog = sd_notify::watchdog_enabled(false, &mut watchdog_usec);
    let period = if watchdog {
        Duration::from_micros(watchdog_usec / 2)
    } else {
        Duration::from_secs(3600)
    };
    let mut last_status = String::new();
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
            _ = ticker.tick() => {
                if watchdog {
                    notify(&[NotifyState::Watchdog]);
                }
            }
        }
    }
}
