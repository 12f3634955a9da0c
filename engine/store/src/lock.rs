//! Advisory file locks (`flock`) shared between processes.
//!
//! Each lock opens its own file description, so two threads of one process exclude each
//! other exactly like two processes do. Locks are released when the value is dropped, or by
//! the kernel when the holder dies, so a crashed process never leaves a lock behind.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mode {
    Shared,
    Exclusive,
}

/// A held flock. Dropping it releases the lock.
#[derive(Debug)]
pub(crate) struct FileLock {
    file: File,
    path: PathBuf,
}

fn op(mode: Mode, blocking: bool) -> FlockOperation {
    match (mode, blocking) {
        (Mode::Shared, true) => FlockOperation::LockShared,
        (Mode::Exclusive, true) => FlockOperation::LockExclusive,
        (Mode::Shared, false) => FlockOperation::NonBlockingLockShared,
        (Mode::Exclusive, false) => FlockOperation::NonBlockingLockExclusive,
    }
}

fn open_lock_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(path)
}

/// Takes the lock; `Ok(None)` only when `blocking` is false and someone else holds it.
fn take(file: &File, mode: Mode, blocking: bool) -> io::Result<bool> {
    loop {
        match flock(file, op(mode, blocking)) {
            Ok(()) => return Ok(true),
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::WOULDBLOCK) if !blocking => return Ok(false),
            Err(e) => return Err(e.into()),
        }
    }
}

impl FileLock {
    /// Locks a file that is never removed (store.lock, gc.lock).
    pub(crate) fn acquire(path: &Path, mode: Mode, blocking: bool) -> io::Result<Option<FileLock>> {
        let file = open_lock_file(path)?;
        Ok(take(&file, mode, blocking)?.then(|| FileLock {
            file,
            path: path.to_path_buf(),
        }))
    }

    /// Locks a file that holders may unlink (per-digest ingest locks). After taking the lock
    /// it checks that the path still names the locked inode; if a previous holder unlinked
    /// it meanwhile, it starts over, so two holders can never lock different inodes.
    pub(crate) fn acquire_removable(path: &Path, mode: Mode, blocking: bool) -> io::Result<Option<FileLock>> {
        loop {
            let file = open_lock_file(path)?;
            if !take(&file, mode, blocking)? {
                return Ok(None);
            }
            let held = file.metadata()?;
            match fs::metadata(path) {
                Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => {
                    return Ok(Some(FileLock {
                        file,
                        path: path.to_path_buf(),
                    }))
                }
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Unlinks the lock file while still holding the lock, then releases it. Only for locks
    /// taken with [`FileLock::acquire_removable`].
    pub(crate) fn remove(self) {
        let _ = fs::remove_file(&self.path);
        drop(self.file);
    }
}
