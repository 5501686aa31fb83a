//! The page cache of one regular file: what readers see, and what an fsync writes.
//!
//! The backing file holds the durable bytes. In memory: the visible size, and the pages whose
//! visible content differs from the backing file. `valid_disk_bytes` is how much of the backing file
//! is still part of the visible content: a truncation below the backing file's length hides the
//! rest until an fsync cuts it off for good (or a power loss brings it back).

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

pub const PAGE_BYTES: usize = 4096;
const PAGE: u64 = PAGE_BYTES as u64;

#[derive(Debug)]
struct Page {
    bytes: Box<[u8; PAGE_BYTES]>,
    /// True: the next fsync writes it. False: an fsync failed while it was dirty, so (as Linux does
    /// after a failed writeback) it is clean but never written: readers still see it, a power loss
    /// drops it, a later fsync does not write it unless it is written to again.
    dirty: bool,
}

#[derive(Debug)]
pub struct FileCache {
    /// Length of the backing file (the durable size).
    disk_len: u64,
    /// Visible size.
    size: u64,
    /// Bytes of the backing file at or above this offset are not visible (cut by a truncation
    /// that is not durable yet). Always `<= disk_len`.
    valid_disk_bytes: u64,
    pages: BTreeMap<u64, Page>,
}

/// Memory accounting for all caches of one filesystem.
#[derive(Debug)]
pub struct Budget {
    pub bytes: u64,
    pub bytes_max: u64,
}

impl Budget {
    fn reserve(&mut self, pages: u64) -> Result<(), i32> {
        let bytes = pages.checked_mul(PAGE).ok_or(libc::ENOSPC)?;
        let total = self.bytes.checked_add(bytes).ok_or(libc::ENOSPC)?;
        if total > self.bytes_max {
            return Err(libc::ENOSPC);
        }
        self.bytes = total;
        Ok(())
    }

    fn release(&mut self, pages: u64) {
        let bytes = pages * PAGE;
        debug_assert!(self.bytes >= bytes, "cache budget underflow");
        self.bytes = self.bytes.saturating_sub(bytes);
    }
}

fn io_errno(error: io::Error) -> i32 {
    error.raw_os_error().unwrap_or(libc::EIO)
}

/// Appends `len` bytes of the backing file from `offset` to `out`; zeros where the file is shorter
/// (it cannot be, unless someone changed the backing directory under the mount).
fn read_disk(disk: &File, offset: u64, len: usize, out: &mut Vec<u8>) -> Result<(), i32> {
    let start = out.len();
    out.resize(start + len, 0);
    let mut done = 0;
    while done < len {
        match disk.read_at(&mut out[start + done..start + len], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                out.truncate(start);
                return Err(io_errno(e));
            }
        }
    }
    Ok(())
}

/// Largest file size accepted (the kernel's own limit for a 64-bit off_t, minus a page).
pub const FILE_BYTES_MAX: u64 = i64::MAX as u64 - PAGE;

impl FileCache {
    /// A file whose backing file is `disk_len` bytes long and has no unsynced changes.
    pub fn clean(disk_len: u64) -> FileCache {
        FileCache {
            disk_len,
            size: disk_len,
            valid_disk_bytes: disk_len,
            pages: BTreeMap::new(),
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes held in memory by this file's cache.
    pub fn cached_bytes(&self) -> u64 {
        self.pages.len() as u64 * PAGE
    }

    /// True if an fsync would change the backing file.
    pub fn is_dirty(&self) -> bool {
        self.size != self.disk_len
            || self.valid_disk_bytes != self.disk_len
            || self.pages.values().any(|p| p.dirty)
    }

    /// Reads page `index` as currently visible (it is not cached), from the backing file.
    fn load_page(&self, disk: &File, index: u64) -> Result<Box<[u8; PAGE_BYTES]>, i32> {
        let mut page = Box::new([0u8; PAGE_BYTES]);
        let start = index * PAGE;
        let end = (start + PAGE).min(self.valid_disk_bytes).min(self.size);
        if end > start {
            let mut bytes = Vec::with_capacity((end - start) as usize);
            read_disk(disk, start, (end - start) as usize, &mut bytes)?;
            page[..bytes.len()].copy_from_slice(&bytes);
        }
        Ok(page)
    }

    /// The visible bytes in `offset .. offset + len`, cut at the visible size. Runs of pages that
    /// are not cached are read from the backing file with one read each.
    pub fn read(&self, disk: &File, offset: u64, len: u32) -> Result<Vec<u8>, i32> {
        if offset >= self.size {
            return Ok(Vec::new());
        }
        let end = offset.saturating_add(u64::from(len)).min(self.size);
        let mut out = Vec::with_capacity((end - offset) as usize);
        let mut position = offset;
        while position < end {
            let index = position / PAGE;
            if let Some(page) = self.pages.get(&index) {
                let within = (position % PAGE) as usize;
                let take = (PAGE - within as u64).min(end - position) as usize;
                out.extend_from_slice(&page.bytes[within..within + take]);
                position += take as u64;
                continue;
            }
            let run_end = self
                .pages
                .range(index + 1..)
                .next()
                .map_or(end, |(next, _)| (next * PAGE).min(end));
            let disk_end = run_end.min(self.valid_disk_bytes).max(position);
            read_disk(disk, position, (disk_end - position) as usize, &mut out)?;
            out.resize(out.len() + (run_end - disk_end) as usize, 0);
            position = run_end;
        }
        Ok(out)
    }

    /// Writes `data` at `offset` into the cache (nothing reaches the backing file). Fails with
    /// ENOSPC, changing nothing, if the pages it needs would take the cache past its budget.
    pub fn write(
        &mut self,
        disk: &File,
        offset: u64,
        data: &[u8],
        budget: &mut Budget,
    ) -> Result<(), i32> {
        if data.is_empty() {
            return Ok(());
        }
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|end| *end <= FILE_BYTES_MAX)
            .ok_or(libc::EFBIG)?;
        let first = offset / PAGE;
        let last = (end - 1) / PAGE;
        let new_pages = (first..=last)
            .filter(|i| !self.pages.contains_key(i))
            .count() as u64;
        budget.reserve(new_pages)?;
        // Load missing pages before changing the size: loading reads up to the old size.
        let mut loaded = Vec::new();
        for index in first..=last {
            if !self.pages.contains_key(&index) {
                match self.load_page(disk, index) {
                    Ok(page) => loaded.push((index, page)),
                    Err(errno) => {
                        budget.release(new_pages);
                        return Err(errno);
                    }
                }
            }
        }
        for (index, bytes) in loaded {
            self.pages.insert(index, Page { bytes, dirty: true });
        }
        let mut position = offset;
        let mut rest = data;
        while !rest.is_empty() {
            let index = position / PAGE;
            let within = (position % PAGE) as usize;
            let take = (PAGE_BYTES - within).min(rest.len());
            let Some(page) = self.pages.get_mut(&index) else {
                unreachable!("page {index} was loaded above");
            };
            page.bytes[within..within + take].copy_from_slice(&rest[..take]);
            page.dirty = true;
            rest = &rest[take..];
            position += take as u64;
        }
        self.size = self.size.max(end);
        Ok(())
    }

    /// Sets the visible size. Shrinking drops cached pages past the new end and hides the backing
    /// file's bytes past it; growing reads as zeros.
    pub fn set_size(&mut self, size: u64, budget: &mut Budget) -> Result<(), i32> {
        if size > FILE_BYTES_MAX {
            return Err(libc::EFBIG);
        }
        if size < self.size {
            let keep_pages = size.div_ceil(PAGE);
            let dropped = self.pages.split_off(&keep_pages);
            budget.release(dropped.len() as u64);
            if !size.is_multiple_of(PAGE) {
                if let Some(page) = self.pages.get_mut(&(size / PAGE)) {
                    page.bytes[(size % PAGE) as usize..].fill(0);
                    page.dirty = true;
                }
            }
            self.valid_disk_bytes = self.valid_disk_bytes.min(size);
        }
        self.size = size;
        Ok(())
    }

    /// Makes the visible content durable: cuts the backing file where a truncation hid it, writes
    /// the dirty pages, sets the backing file's length. Clean pages that equal the backing file are
    /// dropped from memory. On an I/O error the cache is left as it was (some pages may have been
    /// written: a torn write).
    pub fn flush(&mut self, disk: &File, budget: &mut Budget) -> Result<(), i32> {
        if self.valid_disk_bytes < self.disk_len {
            disk.set_len(self.valid_disk_bytes).map_err(io_errno)?;
            self.disk_len = self.valid_disk_bytes;
        }
        for (index, page) in &self.pages {
            if !page.dirty {
                continue;
            }
            let start = index * PAGE;
            if start >= self.size {
                continue;
            }
            let len = (self.size - start).min(PAGE) as usize;
            disk.write_all_at(&page.bytes[..len], start)
                .map_err(io_errno)?;
        }
        disk.set_len(self.size).map_err(io_errno)?;
        self.disk_len = self.size;
        self.valid_disk_bytes = self.size;
        let before = self.pages.len();
        self.pages.retain(|_, page| !page.dirty);
        budget.release((before - self.pages.len()) as u64);
        Ok(())
    }

    /// An fsync failed: the dirty pages become clean without being written (they stay visible until
    /// a power loss). Size changes stay pending.
    pub fn forget_dirty_pages(&mut self) {
        for page in self.pages.values_mut() {
            page.dirty = false;
        }
    }

    /// Power loss: only the backing file remains. Returns the bytes of unsynced changes dropped.
    pub fn power_loss(&mut self, budget: &mut Budget) -> u64 {
        let dropped = self.cached_bytes();
        budget.release(self.pages.len() as u64);
        *self = FileCache::clean(self.disk_len);
        dropped
    }

    /// Releases this file's memory (the file is gone).
    pub fn discard(&mut self, budget: &mut Budget) {
        budget.release(self.pages.len() as u64);
        self.pages.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(content: &[u8]) -> (tempfile::TempDir, File, FileCache, Budget) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, content).unwrap();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let cache = FileCache::clean(content.len() as u64);
        let budget = Budget {
            bytes: 0,
            bytes_max: 16 * PAGE,
        };
        (dir, file, cache, budget)
    }

    fn disk(file: &File) -> Vec<u8> {
        let mut out = vec![0; file.metadata().unwrap().len() as usize];
        file.read_exact_at(&mut out, 0).unwrap();
        out
    }

    #[test]
    fn writes_are_visible_but_reach_the_disk_only_on_flush() {
        let (_dir, file, mut cache, mut budget) = setup(b"hello world");
        cache
            .write(&file, 6, b"there, friend", &mut budget)
            .unwrap();
        assert_eq!(cache.read(&file, 0, 100).unwrap(), b"hello there, friend");
        assert_eq!(disk(&file), b"hello world");
        assert!(cache.is_dirty());
        cache.flush(&file, &mut budget).unwrap();
        assert_eq!(disk(&file), b"hello there, friend");
        assert_eq!(budget.bytes, 0, "flushed pages are released");
        assert!(!cache.is_dirty());
    }

    #[test]
    fn power_loss_keeps_only_the_disk() {
        let (_dir, file, mut cache, mut budget) = setup(b"abc");
        cache.write(&file, 3, &[7; 5000], &mut budget).unwrap();
        assert_eq!(cache.size(), 5003);
        let dropped = cache.power_loss(&mut budget);
        assert_eq!(dropped, 2 * PAGE);
        assert_eq!(budget.bytes, 0);
        assert_eq!(cache.read(&file, 0, 10_000).unwrap(), b"abc");
    }

    #[test]
    fn truncate_hides_disk_bytes_and_extension_reads_zeros() {
        let (_dir, file, mut cache, mut budget) = setup(b"0123456789");
        cache.set_size(4, &mut budget).unwrap();
        cache.set_size(8, &mut budget).unwrap();
        assert_eq!(cache.read(&file, 0, 100).unwrap(), b"0123\0\0\0\0");
        // A partial write to the page loads it as visible, not as on disk.
        cache.write(&file, 9, b"x", &mut budget).unwrap();
        assert_eq!(cache.read(&file, 0, 100).unwrap(), b"0123\0\0\0\0\0x");
        assert_eq!(disk(&file), b"0123456789");
        cache.flush(&file, &mut budget).unwrap();
        assert_eq!(disk(&file), b"0123\0\0\0\0\0x");
    }

    #[test]
    fn reads_mix_cached_pages_disk_runs_and_zeros() {
        let content: Vec<u8> = (0..5 * PAGE_BYTES).map(|i| (i % 251) as u8).collect();
        let (_dir, file, mut cache, mut budget) = setup(&content);
        cache
            .write(&file, PAGE + 10, b"cached", &mut budget)
            .unwrap();
        cache.set_size(4 * PAGE + 100, &mut budget).unwrap();
        cache.set_size(6 * PAGE, &mut budget).unwrap();
        let mut expected = content.clone();
        expected[PAGE_BYTES + 10..PAGE_BYTES + 16].copy_from_slice(b"cached");
        expected.truncate(4 * PAGE_BYTES + 100);
        expected.resize(6 * PAGE_BYTES, 0);
        assert_eq!(cache.read(&file, 0, u32::MAX).unwrap(), expected);
        for (offset, len) in [
            (0, 1),
            (PAGE - 1, 2),
            (PAGE + 12, 3 * PAGE as u32),
            (5 * PAGE, 9),
        ] {
            let start = offset as usize;
            let stop = (start + len as usize).min(expected.len());
            assert_eq!(
                cache.read(&file, offset, len).unwrap(),
                expected[start..stop],
                "read at {offset} of {len}"
            );
        }
    }

    #[test]
    fn truncate_zeroes_the_tail_of_a_cached_page() {
        let (_dir, file, mut cache, mut budget) = setup(b"");
        cache.write(&file, 0, b"abcdef", &mut budget).unwrap();
        cache.set_size(2, &mut budget).unwrap();
        cache.set_size(6, &mut budget).unwrap();
        assert_eq!(cache.read(&file, 0, 10).unwrap(), b"ab\0\0\0\0");
    }

    #[test]
    fn the_budget_refuses_with_enospc_and_changes_nothing() {
        let (_dir, file, mut cache, mut budget) = setup(b"");
        cache
            .write(&file, 0, &vec![1; 16 * PAGE_BYTES], &mut budget)
            .unwrap();
        assert_eq!(
            cache.write(&file, 16 * PAGE, b"x", &mut budget),
            Err(libc::ENOSPC)
        );
        assert_eq!(cache.size(), 16 * PAGE);
        // Rewriting cached pages needs no new memory.
        cache.write(&file, 0, b"y", &mut budget).unwrap();
        cache.flush(&file, &mut budget).unwrap();
        cache.write(&file, 16 * PAGE, b"x", &mut budget).unwrap();
    }

    #[test]
    fn pages_forgotten_after_a_failed_fsync_are_visible_but_never_written() {
        let (_dir, file, mut cache, mut budget) = setup(b"old!");
        cache.write(&file, 0, b"new!", &mut budget).unwrap();
        cache.forget_dirty_pages();
        cache.flush(&file, &mut budget).unwrap();
        assert_eq!(cache.read(&file, 0, 4).unwrap(), b"new!");
        assert_eq!(disk(&file), b"old!", "a retried fsync must not write them");
        cache.power_loss(&mut budget);
        assert_eq!(cache.read(&file, 0, 4).unwrap(), b"old!");
    }
}
