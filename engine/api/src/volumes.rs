//! Volume and network endpoints.

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
    for key in ["DriverOpts", "Labels", "ClusterVolumeSpec"] {
        if body
            .get(key)
            .is_some_and(|v| v.as_object().is_some_and(|o| !o.is_empty()))
        {
            return Err(ApiError::bad_request(format!(
                "volume {key} are not supported by Berth yet"
            )));
        }
    }
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
                let v = engine.containers.volumes().create(&name)?;
                engine.event("volume", "create", &name, json!({"driver": "local"}));
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
        if engine.containers.volumes().get(&name)?.is_none() {
            if force {
                return Ok(http::empty(StatusCode::NO_CONTENT));
            }
            return Err(ApiError::not_found(format!("get {name}: no such volume")));
        }
        let users = engine.containers.users_of_volume(&name)?;
        if !users.is_empty() {
            return Err(ApiError::conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        engine.containers.volumes().remove(&name)?;
        engine.event("volume", "destroy", &name, json!({"driver": "local"}));
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
        let mut deleted = Vec::new();
        let mut reclaimed = 0u64;
        for v in engine.containers.volumes().list()? {
            let anonymous = v.name.len() == 64 && v.name.chars().all(|c| c.is_ascii_hexdigit());
            if (!all && !anonymous) || !filters.labels_match(&v.labels) {
                continue;
            }
            if !engine.containers.users_of_volume(&v.name)?.is_empty() {
                continue;
            }
            reclaimed += crate::system::dir_bytes(&v.mountpoint);
            engine.containers.volumes().remove(&v.name)?;
            engine.event("volume", "destroy", &v.name, json!({"driver": "local"}));
            deleted.push(v.name);
        }
        http::ok_json(&json!({"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed}))
    })
    .await
}

// ---------------------------------------------------------------------------- networks

fn find_network(engine: &Shared, id: &str) -> Result<berth_net::NetworkConfig> {
    let nets = engine.containers.network().list_networks()?;
    nets.into_iter()
        .find(|n| n.name == id || (id.len() >= 6 && docker_json::network_id(&n.name).starts_with(id)))
        .ok_or_else(|| ApiError::not_found(format!("network {id} not found")))
}

pub async fn networks(engine: Shared, q: Query) -> Result<Resp> {
    let filters = q.filters()?;
    filters.only(&["name", "id", "driver", "type"])?;
    blocking(move || {
        let net = engine.containers.network();
        let mut out = Vec::new();
        for n in net.list_networks()? {
            let v = docker_json::network(&n, &net.endpoints(&n.name).unwrap_or_default());
            let any = |key: &str, actual: &str| {
                let want = filters.get(key);
                want.is_empty() || want.iter().any(|w| actual.contains(w.as_str()))
            };
            let builtin = matches!(n.name.as_str(), "bridge" | "host" | "none");
            let kind_ok = filters.get("type").iter().all(|t| match t.as_str() {
                "builtin" => builtin,
                "custom" => !builtin,
                _ => true,
            });
            if any("name", &n.name)
                && any("id", v["Id"].as_str().unwrap_or(""))
                && any("driver", v["Driver"].as_str().unwrap_or(""))
                && kind_ok
            {
                out.push(v);
            }
        }
        http::ok_json(&out)
    })
    .await
}

pub async fn network_create(engine: Shared, req: Req) -> Result<Resp> {
    let body: Value = http::body_json(req).await?;
    let name = body
        .get("Name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("Name is required"))?
        .to_string();
    if let Some(d) = body.get("Driver").and_then(Value::as_str) {
        if !d.is_empty() && d != "bridge" {
            return Err(ApiError::bad_request(format!(
                "network driver '{d}' is not supported: only bridge"
            )));
        }
    }
    for key in ["Internal", "Attachable", "Ingress", "EnableIPv6", "ConfigOnly"] {
        if body.get(key).and_then(Value::as_bool) == Some(true) {
            return Err(ApiError::bad_request(format!(
                "network option {key} is not supported by Berth yet"
            )));
        }
    }
    if body
        .get("Options")
        .is_some_and(|v| v.as_object().is_some_and(|o| !o.is_empty()))
    {
        return Err(ApiError::bad_request(
            "network Options are not supported by Berth yet",
        ));
    }
    let configs = body
        .get("IPAM")
        .and_then(|i| i.get("Config"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if configs.len() > 1 {
        return Err(ApiError::bad_request(
            "only one IPAM config (one IPv4 subnet) per network is supported",
        ));
    }
    let subnet = configs
        .first()
        .and_then(|c| c.get("Subnet"))
        .and_then(Value::as_str)
        .map(String::from);
    if configs
        .first()
        .and_then(|c| c.get("Gateway").or(c.get("IPRange")))
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
    {
        return Err(ApiError::bad_request(
            "IPAM Gateway and IPRange are not supported: the gateway is the subnet's first address",
        ));
    }
    blocking(move || {
        let n = engine
            .containers
            .network()
            .create_network(&name, subnet.as_deref())?;
        let id = docker_json::network_id(&n.name);
        engine.event(
            "network",
            "create",
            &id,
            json!({"name": n.name, "type": "bridge"}),
        );
        Ok(http::json(StatusCode::CREATED, &json!({"Id": id, "Warning": ""})))
    })
    .await
}

pub async fn network_inspect(engine: Shared, id: &str) -> Result<Resp> {
    let id = id.to_string();
    blocking(move || {
        let n = find_network(&engine, &id)?;
        let eps = engine.containers.network().endpoints(&n.name).unwrap_or_default();
        http::ok_json(&docker_json::network(&n, &eps))
    })
    .await
}

/// docker's `network connect`/`disconnect` event.
fn membership_event(engine: &Shared, action: &str, n: &berth_net::NetworkConfig, container: &str) {
    let attrs = json!({"container": container, "name": n.name, "type": "bridge"});
    engine.event("network", action, &docker_json::network_id(&n.name), attrs);
}

/// The `Container` of a connect/disconnect body.
fn body_container(body: &Value) -> Result<String> {
    body.get("Container")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .map(String::from)
        .ok_or_else(|| {
            ApiError::bad_request("invalid name or ID supplied: \"\" — give the container in Container")
        })
}

pub async fn network_connect(engine: Shared, id: &str, req: Req) -> Result<Resp> {
    let body: Value = http::body_json(req).await?;
    let container = body_container(&body)?;
    let empty = serde_json::Map::new();
    let cfg = body
        .get("EndpointConfig")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    // Static addresses, links, driver options and the like are refused by name rather
    // than ignored; empty values (what the docker CLI sends by default) are fine.
    let mut bad = Vec::new();
    crate::containers::unsupported_keys(
        "EndpointConfig",
        cfg,
        &["Aliases", "NetworkID", "EndpointID", "DNSNames"],
        &mut bad,
    );
    if !bad.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Berth does not support these endpoint settings yet: {} — connect without them",
            bad.join(", ")
        )));
    }
    let aliases: Vec<String> = cfg
        .get("Aliases")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
        .unwrap_or_default();
    let id = id.to_string();
    blocking(move || {
        let n = find_network(&engine, &id)?;
        let rec = engine.containers.connect(&n.name, &container, &aliases)?;
        membership_event(&engine, "connect", &n, &rec.id);
        Ok(http::empty(StatusCode::OK))
    })
    .await
}

pub async fn network_disconnect(engine: Shared, id: &str, req: Req) -> Result<Resp> {
    let body: Value = http::body_json(req).await?;
    let container = body_container(&body)?;
    let id = id.to_string();
    blocking(move || {
        let n = find_network(&engine, &id)?;
        let rec = engine.containers.disconnect(&n.name, &container)?;
        membership_event(&engine, "disconnect", &n, &rec.id);
        Ok(http::empty(StatusCode::OK))
    })
    .await
}

pub async fn network_remove(engine: Shared, id: &str) -> Result<Resp> {
    let id = id.to_string();
    blocking(move || {
        let n = find_network(&engine, &id)?;
        engine.containers.network().remove_network(&n.name)?;
        engine.event(
            "network",
            "destroy",
            &docker_json::network_id(&n.name),
            json!({"name": n.name, "type": "bridge"}),
        );
        Ok(http::empty(StatusCode::NO_CONTENT))
    })
    .await
}

pub async fn network_prune(engine: Shared) -> Result<Resp> {
    blocking(move || {
        let net = engine.containers.network();
        let mut deleted = Vec::new();
        for n in net.list_networks()? {
            if matches!(n.name.as_str(), "bridge" | "host" | "none") {
                continue;
            }
            if net.endpoints(&n.name).map(|e| e.is_empty()).unwrap_or(false) {
                let in_use = engine
                    .containers
                    .records()?
                    .iter()
                    .any(|r| r.attachments().iter().any(|a| a.name == n.name));
                if !in_use && net.remove_network(&n.name).is_ok() {
                    deleted.push(n.name);
                }
            }
        }
        http::ok_json(&json!({"NetworksDeleted": deleted}))
    })
    .await
}
