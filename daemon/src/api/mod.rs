//! The local socket API server.

pub mod backend;
