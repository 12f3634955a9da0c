//! Container endpoints: create (docker's Config/HostConfig mapped onto the engine's
//! options), lifecycle, list, inspect, logs, wait, stats, top, remove, prune.

use std::time::Duration;

use berth_containers::{ContainerRecord, CreateOptions, Status};
use berth_runtime::logs::{LogOptions, Stream};
use bytes::Bytes;
use hyper::StatusCode;
use serde_json::{json, Map, Value};

use crate::engine::Shared;
use crate::http::{self, blocking, Query, Req, Resp, Result};
use crate::{docker_json, ApiError};

pub async fn list(engine: Shared, q: Query) -> Result<Resp> {
    let filters = q.filters()?;
    filters.only(&[
        "name", "id", "status", "ancestor", "label", "exited", "network", "volume",
    ])?;
    let all = q.bool("all");
    let limit = q.int("limit")?.filter(|n| *n > 0);
    let size = q.bool("size");
    blocking(move || {
        let mut rows = engine
            .containers
            .list(all || limit.is_some() || !filters.get("status").is_empty())?;
        rows.retain(|s| {
            let r = &s.record;
            let any = |key: &str, f: &dyn Fn(&str) -> bool| {
                let want = filters.get(key);
                want.is_empty() || want.iter().any(|w| f(w))
            };
            any("name", &|w| r.name.contains(w.trim_start_matches('/')))
                && any("id", &|w| r.id.starts_with(w))
                && any("status", &|w| s.status.name() == w)
                && any("ancestor", &|w| {
                    r.image == w || r.image_id.to_string().contains(w) || ancestor_matches(&engine, r, w)
                })
                && any(
                    "exited",
                    &|w| matches!(s.status, Status::Exited { code, .. } if code.to_string() == w),
                )
                && any("network", &|w| {
                    r.host.network == w || r.attachments().iter().any(|a| a.name == w)
                })
                && any("volume", &|w| {
                    r.host.mounts.iter().any(|m| m.source == w || m.destination == w)
                })
                && filters.labels_match(&r.config.labels)
        });
        if let Some(n) = limit {
            rows.truncate(n as usize);
        }
        let out: Vec<Value> = rows
            .iter()
            .map(|s| {
                let mut v = docker_json::container_summary(s);
                if size {
                    v["SizeRw"] = json!(berth_host::disk::tree_size(
                        &engine.containers.paths(&s.record.id).upper()
                    ));
                }
                v
            })
            .collect();
        http::ok_json(&out)
    })
    .await
}

fn ancestor_matches(engine: &Shared, rec: &ContainerRecord, wanted: &str) -> bool {
    engine
        .images
        .resolve(wanted)
        .map(|img| img.id == rec.image_id)
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------- create

/// Whether a JSON value is what docker clients send for "not set".
fn is_default(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_default),
    }
}

/// Keys of `obj` that are set but not in `supported` (and not harmless metadata).
pub(crate) fn unsupported_keys(
    section: &str,
    obj: &Map<String, Value>,
    supported: &[&str],
    out: &mut Vec<String>,
) {
    for (k, v) in obj {
        if !supported.contains(&k.as_str()) && !is_default(v) {
            out.push(format!("{section}.{k}"));
        }
    }
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(String::from)).collect(),
        _ => Vec::new(),
    }
}

/// Maps docker's create body onto the engine's options (docker CLI strings).
fn create_options(body: &Value, name: Option<String>) -> Result<CreateOptions> {
    let empty = Map::new();
    let cfg = body.as_object().unwrap_or(&empty);
    let host = cfg.get("HostConfig").and_then(Value::as_object).unwrap_or(&empty);
    let mut bad = Vec::new();
    unsupported_keys(
        "Config",
        cfg,
        &[
            "Hostname",
            "Domainname",
            "User",
            "AttachStdin",
            "AttachStdout",
            "AttachStderr",
            "ExposedPorts",
            "Tty",
            "OpenStdin",
            "StdinOnce",
            "Env",
            "Cmd",
            "Image",
            "Volumes",
            "WorkingDir",
            "Entrypoint",
            "Labels",
            "HostConfig",
            "NetworkingConfig",
            "ArgsEscaped",
            "OnBuild",
            "MacAddress",
        ],
        &mut bad,
    );
    if cfg.get("Domainname").is_some_and(|v| !is_default(v)) {
        bad.push("Config.Domainname".into());
    }
    unsupported_keys(
        "HostConfig",
        host,
        &[
            "Binds",
            "PortBindings",
            "PublishAllPorts",
            "Mounts",
            "Memory",
            "NanoCpus",
            "PidsLimit",
            "RestartPolicy",
            "NetworkMode",
            "AutoRemove",
            "LogConfig",
            "ConsoleSize",
            "CgroupnsMode",
            "Isolation",
            "MemorySwappiness",
            "MemorySwap",
        ],
        &mut bad,
    );
    if let Some(t) = host
        .get("LogConfig")
        .and_then(|l| l.get("Type"))
        .and_then(Value::as_str)
    {
        if !t.is_empty() && t != "json-file" {
            bad.push(format!("HostConfig.LogConfig.Type={t} (only json-file)"));
        }
    }
    // json-file options become the engine's --log-opt strings (it names what it refuses).
    let mut log_opts = Vec::new();
    if let Some(lc) = host
        .get("LogConfig")
        .and_then(|l| l.get("Config"))
        .and_then(Value::as_object)
    {
        for (k, v) in lc {
            log_opts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    if let Some(m) = host.get("CgroupnsMode").and_then(Value::as_str) {
        if !m.is_empty() && m != "private" {
            bad.push(format!("HostConfig.CgroupnsMode={m}"));
        }
    }
    let memory = host.get("Memory").and_then(Value::as_i64).filter(|m| *m > 0);
    // docker's default swap is twice the memory, which is what the engine sets.
    if let (Some(swap), Some(mem)) = (host.get("MemorySwap").and_then(Value::as_i64), memory) {
        if swap != 0 && swap != 2 * mem {
            bad.push("HostConfig.MemorySwap".into());
        }
    }
    if let Some(s) = host.get("MemorySwappiness").and_then(Value::as_i64) {
        if s != -1 {
            bad.push("HostConfig.MemorySwappiness".into());
        }
    }
    let network_mode = host
        .get("NetworkMode")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty() && *m != "default")
        .map(String::from);
    let mut network_aliases = Vec::new();
    if let Some(eps) = cfg
        .get("NetworkingConfig")
        .and_then(|n| n.get("EndpointsConfig"))
        .and_then(Value::as_object)
    {
        for (net, ep) in eps {
            let same = Some(net.as_str()) == network_mode.as_deref()
                || (network_mode.is_none() && (net == "bridge" || net == "default"));
            if !same {
                bad.push(format!("NetworkingConfig.EndpointsConfig.{net} (one network per container, given by NetworkMode)"));
            } else if let Some(o) = ep.as_object() {
                unsupported_keys(
                    &format!("NetworkingConfig.EndpointsConfig.{net}"),
                    o,
                    &["NetworkID", "EndpointID", "Aliases", "DNSNames"],
                    &mut bad,
                );
                network_aliases = o.get("Aliases").map(strings).unwrap_or_default();
            }
        }
    }
    if !bad.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Berth does not support these container settings yet: {} — remove them and try again",
            bad.join(", ")
        )));
    }

    let image = cfg
        .get("Image")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad_request("Config.Image is required"))?
        .to_string();
    let mut cmd = strings(cfg.get("Cmd").unwrap_or(&Value::Null));
    let entrypoint = match cfg.get("Entrypoint") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let mut ep = strings(v);
            if ep.is_empty() {
                Some(String::new())
            } else {
                // The engine takes one entrypoint word; the rest lead the command.
                let first = ep.remove(0);
                ep.extend(cmd);
                cmd = ep;
                Some(first)
            }
        }
    };
    let mut publish = Vec::new();
    if let Some(pb) = host.get("PortBindings").and_then(Value::as_object) {
        for (port, bindings) in pb {
            let port = if port.contains('/') {
                port.clone()
            } else {
                format!("{port}/tcp")
            };
            let list = bindings.as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                publish.push(port.clone());
            }
            for b in list {
                let ip = b.get("HostIp").and_then(Value::as_str).unwrap_or("");
                let hp = b.get("HostPort").and_then(Value::as_str).unwrap_or("");
                publish.push(match (ip.is_empty(), hp.is_empty()) {
                    (true, true) => port.clone(),
                    (true, false) => format!("{hp}:{port}"),
                    (false, _) => format!("{ip}:{hp}:{port}"),
                });
            }
        }
    }
    let mut volumes = strings(host.get("Binds").unwrap_or(&Value::Null));
    if let Some(v) = cfg.get("Volumes").and_then(Value::as_object) {
        volumes.extend(v.keys().cloned());
    }
    let mut mounts = Vec::new();
    for m in host
        .get("Mounts")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        let Some(o) = m.as_object() else { continue };
        let mut extra = Vec::new();
        unsupported_keys(
            "Mounts[]",
            o,
            &["Type", "Source", "Target", "ReadOnly"],
            &mut extra,
        );
        if !extra.is_empty() {
            return Err(ApiError::bad_request(format!(
                "Berth does not support these mount settings yet: {}",
                extra.join(", ")
            )));
        }
        let kind = o.get("Type").and_then(Value::as_str).unwrap_or("volume");
        let mut spec = format!("type={kind}");
        if let Some(s) = o.get("Source").and_then(Value::as_str).filter(|s| !s.is_empty()) {
            spec.push_str(&format!(",source={s}"));
        }
        if let Some(t) = o.get("Target").and_then(Value::as_str) {
            spec.push_str(&format!(",target={t}"));
        }
        if o.get("ReadOnly").and_then(Value::as_bool) == Some(true) {
            spec.push_str(",readonly");
        }
        mounts.push(spec);
    }
    let restart = host.get("RestartPolicy").and_then(|r| {
        let name = r.get("Name").and_then(Value::as_str).unwrap_or("");
        let max = r.get("MaximumRetryCount").and_then(Value::as_i64).unwrap_or(0);
        match name {
            "" | "no" => None,
            "on-failure" if max > 0 => Some(format!("on-failure:{max}")),
            n => Some(n.to_string()),
        }
    });
    let labels = cfg
        .get("Labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    let text = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(String::from)
    };
    Ok(CreateOptions {
        image,
        name,
        cmd,
        entrypoint,
        env: strings(cfg.get("Env").unwrap_or(&Value::Null)),
        env_files: Vec::new(),
        workdir: text(cfg.get("WorkingDir")),
        user: text(cfg.get("User")),
        hostname: text(cfg.get("Hostname")),
        publish,
        publish_all: host
            .get("PublishAllPorts")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        volumes,
        mounts,
        network: network_mode,
        network_aliases,
        memory: memory.map(|m| format!("{m}b")),
        cpus: host
            .get("NanoCpus")
            .and_then(Value::as_i64)
            .filter(|n| *n > 0)
            .map(|n| format!("{}", n as f64 / 1e9)),
        pids_limit: host.get("PidsLimit").and_then(Value::as_i64).filter(|n| *n > 0),
        restart,
        labels,
        tty: cfg.get("Tty").and_then(Value::as_bool).unwrap_or(false),
        interactive: cfg.get("OpenStdin").and_then(Value::as_bool).unwrap_or(false),
        auto_remove: host.get("AutoRemove").and_then(Value::as_bool).unwrap_or(false),
        log_opts,
    })
}

pub async fn create(engine: Shared, req: Req, q: Query) -> Result<Resp> {
    if let Some(p) = q.get("platform") {
        let here = format!("linux/{}", crate::system::arch_name());
        if !p.starts_with(&here) {
            return Err(ApiError::bad_request(format!(
                "platform {p} is not supported: Berth runs {here} containers only"
            )));
        }
    }
    let body: Value = http::body_json(req).await?;
    let opts = create_options(&body, q.get("name").map(String::from))?;
    blocking(move || {
        let rec = engine.containers.create(&opts)?;
        engine.container_event("create", &rec);
        Ok(http::json(
            StatusCode::CREATED,
            &json!({"Id": rec.id, "Warnings": []}),
        ))
    })
    .await
}

// ---------------------------------------------------------------------------- lifecycle

pub async fn inspect(engine: Shared, id: &str) -> Result<Resp> {
    let id = id.to_string();
    blocking(move || {
        let rec = engine.containers.find(&id)?;
        http::ok_json(&docker_json::container_inspect(&engine.containers, &rec))
    })
    .await
}

pub async fn start(engine: Shared, id: &str, q: Query) -> Result<Resp> {
    if q.get("checkpoint").is_some() {
        return Err(ApiError::bad_request("checkpoints are not supported by Berth"));
    }
    let id = id.to_string();
    blocking(move || {
        let rec = engine.containers.find(&id)?;
        if engine.containers.status(&rec).is_running() {
            return Ok(http::empty(StatusCode::NOT_MODIFIED));
        }
        let rec = engine.containers.start(&rec.id)?;
        engine.containers.mark_stopped(&rec, false);
        engine.container_event("start", &rec);
        Ok(http::empty(StatusCode::NO_CONTENT))
    })
    .await
}

fn stop_timeout(q: &Query) -> Result<Duration> {
    let t = match q.int("t")? {
        Some(t) => Some(t),
        None => q.int("timeout")?,
    };
    Ok(Duration::from_secs(t.unwrap_or(10).max(0) as u64))
}

pub async fn stop(engine: Shared, id: &str, q: Query) -> Result<Resp> {
    if q.get("signal").is_some() {
        return Err(ApiError::bad_request(
            "stop ?signal= is not supported — the image's StopSignal (or SIGTERM) is sent",
        ));
    }
    let timeout = stop_timeout(&q)?;
    let id = id.to_string();
    blocking(move || {
        let rec = engine.containers.find(&id)?;
        if !engine.containers.status(&rec).is_running() {
            return Ok(http::empty(StatusCode::NOT_MODIFIED));
        }
        engine.containers.mark_stopped(&rec, true);
        engine.container_event("kill", &rec);
        engine.containers.stop(&rec.id, timeout)?;
        engine.announce_if_exited(&rec);
        engine.container_event("stop", &rec);
        Ok(http::empty(StatusCode::NO_CONTENT))
    })
    .await
}

pub async fn restart(engine: Shared, id: &str, q: Query) -> Result<Resp> {
    let timeout = stop_timeout(&q)?;
    let id = id.to_string();
    blocking(move || {
        let rec = engine.containers.find(&id)?;
        engine.containers.stop(&rec.id, timeout)?;
        let rec = engine.containers.start(&rec.id)?;
        engine.containers.mark_stopped(&rec, false);
        engine.container_event("restart", &rec);
        Ok(http::empty(StatusCode::NO_CONTENT))
    })
    .await
}

pub async fn kill(engine: Shared, id: &str, q: Query) -> Result<Resp> {
    let signal = q.get("signal").unwrap_or("SIGKILL").to_string();
    let id = id.to_string();
    blocking(move || {
        let sig = berth_containers::signal_number(&signal)?;
        let rec = engine.containers.find(&id)?;
        if !engine.containers.status(&rec).is_running() {
            return Err(ApiError::conflict(format!("Container {} is not running", rec.id)));
        }
        engine.containers.mark_stopped(&rec, true);
        engine.containers.kill(&rec.id, sig)?;
        let mut extra = Map::new();
        extra.insert("signal".into(), json!(sig.to_string()));
        engine.container_event_with("kill", &rec, extra);
        Ok(http::empty(StatusCode::NO_CONTENT))
    })
    .await
}

pub async fn pause(engine: Shared, id: &str, pause: bool) -> Result<Resp> {
    let id = id.to_string();
    blocking(move || {
        let rec = engine.containers.find(&id)?;
        if pause {
            engine.containers.pause(&rec.id)?;
        } else {
            if !matches!(engine.containers.status(&rec), Status::Paused { .. }) {
                return Err(ApiError::conflict(format!("Container {} is not paused", rec.id)));
            }
            engine.containers.unpause(&rec.id)?;
        }
        engine.container_event(if pause { "pause" } else { "unpause" }, &rec);
        Ok(http::empty(StatusCode::NO_CONTENT))
    })
    .await
}

pub async fn remove(engine: Shared, id: &str, q: Query) -> Result<Resp> {
    if q.bool("link") {
        return Err(ApiError::bad_request(
            "container links are not supported by Berth",
        ));
    }
    let (force, volumes) = (q.bool("force"), q.bool("v"));
    let id = id.to_string();
    blocking(move || {
        let rec = engine.containers.find(&id)?;
        if engine.containers.status(&rec).is_running() && !force {
            return Err(ApiError::conflict(format!(
                "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                rec.name
            )));
        }
        engine.containers.remove(&rec.id, force, volumes)?;
        engine.container_event("destroy", &rec);
        Ok(http::empty(StatusCode::NO_CONTENT))
    })
    .await
}

pub async fn prune(engine: Shared, q: Query) -> Result<Resp> {
    let filters = q.filters()?;
    filters.only(&["label", "until"])?;
    let until = filters.get("until").first().map(|u| parse_until(u)).transpose()?;
    blocking(move || {
        let mut deleted = Vec::new();
        let mut reclaimed = 0u64;
        for s in engine.containers.list(true)? {
            if s.status.is_running() || !filters.labels_match(&s.record.config.labels) {
                continue;
            }
            if until.is_some_and(|u| docker_json::unix_time(&s.record.created) >= u) {
                continue;
            }
            reclaimed += berth_host::disk::tree_size(&engine.containers.paths(&s.record.id).upper());
            engine.containers.remove(&s.record.id, false, false)?;
            engine.container_event("destroy", &s.record);
            deleted.push(s.record.id.clone());
        }
        http::ok_json(&json!({"ContainersDeleted": deleted, "SpaceReclaimed": reclaimed}))
    })
    .await
}

/// `until` of prune filters: a unix timestamp, an RFC 3339 time or a duration like `24h`.
pub fn parse_until(s: &str) -> Result<i64> {
    if let Ok(n) = s.parse::<f64>() {
        return Ok(n as i64);
    }
    if let Ok(t) = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Ok(t.unix_timestamp());
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num
        .parse()
        .map_err(|_| ApiError::bad_request(format!("invalid until '{s}'")))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => {
            return Err(ApiError::bad_request(format!(
                "invalid until '{s}': use e.g. 24h"
            )))
        }
    };
    Ok(time::OffsetDateTime::now_utc().unix_timestamp() - secs)
}

// ---------------------------------------------------------------------------- wait

/// The container's status, except that an exit the shim has not recorded yet (the
/// container died, its shim is still draining output) counts as still running, so
/// waiters never report the placeholder code of an unrecorded exit.
pub fn settled_status(engine: &Shared, rec: &ContainerRecord) -> Status {
    let st = engine.containers.status(rec);
    if let Status::Exited { started_at, .. } = &st {
        let shim = engine.containers.paths(&rec.id).shim();
        if !shim.join("exit.json").exists() {
            let shim_alive = berth_runtime::shim::read_state(&shim)
                .ok()
                .flatten()
                .is_some_and(|s| berth_host::process::alive(s.shim_pid));
            if shim_alive {
                return Status::Running {
                    pid: 0,
                    started_at: started_at.clone(),
                };
            }
        }
    }
    st
}

pub async fn wait(engine: Shared, id: &str, q: Query) -> Result<Resp> {
    let condition = q.get("condition").unwrap_or("not-running").to_string();
    if !matches!(condition.as_str(), "not-running" | "next-exit" | "removed") {
        return Err(ApiError::bad_request(format!(
            "invalid condition '{condition}': use not-running, next-exit or removed"
        )));
    }
    let id = id.to_string();
    let e = engine.clone();
    let rec = blocking(move || Ok(e.containers.find(&id)?)).await?;
    // The headers go out at once: clients (docker run) start the container only after
    // they know the wait is registered.
    let (tx, resp) = http::stream(StatusCode::OK, "application/json");
    let e = engine.clone();
    let start = settled_status(&e, &rec);
    if condition == "removed" && rec.host.auto_remove {
        // This waiter removes the container once it has its exit code (else the shim
        // would remove it first and the code would be lost).
        let _ = e.containers.mark_attached(&rec);
    }
    tokio::task::spawn_blocking(move || {
        let before = match &start {
            Status::Exited { finished_at, .. } => Some(finished_at.clone()),
            _ => None,
        };
        let mut seen_exit: Option<i32> = None;
        loop {
            if tx.is_closed() {
                return;
            }
            let exists = e.containers.paths(&rec.id).config().exists();
            if !exists {
                let code = seen_exit.unwrap_or(0);
                let _ = tx.blocking_send(http::json_line(&json!({"StatusCode": code, "Error": null})));
                return;
            }
            let st = settled_status(&e, &rec);
            let exited_now = match &st {
                Status::Exited {
                    code, finished_at, ..
                } => {
                    let fresh = before.as_deref() != Some(finished_at.as_str());
                    match condition.as_str() {
                        // An exit from before the request is not the next one; for
                        // `removed` any exit counts (the removal is what is awaited).
                        "next-exit" if !fresh && !matches!(start, Status::Created) => None,
                        _ => Some(*code),
                    }
                }
                Status::Created if condition == "not-running" => Some(0),
                _ => None,
            };
            if let Some(code) = exited_now {
                if let Status::Exited { finished_at, .. } = &st {
                    e.announce_exit(&rec, code, finished_at);
                }
                if condition != "removed" {
                    let _ = tx.blocking_send(http::json_line(&json!({"StatusCode": code, "Error": null})));
                    return;
                }
                seen_exit = Some(code);
                if rec.host.auto_remove {
                    // No need to wait for the shim: `remove` takes turns with its cleanup
                    // (whoever is first releases the run's resources).
                    let _ = e.containers.remove(&rec.id, true, true);
                    e.container_event("destroy", &rec);
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    Ok(resp)
}

// ---------------------------------------------------------------------------- logs

/// docker's multiplexed stream frame: stream type, three zero bytes, big-endian length.
pub fn frame(stream: u8, payload: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(8 + payload.len());
    v.push(stream);
    v.extend_from_slice(&[0, 0, 0]);
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    Bytes::from(v)
}

pub const MULTIPLEXED: &str = "application/vnd.docker.multiplexed-stream";
pub const RAW: &str = "application/vnd.docker.raw-stream";

fn log_time(s: &str) -> Result<time::OffsetDateTime> {
    if let Ok(f) = s.parse::<f64>() {
        let nanos = (f * 1e9) as i128;
        return time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .map_err(|_| ApiError::bad_request(format!("invalid time '{s}'")));
    }
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|_| ApiError::bad_request(format!("invalid time '{s}': use a unix timestamp")))
}

pub async fn logs(engine: Shared, id: &str, q: Query) -> Result<Resp> {
    let (stdout, stderr) = (q.bool("stdout"), q.bool("stderr"));
    if !stdout && !stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    if q.get("details").is_some_and(|_| q.bool("details")) {
        return Err(ApiError::bad_request(
            "logs ?details=1 is not supported (Berth's log has no attributes)",
        ));
    }
    let tail = match q.get("tail") {
        None | Some("all") => None,
        Some(n) => match n.parse::<i64>() {
            Ok(n) if n < 0 => None,
            Ok(n) => Some(n as usize),
            Err(_) => {
                return Err(ApiError::bad_request(format!(
                    "invalid tail '{n}': use a number or all"
                )))
            }
        },
    };
    let since = q.get("since").filter(|s| *s != "0").map(log_time).transpose()?;
    let until = q.get("until").filter(|s| *s != "0").map(log_time).transpose()?;
    let opts_base = (tail, since, until, q.bool("timestamps"), q.bool("follow"));
    let id = id.to_string();
    let e = engine.clone();
    let rec = blocking(move || Ok(e.containers.find(&id)?)).await?;
    let tty = rec.config.tty;
    let (tx, resp) = http::stream(StatusCode::OK, if tty { RAW } else { MULTIPLEXED });
    let log_path = engine.containers.log_path(&rec);
    let exit_file = engine.containers.paths(&rec.id).shim().join("exit.json");
    let (tail, since, until, timestamps, follow) = opts_base;
    let opts = LogOptions {
        tail,
        since,
        until,
        timestamps,
        follow,
        exit_file: Some(exit_file),
    };
    tokio::task::spawn_blocking(move || {
        let _ = berth_runtime::logs::read(&log_path, opts, |line| {
            let wanted = match line.stream {
                Stream::Stderr => stderr,
                _ => stdout,
            };
            if !wanted {
                return !tx.is_closed();
            }
            let bytes = if tty {
                Bytes::from(line.log.into_bytes())
            } else {
                frame(
                    if line.stream == Stream::Stderr { 2 } else { 1 },
                    line.log.as_bytes(),
                )
            };
            tx.blocking_send(bytes).is_ok()
        });
    });
    Ok(resp)
}

// ---------------------------------------------------------------------------- stats, top

fn stats_json(
    rec: &ContainerRecord,
    now: Option<&berth_containers::StatsSample>,
    now_sys: u64,
    prev: Option<&(berth_containers::StatsSample, u64, String)>,
    read: &str,
) -> Value {
    let ncpu = berth_host::facts::facts().cpus;
    let cpu = |s: Option<&berth_containers::StatsSample>, sys: u64| {
        json!({
            "cpu_usage": {"total_usage": s.map(|s| s.cpu_usage_ns).unwrap_or(0), "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "system_cpu_usage": sys,
            "online_cpus": ncpu,
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        })
    };
    let host_mem = berth_host::facts::facts().memory_bytes;
    json!({
        "read": read,
        "preread": prev.map(|p| p.2.clone()).unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
        "name": format!("/{}", rec.name),
        "id": rec.id,
        "pids_stats": {"current": now.map(|s| s.pids).unwrap_or(0)},
        "blkio_stats": {"io_service_bytes_recursive": null},
        "num_procs": 0,
        "cpu_stats": cpu(now, now_sys),
        "precpu_stats": match prev { Some((s, sys, _)) => cpu(Some(s), *sys), None => cpu(None, 0) },
        "memory_stats": match now {
            Some(s) => json!({"usage": s.memory_usage, "limit": s.memory_limit.unwrap_or(host_mem).min(host_mem.max(1)), "stats": {}}),
            None => json!({}),
        },
        "networks": match now {
            Some(s) => json!({"eth0": {"rx_bytes": s.net_rx, "tx_bytes": s.net_tx, "rx_packets": 0, "tx_packets": 0, "rx_errors": 0, "tx_errors": 0, "rx_dropped": 0, "tx_dropped": 0}}),
            None => json!({}),
        },
    })
}

pub async fn stats(engine: Shared, id: &str, q: Query) -> Result<Resp> {
    let stream = q.bool_or("stream", true);
    let one_shot = q.bool("one-shot");
    let id = id.to_string();
    let e = engine.clone();
    let rec = blocking(move || Ok(e.containers.find(&id)?)).await?;
    let (tx, resp) = http::stream(StatusCode::OK, "application/json");
    let e = engine.clone();
    tokio::task::spawn_blocking(move || {
        let now_str = || {
            time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        };
        let mut prev: Option<(berth_containers::StatsSample, u64, String)> = None;
        if !stream && !one_shot {
            // docker's one-off stats carry a previous sample a second earlier (for CPU %).
            if let Ok(Some(s)) = e.containers.stats(&rec) {
                prev = Some((s, berth_host::facts::cpu_time_ns(), now_str()));
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        loop {
            let sample = e.containers.stats(&rec).ok().flatten();
            let sys = berth_host::facts::cpu_time_ns();
            let read = now_str();
            let v = stats_json(&rec, sample.as_ref(), sys, prev.as_ref(), &read);
            if tx.blocking_send(http::json_line(&v)).is_err() || !stream {
                return;
            }
            prev = sample.map(|s| (s, sys, read));
            std::thread::sleep(Duration::from_secs(1));
            if tx.is_closed() {
                return;
            }
        }
    });
    Ok(resp)
}

pub async fn top(engine: Shared, id: &str, q: Query) -> Result<Resp> {
    let id = id.to_string();
    let ps_args = q.get("ps_args").unwrap_or("-ef").to_string();
    blocking(move || {
        let rec = engine.containers.find(&id)?;
        if !engine.containers.status(&rec).is_running() {
            return Err(ApiError::conflict(format!("Container {} is not running", rec.id)));
        }
        let pids: std::collections::HashSet<i64> = berth_cgroups::Cgroup::open(&rec.id)
            .ok()
            .flatten()
            .and_then(|c| c.pids().ok())
            .unwrap_or_default()
            .into_iter()
            .map(i64::from)
            .collect();
        let out = std::process::Command::new("ps")
            .args(ps_args.split_whitespace())
            .output()
            .map_err(|e| ApiError::internal(format!("cannot run ps: {e} — install procps")))?;
        if !out.status.success() {
            return Err(ApiError::internal(format!(
                "ps {ps_args} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let titles: Vec<String> = lines
            .next()
            .unwrap_or("")
            .split_whitespace()
            .map(String::from)
            .collect();
        let pid_col = titles
            .iter()
            .position(|t| t == "PID")
            .ok_or_else(|| ApiError::bad_request(format!("ps {ps_args} prints no PID column")))?;
        let n = titles.len();
        let processes: Vec<Vec<String>> = lines
            .filter_map(|l| {
                let fields: Vec<&str> = l.split_whitespace().collect();
                let pid: i64 = fields.get(pid_col)?.parse().ok()?;
                if !pids.contains(&pid) {
                    return None;
                }
                // The last column (the command) keeps its spaces.
                let mut row: Vec<String> = fields.iter().take(n - 1).map(|s| s.to_string()).collect();
                row.push(fields.get(n - 1..).map(|r| r.join(" ")).unwrap_or_default());
                Some(row)
            })
            .collect();
        http::ok_json(&json!({"Titles": titles, "Processes": processes}))
    })
    .await
}

pub async fn resize(engine: Shared, id: &str, q: Query) -> Result<Resp> {
    let (h, w) = (q.int("h")?.unwrap_or(0), q.int("w")?.unwrap_or(0));
    let id = id.to_string();
    blocking(move || {
        let rec = engine.containers.find(&id)?;
        crate::attach::resize_container(&engine, &rec, h as u16, w as u16)?;
        Ok(http::empty(StatusCode::OK))
    })
    .await
}
