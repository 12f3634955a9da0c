//! Hijacked connections (`Connection: Upgrade, Upgrade: tcp` → 101) and container attach
//! (through the container's shim: stdin, output, resize; the json log for runs that are over).

use std::future::Future;
use std::os::fd::RawFd;
use std::time::Duration;

use berth_containers::{ContainerRecord, Status};
use berth_containers::{LogOptions, Stream};
use bytes::Bytes;
use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE, UPGRADE};
use hyper::upgrade::OnUpgrade;
use hyper::StatusCode;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
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

/// The raw fd of the unix-socket connection a request came on (set by the server).
#[derive(Clone, Copy)]
pub struct UnixConnFd(pub RawFd);

/// A connection upgrade that a request asked for (`Upgrade: tcp`).
pub struct Upgrade {
    on: OnUpgrade,
    unix_fd: Option<RawFd>,
}

/// Takes the connection upgrade out of a request that asks for one (`Upgrade: tcp`).
pub fn upgrade_of(req: &mut Req) -> Option<Upgrade> {
    wants_upgrade(req).then(|| Upgrade {
        unix_fd: req.extensions().get::<UnixConnFd>().map(|f| f.0),
        on: hyper::upgrade::on(req),
    })
}

nix::ioctl_read_bad!(unread_outq, nix::libc::TIOCOUTQ, nix::libc::c_int);

/// Waits (up to `limit`) until the client has read everything sent on a unix-socket
/// connection, i.e. the 101 response's headers.
///
/// Clients that read the response with a buffered reader and then switch to the raw socket
/// (the Docker SDK for Python's `exec_start()` and `attach()`) lose whatever arrived in the
/// same read as the headers. A fast process (an exec of `echo`) writes its output before
/// such a client has parsed them, so the stream waits for that first. On a unix socket the
/// sender's queue counts bytes until the receiver has read them (SIOCOUTQ).
async fn headers_read(fd: RawFd, limit: Duration) {
    let start = tokio::time::Instant::now();
    let deadline = start + limit;
    loop {
        let mut unread: nix::libc::c_int = 0;
        // SAFETY: TIOCOUTQ writes one int; fd is the connection's socket, which the
        // upgraded connection held by our caller keeps open.
        let done = unsafe { unread_outq(fd, &mut unread) }.map_or(true, |_| unread <= 0);
        if done || tokio::time::Instant::now() >= deadline {
            tracing::debug!(
                waited_us = start.elapsed().as_micros() as u64,
                unread,
                "hijack: headers read"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Answers 101 and hands the raw connection to `run` (reader: the client's stdin, writer:
/// the output). Old clients that do not upgrade get the output as the response body and
/// no input.
pub fn hijack<F, Fut>(upgrade: Option<Upgrade>, content_type: &'static str, run: F) -> Resp
where
    F: FnOnce(Option<Reader>, Writer) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    if let Some(Upgrade { on, unix_fd }) = upgrade {
        tokio::spawn(async move {
            match on.await {
                Ok(upgraded) => {
                    if let Some(fd) = unix_fd {
                        headers_read(fd, Duration::from_secs(2)).await;
                    }
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
    // Taken before the client hears 101: once it has, it may start the container at once,
    // and a status read after that would take this run for an earlier one (and skip
    // the replay of what it printed before the shim was reached).
    let attached_at = time::OffsetDateTime::now_utc();
    let (rec, initial) = blocking(move || {
        let rec = e.containers.find(&id)?;
        let initial = e.containers.status(&rec);
        Ok((rec, initial))
    })
    .await?;
    let want = Wanted {
        // Like dockerd, stdin is ignored for a container created without -i (OpenStdin).
        stdin: q.bool("stdin") && rec.config.open_stdin,
        stdout: q.bool("stdout"),
        stderr: q.bool("stderr"),
        logs: q.bool("logs"),
        stream: q.bool("stream"),
    };
    let detach_keys = match q.get("detachKeys") {
        Some(spec) => berth_containers::parse_detach_keys(spec).map_err(ApiError::bad_request)?,
        // docker's default: ctrl-p, ctrl-q.
        None => vec![16, 17],
    };
    let content_type = if rec.config.tty { RAW } else { MULTIPLEXED };
    // Held from now, before the client hears 101 and starts the container: a `--rm`
    // waiter removes the container only once this session has its output.
    let reading = engine.containers.hold_output(&rec.id);
    Ok(hijack(
        upgrade_of(&mut req),
        content_type,
        move |stdin, out| async move {
            let _reading = reading;
            let at = Before { attached_at, initial };
            attach_session(engine, rec, want, at, detach_keys, stdin, out).await
        },
    ))
}

#[derive(Clone, Copy)]
pub struct Wanted {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Replay the output so far.
    pub logs: bool,
    /// Keep streaming until the container exits.
    pub stream: bool,
}

/// The container as the attach request found it, before its client was answered.
struct Before {
    attached_at: time::OffsetDateTime,
    initial: Status,
}

/// Connects the client to the container's shim (its attach socket carries docker's wire
/// format both ways). A container attached before it starts (`docker run`) is connected
/// as soon as it runs, with the shim replaying what it printed meanwhile; one that already
/// ran and exited is served from its log.
async fn attach_session(
    engine: Shared,
    rec: ContainerRecord,
    want: Wanted,
    Before { attached_at, initial }: Before,
    detach_keys: Vec<u8>,
    stdin: Option<Reader>,
    mut out: Writer,
) {
    let was_created = matches!(initial, Status::Created);
    let mut replay = want.logs;
    if want.stream && !initial.is_running() {
        // Attach-then-start: wait for this run to begin.
        let before = match &initial {
            Status::Exited { finished_at, .. } => Some(finished_at.clone()),
            _ => None,
        };
        loop {
            if !engine.containers.paths(&rec.id).config().exists() {
                let _ = out.shutdown().await;
                return;
            }
            match engine.containers.status(&rec) {
                Status::Running { .. } | Status::Paused { .. } => break,
                Status::Exited { finished_at, .. } if before.as_deref() != Some(finished_at.as_str()) => {
                    break
                }
                _ => tokio::time::sleep(Duration::from_millis(2)).await,
            }
        }
        replay = true;
    }
    let request = berth_containers::AttachRequest {
        stdin: want.stdin,
        stdout: want.stdout,
        stderr: want.stderr,
        // `docker run -i` closes the container's stdin when its own input ends.
        stdin_once: want.stdin && was_created,
        detach_keys: if want.stdin { detach_keys } else { Vec::new() },
        replay,
        resize: None,
    };
    let e = engine.clone();
    let id = rec.id.clone();
    let connected = if want.stream {
        tokio::task::spawn_blocking(move || e.containers.attach(&id, &request).ok())
            .await
            .ok()
            .flatten()
    } else {
        None
    };
    match connected.and_then(|s| s.set_nonblocking(true).ok().map(|()| s)) {
        Some(sock) => match tokio::net::UnixStream::from_std(sock) {
            Ok(sock) => {
                if !relay(sock, stdin, want.stdin, &mut out).await {
                    // The shim ended without answering (reset before a byte came): what
                    // the run printed is in its log.
                    let (tx, rx) = mpsc::channel::<Bytes>(64);
                    log_streams(engine, rec, Wanted { stream: true, ..want }, attached_at, tx);
                    pump(rx, &mut out).await;
                }
            }
            Err(_) => {
                let _ = out.shutdown().await;
            }
        },
        None => {
            // The run is already over (or only the past output was asked for): its log.
            // What the client sends is read and dropped, so closing never resets it.
            let drain = stdin.map(|mut r| {
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut r, &mut tokio::io::sink()).await;
                })
            });
            let (tx, rx) = mpsc::channel::<Bytes>(64);
            log_streams(engine, rec, want, attached_at, tx);
            pump(rx, &mut out).await;
            if let Some(mut d) = drain {
                if tokio::time::timeout(Duration::from_secs(2), &mut d)
                    .await
                    .is_err()
                {
                    d.abort();
                }
            }
        }
    }
}

/// Copies shim → client until the shim closes (container exit, detach keys), and client →
/// shim (stdin) meanwhile; a client's half-close ends the container's stdin. False when
/// the shim reset the connection before sending anything (it ended without answering).
async fn relay(
    sock: tokio::net::UnixStream,
    stdin: Option<Reader>,
    forward_stdin: bool,
    out: &mut Writer,
) -> bool {
    let (mut from_shim, mut to_shim) = sock.into_split();
    let input = stdin.map(|mut r| {
        tokio::spawn(async move {
            if forward_stdin {
                let _ = tokio::io::copy(&mut r, &mut to_shim).await;
            }
            let _ = to_shim.shutdown().await;
            // The shim may be gone already: keep reading (and dropping) what the client
            // still sends until it closes, so closing never resets the connection.
            let _ = tokio::io::copy(&mut r, &mut tokio::io::sink()).await;
        })
    });
    let mut sent = 0u64;
    let mut buf = vec![0u8; 32 * 1024];
    let reset = loop {
        match from_shim.read(&mut buf).await {
            Ok(0) => break false,
            Ok(n) => {
                sent += n as u64;
                if out.write_all(&buf[..n]).await.is_err() || out.flush().await.is_err() {
                    break false;
                }
            }
            Err(_) => break true,
        }
    };
    if reset && sent == 0 {
        return false;
    }
    let _ = out.shutdown().await;
    if let Some(mut i) = input {
        // The client closes once it has seen the end of the output.
        if tokio::time::timeout(Duration::from_secs(2), &mut i)
            .await
            .is_err()
        {
            i.abort();
        }
    }
    true
}

/// A container's output from its json log, framed as docker frames it, sent on `tx`
/// (until the container exits when following): for runs the shim can no longer serve.
fn log_streams(
    engine: Shared,
    rec: ContainerRecord,
    want: Wanted,
    attached_at: time::OffsetDateTime,
    tx: mpsc::Sender<Bytes>,
) {
    tokio::task::spawn_blocking(move || {
        let svc = &engine.containers;
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
        let _ = svc.read_logs(&rec, opts, |line| {
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

/// Resizes a running container's terminal (through its shim, which owns the pty).
pub fn resize_container(engine: &Shared, rec: &ContainerRecord, rows: u16, cols: u16) -> Result<()> {
    if !rec.config.tty {
        return Err(ApiError::conflict(format!(
            "container {} has no terminal (created without -t)",
            rec.name
        )));
    }
    Ok(engine.containers.resize(&rec.id, rows, cols)?)
}
