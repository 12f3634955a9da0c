//! Network endpoints: list, create, inspect, connect / disconnect, remove, prune.

use hyper::StatusCode;
use serde_json::{json, Value};

use crate::engine::Shared;
use crate::http::{self, blocking, Query, Req, Resp, Result};
use crate::{docker_json, ApiError};

fn find_network(engine: &Shared, id: &str) -> Result<berth_containers::NetworkConfig> {
    let nets = engine.containers.network().list_networks()?;
    nets.into_iter()
        .find(|n| n.name == id || (id.len() >= 6 && docker_json::network_id(&n.name).starts_with(id)))
        .ok_or_else(|| ApiError::not_found(format!("network {id} not found")))
}

pub async fn list(engine: Shared, q: Query) -> Result<Resp> {
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

pub async fn create(engine: Shared, req: Req) -> Result<Resp> {
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
        let n = engine.containers.create_network(&name, subnet.as_deref())?;
        let id = docker_json::network_id(&n.name);
        Ok(http::json(StatusCode::CREATED, &json!({"Id": id, "Warning": ""})))
    })
    .await
}

pub async fn inspect(engine: Shared, id: &str) -> Result<Resp> {
    let id = id.to_string();
    blocking(move || {
        let n = find_network(&engine, &id)?;
        let eps = engine.containers.network().endpoints(&n.name).unwrap_or_default();
        http::ok_json(&docker_json::network(&n, &eps))
    })
    .await
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

pub async fn connect(engine: Shared, id: &str, req: Req) -> Result<Resp> {
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
    crate::create::unsupported_keys(
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
        engine.containers.connect(&n.name, &container, &aliases)?;
        Ok(http::empty(StatusCode::OK))
    })
    .await
}

pub async fn disconnect(engine: Shared, id: &str, req: Req) -> Result<Resp> {
    let body: Value = http::body_json(req).await?;
    let container = body_container(&body)?;
    let id = id.to_string();
    blocking(move || {
        let n = find_network(&engine, &id)?;
        engine.containers.disconnect(&n.name, &container)?;
        Ok(http::empty(StatusCode::OK))
    })
    .await
}

pub async fn remove(engine: Shared, id: &str) -> Result<Resp> {
    let id = id.to_string();
    blocking(move || {
        let n = find_network(&engine, &id)?;
        engine.containers.remove_network(&n.name)?;
        Ok(http::empty(StatusCode::NO_CONTENT))
    })
    .await
}

pub async fn prune(engine: Shared) -> Result<Resp> {
    blocking(move || http::ok_json(&json!({"NetworksDeleted": engine.prune_networks()?}))).await
}
