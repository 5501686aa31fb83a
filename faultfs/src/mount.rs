//! `FaultFs`: mounting, the background session, and unmounting on drop.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use fuser::{BackgroundSession, Config, MountOption, SessionACL};

use crate::control::{Controller, Shared, Stats};
use crate::fs::FaultFilesystem;
use crate::state::{Limits, PowerLoss, State};
use fuser::Errno;

/// Name shown as the source and subtype in /proc/mounts (`ringraft-faultfs on /x type
/// fuse.ringraft-faultfs`).
pub const FS_NAME: &str = "ringraft-faultfs";

/// A mounted fault filesystem. Dropping it unmounts (see [`FaultFs::unmount`]).
pub struct FaultFs {
    controller: Controller,
    session: Option<BackgroundSession>,
    staller: Option<JoinHandle<()>>,
    mountpoint: PathBuf,
    /// Device number of the mount, to tell our mount from whatever is under it.
    dev: u64,
}

impl std::fmt::Debug for FaultFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultFs")
            .field("mountpoint", &self.mountpoint)
            .field("dev", &self.dev)
            .finish()
    }
}

fn context(error: io::Error, what: String) -> io::Error {
    io::Error::new(error.kind(), format!("{what}: {error}"))
}

impl FaultFs {
    /// Mounts a fault filesystem over `mountpoint` that stores its durable state in `backing`
    /// (which may be `mountpoint` itself: the backing directory is opened before the mount).
    /// Needs root (or CAP_SYS_ADMIN) and /dev/fuse.
    pub fn mount(backing: impl AsRef<Path>, mountpoint: impl AsRef<Path>) -> io::Result<FaultFs> {
        FaultFs::mount_with(backing, mountpoint, Limits::default())
    }

    pub fn mount_with(
        backing: impl AsRef<Path>,
        mountpoint: impl AsRef<Path>,
        limits: Limits,
    ) -> io::Result<FaultFs> {
        let backing = backing.as_ref();
        let mountpoint = mountpoint
            .as_ref()
            .canonicalize()
            .map_err(|e| context(e, format!("mount point {}", mountpoint.as_ref().display())))?;
        let backing_real = backing
            .canonicalize()
            .map_err(|e| context(e, format!("backing directory {}", backing.display())))?;
        if mountpoint != backing_real && mountpoint.starts_with(&backing_real) {
            // The layer's own backing I/O would cross into the mount and wait for itself.
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "mount point {} is inside the backing directory {}",
                    mountpoint.display(),
                    backing_real.display()
                ),
            ));
        }
        let stalled_max = limits.stalled_fsyncs_max;
        let state = State::load(backing, limits).map_err(|e| {
            context(
                e,
                format!("loading backing directory {}", backing.display()),
            )
        })?;
        let shared = Shared::new(state, stalled_max);
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName(FS_NAME.into()),
            MountOption::Subtype(FS_NAME.into()),
            MountOption::DefaultPermissions,
            MountOption::RW,
            MountOption::NoDev,
            MountOption::NoSuid,
        ];
        // Processes of any user (ringraftd need not run as root) may use it.
        config.acl = SessionACL::All;
        config.n_threads = Some(1);
        let filesystem = FaultFilesystem {
            shared: Arc::clone(&shared),
        };
        let session = fuser::spawn_mount(filesystem, &mountpoint, &config)
            .map_err(|e| context(e, format!("mounting FUSE at {}", mountpoint.display())))?;
        let controller = Controller { shared };
        let staller = {
            let shared = Arc::clone(&controller.shared);
            std::thread::Builder::new()
                .name("faultfs-stall".into())
                .spawn(move || shared.run_staller())?
        };
        let mut mounted = FaultFs {
            controller,
            session: Some(session),
            staller: Some(staller),
            mountpoint,
            dev: 0,
        };
        // The handshake is done: this stat is answered by our own session thread.
        mounted.dev = std::fs::metadata(&mounted.mountpoint)?.dev();
        tracing::info!(mountpoint = %mounted.mountpoint.display(), backing = %backing.display(), "mounted");
        Ok(mounted)
    }

    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// A handle on the faults that can move to other threads (a control socket, say).
    pub fn controller(&self) -> Controller {
        self.controller.clone()
    }

    /// See [`Controller::power_loss`].
    pub fn power_loss(&self) -> PowerLoss {
        self.controller.power_loss()
    }

    /// See [`Controller::fail_fsync`].
    pub fn fail_fsync(&self, errno: Errno) {
        self.controller.fail_fsync(errno)
    }

    /// See [`Controller::fail_write`].
    pub fn fail_write(&self, errno: Errno) {
        self.controller.fail_write(errno)
    }

    /// See [`Controller::stall_fsync`].
    pub fn stall_fsync(&self, stall: Duration) {
        self.controller.stall_fsync(stall)
    }

    /// See [`Controller::heal`].
    pub fn heal(&self) {
        self.controller.heal()
    }

    pub fn stats(&self) -> Stats {
        self.controller.stats()
    }

    /// See [`Controller::wait_for`].
    pub fn wait_for(&self, timeout: Duration, condition: impl Fn(&Stats) -> bool) -> Option<Stats> {
        self.controller.wait_for(timeout, condition)
    }

    /// True while our filesystem is what `mountpoint` shows and its session runs.
    pub fn is_mounted(&self) -> bool {
        let running = self
            .session
            .as_ref()
            .is_some_and(|session| !session.guard.is_finished());
        running && self.mount_is_ours()
    }

    fn mount_is_ours(&self) -> bool {
        std::fs::metadata(&self.mountpoint).is_ok_and(|md| md.dev() == self.dev)
    }

    /// Unmounts. Fsyncs held by a stall fail with EIO first. Unsynced data is neither written nor
    /// dropped from the backing directory: it was never there (an unmount is a clean shutdown
    /// only for what was fsynced). If files are still open, the mount is detached lazily and the
    /// FUSE connection aborted (their users get ENOTCONN) so that nothing stays mounted.
    pub fn unmount(mut self) -> io::Result<()> {
        self.unmount_inner()
    }

    fn unmount_inner(&mut self) -> io::Result<()> {
        self.controller.shared.shut_down();
        if let Some(staller) = self.staller.take() {
            if staller.join().is_err() {
                tracing::error!("the stall thread panicked");
            }
        }
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        if !self.mount_is_ours() {
            // Someone unmounted it already; dropping the session would unmount the path again,
            // which could take down a mount underneath. Let the finished session go.
            tracing::warn!(mountpoint = %self.mountpoint.display(), "already unmounted");
            std::mem::forget(session);
            return Ok(());
        }
        match session.umount_and_join() {
            Ok(()) => Ok(()),
            Err(error) => {
                tracing::warn!(%error, mountpoint = %self.mountpoint.display(), "unmount failed; detaching and aborting the connection");
                self.detach_and_abort()
            }
        }
    }

    fn detach_and_abort(&self) -> io::Result<()> {
        if self.mount_is_ours() {
            let path = CString::new(self.mountpoint.as_os_str().as_bytes())
                .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
            // SAFETY: valid NUL-terminated path.
            if unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        // The FUSE connection id is the minor number of the mount's device.
        let minor = libc::minor(self.dev);
        let abort = PathBuf::from(format!("{FUSECTL_DIR}/{minor}/abort"));
        if !abort.exists() {
            mount_fusectl();
        }
        match std::fs::write(&abort, b"1") {
            Ok(()) => {}
            Err(error) => {
                tracing::warn!(%error, path = %abort.display(), "could not abort the FUSE connection (is fusectl mounted?); it ends when its last file is closed")
            }
        }
        Ok(())
    }
}

impl Drop for FaultFs {
    fn drop(&mut self) {
        if let Err(error) = self.unmount_inner() {
            tracing::error!(%error, mountpoint = %self.mountpoint.display(), "unmounting the fault filesystem failed");
        }
    }
}

const FUSECTL_DIR: &str = "/sys/fs/fuse/connections";

/// Mounts the FUSE control filesystem where systemd would have (many containers lack it), so that
/// a connection can be aborted. Failure only means the connection ends when its files close.
fn mount_fusectl() {
    let Ok(entries) = std::fs::read_dir(FUSECTL_DIR) else {
        return;
    };
    if entries.count() > 0 {
        return; // mounted already
    }
    // SAFETY: valid NUL-terminated strings; no data argument.
    let rc = unsafe {
        libc::mount(
            c"fusectl".as_ptr(),
            c"/sys/fs/fuse/connections".as_ptr(),
            c"fusectl".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        tracing::debug!(error = %io::Error::last_os_error(), "could not mount fusectl");
    }
}
