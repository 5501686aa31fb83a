//! Prometheus metrics in the text exposition format, served at `/metrics` over plain HTTP/1.0.
//! Deliberately tiny: one GET, one answer, close.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ringraft_proto::NodeRole;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::node::ClusterView;
use crate::registers::RegisterMetrics;

/// Longest request head we read before answering; scrapers send far less.
const REQUEST_BYTES_MAX: usize = 4096;

pub fn render(view: &ClusterView, registers: &RegisterMetrics) -> String {
    let status = &view.status;
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    };
    gauge("ringraft_term", "Current Raft term.", status.term);
    gauge(
        "ringraft_is_leader",
        "1 if this node is the leader.",
        u64::from(status.role == NodeRole::Leader),
    );
    gauge(
        "ringraft_leader_id",
        "Known leader id (0 = none).",
        status.leader_id,
    );
    gauge(
        "ringraft_commit_index",
        "Highest committed log index.",
        status.commit_index,
    );
    gauge(
        "ringraft_applied_index",
        "Highest applied log index.",
        status.applied_index,
    );
    gauge("ringraft_last_index", "Last log index.", status.last_index);
    gauge(
        "ringraft_snapshot_index",
        "Index of the latest snapshot.",
        status.snapshot_index,
    );
    gauge(
        "ringraft_ring_epoch",
        "Log index of the last membership change.",
        status.epoch,
    );
    gauge(
        "ringraft_members",
        "Members in the cluster.",
        u64::from(status.member_count),
    );
    let plane = &view.registers;
    gauge(
        "ringraft_registers_stable_epoch",
        "Ring epoch of the registers' last completed acceptor-set transition.",
        plane.stable_epoch(),
    );
    gauge(
        "ringraft_registers_transition_epoch",
        "Ring epoch of the registers' transition in progress (0 = none).",
        plane.pending().map_or(0, |t| t.epoch),
    );
    gauge(
        "ringraft_registers_transition_sets_waiting",
        "Acceptor sets of the transition in progress still short of a majority of handoff reports.",
        plane
            .pending()
            .map_or(0, |t| t.sets_waiting(view.membership.ring.state()) as u64),
    );
    gauge(
        "ringraft_registers_transition_reports",
        "Members that reported their handoff for the transition in progress.",
        plane.pending().map_or(0, |t| t.reported.len() as u64),
    );
    let local =
        |counter: &std::sync::atomic::AtomicU64| counter.load(std::sync::atomic::Ordering::Relaxed);
    gauge(
        "ringraft_registers_handoff_keys_remaining",
        "Keys this node still has to hand off for the transition in progress.",
        local(&registers.handoff_keys_remaining),
    );
    gauge(
        "ringraft_registers_keys_held",
        "Registers this node's acceptor holds.",
        local(&registers.keys_held),
    );
    gauge(
        "ringraft_registers_ops_waiting",
        "Register operations of this node's clients in flight.",
        local(&registers.ops_waiting),
    );
    gauge(
        "ringraft_registers_store_log_bytes",
        "Bytes in the register store's log since its last checkpoint.",
        local(&registers.store_log_bytes),
    );
    for (name, help, counter) in [
        (
            "ringraft_registers_ops_total",
            "Register operations proposed on this node.",
            &registers.ops,
        ),
        (
            "ringraft_registers_forwarded_total",
            "Register requests this node forwarded to their key's owner.",
            &registers.forwarded,
        ),
        (
            "ringraft_registers_answered_for_peers_total",
            "Register requests forwarded to this node as the key's owner.",
            &registers.answered_for_peers,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
            local(counter)
        );
    }
    out
}

pub async fn serve(
    addr: SocketAddr,
    view: watch::Receiver<Arc<ClusterView>>,
    registers: Arc<RegisterMetrics>,
) {
    let listener = match TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(err) => {
            warn!(%addr, %err, "cannot serve metrics");
            return;
        }
    };
    info!(%addr, "serving Prometheus metrics at /metrics");
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let body = render(&view.borrow(), &registers);
        tokio::spawn(async move {
            let mut head = vec![0u8; REQUEST_BYTES_MAX];
            let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut head)).await;
            let Ok(Ok(n)) = read else { return };
            let answer = if head[..n].starts_with(b"GET /metrics") {
                format!(
                    "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
            } else {
                "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_string()
            };
            let _ = stream.write_all(answer.as_bytes()).await;
        });
    }
}
