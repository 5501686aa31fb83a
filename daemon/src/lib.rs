//! ringraft-daemon: the node-local coordination daemon (`ringraftd`) and its command line
//! (`ringraftctl`).

pub mod api;
pub mod certs;
pub mod ctl;
pub mod transport;
