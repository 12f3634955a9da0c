//! `POST /build`: docker's classic builder endpoint (what `DOCKER_BUILDKIT=0 docker build`
//! uses). The tar context is unpacked into a temp dir and built by `berth_builder`; the
//! output is docker's JSON stream (`{"stream": …}`, `{"aux": {"ID": …}}`, errors as
//! `{"errorDetail": …, "error": …}`).

use std::collections::HashMap;
use std::io::Read;

use berth_builder::{BuildEvent, BuildOptions, Builder};
use bytes::Bytes;
use hyper::StatusCode;
use serde_json::{json, Value};

use crate::engine::Shared;
use crate::http::{self, blocking, Query, Req, Resp, Result};
use crate::ApiError;

/// Query parameters the classic builder takes and what Berth does with them.
const HONOURED: &[&str] = &[
    "t",
    "dockerfile",
    "buildargs",
    "labels",
    "target",
    "nocache",
    "pull",
    "networkmode",
    "q",
    "rm",
    "forcerm",
    "version",
    "session",
    "extrahosts",
    "shmsize",
    "cachefrom",
    "isolation",
];

fn is_default(v: &str) -> bool {
    matches!(v, "" | "0" | "false" | "null" | "[]" | "{}")
}

fn json_map(q: &Query, key: &str) -> Result<Vec<(String, String)>> {
    let Some(raw) = q.get(key) else {
        return Ok(Vec::new());
    };
    let map: HashMap<String, Option<String>> = serde_json::from_str(raw)
        .map_err(|e| ApiError::bad_request(format!("invalid {key} '{raw}': {e}")))?;
    let mut out: Vec<(String, String)> = map.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect();
    out.sort();
    Ok(out)
}

fn options(q: &Query, context: std::path::PathBuf) -> Result<BuildOptions> {
    let mut bad: Vec<String> = q
        .pairs()
        .filter(|(k, v)| !HONOURED.contains(&k.as_str()) && !is_default(v))
        .map(|(k, _)| k.clone())
        .collect();
    bad.sort();
    bad.dedup();
    if !bad.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Berth's builder does not support these build options yet: {} — remove them and try again",
            bad.join(", ")
        )));
    }
    if q.get("version") == Some("2") {
        return Err(ApiError::bad_request(
            "BuildKit builds are not supported by Berth — set DOCKER_BUILDKIT=0 to use the classic builder",
        ));
    }
    if q.get("remote").is_some() {
        return Err(ApiError::bad_request(
            "building from a remote URL is not supported — send the context as a tar",
        ));
    }
    let network = match q.get("networkmode") {
        None | Some("default") => "default".to_string(),
        Some(n @ ("bridge" | "none" | "host")) => n.to_string(),
        Some(n) => {
            return Err(ApiError::bad_request(format!(
                "network mode \"{n}\" is not supported for builds — use default, none or host"
            )))
        }
    };
    if let Some(i) = q.get("isolation").filter(|i| !matches!(*i, "" | "default")) {
        return Err(ApiError::bad_request(format!(
            "isolation '{i}' is not supported on Linux — leave --isolation out"
        )));
    }
    // `--add-host a:1.2.3.4,b:…` (the docker CLI joins them with commas).
    let mut extra_hosts = Vec::new();
    for entry in q
        .get("extrahosts")
        .unwrap_or("")
        .split(',')
        .filter(|e| !e.is_empty())
    {
        let (name, ip) = entry
            .split_once(':')
            .filter(|(n, ip)| !n.is_empty() && ip.parse::<std::net::IpAddr>().is_ok())
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "invalid extra host '{entry}' — write NAME:IP, e.g. db:10.0.0.5"
                ))
            })?;
        extra_hosts.push((name.to_string(), ip.to_string()));
    }
    let shm_size = match q.int("shmsize")? {
        None | Some(0) => None,
        Some(n) if n < 0 => {
            return Err(ApiError::bad_request(
                "shmsize must not be negative — e.g. --shm-size 128m",
            ))
        }
        Some(n) => Some(n as u64),
    };
    // cachefrom: every local image is a cache source already, those named too.
    let dockerfile = q
        .get("dockerfile")
        .map(|d| context.join(d.trim_start_matches('/')));
    Ok(BuildOptions {
        context,
        dockerfile,
        tags: q.all("t").into_iter().filter(|t| !t.is_empty()).collect(),
        target: q.get("target").map(String::from),
        no_cache: q.bool("nocache"),
        pull: q.bool("pull"),
        build_args: json_map(q, "buildargs")?,
        labels: json_map(q, "labels")?,
        network,
        extra_hosts,
        shm_size,
    })
}

/// Unpacks a (possibly gzipped) tar context into `dir`; entries escaping it are refused.
fn unpack_context(file: &std::path::Path, dir: &std::path::Path) -> Result<()> {
    let bad = |e: std::io::Error| {
        ApiError::bad_request(format!("the build context is not a valid tar archive: {e}"))
    };
    let mut f =
        std::fs::File::open(file).map_err(|e| ApiError::internal(format!("cannot read the context: {e}")))?;
    let mut magic = [0u8; 2];
    let n = f.read(&mut magic).map_err(bad)?;
    let f =
        std::fs::File::open(file).map_err(|e| ApiError::internal(format!("cannot read the context: {e}")))?;
    let reader: Box<dyn Read> = if n == 2 && magic == [0x1f, 0x8b] {
        Box::new(flate2::read::GzDecoder::new(f))
    } else {
        Box::new(f)
    };
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    // `unpack` refuses entries that would land outside `dir` (`..`, absolute paths).
    archive.unpack(dir).map_err(bad)
}

fn event_line(e: BuildEvent) -> Value {
    match e {
        BuildEvent::Step {
            number,
            total,
            instruction,
        } => json!({"stream": format!("Step {number}/{total} : {instruction}\n")}),
        BuildEvent::UsingCache => json!({"stream": " ---> Using cache\n"}),
        BuildEvent::Running { container } => json!({"stream": format!(" ---> Running in {container}\n")}),
        BuildEvent::Output(bytes) => json!({"stream": String::from_utf8_lossy(&bytes)}),
        BuildEvent::RemovingIntermediate { container } => {
            json!({"stream": format!("Removing intermediate container {container}\n")})
        }
        BuildEvent::StepDone { image } => json!({"stream": format!(" ---> {}\n", image.short())}),
        BuildEvent::Triggers { count } => json!({"stream": format!(
            "# Executing {count} build trigger{}\n",
            if count == 1 { "" } else { "s" }
        )}),
        BuildEvent::Status(s) => json!({"stream": format!("{s}\n")}),
        BuildEvent::Warning(w) => json!({"stream": format!("[Warning] {w}\n")}),
    }
}

pub async fn build(engine: Shared, req: Req, q: Query) -> Result<Resp> {
    let tmp = tempfile::Builder::new()
        .prefix("berth-build-")
        .tempdir()
        .map_err(|e| ApiError::internal(format!("cannot create a temp dir: {e}")))?;
    let opts = options(&q, tmp.path().join("context"));
    let quiet = q.bool("q");
    let tar_path = tmp.path().join("context.tar");
    let file = std::fs::File::create(&tar_path)
        .map_err(|e| ApiError::internal(format!("cannot store the context: {e}")))?;
    // The context is read even when the options are refused: a client still sending it
    // would otherwise see a broken pipe instead of the error.
    http::body_to_file(req, file).await?;
    let opts = opts?;
    let ctx = opts.context.clone();
    blocking(move || {
        std::fs::create_dir_all(&ctx)
            .map_err(|e| ApiError::internal(format!("cannot create the context dir: {e}")))?;
        unpack_context(&tar_path, &ctx)
    })
    .await?;
    // The registry settings daemon.json has now, for the FROM images it pulls.
    let builder = Builder::new(engine.images_now()?, Some(engine.containers.network().clone()))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let (tx, resp) = http::stream(StatusCode::OK, "application/json");
    // A client that hangs up (Ctrl-C) cancels the build.
    let watcher = {
        let (tx, builder) = (tx.clone(), builder.clone());
        tokio::spawn(async move {
            tx.closed().await;
            builder.cancel();
        })
    };
    tokio::task::spawn_blocking(move || {
        let _tmp = tmp;
        let send = |v: Value| {
            let _ = tx.blocking_send(http::json_line(&v));
        };
        // A panic in the builder must still end the stream with an error: the watcher
        // holds a sender, so the response would otherwise never finish.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            builder.build(&opts, &mut |e| {
                if !quiet || matches!(e, BuildEvent::Warning(_)) {
                    send(event_line(e));
                }
            })
        }));
        match result {
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                let message = format!(
                    "the build stopped on an internal error ({what}); try again, and report it if it repeats"
                );
                send(json!({"errorDetail": {"message": message}, "error": message}));
            }
            Ok(Ok(outcome)) => {
                send(json!({"aux": {"ID": outcome.image_id.to_string()}}));
                if quiet {
                    send(json!({"stream": format!("{}\n", outcome.image_id)}));
                } else {
                    send(json!({"stream": format!("Successfully built {}\n", outcome.image_id.short())}));
                    for t in &outcome.tags {
                        send(json!({"stream": format!("Successfully tagged {t}\n")}));
                    }
                }
            }
            Ok(Err(e)) => {
                let message = e.to_string();
                // Like dockerd, a failed RUN carries its exit code (the CLI exits with it).
                let detail = match &e {
                    berth_builder::BuildError::RunFailed { code, .. } => {
                        json!({"code": code, "message": message})
                    }
                    _ => json!({"message": message}),
                };
                send(json!({"errorDetail": detail, "error": message}));
            }
        }
        watcher.abort();
        drop(tx);
        let _ = Bytes::new();
    });
    Ok(resp)
}

/// `POST /build/prune`: the builder's cache (`all` also drops entries images still use).
pub async fn prune(engine: Shared, q: Query) -> Result<Resp> {
    let filters = q.filters()?;
    filters.only(&[])?;
    let all = q.bool("all");
    blocking(move || {
        let builder = Builder::new(engine.images.clone(), Some(engine.containers.network().clone()))
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let report = builder
            .prune(all)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        http::ok_json(&json!({"CachesDeleted": [], "SpaceReclaimed": report.bytes_freed, "EntriesRemoved": report.entries_removed}))
    })
    .await
}

/// `POST /commit?container=…&repo=…&tag=…&comment=…&author=…`: the container's changes as
/// a new image (docker pauses the container meanwhile; Berth copies its changes as they are).
pub async fn commit(engine: Shared, q: Query) -> Result<Resp> {
    let container = q
        .get("container")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::bad_request("give the container to commit in ?container="))?
        .to_string();
    let reference = crate::images::new_image_name(&q, "commit")?;
    let (comment, author) = (
        q.get("comment").map(String::from),
        q.get("author").map(String::from),
    );
    let changes = crate::images::changes(&q);
    blocking(move || {
        let rec = engine.containers.find(&container)?;
        let config = berth_builder::CommitConfig {
            cmd: rec.config.cmd.clone(),
            entrypoint: rec.config.entrypoint.clone(),
            env: rec.config.env.clone(),
            working_dir: rec.config.working_dir.clone(),
            user: rec.config.user.clone(),
            labels: rec.config.labels.clone(),
            exposed_ports: rec.config.exposed_ports.clone(),
            comment,
            author,
            changes,
        };
        let builder =
            Builder::new(engine.images.clone(), None).map_err(|e| ApiError::internal(e.to_string()))?;
        let id = builder
            .commit(&engine.containers.paths(&rec.id).upper(), &rec.image_id, &config)
            .map_err(|e| match e {
                berth_builder::BuildError::Parse(m) => ApiError::bad_request(m),
                e => ApiError::internal(e.to_string()),
            })?;
        if let Some(r) = &reference {
            engine.images.tag(&id.to_string(), r)?;
        }
        Ok(http::json(StatusCode::CREATED, &json!({"Id": id.to_string()})))
    })
    .await
}
