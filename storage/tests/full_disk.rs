//! A disk that fills up: the write error surfaces, the storage refuses everything after it, the
//! acknowledged data survives, and once space returns the node recovers.
//!
//! Mounts a small tmpfs, which needs root (CI runs as root). Without root the test fails, unless
//! RINGRAFT_SKIP_ROOT_TESTS=1 says to skip it.

mod common;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use common::*;
use ringraft_raft::{Entry, EntryPayload, HardState};
use ringraft_storage::{Storage, StorageError, StorageOptions};

struct Tmpfs {
    _holder: tempfile::TempDir,
    path: PathBuf,
}

impl Tmpfs {
    /// `None` only when the mount failed and RINGRAFT_SKIP_ROOT_TESTS=1.
    fn mount(size_bytes: u64) -> Option<Tmpfs> {
        let holder = tempfile::tempdir().unwrap();
        let path = holder.path().to_path_buf();
        let target = CString::new(path.as_os_str().as_bytes()).unwrap();
        let options = CString::new(format!("size={size_bytes},mode=0700")).unwrap();
        // SAFETY: all pointers are valid NUL-terminated strings for the duration of the call.
        let rc = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                options.as_ptr().cast(),
            )
        };
        if rc != 0 {
            let error = std::io::Error::last_os_error();
            if std::env::var("RINGRAFT_SKIP_ROOT_TESTS").as_deref() == Ok("1") {
                eprintln!("SKIPPED full-disk test: mounting a tmpfs failed ({error}) and RINGRAFT_SKIP_ROOT_TESTS=1");
                return None;
            }
            panic!(
                "mounting a tmpfs at {} failed: {error}. This test needs root (CI runs as root); \
                 set RINGRAFT_SKIP_ROOT_TESTS=1 to skip it deliberately",
                path.display()
            );
        }
        Some(Tmpfs {
            _holder: holder,
            path,
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let target = CString::new(self.path.as_os_str().as_bytes()).unwrap();
        // SAFETY: valid NUL-terminated path.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    }
}

fn batch(first: u64, count: u64, term: u64) -> Vec<Entry> {
    (first..first + count)
        .map(|index| Entry {
            term,
            index,
            payload: EntryPayload::Normal(vec![(index % 251) as u8; 200]),
        })
        .collect()
}

fn options() -> StorageOptions {
    StorageOptions {
        segment_bytes_max: 16 << 10,
        write_buffer_bytes: 1024,
        ..small_options()
    }
}

fn fill_until_error(dir: &Path) -> (Vec<Entry>, HardState, Vec<Entry>, HardState, StorageError) {
    let (mut storage, _) = Storage::open(dir, options()).unwrap();
    let mut acked = Vec::new();
    let mut acked_hard_state = HardState::default();
    const BATCHES_MAX: u64 = 100_000;
    for round in 1..=BATCHES_MAX {
        let entries = batch(acked.len() as u64 + 1, 4, round);
        let hard_state = HardState {
            term: round,
            vote: Some(1),
            commit: acked.len() as u64,
        };
        let result = storage
            .append(&entries)
            .and_then(|()| storage.save_hard_state(&hard_state))
            .and_then(|()| storage.sync());
        match result {
            Ok(()) => {
                acked.extend(entries);
                acked_hard_state = hard_state;
            }
            Err(error) => {
                let again = storage.sync().unwrap_err();
                assert!(matches!(again, StorageError::Poisoned(_)), "{again}");
                let more = storage.append(&batch(1, 1, round)).unwrap_err();
                assert!(matches!(more, StorageError::Poisoned(_)), "{more}");
                return (acked, acked_hard_state, entries, hard_state, error);
            }
        }
    }
    panic!("{BATCHES_MAX} batches fit on a tiny tmpfs: the disk never filled");
}

#[test]
fn full_disk_surfaces_poisons_and_recovers_after_space_returns() {
    let Some(tmpfs) = Tmpfs::mount(256 << 10) else {
        return;
    };
    let filler = tmpfs.path.join("filler");
    std::fs::write(&filler, vec![1u8; 160 << 10]).unwrap();
    let dir = tmpfs.path.join("node");

    let (acked, acked_hard_state, failed_batch, failed_hard_state, error) = fill_until_error(&dir);
    assert!(
        !acked.is_empty(),
        "some batches must fit before the disk is full"
    );
    assert_eq!(error.raw_os_error(), Some(libc::ENOSPC), "{error}");
    assert!(error.is_fatal());
    assert!(
        error.to_string().contains(&dir.display().to_string()),
        "{error}"
    );

    std::fs::remove_file(&filler).unwrap();
    let (mut storage, recovered) = Storage::open(&dir, options()).unwrap();
    assert!(
        recovered.entries.starts_with(&acked),
        "acknowledged entries lost: {} of {} recovered",
        recovered.entries.len(),
        acked.len()
    );
    let extra = &recovered.entries[acked.len()..];
    assert!(
        failed_batch.starts_with(extra),
        "recovered entries nobody wrote"
    );
    assert!(
        recovered.hard_state == acked_hard_state || recovered.hard_state == failed_hard_state,
        "{:?}",
        recovered.hard_state
    );

    let next = recovered.entries.len() as u64 + 1;
    storage.append(&batch(next, 8, 1_000_000)).unwrap();
    storage.sync().unwrap();
    drop(storage);
    let (_, again) = Storage::open(&dir, options()).unwrap();
    assert_eq!(again.entries.len() as u64, next + 7);
}
