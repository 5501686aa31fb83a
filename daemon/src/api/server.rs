//! The accept loop: one task per connection, a bound on connections, and shutdown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ringraft_proto::{ServerHello, Status, CLIENT_HELLO_BYTES, PROTOCOL_VERSION};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use super::backend::Backend;
use super::config::ApiConfig;
use super::connection::{serve_connection, shutdown_requested};

/// After a failed accept (out of descriptors, usually), wait before retrying so the loop does
/// not spin while the condition lasts.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// Over-limit clients being told `Busy` at once; beyond this they are closed without a word.
const REFUSALS_IN_FLIGHT_MAX: usize = 64;
/// At most one "connection limit reached" warning per this interval: a client retrying in a loop
/// must not flood the log.
const REFUSAL_WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// Counts refused connections and warns about them at a bounded rate.
#[derive(Default)]
struct RefusalWarnings {
    last_warning: Option<Instant>,
    refused_since: u64,
}

impl RefusalWarnings {
    /// Counts one refusal at `now`; `Some(n)` when a warning is due, `n` the refusals since the
    /// last one (this one included), `None` while the interval since the last warning runs.
    fn refused_at(&mut self, now: Instant) -> Option<u64> {
        self.refused_since += 1;
        if self
            .last_warning
            .is_some_and(|last| now.duration_since(last) < REFUSAL_WARNING_INTERVAL)
        {
            return None;
        }
        self.last_warning = Some(now);
        Some(std::mem::take(&mut self.refused_since))
    }

    fn refused(&mut self, connections_max: usize) {
        if let Some(refused) = self.refused_at(Instant::now()) {
            tracing::warn!(
                connections_max,
                refused,
                "connections refused: connection limit reached ({refused} since the last such \
                 warning; at most one per {}s)",
                REFUSAL_WARNING_INTERVAL.as_secs()
            );
        }
    }
}

/// Serve the local API on `listener` until `shutdown` turns true (or its sender is dropped).
/// Returns once every connection has closed. Every problem with one client stays with that
/// client: the server goes on serving the others.
pub async fn serve(
    listener: UnixListener,
    backend: Arc<dyn Backend>,
    config: ApiConfig,
    shutdown: watch::Receiver<bool>,
) {
    let config = Arc::new(config);
    let connection_slots = Arc::new(Semaphore::new(config.connections_max));
    let refusal_slots = Arc::new(Semaphore::new(REFUSALS_IN_FLIGHT_MAX));
    let mut connections = JoinSet::new();
    let mut refusal_warnings = RefusalWarnings::default();
    tracing::info!(
        connections_max = config.connections_max,
        frame_bytes_max = config.frame_bytes_max,
        "local API serving"
    );
    loop {
        while connections.try_join_next().is_some() {}
        tokio::select! {
            () = shutdown_requested(shutdown.clone()) => break,
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                        continue;
                    }
                };
                let Ok(slot) = connection_slots.clone().try_acquire_owned() else {
                    refusal_warnings.refused(config.connections_max);
                    // Refusing politely costs a task; bound those too, and past that just close.
                    if let Ok(refusal) = refusal_slots.clone().try_acquire_owned() {
                        let timeout = config.handshake_timeout;
                        connections.spawn(async move {
                            refuse_busy(stream, timeout).await;
                            drop(refusal);
                        });
                    }
                    continue;
                };
                let backend = backend.clone();
                let config = config.clone();
                let shutdown = shutdown.clone();
                connections.spawn(async move {
                    serve_connection(stream, backend, config, shutdown).await;
                    drop(slot);
                });
            }
        }
    }
    tracing::info!(
        open = connections.len(),
        "local API stops accepting; closing connections"
    );
    while connections.join_next().await.is_some() {}
}

/// Tell a client over the connection limit why. Its hello is read first: closing a Unix socket
/// with unread data resets it, and the client would lose the answer.
async fn refuse_busy(mut stream: UnixStream, handshake_timeout: Duration) {
    let mut hello = [0u8; CLIENT_HELLO_BYTES];
    match tokio::time::timeout(handshake_timeout, stream.read_exact(&mut hello)).await {
        Ok(Ok(_)) => {}
        _ => return,
    }
    let answer = ServerHello {
        version: PROTOCOL_VERSION,
        status_code: Status::Busy.code(),
    };
    if let Err(error) = stream.write_all(&answer.encode()).await {
        tracing::debug!(%error, "could not send busy to a refused client");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_warnings_are_one_per_interval_with_the_count_since_the_last() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let interval_ms = u64::try_from(REFUSAL_WARNING_INTERVAL.as_millis()).unwrap();
        let mut warnings = RefusalWarnings::default();
        assert_eq!(
            warnings.refused_at(at(0)),
            Some(1),
            "the first refusal warns"
        );
        for ms in [1, 10, 500, interval_ms - 1] {
            assert_eq!(
                warnings.refused_at(at(ms)),
                None,
                "a warning {ms} ms after the last"
            );
        }
        assert_eq!(
            warnings.refused_at(at(interval_ms)),
            Some(5),
            "the next warning counts the four it held back and itself"
        );
        assert_eq!(warnings.refused_at(at(interval_ms + 1)), None);
        assert_eq!(warnings.refused_at(at(10 * interval_ms)), Some(2));
    }
}
