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

/// Longest request head we read before answering; scrapers send far less.
const REQUEST_BYTES_MAX: usize = 4096;

pub fn render(view: &ClusterView) -> String {
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
    out
}

pub async fn serve(addr: SocketAddr, view: watch::Receiver<Arc<ClusterView>>) {
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
        let body = render(&view.borrow());
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
