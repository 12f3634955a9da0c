//! Garbage collection by references, leases, and disk usage.

use std::fs;
use std::io;

use berth_oci::Digest;

use crate::error::io_at;
use crate::fsutil;
use crate::lock::{FileLock, Mode};
use crate::{Store, StoreError};

/// Protects in-flight work (a pull, a load) from GC: while any lease is held, in any
/// process, [`Store::gc`] deletes nothing. Released when dropped or when the process dies.
#[derive(Debug)]
pub struct Lease {
    _lock: FileLock,
}

/// What a [`Store::gc`] run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// A lease was held, so nothing was collected; try again later.
    pub deferred: bool,
    pub blobs_removed: usize,
    pub layers_removed: usize,
    /// Abandoned partial downloads removed from `ingest/`.
    pub partials_removed: usize,
    pub bytes_freed: u64,
}

/// Space used by the store (apparent sizes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiskUsage {
    pub blob_count: usize,
    pub blob_bytes: u64,
    pub layer_count: usize,
    pub layer_bytes: u64,
    /// Partial downloads in `ingest/`.
    pub ingest_bytes: u64,
}

impl Store {
    /// Takes a lease; blocks only while a GC run is in progress.
    pub fn lease(&self) -> Result<Lease, StoreError> {
        let path = &self.inner.gc_lock;
        let lock = FileLock::acquire(path, Mode::Shared, true)
            .map_err(io_at(path))?
            .ok_or_else(|| StoreError::io(path, io::ErrorKind::WouldBlock.into()))?;
        Ok(Lease { _lock: lock })
    }

    /// Deletes blobs and layer directories that no image record references, abandoned
    /// partial downloads, and stale temp entries. Never waits: if any lease is held it
    /// returns at once with `deferred: true`.
    pub fn gc(&self) -> Result<GcReport, StoreError> {
        let gc_lock = &self.inner.gc_lock;
        let Some(_gc) = FileLock::acquire(gc_lock, Mode::Exclusive, false).map_err(io_at(gc_lock))? else {
            return Ok(GcReport {
                deferred: true,
                ..GcReport::default()
            });
        };
        // With gc.lock exclusive nobody can add references (put_image and update take a
        // lease), so this snapshot stays valid for the whole run.
        let (blob_refs, layer_refs) = self.metadata()?.references();
        let mut report = GcReport::default();

        let blobs = &self.inner.blobs;
        for (digest, path) in hex_entries(blobs)? {
            if blob_refs.contains(&digest) {
                continue;
            }
            let size = berth_host::disk::tree_size(&path);
            fsutil::remove_all(&path).map_err(io_at(&path))?;
            report.blobs_removed += 1;
            report.bytes_freed += size;
        }
        fsutil::sync_dir(blobs).map_err(io_at(blobs))?;

        let layers = &self.inner.layers;
        for (diff_id, path) in hex_entries(layers)? {
            if layer_refs.contains(&diff_id) {
                continue;
            }
            let size = berth_host::disk::tree_size(&path);
            fsutil::remove_all(&path).map_err(io_at(&path))?;
            report.layers_removed += 1;
            report.bytes_freed += size;
        }

        let ingest = &self.inner.ingest;
        let mut digests: Vec<String> = Vec::new();
        for entry in fs::read_dir(ingest).map_err(io_at(ingest))? {
            let name = entry.map_err(io_at(ingest))?.file_name();
            let name = name.to_string_lossy();
            if let Some(hex) = name
                .strip_suffix(".partial")
                .or_else(|| name.strip_suffix(".lock"))
            {
                if Digest::from_hex(hex).is_ok() && !digests.iter().any(|d| d == hex) {
                    digests.push(hex.to_string());
                }
            }
        }
        for hex in digests {
            let lock_path = ingest.join(format!("{hex}.lock"));
            // A held lock means a writer is at work: leave it alone.
            let Some(lock) =
                FileLock::acquire_removable(&lock_path, Mode::Exclusive, false).map_err(io_at(&lock_path))?
            else {
                continue;
            };
            let partial = ingest.join(format!("{hex}.partial"));
            if let Ok(meta) = fs::symlink_metadata(&partial) {
                fsutil::remove_all(&partial).map_err(io_at(&partial))?;
                report.partials_removed += 1;
                report.bytes_freed += meta.len();
            }
            lock.remove();
        }

        self.sweep_tmp()?;
        Ok(report)
    }

    /// Bytes used by blobs, layer directories and partial downloads.
    pub fn disk_usage(&self) -> Result<DiskUsage, StoreError> {
        let mut du = DiskUsage::default();
        for (_, path) in hex_entries(&self.inner.blobs)? {
            du.blob_count += 1;
            du.blob_bytes += berth_host::disk::tree_size(&path);
        }
        for (_, path) in hex_entries(&self.inner.layers)? {
            du.layer_count += 1;
            du.layer_bytes += berth_host::disk::tree_size(&path);
        }
        du.ingest_bytes = berth_host::disk::tree_size(&self.inner.ingest);
        Ok(du)
    }
}

/// Entries of `dir` named by a sha256 hex digest. Other names are not the store's and are
/// left alone.
pub(crate) fn hex_entries(dir: &std::path::Path) -> Result<Vec<(Digest, std::path::PathBuf)>, StoreError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_at(dir))? {
        let entry = entry.map_err(io_at(dir))?;
        if let Some(d) = entry.file_name().to_str().and_then(|n| Digest::from_hex(n).ok()) {
            out.push((d, entry.path()));
        }
    }
    Ok(out)
}
