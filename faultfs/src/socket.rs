//! The control socket of the `ringraft-faultfs` binary: one command per line, one answer line
//! each. The protocol is documented in faultfs/README.md.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::mpsc::Sender;
use std::time::Duration;

use fuser::Errno;

use crate::control::{Controller, Stats};

/// Longest command line accepted, newline included.
pub const LINE_BYTES_MAX: usize = 256;
/// A connection that sends nothing for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest stall accepted (a day): bounds the deadline arithmetic.
const STALL_MS_MAX: u64 = 24 * 3600 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    PowerLoss,
    FailFsync(Errno),
    FailWrite(Errno),
    StallFsync(Duration),
    Heal,
    Status,
    Unmount,
}

fn parse_errno(word: &str) -> Result<Errno, String> {
    let errno = match word.to_ascii_lowercase().as_str() {
        "eio" => Errno::EIO,
        "enospc" => Errno::ENOSPC,
        "edquot" => Errno::from_i32(libc::EDQUOT),
        "erofs" => Errno::from_i32(libc::EROFS),
        other => match other.parse::<i32>() {
            Ok(code) if (1..4096).contains(&code) => Errno::from_i32(code),
            _ => {
                return Err(format!(
                    "unknown error {word:?} (eio, enospc, edquot, erofs or 1..4095)"
                ))
            }
        },
    };
    Ok(errno)
}

fn errno_name(errno: Errno) -> String {
    match errno.code() {
        libc::EIO => "eio".into(),
        libc::ENOSPC => "enospc".into(),
        libc::EDQUOT => "edquot".into(),
        libc::EROFS => "erofs".into(),
        code => code.to_string(),
    }
}

pub fn parse_command(line: &str) -> Result<Command, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["power-loss"] => Ok(Command::PowerLoss),
        ["fail-fsync", errno] => Ok(Command::FailFsync(parse_errno(errno)?)),
        ["fail-write", errno] => Ok(Command::FailWrite(parse_errno(errno)?)),
        ["stall-fsync", ms] => match ms.parse::<u64>() {
            Ok(ms) if ms <= STALL_MS_MAX => Ok(Command::StallFsync(Duration::from_millis(ms))),
            _ => Err(format!(
                "stall-fsync takes milliseconds, 0..={STALL_MS_MAX}"
            )),
        },
        ["heal"] => Ok(Command::Heal),
        ["status"] => Ok(Command::Status),
        ["unmount"] => Ok(Command::Unmount),
        [] => Err("empty command".into()),
        _ => Err(format!("unknown command {line:?}")),
    }
}

pub fn format_stats(stats: &Stats) -> String {
    let fault = |errno: Option<Errno>| errno.map_or("none".to_string(), errno_name);
    format!(
        "cache_bytes={} unsynced_files={} unsynced_dirs={} inodes={} open_handles={} \
         stalled_fsyncs={} fsyncs={} injected_fsync_errors={} injected_write_errors={} \
         power_losses={} fsync_fault={} write_fault={} fsync_stall_ms={}",
        stats.cache_bytes,
        stats.unsynced_files,
        stats.unsynced_dirs,
        stats.inodes,
        stats.open_handles,
        stats.stalled_fsyncs,
        stats.fsyncs,
        stats.injected_fsync_errors,
        stats.injected_write_errors,
        stats.power_losses,
        fault(stats.faults.fsync_error),
        fault(stats.faults.write_error),
        stats.faults.fsync_stall.map_or(0, |d| d.as_millis()),
    )
}

/// Carries out one command and returns its answer line (without the newline).
pub fn execute(controller: &Controller, command: Command) -> String {
    match command {
        Command::PowerLoss => {
            let report = controller.power_loss();
            format!(
                "ok dropped_cache_bytes={} reverted_files={} reverted_dirs={} removed_inodes={}",
                report.dropped_cache_bytes,
                report.reverted_files,
                report.reverted_dirs,
                report.removed_inodes
            )
        }
        Command::FailFsync(errno) => {
            controller.fail_fsync(errno);
            "ok".into()
        }
        Command::FailWrite(errno) => {
            controller.fail_write(errno);
            "ok".into()
        }
        Command::StallFsync(stall) => {
            controller.stall_fsync(stall);
            "ok".into()
        }
        Command::Heal => {
            controller.heal();
            "ok".into()
        }
        Command::Status => format!("ok {}", format_stats(&controller.stats())),
        Command::Unmount => "ok".into(),
    }
}

/// Serves connections one at a time, forever. An `unmount` command is answered, then sent on
/// `unmount`, and the connection closed.
pub fn serve(listener: UnixListener, controller: Controller, unmount: Sender<()>) {
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(%error, "control socket accept failed");
                continue;
            }
        };
        match serve_connection(stream, &controller) {
            Ok(true) => {
                // The receiver may be gone if the process is already stopping.
                let _ = unmount.send(());
            }
            Ok(false) => {}
            Err(error) => tracing::debug!(%error, "control connection ended"),
        }
    }
}

/// Returns true if the connection asked for an unmount.
fn serve_connection(stream: UnixStream, controller: &Controller) -> std::io::Result<bool> {
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = Vec::new();
        (&mut reader)
            .take(LINE_BYTES_MAX as u64)
            .read_until(b'\n', &mut line)?;
        if line.is_empty() {
            return Ok(false);
        }
        if line.last() != Some(&b'\n') {
            writeln!(
                writer,
                "err line longer than {LINE_BYTES_MAX} bytes or not ended"
            )?;
            return Ok(false);
        }
        let answer = match std::str::from_utf8(&line) {
            Err(_) => "err command is not UTF-8".to_string(),
            Ok(text) => match parse_command(text) {
                Err(message) => format!("err {message}"),
                Ok(command) => {
                    let answer = execute(controller, command);
                    if command == Command::Unmount {
                        writeln!(writer, "{answer}")?;
                        return Ok(true);
                    }
                    answer
                }
            },
        };
        writeln!(writer, "{answer}")?;
    }
}

/// Sends one command and returns the answer line (for `ringraft-faultfs ctl` and harnesses).
pub fn send(socket: &std::path::Path, command: &str) -> std::io::Result<String> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    writeln!(stream, "{}", command.trim())?;
    let mut answer = String::new();
    BufReader::new(stream)
        .take(64 * 1024)
        .read_line(&mut answer)?;
    Ok(answer.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse() {
        assert_eq!(parse_command("power-loss\n"), Ok(Command::PowerLoss));
        assert_eq!(
            parse_command("fail-fsync eio"),
            Ok(Command::FailFsync(Errno::EIO))
        );
        assert_eq!(
            parse_command("fail-write ENOSPC"),
            Ok(Command::FailWrite(Errno::ENOSPC))
        );
        assert_eq!(
            parse_command("fail-fsync 5"),
            Ok(Command::FailFsync(Errno::EIO))
        );
        assert_eq!(
            parse_command("stall-fsync 2500"),
            Ok(Command::StallFsync(Duration::from_millis(2500)))
        );
        assert_eq!(parse_command(" heal "), Ok(Command::Heal));
        assert_eq!(parse_command("status"), Ok(Command::Status));
        assert_eq!(parse_command("unmount"), Ok(Command::Unmount));
    }

    #[test]
    fn bad_commands_are_refused_with_a_reason() {
        for bad in [
            "",
            "explode",
            "fail-fsync",
            "fail-fsync eagain",
            "fail-fsync 0",
            "fail-fsync 99999",
            "stall-fsync -1",
            "stall-fsync 99999999999",
            "heal now",
        ] {
            assert!(parse_command(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
