//! Image endpoints: list, pull (`/images/create`, docker's JSON progress stream), push
//! with `X-Registry-Auth`, tag, remove, inspect, history, prune, save (`get`) and load.

use std::sync::Arc;

use berth_images::{ImageService, Progress, ProgressEvent, PullOptions, RemoveEvent};
use berth_reference::ImageRef;
use bytes::Bytes;
use hyper::StatusCode;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::engine::Shared;
use crate::http::{self, blocking, Query, Req, Resp, Result};
use crate::{docker_json, ApiError};

pub async fn list(engine: Shared, q: Query) -> Result<Resp> {
    let filters = q.filters()?;
    filters.only(&["reference", "dangling", "label"])?;
    let mut references = filters.get("reference").to_vec();
    if let Some(f) = q.get("filter") {
        references.push(f.to_string());
    }
    if !filters.get("label").is_empty() {
        // Image labels are not indexed; refuse rather than match nothing silently.
        return Err(ApiError::bad_request(
            "filtering images by label is not supported by Berth yet",
        ));
    }
    let dangling = filters.get("dangling").first().map(|d| d == "true" || d == "1");
    blocking(move || {
        let rows = engine.images.list()?;
        let users: Vec<berth_oci::Digest> = engine
            .containers
            .records()?
            .into_iter()
            .map(|r| r.image_id)
            .collect();
        let kept: Vec<&berth_images::ImageSummary> = rows
            .iter()
            .filter(|r| {
                references.is_empty()
                    || references.iter().any(|f| {
                        ImageRef::parse_name_only(f)
                            .map(|w| {
                                let name_ok = r.repository == w.familiar_name()
                                    || glob(&w.familiar_name(), &r.repository);
                                name_ok && w.tag().is_none_or(|t| r.tag == t || glob(t, &r.tag))
                            })
                            .unwrap_or_else(|_| glob(f, &format!("{}:{}", r.repository, r.tag)))
                    })
            })
            .collect();
        let out: Vec<Value> = docker_json::image_summaries(&kept, &users)
            .into_iter()
            .filter(|v| {
                let untagged = v["RepoTags"].as_array().is_none_or(|t| t.is_empty());
                dangling.is_none_or(|d| d == untagged)
            })
            .collect();
        http::ok_json(&out)
    })
    .await
}

/// `*` wildcards as in docker's reference filter.
fn glob(pattern: &str, text: &str) -> bool {
    if !pattern.contains('*') {
        return pattern == text;
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut rest = text;
    for (i, p) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(p) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(p);
        } else {
            match rest.find(p) {
                Some(at) => rest = &rest[at + p.len()..],
                None => return false,
            }
        }
    }
    rest.is_empty()
}

/// Turns image-service progress into docker's JSON lines.
struct JsonProgress {
    tx: mpsc::UnboundedSender<Value>,
}

fn bar(current: u64, total: u64) -> String {
    let width = 50u64;
    let filled = (current.min(total) * width).checked_div(total).unwrap_or(0);
    let arrow = if filled < width { ">" } else { "" };
    format!(
        "[{}{}{}] {}/{}",
        "=".repeat(filled as usize),
        arrow,
        " ".repeat((width - filled).saturating_sub(arrow.len() as u64) as usize),
        human(current),
        human(total)
    )
}

fn human(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "kB", "MB", "GB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n}B")
    } else {
        format!("{v:.3}{}", UNITS[i])
    }
}

pub fn progress_json(event: ProgressEvent) -> Value {
    let simple = |status: &str, id: String| json!({"status": status, "progressDetail": {}, "id": id});
    match event {
        ProgressEvent::Status(s) => match s.split_once(": ") {
            Some((id, rest)) if !id.contains(' ') => json!({"status": rest, "id": id}),
            _ => json!({"status": s}),
        },
        ProgressEvent::Waiting { id, .. } => simple("Waiting", id),
        ProgressEvent::AlreadyExists { id } => simple("Already exists", id),
        ProgressEvent::Downloading { id, current, total } => json!({
            "status": "Downloading", "progressDetail": {"current": current, "total": total},
            "progress": bar(current, total), "id": id,
        }),
        ProgressEvent::Verifying { id } => simple("Verifying Checksum", id),
        ProgressEvent::Extracting { id } => simple("Extracting", id),
        ProgressEvent::PullComplete { id } => simple("Pull complete", id),
        ProgressEvent::Pushing { id, current, total } => json!({
            "status": "Pushing", "progressDetail": {"current": current, "total": total},
            "progress": bar(current, total), "id": id,
        }),
        ProgressEvent::Mounted { id, from } => simple(&format!("Mounted from {from}"), id),
        ProgressEvent::Pushed { id } => simple("Pushed", id),
        ProgressEvent::Retrying { id, reason } => simple(&format!("Retrying: {reason}"), id),
    }
}

impl Progress for JsonProgress {
    fn event(&self, event: ProgressEvent) {
        let _ = self.tx.send(progress_json(event));
    }
}

/// Progress events for the image services, forwarded as JSON lines to `tx` by a task
/// that ends once the services drop the progress handle.
fn forward_progress(tx: &mpsc::Sender<Bytes>) -> (Arc<dyn Progress>, tokio::task::JoinHandle<()>) {
    let (ptx, mut prx) = mpsc::unbounded_channel();
    let tx = tx.clone();
    let forward = tokio::spawn(async move {
        while let Some(v) = prx.recv().await {
            let _ = tx.send(http::json_line(&v)).await;
        }
    });
    (Arc::new(JsonProgress { tx: ptx }), forward)
}

pub fn error_line(message: &str) -> Bytes {
    http::json_line(&json!({"errorDetail": {"message": message}, "error": message}))
}

/// Credentials from `X-Registry-Auth` (base64url JSON), as a docker config.json in a temp
/// dir that the registry client reads; `None` when the header carries none.
fn registry_auth(req: &Req, registry_of: &str) -> Result<Option<tempfile::TempDir>> {
    use base64::Engine as _;
    let Some(header) = req.headers().get("X-Registry-Auth").and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let header = header.trim();
    let decoded = [
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
        base64::engine::general_purpose::STANDARD,
    ]
    .iter()
    .find_map(|e| e.decode(header).ok())
    .ok_or_else(|| ApiError::bad_request("X-Registry-Auth is not valid base64"))?;
    let v: Value = serde_json::from_slice(&decoded)
        .map_err(|e| ApiError::bad_request(format!("X-Registry-Auth is not valid JSON: {e}")))?;
    let user = v.get("username").and_then(Value::as_str).unwrap_or("");
    let pass = v.get("password").and_then(Value::as_str).unwrap_or("");
    if user.is_empty() || pass.is_empty() {
        return Ok(None);
    }
    let server = v
        .get("serveraddress")
        .and_then(Value::as_str)
        .map(crate::system::registry_host)
        .filter(|s| !s.is_empty() && s != "docker.io")
        .unwrap_or_else(|| registry_of.to_string());
    let dir =
        tempfile::tempdir().map_err(|e| ApiError::internal(format!("cannot create a temp dir: {e}")))?;
    let path = dir.path().join("config.json");
    let mut file = berth_registry::credentials::DockerConfigFile::load(&path)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    file.store(
        &server,
        &berth_registry::credentials::Credential {
            username: user.to_string(),
            password: pass.to_string(),
        },
    )
    .map_err(|e| ApiError::internal(e.to_string()))?;
    file.save(&path).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Some(dir))
}

fn images_for(engine: &Shared, auth: &Option<tempfile::TempDir>) -> Result<ImageService> {
    match auth {
        Some(dir) => Ok(engine.images_with_logins(&dir.path().join("config.json"))?),
        None => Ok(engine.images_now()?),
    }
}

/// `GET /images/search?term=…&limit=…&filters=…`: a private registry's catalog for
/// `HOST[:PORT]/words`, Docker Hub's search otherwise; filters `is-official`,
/// `is-automated` and `stars` as docker applies them.
pub async fn search(engine: Shared, req: Req, q: Query) -> Result<Resp> {
    let term = q.get("term").unwrap_or("").to_string();
    let limit = q.int("limit")?.filter(|n| *n > 0).unwrap_or(25) as usize;
    let filters = q.filters()?;
    filters.only(&["is-official", "is-automated", "stars"])?;
    let flag = |key: &str| -> Result<Option<bool>> {
        match filters.get(key).first().map(String::as_str) {
            None => Ok(None),
            Some("true" | "1") => Ok(Some(true)),
            Some("false" | "0") => Ok(Some(false)),
            Some(v) => Err(ApiError::bad_request(format!(
                "invalid filter '{key}={v}' — use true or false"
            ))),
        }
    };
    let (official, automated) = (flag("is-official")?, flag("is-automated")?);
    let stars: u64 = match filters.get("stars").first() {
        None => 0,
        Some(s) => s
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid filter 'stars={s}' — use a number")))?,
    };
    let registry = term
        .split_once('/')
        .map(|(r, _)| r)
        .unwrap_or("docker.io")
        .to_string();
    let auth = registry_auth(&req, &registry)?;
    let images = images_for(&engine, &auth)?;
    let handle = tokio::runtime::Handle::current();
    // As for a pull: the registry future is not Send, so it runs on a thread of its own.
    let found = tokio::task::spawn_blocking(move || {
        handle.block_on(async move {
            let _auth = auth;
            images.search(&term, limit).await
        })
    })
    .await
    .map_err(|e| ApiError::internal(format!("the search stopped: {e}")))??;
    let rows: Vec<Value> = found
        .into_iter()
        .filter(|r| official.is_none_or(|o| r.is_official == o))
        .filter(|r| automated.is_none_or(|a| r.is_automated == a))
        .filter(|r| r.star_count >= stars)
        .map(|r| json!(r))
        .collect();
    http::ok_json(&Value::Array(rows))
}

/// `POST /images/create?fromImage=…&tag=…`: a pull, streamed as docker's JSON lines.
pub async fn create(engine: Shared, req: Req, q: Query) -> Result<Resp> {
    if let Some(src) = q.get("fromSrc") {
        if src != "-" {
            return Err(ApiError::bad_request(
                "importing from a URL is not supported by Berth — download the tar, then docker import FILE",
            ));
        }
        return import(engine, req, q).await;
    }
    let from = q
        .get("fromImage")
        .ok_or_else(|| ApiError::bad_request("fromImage is required"))?
        .to_string();
    let full = match q.get("tag") {
        Some(t) if t.contains(':') && t.starts_with("sha256") => format!("{from}@{t}"),
        Some(t) => format!("{from}:{t}"),
        None => from.clone(),
    };
    let reference = ImageRef::parse(&full)?;
    let platform = q
        .get("platform")
        .map(str::parse::<berth_oci::Platform>)
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("invalid platform: {e}")))?;
    let auth = registry_auth(&req, reference.domain())?;
    let images = images_for(&engine, &auth)?;
    let (tx, resp) = http::stream(StatusCode::OK, "application/json");
    let (progress, forward) = forward_progress(&tx);
    // The pull future is not Send (higher-ranked borrows inside), so it runs on a blocking
    // thread of its own.
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        handle.block_on(async move {
            let _auth = auth;
            let result = images.pull(&reference, &PullOptions { platform }, progress).await;
            let _ = forward.await;
            let line = match result {
                Ok(outcome) => {
                    let _ = tx
                        .send(http::json_line(
                            &json!({"status": format!("Digest: {}", outcome.digest)}),
                        ))
                        .await;
                    let status = if outcome.up_to_date {
                        format!("Status: Image is up to date for {}", reference.familiar())
                    } else {
                        format!("Status: Downloaded newer image for {}", reference.familiar())
                    };
                    http::json_line(&json!({ "status": status }))
                }
                Err(e) => error_line(&e.to_string()),
            };
            let _ = tx.send(line).await;
        })
    });
    Ok(resp)
}

/// Routes `/images/{name}/…`: names contain `/` and `:`, so the action is matched from the end.
pub async fn route_named(engine: Shared, req: Req, method: &str, path: &str, q: Query) -> Result<Resp> {
    let rest = path.strip_prefix("/images/").unwrap_or("");
    let action = |suffix: &str| {
        rest.strip_suffix(suffix)
            .filter(|n| !n.is_empty())
            .map(String::from)
    };
    match method {
        "GET" => {
            if let Some(name) = action("/json") {
                return inspect(engine, name).await;
            }
            if let Some(name) = action("/history") {
                return history(engine, name).await;
            }
            if let Some(name) = action("/get") {
                return save(engine, vec![name]).await;
            }
        }
        "POST" => {
            if let Some(name) = action("/push") {
                return push(engine, req, name, q).await;
            }
            if let Some(name) = action("/tag") {
                return tag(engine, name, q).await;
            }
        }
        "DELETE" if !rest.is_empty() => return remove(engine, rest.to_string(), q).await,
        _ => {}
    }
    Err(ApiError::not_found(format!("page not found: {method} {path}")))
}

async fn inspect(engine: Shared, name: String) -> Result<Resp> {
    blocking(move || {
        let rec = engine.images.resolve(&name)?;
        let config = engine.images.config(&rec)?;
        http::ok_json(&docker_json::image_inspect(&engine.images, &rec, &config)?)
    })
    .await
}

async fn history(engine: Shared, name: String) -> Result<Resp> {
    blocking(move || {
        let rows = engine.images.history(&name)?;
        let tags = engine
            .images
            .resolve(&name)
            .and_then(|r| engine.images.tags_of(&r.id))
            .unwrap_or_default();
        let out: Vec<Value> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                json!({
                    "Id": if r.id.is_empty() { "<missing>".to_string() } else { r.id.clone() },
                    "Created": r.created.as_deref().map(docker_json::unix_time).unwrap_or(0),
                    "CreatedBy": r.created_by,
                    "Tags": if i == 0 { json!(tags) } else { Value::Null },
                    "Size": r.size,
                    "Comment": r.comment,
                })
            })
            .collect();
        http::ok_json(&out)
    })
    .await
}

async fn push(engine: Shared, req: Req, name: String, q: Query) -> Result<Resp> {
    let full = match q.get("tag") {
        Some(t) => format!("{name}:{t}"),
        None => name.clone(),
    };
    let reference = ImageRef::parse(&full)?;
    let auth = registry_auth(&req, reference.domain())?;
    let images = images_for(&engine, &auth)?;
    let (tx, resp) = http::stream(StatusCode::OK, "application/json");
    let (progress, forward) = forward_progress(&tx);
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        handle.block_on(async move {
        let _auth = auth;
        let result = images.push(&reference, progress).await;
        let _ = forward.await;
        match result {
            Ok(o) => {
                let _ = tx
                    .send(http::json_line(&json!({"status": format!("{}: digest: {} size: {}", o.tag, o.digest, o.size)})))
                    .await;
                let _ = tx
                    .send(http::json_line(&json!({"progressDetail": {}, "aux": {"Tag": o.tag, "Digest": o.digest.to_string(), "Size": o.size}})))
                    .await;
            }
            Err(e) => {
                let _ = tx.send(error_line(&e.to_string())).await;
            }
        }
    })
    });
    Ok(resp)
}

async fn tag(engine: Shared, name: String, q: Query) -> Result<Resp> {
    let repo = q
        .get("repo")
        .ok_or_else(|| ApiError::bad_request("repo is required"))?;
    let target = match q.get("tag") {
        Some(t) => format!("{repo}:{t}"),
        None => repo.to_string(),
    };
    blocking(move || {
        engine.images.tag(&name, &target)?;
        Ok(http::empty(StatusCode::CREATED))
    })
    .await
}

fn remove_events_json(events: &[RemoveEvent]) -> Vec<Value> {
    events
        .iter()
        .map(|e| match e {
            RemoveEvent::Untagged(t) => json!({"Untagged": t}),
            RemoveEvent::Deleted(d) => json!({"Deleted": d.to_string()}),
        })
        .collect()
}

async fn remove(engine: Shared, name: String, q: Query) -> Result<Resp> {
    let force = q.bool("force");
    blocking(move || http::ok_json(&remove_events_json(&engine.remove_image(&name, force)?))).await
}

pub async fn prune(engine: Shared, q: Query) -> Result<Resp> {
    let filters = q.filters()?;
    filters.only(&["dangling"])?;
    let all = filters
        .get("dangling")
        .first()
        .is_some_and(|d| d == "false" || d == "0");
    blocking(move || {
        let report = engine.prune_images(all)?;
        http::ok_json(&json!({
            "ImagesDeleted": remove_events_json(&report.events),
            "SpaceReclaimed": report.space_reclaimed,
        }))
    })
    .await
}

/// `GET /images/get?names=…` and `/images/{name}/get`: a docker-archive tarball.
pub async fn get(engine: Shared, q: Query) -> Result<Resp> {
    let names = q.all("names");
    if names.is_empty() {
        return Err(ApiError::bad_request("names is required"));
    }
    save(engine, names).await
}

async fn save(engine: Shared, names: Vec<String>) -> Result<Resp> {
    let (tmp, path) = blocking(move || {
        let tmp =
            tempfile::tempdir().map_err(|e| ApiError::internal(format!("cannot create a temp dir: {e}")))?;
        let path = tmp.path().join("images.tar");
        engine.images.save(&names, &path)?;
        Ok((tmp, path))
    })
    .await?;
    let (tx, resp) = http::stream(StatusCode::OK, "application/x-tar");
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let _tmp = tmp;
        let Ok(mut f) = tokio::fs::File::open(&path).await else {
            return;
        };
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match f.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    Ok(resp)
}

pub async fn load(engine: Shared, req: Req, q: Query) -> Result<Resp> {
    let quiet = q.bool("quiet");
    let tmp =
        tempfile::tempdir().map_err(|e| ApiError::internal(format!("cannot create a temp dir: {e}")))?;
    let path = tmp.path().join("load.tar");
    let file = std::fs::File::create(&path)
        .map_err(|e| ApiError::internal(format!("cannot store the upload: {e}")))?;
    http::body_to_file(req, file).await?;
    let loaded = blocking(move || {
        let _tmp = tmp;
        Ok(engine.images.load(&path)?)
    })
    .await?;
    let mut body = Vec::new();
    for line in loaded {
        // The service's lines already read "Loaded image: …" (or "Loaded image ID: …").
        let line = if line.starts_with("Loaded") {
            line
        } else {
            format!("Loaded image: {line}")
        };
        body.extend_from_slice(&http::json_line(&json!({ "stream": format!("{line}\n") })));
    }
    let _ = quiet;
    Ok(http::with_type(
        StatusCode::OK,
        http::full(body),
        "application/json",
    ))
}

/// `POST /images/create?fromSrc=-&repo=…&tag=…&message=…`: the request body (a root
/// filesystem tar, plain or compressed) as a one-layer image.
async fn import(engine: Shared, req: Req, q: Query) -> Result<Resp> {
    let reference = new_image_name(&q, "import")?;
    let message = q.get("message").map(String::from);
    let changes = changes(&q);
    let tmp =
        tempfile::tempfile().map_err(|e| ApiError::internal(format!("cannot create a temp file: {e}")))?;
    let file = tmp.try_clone().map_err(|e| ApiError::internal(e.to_string()))?;
    http::body_to_file(req, file).await?;
    blocking(move || {
        use std::io::Seek;
        let mut tmp = tmp;
        tmp.rewind().map_err(|e| ApiError::internal(e.to_string()))?;
        let builder = berth_builder::Builder::new(engine.images.clone(), None)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let id = builder
            .import(std::io::BufReader::new(tmp), message.as_deref(), &changes)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        if let Some(r) = &reference {
            engine.images.tag(&id.to_string(), r)?;
        }
        Ok(http::json(StatusCode::OK, &json!({"status": id.to_string()})))
    })
    .await
}

/// The `--change` instructions of a commit or import (`?changes=`, once per instruction).
pub(crate) fn changes(q: &Query) -> Vec<String> {
    q.all("changes")
        .into_iter()
        .filter(|c| !c.trim().is_empty() && c != "null" && c != "[]")
        .collect()
}

/// The name a commit or import gives its image (`?repo=` and `?tag=`).
pub(crate) fn new_image_name(q: &Query, _verb: &str) -> Result<Option<String>> {
    match (
        q.get("repo").filter(|r| !r.is_empty()),
        q.get("tag").filter(|t| !t.is_empty()),
    ) {
        (Some(r), Some(t)) => Ok(Some(format!("{r}:{t}"))),
        (Some(r), None) => Ok(Some(r.to_string())),
        (None, Some(_)) => Err(ApiError::bad_request(
            "a tag needs a repository — give ?repo= too",
        )),
        (None, None) => Ok(None),
    }
}

/// `GET /distribution/{name}/json`: the registry's descriptor of `name` and its platforms,
/// without pulling (what `docker pull` and the SDK's `get_registry_data` ask first).
pub async fn distribution(engine: Shared, req: Req, name: String) -> Result<Resp> {
    let reference = berth_reference::ImageRef::parse(&name)?;
    let auth = registry_auth(&req, reference.domain())?;
    let images = images_for(&engine, &auth)?;
    let handle = tokio::runtime::Handle::current();
    // As for a pull: the registry future is not Send, so it runs on a thread of its own.
    let d = tokio::task::spawn_blocking(move || {
        handle.block_on(async move {
            let _auth = auth;
            images.distribution(&reference).await
        })
    })
    .await
    .map_err(|e| ApiError::internal(format!("the registry lookup stopped: {e}")))??;
    let platforms: Vec<Value> = d
        .platforms
        .iter()
        .map(|p| {
            // Without an empty variant: the SDK's has_platform compares whole objects.
            let mut v = json!({"architecture": p.architecture(), "os": p.os()});
            if let Some(variant) = p.variant() {
                v["variant"] = json!(variant);
            }
            v
        })
        .collect();
    http::ok_json(&json!({
        "Descriptor": {
            "mediaType": d.descriptor.media_type().to_string(),
            "digest": d.descriptor.digest().to_string(),
            "size": d.descriptor.size(),
        },
        "Platforms": platforms,
    }))
}
