//! `ringraft-faultfs`: mounts the fault filesystem in the foreground and serves its control socket;
//! `ringraft-faultfs ctl` sends one command to that socket. See faultfs/README.md.

use std::io::{IsTerminal, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use ringraft_faultfs::{socket, FaultFs, Limits};

#[derive(Parser)]
#[command(
    name = "ringraft-faultfs",
    about = "A FUSE filesystem that forgets unsynced writes on command"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Mount in the foreground until SIGTERM, SIGINT or the `unmount` command.
    Mount {
        /// Directory holding the durable state (may be the mount point itself).
        #[arg(long)]
        backing: PathBuf,
        #[arg(long)]
        mountpoint: PathBuf,
        /// Unix socket to create for control commands.
        #[arg(long)]
        control: PathBuf,
        /// Memory for unsynced pages; writes past it fail with ENOSPC.
        #[arg(long, default_value_t = Limits::default().cache_bytes_max)]
        cache_bytes_max: u64,
    },
    /// Send one command (e.g. `power-loss`, `fail-fsync eio`, `stall-fsync 3000`, `heal`,
    /// `status`, `unmount`) and print the answer.
    Ctl {
        #[arg(long)]
        control: PathBuf,
        #[arg(required = true, num_args = 1..)]
        command: Vec<String>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match Cli::parse().command {
        Command::Mount {
            backing,
            mountpoint,
            control,
            cache_bytes_max,
        } => match run_mount(&backing, &mountpoint, &control, cache_bytes_max) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("ringraft-faultfs: {message}");
                ExitCode::from(2)
            }
        },
        Command::Ctl { control, command } => match socket::send(&control, &command.join(" ")) {
            Ok(answer) => {
                println!("{answer}");
                if answer.starts_with("ok") {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            }
            Err(error) => {
                eprintln!("ringraft-faultfs: {}: {error}", control.display());
                ExitCode::from(2)
            }
        },
    }
}

/// Blocks SIGTERM, SIGINT and SIGHUP in this thread and every thread started after, so that
/// `wait_signal` can take them synchronously.
fn block_signals() -> libc::sigset_t {
    // SAFETY: sigset operations on a local set; pthread_sigmask on the current thread.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGHUP);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// A pending stop signal, if one arrives within `timeout`.
fn wait_signal(set: &libc::sigset_t, timeout: Duration) -> Option<i32> {
    let spec = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: valid set and timespec; a null siginfo pointer is allowed.
    let signal = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &spec) };
    (signal > 0).then_some(signal)
}

fn bind_control(path: &Path) -> Result<UnixListener, String> {
    if let Ok(md) = std::fs::symlink_metadata(path) {
        if !md.file_type().is_socket() {
            return Err(format!("{} exists and is not a socket", path.display()));
        }
        std::fs::remove_file(path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let listener = UnixListener::bind(path).map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(listener)
}

fn run_mount(
    backing: &Path,
    mountpoint: &Path,
    control: &Path,
    cache_bytes_max: u64,
) -> Result<(), String> {
    let signals = block_signals();
    let limits = Limits {
        cache_bytes_max,
        ..Limits::default()
    };
    let listener = bind_control(control)?;
    let fs = FaultFs::mount_with(backing, mountpoint, limits).map_err(|e| e.to_string())?;
    let (unmount_tx, unmount_rx) = mpsc::channel();
    let controller = fs.controller();
    std::thread::Builder::new()
        .name("faultfs-control".into())
        .spawn(move || socket::serve(listener, controller, unmount_tx))
        .map_err(|e| format!("starting the control thread: {e}"))?;
    println!("mounted {}", fs.mountpoint().display());
    let _ = std::io::stdout().flush();
    let outcome = loop {
        if let Some(signal) = wait_signal(&signals, Duration::from_millis(500)) {
            tracing::info!(signal, "stopping on a signal");
            break Ok(());
        }
        if unmount_rx.try_recv().is_ok() {
            tracing::info!("stopping on the unmount command");
            break Ok(());
        }
        if !fs.is_mounted() {
            break Err(format!(
                "{} was unmounted from outside",
                mountpoint.display()
            ));
        }
    };
    let unmounted = fs.unmount().map_err(|e| format!("unmounting: {e}"));
    let _ = std::fs::remove_file(control);
    outcome.and(unmounted)
}
