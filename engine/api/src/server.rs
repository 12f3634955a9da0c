//! The listener: a unix socket (mode 0660, stale sockets replaced, a live daemon refused),
//! optionally loopback TCP, one HTTP/1 connection task per client, graceful shutdown.

use std::future::Future;
use std::os::fd::RawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;

use berth_engine::{Engine, EngineConfig};

use crate::engine::{Served, Shared};
use crate::root::RootLock;
use crate::ApiError;

/// What the server listens on and which engine it serves.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub root: PathBuf,
    /// A socket to serve besides the root's own ([`crate::root_socket`]): the daemon's
    /// well-known `/run/berth/berth.sock` that docker clients are pointed at.
    pub socket: Option<PathBuf>,
    /// An extra TCP listener; only loopback addresses are accepted (there is no TLS).
    pub tcp: Option<std::net::SocketAddr>,
    /// A binary whose `__shim --root ROOT DIR` subcommand runs a container's supervisor
    /// (`berth_containers::supervise`).
    pub shim_exe: PathBuf,
    pub insecure_registries: Vec<String>,
    pub registry_mirrors: Vec<String>,
    /// Another host that publishes the engine's ports too (a machine's guest engine).
    pub host_ports: Option<std::sync::Arc<dyn berth_containers::HostPorts>>,
    /// How clients spell host paths: [`berth_units::HostPaths::Windows`] for the guest
    /// engine of a machine on a Windows host, `Native` everywhere else.
    pub host_paths: berth_units::HostPaths,
}

/// `/run/berth/berth.sock` for root, `$XDG_RUNTIME_DIR/berth/berth.sock` otherwise, or
/// `/tmp/berth-UID/berth.sock` without `XDG_RUNTIME_DIR`.
pub fn default_socket() -> PathBuf {
    crate::root::socket_dir().join("berth.sock")
}

/// How long a stopping engine keeps serving clients that still have connections open.
const LINGER: Duration = Duration::from_secs(5);

/// Whether [`Server::start`] waits for an engine already serving the root to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Wait (a daemon or the desktop starting while a command's engine serves the root).
    Yes,
    /// Fail with [`ApiError::RootServed`] (a command, which then uses that engine).
    No,
}

/// An engine that holds its root and listens; [`Server::run`] serves it.
pub struct Server {
    engine: Shared,
    sockets: Vec<(PathBuf, UnixListener)>,
    tcp: Option<TcpListener>,
    root_socket: PathBuf,
    /// A daemon's or the desktop's engine ([`Wait::Yes`]), not a command's.
    long_lived: bool,
    _lock: RootLock,
}

impl Server {
    /// Binds the extra socket (refusing one a live daemon answers on), takes the root
    /// (see [`Wait`]), opens the engine and listens on the root's socket.
    pub async fn start(opts: ServerOptions, wait: Wait) -> Result<Server, ApiError> {
        // Before anything is bound in it (the daemon's default socket is there too), so it
        // is made private rather than by `create_dir_all` with the umask's mode.
        crate::root::checked_socket_dir()?;
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
        let mut sockets = Vec::new();
        if let Some(path) = &opts.socket {
            sockets.push((path.clone(), bind_unix(path).await?));
        }
        let lock = take_root(&opts.root, wait).await?;
        let root_socket = crate::root::root_socket(&opts.root);
        // The root is ours, so a socket there is one a dead engine left.
        let _ = std::fs::remove_file(&root_socket);
        let config = EngineConfig {
            root: opts.root.clone(),
            insecure_registries: opts.insecure_registries.clone(),
            registry_mirrors: opts.registry_mirrors.clone(),
            host_ports: opts.host_ports.clone(),
        };
        let shim_exe = opts.shim_exe.clone();
        let engine: Shared = Arc::new(Served::new(
            tokio::task::spawn_blocking(move || Engine::open(config, &shim_exe))
                .await
                .map_err(|e| ApiError::internal(format!("cannot open the engine: {e}")))??,
            opts.host_paths,
        ));
        sockets.push((root_socket.clone(), bind_unix(&root_socket).await?));
        Ok(Server {
            engine,
            sockets,
            tcp,
            root_socket,
            long_lived: wait == Wait::Yes,
            _lock: lock,
        })
    }

    /// Holds every request that may change something (any method but GET and HEAD) until
    /// `setup` says `true` or its sender is gone: a machine's guest engine answers while
    /// its system is still loading what containers need. Reads are answered at once.
    pub fn hold_changes_until(mut self, setup: watch::Receiver<bool>) -> Server {
        match Arc::get_mut(&mut self.engine) {
            Some(served) => served.hold_until(setup),
            // Only before `run`, which shares the engine, is it this server's alone.
            None => tracing::warn!("the engine is already shared: requests are not held for the setup"),
        }
        self
    }

    /// The socket every client of this root finds the engine on.
    pub fn root_socket(&self) -> &Path {
        &self.root_socket
    }

    /// Serves until `shutdown` completes. Then it stops listening first (so a newcomer
    /// starts its own engine), lets open requests finish for up to two seconds, and gives
    /// the root up. Containers keep running: their shims supervise them.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), ApiError> {
        let Server {
            engine,
            sockets,
            tcp,
            root_socket,
            long_lived,
            _lock,
        } = self;
        tracing::info!(socket = %root_socket.display(), "berth engine listening");
        let (stop_tx, stop_rx) = watch::channel(false);
        // Every connection holds a sender: when all are gone, recv() ends.
        let (open_tx, mut open_rx) = tokio::sync::mpsc::channel::<()>(1);
        // Exits nobody waited for become `die` events: a thread of its own (it sleeps on
        // the runs' processes), told to end when the server does. A command's engine,
        // usually gone within milliseconds, starts it only once someone follows the events.
        let watching = Arc::new(AtomicBool::new(true));
        {
            let (engine, watching) = (engine.clone(), watching.clone());
            std::thread::spawn(move || {
                engine
                    .containers
                    .watch_exits(&|| !watching.load(Ordering::Relaxed), &|| {
                        long_lived || engine.events.subscribers() > 0
                    })
            });
        }
        // Set (under its lock) when the engine decides to stop: from then on an accepted
        // connection is closed unanswered, so every connection that was answered is one
        // the decision counted (a client that pinged this engine is never cut off).
        let closing = Arc::new(std::sync::Mutex::new(false));
        let mut accepting = Vec::new();
        let mut paths = Vec::new();
        for (path, listener) in sockets {
            paths.push(path);
            let (engine, stop, open) = (engine.clone(), stop_rx.clone(), open_tx.clone());
            accepting.push(tokio::spawn(accept_loop(
                Listener::Unix(listener),
                engine,
                stop,
                open,
                closing.clone(),
            )));
        }
        if let Some(listener) = tcp {
            let (engine, stop, open) = (engine.clone(), stop_rx.clone(), open_tx.clone());
            accepting.push(tokio::spawn(accept_loop(
                Listener::Tcp(listener),
                engine,
                stop,
                open,
                closing.clone(),
            )));
        }
        shutdown.await;
        // Other clients may be in the middle of their commands on this engine (a command's
        // in-process engine serves everyone on the root): keep serving while any
        // connection is open, for up to LINGER, so they are not cut off. Each accept loop
        // and this function hold a sender; every open connection holds one more.
        let own = 1 + accepting.len();
        let lingering = std::time::Instant::now();
        loop {
            {
                let mut closing = closing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if open_tx.strong_count() <= own || lingering.elapsed() >= LINGER {
                    *closing = true;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tracing::info!("shutting down: finishing open requests");
        let _ = stop_tx.send(true);
        watching.store(false, Ordering::Relaxed);
        for task in accepting {
            let _ = task.await;
        }
        for path in paths {
            let _ = std::fs::remove_file(&path);
        }
        drop(open_tx);
        let _ = tokio::time::timeout(Duration::from_secs(2), open_rx.recv()).await;
        Ok(())
    }
}

/// A listener of either kind; unix connections carry their fd (for hijacked streams).
enum Listener {
    Unix(UnixListener),
    Tcp(TcpListener),
}

async fn accept_loop(
    listener: Listener,
    engine: Shared,
    mut stop: watch::Receiver<bool>,
    open: tokio::sync::mpsc::Sender<()>,
    closing: Arc<std::sync::Mutex<bool>>,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => return,
            a = accept(&listener) => a,
        };
        let failed = {
            let closing = closing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if *closing {
                // Unanswered: the client finds the next engine of the root.
                return;
            }
            match accepted {
                Ok(Accepted::Unix(s)) => {
                    let fd = std::os::fd::AsRawFd::as_raw_fd(&s);
                    spawn_connection(engine.clone(), s, Some(fd), stop.clone(), open.clone());
                    None
                }
                Ok(Accepted::Tcp(s)) => {
                    spawn_connection(engine.clone(), s, None, stop.clone(), open.clone());
                    None
                }
                Err(e) => Some(e),
            }
        };
        if let Some(e) = failed {
            accept_failed(e).await;
        }
    }
}

enum Accepted {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream),
}

async fn accept(listener: &Listener) -> std::io::Result<Accepted> {
    match listener {
        Listener::Unix(l) => l.accept().await.map(|(s, _)| Accepted::Unix(s)),
        Listener::Tcp(l) => l.accept().await.map(|(s, _)| Accepted::Tcp(s)),
    }
}

async fn accept_failed(e: std::io::Error) {
    tracing::warn!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// Takes the root's lock, waiting for it (with a log line naming who holds it) or not.
async fn take_root(root: &Path, wait: Wait) -> Result<RootLock, ApiError> {
    let lock_err = |source| ApiError::Listen {
        path: root.join("engine.lock").display().to_string(),
        source,
    };
    if let Some(lock) = RootLock::try_acquire(root).map_err(lock_err)? {
        return Ok(lock);
    }
    let pid = RootLock::holder(root).unwrap_or(0);
    if wait == Wait::No {
        return Err(ApiError::RootServed {
            root: root.display().to_string(),
            pid,
        });
    }
    tracing::info!(pid, root = %root.display(), "another engine serves this root; waiting for it to stop");
    let root = root.to_path_buf();
    tokio::task::spawn_blocking(move || RootLock::acquire(&root))
        .await
        .map_err(|e| ApiError::internal(format!("cannot wait for the root: {e}")))?
        .map_err(lock_err)
}

/// Serves the Docker Engine API until `shutdown` completes, waiting first for any engine
/// already serving the root. Containers keep running after it returns.
pub async fn serve(
    opts: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ApiError> {
    Server::start(opts, Wait::Yes).await?.run(shutdown).await
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
fn spawn_connection<S>(
    engine: Shared,
    stream: S,
    unix_fd: Option<RawFd>,
    mut stop: watch::Receiver<bool>,
    open: tokio::sync::mpsc::Sender<()>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let _open = open;
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
