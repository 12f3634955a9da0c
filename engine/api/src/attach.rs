//! Hijacked connections (`Connection: Upgrade, Upgrade: tcp` → 101) and container attach.
//!
//! Attach streams a container's output by following its json log. The seam where the
//! shim's attach socket (stdin, and resize) replaces this is [`container_streams`].

use std::future::Future;
use std::time::Duration;

use berth_containers::{ContainerRecord, Status};
use berth_runtime::logs::{LogOptions, Stream};
use bytes::Bytes;
use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE, UPGRADE};
use hyper::upgrade::OnUpgrade;
use hyper::StatusCode;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::containers::{frame, MULTIPLEXED, RAW};
use crate::engine::Shared;
use crate::http::{self, blocking, Query, Req, Resp, Result};
use crate::ApiError;

pub type Reader = Box<dyn AsyncRead + Send + Unpin>;
pub type Writer = Box<dyn AsyncWrite + Send + Unpin>;

fn wants_upgrade(req: &Req) -> bool {
    let has = |name, want: &str| {
        req.headers()
            .get_all(name)
            .iter()
            .any(|v| v.to_str().is_ok_and(|s| s.to_ascii_lowercase().contains(want)))
    };
    has(CONNECTION, "upgrade") && has(UPGRADE, "tcp")
}

/// Takes the connection upgrade out of a request that asks for one (`Upgrade: tcp`).
pub fn upgrade_of(req: &mut Req) -> Option<OnUpgrade> {
    wants_upgrade(req).then(|| hyper::upgrade::on(req))
}

/// Answers 101 and hands the raw connection to `run` (reader: the client's stdin, writer:
/// the output). Old clients that do not upgrade get the output as the response body and
/// no input.
pub fn hijack<F, Fut>(upgrade: Option<OnUpgrade>, content_type: &'static str, run: F) -> Resp
where
    F: FnOnce(Option<Reader>, Writer) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    if let Some(on_upgrade) = upgrade {
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let (r, w) = tokio::io::split(TokioIo::new(upgraded));
                    run(Some(Box::new(r)), Box::new(w)).await;
                }
                Err(e) => tracing::debug!(error = %e, "upgrade failed"),
            }
        });
        let mut resp = http::empty(StatusCode::SWITCHING_PROTOCOLS);
        let h = resp.headers_mut();
        h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(UPGRADE, HeaderValue::from_static("tcp"));
        h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        return resp;
    }
    let (tx, resp) = http::stream(StatusCode::OK, content_type);
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let mut theirs = theirs;
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match theirs.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
    tokio::spawn(run(None, Box::new(ours)));
    resp
}

/// Copies chunks from `rx` to `w` until the channel closes or the client goes; then closes
/// the write side so the client sees the end of the stream.
pub async fn pump(mut rx: mpsc::Receiver<Bytes>, w: &mut Writer) {
    while let Some(b) = rx.recv().await {
        if w.write_all(&b).await.is_err() || w.flush().await.is_err() {
            break;
        }
    }
    let _ = w.shutdown().await;
}

pub async fn attach(engine: Shared, mut req: Req, id: &str, q: Query) -> Result<Resp> {
    let id = id.to_string();
    let e = engine.clone();
    let rec = blocking(move || Ok(e.containers.find(&id)?)).await?;
    // Like dockerd, stdin is ignored for a container created without -i (OpenStdin).
    if q.bool("stdin") && rec.config.open_stdin {
        return Err(ApiError::not_implemented(
            "attaching stdin to a container is not supported yet — run it without -i (output still streams), or use `docker exec -i`",
        ));
    }
    let want = Wanted {
        stdout: q.bool("stdout"),
        stderr: q.bool("stderr"),
        logs: q.bool("logs"),
        stream: q.bool("stream"),
    };
    let content_type = if rec.config.tty { RAW } else { MULTIPLEXED };
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    container_streams(engine, rec, want, tx);
    Ok(hijack(
        upgrade_of(&mut req),
        content_type,
        move |_stdin, mut out| async move {
            pump(rx, &mut out).await;
        },
    ))
}

#[derive(Clone, Copy)]
pub struct Wanted {
    pub stdout: bool,
    pub stderr: bool,
    /// Replay the output so far.
    pub logs: bool,
    /// Keep streaming until the container exits.
    pub stream: bool,
}

/// The seam: a container's output, framed as docker frames it, sent on `tx` until the
/// container exits. Today it follows the json log; the shim's attach socket will replace
/// this (and add stdin).
fn container_streams(engine: Shared, rec: ContainerRecord, want: Wanted, tx: mpsc::Sender<Bytes>) {
    let attached_at = time::OffsetDateTime::now_utc();
    tokio::task::spawn_blocking(move || {
        let svc = &engine.containers;
        if want.stream {
            // An exited container being started again (`start -a`): wait for the new run, so
            // the old exit record does not end the stream at once.
            if let Status::Exited { finished_at, .. } = svc.status(&rec) {
                loop {
                    if tx.is_closed() || !svc.paths(&rec.id).config().exists() {
                        return;
                    }
                    match svc.status(&rec) {
                        Status::Exited { finished_at: f, .. } if f == finished_at => {
                            std::thread::sleep(Duration::from_millis(5))
                        }
                        _ => break,
                    }
                }
            }
        }
        let opts = LogOptions {
            tail: None,
            since: if want.logs { None } else { Some(attached_at) },
            until: None,
            timestamps: false,
            follow: want.stream,
            exit_file: Some(svc.paths(&rec.id).shim().join("exit.json")),
        };
        if !want.logs && !want.stream {
            return;
        }
        let tty = rec.config.tty;
        let _ = berth_runtime::logs::read(&svc.log_path(&rec), opts, |line| {
            let is_err = line.stream == Stream::Stderr;
            if (is_err && !want.stderr) || (!is_err && !want.stdout) {
                return !tx.is_closed();
            }
            let bytes = if tty {
                Bytes::from(line.log.into_bytes())
            } else {
                frame(if is_err { 2 } else { 1 }, line.log.as_bytes())
            };
            tx.blocking_send(bytes).is_ok()
        });
    });
}

/// Resizing a container's own terminal needs the shim's attach socket (which owns the pty).
pub fn resize_container(_engine: &Shared, rec: &ContainerRecord, _rows: u16, _cols: u16) -> Result<()> {
    if !rec.config.tty {
        return Err(ApiError::conflict(format!(
            "container {} has no terminal (created without -t)",
            rec.name
        )));
    }
    Err(ApiError::not_implemented(
        "resizing a container's terminal is not supported yet (exec sessions can be resized)",
    ))
}
