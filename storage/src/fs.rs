//! File system helpers: directory fsync, the directory lock, file names.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::error::StorageError;

pub const LOCK_FILE_NAME: &str = "LOCK";
const SEGMENT_PREFIX: &str = "wal-";
const SEGMENT_SUFFIX: &str = ".seg";
const SNAPSHOT_PREFIX: &str = "snap-";
const SNAPSHOT_SUFFIX: &str = ".snap";
pub const TEMP_SUFFIX: &str = ".tmp";
const CHECKPOINT_PREFIX: &str = "ckpt-";
const CHECKPOINT_SUFFIX: &str = ".ckpt";

pub fn segment_file_name(seq: u64) -> String {
    format!("{SEGMENT_PREFIX}{seq:020}{SEGMENT_SUFFIX}")
}

pub fn snapshot_file_name(index: u64) -> String {
    format!("{SNAPSHOT_PREFIX}{index:020}{SNAPSHOT_SUFFIX}")
}

/// The number in a name made by `segment_file_name`, or `None` for any other name.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    parse_numbered(name, SEGMENT_PREFIX, SEGMENT_SUFFIX)
}

pub fn parse_snapshot_file_name(name: &str) -> Option<u64> {
    parse_numbered(name, SNAPSHOT_PREFIX, SNAPSHOT_SUFFIX)
}

/// A register store checkpoint: `<seq>` is the first log segment it does not cover.
pub fn checkpoint_file_name(seq: u64) -> String {
    format!("{CHECKPOINT_PREFIX}{seq:020}{CHECKPOINT_SUFFIX}")
}

pub fn parse_checkpoint_file_name(name: &str) -> Option<u64> {
    parse_numbered(name, CHECKPOINT_PREFIX, CHECKPOINT_SUFFIX)
}

/// A checkpoint being written (`ckpt-*.ckpt.tmp`), deleted on open.
pub(crate) fn is_checkpoint_temp_name(name: &str) -> bool {
    name.starts_with(CHECKPOINT_PREFIX) && name.ends_with(TEMP_SUFFIX)
}

fn parse_numbered(name: &str, prefix: &str, suffix: &str) -> Option<u64> {
    let digits = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Makes the creation, rename or removal of entries in `dir` durable.
pub fn fsync_dir(dir: &Path) -> Result<(), StorageError> {
    let handle = File::open(dir).map_err(|e| StorageError::io("opening directory", dir, e))?;
    handle
        .sync_all()
        .map_err(|e| StorageError::io("fsyncing directory", dir, e))
}

/// Holds an exclusive `flock` on `<dir>/LOCK` for as long as it lives. The lock file holds the
/// owner's pid, so the next process can say who is in its way.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    pub fn acquire(dir: &Path) -> Result<DirLock, StorageError> {
        let path = dir.join(LOCK_FILE_NAME);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| StorageError::io("opening lock file", &path, e))?;
        // SAFETY: flock on a descriptor we own; it has no memory effects.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(StorageError::Locked {
                    dir: dir.to_path_buf(),
                    holder_pid: read_pid(&mut file),
                });
            }
            return Err(StorageError::io("locking", &path, err));
        }
        let write_pid = |file: &mut File| -> std::io::Result<()> {
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            writeln!(file, "{}", std::process::id())
        };
        write_pid(&mut file).map_err(|e| StorageError::io("writing pid to lock file", &path, e))?;
        Ok(DirLock { _file: file })
    }
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.take(32).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Reads a whole file, refusing files above `bytes_max` before allocating.
pub fn read_file_limited(path: &Path, bytes_max: u64) -> Result<Vec<u8>, StorageError> {
    let mut file = File::open(path).map_err(|e| StorageError::io("opening", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| StorageError::io("reading metadata of", path, e))?
        .len();
    if len > bytes_max {
        return Err(StorageError::corrupt(
            path,
            0,
            format!("file is {len} bytes, above the limit of {bytes_max} bytes"),
        ));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.read_to_end(&mut bytes)
        .map_err(|e| StorageError::io("reading", path, e))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip_and_reject_lookalikes() {
        assert_eq!(parse_segment_file_name(&segment_file_name(42)), Some(42));
        assert_eq!(parse_snapshot_file_name(&snapshot_file_name(7)), Some(7));
        assert_eq!(parse_segment_file_name("wal-42.seg"), None);
        assert_eq!(
            parse_segment_file_name("wal-0000000000000000004x.seg"),
            None
        );
        assert_eq!(parse_snapshot_file_name(&segment_file_name(1)), None);
        assert_eq!(
            parse_checkpoint_file_name(&checkpoint_file_name(9)),
            Some(9)
        );
        assert_eq!(parse_checkpoint_file_name(&snapshot_file_name(9)), None);
    }
}
