//! Volume endpoints: list, create, inspect, remove, prune.

use hyper::StatusCode;
use serde_json::{json, Value};

use crate::engine::Shared;
use crate::http::{self, blocking, Query, Req, Resp, Result};
use crate::{docker_json, ApiError};

pub async fn list(engine: Shared, q: Query) -> Result<Resp> {
    let filters = q.filters()?;
    filters.only(&["name", "dangling", "label"])?;
    let dangling = filters.get("dangling").first().map(|d| d == "true" || d == "1");
    blocking(move || {
        let vols = engine.containers.volumes().list()?;
        let mut out = Vec::new();
        for v in &vols {
            let names = filters.get("name");
            if !names.is_empty() && !names.iter().any(|n| v.name.contains(n.as_str())) {
                continue;
            }
            if !filters.labels_match(&v.labels) {
                continue;
            }
            if let Some(d) = dangling {
                let unused = engine.containers.users_of_volume(&v.name)?.is_empty();
                if d != unused {
                    continue;
                }
            }
            out.push(docker_json::volume(v));
        }
        http::ok_json(&json!({"Volumes": out, "Warnings": []}))
    })
    .await
}

pub async fn create(engine: Shared, req: Req) -> Result<Resp> {
    let body: Value = http::body_json(req).await?;
    if let Some(d) = body.get("Driver").and_then(Value::as_str) {
        if !d.is_empty() && d != "local" {
            return Err(ApiError::bad_request(format!(
                "volume driver '{d}' is not supported: only local"
            )));
        }
    }
    if body
        .get("DriverOpts")
        .is_some_and(|v| v.as_object().is_some_and(|o| !o.is_empty()))
    {
        return Err(ApiError::bad_request(
            "volume driver options (--opt) are not supported by Berth yet — create the volume without them",
        ));
    }
    if body.get("ClusterVolumeSpec").is_some_and(|v| !v.is_null()) {
        return Err(ApiError::bad_request(
            "cluster volumes need swarm mode, which Berth does not have",
        ));
    }
    let labels = crate::networks::string_map(body.get("Labels"), "Labels")?;
    let name = body
        .get("Name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(String::from)
        .unwrap_or_else(|| hex::encode(rand::random::<[u8; 32]>()));
    blocking(move || {
        let v = match engine.containers.volumes().get(&name)? {
            Some(v) => v,
            None => {
                let v = engine.containers.volumes().create_with(&name, &labels)?;
                v
            }
        };
        Ok(http::json(StatusCode::CREATED, &docker_json::volume(&v)))
    })
    .await
}

pub async fn inspect(engine: Shared, name: &str) -> Result<Resp> {
    let name = name.to_string();
    blocking(move || match engine.containers.volumes().get(&name)? {
        Some(v) => http::ok_json(&docker_json::volume(&v)),
        None => Err(ApiError::not_found(format!("get {name}: no such volume"))),
    })
    .await
}

pub async fn remove(engine: Shared, name: &str, q: Query) -> Result<Resp> {
    let name = name.to_string();
    let force = q.bool("force");
    blocking(move || {
        engine.remove_volume(&name, force)?;
        Ok(http::empty(StatusCode::NO_CONTENT))
    })
    .await
}

pub async fn prune(engine: Shared, q: Query) -> Result<Resp> {
    let filters = q.filters()?;
    filters.only(&["label", "all"])?;
    // API ≥ 1.42: only anonymous volumes unless all=true.
    let all = filters
        .get("all")
        .first()
        .is_some_and(|a| a == "true" || a == "1");
    blocking(move || {
        let pruned = engine.prune_volumes(all, |v| filters.labels_match(&v.labels))?;
        http::ok_json(&json!({"VolumesDeleted": pruned.deleted, "SpaceReclaimed": pruned.space_reclaimed}))
    })
    .await
}
