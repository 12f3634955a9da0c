//! The listener: a unix socket (mode 0660, stale sockets replaced, a live daemon refused),
//! optionally loopback TCP, one HTTP/1 connection task per client, graceful shutdown.

use std::future::Future;
use std::os::fd::RawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;

use crate::engine::{Engine, EngineConfig, Shared};
use crate::ApiError;

/// What `serve` listens on and which engine it serves.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub root: PathBuf,
    pub socket: PathBuf,
    /// An extra TCP listener; only loopback addresses are accepted (there is no TLS).
    pub tcp: Option<std::net::SocketAddr>,
    /// A binary whose `__shim STATE_DIR` subcommand runs a container's shim.
    pub shim_exe: PathBuf,
    pub insecure_registries: Vec<String>,
    pub registry_mirrors: Vec<String>,
}

/// `/run/berth/berth.sock` for root, `$XDG_RUNTIME_DIR/berth/berth.sock` otherwise.
pub fn default_socket() -> PathBuf {
    if rustix::process::geteuid().is_root() {
        PathBuf::from("/run/berth/berth.sock")
    } else {
        std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir)
            .join("berth")
            .join("berth.sock")
    }
}

/// Serves the Docker Engine API until `shutdown` completes. Containers keep running after
/// it returns: their shims supervise them.
pub async fn serve(
    opts: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ApiError> {
    let config = EngineConfig {
        root: opts.root.clone(),
        insecure_registries: opts.insecure_registries.clone(),
        registry_mirrors: opts.registry_mirrors.clone(),
    };
    let shim_exe = opts.shim_exe.clone();
    let engine: Shared = Arc::new(
        tokio::task::spawn_blocking(move || Engine::open(config, &shim_exe))
            .await
            .map_err(|e| ApiError::internal(format!("cannot open the engine: {e}")))??,
    );
    let unix = bind_unix(&opts.socket).await?;
    let tcp = match opts.tcp {
        Some(addr) if !addr.ip().is_loopback() => {
            return Err(ApiError::bad_request(format!(
                "refusing to listen on {addr}: the API has no TLS or authentication, so only loopback addresses (127.0.0.1, ::1) are allowed"
            )))
        }
        Some(addr) => {
            tracing::warn!(%addr, "listening on TCP: any local user can drive the engine through it");
            Some(TcpListener::bind(addr).await.map_err(|source| ApiError::Listen {
                path: addr.to_string(),
                source,
            })?)
        }
        None => None,
    };
    tracing::info!(socket = %opts.socket.display(), root = %opts.root.display(), "berth daemon listening");
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(crate::system::watch_exits(engine.clone(), stop_rx.clone()));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = unix.accept() => match accepted {
                Ok((stream, _)) => {
                    let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
                    spawn_connection(engine.clone(), stream, Some(fd), stop_rx.clone())
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            accepted = async { match &tcp { Some(l) => l.accept().await, None => std::future::pending().await } } => match accepted {
                Ok((stream, _)) => spawn_connection(engine.clone(), stream, None, stop_rx.clone()),
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    tracing::info!("shutting down: finishing open requests");
    let _ = stop_tx.send(true);
    drop(unix);
    let _ = std::fs::remove_file(&opts.socket);
    // Give in-flight requests a moment; streams (logs -f, events) are cut.
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(())
}

async fn bind_unix(path: &Path) -> Result<UnixListener, ApiError> {
    let listen_err = |source| ApiError::Listen {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(listen_err)?;
    }
    if path.exists() {
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            return Err(ApiError::AlreadyRunning(path.display().to_string()));
        }
        // Nobody answers: a socket left by a daemon that died.
        std::fs::remove_file(path).map_err(listen_err)?;
    }
    let listener = UnixListener::bind(path).map_err(listen_err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(listen_err)?;
    Ok(listener)
}

/// Serves one connection. `unix_fd` (the socket's fd, for a unix-socket connection) goes
/// into every request's extensions, for hijacked streams (see `attach::headers_read`).
fn spawn_connection<S>(engine: Shared, stream: S, unix_fd: Option<RawFd>, mut stop: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let service = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            let engine = engine.clone();
            if let Some(fd) = unix_fd {
                req.extensions_mut().insert(crate::attach::UnixConnFd(fd));
            }
            async move { Ok::<_, std::convert::Infallible>(crate::router::handle(engine, req).await) }
        });
        let conn = http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        tokio::pin!(conn);
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            }
            _ = stop.changed() => {
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(Duration::from_secs(2), conn).await;
            }
        }
    });
}
