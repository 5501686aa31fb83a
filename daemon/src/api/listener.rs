//! Getting the listening socket: inherited from systemd (socket activation) or bound at a path,
//! replacing a stale socket file only when nothing listens there.

use std::io::{self, ErrorKind};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;

/// Permissions of the socket file: owner and group (`ringraft`) may connect, nobody else.
pub const SOCKET_MODE: u32 = 0o660;

/// The first listener passed by systemd (`LISTEN_FDS`/`LISTEN_PID`), if any. Must run inside a
/// tokio runtime. The environment variables are cleared so children do not inherit them.
pub fn inherited_listener() -> io::Result<Option<UnixListener>> {
    let Some(fd) = sd_notify::listen_fds()?.next() else {
        return Ok(None);
    };
    // SAFETY: systemd hands us this descriptor open and owned by this process (LISTEN_PID was
    // checked by listen_fds), and nothing else in the process claims it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let listener = std::os::unix::net::UnixListener::from(owned);
    // Fails with a clear error when the unit passed something other than a Unix socket.
    listener.local_addr().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("inherited fd {fd} is not a Unix listening socket: {e}"),
        )
    })?;
    listener.set_nonblocking(true)?;
    UnixListener::from_std(listener).map(Some)
}

/// Bind `path` with mode 0660. An existing socket file is removed only if connecting to it is
/// refused (a daemon that died); a live listener or a non-socket file is an error.
pub fn bind_socket(path: &Path) -> io::Result<UnixListener> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(_) => {
                    return Err(io::Error::new(
                        ErrorKind::AddrInUse,
                        format!("another process listens on {}", path.display()),
                    ))
                }
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                    tracing::info!(path = %path.display(), "removing stale socket file");
                    std::fs::remove_file(path)?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(_) => {
            return Err(io::Error::new(
                ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))?;
    Ok(listener)
}

/// A listening socket and who made it.
pub struct ApiListener {
    pub listener: UnixListener,
    /// The path this process bound, which it may remove again; `None` for systemd's socket,
    /// which belongs to the socket unit.
    pub bound_path: Option<PathBuf>,
}

/// The systemd-provided listener when there is one, else a socket bound at `path`.
pub fn listen(path: &Path) -> io::Result<ApiListener> {
    match inherited_listener()? {
        Some(listener) => {
            tracing::info!("serving the local API on the socket passed by systemd");
            Ok(ApiListener {
                listener,
                bound_path: None,
            })
        }
        None => Ok(ApiListener {
            listener: bind_socket(path)?,
            bound_path: Some(path.to_path_buf()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bind_sets_mode_and_replaces_only_stale_sockets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.sock");

        let first = bind_socket(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, SOCKET_MODE);

        // Someone listens: refuse, and leave their socket alone.
        let err = bind_socket(&path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AddrInUse);
        assert!(path.exists());

        // The listener is gone but its file stays: stale, so it is replaced.
        drop(first);
        assert!(path.exists());
        let _second = bind_socket(&path).unwrap();
        tokio::net::UnixStream::connect(&path).await.unwrap();
    }

    #[tokio::test]
    async fn bind_refuses_to_delete_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("not-a-socket");
        std::fs::write(&path, b"data").unwrap();
        assert_eq!(
            bind_socket(&path).unwrap_err().kind(),
            ErrorKind::AlreadyExists
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"data");
    }
}
