//! Which Docker-compatible endpoint the window talks to, and the bollard client for it.
//!
//! Order: the endpoint chosen in Settings, then `BERTH_HOST` / `DOCKER_HOST`, then the
//! engine Settings → Engine chose: Built-in (a running `berth daemon` on its default
//! socket, else Berth's engine started inside this process on the store root's socket) or
//! Virtual machine (the machine's socket, once it runs). Whatever is chosen, the UI only
//! ever reaches it through the Engine API.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;

use crate::dto::EndpointKind;
use crate::embedded::EmbeddedEngine;
use crate::error::{ErrorKind, UserError};
use crate::machine::MachineControl;
use crate::settings::EngineChoice;

/// Seconds bollard waits for an answer; pulls and builds stream, so this bounds silence.
const TIMEOUT_SECS: u64 = 600;

pub struct Engine {
    pub docker: Docker,
    pub kind: EndpointKind,
    pub endpoint: String,
    /// Kept alive while connected: dropping it stops the in-process API server.
    _embedded: Option<EmbeddedEngine>,
}

/// The endpoint the environment asks for, if any.
pub fn endpoint_from_env() -> Option<String> {
    ["BERTH_HOST", "DOCKER_HOST"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .find(|v| !v.trim().is_empty())
}

/// A client for `unix:///path`, a bare socket path, `tcp://host:port` or `http://host:port`.
pub fn client_for(endpoint: &str) -> Result<Docker, UserError> {
    let endpoint = endpoint.trim();
    let bad = |e: bollard::errors::Error| {
        UserError::invalid(
            format!("Berth cannot use the endpoint {endpoint}."),
            "Use unix:///path/to/docker.sock or tcp://host:port.",
        )
        .with_details(e.to_string())
    };
    if let Some(path) = endpoint.strip_prefix("unix://") {
        Docker::connect_with_unix(path, TIMEOUT_SECS, bollard::API_DEFAULT_VERSION).map_err(bad)
    } else if endpoint.starts_with('/') {
        Docker::connect_with_unix(endpoint, TIMEOUT_SECS, bollard::API_DEFAULT_VERSION).map_err(bad)
    } else if let Some(rest) = endpoint.strip_prefix("tcp://") {
        Docker::connect_with_http(
            &format!("http://{rest}"),
            TIMEOUT_SECS,
            bollard::API_DEFAULT_VERSION,
        )
        .map_err(bad)
    } else if endpoint.starts_with("http://") {
        Docker::connect_with_http(endpoint, TIMEOUT_SECS, bollard::API_DEFAULT_VERSION).map_err(bad)
    } else {
        Err(UserError::invalid(
            format!("Berth does not understand the endpoint \"{endpoint}\"."),
            "Use unix:///path/to/docker.sock or tcp://host:port.",
        ))
    }
}

/// Check the endpoint answers, then speak the highest API version both sides know
/// (bollard's default is newer than Berth's 1.43 and podman's 1.41).
async fn ping(docker: Docker, endpoint: &str) -> Result<Docker, UserError> {
    match tokio::time::timeout(Duration::from_secs(5), docker.ping()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(UserError::unreachable(endpoint, e.to_string())),
        Err(_) => return Err(UserError::unreachable(endpoint, "no answer to _ping within 5 s")),
    }
    match tokio::time::timeout(Duration::from_secs(5), docker.clone().negotiate_version()).await {
        Ok(Ok(negotiated)) => Ok(negotiated),
        _ => Ok(docker),
    }
}

impl Engine {
    /// Connect to an explicit endpoint (environment or Settings).
    pub async fn external(endpoint: &str) -> Result<Engine, UserError> {
        let docker = ping(client_for(endpoint)?, endpoint).await?;
        Ok(Engine {
            docker,
            kind: EndpointKind::External,
            endpoint: endpoint.to_string(),
            _embedded: None,
        })
    }

    /// The default: a running `berth daemon`, else the engine in-process.
    pub async fn local() -> Result<Engine, UserError> {
        // The CLI's and the daemon's check: a socket in a directory another user controls
        // may be anyone's engine.
        berth_api::checked_socket_dir().map_err(|e| {
            UserError::new(
                ErrorKind::EngineUnreachable,
                e.to_string(),
                "Restart Berth once the directory is fixed.",
            )
        })?;
        let daemon = crate::embedded::daemon_socket();
        if daemon.exists() {
            let endpoint = unix_endpoint(&daemon);
            if let Ok(docker) = client_for(&endpoint) {
                if let Ok(docker) = ping(docker, &endpoint).await {
                    return Ok(Engine {
                        docker,
                        kind: EndpointKind::Daemon,
                        endpoint,
                        _embedded: None,
                    });
                }
            }
        }
        let embedded = EmbeddedEngine::start().await?;
        let endpoint = unix_endpoint(embedded.socket());
        let docker = ping(client_for(&endpoint)?, &endpoint).await?;
        Ok(Engine {
            docker,
            kind: EndpointKind::Embedded,
            endpoint,
            _embedded: Some(embedded),
        })
    }

    /// Berth's engine in its virtual machine, on the machine's socket; the machine itself
    /// is started from Settings → Engine, never here.
    pub async fn machine(machine: &MachineControl) -> Result<Engine, UserError> {
        if !machine.serving() {
            return Err(crate::machine::not_running());
        }
        let endpoint = unix_endpoint(&machine.socket());
        let docker = ping(client_for(&endpoint)?, &endpoint).await?;
        Ok(Engine {
            docker,
            kind: EndpointKind::Machine,
            endpoint,
            _embedded: None,
        })
    }

    /// An endpoint (Settings, then the environment) first, then the chosen engine.
    pub async fn connect(
        preferred: Option<String>,
        choice: EngineChoice,
        machine: &MachineControl,
    ) -> Result<Engine, UserError> {
        match preferred.or_else(endpoint_from_env) {
            Some(endpoint) => Engine::external(&endpoint).await,
            None => match choice {
                EngineChoice::BuiltIn => Engine::local().await,
                EngineChoice::Machine => Engine::machine(machine).await,
            },
        }
    }
}

fn unix_endpoint(path: &Path) -> String {
    format!("unix://{}", path.display())
}

/// Where the `berth` CLI binary is: `BERTH_BIN`, next to this executable, or on PATH.
pub fn berth_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BERTH_BIN") {
        return Some(PathBuf::from(p));
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            let sibling = dir.join("berth");
            if sibling.is_file() {
                return Some(sibling);
            }
        }
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("berth"))
            .find(|p| p.is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_parsed_like_docker_host() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("engine.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
        assert!(client_for(&format!("unix://{}", sock.display())).is_ok());
        assert!(client_for(&sock.display().to_string()).is_ok());
        assert!(client_for("tcp://127.0.0.1:2375").is_ok());
        let e = client_for("ftp://x").err().map(|e| e.kind);
        assert_eq!(e, Some(crate::error::ErrorKind::InvalidInput));
    }
}
