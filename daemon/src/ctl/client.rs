//! ringraftctl's blocking client of the local socket: one connection, requests one after the
//! other (watch excepted), answers matched by request id.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use ringraft_proto::{
    decode_response, encode_request_frame, ClientHello, FrameDecoder, Request, RequestFrame,
    Response, ResponseFrame, ServerHello, Status, FRAME_BYTES_MAX, PROTOCOL_VERSION,
    SERVER_HELLO_BYTES,
};

/// A failed call: the daemon's status and message, or what went wrong reaching it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", status.name())]
pub struct ClientError {
    pub status: Status,
    pub message: String,
}

impl ClientError {
    pub fn new(status: Status, message: impl Into<String>) -> ClientError {
        ClientError {
            status,
            message: message.into(),
        }
    }

    fn io(what: &str, error: std::io::Error) -> ClientError {
        let status = match error.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => Status::Timeout,
            ErrorKind::PermissionDenied => Status::PermissionDenied,
            _ => Status::Unavailable,
        };
        ClientError::new(status, format!("{what}: {error}"))
    }
}

pub struct Client {
    stream: UnixStream,
    decoder: FrameDecoder,
    next_id: u64,
}

impl Client {
    /// Connect to the daemon's socket and complete the handshake.
    pub fn connect(path: &Path, timeout: Option<Duration>) -> Result<Client, ClientError> {
        let mut stream = UnixStream::connect(path)
            .map_err(|e| ClientError::io(&format!("cannot connect to {}", path.display()), e))?;
        stream
            .set_read_timeout(timeout)
            .map_err(|e| ClientError::io("cannot set a timeout", e))?;
        stream
            .write_all(&ClientHello::current().encode())
            .map_err(|e| ClientError::io("cannot send the handshake", e))?;
        let mut bytes = [0u8; SERVER_HELLO_BYTES];
        stream
            .read_exact(&mut bytes)
            .map_err(|e| ClientError::io("no handshake answer from the daemon", e))?;
        let hello = ServerHello::decode(&bytes)
            .map_err(|e| ClientError::new(Status::Malformed, e.to_string()))?;
        match hello.status() {
            Some(Status::Ok) => {}
            Some(Status::UnsupportedVersion) => {
                return Err(ClientError::new(
                    Status::UnsupportedVersion,
                    format!(
                        "the daemon speaks protocol version {}, ringraftctl speaks {}",
                        hello.version, PROTOCOL_VERSION
                    ),
                ))
            }
            Some(status) => {
                return Err(ClientError::new(
                    status,
                    format!("the daemon refused the connection: {status}"),
                ))
            }
            None => {
                return Err(ClientError::new(
                    Status::Malformed,
                    format!("unknown handshake status {}", hello.status_code),
                ))
            }
        }
        Ok(Client {
            stream,
            decoder: FrameDecoder::new(FRAME_BYTES_MAX),
            next_id: 1,
        })
    }

    /// Change how long a read may wait (`None`: forever, as a watch does).
    pub fn set_timeout(&mut self, timeout: Option<Duration>) -> Result<(), ClientError> {
        self.stream
            .set_read_timeout(timeout)
            .map_err(|e| ClientError::io("cannot set a timeout", e))
    }

    /// Send one request; returns its id.
    pub fn send(&mut self, request: Request) -> Result<u64, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let bytes = encode_request_frame(&RequestFrame { id, request })
            .map_err(|e| ClientError::new(e.status(), e.to_string()))?;
        self.stream
            .write_all(&bytes)
            .map_err(|e| ClientError::io("cannot send the request", e))?;
        Ok(id)
    }

    /// The next answer on the connection, whatever request it answers.
    pub fn recv(&mut self) -> Result<ResponseFrame, ClientError> {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            if let Some(payload) = self
                .decoder
                .next_frame()
                .map_err(|e| ClientError::new(e.status(), e.to_string()))?
            {
                return decode_response(&payload)
                    .map_err(|e| ClientError::new(e.status(), e.to_string()));
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return Err(ClientError::new(
                        Status::Unavailable,
                        "the daemon closed the connection",
                    ))
                }
                Ok(read) => self.decoder.feed(&chunk[..read]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(ClientError::io("no answer from the daemon", e)),
            }
        }
    }

    /// Send `request` and wait for its answer; an `Error` answer becomes `Err`.
    pub fn call(&mut self, request: Request) -> Result<Response, ClientError> {
        let id = self.send(request)?;
        loop {
            let frame = self.recv()?;
            if frame.id == id || frame.id == 0 {
                return into_result(frame.response);
            }
        }
    }
}

impl Client {
    pub fn status(&mut self) -> Result<ringraft_proto::StatusInfo, ClientError> {
        match self.call(Request::Status)? {
            Response::Status(status) => Ok(status),
            other => Err(ClientError::new(
                Status::Malformed,
                format!("unexpected answer to Status: {other:?}"),
            )),
        }
    }
}

/// `Response::Error` as `Err`, anything else as `Ok`.
pub fn into_result(response: Response) -> Result<Response, ClientError> {
    match response {
        Response::Error { status, message } => Err(ClientError { status, message }),
        other => Ok(other),
    }
}
