//! Writing tar entries below the layer root with `*at` system calls that never follow symlinks.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, XattrFlags};
use rustix::io::Errno;

use crate::paths::{self, RelPath};
use crate::pool::{FileJob, WriterPool};
use crate::{LayerError, UnpackOptions};

/// Why processing an entry failed: either the stream (classified by the caller, which knows
/// whether the decompressor failed) or the filesystem / the entry's contents.
pub(crate) enum Fail {
    Stream { context: String, source: io::Error },
    Layer(LayerError),
}

impl From<LayerError> for Fail {
    fn from(e: LayerError) -> Self {
        Fail::Layer(e)
    }
}

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// The same marker as overlayfs reads it with `userxattr` (in a user namespace).
const USER_OPAQUE_XATTR: &str = "user.overlay.opaque";

/// Mode and mtime of a directory, applied after all of its children have been written.
struct DirMeta {
    mode: u32,
    mtime: Option<Timespec>,
}

/// Metadata common to every entry.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: Timespec,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

pub(crate) struct Unpacker<'a> {
    root: Arc<OwnedFd>,
    dest: &'a Path,
    opts: &'a UnpackOptions,
    dirs: HashMap<RelPath, DirMeta>,
    /// Device nodes left out of an unprivileged unpack; hard links to them are left out too.
    skipped: HashSet<RelPath>,
    /// The directories of the last path opened, one fd per component: tar entries come
    /// grouped by directory, so most lookups reuse this instead of walking from the root
    /// (a walk costs one openat per component, the bulk of unpacking time). Cleared
    /// whenever anything is removed, so a cached fd never stands for a replaced path.
    open_dirs: Vec<(Vec<u8>, Arc<OwnedFd>)>,
    /// Everything this unpack created, and whether it is a directory. The destination
    /// starts empty and only this unpacker writes to it, so a path not in here is free:
    /// no lookup is needed before creating it (lookups contend with the writers).
    created: HashMap<RelPath, bool>,
    pool: WriterPool,
    pub(crate) size: u64,
    pub(crate) entries: u64,
}

fn io_err(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error())
}

fn os(c: &[u8]) -> &OsStr {
    OsStr::from_bytes(c)
}

/// Files up to this size are written by the worker pool; larger ones stream in place.
const POOLED_FILE_MAX: u64 = 1 << 20;

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

impl<'a> Unpacker<'a> {
    pub(crate) fn new(dest: &'a Path, opts: &'a UnpackOptions) -> Result<Self, LayerError> {
        let root = rfs::open(dest, DIR_FLAGS, Mode::empty()).map_err(|e| LayerError::Io {
            entry: "(layer root)".to_string(),
            op: "open the layer directory",
            path: dest.to_path_buf(),
            source: io_err(e),
        })?;
        let mut dirs = HashMap::new();
        dirs.insert(
            RelPath::new(),
            DirMeta {
                mode: 0o755,
                mtime: None,
            },
        );
        Ok(Unpacker {
            root: Arc::new(root),
            dest,
            opts,
            dirs,
            skipped: HashSet::new(),
            open_dirs: Vec::new(),
            created: HashMap::new(),
            pool: WriterPool::new(),
            size: 0,
            entries: 0,
        })
    }

    fn full(&self, rel: &[Vec<u8>]) -> PathBuf {
        self.dest.join(paths::to_path(rel))
    }

    fn io(&self, entry: &str, op: &'static str, rel: &[Vec<u8>], e: impl Into<io::Error>) -> LayerError {
        LayerError::Io {
            entry: entry.to_string(),
            op,
            path: self.full(rel),
            source: e.into(),
        }
    }

    /// Opens the directory `rel`, one component at a time with `O_NOFOLLOW`. Missing
    /// directories are created (0755) when `create` is set. A symlink anywhere on the way is
    /// an escape attempt. Returns `Ok(None)` when a component is missing and `create` is off.
    fn open_dir(
        &mut self,
        entry: &str,
        rel: &[Vec<u8>],
        create: bool,
    ) -> Result<Option<Arc<OwnedFd>>, LayerError> {
        let common = self
            .open_dirs
            .iter()
            .zip(rel)
            .take_while(|((name, _), comp)| name == *comp)
            .count();
        self.open_dirs.truncate(common);
        for (i, comp) in rel.iter().enumerate().skip(common) {
            let here = &rel[..=i];
            if self.pool.is_in_flight(here) {
                // A file is being written where a directory is wanted: let it land, so the
                // lookup below reports the conflict instead of racing the writer.
                self.pool.barrier()?;
            }
            let cur = match self.open_dirs.last() {
                Some((_, fd)) => fd.as_fd(),
                None => self.root.as_fd(),
            };
            let next = match rfs::openat(cur, os(comp), DIR_FLAGS, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::NOENT) if create => {
                    rfs::mkdirat(cur, os(comp), Mode::from_raw_mode(0o755))
                        .map_err(|e| self.io(entry, "create directory", here, io_err(e)))?;
                    self.created.insert(here.to_vec(), true);
                    self.dirs.entry(here.to_vec()).or_insert(DirMeta {
                        mode: 0o755,
                        mtime: None,
                    });
                    rfs::openat(cur, os(comp), DIR_FLAGS, Mode::empty())
                        .map_err(|e| self.io(entry, "open directory", here, io_err(e)))?
                }
                Err(Errno::NOENT) => return Ok(None),
                Err(Errno::LOOP) | Err(Errno::NOTDIR) => {
                    let st = rfs::statat(cur, os(comp), AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(|e| self.io(entry, "inspect", here, io_err(e)))?;
                    if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
                        return Err(LayerError::Escape {
                            entry: entry.to_string(),
                            reason: format!(
                                "'{}' is a symlink, and the unpacker never writes through symlinks",
                                paths::display(here)
                            ),
                        });
                    }
                    return Err(LayerError::Conflict {
                        entry: entry.to_string(),
                        reason: format!("'{}' exists and is not a directory", paths::display(here)),
                    });
                }
                Err(e) => return Err(self.io(entry, "open directory", here, io_err(e))),
            };
            self.open_dirs.push((comp.clone(), Arc::new(next)));
        }
        Ok(Some(match self.open_dirs.last() {
            Some((_, fd)) => fd.clone(),
            None => self.root.clone(),
        }))
    }

    fn parent(&mut self, entry: &str, rel: &[Vec<u8>]) -> Result<Arc<OwnedFd>, LayerError> {
        let parent = &rel[..rel.len() - 1];
        match self.open_dir(entry, parent, true)? {
            Some(fd) => Ok(fd),
            None => Err(self.io(entry, "open directory", parent, io::ErrorKind::NotFound)),
        }
    }

    /// Makes room for a new entry at `parent/name`: nothing there is fine; an existing directory
    /// is kept when `keep_dir` (returns true); anything else is removed without following it.
    fn clear_slot(
        &mut self,
        entry: &str,
        parent: BorrowedFd<'_>,
        name: &[u8],
        rel: &[Vec<u8>],
        keep_dir: bool,
    ) -> Result<bool, LayerError> {
        match self.created.get(rel).copied() {
            None => Ok(false),
            Some(true) if keep_dir => Ok(true),
            Some(true) => {
                self.open_dirs.clear();
                // Files still being written may live below it.
                self.pool.barrier()?;
                remove_tree(parent, name).map_err(|e| self.io(entry, "remove directory", rel, e))?;
                self.created.retain(|p, _| !p.starts_with(rel));
                Ok(false)
            }
            Some(false) => {
                rfs::unlinkat(parent, os(name), AtFlags::empty())
                    .map_err(|e| self.io(entry, "remove", rel, io_err(e)))?;
                self.created.remove(rel);
                Ok(false)
            }
        }
    }

    pub(crate) fn process<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), Fail> {
        let raw_path = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw_path).into_owned();
        let mut etype = entry.header().entry_type();
        if etype.is_pax_global_extensions() {
            return Ok(());
        }
        self.entries += 1;
        // Old (v7) archives mark directories as regular files whose name ends in '/'.
        if etype.is_file() && raw_path.ends_with(b"/") {
            etype = tar::EntryType::Directory;
        }
        let rel = paths::normalize_entry_path(&raw_path).map_err(|reason| LayerError::Escape {
            entry: name.clone(),
            reason,
        })?;
        let meta = read_meta(entry).map_err(|e| LayerError::Corrupt {
            context: format!("tar entry '{name}'"),
            reason: e.to_string(),
        })?;

        // Whatever this entry turns out to be, it replaces a device skipped earlier.
        self.skipped.remove(&rel);
        // An entry for a path whose file is still being written, or a hard link (which
        // may name one), waits for the writers.
        if self.pool.is_in_flight(&rel) || etype.is_hard_link() {
            self.pool.barrier()?;
        }

        if let Some(last) = rel.last() {
            if last.starts_with(WHITEOUT_PREFIX) {
                return Ok(self.whiteout(&name, &rel)?);
            }
        }

        if rel.is_empty() && !etype.is_dir() {
            return Err(LayerError::Corrupt {
                context: format!("tar entry '{name}'"),
                reason: "only a directory may name the layer root".to_string(),
            }
            .into());
        }

        use tar::EntryType as T;
        match etype {
            T::Directory => self.directory(&name, &rel, &meta)?,
            T::Regular | T::Continuous | T::GNUSparse => self.regular(&name, &rel, &meta, entry)?,
            T::Symlink => {
                let target = link_target(entry, &name)?;
                self.symlink(&name, &rel, &meta, &target)?
            }
            T::Link => {
                let target = link_target(entry, &name)?;
                self.hardlink(&name, &rel, &target)?
            }
            T::Char | T::Block | T::Fifo => {
                let header = entry.header();
                let corrupt = |e: io::Error| LayerError::Corrupt {
                    context: format!("tar entry '{name}'"),
                    reason: e.to_string(),
                };
                let major = header.device_major().map_err(corrupt)?.unwrap_or(0);
                let minor = header.device_minor().map_err(corrupt)?.unwrap_or(0);
                let ft = match etype {
                    T::Char => FileType::CharacterDevice,
                    T::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                self.node(&name, &rel, &meta, ft, major, minor)?
            }
            other => {
                return Err(LayerError::Unsupported {
                    entry: name,
                    kind: format!("{other:?} (type byte {:?})", other.as_byte() as char),
                }
                .into())
            }
        }
        Ok(())
    }

    fn whiteout(&mut self, entry: &str, rel: &[Vec<u8>]) -> Result<(), LayerError> {
        let last = &rel[rel.len() - 1];
        let parent_rel = &rel[..rel.len() - 1];
        if last.as_slice() == OPAQUE_MARKER {
            let dir = self.parent(entry, rel)?;
            let xattr = if self.opts.rootless {
                USER_OPAQUE_XATTR
            } else {
                OPAQUE_XATTR
            };
            return rfs::fsetxattr(&dir, xattr, b"y", XattrFlags::empty()).map_err(|e| {
                if e == Errno::PERM {
                    LayerError::NeedsPrivilege {
                        entry: entry.to_string(),
                        what: "mark a directory opaque (trusted.overlay.opaque)",
                        source: io_err(e),
                    }
                } else {
                    self.io(entry, "set the overlay opaque marker on", parent_rel, io_err(e))
                }
            });
        }
        if last.starts_with(b".wh..wh.") {
            // aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): meaningless for overlayfs.
            return Ok(());
        }
        let hidden = &last[WHITEOUT_PREFIX.len()..];
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(LayerError::Escape {
                entry: entry.to_string(),
                reason: "the whiteout does not name a file in its directory".to_string(),
            });
        }
        let mut target = parent_rel.to_vec();
        target.push(hidden.to_vec());
        if self.pool.is_in_flight(&target) {
            self.pool.barrier()?;
        }
        let parent = self.parent(entry, &target)?;
        self.clear_slot(entry, parent.as_fd(), hidden, &target, false)?;
        self.created.insert(target.to_vec(), false);
        rfs::mknodat(
            &parent,
            os(hidden),
            FileType::CharacterDevice,
            Mode::empty(),
            rfs::makedev(0, 0),
        )
        .map_err(|e| {
            if e == Errno::PERM {
                LayerError::NeedsPrivilege {
                    entry: entry.to_string(),
                    what: "create an overlayfs whiteout (character device 0/0)",
                    source: io_err(e),
                }
            } else {
                self.io(entry, "create whiteout", &target, io_err(e))
            }
        })
    }

    fn directory(&mut self, entry: &str, rel: &[Vec<u8>], meta: &Meta) -> Result<(), LayerError> {
        let dir = if rel.is_empty() {
            rfs::openat(&self.root, ".", DIR_FLAGS, Mode::empty())
                .map_err(|e| self.io(entry, "open", rel, io_err(e)))?
        } else {
            let parent = self.parent(entry, rel)?;
            let name = &rel[rel.len() - 1];
            if !self.clear_slot(entry, parent.as_fd(), name, rel, true)? {
                rfs::mkdirat(&parent, os(name), Mode::from_raw_mode(0o700))
                    .map_err(|e| self.io(entry, "create directory", rel, io_err(e)))?;
                self.created.insert(rel.to_vec(), true);
            }
            rfs::openat(&parent, os(name), DIR_FLAGS, Mode::empty())
                .map_err(|e| self.io(entry, "open directory", rel, io_err(e)))?
        };
        if self.opts.preserve_ownership {
            rfs::fchown(&dir, Some(uid(meta.uid)), Some(gid(meta.gid)))
                .map_err(|e| self.io(entry, "change owner of", rel, io_err(e)))?;
        }
        for (key, value) in &meta.xattrs {
            let r = rfs::fsetxattr(&dir, os(key), value, XattrFlags::empty());
            self.xattr_result(entry, key, true, r)?;
        }
        // Mode and mtime are applied at the end: a read-only directory must still accept its
        // children, and writing children would change the mtime again.
        self.dirs.insert(
            rel.to_vec(),
            DirMeta {
                mode: meta.mode,
                mtime: Some(meta.mtime),
            },
        );
        Ok(())
    }

    fn regular<R: Read>(
        &mut self,
        entry: &str,
        rel: &[Vec<u8>],
        meta: &Meta,
        data: &mut tar::Entry<'_, R>,
    ) -> Result<(), Fail> {
        let parent = self.parent(entry, rel)?;
        let name = &rel[rel.len() - 1];
        self.clear_slot(entry, parent.as_fd(), name, rel, false)?;
        self.created.insert(rel.to_vec(), false);
        if data.size() <= POOLED_FILE_MAX && meta.xattrs.is_empty() {
            let expected = data.size();
            let mut bytes = Vec::with_capacity(expected as usize);
            if let Err(source) = data.read_to_end(&mut bytes) {
                return Err(Fail::Stream {
                    context: format!("reading the data of tar entry '{entry}'"),
                    source,
                });
            }
            if bytes.len() as u64 != expected {
                return Err(Fail::Stream {
                    context: format!("reading the data of tar entry '{entry}'"),
                    source: io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "the stream ended after {} of {expected} bytes; the layer is truncated",
                            bytes.len()
                        ),
                    ),
                });
            }
            self.size += expected;
            let job = FileJob {
                parent,
                name: name.clone(),
                entry: entry.to_string(),
                path: self.full(rel),
                data: bytes,
                mode: meta.mode,
                owner: self.opts.preserve_ownership.then_some((meta.uid, meta.gid)),
                mtime: meta.mtime,
            };
            self.pool.submit(rel, job)?;
            return Ok(());
        }
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rfs::openat(&parent, os(name), flags, Mode::from_raw_mode(0o600))
            .map_err(|e| self.io(entry, "create file", rel, io_err(e)))?;
        let mut file = File::from(fd);
        let expected = data.size();
        let mut buf = vec![0u8; 64 * 1024];
        let mut written: u64 = 0;
        loop {
            let n = match data.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(Fail::Stream {
                        context: format!("reading the data of tar entry '{entry}'"),
                        source,
                    })
                }
            };
            file.write_all(&buf[..n])
                .map_err(|e| self.io(entry, "write file", rel, e))?;
            written += n as u64;
        }
        if written != expected {
            return Err(Fail::Stream {
                context: format!("reading the data of tar entry '{entry}'"),
                source: io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the stream ended after {written} of {expected} bytes; the layer is truncated"),
                ),
            });
        }
        self.size += written;
        if self.opts.preserve_ownership {
            rfs::fchown(&file, Some(uid(meta.uid)), Some(gid(meta.gid)))
                .map_err(|e| self.io(entry, "change owner of", rel, io_err(e)))?;
        }
        // After chown, which clears setuid/setgid.
        rfs::fchmod(&file, Mode::from_raw_mode(meta.mode))
            .map_err(|e| self.io(entry, "set mode of", rel, io_err(e)))?;
        for (key, value) in &meta.xattrs {
            let r = rfs::fsetxattr(&file, os(key), value, XattrFlags::empty());
            self.xattr_result(entry, key, true, r)?;
        }
        rfs::futimens(&file, &times(meta.mtime))
            .map_err(|e| self.io(entry, "set mtime of", rel, io_err(e)))?;
        Ok(())
    }

    fn symlink(
        &mut self,
        entry: &str,
        rel: &[Vec<u8>],
        meta: &Meta,
        target: &[u8],
    ) -> Result<(), LayerError> {
        let parent_rel = &rel[..rel.len() - 1];
        paths::check_symlink_target(parent_rel, target).map_err(|reason| LayerError::Escape {
            entry: entry.to_string(),
            reason,
        })?;
        let parent = self.parent(entry, rel)?;
        let name = &rel[rel.len() - 1];
        self.clear_slot(entry, parent.as_fd(), name, rel, false)?;
        self.created.insert(rel.to_vec(), false);
        rfs::symlinkat(os(target), &parent, os(name))
            .map_err(|e| self.io(entry, "create symlink", rel, io_err(e)))?;
        self.finish_special(entry, parent.as_fd(), rel, meta, false)
    }

    fn hardlink(&mut self, entry: &str, rel: &[Vec<u8>], target: &[u8]) -> Result<(), LayerError> {
        let escape = |reason: String| LayerError::Escape {
            entry: entry.to_string(),
            reason,
        };
        let shown = String::from_utf8_lossy(target).into_owned();
        let target_rel = paths::normalize_entry_path(target)
            .map_err(|reason| escape(format!("hard link target '{shown}': {reason}")))?;
        if target_rel.is_empty() {
            return Err(escape(format!("hard link target '{shown}' is the layer root")));
        }
        if self.skipped.contains(&target_rel) {
            self.skipped.insert(rel.to_vec());
            return Ok(());
        }
        let missing = || format!("hard link target '{shown}' does not exist in this layer");
        let tparent = match self.open_dir(entry, &target_rel[..target_rel.len() - 1], false) {
            Ok(Some(fd)) => fd,
            Ok(None) => return Err(escape(missing())),
            Err(LayerError::Escape { reason, .. }) => {
                return Err(escape(format!(
                    "hard link target '{shown}' resolves through a symlink: {reason}"
                )))
            }
            Err(LayerError::Conflict { .. }) => return Err(escape(missing())),
            Err(e) => return Err(e),
        };
        let tname = &target_rel[target_rel.len() - 1];
        match rfs::statat(&tparent, os(tname), AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => return Err(escape(missing())),
            Err(e) => return Err(self.io(entry, "inspect", &target_rel, io_err(e))),
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                return Err(LayerError::Conflict {
                    entry: entry.to_string(),
                    reason: format!("hard link target '{shown}' is a directory"),
                })
            }
            Ok(_) => {}
        }
        if target_rel.as_slice() == rel {
            // A link to itself: the file is already there.
            return Ok(());
        }
        let parent = self.parent(entry, rel)?;
        let name = &rel[rel.len() - 1];
        self.clear_slot(entry, parent.as_fd(), name, rel, false)?;
        self.created.insert(rel.to_vec(), false);
        rfs::linkat(&tparent, os(tname), &parent, os(name), AtFlags::empty())
            .map_err(|e| self.io(entry, "create hard link", rel, io_err(e)))
    }

    fn node(
        &mut self,
        entry: &str,
        rel: &[Vec<u8>],
        meta: &Meta,
        ft: FileType,
        major: u32,
        minor: u32,
    ) -> Result<(), LayerError> {
        if ft != FileType::Fifo && (!self.opts.preserve_ownership || self.opts.rootless) {
            // Device nodes need the host's root; any other unpack leaves them out.
            self.skipped.insert(rel.to_vec());
            return Ok(());
        }
        let parent = self.parent(entry, rel)?;
        let name = &rel[rel.len() - 1];
        self.clear_slot(entry, parent.as_fd(), name, rel, false)?;
        self.created.insert(rel.to_vec(), false);
        rfs::mknodat(
            &parent,
            os(name),
            ft,
            Mode::from_raw_mode(meta.mode & 0o777),
            rfs::makedev(major, minor),
        )
        .map_err(|e| self.io(entry, "create device node", rel, io_err(e)))?;
        self.finish_special(entry, parent.as_fd(), rel, meta, true)
    }

    /// Ownership, mode, xattrs and mtime for symlinks, devices and fifos, all without
    /// following the final component.
    fn finish_special(
        &self,
        entry: &str,
        parent: BorrowedFd<'_>,
        rel: &[Vec<u8>],
        meta: &Meta,
        chmod: bool,
    ) -> Result<(), LayerError> {
        let name = os(&rel[rel.len() - 1]);
        if self.opts.preserve_ownership {
            rfs::chownat(
                parent,
                name,
                Some(uid(meta.uid)),
                Some(gid(meta.gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| self.io(entry, "change owner of", rel, io_err(e)))?;
        }
        if chmod {
            // Only called for nodes this unpacker just created, never for symlinks.
            rfs::chmodat(parent, name, Mode::from_raw_mode(meta.mode), AtFlags::empty())
                .map_err(|e| self.io(entry, "set mode of", rel, io_err(e)))?;
        }
        if !meta.xattrs.is_empty() {
            // There is no fd-based call that works on a symlink itself, so use the full path.
            // Every parent component was just opened with O_NOFOLLOW and is a real directory,
            // and lsetxattr does not follow the final component.
            let full = self.full(rel);
            for (key, value) in &meta.xattrs {
                let r = rfs::lsetxattr(&full, os(key), value, XattrFlags::empty());
                self.xattr_result(entry, key, false, r)?;
            }
        }
        rfs::utimensat(parent, name, &times(meta.mtime), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.io(entry, "set mtime of", rel, io_err(e)))
    }

    /// The xattr policy (see the crate docs): unsupported filesystems and the privileged
    /// namespaces when unprivileged are skipped; other failures are errors.
    fn xattr_result(
        &self,
        entry: &str,
        key: &[u8],
        file_or_dir: bool,
        r: rustix::io::Result<()>,
    ) -> Result<(), LayerError> {
        match r {
            Ok(()) => Ok(()),
            Err(Errno::OPNOTSUPP) => Ok(()),
            Err(Errno::PERM)
                if (!self.opts.preserve_ownership
                    && (key.starts_with(b"security.") || key.starts_with(b"trusted.")))
                    || (!file_or_dir && key.starts_with(b"user.")) =>
            {
                Ok(())
            }
            Err(e) => Err(LayerError::Xattr {
                entry: entry.to_string(),
                name: String::from_utf8_lossy(key).into_owned(),
                source: io_err(e),
            }),
        }
    }

    /// Applies directory modes and mtimes, deepest first, skipping directories that a later
    /// entry replaced.
    pub(crate) fn finish_dirs(&mut self) -> Result<(), LayerError> {
        self.pool.barrier()?;
        let mut dirs: Vec<(RelPath, DirMeta)> = std::mem::take(&mut self.dirs).into_iter().collect();
        dirs.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        for (rel, meta) in dirs {
            let entry = if rel.is_empty() {
                ".".to_string()
            } else {
                paths::display(&rel)
            };
            let dir = match self.open_dir(&entry, &rel, false) {
                Ok(Some(fd)) => fd,
                Ok(None) | Err(LayerError::Escape { .. }) | Err(LayerError::Conflict { .. }) => continue,
                Err(e) => return Err(e),
            };
            rfs::fchmod(&dir, Mode::from_raw_mode(meta.mode))
                .map_err(|e| self.io(&entry, "set mode of", &rel, io_err(e)))?;
            if let Some(mtime) = meta.mtime {
                rfs::futimens(&dir, &times(mtime))
                    .map_err(|e| self.io(&entry, "set mtime of", &rel, io_err(e)))?;
            }
        }
        Ok(())
    }
}

/// Removes a directory tree below `parent` using only fd-relative calls, never following links.
fn remove_tree(parent: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    let dir = rfs::openat(parent, os(name), DIR_FLAGS, Mode::empty()).map_err(io_err)?;
    let mut children = Vec::new();
    for item in rfs::Dir::read_from(&dir).map_err(io_err)? {
        let item = item.map_err(io_err)?;
        let child = item.file_name().to_bytes();
        if child == b"." || child == b".." {
            continue;
        }
        let is_dir = match item.file_type() {
            FileType::Unknown => {
                let st = rfs::statat(&dir, os(child), AtFlags::SYMLINK_NOFOLLOW).map_err(io_err)?;
                FileType::from_raw_mode(st.st_mode) == FileType::Directory
            }
            ft => ft == FileType::Directory,
        };
        children.push((child.to_vec(), is_dir));
    }
    for (child, is_dir) in children {
        if is_dir {
            remove_tree(dir.as_fd(), &child)?;
        } else {
            rfs::unlinkat(&dir, os(&child), AtFlags::empty()).map_err(io_err)?;
        }
    }
    rfs::unlinkat(parent, os(name), AtFlags::REMOVEDIR).map_err(io_err)
}

fn uid(raw: u32) -> rfs::Uid {
    rfs::Uid::from_raw_unchecked(raw)
}

fn gid(raw: u32) -> rfs::Gid {
    rfs::Gid::from_raw_unchecked(raw)
}

fn times(t: Timespec) -> Timestamps {
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

fn link_target<R: Read>(entry: &tar::Entry<'_, R>, name: &str) -> Result<Vec<u8>, LayerError> {
    entry
        .link_name_bytes()
        .map(|t| t.into_owned())
        .ok_or_else(|| LayerError::Corrupt {
            context: format!("tar entry '{name}'"),
            reason: "the link has no target".to_string(),
        })
}

fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Meta> {
    let header = entry.header();
    let mode = header.mode()? & 0o7777;
    let to_u32 = |v: u64, what: &str| {
        u32::try_from(v)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("{what} {v} is out of range")))
    };
    let uid = to_u32(header.uid()?, "uid")?;
    let gid = to_u32(header.gid()?, "gid")?;
    let mut mtime = Timespec {
        tv_sec: i64::try_from(header.mtime()?).unwrap_or(i64::MAX),
        tv_nsec: 0,
    };
    let mut xattrs = Vec::new();
    if let Some(exts) = entry.pax_extensions()? {
        for ext in exts {
            let ext = ext?;
            let key = ext.key_bytes();
            if key == b"mtime" {
                if let Some(t) = parse_pax_time(ext.value_bytes()) {
                    mtime = t;
                }
            } else if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                // Overlay metadata is Berth's to write (whiteouts); a layer must not forge it.
                if !name.starts_with(b"trusted.overlay.")
                    && !name.starts_with(b"user.overlay.")
                    && !name.is_empty()
                {
                    xattrs.push((name.to_vec(), ext.value_bytes().to_vec()));
                }
            }
        }
    }
    Ok(Meta {
        mode,
        uid,
        gid,
        mtime,
        xattrs,
    })
}

/// Parses a PAX time such as `1700000000.123456789` or `-5.5`.
fn parse_pax_time(v: &[u8]) -> Option<Timespec> {
    let s = std::str::from_utf8(v).ok()?;
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    if secs.is_empty()
        || !secs.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let secs: i64 = secs.parse().ok()?;
    let mut nanos: i64 = 0;
    for (i, b) in frac.bytes().take(9).enumerate() {
        nanos += i64::from(b - b'0') * 10i64.pow(8 - i as u32);
    }
    if neg {
        if nanos == 0 {
            Some(Timespec {
                tv_sec: -secs,
                tv_nsec: 0,
            })
        } else {
            Some(Timespec {
                tv_sec: -secs - 1,
                tv_nsec: (1_000_000_000 - nanos) as _,
            })
        }
    } else {
        Some(Timespec {
            tv_sec: secs,
            tv_nsec: nanos as _,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pax_times() {
        let t = parse_pax_time(b"1700000000.5").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (1_700_000_000, 500_000_000));
        let t = parse_pax_time(b"12").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (12, 0));
        let t = parse_pax_time(b"-1.25").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (-2, 750_000_000));
        assert!(parse_pax_time(b"abc").is_none());
        assert!(parse_pax_time(b"").is_none());
    }
}
