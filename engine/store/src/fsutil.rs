//! Small filesystem helpers: unique temp names, durable writes, directory fsync, robust
//! recursive removal and size accounting.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name unique across processes and threads: `<pid>-<nanos>-<counter>-<suffix>`.
/// The leading pid lets `open` tell stale entries (their process is gone) from live ones.
pub(crate) fn unique_name(suffix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}-{:x}-{}-{}", std::process::id(), nanos, n, suffix)
}

/// The pid encoded at the start of a temp entry name, if any.
pub(crate) fn owner_pid(name: &str) -> Option<i32> {
    name.split('-').next()?.parse().ok()
}

/// fsyncs a directory so that renames and unlinks in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `data` to a new file at `tmp` (mode `mode`), fsyncs it and renames it to `dest`,
/// then fsyncs the destination directory. On failure the temp file is removed.
pub(crate) fn write_atomic(tmp: &Path, dest: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(tmp)?;
        f.write_all(data)?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.sync_all()?;
        drop(f);
        fs::rename(tmp, dest)
    })();
    if result.is_err() {
        let _ = fs::remove_file(tmp);
        return result;
    }
    if let Some(parent) = dest.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Removes a file or a directory tree, whatever its permissions. Layer trees hold read-only
/// directories, device nodes and odd modes; a plain `remove_dir_all` fails on them when not
/// root, so on a permission error every directory is made writable and the removal retried.
/// Symlinks are never followed. A missing path is not an error.
pub(crate) fn remove_all(path: &Path) -> io::Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.is_dir() {
        return match fs::remove_file(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        };
    }
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(_) => {
            make_tree_writable(path);
            match fs::remove_dir_all(path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                other => other,
            }
        }
    }
}

/// Gives the owner rwx on every directory of the tree (best effort, symlinks not followed).
fn make_tree_writable(dir: &Path) {
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                make_tree_writable(&entry.path());
            }
        }
    }
}
