//! Metadata: tags and image records, kept in `metadata.json`.
//!
//! Every change is a read-modify-write under the exclusive `store.lock`, and the file is
//! replaced atomically, so readers never need the lock: they always see a complete file,
//! and always re-read it, so changes made by other processes are seen at once.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;

use berth_oci::{Descriptor, Digest, Platform};
use serde::{Deserialize, Serialize};

use crate::error::io_at;
use crate::fsutil;
use crate::{Store, StoreError};

/// One stored image: a platform manifest, its config and its layers.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ImageRecord {
    /// The image ID: the digest of the config blob.
    pub id: Digest,
    /// The platform manifest.
    pub manifest: Descriptor,
    /// The index (manifest list) the manifest was selected from, if any.
    #[serde(default)]
    pub index_digest: Option<Digest>,
    pub config: Descriptor,
    pub layers: Vec<LayerRecord>,
    /// `name@sha256:…` references, e.g. `docker.io/library/flask@sha256:…`.
    #[serde(default)]
    pub repo_digests: Vec<String>,
    #[serde(default)]
    pub platform: Option<Platform>,
    /// The `created` time from the config.
    #[serde(default)]
    pub created: Option<String>,
    /// When the record was stored (RFC 3339).
    pub stored_at: String,
}

/// One layer of an image.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LayerRecord {
    /// The compressed blob, as the manifest describes it.
    pub blob: Descriptor,
    /// The digest of the uncompressed tar; names the layer directory.
    pub diff_id: Digest,
    pub unpacked_size: u64,
}

impl ImageRecord {
    /// Every blob the record needs: manifest, config and layer blobs.
    pub fn required_blobs(&self) -> impl Iterator<Item = Digest> + '_ {
        [self.manifest.digest(), self.config.digest()]
            .into_iter()
            .chain(self.layers.iter().map(|l| l.blob.digest()))
    }

    /// Every blob the record keeps alive in GC: the required ones and the index.
    pub fn referenced_blobs(&self) -> impl Iterator<Item = Digest> + '_ {
        self.required_blobs().chain(self.index_digest.iter().cloned())
    }
}

/// The content of `metadata.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Metadata {
    /// Normalized names (`docker.io/library/flask:latest`) → image ID.
    #[serde(default)]
    pub tags: BTreeMap<String, Digest>,
    /// Image ID → record.
    #[serde(default)]
    pub images: BTreeMap<Digest, ImageRecord>,
    /// Build cache: cache key (hex) → the image state a build step produced. Entries keep
    /// their blobs and layers alive in GC like image records do, but are not images: they
    /// are not listed, tagged or resolved by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub build_cache: BTreeMap<String, ImageRecord>,
}

impl Metadata {
    /// Removes an image record and every tag pointing at it. Returns whether it existed.
    pub fn remove_image(&mut self, id: &Digest) -> bool {
        self.tags.retain(|_, v| v != id);
        self.images.remove(id).is_some()
    }

    /// The blobs and layer directories (by diff_id) that image records and build cache
    /// entries reference.
    pub fn references(&self) -> (BTreeSet<Digest>, BTreeSet<Digest>) {
        let mut blobs = BTreeSet::new();
        let mut layers = BTreeSet::new();
        for rec in self.images.values().chain(self.build_cache.values()) {
            blobs.extend(rec.referenced_blobs());
            layers.extend(rec.layers.iter().map(|l| l.diff_id.clone()));
        }
        (blobs, layers)
    }
}

impl Store {
    /// Reads the current metadata (without taking the lock: the file is always complete).
    pub fn metadata(&self) -> Result<Metadata, StoreError> {
        let path = &self.inner.metadata;
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                path: path.clone(),
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Metadata::default()),
            Err(e) => Err(StoreError::io(path, e)),
        }
    }

    /// Runs `f` on the metadata under the store lock and saves the result atomically if it
    /// changed. Other store methods must not be called from inside `f` (the lock is held).
    ///
    /// Records added here are not checked for missing blobs; use [`Store::put_image`] for that.
    pub fn update<R>(&self, f: impl FnOnce(&mut Metadata) -> R) -> Result<R, StoreError> {
        // Changes may add references; keep GC out while they are being made.
        let _lease = self.lease()?;
        self.update_locked(f)
    }

    fn update_locked<R>(&self, f: impl FnOnce(&mut Metadata) -> R) -> Result<R, StoreError> {
        let _lock = self.lock_metadata()?;
        let before = self.metadata()?;
        let mut after = before.clone();
        let r = f(&mut after);
        if after != before {
            self.save_metadata(&after)?;
        }
        Ok(r)
    }

    fn save_metadata(&self, md: &Metadata) -> Result<(), StoreError> {
        let path = &self.inner.metadata;
        let mut bytes = serde_json::to_vec_pretty(md).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            reason: format!("cannot serialize metadata: {e}"),
        })?;
        bytes.push(b'\n');
        let tmp = self.tmp_path("metadata.json");
        fsutil::write_atomic(&tmp, path, &bytes, 0o644).map_err(io_at(path))
    }

    /// Points `name` at `image_id`; returns the image it pointed at before.
    pub fn set_tag(&self, name: &str, image_id: &Digest) -> Result<Option<Digest>, StoreError> {
        self.update_locked(|md| md.tags.insert(name.to_string(), image_id.clone()))
    }

    pub fn resolve_tag(&self, name: &str) -> Result<Option<Digest>, StoreError> {
        Ok(self.metadata()?.tags.remove(name))
    }

    /// Removes a tag; returns the image it pointed at.
    pub fn remove_tag(&self, name: &str) -> Result<Option<Digest>, StoreError> {
        self.update_locked(|md| md.tags.remove(name))
    }

    /// All tags, sorted by name.
    pub fn tags(&self) -> Result<Vec<(String, Digest)>, StoreError> {
        Ok(self.metadata()?.tags.into_iter().collect())
    }

    /// Stores an image record. Refuses if the manifest, config or any layer blob is
    /// missing, so the store never holds a half image.
    pub fn put_image(&self, rec: ImageRecord) -> Result<(), StoreError> {
        if rec.id != rec.config.digest() {
            return Err(StoreError::InvalidRecord {
                id: rec.id.clone(),
                reason: format!("the image ID must be the config digest {}", rec.config.digest()),
            });
        }
        // The lease keeps GC from deleting the blobs between this check and the save.
        let _lease = self.lease()?;
        if let Some(missing) = rec.required_blobs().find(|d| !self.has_blob(d)) {
            return Err(StoreError::MissingBlob(missing.clone()));
        }
        self.update_locked(|md| {
            md.images.insert(rec.id.clone(), rec);
        })
    }

    pub fn image(&self, id: &Digest) -> Result<Option<ImageRecord>, StoreError> {
        Ok(self.metadata()?.images.remove(id))
    }

    /// All image records, sorted by ID.
    pub fn images(&self) -> Result<Vec<ImageRecord>, StoreError> {
        Ok(self.metadata()?.images.into_values().collect())
    }

    /// The image whose ID starts with `id_prefix` (hex digits, optionally after `sha256:`).
    pub fn find_image(&self, id_prefix: &str) -> Result<Option<ImageRecord>, StoreError> {
        let hex = id_prefix
            .strip_prefix("sha256:")
            .unwrap_or(id_prefix)
            .to_ascii_lowercase();
        if hex.is_empty() || hex.len() > 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StoreError::InvalidIdPrefix {
                prefix: id_prefix.to_string(),
            });
        }
        let mut found = self
            .metadata()?
            .images
            .into_values()
            .filter(|r| r.id.hex().starts_with(&hex));
        let first = found.next();
        if found.next().is_some() {
            return Err(StoreError::AmbiguousId {
                prefix: id_prefix.to_string(),
            });
        }
        Ok(first)
    }

    /// Removes an image record and every tag pointing at it. The blobs and layers stay
    /// until the next [`Store::gc`].
    pub fn remove_image(&self, id: &Digest) -> Result<(), StoreError> {
        if self.update_locked(|md| md.remove_image(id))? {
            Ok(())
        } else {
            Err(StoreError::NotFound {
                what: format!("image {}", id.short()),
            })
        }
    }
}
