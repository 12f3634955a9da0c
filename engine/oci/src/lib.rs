//! The image data model shared by every engine crate: digests, descriptors, manifests,
//! indexes, image configs and platforms, for both OCI and Docker v2 schema 2 media types.
//!
//! This crate does no I/O. It parses and serializes; callers keep the raw bytes of
//! anything they hash, because re-serializing JSON does not reproduce a digest.

mod config;
mod digest;
mod manifest;
pub mod media_type;
mod platform;

pub use config::{ContainerConfig, HistoryEntry, ImageConfig, RootFs};
pub use digest::{Digest, DigestError, Sha256Writer};
pub use manifest::{Descriptor, Index, Manifest, ManifestKind, ParseManifestError};
pub use platform::{Platform, PlatformError};
