//! The C enum is the protocol's status list, value for value, and ringraft_strerror describes
//! each code as the protocol does.

use std::ffi::CStr;

use ringraft::{ringraft_status, ringraft_strerror};
use ringraft_proto::Status;

#[test]
fn every_protocol_status_has_the_same_c_value() {
    for status in Status::ALL {
        let c_status = ringraft_status::from(status);
        assert_eq!(c_status as u32, status.code(), "{status:?}");
        assert_eq!(Status::from(c_status), status);
    }
    assert_eq!(ringraft_status::RINGRAFT_OK as u32, 0);
}

#[test]
fn strerror_matches_the_protocol_descriptions_and_survives_unknown_codes() {
    for status in Status::ALL {
        // SAFETY: ringraft_strerror returns a static NUL-terminated string.
        let text = unsafe { CStr::from_ptr(ringraft_strerror(status.code())) };
        assert_eq!(text.to_str().unwrap(), status.description());
    }
    let unknown = Status::ALL.len() as u32 + 1000;
    // SAFETY: as above.
    let text = unsafe { CStr::from_ptr(ringraft_strerror(unknown)) };
    assert_eq!(text.to_str().unwrap(), "unknown status");
}

#[test]
fn version_macros_follow_the_crate_version() {
    let version = env!("CARGO_PKG_VERSION");
    let expected = format!(
        "{}.{}.{}",
        ringraft::RINGRAFT_VERSION_MAJOR,
        ringraft::RINGRAFT_VERSION_MINOR,
        ringraft::RINGRAFT_VERSION_PATCH
    );
    assert_eq!(version, expected);
    // SAFETY: ringraft_version returns a static NUL-terminated string.
    let runtime = unsafe { CStr::from_ptr(ringraft::ringraft_version()) };
    assert_eq!(runtime.to_str().unwrap(), version);
}
