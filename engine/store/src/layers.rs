//! Layer directories: unpacked layers under `layers/<diffid-hex>/`.
//!
//! Callers unpack into [`Store::temp_dir`] and then [`Store::commit_layer`], which renames
//! the finished tree into place, so a layer directory is either complete or absent.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use berth_oci::Digest;

use crate::error::io_at;
use crate::fsutil;
use crate::{Store, StoreError};

impl Store {
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.inner.layers.join(diff_id.hex())
    }

    pub fn has_layer(&self, diff_id: &Digest) -> bool {
        fs::symlink_metadata(self.layer_dir(diff_id)).is_ok_and(|m| m.is_dir())
    }

    /// A unique path under `ROOT/tmp` (not created) for the caller to unpack into. It is
    /// swept by a later [`Store::open`] once this process has exited.
    pub fn temp_dir(&self) -> Result<PathBuf, StoreError> {
        Ok(self.tmp_path("layer"))
    }

    /// Moves an unpacked tree into `layers/<diff_id hex>`. If that layer is already present
    /// (another process unpacked it first), `tmp` is removed and this succeeds.
    pub fn commit_layer(&self, tmp: &Path, diff_id: &Digest) -> Result<(), StoreError> {
        let dest = self.layer_dir(diff_id);
        if self.has_layer(diff_id) {
            return fsutil::remove_all(tmp).map_err(io_at(tmp));
        }
        // No syncfs here: a layer directory is derived data, re-creatable from its
        // verified and fsynced blob, and syncfs would flush every dirty page of the whole
        // filesystem (other pulls, other programs) on each layer — seconds under load.
        // docker's overlay2 and containers/storage make the same trade; the rename below
        // still publishes the tree atomically.
        match fs::rename(tmp, &dest) {
            Ok(()) => {
                let layers = &self.inner.layers;
                fsutil::sync_dir(layers).map_err(io_at(layers))
            }
            // Another process committed the same layer first.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::DirectoryNotEmpty | io::ErrorKind::AlreadyExists
                ) =>
            {
                fsutil::remove_all(tmp).map_err(io_at(tmp))
            }
            Err(e) => Err(StoreError::io(&dest, e)),
        }
    }
}
