//! The on-disk content store of Berth: verified blobs, tags and image records, unpacked
//! layer directories, leases and garbage collection.
//!
//! The design follows containerd's split into *content* (blobs addressed by digest, only
//! ever written through verifying writers), *metadata* (tags and image records), *layer
//! directories*, and *GC by references* with *leases* protecting in-flight work.
//!
//! # Layout
//!
//! Everything lives under one root directory (`BERTH_ROOT`, see [`Store::default_root`]):
//!
//! ```text
//! ROOT/
//!   blobs/sha256/<hex>        verified blobs, read-only files, named by their sha256
//!   ingest/<hex>.partial      partial downloads, kept across crashes so pulls resume
//!   ingest/<hex>.lock         flock held by the one writer of that digest
//!   layers/<diffid-hex>/      unpacked layer directories (callers unpack into a temp dir,
//!                             then `commit_layer` renames it into place)
//!   tmp/<pid>-<…>             temp files and dirs; entries whose process is gone are
//!                             swept by `Store::open`
//!   metadata.json             tags, image records and build cache entries, replaced
//!                             atomically (write temp,
//!                             fsync, rename, fsync dir)
//!   store.lock                flock taken exclusively for every metadata read-modify-write
//!   gc.lock                   flock: leases hold it shared, GC takes it exclusively
//! ```
//!
//! # Guarantees
//!
//! * The store never holds an unverified blob: a blob appears in `blobs/` only by rename,
//!   after its digest (and size, when known) were checked.
//! * Several processes (CLI, daemon, desktop app) may use one root at once. Ingesting the
//!   same digest is serialized by a per-digest lock, metadata changes by `store.lock`, and
//!   readers always re-read `metadata.json`, so each process sees the others' changes.
//! * An image record is only stored when all of its blobs are present ("never a half
//!   image"); GC keeps everything that some image record references.
//! * A process that adds content must hold a [`Lease`] from before the first blob is written
//!   until its image record is stored; GC does nothing while any lease is held.
//! * Locks are `flock`s: the kernel drops them when a process dies, so a crash never leaves
//!   the store locked.
//!
//! Temp entries are attributed to processes by pid, so all processes that share a root must
//! share a pid namespace.

mod build_cache;
mod check;
mod content;
mod error;
mod fsutil;
mod gc;
mod layers;
mod lock;
mod metadata;

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use check::{CheckReport, Owner, RepairReport, StoreProblem};
pub use content::{Ingest, IngestStart};
pub use error::StoreError;
pub use gc::{DiskUsage, GcReport, Lease};
pub use metadata::{ImageRecord, LayerRecord, Metadata};

use error::io_at;
use lock::{FileLock, Mode};

/// A handle on a store root. Cheap to clone; every clone, thread and process using the same
/// root sees the same content.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<Paths>,
}

#[derive(Debug)]
struct Paths {
    root: PathBuf,
    blobs: PathBuf,
    ingest: PathBuf,
    layers: PathBuf,
    tmp: PathBuf,
    metadata: PathBuf,
    store_lock: PathBuf,
    gc_lock: PathBuf,
}

impl Store {
    /// Opens the store at `root`, creating its layout if needed, and sweeps temp entries
    /// left behind by processes that no longer exist.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        let paths = Paths {
            root: root.to_path_buf(),
            blobs: root.join("blobs").join("sha256"),
            ingest: root.join("ingest"),
            layers: root.join("layers"),
            tmp: root.join("tmp"),
            metadata: root.join("metadata.json"),
            store_lock: root.join("store.lock"),
            gc_lock: root.join("gc.lock"),
        };
        let not_writable = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
                StoreError::NotWritable {
                    path: root.to_path_buf(),
                }
            }
            _ => StoreError::Io {
                path: root.to_path_buf(),
                source: e,
            },
        };
        for dir in [&paths.blobs, &paths.ingest, &paths.layers, &paths.tmp] {
            fs::create_dir_all(dir).map_err(not_writable)?;
        }
        // Creating the lock files also proves the root is writable.
        for lock in [&paths.store_lock, &paths.gc_lock] {
            fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(lock)
                .map_err(not_writable)?;
        }
        let store = Store {
            inner: Arc::new(paths),
        };
        store.sweep_tmp()?;
        Ok(store)
    }

    /// The default store root: `$BERTH_ROOT` if set; else `/var/lib/berth` when running as
    /// root; else `$XDG_DATA_HOME/berth`, or `~/.local/share/berth`.
    pub fn default_root() -> PathBuf {
        default_root_from(
            std::env::var_os("BERTH_ROOT"),
            berth_host::privilege::host_root(),
            std::env::var_os("XDG_DATA_HOME"),
            std::env::var_os("HOME"),
            berth_host::privilege::host_uid(),
        )
    }

    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Removes `tmp/` entries whose owning process no longer exists.
    fn sweep_tmp(&self) -> Result<(), StoreError> {
        let tmp = &self.inner.tmp;
        for entry in fs::read_dir(tmp).map_err(io_at(tmp))? {
            let entry = entry.map_err(io_at(tmp))?;
            let name = entry.file_name();
            let stale = match name.to_str().and_then(fsutil::owner_pid) {
                Some(pid) => !berth_host::process::alive(pid),
                // Not a name the store makes: nobody can be using it through the store.
                None => true,
            };
            if stale {
                // Best effort: another process may be sweeping the same entry right now.
                let _ = fsutil::remove_all(&entry.path());
            }
        }
        Ok(())
    }

    /// A fresh, unique path under `ROOT/tmp` (not created).
    fn tmp_path(&self, suffix: &str) -> PathBuf {
        self.inner.tmp.join(fsutil::unique_name(suffix))
    }

    fn lock_metadata(&self) -> Result<FileLock, StoreError> {
        let path = &self.inner.store_lock;
        FileLock::acquire(path, Mode::Exclusive, true)
            .map_err(io_at(path))?
            .ok_or_else(|| StoreError::io(path, std::io::ErrorKind::WouldBlock.into()))
    }
}

fn default_root_from(
    berth_root: Option<OsString>,
    is_root: bool,
    xdg_data_home: Option<OsString>,
    home: Option<OsString>,
    uid: u32,
) -> PathBuf {
    if let Some(r) = berth_root.filter(|r| !r.is_empty()) {
        return PathBuf::from(r);
    }
    if is_root {
        return PathBuf::from("/var/lib/berth");
    }
    // The XDG spec says relative values are invalid and must be ignored.
    if let Some(x) = xdg_data_home.map(PathBuf::from).filter(|p| p.is_absolute()) {
        return x.join("berth");
    }
    if let Some(h) = home.filter(|h| !h.is_empty()) {
        return PathBuf::from(h).join(".local/share/berth");
    }
    PathBuf::from(format!("/tmp/berth-{uid}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_root_precedence() {
        let s = |v: &str| Some(OsString::from(v));
        assert_eq!(
            default_root_from(s("/srv/b"), true, s("/x"), s("/home/u"), 0),
            PathBuf::from("/srv/b")
        );
        assert_eq!(
            default_root_from(None, true, s("/x"), s("/home/u"), 0),
            PathBuf::from("/var/lib/berth")
        );
        assert_eq!(
            default_root_from(s(""), false, s("/x"), s("/home/u"), 1000),
            PathBuf::from("/x/berth")
        );
        assert_eq!(
            default_root_from(None, false, s("rel"), s("/home/u"), 1000),
            PathBuf::from("/home/u/.local/share/berth")
        );
        assert_eq!(
            default_root_from(None, false, None, None, 1000),
            PathBuf::from("/tmp/berth-1000")
        );
    }
}
