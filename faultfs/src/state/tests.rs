//! The model without FUSE: each durability rule, and random operation sequences after which the
//! backing directory must equal what a power loss leaves visible.

use super::*;

struct Fixture {
    _dir: tempfile::TempDir,
    backing: PathBuf,
    state: State,
}

fn fixture() -> Fixture {
    fixture_with(Limits::default())
}

fn fixture_with(limits: Limits) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let backing = dir.path().join("backing");
    std::fs::create_dir(&backing).unwrap();
    let state = State::load(&backing, limits).unwrap();
    Fixture {
        _dir: dir,
        backing,
        state,
    }
}

fn name(text: &str) -> &OsStr {
    OsStr::new(text)
}

impl Fixture {
    fn check(&self) {
        if let Err(broken) = self.state.check_invariants() {
            panic!("invariant broken: {broken}");
        }
    }

    fn create(&mut self, parent: Ino, file: &str) -> (Ino, u64) {
        let (attr, fh) = self
            .state
            .create(parent, name(file), 0o644, 0, 0, libc::O_RDWR)
            .unwrap();
        (attr.ino, fh)
    }

    fn write_file(&mut self, parent: Ino, file: &str, data: &[u8]) -> Ino {
        let (ino, fh) = self.create(parent, file);
        self.state.write(fh, 0, data).unwrap();
        self.state.release(fh);
        ino
    }

    fn content(&mut self, parent: Ino, file: &str) -> Option<Vec<u8>> {
        let ino = self.state.lookup(parent, name(file)).ok()?.ino;
        let fh = self.state.open(ino, libc::O_RDONLY).unwrap();
        let data = self.state.read(fh, 0, 1 << 20).unwrap();
        self.state.release(fh);
        Some(data)
    }

    fn fsync_path(&mut self, parent: Ino, file: &str) {
        let ino = self.state.lookup(parent, name(file)).unwrap().ino;
        let fh = self.state.open(ino, libc::O_RDWR).unwrap();
        self.state.fsync_file(ino).unwrap();
        self.state.release(fh);
    }

    fn names(&self, dir: Ino) -> Vec<String> {
        self.state
            .dir(dir)
            .unwrap()
            .entries
            .keys()
            .map(|n| n.to_string_lossy().into_owned())
            .collect()
    }

    fn on_disk(&self, rel: &str) -> Option<Vec<u8>> {
        std::fs::read(self.backing.join(rel)).ok()
    }

    /// The visible tree must be exactly the backing directory (true right after a power loss).
    fn assert_visible_equals_backing(&mut self) {
        let mut pending = vec![(ROOT, self.backing.clone())];
        while let Some((dir, path)) = pending.pop() {
            let mut on_disk: Vec<String> = std::fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !(dir == ROOT && n == ORPHANS_DIR))
                .collect();
            on_disk.sort();
            assert_eq!(self.names(dir), on_disk, "entries of {}", path.display());
            for entry in self.names(dir) {
                let child = self.state.lookup(dir, name(&entry)).unwrap();
                let child_path = path.join(&entry);
                match child.kind {
                    Kind::Dir => pending.push((child.ino, child_path)),
                    Kind::File => assert_eq!(
                        self.content(dir, &entry).unwrap(),
                        std::fs::read(&child_path).unwrap(),
                        "content of {}",
                        child_path.display()
                    ),
                }
            }
        }
        let orphans = std::fs::read_dir(self.backing.join(ORPHANS_DIR))
            .unwrap()
            .count();
        assert_eq!(orphans, 0, "orphans left after a power loss");
    }
}

#[test]
fn an_unsynced_write_is_visible_then_gone_after_power_loss() {
    let mut f = fixture();
    f.write_file(ROOT, "x", b"durable");
    f.fsync_path(ROOT, "x");
    f.state.fsync_dir(ROOT).unwrap();
    let ino = f.state.lookup(ROOT, name("x")).unwrap().ino;
    let fh = f.state.open(ino, libc::O_RDWR).unwrap();
    f.state.write(fh, 0, b"VOLATILE, longer").unwrap();
    assert_eq!(f.content(ROOT, "x").unwrap(), b"VOLATILE, longer");
    assert_eq!(f.on_disk("x").unwrap(), b"durable");
    let report = f.state.power_loss();
    assert_eq!(report.reverted_files, 1);
    assert_eq!(f.content(ROOT, "x").unwrap(), b"durable");
    // The handle of a surviving file keeps working.
    assert_eq!(f.state.read(fh, 0, 100).unwrap(), b"durable");
    f.state.release(fh);
    f.check();
}

#[test]
fn a_created_and_fsynced_file_vanishes_without_a_directory_fsync() {
    let mut f = fixture();
    f.write_file(ROOT, "new", b"data");
    f.fsync_path(ROOT, "new");
    assert_eq!(
        f.on_disk("new"),
        None,
        "not linked in the backing directory yet"
    );
    f.check();
    let report = f.state.power_loss();
    assert_eq!(report.removed_inodes, 1);
    assert_eq!(f.content(ROOT, "new"), None);
    f.assert_visible_equals_backing();
}

#[test]
fn a_directory_fsync_links_the_data_of_the_last_file_fsync_only() {
    let mut f = fixture();
    f.write_file(ROOT, "f", b"first");
    f.fsync_path(ROOT, "f");
    let ino = f.state.lookup(ROOT, name("f")).unwrap().ino;
    let fh = f.state.open(ino, libc::O_RDWR).unwrap();
    f.state.write(fh, 5, b" second").unwrap();
    f.state.fsync_dir(ROOT).unwrap();
    assert_eq!(f.on_disk("f").unwrap(), b"first");
    f.state.release(fh);
    f.state.power_loss();
    assert_eq!(f.content(ROOT, "f").unwrap(), b"first");
    f.assert_visible_equals_backing();
}

#[test]
fn rename_is_undone_without_a_directory_fsync_and_kept_with_one() {
    let mut f = fixture();
    f.write_file(ROOT, "tmp", b"new");
    f.write_file(ROOT, "final", b"old");
    f.fsync_path(ROOT, "tmp");
    f.fsync_path(ROOT, "final");
    f.state.fsync_dir(ROOT).unwrap();
    f.state
        .rename(ROOT, name("tmp"), ROOT, name("final"), 0)
        .unwrap();
    assert_eq!(f.names(ROOT), ["final"]);
    assert_eq!(f.content(ROOT, "final").unwrap(), b"new");
    f.check();
    f.state.power_loss();
    assert_eq!(f.names(ROOT), ["final", "tmp"]);
    assert_eq!(f.content(ROOT, "final").unwrap(), b"old");
    assert_eq!(f.content(ROOT, "tmp").unwrap(), b"new");
    f.state
        .rename(ROOT, name("tmp"), ROOT, name("final"), 0)
        .unwrap();
    f.state.fsync_dir(ROOT).unwrap();
    f.check();
    f.state.power_loss();
    assert_eq!(f.names(ROOT), ["final"]);
    assert_eq!(f.content(ROOT, "final").unwrap(), b"new");
    f.assert_visible_equals_backing();
}

#[test]
fn exchange_and_noreplace() {
    let mut f = fixture();
    f.write_file(ROOT, "a", b"A");
    f.write_file(ROOT, "b", b"B");
    assert_eq!(
        f.state
            .rename(ROOT, name("a"), ROOT, name("b"), libc::RENAME_NOREPLACE),
        Err(libc::EEXIST)
    );
    f.state
        .rename(ROOT, name("a"), ROOT, name("b"), libc::RENAME_EXCHANGE)
        .unwrap();
    assert_eq!(f.content(ROOT, "a").unwrap(), b"B");
    f.fsync_path(ROOT, "a");
    f.fsync_path(ROOT, "b");
    f.state.fsync_dir(ROOT).unwrap();
    f.check();
    f.state.power_loss();
    assert_eq!(f.content(ROOT, "a").unwrap(), b"B");
    assert_eq!(f.content(ROOT, "b").unwrap(), b"A");
    f.assert_visible_equals_backing();
}

#[test]
fn unlink_is_undone_without_a_directory_fsync() {
    let mut f = fixture();
    f.write_file(ROOT, "x", b"keep me");
    f.fsync_path(ROOT, "x");
    f.state.fsync_dir(ROOT).unwrap();
    f.state.unlink(ROOT, name("x")).unwrap();
    assert_eq!(f.content(ROOT, "x"), None);
    f.state.power_loss();
    assert_eq!(f.content(ROOT, "x").unwrap(), b"keep me");
    f.state.unlink(ROOT, name("x")).unwrap();
    f.state.fsync_dir(ROOT).unwrap();
    assert_eq!(f.on_disk("x"), None);
    f.state.power_loss();
    assert_eq!(f.content(ROOT, "x"), None);
    f.assert_visible_equals_backing();
}

#[test]
fn an_open_unlinked_file_stays_usable_and_is_freed_on_release() {
    let mut f = fixture();
    let (ino, fh) = f.create(ROOT, "x");
    f.state.fsync_dir(ROOT).unwrap();
    f.state.unlink(ROOT, name("x")).unwrap();
    f.state.fsync_dir(ROOT).unwrap();
    f.state.write(fh, 0, b"still here").unwrap();
    f.state.fsync_file(ino).unwrap();
    assert_eq!(f.state.read(fh, 0, 100).unwrap(), b"still here");
    f.check();
    f.state.release(fh);
    assert_eq!(f.state.getattr(ino).unwrap_err(), libc::ENOENT);
    assert_eq!(
        std::fs::read_dir(f.backing.join(ORPHANS_DIR))
            .unwrap()
            .count(),
        0
    );
    f.check();
}

#[test]
fn truncation_is_undone_without_fsync() {
    let mut f = fixture();
    f.write_file(ROOT, "x", b"0123456789");
    f.fsync_path(ROOT, "x");
    f.state.fsync_dir(ROOT).unwrap();
    let ino = f.state.lookup(ROOT, name("x")).unwrap().ino;
    f.state
        .setattr(
            ino,
            SetAttr {
                size: Some(3),
                ..SetAttr::default()
            },
        )
        .unwrap();
    assert_eq!(f.content(ROOT, "x").unwrap(), b"012");
    f.state.power_loss();
    assert_eq!(f.content(ROOT, "x").unwrap(), b"0123456789");
    f.state
        .setattr(
            ino,
            SetAttr {
                size: Some(3),
                ..SetAttr::default()
            },
        )
        .unwrap();
    f.fsync_path(ROOT, "x");
    f.state.power_loss();
    assert_eq!(f.content(ROOT, "x").unwrap(), b"012");
}

#[test]
fn a_directory_created_without_parent_fsync_vanishes_with_its_contents() {
    let mut f = fixture();
    let dir = f.state.mkdir(ROOT, name("d"), 0o755, 0, 0).unwrap().ino;
    f.write_file(dir, "inner", b"x");
    f.fsync_path(dir, "inner");
    f.state.fsync_dir(dir).unwrap();
    f.check();
    let report = f.state.power_loss();
    assert_eq!(report.removed_inodes, 2);
    assert!(f.names(ROOT).is_empty());
    f.assert_visible_equals_backing();
    // With the parent fsynced as well, all of it stays.
    let dir = f.state.mkdir(ROOT, name("d"), 0o755, 0, 0).unwrap().ino;
    f.write_file(dir, "inner", b"x");
    f.fsync_path(dir, "inner");
    f.state.fsync_dir(dir).unwrap();
    f.state.fsync_dir(ROOT).unwrap();
    f.state.power_loss();
    assert_eq!(f.on_disk("d/inner").unwrap(), b"x");
    f.assert_visible_equals_backing();
}

#[test]
fn removing_a_durable_directory_frees_its_durable_subtree() {
    let mut f = fixture();
    let dir = f.state.mkdir(ROOT, name("d"), 0o755, 0, 0).unwrap().ino;
    f.write_file(dir, "inner", b"x");
    f.state.fsync_dir(dir).unwrap();
    f.state.fsync_dir(ROOT).unwrap();
    f.state.unlink(dir, name("inner")).unwrap();
    f.state.rmdir(ROOT, name("d")).unwrap();
    f.state.fsync_dir(ROOT).unwrap();
    f.check();
    assert_eq!(f.state.getattr(dir).unwrap_err(), libc::ENOENT);
    assert_eq!(f.state.inodes.len(), 1, "only the root is left");
    f.state.power_loss();
    f.assert_visible_equals_backing();
}

#[test]
fn a_failed_fsync_loses_the_dirty_pages_even_if_a_retry_succeeds() {
    let mut f = fixture();
    f.write_file(ROOT, "x", b"old");
    f.fsync_path(ROOT, "x");
    f.state.fsync_dir(ROOT).unwrap();
    let ino = f.state.lookup(ROOT, name("x")).unwrap().ino;
    let fh = f.state.open(ino, libc::O_RDWR).unwrap();
    f.state.write(fh, 0, b"new").unwrap();
    f.state.fsync_failed(ino);
    f.state.fsync_file(ino).unwrap();
    assert_eq!(f.state.read(fh, 0, 10).unwrap(), b"new");
    f.state.release(fh);
    f.state.power_loss();
    assert_eq!(f.content(ROOT, "x").unwrap(), b"old");
}

#[test]
fn limits_are_enforced() {
    let mut f = fixture_with(Limits {
        cache_bytes_max: 2 * crate::cache::PAGE_BYTES as u64,
        inodes_max: 4,
        handles_max: 2,
        stalled_fsyncs_max: 1,
    });
    let (_, fh) = f.create(ROOT, "a");
    assert_eq!(
        f.state.write(fh, 0, &[1; 3 * crate::cache::PAGE_BYTES]),
        Err(libc::ENOSPC)
    );
    f.state.write(fh, 0, &[1; 100]).unwrap();
    let (_, fh2) = f.create(ROOT, "b");
    assert_eq!(
        f.state
            .create(ROOT, name("c"), 0o644, 0, 0, libc::O_RDWR)
            .unwrap_err(),
        libc::ENFILE
    );
    f.state.release(fh2);
    f.state.mkdir(ROOT, name("d"), 0o755, 0, 0).unwrap();
    assert_eq!(
        f.state.mkdir(ROOT, name("e"), 0o755, 0, 0).unwrap_err(),
        libc::ENOSPC
    );
    f.state.release(fh);
    f.check();
}

#[test]
fn names_the_model_refuses() {
    let mut f = fixture();
    for (bad, errno) in [
        (ORPHANS_DIR, libc::EPERM),
        ("..", libc::EINVAL),
        ("a/b", libc::EINVAL),
    ] {
        assert_eq!(
            f.state.mkdir(ROOT, name(bad), 0o755, 0, 0).unwrap_err(),
            errno,
            "{bad}"
        );
    }
    let long = "x".repeat(256);
    assert_eq!(
        f.state.mkdir(ROOT, name(&long), 0o755, 0, 0).unwrap_err(),
        libc::ENAMETOOLONG
    );
    let dir = f.state.mkdir(ROOT, name("d"), 0o755, 0, 0).unwrap().ino;
    f.write_file(ROOT, "x", b"");
    assert_eq!(
        f.state.rename(ROOT, name("x"), dir, name("x"), 0),
        Err(libc::EXDEV)
    );
    assert_eq!(
        f.state.open(ROOT, libc::O_RDONLY | libc::O_DIRECT),
        Err(libc::EINVAL)
    );
}

#[test]
fn a_backing_directory_is_loaded_as_durable() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/f"), b"there before").unwrap();
    std::fs::create_dir(dir.path().join(ORPHANS_DIR)).unwrap();
    std::fs::write(dir.path().join(ORPHANS_DIR).join("7"), b"stale").unwrap();
    let mut state = State::load(dir.path(), Limits::default()).unwrap();
    let sub = state.lookup(ROOT, name("sub")).unwrap().ino;
    let file = state.lookup(sub, name("f")).unwrap().ino;
    let fh = state.open(file, libc::O_RDONLY).unwrap();
    assert_eq!(state.read(fh, 0, 100).unwrap(), b"there before");
    state.release(fh);
    assert_eq!(state.power_loss(), PowerLoss::default());
    assert!(state.lookup(ROOT, name(ORPHANS_DIR)).is_err());
    assert_eq!(
        std::fs::read_dir(dir.path().join(ORPHANS_DIR))
            .unwrap()
            .count(),
        0
    );
    state.check_invariants().unwrap();
}

/// xorshift64*: enough randomness for operation sequences, reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) % n
    }
}

#[test]
fn random_operations_keep_the_invariants_and_the_backing_equals_the_durable_view() {
    const NAMES: [&str; 3] = ["a", "b", "c"];
    for seed in 1..=120u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut f = fixture();
        let mut open: Vec<(Ino, u64)> = Vec::new();
        for step in 0..250 {
            let dirs: Vec<Ino> = std::iter::once(ROOT)
                .chain(f.state.lookup(ROOT, name("d")).ok().map(|a| a.ino))
                .filter(|ino| f.state.dir(*ino).is_ok())
                .collect();
            let dir = dirs[rng.below(dirs.len() as u64) as usize];
            let pick = NAMES[rng.below(3) as usize];
            let other = NAMES[rng.below(3) as usize];
            let op = rng.below(12);
            let what = format!("seed {seed} step {step} op {op} {pick} {other} in {dir}");
            match op {
                0 if open.len() < 4 => {
                    if let Ok((attr, fh)) =
                        f.state.create(dir, name(pick), 0o644, 0, 0, libc::O_RDWR)
                    {
                        open.push((attr.ino, fh));
                    }
                }
                1 | 2 if !open.is_empty() => {
                    let (_, fh) = open[rng.below(open.len() as u64) as usize];
                    let offset = rng.below(9000);
                    let data = vec![rng.below(256) as u8; 1 + rng.below(5000) as usize];
                    let _ = f.state.write(fh, offset, &data);
                }
                3 if !open.is_empty() => {
                    let (ino, _) = open[rng.below(open.len() as u64) as usize];
                    let _ = f.state.fsync_file(ino);
                }
                4 => {
                    let _ = f.state.fsync_dir(dir);
                }
                5 => {
                    let flags =
                        [0, libc::RENAME_NOREPLACE, libc::RENAME_EXCHANGE][rng.below(3) as usize];
                    let _ = f.state.rename(dir, name(pick), dir, name(other), flags);
                }
                6 => {
                    let _ = f.state.unlink(dir, name(pick));
                }
                7 => {
                    let _ = f.state.mkdir(ROOT, name("d"), 0o755, 0, 0);
                }
                8 => {
                    let _ = f.state.rmdir(ROOT, name("d"));
                }
                9 => {
                    if let Ok(attr) = f.state.lookup(dir, name(pick)) {
                        let change = SetAttr {
                            size: Some(rng.below(9000)),
                            ..SetAttr::default()
                        };
                        let _ = f.state.setattr(attr.ino, change);
                    }
                }
                10 if !open.is_empty() => {
                    let (_, fh) = open.swap_remove(rng.below(open.len() as u64) as usize);
                    f.state.release(fh);
                }
                11 if rng.below(4) == 0 => {
                    for (_, fh) in open.drain(..) {
                        f.state.release(fh);
                    }
                    f.state.power_loss();
                    f.assert_visible_equals_backing();
                }
                _ => {}
            }
            if let Err(broken) = f.state.check_invariants() {
                panic!("{what}: {broken}");
            }
        }
        for (_, fh) in open.drain(..) {
            f.state.release(fh);
        }
        f.state.power_loss();
        f.assert_visible_equals_backing();
        assert_eq!(
            f.state.budget.bytes, 0,
            "seed {seed}: cache memory after power loss"
        );
    }
}
