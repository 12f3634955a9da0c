//! Build cache entries: what a build step produced, kept under a cache key the builder
//! computes. They live in `metadata.json` beside the image records so that GC, leases and
//! atomic updates treat them exactly like images.

use crate::{ImageRecord, Store, StoreError};

impl Store {
    /// Stores the result of a build step under `key`. Refuses, like [`Store::put_image`],
    /// if any blob the record needs is missing.
    pub fn put_build_cache(&self, key: &str, rec: ImageRecord) -> Result<(), StoreError> {
        let _lease = self.lease()?;
        if let Some(missing) = rec.required_blobs().find(|d| !self.has_blob(d)) {
            return Err(StoreError::MissingBlob(missing.clone()));
        }
        self.update(|md| {
            md.build_cache.insert(key.to_string(), rec);
        })
    }

    /// The cached result for `key`, if there is one and all its content is still present.
    pub fn build_cache(&self, key: &str) -> Result<Option<ImageRecord>, StoreError> {
        let Some(rec) = self.metadata()?.build_cache.remove(key) else {
            return Ok(None);
        };
        let complete = rec.required_blobs().all(|d| self.has_blob(&d))
            && rec.layers.iter().all(|l| self.has_layer(&l.diff_id));
        Ok(complete.then_some(rec))
    }

    /// Removes the build cache entries for which `remove` returns true; returns how many.
    /// Their content goes with the next [`Store::gc`] unless something else references it.
    pub fn remove_build_cache(
        &self,
        mut remove: impl FnMut(&str, &ImageRecord) -> bool,
    ) -> Result<usize, StoreError> {
        self.update(|md| {
            let before = md.build_cache.len();
            md.build_cache.retain(|k, rec| !remove(k, rec));
            before - md.build_cache.len()
        })
    }
}
