//! A client for the OCI distribution API (the registry HTTP API), written on reqwest.
//!
//! It takes registry hosts and repository names as plain strings and knows nothing about
//! local storage: blobs are written to a [`BlobSink`] and read from a [`BlobSource`].
//!
//! What it does for the caller:
//! - transport: HTTPS, with plain HTTP only for loopback and insecure registries (docker's
//!   rules), and registry mirrors for docker.io;
//! - auth: anonymous first, then Basic or the bearer-token flow from `WWW-Authenticate`,
//!   with tokens cached per scope and credentials from docker's `config.json`;
//! - robustness: retries with exponential backoff, resumed downloads (`Range`), chunked
//!   uploads and cross-repository mounts.

mod auth;
mod client;
pub mod credentials;
mod error;
mod fetch;
mod push;
mod resolver;
pub mod search;
pub mod unreachable;

pub use berth_oci::{Descriptor, Digest};
pub use client::{ClientConfig, RegistryClient};
pub use error::RegistryError;
pub use search::SearchResult;
pub use unreachable::{Cause, Mirrors, Unreachable};

/// Docker Hub's registry API.
pub const DOCKER_HUB_API: &str = "https://registry-1.docker.io/";

/// A manifest (or index) as the registry sent it.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    /// The exact bytes; their sha256 is `digest`.
    pub bytes: Vec<u8>,
    /// From `Content-Type`, or the document's `mediaType` when the header is generic.
    pub media_type: String,
    pub digest: Digest,
}

/// Where a downloaded blob goes. A sink may already hold a prefix of the blob (from an
/// interrupted download): `offset` says how much, and the download resumes there.
///
/// When a download resumes from a nonzero offset the client cannot hash the part it did
/// not see, so the sink must verify the digest of the complete content itself.
pub trait BlobSink {
    /// Bytes already held.
    fn offset(&self) -> u64;
    /// Appends bytes.
    fn write(&mut self, data: &[u8]) -> std::io::Result<()>;
    /// Discards everything held; the blob is then sent again from the start.
    fn restart(&mut self) -> std::io::Result<()>;
}

/// Where an uploaded blob comes from. It can be opened again, for retries.
pub trait BlobSource {
    fn open(&self) -> std::io::Result<Box<dyn std::io::Read + Send>>;
}
