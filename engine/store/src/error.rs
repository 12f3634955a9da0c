//! Errors of the store. Every message is one sentence that says what went wrong and what
//! to do next.

use std::io;
use std::path::{Path, PathBuf};

use berth_oci::Digest;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("content does not match its digest (expected {expected}, got {actual}), so nothing was stored — the download was corrupted or the source served wrong data; pull again")]
    DigestMismatch { expected: Digest, actual: Digest },

    #[error("content {digest} has {actual} bytes but {expected} were expected, so it was not stored — the transfer was cut short or the source is wrong; pull again")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },

    #[error("blob {0} is not in the store — pull the image again so that all of its content is downloaded")]
    MissingBlob(Digest),

    #[error("image ID prefix '{prefix}' matches more than one image — use more characters of the ID")]
    AmbiguousId { prefix: String },

    #[error(
        "'{prefix}' is not a valid image ID prefix — give one or more hex digits, optionally after 'sha256:'"
    )]
    InvalidIdPrefix { prefix: String },

    #[error("{what} was not found in the store — check the name with `berth images`")]
    NotFound { what: String },

    #[error("image record for {id} is invalid ({reason}) — this is a bug in the caller; report it")]
    InvalidRecord { id: Digest, reason: String },

    #[error("{path} is damaged ({reason}) — move it aside and pull the affected images again")]
    Corrupt { path: PathBuf, reason: String },

    #[error("the store at {path} is not writable — run as root or set BERTH_ROOT to a directory you own")]
    NotWritable { path: PathBuf },

    #[error(
        "cannot access {path} ({source}) — check that the disk is not full and the store directory is intact"
    )]
    Io { path: PathBuf, source: io::Error },
}

impl StoreError {
    /// Wraps an I/O error on `path`, turning permission problems into [`StoreError::NotWritable`].
    pub(crate) fn io(path: &Path, source: io::Error) -> StoreError {
        match source.kind() {
            io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => StoreError::NotWritable {
                path: path.to_path_buf(),
            },
            _ => StoreError::Io {
                path: path.to_path_buf(),
                source,
            },
        }
    }
}

/// `map_err` helper: `.map_err(io_at(&path))`.
pub(crate) fn io_at(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |e| StoreError::io(path, e)
}
