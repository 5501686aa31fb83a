//! The backing directory: every call is relative to a descriptor opened before the mount, so the
//! filesystem can be mounted over its own backing directory.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// Entries a directory may hold before `remove_tree` refuses it (a bound on one walk).
const TREE_ENTRIES_MAX: usize = 1 << 20;

fn c_path(path: &Path) -> io::Result<CString> {
    // An empty relative path means the root itself.
    let bytes = if path.as_os_str().is_empty() {
        b".".as_slice()
    } else {
        path.as_os_str().as_bytes()
    };
    CString::new(bytes).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

#[derive(Debug)]
pub struct Backing {
    root: OwnedFd,
}

impl Backing {
    pub fn open(path: &Path) -> io::Result<Backing> {
        let path = c_path(path)?;
        // SAFETY: valid NUL-terminated path; the returned descriptor is owned below.
        let fd = check(unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        })?;
        // SAFETY: `fd` was just opened and is owned by nobody else.
        Ok(Backing {
            root: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    fn root_fd(&self) -> RawFd {
        self.root.as_raw_fd()
    }

    fn open_at(&self, rel: &Path, flags: libc::c_int, mode: u32) -> io::Result<File> {
        let path = c_path(rel)?;
        // SAFETY: valid descriptor and NUL-terminated path; ownership of the result is taken.
        let fd = check(unsafe {
            libc::openat(
                self.root_fd(),
                path.as_ptr(),
                flags | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                mode as libc::c_uint,
            )
        })?;
        // SAFETY: freshly opened descriptor.
        Ok(unsafe { File::from_raw_fd(fd) })
    }

    /// Creates a new regular file (it must not exist) and opens it read-write.
    pub fn create_file(&self, rel: &Path, mode: u32) -> io::Result<File> {
        self.open_at(rel, libc::O_RDWR | libc::O_CREAT | libc::O_EXCL, mode)
    }

    pub fn open_file(&self, rel: &Path) -> io::Result<File> {
        self.open_at(rel, libc::O_RDWR, 0)
    }

    pub fn mkdir(&self, rel: &Path, mode: u32) -> io::Result<()> {
        let path = c_path(rel)?;
        // SAFETY: valid descriptor and path.
        check(unsafe { libc::mkdirat(self.root_fd(), path.as_ptr(), mode as libc::mode_t) })?;
        Ok(())
    }

    pub fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let (from, to) = (c_path(from)?, c_path(to)?);
        // SAFETY: valid descriptors and paths.
        check(unsafe {
            libc::renameat(self.root_fd(), from.as_ptr(), self.root_fd(), to.as_ptr())
        })?;
        Ok(())
    }

    pub fn chmod(&self, rel: &Path, mode: u32) -> io::Result<()> {
        let path = c_path(rel)?;
        // SAFETY: valid descriptor and path.
        check(unsafe { libc::fchmodat(self.root_fd(), path.as_ptr(), mode as libc::mode_t, 0) })?;
        Ok(())
    }

    pub fn chown(&self, rel: &Path, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
        let path = c_path(rel)?;
        // u32::MAX (-1) leaves that id unchanged.
        let uid = uid.unwrap_or(u32::MAX);
        let gid = gid.unwrap_or(u32::MAX);
        // SAFETY: valid descriptor and path.
        check(unsafe {
            libc::fchownat(
                self.root_fd(),
                path.as_ptr(),
                uid,
                gid,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        })?;
        Ok(())
    }

    fn unlink_at(dirfd: RawFd, name: &CStr, flags: libc::c_int) -> io::Result<()> {
        // SAFETY: valid descriptor and path.
        check(unsafe { libc::unlinkat(dirfd, name.as_ptr(), flags) })?;
        Ok(())
    }

    /// Removes `rel` and, if it is a directory, everything below it. Refuses to follow symlinks
    /// (they are removed as entries) and gives up past `TREE_ENTRIES_MAX` entries.
    pub fn remove_tree(&self, rel: &Path) -> io::Result<()> {
        let path = c_path(rel)?;
        let mut budget = TREE_ENTRIES_MAX;
        remove_tree_at(self.root_fd(), &path, &mut budget, 0)
    }

    /// True if `rel` is a directory (used by invariant checks).
    pub fn open_dir_exists(&self, rel: &Path) -> bool {
        c_path(rel)
            .and_then(|path| open_dir_at(self.root_fd(), &path))
            .is_ok()
    }

    pub fn statvfs(&self) -> io::Result<libc::statvfs> {
        // SAFETY: statvfs is plain data; zeroed is a valid value and fstatvfs fills it.
        let mut out: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: valid descriptor and out pointer.
        check(unsafe { libc::fstatvfs(self.root_fd(), &mut out) })?;
        Ok(out)
    }
}

/// Depth bound of `remove_tree_at` (the model refuses deeper trees anyway).
const TREE_DEPTH_MAX: usize = 256;

fn remove_tree_at(dirfd: RawFd, name: &CStr, budget: &mut usize, depth: usize) -> io::Result<()> {
    match Backing::unlink_at(dirfd, name, 0) {
        Ok(()) => return Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e)
            if e.raw_os_error() == Some(libc::EISDIR) || e.raw_os_error() == Some(libc::EPERM) => {}
        Err(e) => return Err(e),
    }
    if depth >= TREE_DEPTH_MAX {
        return Err(io::Error::from_raw_os_error(libc::ELOOP));
    }
    for child in list_dir_at(dirfd, name, budget)? {
        let sub = open_dir_at(dirfd, name)?;
        let child = CString::new(child.into_vec())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        remove_tree_at(sub.as_raw_fd(), &child, budget, depth + 1)?;
    }
    Backing::unlink_at(dirfd, name, libc::AT_REMOVEDIR)
}

fn open_dir_at(dirfd: RawFd, name: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: valid descriptor and path; ownership of the result is taken.
    let fd = check(unsafe {
        libc::openat(
            dirfd,
            name.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
        )
    })?;
    // SAFETY: freshly opened descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Names in a directory (without `.` and `..`).
fn list_dir_at(dirfd: RawFd, name: &CStr, budget: &mut usize) -> io::Result<Vec<OsString>> {
    let fd = open_dir_at(dirfd, name)?;
    let raw = fd.as_raw_fd();
    // SAFETY: fdopendir takes ownership of the descriptor on success.
    let dir = unsafe { libc::fdopendir(raw) };
    if dir.is_null() {
        return Err(io::Error::last_os_error());
    }
    std::mem::forget(fd);
    let mut names = Vec::new();
    let result = loop {
        // SAFETY: `dir` is a valid DIR stream until closedir below.
        let entry = unsafe { libc::readdir(dir) };
        if entry.is_null() {
            break Ok(());
        }
        // SAFETY: readdir returned a valid dirent whose d_name is NUL-terminated.
        let entry_name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) };
        let bytes = entry_name.to_bytes();
        if bytes == b"." || bytes == b".." {
            continue;
        }
        if *budget == 0 {
            break Err(io::Error::from_raw_os_error(libc::E2BIG));
        }
        *budget -= 1;
        names.push(OsStr::from_bytes(bytes).to_os_string());
    };
    // SAFETY: closes the stream (and its descriptor) exactly once.
    unsafe { libc::closedir(dir) };
    result.map(|()| names)
}

/// `dir/name` as a relative path (the root is the empty path).
pub fn join(dir: &Path, name: &OsStr) -> PathBuf {
    if dir.as_os_str().is_empty() {
        PathBuf::from(name)
    } else {
        dir.join(name)
    }
}
