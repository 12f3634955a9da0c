//! `docker cp`: `HEAD`/`GET`/`PUT /containers/{id}/archive?path=…`. The copying is the
//! container service's (`berth_containers`' `cp`: a helper chrooted into the container's
//! files); this streams its tar in and out.

use std::io::Read;
use std::process::Stdio;

use berth_containers::{ContainerRecord, CopyTarget, COPY_NOT_FOUND};
use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::StatusCode;

use crate::engine::Shared;
use crate::http::{self, blocking, Query, Req, Resp, Result};
use crate::ApiError;

fn helper_error(code: Option<i32>, stderr: &[u8], path: &str, rec: &ContainerRecord) -> ApiError {
    if code == Some(COPY_NOT_FOUND) {
        return ApiError::not_found(format!(
            "Could not find the file {path} in container {}",
            rec.name
        ));
    }
    let text = String::from_utf8_lossy(stderr).trim().to_string();
    ApiError::bad_request(format!("copying {path} in container {} failed: {text}", rec.name))
}

/// docker's `X-Docker-Container-Path-Stat` header for `path`.
fn stat_header(
    engine: &Shared,
    rec: &ContainerRecord,
    target: &CopyTarget,
    path: &str,
) -> Result<HeaderValue> {
    use base64::Engine as _;
    let out = engine
        .containers
        .copy_command("stat", target, path)?
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
        let target = engine.containers.copy_target(&rec, &path, false)?;
        let mut r = http::empty(StatusCode::OK);
        r.headers_mut().insert(
            "X-Docker-Container-Path-Stat",
            stat_header(&engine, &rec, &target, &path)?,
        );
        Ok(r)
    })
    .await
}

pub async fn get(engine: Shared, id: &str, q: Query) -> Result<Resp> {
    let path = path_of(&q)?;
    let id = id.to_string();
    let e = engine.clone();
    let (stat, child, rec) = blocking(move || {
        let rec = e.containers.find(&id)?;
        let target = e.containers.copy_target(&rec, &path, false)?;
        let stat = stat_header(&e, &rec, &target, &path)?;
        let child = spawn_get(&e, &target, &path)?;
        Ok((stat, child, rec))
    })
    .await?;
    let (tx, mut resp) = http::stream(StatusCode::OK, "application/x-tar");
    resp.headers_mut().insert("X-Docker-Container-Path-Stat", stat);
    relay_tar(child, tx, rec.name, "docker cp from the container");
    Ok(resp)
}

/// `GET /containers/{id}/export`: the container's filesystem as one tar (its changes over
/// its image's layers; volumes and other mounts are not in it, as in docker).
pub async fn export(engine: Shared, id: &str) -> Result<Resp> {
    let id = id.to_string();
    let e = engine.clone();
    let (child, rec) = blocking(move || {
        let rec = e.containers.find(&id)?;
        let target = e.containers.filesystem_target(&rec)?;
        Ok((spawn_get(&e, &target, "/")?, rec))
    })
    .await?;
    let (tx, resp) = http::stream(StatusCode::OK, "application/x-tar");
    relay_tar(child, tx, rec.name, "docker export");
    Ok(resp)
}

fn spawn_get(
    engine: &Shared,
    target: &berth_containers::CopyTarget,
    path: &str,
) -> Result<std::process::Child> {
    engine
        .containers
        .copy_command("get", target, path)?
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .map_err(|err| ApiError::internal(format!("cannot run the copy helper: {err}")))
}

/// Streams the helper's tar to the client; a client that goes away stops the helper.
fn relay_tar(
    mut child: std::process::Child,
    tx: tokio::sync::mpsc::Sender<Bytes>,
    name: String,
    what: &'static str,
) {
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
                tracing::warn!(container = %name, "{what} ended with {status}");
            }
        }
    });
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
        let target = engine.containers.copy_target(&rec, &path, true)?;
        let mut f = tmp;
        f.rewind().map_err(|e| ApiError::internal(e.to_string()))?;
        let out = engine
            .containers
            .copy_command("put", &target, &path)?
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
