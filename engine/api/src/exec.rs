//! Exec sessions: create, start (hijacked, with pipes or a pty from the container's own
//! devpts), resize, inspect. Sessions live only in the daemon, like dockerd's.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_containers::ExecOptions;
use bytes::Bytes;
use hyper::StatusCode;
use serde::Deserialize;
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use crate::attach::{hijack, pump, upgrade_of, Reader};
use crate::containers::{frame, MULTIPLEXED, RAW};
use crate::engine::Shared;
use crate::http::{self, blocking, Query, Req, Resp, Result};
use crate::ApiError;

pub struct ExecSession {
    pub id: String,
    pub container_id: String,
    pub opts: ExecOptions,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    state: Mutex<ExecState>,
}

#[derive(Default)]
struct ExecState {
    started: bool,
    running: bool,
    pid: i32,
    exit_code: Option<i32>,
    /// The pty master while a TTY session runs (for resize).
    master: Option<Arc<OwnedFd>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ExecCreate {
    #[serde(default)]
    attach_stdin: bool,
    #[serde(default)]
    attach_stdout: bool,
    #[serde(default)]
    attach_stderr: bool,
    #[serde(default)]
    tty: bool,
    #[serde(default)]
    cmd: Vec<String>,
    #[serde(default)]
    env: Option<Vec<String>>,
    #[serde(default)]
    working_dir: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    privileged: bool,
    #[serde(default)]
    detach_keys: Option<String>,
    #[serde(default)]
    console_size: Option<Vec<u16>>,
}

fn session(engine: &Shared, id: &str) -> Result<Arc<ExecSession>> {
    engine
        .execs
        .lock()
        .map_err(|_| ApiError::internal("exec table poisoned"))?
        .get(id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("No such exec instance: {id}")))
}

pub async fn create(engine: Shared, req: Req, container: &str) -> Result<Resp> {
    let body: ExecCreate = http::body_json(req).await?;
    if body.privileged {
        return Err(ApiError::bad_request("privileged exec is not supported by Berth"));
    }
    if body.cmd.is_empty() {
        return Err(ApiError::bad_request("No exec command specified"));
    }
    let _ = (&body.detach_keys, &body.console_size);
    let container = container.to_string();
    let e = engine.clone();
    let rec = blocking(move || {
        let rec = e.containers.find(&container)?;
        if !e.containers.status(&rec).is_running() {
            return Err(ApiError::conflict(format!("Container {} is not running", rec.id)));
        }
        Ok(rec)
    })
    .await?;
    let id = hex::encode(rand::random::<[u8; 32]>());
    let s = ExecSession {
        id: id.clone(),
        container_id: rec.id.clone(),
        opts: ExecOptions {
            cmd: body.cmd,
            env: body.env.unwrap_or_default(),
            workdir: body.working_dir.filter(|w| !w.is_empty()),
            user: body.user.filter(|u| !u.is_empty()),
            tty: body.tty,
        },
        attach_stdin: body.attach_stdin,
        attach_stdout: body.attach_stdout,
        attach_stderr: body.attach_stderr,
        state: Mutex::new(ExecState::default()),
    };
    engine
        .execs
        .lock()
        .map_err(|_| ApiError::internal("exec table poisoned"))?
        .insert(id.clone(), Arc::new(s));
    engine
        .containers
        .emit(berth_events::Action::ExecCreate { exec_id: id.clone() }, &rec);
    Ok(http::json(StatusCode::CREATED, &json!({"Id": id})))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ExecStart {
    #[serde(default)]
    detach: bool,
    #[serde(default)]
    tty: Option<bool>,
    #[serde(default)]
    console_size: Option<Vec<u16>>,
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| ApiError::internal(format!("cannot create a pipe: {e}")))
}

nix::ioctl_write_ptr_bad!(set_winsize, nix::libc::TIOCSWINSZ, nix::pty::Winsize);

fn resize_fd(fd: &OwnedFd, rows: u16, cols: u16) -> Result<()> {
    let ws = nix::pty::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a Winsize; the fd is a pty master we own.
    unsafe { set_winsize(fd.as_raw_fd(), &ws) }
        .map(|_| ())
        .map_err(|e| ApiError::internal(format!("cannot resize the terminal: {e}")))
}

/// A pty pair from the container's own devpts instance (through /proc/PID/root), so that
/// inside the container the terminal has a name.
pub fn container_pty(pid: i32) -> std::io::Result<(OwnedFd, OwnedFd)> {
    use std::os::unix::fs::OpenOptionsExt;
    let root = format!("/proc/{pid}/root");
    let open = |p: &str| {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::libc::O_NOCTTY | nix::libc::O_CLOEXEC)
            .open(p)
    };
    let ptmx = open(&format!("{root}/dev/ptmx"))?;
    // SAFETY: the fd was just opened on a ptmx device.
    let master = unsafe { nix::pty::PtyMaster::from_owned_fd(OwnedFd::from(ptmx)) };
    nix::pty::grantpt(&master)?;
    nix::pty::unlockpt(&master)?;
    let name = nix::pty::ptsname_r(&master)?;
    let slave = open(&format!("{root}{name}"))?;
    Ok((OwnedFd::from(master), slave.into()))
}

pub async fn start(engine: Shared, mut req: Req, id: &str) -> Result<Resp> {
    let s = session(&engine, id)?;
    let upgrade = upgrade_of(&mut req);
    let bytes = http::body_bytes(req).await?;
    let start: ExecStart = if bytes.iter().all(u8::is_ascii_whitespace) {
        ExecStart::default()
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(format!("malformed JSON in the request body: {e}")))?
    };
    {
        let mut st = s
            .state
            .lock()
            .map_err(|_| ApiError::internal("exec state poisoned"))?;
        if st.started {
            return Err(ApiError::conflict(format!(
                "exec {} has already been started",
                s.id
            )));
        }
        st.started = true;
        st.running = true;
    }
    let tty = start.tty.unwrap_or(s.opts.tty);
    let console = start.console_size.clone();
    // Prepare the process (pipes or pty) before answering, so errors reach the client.
    let e = engine.clone();
    let s2 = s.clone();
    let launched = blocking(move || launch(&e, &s2, tty, console)).await;
    let launched = match launched {
        Ok(l) => l,
        Err(err) => {
            if let Ok(mut st) = s.state.lock() {
                st.running = false;
                st.exit_code = Some(126);
            }
            return Err(err);
        }
    };
    if start.detach {
        tokio::spawn(finish(s, launched, None, None));
        return Ok(http::empty(StatusCode::OK));
    }
    let content_type = if tty { RAW } else { MULTIPLEXED };
    Ok(hijack(upgrade, content_type, move |stdin, mut out| async move {
        let (tx, rx) = mpsc::channel::<Bytes>(64);
        let writer = tokio::spawn(async move { pump(rx, &mut out).await });
        finish(s, launched, stdin, Some(tx)).await;
        let _ = writer.await;
    }))
}

/// A running exec: its pid and the daemon's ends of its stdio.
struct Launched {
    pid: i32,
    stdin: Option<OwnedFd>,
    outputs: Vec<(u8, OwnedFd)>,
    tty: bool,
}

fn launch(engine: &Shared, s: &ExecSession, tty: bool, console: Option<Vec<u16>>) -> Result<Launched> {
    let mut opts = s.opts.clone();
    opts.tty = tty;
    if tty {
        let rec = engine.containers.find(&s.container_id)?;
        let pid = engine
            .containers
            .status(&rec)
            .pid()
            .ok_or_else(|| ApiError::conflict(format!("Container {} is not running", rec.id)))?;
        let (master, slave) = container_pty(pid)
            .map_err(|e| ApiError::internal(format!("cannot open a terminal in the container: {e}")))?;
        if let Some([rows, cols]) = console.as_deref().and_then(|c| <[u16; 2]>::try_from(c).ok()) {
            if rows > 0 && cols > 0 {
                resize_fd(&master, rows, cols)?;
            }
        }
        let child =
            engine
                .containers
                .exec_with(&s.container_id, &opts, berth_containers::Stdio::Pty(slave))?;
        let input = master
            .try_clone()
            .map_err(|e| ApiError::internal(format!("cannot share the terminal: {e}")))?;
        let keep = master
            .try_clone()
            .map_err(|e| ApiError::internal(format!("cannot share the terminal: {e}")))?;
        if let Ok(mut st) = s.state.lock() {
            st.pid = child;
            st.master = Some(Arc::new(keep));
        }
        return Ok(Launched {
            pid: child,
            stdin: s.attach_stdin.then_some(input),
            outputs: vec![(1, master)],
            tty: true,
        });
    }
    let (stdin_r, stdin_w) = if s.attach_stdin {
        let (r, w) = pipe()?;
        (Some(r), Some(w))
    } else {
        (None, None)
    };
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let child = engine.containers.exec_with(
        &s.container_id,
        &opts,
        berth_containers::Stdio::Fds {
            stdin: stdin_r,
            stdout: out_w,
            stderr: err_w,
        },
    )?;
    if let Ok(mut st) = s.state.lock() {
        st.pid = child;
    }
    Ok(Launched {
        pid: child,
        stdin: stdin_w,
        outputs: vec![(1, out_r), (2, err_r)],
        tty: false,
    })
}

/// Relays stdio until the process exits, records its exit code, then ends the stream.
async fn finish(s: Arc<ExecSession>, l: Launched, stdin: Option<Reader>, out: Option<mpsc::Sender<Bytes>>) {
    let Launched {
        pid,
        stdin: stdin_fd,
        outputs,
        tty,
    } = l;
    // Input: client → process, on its own task (ends with the client's half-close).
    let input = match (stdin, stdin_fd) {
        (Some(mut r), Some(fd)) => Some(tokio::spawn(async move {
            let mut f = std::fs::File::from(fd);
            let (tx, mut rx) = mpsc::channel::<Vec<u8>>(16);
            let writer = tokio::task::spawn_blocking(move || {
                use std::io::Write;
                while let Some(chunk) = rx.blocking_recv() {
                    if f.write_all(&chunk).is_err() {
                        break;
                    }
                }
            });
            let mut buf = vec![0u8; 8192];
            loop {
                match r.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        // Once the process is gone, what the client still sends is dropped
                        // (read to the end, so closing never resets the connection).
                        let _ = tx.send(buf[..n].to_vec()).await;
                    }
                }
            }
            drop(tx);
            let _ = writer.await;
        })),
        _ => None,
    };
    // Output: each fd read on a blocking thread (pipes and pty masters alike).
    let mut readers = Vec::new();
    for (stream, fd) in outputs {
        let out = out.clone();
        let want = if stream == 2 {
            s.attach_stderr
        } else {
            s.attach_stdout || tty
        };
        readers.push(tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let mut f = std::fs::File::from(fd);
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match f.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let Some(tx) = out.as_ref().filter(|_| want) else {
                            continue;
                        };
                        let chunk = if tty {
                            Bytes::copy_from_slice(&buf[..n])
                        } else {
                            frame(stream, &buf[..n])
                        };
                        // The client left: keep draining so the process never blocks on a full pipe.
                        let _ = tx.blocking_send(chunk);
                    }
                }
            }
        }));
    }
    let code = tokio::task::spawn_blocking(move || berth_containers::wait_for(pid).unwrap_or(-1))
        .await
        .unwrap_or(-1);
    // Drain what the process wrote; a background child holding the pipe open does not
    // keep the session alive for long.
    let _ = tokio::time::timeout(Duration::from_secs(2), futures_util::future::join_all(readers)).await;
    if let Ok(mut st) = s.state.lock() {
        st.running = false;
        st.exit_code = Some(code);
        st.master = None;
    }
    // Only now may the stream end: clients read ExitCode as soon as it does.
    drop(out);
    if let Some(mut i) = input {
        // The client closes once it has seen the end of the output.
        if tokio::time::timeout(Duration::from_secs(2), &mut i)
            .await
            .is_err()
        {
            i.abort();
        }
    }
}

pub async fn resize(engine: Shared, id: &str, q: Query) -> Result<Resp> {
    let s = session(&engine, id)?;
    let (h, w) = (q.int("h")?.unwrap_or(0), q.int("w")?.unwrap_or(0));
    let master = s.state.lock().ok().and_then(|st| st.master.clone());
    match master {
        Some(m) => resize_fd(&m, h as u16, w as u16)?,
        None if !s.opts.tty => return Err(ApiError::conflict(format!("exec {id} has no terminal"))),
        None => return Err(ApiError::conflict(format!("exec {id} is not running"))),
    }
    Ok(http::empty(StatusCode::OK))
}

pub async fn inspect(engine: Shared, id: &str) -> Result<Resp> {
    let s = session(&engine, id)?;
    let st = s
        .state
        .lock()
        .map_err(|_| ApiError::internal("exec state poisoned"))?;
    let (entry, args) = s
        .opts
        .cmd
        .split_first()
        .map(|(a, b)| (a.clone(), b.to_vec()))
        .unwrap_or_default();
    http::ok_json(&json!({
        "ID": s.id,
        "Running": st.running,
        "ExitCode": st.exit_code,
        "ProcessConfig": {"tty": s.opts.tty, "entrypoint": entry, "arguments": args, "privileged": false, "user": s.opts.user.clone().unwrap_or_default()},
        "OpenStdin": s.attach_stdin,
        "OpenStderr": s.attach_stderr,
        "OpenStdout": s.attach_stdout,
        "CanRemove": false,
        "ContainerID": s.container_id,
        "DetachKeys": "",
        "Pid": st.pid,
    }))
}
