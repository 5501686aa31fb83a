//! libringraft: the C ABI client of ringraftd.
//!
//! C programs include `include/ringraft.h` (generated from this crate by cbindgen, see
//! `cbindgen.toml` and `tests/header.rs`) and link `libringraft.so.0` or `libringraft.a`. Every
//! exported function lives in `api/` and runs behind a panic boundary; the client itself
//! (connection, demultiplexing, reconnection, ring cache, watches) lives in `client/`.

#![allow(non_camel_case_types)]
// Exports take raw pointers from C; their safety contract is written in the header.
#![allow(clippy::missing_safety_doc, clippy::not_unsafe_ptr_arg_deref)]

pub mod api;
pub mod client;
pub mod error;
pub mod status;
pub mod types;

pub use api::admin::*;
pub use api::connect::*;
pub use api::kv::*;
pub use api::log::*;
pub use api::queries::*;
pub use api::ring::*;
pub use api::ringraft_client;
pub use status::ringraft_status;
pub use types::*;

/// Major version of the header (compile time); ringraft_version() gives the library's.
pub const RINGRAFT_VERSION_MAJOR: u32 = 0;
/// Minor version of the header: grows when functions or status values are added.
pub const RINGRAFT_VERSION_MINOR: u32 = 1;
/// Patch version of the header.
pub const RINGRAFT_VERSION_PATCH: u32 = 0;
/// The header's version as one integer, MAJOR * 1000000 + MINOR * 1000 + PATCH (as
/// SQLITE_VERSION_NUMBER), for `#if RINGRAFT_VERSION_NUMBER >= 1002000` checks.
pub const RINGRAFT_VERSION_NUMBER: u32 = 1_000;

const _: () = assert!(
    RINGRAFT_VERSION_NUMBER
        == RINGRAFT_VERSION_MAJOR * 1_000_000
            + RINGRAFT_VERSION_MINOR * 1_000
            + RINGRAFT_VERSION_PATCH,
    "RINGRAFT_VERSION_NUMBER must follow the three version numbers"
);
