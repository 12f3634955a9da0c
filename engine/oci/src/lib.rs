//! The image data model shared by every engine crate: digests, descriptors, manifests,
//! indexes, image configs and platforms, for both OCI and Docker v2 schema 2 media types.
//!
//! The image-spec types are oci-spec's (`spec`), wrapped thinly where Berth needs more:
//! descriptors, manifests and indexes whose digests are known to be sha256 ([`Digest`]),
//! image configs that keep the fields the spec does not name, and platform parsing and
//! matching.
//!
//! This crate does no I/O. It parses and serializes; callers keep the raw bytes of
//! anything they hash, because re-serializing JSON does not reproduce a digest.

mod config;
mod descriptor;
mod digest;
mod manifest;
pub mod media_type;
mod platform;

/// oci-spec's image types, for the fields the wrappers here do not cover.
pub use oci_spec::image as spec;

pub use config::{ContainerConfig, ImageConfig};
pub use descriptor::Descriptor;
pub use digest::{Digest, DigestError, Sha256Writer};
pub use manifest::{Index, Manifest, ManifestKind, ParseManifestError};
pub use platform::{Platform, PlatformError};
pub use spec::History;
