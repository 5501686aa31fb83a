//! The filesystem's model: what processes see (the visible namespace and file contents) and what a
//! power loss would leave (the durable namespace and the backing files).
//!
//! Every directory keeps two maps, `entries` (visible) and `durable`; fsync of the directory makes
//! the second a copy of the first. Every inode knows where it is visible and where it is durable.
//! The backing directory always holds exactly the durable state: a durable inode lives at its
//! durable path; an inode with no durable name (created, or unlinked or renamed away and then
//! the directory fsynced) lives in the hidden orphan directory under its inode number, which a
//! power loss (or the next mount) empties.
//!
//! Errors are plain errno values (`i32`); the FUSE layer turns them into replies.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::backing::{join, Backing};
use crate::cache::{Budget, FileCache};

pub type Ino = u64;
pub const ROOT: Ino = 1;

/// Hidden directory at the backing root that holds inodes with no durable name. Not visible
/// through the mount; a name the mount refuses to create at its root.
pub const ORPHANS_DIR: &str = ".faultfs-orphans";

/// Directory nesting accepted (at load and when creating).
pub const DEPTH_MAX: usize = 64;
const NAME_BYTES_MAX: usize = 255;

/// Bounds on everything the filesystem holds in memory.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Memory for cached (unsynced) file pages; a write needing more fails with ENOSPC.
    pub cache_bytes_max: u64,
    /// Files and directories; creating more fails with ENOSPC (and a larger backing tree is
    /// refused at mount).
    pub inodes_max: usize,
    /// Open files and directories through the mount; more fail with ENFILE.
    pub handles_max: usize,
    /// Fsyncs held by a stall at once; more fail with EIO.
    pub stalled_fsyncs_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            cache_bytes_max: 256 << 20,
            inodes_max: 1 << 20,
            handles_max: 4096,
            stalled_fsyncs_max: 1024,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
}

#[derive(Debug, Clone, Copy)]
pub struct Meta {
    pub perm: u16,
    pub uid: u32,
    pub gid: u32,
    pub atime: SystemTime,
    pub mtime: SystemTime,
    pub ctime: SystemTime,
}

impl Meta {
    fn new(mode: u32, uid: u32, gid: u32) -> Meta {
        let now = SystemTime::now();
        Meta {
            perm: (mode & 0o7777) as u16,
            uid,
            gid,
            atime: now,
            mtime: now,
            ctime: now,
        }
    }

    fn from_metadata(md: &std::fs::Metadata) -> Meta {
        let time = |secs: i64, nanos: i64| {
            let nanos = u32::try_from(nanos).unwrap_or(0).min(999_999_999);
            match u64::try_from(secs) {
                Ok(secs) => SystemTime::UNIX_EPOCH + Duration::new(secs, nanos),
                Err(_) => SystemTime::UNIX_EPOCH,
            }
        };
        Meta {
            perm: (md.mode() & 0o7777) as u16,
            uid: md.uid(),
            gid: md.gid(),
            atime: time(md.atime(), md.atime_nsec()),
            mtime: time(md.mtime(), md.mtime_nsec()),
            ctime: time(md.ctime(), md.ctime_nsec()),
        }
    }
}

/// What `getattr` reports.
#[derive(Debug, Clone, Copy)]
pub struct Attr {
    pub ino: Ino,
    pub kind: Kind,
    pub size: u64,
    pub nlink: u32,
    pub meta: Meta,
}

#[derive(Debug, Clone)]
pub struct DirEntry {
    pub ino: Ino,
    pub kind: Kind,
    pub name: OsString,
}

#[derive(Debug)]
struct FileBody {
    cache: FileCache,
    /// The backing file, open while the file has open handles.
    disk: Option<File>,
}

#[derive(Debug, Default)]
struct DirBody {
    entries: BTreeMap<OsString, Ino>,
    durable: BTreeMap<OsString, Ino>,
}

#[derive(Debug)]
enum Body {
    File(FileBody),
    Dir(DirBody),
}

#[derive(Debug)]
struct Inode {
    body: Body,
    meta: Meta,
    /// Parent and name through which processes see it; `None` once unlinked.
    visible: Option<(Ino, OsString)>,
    /// Parent and name that a power loss keeps; `None` if it would vanish.
    durable: Option<(Ino, OsString)>,
    handles: u32,
}

impl Inode {
    fn kind(&self) -> Kind {
        match self.body {
            Body::File(_) => Kind::File,
            Body::Dir(_) => Kind::Dir,
        }
    }
}

#[derive(Debug)]
enum HandleKind {
    File { append: bool },
    Dir { listing: Vec<DirEntry> },
}

#[derive(Debug)]
struct Handle {
    ino: Ino,
    kind: HandleKind,
}

/// Which attributes a `setattr` changes.
#[derive(Debug, Default, Clone, Copy)]
pub struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<SystemTime>,
    pub mtime: Option<SystemTime>,
}

/// What a power loss threw away.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PowerLoss {
    /// Bytes of cached file pages dropped (written or truncated but not fsynced).
    pub dropped_cache_bytes: u64,
    /// Files whose size or content went back to the last fsync.
    pub reverted_files: u64,
    /// Directories whose entries went back to the last directory fsync.
    pub reverted_dirs: u64,
    /// Files and directories that no longer exist.
    pub removed_inodes: u64,
}

/// Counts of what is not durable right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unsynced {
    pub cache_bytes: u64,
    pub files: u64,
    pub dirs: u64,
    pub inodes: u64,
    pub handles: u64,
}

fn errno_of(error: io::Error) -> i32 {
    error.raw_os_error().unwrap_or(libc::EIO)
}

fn orphan_path(ino: Ino) -> PathBuf {
    Path::new(ORPHANS_DIR).join(ino.to_string())
}

#[derive(Debug)]
pub struct State {
    backing: Backing,
    inodes: HashMap<Ino, Inode>,
    handles: HashMap<u64, Handle>,
    next_ino: Ino,
    next_fh: u64,
    budget: Budget,
    limits: Limits,
}

impl State {
    /// Reads the backing directory (everything in it is durable), empties its orphan directory,
    /// and opens it for use. Must run before the mount if the mount covers `backing`.
    pub fn load(backing: &Path, limits: Limits) -> io::Result<State> {
        let orphans = backing.join(ORPHANS_DIR);
        match std::fs::symlink_metadata(&orphans) {
            Ok(md) if md.is_dir() => std::fs::remove_dir_all(&orphans)?,
            Ok(_) => std::fs::remove_file(&orphans)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        std::fs::create_dir(&orphans)?;
        let root_md = std::fs::metadata(backing)?;
        let mut state = State {
            backing: Backing::open(backing)?,
            inodes: HashMap::new(),
            handles: HashMap::new(),
            next_ino: ROOT + 1,
            next_fh: 1,
            budget: Budget {
                bytes: 0,
                bytes_max: limits.cache_bytes_max,
            },
            limits,
        };
        state.inodes.insert(
            ROOT,
            Inode {
                body: Body::Dir(DirBody::default()),
                meta: Meta::from_metadata(&root_md),
                visible: None,
                durable: None,
                handles: 0,
            },
        );
        let mut pending = VecDeque::from([(ROOT, backing.to_path_buf(), 0usize)]);
        while let Some((dir_ino, dir_path, depth)) = pending.pop_front() {
            for item in std::fs::read_dir(&dir_path)? {
                let item = item?;
                let name = item.file_name();
                if dir_ino == ROOT && name == ORPHANS_DIR {
                    continue;
                }
                let path = item.path();
                let md = std::fs::symlink_metadata(&path)?;
                let body = if md.is_dir() {
                    if depth + 1 >= DEPTH_MAX {
                        return Err(io::Error::other(format!(
                            "{}: directories nested deeper than {DEPTH_MAX}",
                            path.display()
                        )));
                    }
                    Body::Dir(DirBody::default())
                } else if md.is_file() {
                    Body::File(FileBody {
                        cache: FileCache::clean(md.len()),
                        disk: None,
                    })
                } else {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!(
                            "{}: only regular files and directories are supported",
                            path.display()
                        ),
                    ));
                };
                if state.inodes.len() >= state.limits.inodes_max {
                    return Err(io::Error::other(format!(
                        "{}: more than {} files and directories",
                        backing.display(),
                        state.limits.inodes_max
                    )));
                }
                let ino = state.next_ino;
                state.next_ino += 1;
                let is_dir = matches!(body, Body::Dir(_));
                state.inodes.insert(
                    ino,
                    Inode {
                        body,
                        meta: Meta::from_metadata(&md),
                        visible: Some((dir_ino, name.clone())),
                        durable: Some((dir_ino, name.clone())),
                        handles: 0,
                    },
                );
                let dir = state.dir_mut(dir_ino)?;
                dir.entries.insert(name.clone(), ino);
                dir.durable.insert(name, ino);
                if is_dir {
                    pending.push_back((ino, path, depth + 1));
                }
            }
        }
        Ok(state)
    }

    // ----- lookups -----

    fn inode(&self, ino: Ino) -> Result<&Inode, i32> {
        self.inodes.get(&ino).ok_or(libc::ENOENT)
    }

    fn inode_mut(&mut self, ino: Ino) -> Result<&mut Inode, i32> {
        self.inodes.get_mut(&ino).ok_or(libc::ENOENT)
    }

    fn dir(&self, ino: Ino) -> Result<&DirBody, i32> {
        match &self.inode(ino)?.body {
            Body::Dir(dir) => Ok(dir),
            Body::File(_) => Err(libc::ENOTDIR),
        }
    }

    fn dir_mut(&mut self, ino: Ino) -> io::Result<&mut DirBody> {
        match self.inodes.get_mut(&ino).map(|i| &mut i.body) {
            Some(Body::Dir(dir)) => Ok(dir),
            _ => Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
        }
    }

    fn dir_body_mut(&mut self, ino: Ino) -> Result<&mut DirBody, i32> {
        match &mut self.inode_mut(ino)?.body {
            Body::Dir(dir) => Ok(dir),
            Body::File(_) => Err(libc::ENOTDIR),
        }
    }

    /// A directory that processes can still create entries in (not removed).
    fn live_dir(&self, ino: Ino) -> Result<&DirBody, i32> {
        let dir = self.dir(ino)?;
        if ino != ROOT && self.inode(ino)?.visible.is_none() {
            return Err(libc::ENOENT);
        }
        Ok(dir)
    }

    /// Where the inode's durable bytes are in the backing directory.
    fn home(&self, ino: Ino) -> Result<PathBuf, i32> {
        let mut names = Vec::new();
        let mut at = ino;
        let base = loop {
            if at == ROOT {
                break PathBuf::new();
            }
            if names.len() > DEPTH_MAX {
                tracing::error!(
                    ino,
                    "durable parent chain too deep (model invariant broken)"
                );
                return Err(libc::EIO);
            }
            match &self.inode(at).map_err(|_| libc::EIO)?.durable {
                Some((parent, name)) => {
                    names.push(name.clone());
                    at = *parent;
                }
                None => break orphan_path(at),
            }
        };
        Ok(names
            .iter()
            .rev()
            .fold(base, |path, name| join(&path, name)))
    }

    fn depth(&self, ino: Ino) -> usize {
        let mut depth = 0;
        let mut at = ino;
        while let Some(Some((parent, _))) = self.inodes.get(&at).map(|i| &i.visible) {
            depth += 1;
            at = *parent;
            if depth > DEPTH_MAX {
                break;
            }
        }
        depth
    }

    fn check_new_name(&self, parent: Ino, name: &OsStr) -> Result<(), i32> {
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes == b"." || bytes == b".." || bytes.contains(&b'/') {
            return Err(libc::EINVAL);
        }
        if bytes.len() > NAME_BYTES_MAX {
            return Err(libc::ENAMETOOLONG);
        }
        if parent == ROOT && name == ORPHANS_DIR {
            return Err(libc::EPERM);
        }
        if self.depth(parent) + 1 >= DEPTH_MAX {
            return Err(libc::ELOOP);
        }
        Ok(())
    }

    fn attr_of(&self, ino: Ino, inode: &Inode) -> Attr {
        let (size, nlink) = match &inode.body {
            Body::File(file) => (file.cache.size(), u32::from(inode.visible.is_some())),
            Body::Dir(_) => (4096, 2),
        };
        Attr {
            ino,
            kind: inode.kind(),
            size,
            nlink,
            meta: inode.meta,
        }
    }

    pub fn getattr(&self, ino: Ino) -> Result<Attr, i32> {
        Ok(self.attr_of(ino, self.inode(ino)?))
    }

    pub fn lookup(&self, parent: Ino, name: &OsStr) -> Result<Attr, i32> {
        let ino = *self.dir(parent)?.entries.get(name).ok_or(libc::ENOENT)?;
        self.getattr(ino)
    }

    fn new_ino(&mut self) -> Result<Ino, i32> {
        if self.inodes.len() >= self.limits.inodes_max {
            return Err(libc::ENOSPC);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        Ok(ino)
    }

    fn new_fh(&mut self, ino: Ino, kind: HandleKind) -> Result<u64, i32> {
        if self.handles.len() >= self.limits.handles_max {
            return Err(libc::ENFILE);
        }
        let fh = self.next_fh;
        self.next_fh += 1;
        self.handles.insert(fh, Handle { ino, kind });
        self.inode_mut(ino)?.handles += 1;
        Ok(fh)
    }

    fn touch_dir(&mut self, ino: Ino) {
        if let Some(inode) = self.inodes.get_mut(&ino) {
            let now = SystemTime::now();
            inode.meta.mtime = now;
            inode.meta.ctime = now;
        }
    }

    // ----- namespace -----

    fn insert_new(
        &mut self,
        parent: Ino,
        name: &OsStr,
        body: Body,
        meta: Meta,
    ) -> Result<Ino, i32> {
        let ino = self.new_ino()?;
        self.inodes.insert(
            ino,
            Inode {
                body,
                meta,
                visible: Some((parent, name.to_os_string())),
                durable: None,
                handles: 0,
            },
        );
        self.dir_body_mut(parent)?
            .entries
            .insert(name.to_os_string(), ino);
        self.touch_dir(parent);
        Ok(ino)
    }

    fn check_create(&self, parent: Ino, name: &OsStr) -> Result<(), i32> {
        let dir = self.live_dir(parent)?;
        self.check_new_name(parent, name)?;
        if dir.entries.contains_key(name) {
            return Err(libc::EEXIST);
        }
        if self.inodes.len() >= self.limits.inodes_max {
            return Err(libc::ENOSPC);
        }
        Ok(())
    }

    fn create_backing_file(&self, ino: Ino, mode: u32, uid: u32, gid: u32) -> Result<File, i32> {
        let path = orphan_path(ino);
        let file = self
            .backing
            .create_file(&path, mode & 0o7777)
            .map_err(errno_of)?;
        if let Err(error) = self.backing.chown(&path, Some(uid), Some(gid)) {
            tracing::debug!(%error, "could not give the backing file its owner");
        }
        Ok(file)
    }

    /// Creates a regular file and opens it. Its entry is not durable until `parent` is fsynced.
    pub fn create(
        &mut self,
        parent: Ino,
        name: &OsStr,
        mode: u32,
        uid: u32,
        gid: u32,
        flags: i32,
    ) -> Result<(Attr, u64), i32> {
        self.check_create(parent, name)?;
        let append = check_open_flags(flags)?;
        if self.handles.len() >= self.limits.handles_max {
            return Err(libc::ENFILE);
        }
        let ino = self.next_ino;
        let disk = self.create_backing_file(ino, mode, uid, gid)?;
        let body = Body::File(FileBody {
            cache: FileCache::clean(0),
            disk: Some(disk),
        });
        let ino_made = self.insert_new(parent, name, body, Meta::new(mode, uid, gid))?;
        debug_assert_eq!(ino, ino_made);
        let fh = self.new_fh(ino, HandleKind::File { append })?;
        Ok((self.getattr(ino)?, fh))
    }

    /// `mknod` of a regular file (nothing else is supported).
    pub fn mknod(
        &mut self,
        parent: Ino,
        name: &OsStr,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<Attr, i32> {
        if mode & libc::S_IFMT != libc::S_IFREG && mode & libc::S_IFMT != 0 {
            return Err(libc::EPERM);
        }
        self.check_create(parent, name)?;
        let ino = self.next_ino;
        drop(self.create_backing_file(ino, mode, uid, gid)?);
        let body = Body::File(FileBody {
            cache: FileCache::clean(0),
            disk: None,
        });
        self.insert_new(parent, name, body, Meta::new(mode, uid, gid))?;
        self.getattr(ino)
    }

    pub fn mkdir(
        &mut self,
        parent: Ino,
        name: &OsStr,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<Attr, i32> {
        self.check_create(parent, name)?;
        let ino = self.next_ino;
        let path = orphan_path(ino);
        self.backing.mkdir(&path, mode & 0o7777).map_err(errno_of)?;
        if let Err(error) = self.backing.chown(&path, Some(uid), Some(gid)) {
            tracing::debug!(%error, "could not give the backing directory its owner");
        }
        let body = Body::Dir(DirBody::default());
        self.insert_new(parent, name, body, Meta::new(mode, uid, gid))?;
        self.getattr(ino)
    }

    pub fn unlink(&mut self, parent: Ino, name: &OsStr) -> Result<(), i32> {
        let ino = *self.dir(parent)?.entries.get(name).ok_or(libc::ENOENT)?;
        if self.inode(ino)?.kind() == Kind::Dir {
            return Err(libc::EISDIR);
        }
        self.remove_entry(parent, name, ino)
    }

    pub fn rmdir(&mut self, parent: Ino, name: &OsStr) -> Result<(), i32> {
        let ino = *self.dir(parent)?.entries.get(name).ok_or(libc::ENOENT)?;
        if !self.dir(ino)?.entries.is_empty() {
            return Err(libc::ENOTEMPTY);
        }
        self.remove_entry(parent, name, ino)
    }

    fn remove_entry(&mut self, parent: Ino, name: &OsStr, ino: Ino) -> Result<(), i32> {
        self.dir_body_mut(parent)?.entries.remove(name);
        let inode = self.inode_mut(ino)?;
        inode.visible = None;
        inode.meta.ctime = SystemTime::now();
        self.touch_dir(parent);
        self.maybe_free(ino);
        Ok(())
    }

    /// Renames within one directory (across directories: EXDEV, see the crate docs). Supports
    /// RENAME_NOREPLACE and RENAME_EXCHANGE. Not durable until the directory is fsynced.
    pub fn rename(
        &mut self,
        parent: Ino,
        name: &OsStr,
        new_parent: Ino,
        new_name: &OsStr,
        flags: u32,
    ) -> Result<(), i32> {
        let known = libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE;
        if flags & !known != 0 {
            return Err(libc::EINVAL);
        }
        let exchange = flags & libc::RENAME_EXCHANGE != 0;
        let noreplace = flags & libc::RENAME_NOREPLACE != 0;
        if exchange && noreplace {
            return Err(libc::EINVAL);
        }
        let dir = self.live_dir(parent)?;
        let source = *dir.entries.get(name).ok_or(libc::ENOENT)?;
        let target = dir.entries.get(new_name).copied();
        if parent != new_parent {
            self.dir(new_parent)?;
            return Err(libc::EXDEV);
        }
        self.check_new_name(parent, new_name)?;
        if name == new_name {
            return Ok(());
        }
        let source_kind = self.inode(source)?.kind();
        if exchange {
            let target = target.ok_or(libc::ENOENT)?;
            let entries = &mut self.dir_body_mut(parent)?.entries;
            entries.insert(name.to_os_string(), target);
            entries.insert(new_name.to_os_string(), source);
            self.inode_mut(target)?.visible = Some((parent, name.to_os_string()));
            self.inode_mut(source)?.visible = Some((parent, new_name.to_os_string()));
            self.touch_dir(parent);
            return Ok(());
        }
        if let Some(target) = target {
            if noreplace {
                return Err(libc::EEXIST);
            }
            match (source_kind, self.inode(target)?.kind()) {
                (Kind::Dir, Kind::File) => return Err(libc::ENOTDIR),
                (Kind::File, Kind::Dir) => return Err(libc::EISDIR),
                (Kind::Dir, Kind::Dir) if !self.dir(target)?.entries.is_empty() => {
                    return Err(libc::ENOTEMPTY)
                }
                _ => {}
            }
        }
        let entries = &mut self.dir_body_mut(parent)?.entries;
        entries.remove(name);
        entries.insert(new_name.to_os_string(), source);
        let inode = self.inode_mut(source)?;
        inode.visible = Some((parent, new_name.to_os_string()));
        inode.meta.ctime = SystemTime::now();
        self.touch_dir(parent);
        if let Some(target) = target {
            self.inode_mut(target)?.visible = None;
            self.maybe_free(target);
        }
        Ok(())
    }

    // ----- handles and data -----

    pub fn open(&mut self, ino: Ino, flags: i32) -> Result<u64, i32> {
        let append = check_open_flags(flags)?;
        if self.inode(ino)?.kind() == Kind::Dir {
            return Err(libc::EISDIR);
        }
        if self.handles.len() >= self.limits.handles_max {
            return Err(libc::ENFILE);
        }
        self.disk(ino)?;
        self.new_fh(ino, HandleKind::File { append })
    }

    pub fn opendir(&mut self, ino: Ino) -> Result<u64, i32> {
        let inode = self.inode(ino)?;
        let Body::Dir(dir) = &inode.body else {
            return Err(libc::ENOTDIR);
        };
        let parent = inode.visible.as_ref().map_or(ROOT, |(parent, _)| *parent);
        let mut listing = Vec::with_capacity(dir.entries.len() + 2);
        listing.push(DirEntry {
            ino,
            kind: Kind::Dir,
            name: ".".into(),
        });
        listing.push(DirEntry {
            ino: parent,
            kind: Kind::Dir,
            name: "..".into(),
        });
        for (name, child) in &dir.entries {
            listing.push(DirEntry {
                ino: *child,
                kind: self.inode(*child).map_err(|_| libc::EIO)?.kind(),
                name: name.clone(),
            });
        }
        self.new_fh(ino, HandleKind::Dir { listing })
    }

    /// Entries of an open directory from position `offset` on, as listed when it was opened.
    pub fn readdir(&self, fh: u64, offset: u64) -> Result<&[DirEntry], i32> {
        match &self.handles.get(&fh).ok_or(libc::EBADF)?.kind {
            HandleKind::Dir { listing } => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX);
                Ok(listing.get(start..).unwrap_or(&[]))
            }
            HandleKind::File { .. } => Err(libc::ENOTDIR),
        }
    }

    pub fn release(&mut self, fh: u64) {
        let Some(handle) = self.handles.remove(&fh) else {
            return;
        };
        let Some(inode) = self.inodes.get_mut(&handle.ino) else {
            return; // gone in a power loss
        };
        inode.handles = inode.handles.saturating_sub(1);
        if inode.handles == 0 {
            if let Body::File(file) = &mut inode.body {
                file.disk = None;
            }
        }
        self.maybe_free(handle.ino);
    }

    /// The handle's inode; EIO if a power loss removed the file under it.
    fn handle_ino(&self, fh: u64) -> Result<(Ino, bool), i32> {
        let handle = self.handles.get(&fh).ok_or(libc::EBADF)?;
        if !self.inodes.contains_key(&handle.ino) {
            return Err(libc::EIO);
        }
        let append = matches!(handle.kind, HandleKind::File { append: true });
        Ok((handle.ino, append))
    }

    /// Opens the backing file if it is not open yet.
    fn disk(&mut self, ino: Ino) -> Result<(), i32> {
        let needs_open = match &self.inode(ino)?.body {
            Body::File(file) => file.disk.is_none(),
            Body::Dir(_) => return Err(libc::EISDIR),
        };
        if needs_open {
            let home = self.home(ino)?;
            let opened = self.backing.open_file(&home).map_err(errno_of)?;
            if let Body::File(file) = &mut self.inode_mut(ino)?.body {
                file.disk = Some(opened);
            }
        }
        Ok(())
    }

    fn file_parts(&mut self, ino: Ino) -> Result<(&mut FileCache, &File, &mut Budget), i32> {
        self.disk(ino)?;
        let inode = self.inodes.get_mut(&ino).ok_or(libc::ENOENT)?;
        match &mut inode.body {
            Body::File(FileBody {
                cache,
                disk: Some(disk),
            }) => Ok((cache, disk, &mut self.budget)),
            _ => Err(libc::EIO),
        }
    }

    pub fn read(&mut self, fh: u64, offset: u64, size: u32) -> Result<Vec<u8>, i32> {
        let (ino, _) = self.handle_ino(fh)?;
        let (cache, disk, _) = self.file_parts(ino)?;
        cache.read(disk, offset, size)
    }

    pub fn write(&mut self, fh: u64, offset: u64, data: &[u8]) -> Result<u32, i32> {
        let written = u32::try_from(data.len()).map_err(|_| libc::EINVAL)?;
        let (ino, append) = self.handle_ino(fh)?;
        let (cache, disk, budget) = self.file_parts(ino)?;
        let offset = if append { cache.size() } else { offset };
        cache.write(disk, offset, data, budget)?;
        let inode = self.inode_mut(ino)?;
        let now = SystemTime::now();
        inode.meta.mtime = now;
        inode.meta.ctime = now;
        Ok(written)
    }

    pub fn setattr(&mut self, ino: Ino, change: SetAttr) -> Result<Attr, i32> {
        if let Some(size) = change.size {
            let inode = self.inodes.get_mut(&ino).ok_or(libc::ENOENT)?;
            let Body::File(file) = &mut inode.body else {
                return Err(libc::EISDIR);
            };
            file.cache.set_size(size, &mut self.budget)?;
            inode.meta.mtime = SystemTime::now();
        }
        // Ownership and permissions are not modelled: they go to the backing file at once.
        if change.uid.is_some() || change.gid.is_some() {
            let home = self.home(ino)?;
            ignore_missing(self.backing.chown(&home, change.uid, change.gid))?;
        }
        if let Some(mode) = change.mode {
            let home = self.home(ino)?;
            ignore_missing(self.backing.chmod(&home, mode & 0o7777))?;
        }
        let inode = self.inode_mut(ino)?;
        if let Some(uid) = change.uid {
            inode.meta.uid = uid;
        }
        if let Some(gid) = change.gid {
            inode.meta.gid = gid;
        }
        if let Some(mode) = change.mode {
            inode.meta.perm = (mode & 0o7777) as u16;
        }
        if let Some(atime) = change.atime {
            inode.meta.atime = atime;
        }
        if let Some(mtime) = change.mtime {
            inode.meta.mtime = mtime;
        }
        inode.meta.ctime = SystemTime::now();
        self.getattr(ino)
    }

    pub fn statfs(&self) -> Result<libc::statvfs, i32> {
        self.backing.statvfs().map_err(errno_of)
    }

    // ----- durability -----

    /// fsync/fdatasync of a file: its data and size become durable (its name does not).
    pub fn fsync_file(&mut self, ino: Ino) -> Result<(), i32> {
        if self.inode(ino)?.kind() == Kind::Dir {
            return self.fsync_dir(ino);
        }
        let (cache, disk, budget) = self.file_parts(ino)?;
        cache.flush(disk, budget)
    }

    /// An injected fsync failure on `ino`: as Linux does after a failed writeback, the dirty
    /// pages are marked clean without being written.
    pub fn fsync_failed(&mut self, ino: Ino) {
        if let Some(Inode {
            body: Body::File(file),
            ..
        }) = self.inodes.get_mut(&ino)
        {
            file.cache.forget_dirty_pages();
        }
    }

    /// fsync of a directory: its entries as visible now become durable.
    pub fn fsync_dir(&mut self, ino: Ino) -> Result<(), i32> {
        let dir = self.dir(ino)?;
        let removed: Vec<(OsString, Ino)> = dir
            .durable
            .iter()
            .filter(|(name, child)| dir.entries.get(*name) != Some(child))
            .map(|(name, child)| (name.clone(), *child))
            .collect();
        let added: Vec<(OsString, Ino)> = dir
            .entries
            .iter()
            .filter(|(name, child)| dir.durable.get(*name) != Some(child))
            .map(|(name, child)| (name.clone(), *child))
            .collect();
        if removed.is_empty() && added.is_empty() {
            return Ok(());
        }
        let home = self.home(ino)?;
        // Each backing rename is followed at once by the model change it stands for, so that an
        // I/O error midway leaves model and backing directory in agreement.
        for (name, child) in &removed {
            self.backing
                .rename(&join(&home, name), &orphan_path(*child))
                .map_err(errno_of)?;
            self.dir_body_mut(ino)?.durable.remove(name);
            self.inode_mut(*child)?.durable = None;
        }
        for (name, child) in &added {
            if self.inode(*child)?.durable.is_some() {
                tracing::error!(ino, child, "linking an inode that is durable elsewhere");
                return Err(libc::EIO);
            }
            self.backing
                .rename(&orphan_path(*child), &join(&home, name))
                .map_err(errno_of)?;
            self.dir_body_mut(ino)?.durable.insert(name.clone(), *child);
            self.inode_mut(*child)?.durable = Some((ino, name.clone()));
        }
        for (_, child) in removed {
            self.maybe_free(child);
        }
        Ok(())
    }

    /// Frees an inode that nobody can reach any more: no visible name, no durable name, no open
    /// handle. A directory takes its durable subtree (all of it unreachable) with it.
    fn maybe_free(&mut self, ino: Ino) {
        let Some(inode) = self.inodes.get(&ino) else {
            return;
        };
        if ino == ROOT || inode.visible.is_some() || inode.durable.is_some() || inode.handles > 0 {
            return;
        }
        if let Err(error) = self.backing.remove_tree(&orphan_path(ino)) {
            tracing::warn!(%error, ino, "could not remove a freed file from the backing directory");
        }
        let mut pending = vec![ino];
        while let Some(at) = pending.pop() {
            let Some(inode) = self.inodes.get_mut(&at) else {
                continue;
            };
            match &mut inode.body {
                Body::Dir(dir) => {
                    pending.extend(dir.durable.values().copied());
                    dir.durable.clear();
                }
                Body::File(file) if inode.handles == 0 => file.cache.discard(&mut self.budget),
                Body::File(_) => {}
            }
            inode.durable = None;
            if inode.handles == 0 && inode.visible.is_none() {
                self.inodes.remove(&at);
            }
        }
    }

    /// Power loss: everything not durable is gone. Handles of files that no longer exist fail
    /// with EIO from now on.
    pub fn power_loss(&mut self) -> PowerLoss {
        let mut report = PowerLoss::default();
        let mut reachable = std::collections::HashSet::from([ROOT]);
        let mut pending = vec![ROOT];
        while let Some(at) = pending.pop() {
            if let Some(Inode {
                body: Body::Dir(dir),
                ..
            }) = self.inodes.get(&at)
            {
                for child in dir.durable.values() {
                    if reachable.insert(*child) {
                        pending.push(*child);
                    }
                }
            }
        }
        let budget = &mut self.budget;
        self.inodes.retain(|ino, inode| {
            let keep = reachable.contains(ino);
            match &mut inode.body {
                Body::File(file) => {
                    if keep {
                        if file.cache.is_dirty() || file.cache.cached_bytes() > 0 {
                            report.reverted_files += 1;
                        }
                        report.dropped_cache_bytes += file.cache.power_loss(budget);
                    } else {
                        report.dropped_cache_bytes += file.cache.cached_bytes();
                        file.cache.discard(budget);
                    }
                }
                Body::Dir(dir) => {
                    if keep && dir.entries != dir.durable {
                        report.reverted_dirs += 1;
                        dir.entries = dir.durable.clone();
                    }
                }
            }
            if keep {
                inode.visible = inode.durable.clone();
            } else {
                report.removed_inodes += 1;
            }
            keep
        });
        let orphans = Path::new(ORPHANS_DIR);
        let wiped = self
            .backing
            .remove_tree(orphans)
            .and_then(|()| self.backing.mkdir(orphans, 0o700));
        if let Err(error) = wiped {
            tracing::error!(%error, "could not empty the orphan directory after a power loss");
        }
        report
    }

    pub fn unsynced(&self) -> Unsynced {
        let mut out = Unsynced {
            cache_bytes: self.budget.bytes,
            inodes: self.inodes.len() as u64,
            handles: self.handles.len() as u64,
            ..Unsynced::default()
        };
        for inode in self.inodes.values() {
            match &inode.body {
                Body::File(file) if file.cache.is_dirty() => out.files += 1,
                Body::Dir(dir) if dir.entries != dir.durable => out.dirs += 1,
                _ => {}
            }
        }
        out
    }

    /// Checks the model's invariants; returns the first one broken. Used by tests.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut cached = 0;
        for (ino, inode) in &self.inodes {
            let held = inode.visible.is_some() || inode.durable.is_some() || inode.handles > 0;
            if *ino != ROOT && !held {
                return Err(format!(
                    "{ino} is neither visible, durable nor open: leaked"
                ));
            }
            if let Some((parent, name)) = &inode.visible {
                let seen = self.dir(*parent).ok().and_then(|d| d.entries.get(name));
                if seen != Some(ino) {
                    return Err(format!(
                        "{ino} visible as {name:?} in {parent} but not listed"
                    ));
                }
            }
            if let Some((parent, name)) = &inode.durable {
                let seen = self.dir(*parent).ok().and_then(|d| d.durable.get(name));
                if seen != Some(ino) {
                    return Err(format!(
                        "{ino} durable as {name:?} in {parent} but not listed"
                    ));
                }
            }
            match &inode.body {
                Body::Dir(dir) => {
                    for (name, child) in &dir.entries {
                        let visible = self.inodes.get(child).and_then(|c| c.visible.as_ref());
                        if visible != Some(&(*ino, name.clone())) {
                            return Err(format!("entry {name:?} of {ino} points at {child}"));
                        }
                    }
                    for (name, child) in &dir.durable {
                        let durable = self.inodes.get(child).and_then(|c| c.durable.as_ref());
                        if durable != Some(&(*ino, name.clone())) {
                            return Err(format!("durable {name:?} of {ino} points at {child}"));
                        }
                    }
                }
                Body::File(file) => cached += file.cache.cached_bytes(),
            }
            let home = self.home(*ino).map_err(|e| format!("home of {ino}: {e}"))?;
            let exists = match &inode.body {
                Body::Dir(_) => self.backing.open_dir_exists(&home),
                Body::File(_) => self.backing.open_file(&home).is_ok(),
            };
            if !exists && (inode.durable.is_some() || inode.visible.is_some()) {
                return Err(format!("{ino} has no backing object at {}", home.display()));
            }
        }
        if cached != self.budget.bytes {
            return Err(format!(
                "cache budget says {} bytes, files hold {cached}",
                self.budget.bytes
            ));
        }
        Ok(())
    }
}

fn ignore_missing(result: io::Result<()>) -> Result<(), i32> {
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        Err(e) => Err(errno_of(e)),
    }
}

/// Refuses O_DIRECT (the cache cannot honour it); returns whether the file is in append mode.
fn check_open_flags(flags: i32) -> Result<bool, i32> {
    if flags & libc::O_DIRECT != 0 {
        return Err(libc::EINVAL);
    }
    Ok(flags & libc::O_APPEND != 0)
}

#[cfg(test)]
mod tests;
