//! Test harness for Berth's integration tests.
//!
//! Everything here drives real third-party software: `docker-registry`
//! (Distribution 2.8) for registries, `skopeo`/`buildah` for fixtures, the
//! `openssl` CLI for token signing. Missing tools are a hard failure
//! ([`tools::require`]), never a silent skip.

pub mod berth;
pub mod daemon;
pub mod fault;
pub mod fixtures;
pub mod guest;
pub mod http;
pub mod registry;
pub mod rootless;
mod token;
pub mod tools;

use std::net::{SocketAddr, TcpListener};

/// A currently free TCP port on 127.0.0.1 (bound and released; a tiny race
/// with other processes remains, callers that spawn servers retry).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

/// `127.0.0.1:port` as a socket address.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}
