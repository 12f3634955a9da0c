//! Berth's engine inside this process: the Engine API server (`berth-api`) on the store
//! root's socket, used when no endpoint is configured and no `berth daemon` runs. The
//! window talks to it only through the Engine API, exactly as it would to a daemon. While a
//! `berth` command's own engine serves the root, the window uses that one, and this engine
//! takes the root over on the same socket when the command ends.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{ErrorKind, UserError};

/// The socket a separately started `berth daemon` listens on.
pub fn daemon_socket() -> PathBuf {
    berth_api::default_socket()
}

/// Where the store lives: `BERTH_ROOT` like the CLI, else the CLI's default, so the CLI
/// and the window see the same images and containers.
pub fn store_root() -> PathBuf {
    std::env::var_os("BERTH_ROOT")
        .filter(|r| !r.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(berth_api::default_root)
}

pub struct EmbeddedEngine {
    socket: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl EmbeddedEngine {
    pub async fn start() -> Result<EmbeddedEngine, UserError> {
        let shim_exe = crate::engine::berth_binary().ok_or_else(|| {
            UserError::new(
                ErrorKind::EngineUnreachable,
                "Berth's built-in engine needs the `berth` command, which was not found.",
                "Install the berth package (or set BERTH_BIN to the berth binary) and restart Berth.",
            )
        })?;
        let root = store_root();
        let socket = berth_api::root_socket(&root);
        let opts = berth_api::ServerOptions {
            root,
            socket: None,
            tcp: None,
            shim_exe,
            insecure_registries: Vec::new(),
            registry_mirrors: Vec::new(),
            host_ports: None,
            host_paths: berth_api::HostPaths::Native,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        // Waits for the root when another engine serves it; meanwhile its socket answers.
        let server = tokio::spawn(berth_api::serve(opts, shutdown));
        // The server opens the store and binds; wait for the socket or its error.
        for _ in 0..200 {
            if server.is_finished() {
                let detail = match server.await {
                    Ok(Ok(())) => "the engine stopped right after starting".to_string(),
                    Ok(Err(e)) => e.to_string(),
                    Err(e) => e.to_string(),
                };
                return Err(UserError::new(
                    ErrorKind::EngineUnreachable,
                    "Berth's built-in engine could not start.",
                    "Open the details; Berth usually needs to run as root (or under sudo) to run containers.",
                )
                .with_details(detail));
            }
            if tokio::net::UnixStream::connect(&socket).await.is_ok() {
                return Ok(EmbeddedEngine {
                    socket,
                    stop: Some(stop),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = stop.send(());
        Err(UserError::new(
            ErrorKind::EngineUnreachable,
            "Berth's built-in engine did not start within 10 seconds.",
            "Restart Berth; if it happens again, start `berth daemon` in a terminal to see why.",
        ))
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for EmbeddedEngine {
    fn drop(&mut self) {
        // Containers keep running: their shims supervise them, not this server.
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
