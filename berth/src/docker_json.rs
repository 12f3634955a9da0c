//! Docker's JSON shape for `image inspect`. (When the Engine API crate arrives, this
//! moves there: only the API boundary should know Docker's JSON shapes.)

use berth_images::ImageService;
use berth_oci::ImageConfig;
use berth_store::ImageRecord;
use serde_json::{json, Map, Value};

pub fn image_inspect(
    images: &ImageService,
    rec: &ImageRecord,
    config: &ImageConfig,
) -> anyhow::Result<Value> {
    let tags = images.tags_of(&rec.id)?;
    let size: u64 = rec.layers.iter().map(|l| l.unpacked_size).sum();
    let layer_dirs: Vec<String> = rec
        .layers
        .iter()
        .rev()
        .map(|l| images.store().layer_dir(&l.diff_id).display().to_string())
        .collect();
    let mut graph_data = Map::new();
    if let Some((upper, lower)) = layer_dirs.split_first() {
        graph_data.insert("UpperDir".into(), json!(upper));
        if !lower.is_empty() {
            graph_data.insert("LowerDir".into(), json!(lower.join(":")));
        }
    }
    Ok(json!({
        "Id": rec.id.to_string(),
        "RepoTags": tags,
        "RepoDigests": rec.repo_digests.iter().map(|d| familiar_digest(d)).collect::<Vec<_>>(),
        "Parent": "",
        "Comment": config.history.last().and_then(|h| h.comment.clone()).unwrap_or_default(),
        "Created": config.created.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
        "DockerVersion": config.extra.get("docker_version").cloned().unwrap_or(json!("")),
        "Author": config.author.clone().unwrap_or_default(),
        "Config": container_config(config),
        "Architecture": config.architecture,
        "Variant": config.variant,
        "Os": config.os,
        "Size": size,
        "GraphDriver": { "Name": "overlay2", "Data": graph_data },
        "RootFS": {
            "Type": "layers",
            "Layers": config.rootfs.diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        },
        "Metadata": { "LastTagTime": rec.stored_at },
    }))
}

/// docker prints every Config key, with null/empty defaults for those the image omits.
fn container_config(config: &ImageConfig) -> Value {
    let mut v = json!({
        "Hostname": "", "Domainname": "", "User": "",
        "AttachStdin": false, "AttachStdout": false, "AttachStderr": false,
        "Tty": false, "OpenStdin": false, "StdinOnce": false,
        "Env": null, "Cmd": null, "Image": "", "Volumes": null, "WorkingDir": "",
        "Entrypoint": null, "OnBuild": null, "Labels": null,
    });
    if let Some(c) = &config.config {
        if let (Value::Object(base), Ok(Value::Object(given))) = (&mut v, serde_json::to_value(c)) {
            for (k, val) in given {
                base.insert(k, val);
            }
        }
    }
    v
}

fn familiar_digest(repo_digest: &str) -> String {
    match repo_digest.split_once('@') {
        Some((name, digest)) => match berth_reference::ImageRef::parse_name_only(name) {
            Ok(r) => format!("{}@{}", r.familiar_name(), digest),
            Err(_) => repo_digest.to_string(),
        },
        None => repo_digest.to_string(),
    }
}

/// A small subset of Go templates: `{{.Field.Sub}}`, `{{json .Field}}`, literal text.
pub fn format(template: &str, value: &Value) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| anyhow::anyhow!("template '{template}' has '{{{{' without '}}}}'"))?;
        let expr = after[..end].trim();
        let (as_json, path) = match expr.strip_prefix("json ") {
            Some(p) => (true, p.trim()),
            None => (false, expr),
        };
        let path = path.strip_prefix('.').ok_or_else(|| {
            anyhow::anyhow!("template field '{path}' must start with '.', e.g. {{{{.Id}}}}")
        })?;
        let mut cur = value;
        for part in path.split('.').filter(|p| !p.is_empty()) {
            cur = cur.get(part).ok_or_else(|| {
                anyhow::anyhow!(
                    "template field '.{path}' does not exist — see `berth image inspect` for the fields"
                )
            })?;
        }
        match (as_json, cur) {
            (true, v) => out.push_str(&serde_json::to_string(v)?),
            (false, Value::String(s)) => out.push_str(s),
            (false, Value::Null) => out.push_str("<no value>"),
            (false, Value::Array(a)) => {
                let items: Vec<String> = a
                    .iter()
                    .map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string()))
                    .collect();
                out.push_str(&format!("[{}]", items.join(" ")));
            }
            (false, v) => out.push_str(&v.to_string()),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// docker's JSON shape for `container inspect`.
pub fn container_inspect(
    svc: &berth_containers::ContainerService,
    rec: &berth_containers::ContainerRecord,
) -> anyhow::Result<Value> {
    use berth_containers::Status;
    let status = svc.status(rec);
    let (running, paused, pid, exit_code, started, finished, oom) = match &status {
        Status::Created => (
            false,
            false,
            0,
            0,
            "0001-01-01T00:00:00Z".to_string(),
            "0001-01-01T00:00:00Z".to_string(),
            false,
        ),
        Status::Running { pid, started_at } => (
            true,
            false,
            *pid,
            0,
            started_at.clone(),
            "0001-01-01T00:00:00Z".into(),
            false,
        ),
        Status::Paused { pid, started_at } => (
            true,
            true,
            *pid,
            0,
            started_at.clone(),
            "0001-01-01T00:00:00Z".into(),
            false,
        ),
        Status::Exited {
            code,
            started_at,
            finished_at,
            oom_killed,
        } => (
            false,
            false,
            0,
            *code,
            started_at.clone(),
            finished_at.clone(),
            *oom_killed,
        ),
    };
    let mut ports = Map::new();
    for e in &rec.config.exposed_ports {
        ports.insert(e.clone(), Value::Null);
    }
    if status.is_running() {
        for p in &rec.bound_ports {
            let key = format!("{}/{}", p.container_port, p.proto);
            let entry = ports.entry(key).or_insert_with(|| json!([]));
            if !entry.is_array() {
                *entry = json!([]);
            }
            entry
                .as_array_mut()
                .expect("array")
                .push(json!({"HostIp": p.host_ip, "HostPort": p.host_port.to_string()}));
        }
    }
    let mut path = rec.config.entrypoint.clone();
    path.extend(rec.config.cmd.iter().cloned());
    let (path, args) = match path.split_first() {
        Some((p, rest)) => (p.clone(), rest.to_vec()),
        None => (String::new(), Vec::new()),
    };
    let ep = rec.endpoint.as_ref().filter(|_| status.is_running());
    let paths = svc.paths(&rec.id);
    Ok(json!({
        "Id": rec.id,
        "Created": rec.created,
        "Path": path,
        "Args": args,
        "State": {
            "Status": status.name(),
            "Running": running,
            "Paused": paused,
            "Restarting": false,
            "OOMKilled": oom,
            "Dead": false,
            "Pid": pid,
            "ExitCode": exit_code,
            "Error": "",
            "StartedAt": started,
            "FinishedAt": finished,
        },
        "Image": rec.image_id.to_string(),
        "LogPath": paths.log(),
        "Name": format!("/{}", rec.name),
        "RestartCount": rec.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "Mounts": rec.host.mounts.iter().map(|m| json!({
            "Type": match m.kind { berth_containers::MountKind::Bind => "bind", berth_containers::MountKind::Volume => "volume", berth_containers::MountKind::Tmpfs => "tmpfs" },
            "Name": if m.kind == berth_containers::MountKind::Volume { json!(m.source) } else { Value::Null },
            "Source": m.source,
            "Destination": m.destination,
            "RW": !m.readonly,
        })).collect::<Vec<_>>(),
        "Config": {
            "Hostname": rec.config.hostname,
            "User": rec.config.user,
            "Tty": rec.config.tty,
            "OpenStdin": rec.config.open_stdin,
            "Env": rec.config.env,
            "Cmd": rec.config.cmd,
            "Entrypoint": if rec.config.entrypoint.is_empty() { Value::Null } else { json!(rec.config.entrypoint) },
            "Image": rec.image,
            "WorkingDir": rec.config.working_dir,
            "Labels": rec.config.labels,
            "ExposedPorts": rec.config.exposed_ports.iter().map(|p| (p.clone(), json!({}))).collect::<Map<String, Value>>(),
        },
        "HostConfig": {
            "NetworkMode": rec.host.network,
            "PortBindings": rec.host.publish.iter().map(|p| (format!("{}/{}", p.container_port, p.proto), json!([{"HostIp": p.host_ip, "HostPort": if p.host_port == 0 { String::new() } else { p.host_port.to_string() }}]))).collect::<Map<String, Value>>(),
            "RestartPolicy": {"Name": rec.host.restart.name, "MaximumRetryCount": rec.host.restart.maximum_retry_count},
            "AutoRemove": rec.host.auto_remove,
            "Memory": rec.host.memory.unwrap_or(0),
            "NanoCpus": rec.host.cpus.map(|c| (c * 1e9) as i64).unwrap_or(0),
            "PidsLimit": rec.host.pids_limit,
            "PublishAllPorts": rec.host.publish_all,
        },
        "NetworkSettings": {
            "Ports": ports,
            "IPAddress": ep.map(|e| e.ip.clone()).unwrap_or_default(),
            "Gateway": ep.map(|e| e.gateway.clone()).unwrap_or_default(),
            "MacAddress": ep.map(|e| e.mac.clone()).unwrap_or_default(),
            "Networks": match ep {
                Some(e) => json!({ e.network.clone(): {"IPAddress": e.ip, "Gateway": e.gateway, "IPPrefixLen": e.prefix, "MacAddress": e.mac} }),
                None => json!({}),
            },
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_fields() {
        let v = json!({"Id": "sha256:x", "Config": {"Cmd": ["sh", "-c"]}, "Size": 3});
        assert_eq!(format("{{.Id}}", &v).unwrap(), "sha256:x");
        assert_eq!(format("id={{.Id}} n={{.Size}}", &v).unwrap(), "id=sha256:x n=3");
        assert_eq!(format("{{json .Config.Cmd}}", &v).unwrap(), r#"["sh","-c"]"#);
        assert_eq!(format("{{.Config.Cmd}}", &v).unwrap(), "[sh -c]");
        assert!(format("{{.Nope}}", &v).is_err());
        assert!(format("{{.Id", &v).is_err());
    }
}
