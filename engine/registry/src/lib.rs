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
pub mod unreachable;

use std::path::PathBuf;
use std::time::Duration;

pub use berth_oci::{Descriptor, Digest};
pub use client::RegistryClient;
pub use error::RegistryError;
pub use unreachable::{Cause, Mirrors, Unreachable};

/// Docker Hub's registry API.
pub const DOCKER_HUB_API: &str = "https://registry-1.docker.io/";

/// Settings of a [`RegistryClient`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Registries (`host[:port]`, or CIDRs like `10.0.0.0/8`) that may be reached over plain
    /// HTTP or HTTPS with an unverified certificate. Loopback addresses always may.
    pub insecure_registries: Vec<String>,
    /// Mirrors for docker.io (e.g. `http://127.0.0.1:5000`), tried in order before Docker
    /// Hub itself for pulls, like dockerd's `registry-mirrors`.
    pub mirrors: Vec<String>,
    /// Where Docker Hub's API is (`https://registry-1.docker.io/`). Errors still call it
    /// Docker Hub; tests point it at an unreachable address.
    pub docker_hub: String,
    /// Docker's `config.json` to take logins from; `None` means use no stored logins.
    /// Defaults to `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`.
    pub docker_config: Option<PathBuf>,
    /// How many times a failed request is tried again (connection errors, 5xx, 429, cut
    /// transfers). Downloads that make progress do not use up retries.
    pub max_retries: u32,
    /// Delay before the first retry; it doubles with each further one.
    pub retry_delay: Duration,
    pub user_agent: String,
    /// How long connecting (TCP, proxy and TLS handshake) may take.
    pub connect_timeout: Duration,
    /// How long the registry may stay silent while we wait for (part of) an answer.
    pub read_timeout: Duration,
    /// Blobs larger than this are pushed in chunks (PATCH); smaller ones in one PUT.
    /// Set it to 0 to push every blob in chunks.
    pub chunk_threshold: u64,
    /// Size of each PATCH of a chunked upload.
    pub chunk_size: u64,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            insecure_registries: Vec::new(),
            mirrors: Vec::new(),
            docker_hub: DOCKER_HUB_API.to_string(),
            docker_config: credentials::default_path(),
            max_retries: 4,
            retry_delay: Duration::from_millis(200),
            user_agent: format!("berth/{}", env!("CARGO_PKG_VERSION")),
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(120),
            chunk_threshold: 64 << 20,
            chunk_size: 16 << 20,
        }
    }
}

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
