//! Berth's engine inside this process: the Engine API server (`berth-api`) on a private
//! socket, used when no endpoint is configured and no `berth daemon` runs. The window
//! still talks to it only through the Engine API, exactly as it would to a daemon.

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
        .unwrap_or_else(berth_store::Store::default_root)
}

/// A socket only this process uses, beside where the daemon's would be. Sockets left by
/// earlier windows that were killed (their PID is gone) are removed on the way.
fn private_socket() -> PathBuf {
    let dir = daemon_socket()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix("desktop-"))
            .and_then(|n| n.strip_suffix(".sock"));
        if let Some(pid) = pid {
            if !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    dir.join(format!("desktop-{}.sock", std::process::id()))
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
        let socket = private_socket();
        let opts = berth_api::ServerOptions {
            root: store_root(),
            socket: socket.clone(),
            tcp: None,
            shim_exe,
            insecure_registries: Vec::new(),
            registry_mirrors: Vec::new(),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
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
