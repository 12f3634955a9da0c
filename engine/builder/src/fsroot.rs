//! Writing into a container root filesystem from the host without ever leaving it: every
//! path is resolved with `openat2(RESOLVE_IN_ROOT)`, so an image's symlinks (absolute or
//! `../`) resolve inside the root, and new entries are made relative to directory fds
//! with `O_NOFOLLOW`.

use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags, Timestamps};
use rustix::io::Errno;

use crate::BuildError;

/// An owner to give new files: `None` keeps the source's.
pub type Owner = Option<(u32, u32)>;

fn err(what: String) -> impl FnOnce(Errno) -> BuildError {
    move |e| BuildError::Io {
        context: what,
        source: e.into(),
    }
}

/// The parts of an absolute or relative container path, cleaned lexically (`..` stops
/// at the root, as inside a container).
pub fn clean_parts(path: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            p => out.push(p.to_string()),
        }
    }
    out
}

/// A container root directory.
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

impl Root {
    pub fn open(path: &Path) -> Result<Root, BuildError> {
        let fd = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(err(format!("cannot open {}", path.display())))?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
        })
    }

    fn open_in(&self, rel: &str, flags: OFlags) -> Result<OwnedFd, Errno> {
        let rel = if rel.is_empty() { "." } else { rel };
        rustix::fs::openat2(
            &self.fd,
            rel,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )
    }

    /// Whether `path` (following symlinks inside the root) is a directory.
    pub fn is_dir(&self, path: &str) -> bool {
        self.open_in(&clean_parts(path).join("/"), OFlags::PATH | OFlags::DIRECTORY)
            .is_ok()
    }

    /// The real host path of `path` resolved inside the root, if it exists.
    pub fn resolve(&self, path: &str) -> Option<PathBuf> {
        let fd = self.open_in(&clean_parts(path).join("/"), OFlags::PATH).ok()?;
        fs::read_link(format!("/proc/self/fd/{}", rustix::fd::AsRawFd::as_raw_fd(&fd))).ok()
    }

    /// Opens directory `path`, creating missing parts (mode 0755, owned by `owner` or root),
    /// like `mkdir -p` inside the root.
    pub fn mkdir_p(&self, path: &str, owner: Owner) -> Result<OwnedFd, BuildError> {
        self.mkdir_p_hops(path, owner, 0)
    }

    fn mkdir_p_hops(&self, path: &str, owner: Owner, hops: usize) -> Result<OwnedFd, BuildError> {
        let parts = clean_parts(path);
        let mut cur = self
            .open_in("", OFlags::PATH | OFlags::DIRECTORY)
            .map_err(err(format!("cannot open {}", self.path.display())))?;
        for i in 0..parts.len() {
            let prefix = parts[..=i].join("/");
            match self.open_in(&prefix, OFlags::PATH | OFlags::DIRECTORY) {
                Ok(fd) => cur = fd,
                Err(Errno::NOENT) => {
                    // A dangling symlink: create its target inside the root, like
                    // `mkdir -p` in the container would.
                    if let Ok(target) = rustix::fs::readlinkat(&cur, parts[i].as_str(), Vec::new()) {
                        if hops > 40 {
                            return Err(err(format!("cannot create /{prefix}"))(Errno::LOOP));
                        }
                        let target = target.to_string_lossy().into_owned();
                        let base = if target.starts_with('/') {
                            target
                        } else {
                            format!("{}/{target}", parts[..i].join("/"))
                        };
                        let rest = parts[i + 1..].join("/");
                        return self.mkdir_p_hops(&format!("{base}/{rest}"), owner, hops + 1);
                    }
                    match rustix::fs::mkdirat(&cur, parts[i].as_str(), Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(err(format!("cannot create /{prefix}"))(e)),
                    }
                    let (uid, gid) = owner.unwrap_or((0, 0));
                    chown_at(&cur, &parts[i], uid, gid)?;
                    cur = self
                        .open_in(&prefix, OFlags::PATH | OFlags::DIRECTORY)
                        .map_err(err(format!("cannot open /{prefix}")))?;
                }
                Err(Errno::NOTDIR) => {
                    return Err(BuildError::Io {
                        context: format!("cannot create directory /{prefix}"),
                        source: std::io::Error::other("a file of that name exists and is not a directory"),
                    })
                }
                Err(e) => return Err(err(format!("cannot open /{prefix}"))(e)),
            }
        }
        Ok(cur)
    }
}

fn chown_at(dir: &OwnedFd, name: &str, uid: u32, gid: u32) -> Result<(), BuildError> {
    rustix::fs::chownat(
        dir,
        name,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(err(format!("cannot change the owner of {name}")))
}

fn times_of(meta: &fs::Metadata) -> Timestamps {
    let t = rustix::fs::Timespec {
        tv_sec: meta.mtime(),
        tv_nsec: meta.mtime_nsec() as _,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// Removes whatever non-directory is at `name` so a new entry can take its place.
fn clear_slot(dir: &OwnedFd, name: &str) -> Result<(), BuildError> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory => {
            Err(BuildError::Io {
                context: format!("cannot replace directory {name} with a file"),
                source: std::io::Error::other("a directory of that name exists"),
            })
        }
        Ok(_) => {
            rustix::fs::unlinkat(dir, name, AtFlags::empty()).map_err(err(format!("cannot replace {name}")))
        }
        Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(err(format!("cannot inspect {name}"))(e)),
    }
}

/// Copies one host entry (file, symlink or directory itself, not its children) to
/// `name` in `dir`. Returns the new directory's fd for directories.
pub fn copy_entry(
    host: &Path,
    dir: &OwnedFd,
    name: &str,
    owner: Owner,
    chmod: Option<u32>,
) -> Result<Option<OwnedFd>, BuildError> {
    let meta =
        fs::symlink_metadata(host).map_err(BuildError::io(format!("cannot read {}", host.display())))?;
    let (uid, gid) = owner.unwrap_or((meta.uid(), meta.gid()));
    let ft = meta.file_type();
    let mode = chmod.unwrap_or(meta.permissions().mode() & 0o7777);
    if ft.is_dir() {
        match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o700)) {
            Ok(()) => {}
            Err(Errno::EXIST) => {
                // An existing directory keeps its metadata, as with docker.
                let fd = rustix::fs::openat(
                    dir,
                    name,
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(err(format!(
                    "cannot copy into {name}: it exists and is not a directory"
                )))?;
                return Ok(Some(fd));
            }
            Err(e) => return Err(err(format!("cannot create {name}"))(e)),
        }
        let fd = rustix::fs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(err(format!("cannot open {name}")))?;
        rustix::fs::fchown(
            &fd,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
        )
        .map_err(err(format!("cannot change the owner of {name}")))?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(err(format!("cannot chmod {name}")))?;
        rustix::fs::futimens(&fd, &times_of(&meta)).map_err(err(format!("cannot set times of {name}")))?;
        return Ok(Some(fd));
    }
    clear_slot(dir, name)?;
    if ft.is_symlink() {
        let target =
            fs::read_link(host).map_err(BuildError::io(format!("cannot read {}", host.display())))?;
        rustix::fs::symlinkat(&target, dir, name).map_err(err(format!("cannot create symlink {name}")))?;
        chown_at(dir, name, uid, gid)?;
        let _ = rustix::fs::utimensat(dir, name, &times_of(&meta), AtFlags::SYMLINK_NOFOLLOW);
        return Ok(None);
    }
    if !ft.is_file() {
        // Sockets, fifos and devices are not copied (docker skips them too).
        return Ok(None);
    }
    let mut src = fs::File::open(host).map_err(BuildError::io(format!("cannot read {}", host.display())))?;
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(err(format!("cannot create {name}")))?;
    let mut dst = fs::File::from(fd);
    std::io::copy(&mut src, &mut dst).map_err(BuildError::io(format!("cannot copy {}", host.display())))?;
    rustix::fs::fchown(
        dst.as_fd(),
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
    )
    .map_err(err(format!("cannot change the owner of {name}")))?;
    // After chown, which clears set-id bits.
    rustix::fs::fchmod(dst.as_fd(), Mode::from_raw_mode(mode))
        .map_err(err(format!("cannot chmod {name}")))?;
    rustix::fs::futimens(dst.as_fd(), &times_of(&meta))
        .map_err(err(format!("cannot set times of {name}")))?;
    Ok(None)
}

/// Copies the host tree at `host` (a directory; its contents, not itself) into `dir`,
/// skipping relative paths `skip` rejects. Never follows symlinks.
pub fn copy_tree(
    host: &Path,
    dir: &OwnedFd,
    owner: Owner,
    chmod: Option<u32>,
    skip: &dyn Fn(&Path) -> bool,
) -> Result<(), BuildError> {
    copy_tree_at(host, Path::new(""), dir, owner, chmod, skip)
}

fn copy_tree_at(
    host_root: &Path,
    rel: &Path,
    dir: &OwnedFd,
    owner: Owner,
    chmod: Option<u32>,
    skip: &dyn Fn(&Path) -> bool,
) -> Result<(), BuildError> {
    let here = host_root.join(rel);
    let mut names: Vec<_> = fs::read_dir(&here)
        .map_err(BuildError::io(format!("cannot list {}", here.display())))?
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    names.sort();
    for name in names {
        let child_rel = rel.join(&name);
        if skip(&child_rel) {
            continue;
        }
        let name = name.to_string_lossy().into_owned();
        if let Some(sub) = copy_entry(&host_root.join(&child_rel), dir, &name, owner, chmod)? {
            let is_real_dir = fs::symlink_metadata(host_root.join(&child_rel)).is_ok_and(|m| m.is_dir());
            if is_real_dir {
                copy_tree_at(host_root, &child_rel, &sub, owner, chmod, skip)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_in_the_root_stay_in_the_root() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("app")).unwrap();
        std::os::unix::fs::symlink("../../..", root.path().join("up")).unwrap();
        let r = Root::open(root.path()).unwrap();
        let fd = r.mkdir_p("/app/sub", None).unwrap();
        let src = root.path().join("src.txt");
        fs::write(&src, "x").unwrap();
        copy_entry(&src, &fd, "f", Some((0, 0)), None).unwrap();
        // The absolute symlink /app resolved to <root>/<outside path>, not to the host dir.
        assert!(fs::read_dir(outside.path()).unwrap().next().is_none());
        let inside = root
            .path()
            .join(outside.path().strip_prefix("/").unwrap())
            .join("sub/f");
        assert_eq!(fs::read_to_string(inside).unwrap(), "x");
        let fd = r.mkdir_p("/up/etc2", None).unwrap();
        drop(fd);
        assert!(root.path().join("etc2").is_dir());
        assert_eq!(clean_parts("/a/../../b/./c"), vec!["b", "c"]);
    }
}
