//! System endpoints: `/_ping`, `/version`, `/info`, `/system/df`, `/events` (the services'
//! feed in docker's JSON), `/auth`.

use std::time::Duration;

use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::engine::Shared;
use crate::http::{self, blocking, Query, Req, Resp, Result};
use crate::{docker_json, ApiError, API_VERSION, MIN_API_VERSION};

pub fn ping(method: &Method) -> Resp {
    let mut r = if method == Method::HEAD {
        http::empty(StatusCode::OK)
    } else {
        http::text(StatusCode::OK, "OK")
    };
    r.headers_mut().insert(
        "Cache-Control",
        hyper::header::HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    r
}

pub fn arch_name() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

pub fn version() -> Result<Resp> {
    let v = env!("CARGO_PKG_VERSION");
    http::ok_json(&json!({
        "Platform": {"Name": "Berth Engine"},
        "Components": [{
            "Name": "Engine",
            "Version": v,
            "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "Os": "linux", "Arch": arch_name(), "KernelVersion": berth_host::facts::facts().kernel, "Experimental": "false"},
        }],
        "Version": v,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": arch_name(),
        "KernelVersion": berth_host::facts::facts().kernel,
        "Experimental": false,
        "BuildTime": "",
    }))
}

pub async fn info(engine: Shared) -> Result<Resp> {
    blocking(move || {
        let all = engine.containers.list(true)?;
        let running = all.iter().filter(|c| matches!(c.status, berth_containers::Status::Running { .. })).count();
        let paused = all.iter().filter(|c| matches!(c.status, berth_containers::Status::Paused { .. })).count();
        let images = engine.images.store().images().map_err(|e| ApiError::internal(e.to_string()))?;
        let cgroup_version = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() { "2" } else { "1" };
        let host = berth_host::facts::facts();
        http::ok_json(&json!({
            "ID": docker_json::network_id(&engine.config.root.display().to_string()),
            "Containers": all.len(),
            "ContainersRunning": running,
            "ContainersPaused": paused,
            "ContainersStopped": all.len() - running - paused,
            "Images": images.len(),
            "Driver": "overlay2",
            "DriverStatus": [["Backing Filesystem", "overlayfs"]],
            "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"], "Authorization": null, "Log": ["json-file"]},
            "MemoryLimit": true,
            "SwapLimit": true,
            "CpuCfsPeriod": true,
            "CpuCfsQuota": true,
            "PidsLimit": true,
            "IPv4Forwarding": true,
            "Debug": false,
            "NFd": std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0),
            "NGoroutines": 0,
            "SystemTime": time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": cgroup_version,
            "KernelVersion": berth_host::facts::facts().kernel,
            "OperatingSystem": host.os,
            "OSVersion": "",
            "OSType": "linux",
            "Architecture": std::env::consts::ARCH,
            "NCPU": host.cpus,
            "MemTotal": host.memory_bytes,
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {
                "InsecureRegistryCIDRs": ["127.0.0.0/8"],
                "IndexConfigs": {},
                "Mirrors": engine.config.registry_mirrors,
            },
            "DockerRootDir": engine.config.root,
            "Name": host.hostname,
            "Labels": [],
            "ExperimentalBuild": false,
            "ServerVersion": env!("CARGO_PKG_VERSION"),
            "Runtimes": {"berth": {"path": "berth"}},
            "DefaultRuntime": "berth",
            "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": false, "Error": "", "RemoteManagers": null},
            "LiveRestoreEnabled": true,
            "Isolation": "",
            "InitBinary": "",
            // docker's own words for an engine run by an ordinary user (`docker info` prints
            // "rootless" under Security Options; the desktop says "Built-in, rootless").
            "SecurityOptions": if crate::rootless() {
                serde_json::json!(["name=seccomp,profile=builtin", "name=rootless"])
            } else {
                serde_json::json!(["name=seccomp,profile=builtin"])
            },
            "Warnings": [],
        }))
    })
    .await
}

pub async fn df(engine: Shared) -> Result<Resp> {
    blocking(move || {
        let all = engine.containers.list(true)?;
        let usage = engine
            .images
            .store()
            .disk_usage()
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let rows = engine.images.list()?;
        let mut by_id: Vec<(berth_oci::Digest, Vec<&berth_images::ImageSummary>)> = Vec::new();
        for r in &rows {
            match by_id.iter_mut().find(|(id, _)| id == &r.id) {
                Some((_, v)) => v.push(r),
                None => by_id.push((r.id.clone(), vec![r])),
            }
        }
        let images: Vec<Value> = by_id
            .iter()
            .map(|(id, rs)| {
                let users = all.iter().filter(|c| &c.record.image_id == id).count();
                docker_json::image_summary(id, rs, users)
            })
            .collect();
        let containers: Vec<Value> = all
            .iter()
            .map(|c| {
                let mut v = docker_json::container_summary(c);
                v["SizeRw"] = json!(berth_host::disk::tree_size(
                    &engine.containers.paths(&c.record.id).upper()
                ));
                v["SizeRootFs"] = json!(0);
                v
            })
            .collect();
        let volumes: Vec<Value> = engine
            .containers
            .volumes()
            .list()?
            .iter()
            .map(|v| {
                let refs = engine
                    .containers
                    .users_of_volume(&v.name)
                    .map(|u| u.len())
                    .unwrap_or(0);
                let mut j = docker_json::volume(v);
                j["UsageData"] =
                    json!({"Size": berth_host::disk::tree_size(&v.mountpoint), "RefCount": refs});
                j
            })
            .collect();
        http::ok_json(&json!({
            "LayersSize": usage.blob_bytes + usage.layer_bytes,
            "Images": images,
            "Containers": containers,
            "Volumes": volumes,
            "BuildCache": build_cache(&engine)?,
        }))
    })
    .await
}

/// The builder's cache entries; each one's size is what only it keeps alive (layers no
/// image and no earlier entry uses).
fn build_cache(engine: &Shared) -> Result<Vec<Value>> {
    let md = engine
        .images
        .store()
        .metadata()
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut counted: std::collections::HashSet<&berth_oci::Digest> = md
        .images
        .values()
        .flat_map(|r| r.layers.iter().map(|l| &l.diff_id))
        .collect();
    let mut out = Vec::new();
    for (key, rec) in &md.build_cache {
        let size: u64 = rec
            .layers
            .iter()
            .filter(|l| counted.insert(&l.diff_id))
            .map(|l| l.blob.size())
            .sum();
        out.push(json!({
            "ID": key.chars().take(25).collect::<String>(),
            "Parent": "",
            "Type": "regular",
            "Description": "",
            "InUse": false,
            "Shared": false,
            "Size": size,
            "CreatedAt": rec.stored_at,
            "LastUsedAt": rec.stored_at,
            "UsageCount": 0,
        }));
    }
    Ok(out)
}

/// `GET /events`: live events (and recent ones with `since`), filtered like docker.
pub async fn events(engine: Shared, q: Query) -> Result<Resp> {
    let filters = q.filters()?;
    filters.only(&[
        "type",
        "event",
        "container",
        "image",
        "label",
        "volume",
        "network",
    ])?;
    let parse_time = |key: &str| -> Result<Option<f64>> {
        q.get(key)
            .map(|v| {
                v.parse::<f64>()
                    .ok()
                    .or_else(|| {
                        time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
                            .ok()
                            .map(|t| t.unix_timestamp() as f64)
                    })
                    .ok_or_else(|| {
                        ApiError::bad_request(format!("invalid {key} '{v}': use a unix timestamp"))
                    })
            })
            .transpose()
    };
    let since = parse_time("since")?;
    let until = parse_time("until")?;
    let keep = move |ev: &Value| -> bool {
        // To the nanosecond: `--since 1700000000.5` keeps an event at .7 of that second.
        let t = ev["timeNano"].as_i64().map(|n| n as f64 / 1e9).unwrap_or(0.0);
        if since.is_some_and(|s| t < s) || until.is_some_and(|u| t > u) {
            return false;
        }
        let any = |key: &str, actual: &[&str]| {
            let want = filters.get(key);
            want.is_empty()
                || want.iter().any(|w| {
                    actual
                        .iter()
                        .any(|a| !a.is_empty() && (a == w || a.starts_with(w.as_str())))
                })
        };
        let attrs = &ev["Actor"]["Attributes"];
        let is = |t: &str| ev["Type"] == t;
        let id = ev["id"].as_str().unwrap_or("");
        let name = attrs["name"].as_str().unwrap_or("");
        let image = attrs["image"].as_str().unwrap_or("");
        any("type", &[ev["Type"].as_str().unwrap_or("")])
            && any("event", &[ev["Action"].as_str().unwrap_or("")])
            && (filters.get("container").is_empty() || (is("container") && any("container", &[id, name])))
            && any("image", &[image])
            && (filters.get("volume").is_empty() || (is("volume") && any("volume", &[id])))
            && (filters.get("network").is_empty() || (is("network") && any("network", &[id, name])))
            && filters.get("label").iter().all(|l| match l.split_once('=') {
                Some((k, v)) => attrs[k] == v,
                None => !attrs[l.as_str()].is_null(),
            })
    };
    let mut rx = engine
        .events
        .subscribe()
        .ok_or_else(|| ApiError::internal("this engine keeps no event feed"))?;
    // The exit watcher starts looking once someone follows the events.
    engine.containers.wake_waiters();
    // Past events only when asked for (`since`); a plain subscription starts now.
    let past: Vec<Value> = match since {
        Some(_) => engine
            .events
            .history()
            .iter()
            .map(docker_json::event)
            .filter(|e| keep(e))
            .collect(),
        None => Vec::new(),
    };
    let (tx, resp) = http::stream(StatusCode::OK, "application/json");
    let until_instant = until.map(|u| {
        let now = time::OffsetDateTime::now_utc().unix_timestamp() as f64;
        tokio::time::Instant::now() + Duration::from_secs_f64((u - now).max(0.0))
    });
    tokio::spawn(async move {
        for ev in past {
            if tx.send(http::json_line(&ev)).await.is_err() {
                return;
            }
        }
        loop {
            let next = async {
                match until_instant {
                    Some(t) => tokio::time::timeout_at(t, rx.recv()).await.ok(),
                    None => Some(rx.recv().await),
                }
            };
            tokio::select! {
                _ = tx.closed() => return,
                got = next => match got {
                    None => return,
                    Some(Ok(ev)) => {
                        let ev = docker_json::event(&ev);
                        if keep(&ev) && tx.send(http::json_line(&ev)).await.is_err() {
                            return;
                        }
                    }
                    Some(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
                    Some(Err(_)) => return,
                },
            }
        }
    });
    Ok(resp)
}

#[derive(Deserialize, Default)]
struct AuthBody {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    serveraddress: String,
}

/// `host[:port]` of docker's server address forms (`https://index.docker.io/v1/`, `host:5000`).
pub fn registry_host(server: &str) -> String {
    let s = server
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = s.split('/').next().unwrap_or("");
    match host {
        "" | "index.docker.io" | "registry-1.docker.io" => "docker.io".into(),
        h => h.to_string(),
    }
}

pub async fn auth(engine: Shared, req: Req) -> Result<Resp> {
    let body: AuthBody = http::body_json(req).await?;
    if body.username.is_empty() || body.password.is_empty() {
        return Err(ApiError::bad_request("username and password must not be empty"));
    }
    let registry = registry_host(&body.serveraddress);
    engine
        .images
        .registry()
        .check_login(&registry, &body.username, &body.password)
        .await
        .map_err(|e| ApiError::Http {
            status: if crate::error::is_auth_error(&e) {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            },
            message: e.to_string(),
        })?;
    http::ok_json(&json!({"Status": "Login Succeeded", "IdentityToken": ""}))
}

/// `POST /berth/system/check[?repair=1]`: Berth's own endpoint for `berth system check`.
/// The store's and the containers' problems, one sentence each, as `{"Lines": [...],
/// "Problems": N}` (N counted after the repair, when one was asked for).
pub async fn check(engine: Shared, q: Query) -> Result<Resp> {
    let repair = q.bool("repair");
    blocking(move || {
        let internal = |e: &dyn std::fmt::Display| ApiError::internal(e.to_string());
        let store = engine.images.store();
        let containers = &engine.containers;
        let mut lines = Vec::new();
        let mut report = store.check().map_err(|e| internal(&e))?;
        let mut ctr = containers.check()?;
        if repair && (!report.problems.is_empty() || !ctr.is_empty()) {
            for p in &report.problems {
                lines.push(format!("repairing: {p}"));
            }
            for p in ctr.iter().filter(|p| p.repairable()) {
                lines.push(format!("repairing: {p}"));
            }
            // Containers first: a released run no longer holds layers GC may then free.
            containers.repair(&ctr)?;
            let done = store.repair(&report).map_err(|e| internal(&e))?;
            for o in &done.records_removed {
                lines.push(format!(
                    "removed {o}: content it needs was damaged or missing; pull it again"
                ));
            }
            for t in &done.tags_removed {
                lines.push(format!("removed tag {t}"));
            }
            if done.deferred {
                lines.push("a pull, load or build is running, so unused content was left for later: run this again when it ends".into());
            }
            report = store.check().map_err(|e| internal(&e))?;
            ctr = containers.check()?;
        }
        for p in &report.problems {
            lines.push(format!("problem: {p}"));
        }
        for p in &ctr {
            lines.push(format!("problem: {p}"));
        }
        let n = report.problems.len() + ctr.len();
        lines.push(format!(
            "checked {} blobs, {} layer directories, {} image and cache records, {} containers: {}",
            report.blobs_checked,
            report.layers_checked,
            report.records_checked,
            containers.records()?.len(),
            match n {
                0 => "no problems".to_string(),
                1 => "1 problem".to_string(),
                n => format!("{n} problems"),
            }
        ));
        if report.in_flight {
            lines.push("a pull, load or build is running, so its unfinished content was not counted".into());
        }
        if n > 0 && !repair {
            lines.push("run `berth system check --repair` to remove what is damaged or unused".into());
        }
        http::ok_json(&json!({"Lines": lines, "Problems": n}))
    })
    .await
}
