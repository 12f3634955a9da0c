//! One engine per store root. Whoever serves a root (the desktop's embedded engine,
//! `berth daemon`, or a command's in-process engine) holds `ROOT/engine.lock` and listens
//! on the root's socket; everyone else finds it there and talks to it.

use std::io::{Read, Seek, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use sha2::Digest as _;

/// The directory of the sockets: `/run/berth` for root, `$XDG_RUNTIME_DIR/berth` otherwise,
/// or `/tmp/berth-UID` without one (see `berth_host::places`). Only the path: servers and
/// clients go through [`checked_socket_dir`] before they use it.
pub fn socket_dir() -> PathBuf {
    berth_host::places::runtime_dir()
}

/// [`socket_dir`], made (mode 0700 for a user other than root) when it is missing and, for
/// a user other than root, refused unless it is the user's own and closed to others:
/// whoever owns the directory owns the sockets in it.
pub fn checked_socket_dir() -> Result<PathBuf, crate::ApiError> {
    Ok(berth_host::places::ensure_runtime_dir()?)
}

/// The socket of the engine serving `root`: `root-<16 hex of sha256(root)>.sock` in
/// [`socket_dir`], short whatever the root's path (unix socket paths are limited to 108
/// bytes), and the same for every spelling of the root (it is canonicalised first).
pub fn root_socket(root: &Path) -> PathBuf {
    let canonical = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let hash = sha2::Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    socket_dir().join(format!("root-{}.sock", &hex::encode(hash)[..16]))
}

/// The exclusive right to serve a root: an `flock` on `ROOT/engine.lock`, released when
/// dropped or when the process dies (so a killed engine never locks a root out).
#[derive(Debug)]
pub struct RootLock {
    file: std::fs::File,
    path: PathBuf,
}

impl RootLock {
    fn open(root: &Path) -> std::io::Result<(std::fs::File, PathBuf)> {
        std::fs::create_dir_all(root)?;
        let path = root.join("engine.lock");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        Ok((file, path))
    }

    /// Takes the lock if nobody holds it; `Ok(None)` when another engine serves the root.
    pub fn try_acquire(root: &Path) -> std::io::Result<Option<RootLock>> {
        let (file, path) = Self::open(root)?;
        match rustix::fs::flock(file.as_fd(), rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(RootLock::taken(file, path)?)),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Waits until the lock is free, then takes it.
    pub fn acquire(root: &Path) -> std::io::Result<RootLock> {
        let (file, path) = Self::open(root)?;
        rustix::fs::flock(file.as_fd(), rustix::fs::FlockOperation::LockExclusive)?;
        RootLock::taken(file, path)
    }

    fn taken(mut file: std::fs::File, path: PathBuf) -> std::io::Result<RootLock> {
        file.set_len(0)?;
        file.rewind()?;
        writeln!(file, "{}", std::process::id())?;
        Ok(RootLock { file, path })
    }

    /// The pid written by whoever holds (or last held) the lock of `root`.
    pub fn holder(root: &Path) -> Option<u32> {
        let mut text = String::new();
        std::fs::File::open(root.join("engine.lock"))
            .ok()?
            .read_to_string(&mut text)
            .ok()?;
        text.trim().parse().ok()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RootLock {
    fn drop(&mut self) {
        let _ = rustix::fs::flock(self.file.as_fd(), rustix::fs::FlockOperation::Unlock);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let first = RootLock::try_acquire(dir.path()).unwrap().expect("free at first");
        assert!(RootLock::try_acquire(dir.path()).unwrap().is_none(), "held twice");
        assert_eq!(RootLock::holder(dir.path()), Some(std::process::id()));
        drop(first);
        assert!(
            RootLock::try_acquire(dir.path()).unwrap().is_some(),
            "not released"
        );
    }

    #[test]
    fn the_socket_is_short_and_the_same_for_every_spelling() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a".repeat(120));
        std::fs::create_dir_all(&deep).unwrap();
        let a = root_socket(&deep);
        let b = root_socket(&deep.join("..").join("a".repeat(120)));
        assert_eq!(a, b);
        assert!(a.as_os_str().len() < 100, "{}", a.display());
        assert_ne!(root_socket(dir.path()), a);
    }
}
