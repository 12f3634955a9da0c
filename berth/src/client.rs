//! The one path from a command to an engine: the Docker Engine API, through bollard for
//! everything it models and through plain HTTP requests for the streams it does not
//! (build contexts, load, save, progress lines, Berth's own endpoints).
//!
//! Which engine: `BERTH_HOST` when set (a `berth daemon`, a VM's engine, any Docker-compatible
//! engine); else the machine `BERTH_MACHINE` names (on macOS and Windows, the default
//! machine); otherwise the engine serving the store root, found on the root's socket (the
//! desktop's embedded engine, `berth daemon`, or another command's); otherwise this command
//! starts the engine in-process, serves the root's socket while it runs, and stops it in
//! [`Client::finish`]. Every command is written once, against this client.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use bollard::Docker;
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;

use crate::cli::Global;

/// The API version a Berth engine speaks; clients of other engines negotiate.
pub const OWN_VERSION: &str = "1.43";
/// bollard's request timeout, in seconds: none in practice (`logs -f`, `wait`, builds).
const NO_TIMEOUT: u64 = 10 * 365 * 24 * 3600;

/// The store root this command works on: `--root`, `BERTH_ROOT`, else the default.
pub fn root(g: &Global) -> PathBuf {
    g.root.clone().unwrap_or_else(berth_api::default_root)
}

/// The engine to drive instead of the local one: `BERTH_HOST`, else a machine's
/// ([`machine_target`]).
pub fn target() -> Option<String> {
    std::env::var("BERTH_HOST")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| machine_target().map(|(_, socket)| format!("unix://{}", socket.display())))
}

/// A machine's engine and its socket: the one `BERTH_MACHINE` names; on hosts without a
/// native engine (macOS, Windows: code not run here) the default machine.
pub fn machine_target() -> Option<(String, PathBuf)> {
    let name = std::env::var("BERTH_MACHINE")
        .ok()
        .filter(|n| !n.trim().is_empty())
        .or_else(|| (!cfg!(target_os = "linux")).then(|| berth_machine::DEFAULT_NAME.to_string()))?;
    let socket = berth_machine::Machines::default_dir().paths(&name).api();
    Some((name, socket))
}

#[derive(Debug, Clone)]
enum Endpoint {
    Unix(PathBuf),
    Tcp(String),
}

/// The engine a command started for itself.
struct OwnEngine {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), berth_api::ApiError>>,
}

pub struct Client {
    pub docker: Docker,
    endpoint: Endpoint,
    version: String,
    own: Option<OwnEngine>,
    /// A connection held open to another command's engine for as long as this command
    /// runs: that engine keeps listening while a client is connected (up to 5 s), so the
    /// requests this command makes one connection at a time never find it gone between two.
    _hold: Option<tokio::net::UnixStream>,
}

/// A request body: none, bytes, or a stream of chunks (a build context, an archive).
pub type Body = BoxBody<Bytes, std::io::Error>;

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

/// A body fed by `produce` on a blocking thread through the writer it is given.
pub fn streamed<F>(produce: F) -> Body
where
    F: FnOnce(&mut dyn std::io::Write) -> std::io::Result<()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
    std::thread::spawn(move || {
        let mut w = ChannelWriter { tx: tx.clone() };
        if let Err(e) = produce(&mut w) {
            let _ = tx.blocking_send(Err(e));
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|item| (item.map(hyper::body::Frame::data), rx))
    });
    BodyExt::boxed(http_body_util::StreamBody::new(stream))
}

struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the engine stopped reading"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Client {
    pub async fn connect(g: &Global) -> anyhow::Result<Client> {
        if let (None, Some((name, socket))) = (std::env::var_os("BERTH_HOST"), machine_target()) {
            if !socket.exists() {
                bail!("machine '{name}' is not running: start it with 'berth machine start {name}'");
            }
        }
        if let Some(host) = target() {
            return Self::connect_remote(&host).await;
        }
        let root = root(g);
        // A socket in a directory another user controls may be anyone's engine.
        berth_api::checked_socket_dir()?;
        let socket = berth_api::root_socket(&root);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(hold) = held_connection(&socket).await {
                if !g.insecure_registries.is_empty() || !g.registry_mirrors.is_empty() {
                    eprintln!(
                        "WARNING: the engine already serving {} uses its own registry settings, so --insecure-registry and --registry-mirror are ignored; put them in {}",
                        root.display(),
                        root.join("daemon.json").display()
                    );
                }
                return Self::on_socket(socket, None, Some(hold));
            }
            let opts = berth_api::ServerOptions {
                root: root.clone(),
                socket: None,
                tcp: None,
                shim_exe: std::env::current_exe()
                    .context("cannot find the berth binary for the container shims")?,
                insecure_registries: g.insecure_registries.clone(),
                registry_mirrors: g.registry_mirrors.clone(),
                host_ports: None,
                host_paths: berth_api::HostPaths::Native,
            };
            match berth_api::Server::start(opts, berth_api::Wait::No).await {
                Ok(server) => {
                    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
                    let task = tokio::spawn(server.run(async move {
                        let _ = stopped.await;
                    }));
                    return Self::on_socket(socket, Some(OwnEngine { stop, task }), None);
                }
                // Another engine holds the root and is about to listen (or just stopped).
                Err(berth_api::ApiError::RootServed { .. }) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(berth_api::ApiError::RootServed { pid, .. }) => bail!(
                    "the engine serving {} (pid {pid}) does not answer on {} — stop that process (`kill {pid}`) and try again",
                    root.display(),
                    socket.display()
                ),
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn on_socket(
        socket: PathBuf,
        own: Option<OwnEngine>,
        hold: Option<tokio::net::UnixStream>,
    ) -> anyhow::Result<Client> {
        let docker = Docker::connect_with_unix(&socket.to_string_lossy(), NO_TIMEOUT, &version(OWN_VERSION))
            .with_context(|| format!("cannot reach the engine on {}", socket.display()))?;
        Ok(Client {
            docker,
            endpoint: Endpoint::Unix(socket),
            version: OWN_VERSION.into(),
            own,
            _hold: hold,
        })
    }

    async fn connect_remote(host: &str) -> anyhow::Result<Client> {
        let unreachable = || format!("cannot reach the engine at {host} — is `berth daemon` running there?");
        let (docker, endpoint) = if let Some(path) = host.strip_prefix("unix://") {
            let d = Docker::connect_with_unix(host, NO_TIMEOUT, &version(OWN_VERSION))
                .with_context(unreachable)?;
            (d, Endpoint::Unix(PathBuf::from(path)))
        } else if let Some(addr) = host
            .strip_prefix("tcp://")
            .or_else(|| host.strip_prefix("http://"))
        {
            let d = Docker::connect_with_http(host, NO_TIMEOUT, &version(OWN_VERSION))
                .with_context(unreachable)?;
            (d, Endpoint::Tcp(addr.trim_end_matches('/').to_string()))
        } else {
            bail!("BERTH_HOST '{host}' is not supported: use unix:///path/to/berth.sock or tcp://127.0.0.1:PORT");
        };
        let docker = docker.negotiate_version().await.map_err(|_| {
            anyhow!("the engine at {host} does not answer the Docker API — is `berth daemon` running there?")
        })?;
        let version = docker.client_version().to_string();
        Ok(Client {
            docker,
            endpoint,
            version,
            own: None,
            _hold: None,
        })
    }

    /// Stops the engine this command started, if it did: it stops listening first, so a
    /// command starting now serves the root itself; containers keep running.
    pub async fn finish(self) {
        let Client {
            docker, own, _hold, ..
        } = self;
        drop(_hold);
        drop(docker);
        if let Some(own) = own {
            let _ = own.stop.send(());
            let _ = own.task.await;
        }
    }

    /// One HTTP request on a connection of its own; a non-2xx answer becomes the engine's
    /// error sentence.
    pub async fn request(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &[(&str, String)],
        body: Body,
    ) -> anyhow::Result<Response<Incoming>> {
        let uri = format!("/v{}{path_and_query}", self.version);
        let mut req = Request::builder()
            .method(method)
            .uri(&uri)
            .header("Host", "berth");
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let req = req
            .body(body)
            .map_err(|e| anyhow!("invalid request {uri}: {e}"))?;
        let resp = match &self.endpoint {
            Endpoint::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path)
                    .await
                    .with_context(|| format!("cannot reach the engine on {}", path.display()))?;
                send(stream, req).await?
            }
            Endpoint::Tcp(addr) => {
                let stream = tokio::net::TcpStream::connect(addr)
                    .await
                    .with_context(|| format!("cannot reach the engine at {addr}"))?;
                send(stream, req).await?
            }
        };
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Err(anyhow!(error_body(status.as_u16(), &bytes)))
    }

    /// A GET answered with JSON.
    pub async fn get_json(&self, path_and_query: &str) -> anyhow::Result<serde_json::Value> {
        let resp = self.request(Method::GET, path_and_query, &[], empty()).await?;
        let bytes = resp.into_body().collect().await?.to_bytes();
        serde_json::from_slice(&bytes).context("the engine answered with invalid JSON")
    }

    /// A POST whose answer is JSON.
    pub async fn post_json(&self, path_and_query: &str, body: Body) -> anyhow::Result<serde_json::Value> {
        let resp = self
            .request(
                Method::POST,
                path_and_query,
                &[("Content-Type", "application/json".into())],
                body,
            )
            .await?;
        let bytes = resp.into_body().collect().await?.to_bytes();
        if bytes.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&bytes).context("the engine answered with invalid JSON")
    }
}

async fn send<S>(stream: S, req: Request<Body>) -> anyhow::Result<Response<Incoming>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("the engine closed the connection")?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender
        .send_request(req)
        .await
        .context("the engine closed the connection")
}

/// The sentence in docker's `{"message": …}` error body (the body itself if it is not JSON).
pub fn error_body(status: u16, bytes: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_string))
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(bytes).trim().to_string();
            if text.is_empty() {
                format!("the engine answered {status}")
            } else {
                text
            }
        })
}

/// Reads a stream of JSON lines (progress of a pull, push, build or load), calling `f` for
/// each; an `error` line ends it as an error.
pub async fn json_lines(
    resp: Response<Incoming>,
    mut f: impl FnMut(&serde_json::Value) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut body = resp.into_body().into_data_stream();
    let mut pending: Vec<u8> = Vec::new();
    let mut handle = |line: &[u8]| -> anyhow::Result<()> {
        let line = line.trim_ascii();
        if line.is_empty() {
            return Ok(());
        }
        let v: serde_json::Value =
            serde_json::from_slice(line).context("the engine sent a progress line that is not JSON")?;
        if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
            bail!("{e}");
        }
        f(&v)
    };
    while let Some(chunk) = body.next().await {
        pending.extend_from_slice(&chunk.context("the engine closed the stream")?);
        while let Some(i) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=i).collect();
            handle(&line)?;
        }
    }
    handle(&pending)
}

/// The engine's error (docker's `{"message": …}`) as one sentence.
pub fn api_error(e: bollard::errors::Error) -> anyhow::Error {
    use bollard::errors::Error;
    match e {
        Error::DockerResponseServerError { message, .. } => anyhow!(message),
        // An `error` line of a progress stream (pull, push).
        Error::DockerStreamError { error } => anyhow!(error),
        Error::DockerContainerWaitError { error, code } => {
            if error.is_empty() {
                anyhow!("the container exited with code {code}")
            } else {
                anyhow!(error)
            }
        }
        Error::HyperResponseError { .. } | Error::IOError { .. } => {
            anyhow!("the engine closed the connection ({e}) — check that it still runs and try again")
        }
        other => anyhow!("the engine request failed: {other}"),
    }
}

/// Whether a bollard error is the engine's 404.
pub fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }
    )
}

fn version(v: &str) -> bollard::ClientVersion {
    let (major, minor) = v.split_once('.').unwrap_or(("1", "43"));
    bollard::ClientVersion {
        major_version: major.parse().unwrap_or(1),
        minor_version: minor.parse().unwrap_or(43),
    }
}

/// Percent-encodes a query value.
pub fn q(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

/// A connection to the engine on `socket` that the engine has accepted and answered a
/// ping on, kept open. A connect alone can land in the backlog of an engine that is about
/// to stop listening (a command's engine whose command just ended); once it has answered,
/// it counts this connection and keeps listening while it is open (up to 5 s).
async fn held_connection(socket: &std::path::Path) -> Option<tokio::net::UnixStream> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::UnixStream::connect(socket).await.ok()?;
    s.write_all(b"GET /_ping HTTP/1.1\r\nHost: berth\r\n\r\n")
        .await
        .ok()?;
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    // The answer is small: a status line, a few headers and "OK".
    while !got.ends_with(b"OK") {
        let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 || got.len() > 4096 {
            return None;
        }
        got.extend_from_slice(&buf[..n]);
    }
    got.starts_with(b"HTTP/1.1 200").then_some(s)
}
