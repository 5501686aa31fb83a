//! The seam between the local socket server (which owns connections, framing, authentication and
//! limits) and the node (which knows the answers). The server never looks inside the cluster; the
//! node never sees a socket.

use std::future::Future;
use std::pin::Pin;

use ringraft_proto::{Request, Response};
use tokio::sync::mpsc;

pub type ResponseFuture = Pin<Box<dyn Future<Output = Response> + Send + 'static>>;

/// A running WatchLog: each item is a `Response::LogRecords` (or a final `Response::Error`).
/// Dropping the receiver ends the watch.
pub type WatchStream = mpsc::Receiver<Response>;

pub trait Backend: Send + Sync + 'static {
    /// Answer one request. Admin permission has already been checked by the server. `WatchLog` and
    /// `Cancel` never arrive here.
    fn handle(&self, request: Request) -> ResponseFuture;

    /// Start a watch of the application log from index `from`. Err carries the error response.
    // The error is the answer itself, built once per watch: its size does not matter.
    #[allow(clippy::result_large_err)]
    fn watch_log(&self, from: u64) -> Result<WatchStream, Response>;
}
