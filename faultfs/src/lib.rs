#![doc = include_str!("../README.md")]

mod backing;
mod cache;
mod control;
mod fs;
mod mount;
pub mod socket;
mod state;

pub use cache::PAGE_BYTES;
pub use control::{Controller, Faults, Stats};
pub use fuser::Errno;
pub use mount::{FaultFs, FS_NAME};
pub use state::{Limits, PowerLoss, ORPHANS_DIR};

/// Why the fault filesystem cannot be mounted here, or `None` if it can be tried: it needs root
/// (or CAP_SYS_ADMIN, which this does not check) and /dev/fuse. Tests print this and skip.
pub fn mount_unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not running as root (mounting FUSE without fusermount needs root)".into());
    }
    if !std::path::Path::new("/dev/fuse").exists() {
        return Some("/dev/fuse does not exist".into());
    }
    None
}
