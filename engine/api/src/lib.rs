//! The Docker Engine API over a unix socket (`berth daemon`): the docker CLI, bollard and
//! the desktop app drive Berth's engine through it.
//!
//! Architecture invariants: only this crate knows the Docker JSON shapes (`docker_json`);
//! the API is the only way the desktop app reaches the engine. It keeps no cache of engine
//! state: every request reads the shared root, so the CLI and the daemon can run at once.

#![recursion_limit = "256"]

mod archive;
mod attach;
mod build;
mod containers;
mod create;
mod docker_json;
mod engine;
mod error;
mod exec;
mod http;
mod images;
mod networks;
mod root;
mod router;
mod server;
mod system;
mod volumes;

pub use berth_containers::copy_helper;
pub use berth_engine::{open_images, EngineConfig, OpenError, DOCKER_HUB_ENV};
pub use berth_host::docker_command;
/// "The registry can't be reached" and its causes: the sentences front ends show.
pub use berth_registry::unreachable;
pub use berth_units::HostPaths;
pub use docker_json::{
    container_inspect, container_summary, image_inspect, image_summaries, network as network_summary,
    volume as volume_summary,
};
pub use error::ApiError;
pub use root::{checked_socket_dir, root_socket, socket_dir, RootLock};
pub use server::{default_socket, serve, Server, ServerOptions, Wait};
/// Whether this process's engine is an ordinary user's (rootless): not the host's root,
/// even when it runs as root inside the user's own user namespace.
pub fn rootless() -> bool {
    !berth_host::privilege::host_root()
}

/// Where the store lives by default (`/var/lib/berth` for root, the user's data dir otherwise).
pub fn default_root() -> std::path::PathBuf {
    berth_store::Store::default_root()
}

/// The newest API version Berth implements; clients negotiate down to it.
pub const API_VERSION: &str = "1.43";
/// The oldest API version Berth accepts (docker's own minimum).
pub const MIN_API_VERSION: &str = "1.24";
