//! `docker cp`: `HEAD`/`GET`/`PUT /containers/{id}/archive?path=…` on a running container.
//!
//! The copying runs in a helper process (`berth __cp`, [`copy_helper`]) chrooted into the
//! container's root (`/proc/PID/root`, so its volumes are seen too): every path and every
//! symlink is resolved inside the container, never on the host. Stopped containers are
//! refused (their root is not mounted).

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use berth_containers::ContainerRecord;
use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::StatusCode;
use serde_json::json;

use crate::engine::Shared;
use crate::http::{self, blocking, Query, Req, Resp, Result};
use crate::ApiError;

/// Exit code of the helper when the path does not exist in the container.
const NOT_FOUND: i32 = 2;

fn running_pid(engine: &Shared, rec: &ContainerRecord) -> Result<i32> {
    engine.containers.status(rec).pid().ok_or_else(|| {
        ApiError::conflict(format!(
            "container {} is not running — Berth copies files only in and out of running containers (start it first)",
            rec.name
        ))
    })
}

fn helper(engine: &Shared, op: &str, pid: i32, path: &str) -> Command {
    let mut c = Command::new(&engine.helper_exe);
    c.args(["__cp", op, &pid.to_string(), path])
        .stderr(Stdio::piped());
    c
}

fn helper_error(code: Option<i32>, stderr: &[u8], path: &str, rec: &ContainerRecord) -> ApiError {
    if code == Some(NOT_FOUND) {
        return ApiError::not_found(format!(
            "Could not find the file {path} in container {}",
            rec.name
        ));
    }
    let text = String::from_utf8_lossy(stderr).trim().to_string();
    ApiError::bad_request(format!("copying {path} in container {} failed: {text}", rec.name))
}

/// docker's `X-Docker-Container-Path-Stat` header for `path`.
fn stat_header(engine: &Shared, rec: &ContainerRecord, pid: i32, path: &str) -> Result<HeaderValue> {
    use base64::Engine as _;
    let out = helper(engine, "stat", pid, path)
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ApiError::internal(format!("cannot run the copy helper: {e}")))?;
    if !out.status.success() {
        return Err(helper_error(out.status.code(), &out.stderr, path, rec));
    }
    let b64 = base64::engine::general_purpose::STANDARD.encode(out.stdout.trim_ascii());
    HeaderValue::from_str(&b64).map_err(|e| ApiError::internal(e.to_string()))
}

fn path_of(q: &Query) -> Result<String> {
    Ok(q.get("path")
        .ok_or_else(|| ApiError::bad_request("path is required"))?
        .to_string())
}

pub async fn head(engine: Shared, id: &str, q: Query) -> Result<Resp> {
    let path = path_of(&q)?;
    let id = id.to_string();
    blocking(move || {
        let rec = engine.containers.find(&id)?;
        let pid = running_pid(&engine, &rec)?;
        let mut r = http::empty(StatusCode::OK);
        r.headers_mut().insert(
            "X-Docker-Container-Path-Stat",
            stat_header(&engine, &rec, pid, &path)?,
        );
        Ok(r)
    })
    .await
}

pub async fn get(engine: Shared, id: &str, q: Query) -> Result<Resp> {
    let path = path_of(&q)?;
    let id = id.to_string();
    let e = engine.clone();
    let (stat, mut child, rec) = blocking(move || {
        let rec = e.containers.find(&id)?;
        let pid = running_pid(&e, &rec)?;
        let stat = stat_header(&e, &rec, pid, &path)?;
        let child = helper(&e, "get", pid, &path)
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .map_err(|err| ApiError::internal(format!("cannot run the copy helper: {err}")))?;
        Ok((stat, child, rec))
    })
    .await?;
    let (tx, mut resp) = http::stream(StatusCode::OK, "application/x-tar");
    resp.headers_mut().insert("X-Docker-Container-Path-Stat", stat);
    tokio::task::spawn_blocking(move || {
        if let Some(mut out) = child.stdout.take() {
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                match out.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.blocking_send(Bytes::copy_from_slice(&buf[..n])).is_err() {
                            let _ = child.kill();
                            break;
                        }
                    }
                }
            }
        }
        if let Ok(status) = child.wait() {
            if !status.success() {
                tracing::warn!(container = %rec.name, "docker cp from the container ended with {status}");
            }
        }
    });
    Ok(resp)
}

pub async fn put(engine: Shared, req: Req, id: &str, q: Query) -> Result<Resp> {
    let path = path_of(&q)?;
    let tmp =
        tempfile::tempfile().map_err(|e| ApiError::internal(format!("cannot create a temp file: {e}")))?;
    let file = tmp.try_clone().map_err(|e| ApiError::internal(e.to_string()))?;
    http::body_to_file(req, file).await?;
    let id = id.to_string();
    blocking(move || {
        use std::io::Seek;
        let rec = engine.containers.find(&id)?;
        let pid = running_pid(&engine, &rec)?;
        let mut f = tmp;
        f.rewind().map_err(|e| ApiError::internal(e.to_string()))?;
        let out = helper(&engine, "put", pid, &path)
            .stdin(Stdio::from(f))
            .stdout(Stdio::null())
            .output()
            .map_err(|e| ApiError::internal(format!("cannot run the copy helper: {e}")))?;
        if !out.status.success() {
            return Err(helper_error(out.status.code(), &out.stderr, &path, &rec));
        }
        Ok(http::empty(StatusCode::OK))
    })
    .await
}

/// `berth __cp stat|get|put PID PATH`: runs chrooted into the container's root and
/// prints the path's stat JSON, writes a tar of it to stdout, or unpacks a tar from stdin
/// into it. Returns the process exit code (2: the path does not exist).
pub fn copy_helper(op: &str, pid: i32, path: &str) -> i32 {
    match copy_helper_inner(op, pid, path) {
        Ok(()) => 0,
        Err((code, message)) => {
            eprintln!("{message}");
            code
        }
    }
}

fn copy_helper_inner(op: &str, pid: i32, path: &str) -> std::result::Result<(), (i32, String)> {
    let fail = |e: std::io::Error| (1, e.to_string());
    rustix::process::chroot(format!("/proc/{pid}/root"))
        .map_err(|e| (1, format!("cannot enter the container: {e}")))?;
    std::env::set_current_dir("/").map_err(fail)?;
    let p = Path::new(path);
    let meta = std::fs::symlink_metadata(p).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => (NOT_FOUND, format!("{path}: no such file or directory")),
        _ => (1, format!("{path}: {e}")),
    })?;
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| ".".into());
    match op {
        "stat" => {
            use std::os::unix::fs::PermissionsExt;
            // Go's FileMode bits, as docker's clients decode them.
            let mut mode = u64::from(meta.permissions().mode() & 0o777);
            if meta.is_dir() {
                mode |= 1 << 31;
            }
            let link = if meta.file_type().is_symlink() {
                mode |= 1 << 27;
                std::fs::read_link(p)
                    .map(|l| l.to_string_lossy().into_owned())
                    .unwrap_or_default()
            } else {
                String::new()
            };
            let mtime = meta
                .modified()
                .ok()
                .map(time::OffsetDateTime::from)
                .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
                .unwrap_or_default();
            let v =
                json!({"name": name, "size": meta.len(), "mode": mode, "mtime": mtime, "linkTarget": link});
            println!("{v}");
            Ok(())
        }
        "get" => {
            let stdout = std::io::stdout();
            let mut b = tar::Builder::new(stdout.lock());
            // Symlinks are archived as links, never followed.
            b.follow_symlinks(false);
            if meta.is_dir() {
                b.append_dir_all(&name, p).map_err(fail)?;
            } else {
                b.append_path_with_name(p, &name).map_err(fail)?;
            }
            let mut out = b.into_inner().map_err(fail)?;
            out.flush().map_err(fail)
        }
        "put" => {
            if !std::fs::metadata(p).map(|m| m.is_dir()).unwrap_or(false) {
                return Err((1, format!("{path} is not a directory")));
            }
            let mut archive = tar::Archive::new(std::io::stdin().lock());
            archive.set_preserve_permissions(true);
            archive.set_overwrite(true);
            archive.unpack(p).map_err(fail)
        }
        other => Err((1, format!("unknown copy operation {other}"))),
    }
}
