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
    filters.only(&["name", "id", "driver", "type", "label", "scope"])?;
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
                && filters.labels_match(&n.labels)
                && filters.get("scope").iter().all(|s| s == "local")
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
    for key in ["Ingress", "ConfigOnly"] {
        if body.get(key).and_then(Value::as_bool) == Some(true) {
            return Err(ApiError::bad_request(format!(
                "network option {key} needs swarm mode, which Berth does not have"
            )));
        }
    }
    if body
        .get("ConfigFrom")
        .and_then(|c| c.get("Network"))
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty())
    {
        return Err(ApiError::bad_request(
            "network option ConfigFrom needs swarm mode, which Berth does not have",
        ));
    }
    let mut spec = berth_containers::NetworkSpec {
        internal: body.get("Internal").and_then(Value::as_bool) == Some(true),
        attachable: body.get("Attachable").and_then(Value::as_bool) == Some(true),
        labels: string_map(body.get("Labels"), "Labels")?,
        ipv6: body.get("EnableIPv6").and_then(Value::as_bool) == Some(true),
        ..Default::default()
    };
    spec.options = string_map(body.get("Options"), "Options")?;
    for (key, value) in spec.options.clone() {
        match key.as_str() {
            "com.docker.network.bridge.name" => spec.bridge = Some(value),
            // What docker's bridge driver does by default anyway.
            "com.docker.network.bridge.enable_icc" | "com.docker.network.bridge.enable_ip_masquerade"
                if value == "true" => {}
            _ => {
                return Err(ApiError::bad_request(format!(
                "network option {key}={value} is not supported by Berth yet — create the network without it"
            )))
            }
        }
    }
    if let Some(d) = body
        .get("IPAM")
        .and_then(|i| i.get("Driver"))
        .and_then(Value::as_str)
    {
        if !d.is_empty() && d != "default" {
            return Err(ApiError::bad_request(format!(
                "IPAM driver '{d}' is not supported: only default"
            )));
        }
    }
    let configs = body
        .get("IPAM")
        .and_then(|i| i.get("Config"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    // At most one IPv4 and one IPv6 subnet, told apart as docker does (by the address).
    let (mut seen4, mut seen6) = (false, false);
    for c in &configs {
        let field = |k: &str| {
            c.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(String::from)
        };
        let (subnet, gateway, ip_range) = (field("Subnet"), field("Gateway"), field("IPRange"));
        let v6 = [&subnet, &gateway]
            .into_iter()
            .flatten()
            .any(|s| berth_containers::is_ipv6_subnet(s));
        if (v6 && seen6) || (!v6 && seen4) {
            return Err(ApiError::bad_request(
                "give at most one IPv4 and one IPv6 subnet per network",
            ));
        }
        if subnet.is_none() && (gateway.is_some() || ip_range.is_some()) {
            return Err(ApiError::bad_request(
                "a gateway or IP range needs a subnet — give --subnet too",
            ));
        }
        if v6 {
            if ip_range.is_some() {
                return Err(ApiError::bad_request(
                    "an IPv6 --ip-range is not supported by Berth yet — give the IPv6 subnet without it",
                ));
            }
            if !spec.ipv6 {
                return Err(ApiError::bad_request(format!(
                    "the IPv6 subnet {} needs IPv6 on the network — add --ipv6",
                    subnet.as_deref().unwrap_or_default()
                )));
            }
            (spec.subnet6, spec.gateway6, seen6) = (subnet, gateway, true);
        } else {
            (spec.subnet, spec.gateway, spec.ip_range, seen4) = (subnet, gateway, ip_range, true);
        }
        if c.get("AuxiliaryAddresses")
            .and_then(Value::as_object)
            .is_some_and(|o| !o.is_empty())
        {
            return Err(ApiError::bad_request(
                "IPAM AuxiliaryAddresses are not supported by Berth yet — create the network without --aux-address",
            ));
        }
    }
    blocking(move || {
        let n = engine.containers.create_network(&name, &spec)?;
        let id = docker_json::network_id(&n.name);
        Ok(http::json(StatusCode::CREATED, &json!({"Id": id, "Warning": ""})))
    })
    .await
}

/// A JSON object of strings (`Labels`, `Options`); `null` or absent is empty.
pub(crate) fn string_map(
    v: Option<&Value>,
    what: &str,
) -> Result<std::collections::BTreeMap<String, String>> {
    match v {
        None | Some(Value::Null) => Ok(Default::default()),
        Some(Value::Object(o)) => o
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(ApiError::bad_request(format!("{what}.{k} must be a string"))),
            })
            .collect(),
        Some(_) => Err(ApiError::bad_request(format!(
            "{what} must be an object of strings"
        ))),
    }
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
        &["Aliases", "NetworkID", "EndpointID", "DNSNames", "IPAMConfig"],
        &mut bad,
    );
    let ips = crate::create::ipam_address(cfg.get("IPAMConfig"), &mut bad)?;
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
        engine.containers.connect(&n.name, &container, &aliases, ips)?;
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
