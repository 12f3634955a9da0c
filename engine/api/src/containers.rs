//! Container endpoints: create (the body's conversion is `create.rs`), lifecycle, list, inspect, logs, wait, stats, top, remove, prune.

use std::time::Duration;

use berth_containers::{ContainerRecord, Status, WaitCondition};
use berth_containers::{LogOptions, Stream};
use bytes::Bytes;
use hyper::StatusCode;
use serde_json::{json, Value};

use crate::engine::Shared;
use crate::http::{self, blocking, Query, Req, Resp, Result};
use crate::{docker_json, ApiError};

pub async fn list(engine: Shared, q: Query) -> Result<Resp> {
    let filters = q.filters()?;
    filters.only(&[
        "name", "id", "status", "ancestor", "label", "exited", "network", "volume", "health",
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
                && any("health", &|w| s.health.as_deref().unwrap_or("none") == w)
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
    let opts = crate::create::container_config(&body, q.get("name").map(String::from), engine.host_paths)?;
    blocking(move || {
        let rec = engine.containers.create(&opts)?;
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
        engine.containers.start(&rec.id)?;
        Ok(http::empty(StatusCode::NO_CONTENT))
    })
    .await
}

/// `?t=` (or `?timeout=`), else the container's `StopTimeout`, else docker's 10 s.
fn stop_timeout(q: &Query) -> Result<Option<i64>> {
    Ok(match q.int("t")? {
        Some(t) => Some(t),
        None => q.int("timeout")?,
    })
}

fn grace(asked: Option<i64>, rec: &ContainerRecord) -> Duration {
    Duration::from_secs(asked.or(rec.config.stop_timeout).unwrap_or(10).max(0) as u64)
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
        engine.containers.stop(&rec.id, grace(timeout, &rec))?;
        Ok(http::empty(StatusCode::NO_CONTENT))
    })
    .await
}

pub async fn restart(engine: Shared, id: &str, q: Query) -> Result<Resp> {
    let timeout = stop_timeout(&q)?;
    let id = id.to_string();
    blocking(move || {
        let rec = engine.containers.find(&id)?;
        engine.containers.restart(&rec.id, grace(timeout, &rec))?;
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
        engine.containers.kill(&rec.id, sig)?;
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

pub async fn wait(engine: Shared, id: &str, q: Query) -> Result<Resp> {
    let condition = match q.get("condition").unwrap_or("not-running") {
        "not-running" => WaitCondition::NotRunning,
        "next-exit" => WaitCondition::NextExit,
        "removed" => WaitCondition::Removed,
        other => {
            return Err(ApiError::bad_request(format!(
                "invalid condition '{other}': use not-running, next-exit or removed"
            )))
        }
    };
    let id = id.to_string();
    let e = engine.clone();
    let waiter = blocking(move || {
        let rec = e.containers.find(&id)?;
        Ok(e.containers.begin_wait(&rec, condition))
    })
    .await?;
    // The headers go out at once: clients (docker run) start the container only after
    // they know the wait is registered.
    let (tx, resp) = http::stream(StatusCode::OK, "application/json");
    tokio::task::spawn_blocking(move || {
        if let Some(code) = waiter.wait(|| tx.is_closed()) {
            let _ = tx.blocking_send(http::json_line(&json!({"StatusCode": code, "Error": null})));
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
        let _ = engine.containers.read_logs(&rec, opts, |line| {
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
        let pids: std::collections::HashSet<i64> =
            engine.containers.pids(&rec).into_iter().map(i64::from).collect();
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

/// `POST /containers/{id}/rename?name=NEW`.
pub async fn rename(engine: Shared, id: &str, q: Query) -> Result<Resp> {
    let id = id.to_string();
    let name = q
        .get("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("give the new name in ?name= — e.g. docker rename old new"))?
        .to_string();
    blocking(move || {
        engine.containers.rename(&id, &name)?;
        Ok(http::empty(StatusCode::NO_CONTENT))
    })
    .await
}

/// `GET /containers/{id}/changes`: `[{"Path": "/tmp/x", "Kind": 1}, …]` (null when none,
/// as docker answers).
pub async fn changes(engine: Shared, id: &str) -> Result<Resp> {
    let id = id.to_string();
    blocking(move || {
        let changes = engine.containers.changes(&id)?;
        if changes.is_empty() {
            return http::ok_json(&Value::Null);
        }
        let rows: Vec<Value> = changes
            .iter()
            .map(|c| json!({"Path": c.path, "Kind": c.kind as u8}))
            .collect();
        http::ok_json(&rows)
    })
    .await
}

/// `POST /containers/{id}/update`: limits and restart policy, live.
pub async fn update(engine: Shared, id: &str, req: Req) -> Result<Resp> {
    let body: Value = http::body_json(req).await?;
    let (limits, restart) = crate::create::update_settings(&body)?;
    let id = id.to_string();
    blocking(move || {
        engine.containers.update(&id, &limits, restart)?;
        http::ok_json(&json!({"Warnings": []}))
    })
    .await
}
