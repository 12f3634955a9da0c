//! Docker's JSON shapes: image and container inspect, list rows, volumes, networks,
//! stats. Only this module knows them (the CLI's `inspect` uses it too).

use berth_images::ImageService;
use berth_oci::ImageConfig;
use berth_store::ImageRecord;
use serde_json::{json, Map, Value};

pub fn image_inspect(
    images: &ImageService,
    rec: &ImageRecord,
    config: &ImageConfig,
) -> Result<Value, berth_images::ImageError> {
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
        "Comment": config.history_entries().last().and_then(|h| h.comment().clone()).unwrap_or_default(),
        "Created": config.created().clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
        "DockerVersion": config.extra.get("docker_version").cloned().unwrap_or(json!("")),
        "Author": config.author().clone().unwrap_or_default(),
        "Config": container_config(config),
        // docker 20.10 still shows the config of the build step that made the image;
        // docker-compose 1.29 reads its Volumes when it recreates a container.
        "ContainerConfig": with_config_defaults(
            config.extra.get("container_config").and_then(|c| c.as_object().cloned())
        ),
        "Architecture": config.architecture().to_string(),
        "Variant": config.variant(),
        "Os": config.os().to_string(),
        "Size": size,
        "GraphDriver": { "Name": "overlay2", "Data": graph_data },
        "RootFS": {
            "Type": "layers",
            "Layers": config.rootfs().diff_ids(),
        },
        "Metadata": { "LastTagTime": rec.stored_at },
    }))
}

/// docker prints every Config key, with null/empty defaults for those the image omits.
fn container_config(config: &ImageConfig) -> Value {
    with_config_defaults(config.config_json())
}

/// The defaults of docker's container config, with `given` over them.
fn with_config_defaults(given: Option<Map<String, Value>>) -> Value {
    let mut v = json!({
        "Hostname": "", "Domainname": "", "User": "",
        "AttachStdin": false, "AttachStdout": false, "AttachStderr": false,
        "Tty": false, "OpenStdin": false, "StdinOnce": false,
        "Env": null, "Cmd": null, "Image": "", "Volumes": null, "WorkingDir": "",
        "Entrypoint": null, "OnBuild": null, "Labels": null,
    });
    if let (Value::Object(base), Some(given)) = (&mut v, given) {
        for (k, val) in given {
            base.insert(k, val);
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

/// docker's JSON shape for `container inspect`.
pub fn container_inspect(
    svc: &berth_containers::ContainerService,
    rec: &berth_containers::ContainerRecord,
) -> Value {
    use berth_containers::Status;
    let status = svc.status(rec);
    let (running, paused, pid, exit_code, started, finished, oom) = match &status {
        Status::Created | Status::Dead { .. } => (
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
    let ep = rec.primary_endpoint().filter(|_| status.is_running());
    let paths = svc.paths(&rec.id);
    let mut v = json!({
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
            "Dead": matches!(status, Status::Dead { .. }),
            "Pid": pid,
            "ExitCode": exit_code,
            "Error": match &status { Status::Dead { reason } => reason.as_str(), _ => "" },
            "StartedAt": started,
            "FinishedAt": finished,
        },
        "Image": rec.image_id.to_string(),
        "LogPath": paths.log(),
        "Name": format!("/{}", rec.name),
        "RestartCount": rec.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "Mounts": rec.host.mounts.iter().map(mount_json).collect::<Vec<_>>(),
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
            "Healthcheck": rec.config.healthcheck,
            "StopTimeout": rec.config.stop_timeout,
            "StopSignal": rec.config.stop_signal,
        },
        "HostConfig": {
            "NetworkMode": rec.host.network,
            "PortBindings": rec.host.publish.iter().map(|p| (format!("{}/{}", p.container_port, p.proto), json!([{"HostIp": p.host_ip, "HostPort": if p.host_port == 0 { String::new() } else { p.host_port.to_string() }}]))).collect::<Map<String, Value>>(),
            "RestartPolicy": {"Name": rec.host.restart.name, "MaximumRetryCount": rec.host.restart.maximum_retry_count},
            "AutoRemove": rec.host.auto_remove,
            "Memory": rec.host.memory.unwrap_or(0),
            "NanoCpus": rec.host.cpus.map(|c| (c * 1e9) as i64).unwrap_or(0),
            "PidsLimit": rec.host.pids_limit,
            "CpuShares": rec.host.cpu_shares.unwrap_or(0),
            "MemorySwap": rec.host.memory_swap.or(rec.host.memory.map(|m| 2 * m as i64)).unwrap_or(0),
            "PublishAllPorts": rec.host.publish_all,
            "GroupAdd": if rec.config.group_add.is_empty() { Value::Null } else { json!(rec.config.group_add) },
            "Tmpfs": rec.host.mounts.iter().filter(|m| m.kind == berth_containers::MountKind::Tmpfs).map(|m| (m.destination.clone(), json!(m.source))).collect::<Map<String, Value>>(),
            "Runtime": "runc",
            "Init": rec.host.init,
            "PidMode": rec.host.pid_mode,
            "UTSMode": rec.host.uts_mode,
            "ExtraHosts": if rec.host.extra_hosts.is_empty() { Value::Null } else { json!(rec.host.extra_hosts) },
            "Dns": rec.host.dns,
            "DnsSearch": rec.host.dns_search,
            "DnsOptions": rec.host.dns_options,
            "ShmSize": rec.host.shm_size.unwrap_or(64 * 1024 * 1024),
            "ReadonlyRootfs": rec.host.readonly_rootfs,
            "SecurityOpt": if rec.host.security_opt.is_empty() { Value::Null } else { json!(rec.host.security_opt) },
            "Sysctls": if rec.host.sysctls.is_empty() { Value::Null } else { json!(rec.host.sysctls) },
            "CapAdd": if rec.host.cap_add.is_empty() { Value::Null } else { json!(rec.host.cap_add) },
            "CapDrop": if rec.host.cap_drop.is_empty() { Value::Null } else { json!(rec.host.cap_drop) },
            "IpcMode": if rec.host.ipc_mode.is_empty() { "private" } else { rec.host.ipc_mode.as_str() },
            // docker's shape: "/other:/this/alias".
            "Links": if rec.host.links.is_empty() { Value::Null } else {
                json!(rec.host.links.iter().map(|(id, alias)| {
                    let other = svc.find(id).map(|o| o.name).unwrap_or_else(|_| id.clone());
                    format!("/{other}:/{}/{alias}", rec.name)
                }).collect::<Vec<_>>())
            },
            "Isolation": "",
            // Each container has a cgroup namespace of its own.
            "CgroupnsMode": "private",
            "Binds": rec.host.mounts.iter().filter(|m| m.kind == berth_containers::MountKind::Bind).map(|m| format!("{}:{}{}", m.source, m.destination, if m.readonly { ":ro" } else { "" })).collect::<Vec<_>>(),
            // Clients read it to know whether logs can be fetched (the Python SDK's run()).
            "LogConfig": {"Type": "json-file", "Config": {
                "max-size": rec.host.log_max_size.to_string(),
                "max-file": rec.host.log_max_files.to_string(),
            }},
        },
        "NetworkSettings": {
            "Ports": ports,
            "IPAddress": ep.map(|e| e.ip.clone()).unwrap_or_default(),
            "Gateway": ep.map(|e| e.gateway.clone()).unwrap_or_default(),
            "MacAddress": ep.map(|e| e.mac.clone()).unwrap_or_default(),
            "Networks": networks(rec, status.is_running()),
        },
    });
    // Only a container with a healthcheck has `State.Health`, as in docker.
    if let Some(h) = svc.health(rec) {
        v["State"]["Health"] = json!({"Status": h.status, "FailingStreak": h.failing_streak, "Log": h.log});
    }
    v
}

/// `NetworkSettings.Networks`: every network the container is connected to, with its
/// address while it runs (empty fields otherwise, as docker shows a stopped container).
pub fn networks(rec: &berth_containers::ContainerRecord, running: bool) -> Value {
    let short_id = &rec.id[..12.min(rec.id.len())];
    let mut out = Map::new();
    for a in rec.attachments() {
        let ep = rec
            .endpoints
            .iter()
            .find(|e| e.network == a.name)
            .filter(|_| running);
        let v6 = ep.and_then(|e| e.ipv6);
        let mut aliases = a.aliases.clone();
        if a.name != "bridge" {
            aliases.push(short_id.to_string());
        }
        out.insert(
            a.name.clone(),
            json!({
                "IPAMConfig": null,
                "Links": null,
                "Aliases": if aliases.is_empty() { Value::Null } else { json!(aliases) },
                "NetworkID": network_id(&a.name),
                "EndpointID": ep.map(|_| endpoint_id(&rec.id, &a.name)).unwrap_or_default(),
                "Gateway": ep.map(|e| e.gateway.as_str()).unwrap_or_default(),
                "IPAddress": ep.map(|e| e.ip.as_str()).unwrap_or_default(),
                "IPPrefixLen": ep.map(|e| e.prefix).unwrap_or_default(),
                "IPv6Gateway": v6.map(|v| v.gateway.to_string()).unwrap_or_default(),
                "GlobalIPv6Address": v6.map(|v| v.ip.to_string()).unwrap_or_default(),
                "GlobalIPv6PrefixLen": v6.map(|v| v.prefix).unwrap_or_default(),
                "MacAddress": ep.map(|e| e.mac.as_str()).unwrap_or_default(),
                "DriverOpts": null,
            }),
        );
    }
    if matches!(rec.host.network.as_str(), "host" | "none") {
        out.insert(
            rec.host.network.clone(),
            json!({"IPAMConfig": null, "Links": null, "Aliases": null, "NetworkID": network_id(&rec.host.network), "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "MacAddress": ""}),
        );
    }
    Value::Object(out)
}

/// Seconds since the epoch of an RFC 3339 time (0 if unparseable).
pub fn unix_time(t: &str) -> i64 {
    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .unwrap_or(0)
}

/// "Up 3 seconds", "Exited (0) 5 seconds ago", "Created", "Up 2 minutes (Paused)",
/// "Dead: its record is damaged (…)".
pub fn status_text(s: &berth_containers::Status) -> String {
    use berth_containers::Status;
    let since = |t: &str| (time::OffsetDateTime::now_utc().unix_timestamp() - unix_time(t)).max(0);
    match s {
        Status::Created => "Created".into(),
        // docker says "Dead"; the reason says why, and what `rm` will clear.
        Status::Dead { reason } => format!("Dead: {reason}"),
        Status::Running { started_at, .. } => {
            format!("Up {}", berth_units::human_duration(since(started_at)))
        }
        Status::Paused { started_at, .. } => {
            format!("Up {} (Paused)", berth_units::human_duration(since(started_at)))
        }
        Status::Exited {
            code, finished_at, ..
        } => format!(
            "Exited ({code}) {} ago",
            berth_units::human_duration(since(finished_at))
        ),
    }
}

/// A row of `GET /containers/json`.
pub fn container_summary(s: &berth_containers::ContainerSummary) -> Value {
    let rec = &s.record;
    let mut command = rec.config.entrypoint.clone();
    command.extend(rec.config.cmd.iter().cloned());
    let mut ports: Vec<Value> = Vec::new();
    if s.status.is_running() {
        for p in &rec.bound_ports {
            ports.push(json!({"IP": p.host_ip, "PrivatePort": p.container_port, "PublicPort": p.host_port, "Type": p.proto}));
        }
    }
    for e in &rec.config.exposed_ports {
        let (port, proto) = e.split_once('/').unwrap_or((e.as_str(), "tcp"));
        let port: u16 = port.parse().unwrap_or(0);
        if !ports
            .iter()
            .any(|p| p["PrivatePort"] == json!(port) && p["Type"] == json!(proto))
        {
            ports.push(json!({"PrivatePort": port, "Type": proto}));
        }
    }
    json!({
        "Id": rec.id,
        "Names": [format!("/{}", rec.name)],
        "Image": rec.image,
        "ImageID": rec.image_id.to_string(),
        "Command": command.join(" "),
        "Created": unix_time(&rec.created),
        "Ports": ports,
        "Labels": rec.config.labels,
        "State": s.status.name(),
        "Status": match s.health.as_deref() {
            Some("starting") => format!("{} (health: starting)", status_text(&s.status)),
            Some(h) => format!("{} ({h})", status_text(&s.status)),
            None => status_text(&s.status),
        },
        "HostConfig": { "NetworkMode": rec.host.network },
        "NetworkSettings": { "Networks": networks(rec, s.status.is_running()) },
        "Mounts": rec.host.mounts.iter().map(mount_json).collect::<Vec<_>>(),
    })
}

fn mount_json(m: &berth_containers::MountRecord) -> Value {
    use berth_containers::MountKind;
    json!({
        "Type": match m.kind { MountKind::Bind => "bind", MountKind::Volume => "volume", MountKind::Tmpfs => "tmpfs" },
        "Name": if m.kind == MountKind::Volume { json!(m.source) } else { Value::Null },
        // A tmpfs's source is its options, which docker does not show there.
        "Source": if m.kind == MountKind::Tmpfs { "" } else { m.source.as_str() },
        "Destination": m.destination,
        "Mode": if m.readonly { "ro" } else { "" },
        "RW": !m.readonly,
        "Propagation": m.propagation.map(|p| p.as_str()).unwrap_or(if m.kind == MountKind::Bind { "rprivate" } else { "" }),
    })
}

/// The rows of `GET /images/json` for `rows` (one per tag, as `ImageService::list` gives
/// them): one per image, in the order images first appear, with all their tags and the
/// number of containers (`users`: each container's image ID) made from each.
pub fn image_summaries(rows: &[&berth_images::ImageSummary], users: &[berth_oci::Digest]) -> Vec<Value> {
    let mut order: Vec<&berth_oci::Digest> = Vec::new();
    let mut by_id: std::collections::HashMap<&berth_oci::Digest, Vec<&berth_images::ImageSummary>> =
        std::collections::HashMap::new();
    for r in rows {
        if !by_id.contains_key(&r.id) {
            order.push(&r.id);
        }
        by_id.entry(&r.id).or_default().push(r);
    }
    order
        .into_iter()
        .map(|id| image_summary(id, &by_id[id], users.iter().filter(|u| *u == id).count()))
        .collect()
}

/// A row of `GET /images/json`: one per image, with all its tags.
pub fn image_summary(
    id: &berth_oci::Digest,
    rows: &[&berth_images::ImageSummary],
    containers: usize,
) -> Value {
    let first = rows.first();
    let tags: Vec<String> = rows
        .iter()
        .filter(|r| r.tag != "<none>")
        .map(|r| format!("{}:{}", r.repository, r.tag))
        .collect();
    let digests: Vec<String> = first
        .map(|r| r.repo_digests.iter().map(|d| familiar_digest(d)).collect())
        .unwrap_or_default();
    let size = first.map(|r| r.size).unwrap_or(0);
    json!({
        "Id": id.to_string(),
        "ParentId": "",
        "RepoTags": tags,
        "RepoDigests": digests,
        "Created": first.and_then(|r| r.created.as_deref()).map(unix_time).unwrap_or(0),
        "Size": size,
        "SharedSize": -1,
        "VirtualSize": size,
        "Labels": {},
        "Containers": containers,
    })
}

pub fn volume(v: &berth_containers::VolumeInfo) -> Value {
    json!({
        "Name": v.name,
        "Driver": "local",
        "Mountpoint": v.mountpoint,
        "CreatedAt": v.created,
        "Labels": v.labels,
        "Scope": "local",
        "Options": {},
    })
}

pub fn network(n: &berth_containers::NetworkConfig, endpoints: &[berth_containers::Endpoint]) -> Value {
    let mut containers = Map::new();
    for e in endpoints {
        containers.insert(
            e.container_id.clone(),
            // The engine passes the container's name first among an endpoint's names.
            json!({"Name": e.aliases.first().cloned().unwrap_or_default(), "EndpointID": endpoint_id(&e.container_id, &e.network), "MacAddress": e.mac, "IPv4Address": format!("{}/{}", e.ip, e.prefix), "IPv6Address": e.ipv6.map(|v| format!("{}/{}", v.ip, v.prefix)).unwrap_or_default()}),
        );
    }
    let driver = match n.name.as_str() {
        "host" => "host",
        "none" => "null",
        _ => "bridge",
    };
    let mut ipam_config = if n.bridge.is_empty() {
        json!([])
    } else if let Some(range) = n.ip_range {
        json!([{"Subnet": n.subnet.to_string(), "IPRange": range.to_string(), "Gateway": n.gateway.to_string()}])
    } else {
        json!([{"Subnet": n.subnet.to_string(), "Gateway": n.gateway.to_string()}])
    };
    if let (Some(v6), Some(list)) = (n.ipv6, ipam_config.as_array_mut()) {
        list.push(json!({"Subnet": v6.subnet.to_string(), "Gateway": v6.gateway.to_string()}));
    }
    json!({
        "Name": n.name,
        "Id": network_id(&n.name),
        "Created": n.created.as_deref().unwrap_or("0001-01-01T00:00:00Z"),
        "Scope": "local",
        "Driver": driver,
        "EnableIPv6": n.ipv6.is_some(),
        "IPAM": {"Driver": "default", "Options": null, "Config": ipam_config},
        "Internal": n.internal,
        "Attachable": n.attachable,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        // docker reports the options a user network was created with; the default network
        // names its bridge.
        "Options": if n.name == "bridge" { json!({"com.docker.network.bridge.name": n.bridge}) } else { json!(n.options) },
        "Labels": n.labels,
    })
}

/// A stable 64-hex ID for a container's endpoint on a network.
pub fn endpoint_id(container_id: &str, network: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(format!(
        "berth-endpoint:{container_id}/{network}"
    )))
}

/// A stable 64-hex ID for a network (Berth names networks; docker clients expect IDs).
pub fn network_id(name: &str) -> String {
    berth_containers::network_id(name)
}

/// One of the services' events as docker's `/events` JSON line.
pub fn event(ev: &berth_events::Event) -> Value {
    use berth_events::{Action, Kind};
    let mut attrs: Map<String, Value> = ev
        .attributes
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    match &ev.action {
        Action::Die { exit_code } => {
            attrs.insert("exitCode".into(), json!(exit_code.to_string()));
        }
        Action::Kill { signal } => {
            attrs.insert("signal".into(), json!(signal.to_string()));
        }
        Action::ExecCreate { exec_id } => {
            attrs.insert("execID".into(), json!(exec_id));
        }
        Action::Connect { container } | Action::Disconnect { container } => {
            attrs.insert("container".into(), json!(container));
        }
        _ => {}
    }
    let kind = match ev.kind {
        Kind::Container => "container",
        Kind::Image => "image",
        Kind::Network => "network",
        Kind::Volume => "volume",
    };
    let nanos = ev
        .time
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    json!({
        "status": ev.action.name(),
        "id": ev.id,
        "from": attrs.get("image").cloned().unwrap_or(Value::Null),
        "Type": kind,
        "Action": ev.action.name(),
        "Actor": { "ID": ev.id, "Attributes": attrs },
        "scope": "local",
        "time": nanos / 1_000_000_000,
        "timeNano": nanos,
    })
}
