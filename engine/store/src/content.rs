//! Content: blobs addressed by digest, written only through verifying writers.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use berth_oci::{Digest, Sha256Writer};

use crate::error::io_at;
use crate::fsutil;
use crate::lock::{FileLock, Mode};
use crate::{Store, StoreError};

/// Mode of stored blobs: nobody writes a verified blob again.
const BLOB_MODE: u32 = 0o444;

/// What [`Store::ingest`] found.
// Returned once per blob and matched at once; boxing would only complicate callers.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum IngestStart {
    /// The blob is already stored (possibly just written by another process).
    Present,
    /// This caller is now the only writer of the digest.
    Writer(Ingest),
}

/// The one writer of a digest. Holds the digest's ingest lock for its lifetime; bytes go to
/// `ingest/<hex>.partial` and are hashed as they are written. Dropping it without
/// [`Ingest::commit`] keeps the partial file, so a later ingest resumes where this one
/// stopped.
pub struct Ingest {
    expected: Digest,
    expected_size: Option<u64>,
    file: File,
    hasher: Sha256Writer,
    partial: PathBuf,
    blob: PathBuf,
    blobs_dir: PathBuf,
    lock: Option<FileLock>,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest")
            .field("expected", &self.expected)
            .field("expected_size", &self.expected_size)
            .field("offset", &self.hasher.len())
            .field("partial", &self.partial)
            .finish()
    }
}

impl Store {
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.inner.blobs.join(d.hex())
    }

    /// Whether the blob is stored. Blobs only enter the store verified, so presence means
    /// valid content.
    pub fn has_blob(&self, d: &Digest) -> bool {
        fs::metadata(self.blob_path(d)).is_ok_and(|m| m.is_file())
    }

    pub fn blob_size(&self, d: &Digest) -> Option<u64> {
        fs::metadata(self.blob_path(d))
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len())
    }

    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>, StoreError> {
        let path = self.blob_path(d);
        fs::read(&path).map_err(|e| missing_or_io(d, &path, e))
    }

    pub fn open_blob(&self, d: &Digest) -> Result<File, StoreError> {
        let path = self.blob_path(d);
        File::open(&path).map_err(|e| missing_or_io(d, &path, e))
    }

    /// Stores a small blob (manifest, config) and returns its digest.
    pub fn write_blob(&self, data: &[u8]) -> Result<Digest, StoreError> {
        let digest = Digest::of(data);
        self.store_verified(data, &digest)?;
        Ok(digest)
    }

    /// Stores a small blob that must have digest `expected`; on mismatch nothing is stored.
    pub fn write_blob_expecting(&self, data: &[u8], expected: &Digest) -> Result<(), StoreError> {
        let actual = Digest::of(data);
        if &actual != expected {
            return Err(StoreError::DigestMismatch {
                expected: expected.clone(),
                actual,
            });
        }
        self.store_verified(data, expected)
    }

    fn store_verified(&self, data: &[u8], digest: &Digest) -> Result<(), StoreError> {
        if self.has_blob(digest) {
            return Ok(());
        }
        let tmp = self.tmp_path("blob");
        let dest = self.blob_path(digest);
        fsutil::write_atomic(&tmp, &dest, data, BLOB_MODE).map_err(io_at(&dest))
    }

    /// Starts writing the blob `expected`. Blocks while another thread or process is the
    /// writer of the same digest; then returns [`IngestStart::Present`] if that writer
    /// stored it, else a [`Ingest`] positioned after any partial data left by an earlier
    /// attempt.
    ///
    /// A thread must not hold two writers of the same digest at once (the second call would
    /// wait for the first forever). Callers that add content should hold a [`Store::lease`]
    /// until the image record that references it is stored, or GC may remove it.
    pub fn ingest(&self, expected: &Digest, expected_size: Option<u64>) -> Result<IngestStart, StoreError> {
        if self.has_blob(expected) {
            return Ok(IngestStart::Present);
        }
        let lock_path = self.inner.ingest.join(format!("{}.lock", expected.hex()));
        let lock = FileLock::acquire_removable(&lock_path, Mode::Exclusive, true)
            .map_err(io_at(&lock_path))?
            .ok_or_else(|| StoreError::io(&lock_path, io::ErrorKind::WouldBlock.into()))?;
        let partial = self.inner.ingest.join(format!("{}.partial", expected.hex()));
        if self.has_blob(expected) {
            // Stored meanwhile (by the writer we waited for, or by `write_blob`); a partial
            // left by some earlier attempt is of no use any more.
            let _ = fs::remove_file(&partial);
            lock.remove();
            return Ok(IngestStart::Present);
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&partial)
            .map_err(io_at(&partial))?;
        // Resume: re-hash what an earlier attempt left, unless it cannot be a prefix.
        let existing = file.metadata().map_err(io_at(&partial))?.len();
        let mut hasher = Sha256Writer::new();
        if expected_size.is_some_and(|max| existing > max) {
            file.set_len(0).map_err(io_at(&partial))?;
        } else if existing > 0 {
            file.seek(SeekFrom::Start(0)).map_err(io_at(&partial))?;
            io::copy(&mut (&mut file).take(existing), &mut hasher).map_err(io_at(&partial))?;
        }
        let offset = hasher.len();
        file.set_len(offset).map_err(io_at(&partial))?;
        file.seek(SeekFrom::Start(offset)).map_err(io_at(&partial))?;
        Ok(IngestStart::Writer(Ingest {
            expected: expected.clone(),
            expected_size,
            file,
            hasher,
            partial,
            blob: self.blob_path(expected),
            blobs_dir: self.inner.blobs.clone(),
            lock: Some(lock),
        }))
    }
}

fn missing_or_io(d: &Digest, path: &std::path::Path, e: io::Error) -> StoreError {
    if e.kind() == io::ErrorKind::NotFound {
        StoreError::MissingBlob(d.clone())
    } else {
        StoreError::io(path, e)
    }
}

impl Ingest {
    /// The digest being written.
    pub fn digest(&self) -> &Digest {
        &self.expected
    }

    /// Bytes already written (including those resumed from an earlier attempt).
    pub fn offset(&self) -> u64 {
        self.hasher.len()
    }

    /// Appends `data`. Refuses, writing nothing, if the total would exceed the expected size.
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        let before = self.hasher.len();
        let after = before + data.len() as u64;
        if let Some(max) = self.expected_size {
            if after > max {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{} is {max} bytes but more was received; the source is serving wrong data",
                        self.expected
                    ),
                ));
            }
        }
        if let Err(e) = self.file.write_all(data) {
            // Keep file and hasher in step: drop whatever part of `data` made it to disk.
            let _ = self.file.set_len(before);
            let _ = self.file.seek(SeekFrom::Start(before));
            return Err(e);
        }
        self.hasher.update(data);
        Ok(())
    }

    /// Discards everything written so far and starts again at offset 0.
    pub fn restart(&mut self) -> io::Result<()> {
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        self.hasher = Sha256Writer::new();
        Ok(())
    }

    /// Verifies size and digest and moves the blob into the store. On a digest mismatch
    /// the partial file is deleted and nothing is stored.
    pub fn commit(mut self) -> Result<(), StoreError> {
        let actual_size = self.hasher.len();
        if let Some(expected) = self.expected_size {
            if actual_size != expected {
                return Err(StoreError::SizeMismatch {
                    digest: self.expected.clone(),
                    expected,
                    actual: actual_size,
                });
            }
        }
        let actual = self.hasher.clone().finish();
        if actual != self.expected {
            let _ = fs::remove_file(&self.partial);
            return Err(StoreError::DigestMismatch {
                expected: self.expected.clone(),
                actual,
            });
        }
        let partial = self.partial.clone();
        self.file.sync_all().map_err(io_at(&partial))?;
        self.file
            .set_permissions(fs::Permissions::from_mode(BLOB_MODE))
            .map_err(io_at(&partial))?;
        fs::rename(&partial, &self.blob).map_err(io_at(&self.blob))?;
        fsutil::sync_dir(&self.blobs_dir).map_err(io_at(&self.blobs_dir))?;
        if let Some(lock) = self.lock.take() {
            lock.remove();
        }
        Ok(())
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        // The partial file stays for a later resume; only the lock goes.
        if let Some(lock) = self.lock.take() {
            lock.remove();
        }
    }
}
