//! One client connection: handshake, then a reader that decodes request frames and spawns each
//! request, and a writer that sends answers in completion order.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ringraft_proto::{
    decode_request, encode_response_frame, ClientHello, CodecError, FrameDecoder, Request,
    RequestFrame, Response, ResponseFrame, ServerHello, Status, CLIENT_HELLO_BYTES,
    FRAME_BYTES_MAX,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixStream;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument;

use super::backend::{Backend, ResponseFuture, WatchStream};
use super::config::ApiConfig;

/// Bytes read from the socket per read call.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Answers are coalesced into one write up to this size.
const WRITE_BATCH_BYTES: usize = 256 * 1024;
/// The request id used for errors that belong to the connection, not to one request.
const CONNECTION_REQUEST_ID: u64 = 0;

/// Why the reader stopped.
#[derive(Debug)]
enum End {
    /// The client closed its side: finish the requests already running, then close.
    Eof,
    /// The stream can no longer be trusted (malformed or oversized frame): say why and close.
    Protocol(CodecError),
    Io(std::io::Error),
    /// The client began a frame and did not finish it within `frame_read_timeout`: it would hold
    /// a connection slot forever.
    StalledFrame {
        buffered_bytes: usize,
    },
    Shutdown,
}

pub(super) async fn serve_connection(
    mut stream: UnixStream,
    backend: Arc<dyn Backend>,
    config: Arc<ApiConfig>,
    shutdown: watch::Receiver<bool>,
) {
    let uid = match stream.peer_cred() {
        Ok(cred) => cred.uid(),
        Err(error) => {
            tracing::warn!(%error, "cannot read the peer's credentials; closing");
            return;
        }
    };
    let span = tracing::debug_span!("api_connection", uid);
    async move {
        if !handshake(&mut stream, &config).await {
            return;
        }
        tracing::debug!("client connected");
        let (reader, writer) = stream.into_split();
        let writer = Arc::new(tokio::sync::Mutex::new(writer));
        let (outbound, outbound_rx) = mpsc::channel(config.outbound_frames_max.max(1));
        let writer_task = tokio::spawn(write_frames(writer.clone(), outbound_rx));
        let mut connection = Connection {
            uid,
            writer,
            in_flight: Arc::new(Semaphore::new(config.in_flight_per_connection_max.max(1))),
            backend,
            config,
            outbound,
            requests: JoinSet::new(),
            watches: HashMap::new(),
        };
        let end = tokio::select! {
            end = connection.read_requests(reader) => end,
            () = shutdown_requested(shutdown.clone()) => End::Shutdown,
        };
        connection.finish(end, writer_task, shutdown).await;
    }
    .instrument(span)
    .await
}

/// Read and answer the client's hello. False when the connection must close.
async fn handshake(stream: &mut UnixStream, config: &ApiConfig) -> bool {
    let mut bytes = [0u8; CLIENT_HELLO_BYTES];
    match tokio::time::timeout(config.handshake_timeout, stream.read_exact(&mut bytes)).await {
        Err(_) => {
            tracing::info!("client sent no hello in time; closing");
            return false;
        }
        Ok(Err(error)) => {
            tracing::debug!(%error, "connection lost during the handshake");
            return false;
        }
        Ok(Ok(_)) => {}
    }
    let hello = match ClientHello::decode(&bytes) {
        Ok(hello) => hello,
        Err(error) => {
            tracing::info!(%error, "not a ringraft client; closing");
            return false;
        }
    };
    let answer = ServerHello::answer(&hello);
    let mut bytes = answer.encode().to_vec();
    if answer.status() == Some(Status::Ok) {
        // Only after an Ok: a client of another version reads the refusal alone.
        bytes.extend_from_slice(&config.limits().encode());
    }
    if let Err(error) = stream.write_all(&bytes).await {
        tracing::debug!(%error, "connection lost during the handshake");
        return false;
    }
    if answer.status() != Some(Status::Ok) {
        tracing::info!(
            client_version = hello.version,
            server_version = answer.version,
            "client speaks another protocol version; closing"
        );
        return false;
    }
    true
}

pub(super) async fn shutdown_requested(mut shutdown: watch::Receiver<bool>) {
    // A dropped sender means the daemon is going away too.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

struct Connection {
    uid: u32,
    /// Shared with the writer task: an answer that is ready while nothing is queued is written
    /// here directly, saving the hop to the writer task.
    writer: Arc<tokio::sync::Mutex<OwnedWriteHalf>>,
    backend: Arc<dyn Backend>,
    config: Arc<ApiConfig>,
    outbound: mpsc::Sender<Vec<u8>>,
    in_flight: Arc<Semaphore>,
    requests: JoinSet<()>,
    watches: HashMap<u64, JoinHandle<()>>,
}

impl Connection {
    async fn read_requests(&mut self, mut reader: tokio::net::unix::OwnedReadHalf) -> End {
        let mut decoder = FrameDecoder::new(self.config.frame_bytes_max.min(FRAME_BYTES_MAX));
        let mut chunk = vec![0u8; READ_CHUNK_BYTES];
        loop {
            loop {
                match decoder.next_frame() {
                    Ok(Some(payload)) => {
                        if let Err(end) = self.dispatch(&payload).await {
                            return end;
                        }
                    }
                    Ok(None) => break,
                    Err(error) => return End::Protocol(error),
                }
            }
            while self.requests.try_join_next().is_some() {}
            let buffered_bytes = decoder.buffered_bytes();
            let read = if buffered_bytes == 0 {
                // Between frames a client may stay silent as long as it likes.
                reader.read(&mut chunk).await
            } else {
                match tokio::time::timeout(self.config.frame_read_timeout, reader.read(&mut chunk))
                    .await
                {
                    Ok(read) => read,
                    Err(_) => return End::StalledFrame { buffered_bytes },
                }
            };
            match read {
                Ok(0) if decoder.buffered_bytes() == 0 => return End::Eof,
                Ok(0) => {
                    tracing::info!(
                        buffered_bytes = decoder.buffered_bytes(),
                        "client closed in the middle of a frame"
                    );
                    return End::Eof;
                }
                Ok(read) => decoder.feed(&chunk[..read]),
                Err(error) => return End::Io(error),
            }
        }
    }

    async fn dispatch(&mut self, payload: &[u8]) -> Result<(), End> {
        let RequestFrame { id, request } = decode_request(payload).map_err(End::Protocol)?;
        tracing::trace!(id, request = request.name(), "request");
        match request {
            Request::WatchLog { from } => self.start_watch(id, from).await,
            Request::Cancel { request_id } => self.cancel_watch(id, request_id).await,
            request if request.is_admin() && !self.config.admin_uids.contains(&self.uid) => {
                tracing::info!(
                    uid = self.uid,
                    request = request.name(),
                    "admin request denied"
                );
                let message = format!(
                    "uid {} may not make admin requests ({}); admin uids: {:?}",
                    self.uid,
                    request.name(),
                    self.config.admin_uids
                );
                self.answer_now(id, error_response(Status::PermissionDenied, message))
                    .await;
            }
            request => {
                let Ok(permit) = self.in_flight.clone().acquire_owned().await else {
                    return Err(End::Shutdown);
                };
                let answer = catch_panic(|| self.backend.handle(request));
                // Most answers (owner, replicas, status) are ready at once: answer them here
                // without a task of their own; only those that wait on the cluster get one.
                let mut pending = answer.map(CatchUnwind);
                let ready = pending.as_mut().and_then(|future| {
                    let mut context = Context::from_waker(std::task::Waker::noop());
                    match Pin::new(future).poll(&mut context) {
                        Poll::Ready(response) => Some(response),
                        Poll::Pending => None,
                    }
                });
                if let Some(response) = ready {
                    let response = response.unwrap_or_else(|| panicked(id));
                    self.answer_inline(id, response).await;
                    drop(permit);
                    return Ok(());
                }
                let outbound = self.outbound.clone();
                self.requests.spawn(async move {
                    let response = match pending {
                        Some(future) => future.await,
                        None => None,
                    };
                    let response = response.unwrap_or_else(|| panicked(id));
                    send_response(&outbound, id, response).await;
                    drop(permit);
                });
            }
        }
        Ok(())
    }

    /// Writes the answer straight to the socket when no earlier answer is queued and the writer
    /// task is idle; otherwise queues it like any other. A frame is always written whole under
    /// the lock, so frames never interleave.
    async fn answer_inline(&self, id: u64, response: Response) {
        let queue_empty = self.outbound.capacity() == self.outbound.max_capacity();
        let idle_writer = if queue_empty {
            self.writer.try_lock().ok()
        } else {
            None
        };
        let Some(mut writer) = idle_writer else {
            send_response(&self.outbound, id, response).await;
            return;
        };
        if let Some(bytes) = encode_answer(id, response) {
            if let Err(error) = writer.write_all(&bytes).await {
                tracing::debug!(%error, "write failed; the reader will see the connection end");
            }
        }
    }

    #[allow(clippy::result_large_err)] // Backend::watch_log's answer-as-error, see there.
    async fn start_watch(&mut self, id: u64, from: u64) {
        self.watches.retain(|_, watch| !watch.is_finished());
        if self.watches.contains_key(&id) {
            let message = format!("a watch with request id {id} is already running");
            return self
                .answer_now(id, error_response(Status::InvalidArgument, message))
                .await;
        }
        if self.watches.len() >= self.config.watches_per_connection_max {
            let message = format!(
                "{} watches already run on this connection (the daemon's \
                 limits.watches_per_connection_max); cancel one or open another connection",
                self.watches.len()
            );
            return self
                .answer_now(id, error_response(Status::Busy, message))
                .await;
        }
        match catch_panic(|| self.backend.watch_log(from)) {
            Some(Ok(stream)) => {
                let outbound = self.outbound.clone();
                self.watches
                    .insert(id, tokio::spawn(forward_watch(stream, outbound, id)));
            }
            Some(Err(response)) => self.answer_now(id, response).await,
            None => {
                let message = "the daemon failed while starting this watch".to_string();
                self.answer_now(id, error_response(Status::Internal, message))
                    .await
            }
        }
    }

    async fn cancel_watch(&mut self, id: u64, watch_id: u64) {
        let response = match self.watches.remove(&watch_id) {
            Some(watch) if !watch.is_finished() => {
                watch.abort();
                // Wait for it to be gone, so that no record can follow the Cancel's answer.
                let _ = watch.await;
                Response::Done { index: 0 }
            }
            _ => error_response(
                Status::NotFound,
                format!("no watch with request id {watch_id} is running"),
            ),
        };
        self.answer_now(id, response).await;
    }

    /// Queue an answer from the reader itself (errors decided without the backend).
    async fn answer_now(&self, id: u64, response: Response) {
        send_response(&self.outbound, id, response).await;
    }

    async fn finish(
        mut self,
        end: End,
        writer_task: JoinHandle<()>,
        shutdown: watch::Receiver<bool>,
    ) {
        for (_, watch) in self.watches.drain() {
            watch.abort();
        }
        match end {
            End::Eof => {
                tracing::debug!(in_flight = self.requests.len(), "client closed");
                tokio::select! {
                    () = async { while self.requests.join_next().await.is_some() {} } => {}
                    () = shutdown_requested(shutdown) => self.requests.abort_all(),
                }
            }
            End::Protocol(error) => {
                tracing::info!(%error, "bad frame from client; closing its connection");
                self.requests.abort_all();
                let message = format!("{error}; closing the connection");
                let response = error_response(error.status(), message);
                send_response(&self.outbound, CONNECTION_REQUEST_ID, response).await;
            }
            End::Io(error) => {
                tracing::debug!(%error, "read failed; closing");
                self.requests.abort_all();
            }
            End::StalledFrame { buffered_bytes } => {
                let timeout = self.config.frame_read_timeout;
                tracing::info!(
                    buffered_bytes,
                    ?timeout,
                    "client left a frame unfinished; closing its connection"
                );
                self.requests.abort_all();
                let message = format!(
                    "a frame was begun ({buffered_bytes} bytes) and not finished within \
                     {timeout:?}; closing the connection"
                );
                let response = error_response(Status::Malformed, message);
                send_response(&self.outbound, CONNECTION_REQUEST_ID, response).await;
            }
            End::Shutdown => self.requests.abort_all(),
        }
        while self.requests.join_next().await.is_some() {}
        drop(self.outbound);
        // A client that stopped reading must not keep this task alive forever.
        let mut writer_task = writer_task;
        if tokio::time::timeout(self.config.handshake_timeout, &mut writer_task)
            .await
            .is_err()
        {
            tracing::info!("client does not read its answers; dropping them");
            writer_task.abort();
        }
    }
}

fn error_response(status: Status, message: String) -> Response {
    Response::Error { status, message }
}

/// Send every record of a watch to the client until the stream or the connection ends.
async fn forward_watch(mut stream: WatchStream, outbound: mpsc::Sender<Vec<u8>>, id: u64) {
    while let Some(response) = stream.recv().await {
        let last = matches!(response, Response::Error { .. });
        if !send_response(&outbound, id, response).await || last {
            return;
        }
    }
    let ended = error_response(Status::Closed, "the daemon ended this watch".into());
    send_response(&outbound, id, ended).await;
}

/// One answer as frame bytes; an answer too large to encode becomes an error answer.
fn encode_answer(id: u64, response: Response) -> Option<Vec<u8>> {
    let frame = ResponseFrame { id, response };
    match encode_response_frame(&frame) {
        Ok(bytes) => Some(bytes),
        Err(error) => {
            tracing::warn!(id, %error, "answer cannot be encoded");
            let fallback = ResponseFrame {
                id,
                response: error_response(error.status(), format!("the answer is {error}")),
            };
            encode_response_frame(&fallback).ok()
        }
    }
}

/// Encode and queue one answer. False when the connection's writer is gone.
async fn send_response(outbound: &mpsc::Sender<Vec<u8>>, id: u64, response: Response) -> bool {
    match encode_answer(id, response) {
        Some(bytes) => outbound.send(bytes).await.is_ok(),
        None => false,
    }
}

async fn write_frames(
    writer: Arc<tokio::sync::Mutex<OwnedWriteHalf>>,
    mut outbound: mpsc::Receiver<Vec<u8>>,
) {
    let mut batch = Vec::new();
    while let Some(frame) = outbound.recv().await {
        batch.extend_from_slice(&frame);
        while batch.len() < WRITE_BATCH_BYTES {
            match outbound.try_recv() {
                Ok(frame) => batch.extend_from_slice(&frame),
                Err(_) => break,
            }
        }
        if let Err(error) = writer.lock().await.write_all(&batch).await {
            tracing::debug!(%error, "write failed; dropping the rest of the answers");
            return;
        }
        batch.clear();
    }
    let _ = writer.lock().await.shutdown().await;
}

fn panicked(id: u64) -> Response {
    tracing::error!(id, "the backend panicked while answering a request");
    error_response(
        Status::Internal,
        "the daemon failed while answering this request".into(),
    )
}

/// A backend bug must cost one answer, not the daemon: the panic becomes `None`.
fn catch_panic<T>(call: impl FnOnce() -> T) -> Option<T> {
    std::panic::catch_unwind(AssertUnwindSafe(call)).ok()
}

/// Polls a backend future, turning a panic inside it into `None`.
struct CatchUnwind(ResponseFuture);

impl Future for CatchUnwind {
    type Output = Option<Response>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let future = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(Poll::Ready(response)) => Poll::Ready(Some(response)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(None),
        }
    }
}
