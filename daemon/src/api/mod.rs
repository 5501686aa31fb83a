//! The local socket API server: handshake, framing, permissions and limits around a `Backend`.
//! The wire format is in docs/protocol.md.

pub mod backend;
mod config;
mod connection;
mod listener;
mod server;

pub use backend::{Backend, ResponseFuture, WatchStream};
pub use config::ApiConfig;
pub use listener::{bind_socket, inherited_listener, listen, ApiListener, SOCKET_MODE};
pub use server::serve;
