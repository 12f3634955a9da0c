//! A service of a project → what the Engine API is sent: the container's create body (with
//! Compose's labels), its image or build, its networks and volumes. The service is read
//! as the `compose_spec` crate validated and re-serialized it (one JSON shape per field,
//! whatever syntax the file used).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context};
use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HealthConfig, HostConfig, Mount, MountType,
    NetworkingConfig,
};
use serde_json::Value;

use super::project::Project;

/// The fields `berth compose` turns into a container; any other is refused by name.
const SUPPORTED: &[&str] = &[
    "image",
    "build",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "ports",
    "expose",
    "volumes",
    "networks",
    "network_mode",
    "depends_on",
    "healthcheck",
    "restart",
    "labels",
    "working_dir",
    "user",
    "hostname",
    "tty",
    "stdin_open",
    "init",
    "privileged",
    "cap_add",
    "cap_drop",
    "extra_hosts",
    "dns",
    "dns_search",
    "tmpfs",
    "read_only",
    "stop_signal",
    "stop_grace_period",
    "mem_limit",
    "memswap_limit",
    "cpus",
    "cpu_shares",
    "cpuset",
    "pids_limit",
    "shm_size",
    "sysctls",
    "container_name",
    "scale",
    "deploy",
    "profiles",
    "group_add",
    "security_opt",
    "logging",
    "platform",
    "pull_policy",
    "domainname",
    "mac_address",
    "volumes_from",
    "links",
    "ulimits",
    "attach",
    "pid",
    "uts",
];

/// Compose's labels, which docker-compose and Compose v2 read too.
pub const PROJECT: &str = "com.docker.compose.project";
pub const SERVICE: &str = "com.docker.compose.service";
pub const NUMBER: &str = "com.docker.compose.container-number";
pub const ONEOFF: &str = "com.docker.compose.oneoff";
pub const CONFIG_HASH: &str = "com.docker.compose.config-hash";
pub const WORKING_DIR: &str = "com.docker.compose.project.working_dir";
pub const CONFIG_FILES: &str = "com.docker.compose.project.config_files";
pub const VERSION: &str = "com.docker.compose.version";
pub const NETWORK: &str = "com.docker.compose.network";
pub const VOLUME: &str = "com.docker.compose.volume";
pub const DEPENDS_ON: &str = "com.docker.compose.depends_on";
/// The Compose version Berth's labels claim to be compatible with.
pub const COMPOSE_VERSION: &str = "2.29.0";

/// A service's dependencies and the condition each waits for.
pub fn dependencies(s: &compose_spec::Service) -> Vec<(String, Condition)> {
    match serde_json::to_value(&s.depends_on).unwrap_or(Value::Null) {
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(|n| (n.to_string(), Condition::Started))
            .collect(),
        Value::Object(map) => map
            .iter()
            .map(|(n, d)| {
                let c = match d.get("condition").and_then(Value::as_str) {
                    Some("service_healthy") => Condition::Healthy,
                    Some("service_completed_successfully") => Condition::CompletedSuccessfully,
                    _ => Condition::Started,
                };
                (n.clone(), c)
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Started,
    Healthy,
    CompletedSuccessfully,
}

/// One service, ready for the engine.
#[derive(Debug, Clone)]
pub struct Plan {
    pub service: String,
    /// The image to run: the file's, or `PROJECT-SERVICE` for one that is only built.
    pub image: String,
    pub build: Option<Build>,
    pub pull_policy: String,
    pub replicas: u64,
    /// `container_name:` (only with one replica).
    pub container_name: Option<String>,
    pub body: ContainerCreateBody,
    /// Networks (full names) beyond the first, connected before the start, with aliases.
    pub more_networks: Vec<(String, EndpointSettings)>,
    /// Named volumes (full names) the service uses.
    pub volumes: Vec<String>,
    pub depends_on: Vec<(String, Condition)>,
    pub hash: String,
}

#[derive(Debug, Clone)]
pub struct Build {
    pub context: std::path::PathBuf,
    pub dockerfile: Option<String>,
    pub args: Vec<(String, String)>,
    pub target: Option<String>,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a.iter().map(scalar).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A list-or-map field (environment, labels, sysctls, args) as `KEY=value` pairs; a key
/// without a value is `None`.
fn pairs(v: Option<&Value>) -> Vec<(String, Option<String>)> {
    match v {
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| (k.clone(), (!v.is_null()).then(|| scalar(v))))
            .collect(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|i| {
                let s = scalar(i);
                match s.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (s, None),
                }
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// A command field: a list as it is, a string split as a shell would (not run by one).
fn command(v: Option<&Value>, what: &str) -> anyhow::Result<Option<Vec<String>>> {
    Ok(match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            Some(shlex::split(s).with_context(|| format!("{what}: the quotes in {s:?} do not close"))?)
        }
        Some(Value::Array(a)) => Some(a.iter().map(scalar).collect()),
        Some(other) => bail!("{what}: {other} is not a command"),
    })
}

/// Seconds (or a Go duration) as nanoseconds, from what compose_spec wrote.
fn duration_ns(v: Option<&Value>, what: &str) -> anyhow::Result<Option<i64>> {
    Ok(match v {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some((n.as_f64().unwrap_or(0.0) * 1e9) as i64),
        Some(Value::String(s)) => Some(
            berth_units::go_duration(s)
                .ok_or_else(|| anyhow::anyhow!("{what}: {s:?} is not a duration (write 30s, 1m30s)"))?
                .as_nanos() as i64,
        ),
        Some(other) => bail!("{what}: {other} is not a duration"),
    })
}

fn bytes(v: Option<&Value>, what: &str) -> anyhow::Result<Option<i64>> {
    Ok(match v {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => {
            Some(berth_units::parse_size(s).map_err(|e| anyhow::anyhow!("{what}: {e}"))? as i64)
        }
        Some(other) => bail!("{what}: {other} is not a size"),
    })
}

/// The full name of a project's network or volume: its `name:`, else `PROJECT_KEY`
/// (external ones keep their own name).
pub fn resource_name(project: &Project, top: &Value, kind: &str, key: &str) -> String {
    let def = top.get(kind).and_then(|m| m.get(key));
    if let Some(n) = def.and_then(|d| d.get("name")).and_then(Value::as_str) {
        return n.to_string();
    }
    if def
        .and_then(|d| d.get("external"))
        .is_some_and(|e| e.as_bool() == Some(true))
    {
        return key.to_string();
    }
    format!("{}_{key}", project.name)
}

pub fn plan(project: &Project, name: &str, s: &compose_spec::Service) -> anyhow::Result<Plan> {
    let top = serde_json::to_value(&project.compose).context("re-reading the project")?;
    let v = serde_json::to_value(s).with_context(|| format!("re-reading service {name}"))?;
    let at = |field: &str| format!("services.{name}.{field}");
    let Value::Object(fields) = &v else {
        bail!("services.{name} is not a mapping")
    };
    for key in fields.keys() {
        if !SUPPORTED.contains(&key.as_str()) && !key.starts_with("x-") {
            bail!(
                "{} is not supported by berth compose yet — remove it, or run this project with docker-compose against berth daemon",
                at(key)
            );
        }
    }
    let get = |k: &str| fields.get(k);

    let build = match get("build") {
        None | Some(Value::Null) => None,
        Some(Value::String(ctx)) => Some(Build {
            context: project.dir.join(ctx),
            dockerfile: None,
            args: Vec::new(),
            target: None,
        }),
        Some(b) => Some(Build {
            context: project
                .dir
                .join(b.get("context").and_then(Value::as_str).unwrap_or(".")),
            dockerfile: b.get("dockerfile").and_then(Value::as_str).map(str::to_string),
            args: pairs(b.get("args"))
                .into_iter()
                .filter_map(|(k, v)| {
                    v.or_else(|| project.vars.get(&k).map(str::to_string))
                        .map(|v| (k, v))
                })
                .collect(),
            target: b.get("target").and_then(Value::as_str).map(str::to_string),
        }),
    };
    let image = match get("image").and_then(Value::as_str) {
        Some(i) => i.to_string(),
        None if build.is_some() => format!("{}-{name}", project.name),
        None => bail!(
            "{} is missing — give the service an image: or a build:",
            at("image")
        ),
    };

    // Environment: env_file(s) first, then environment: over them.
    let mut env: Vec<(String, String)> = Vec::new();
    let set = |k: String, v: String, env: &mut Vec<(String, String)>| {
        env.retain(|(e, _)| *e != k);
        env.push((k, v));
    };
    for f in env_files(get("env_file")) {
        let (path, required) = f;
        let path = project.dir.join(path);
        if !path.is_file() {
            if required {
                bail!(
                    "{}: {} does not exist — create it or remove it from env_file",
                    at("env_file"),
                    path.display()
                );
            }
            continue;
        }
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        for (k, val) in
            super::interpolate::parse_dotenv(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        {
            set(k, val, &mut env);
        }
    }
    for (k, val) in pairs(get("environment")) {
        match val.or_else(|| project.vars.get(&k).map(str::to_string)) {
            Some(val) => set(k, val, &mut env),
            None => env.retain(|(e, _)| *e != k),
        }
    }

    let mut labels: HashMap<String, String> = pairs(get("labels"))
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect();

    // Ports: the docker CLI's own syntax (compose_spec writes long ones back as short
    // where it can).
    let mut publish = Vec::new();
    for p in get("ports").and_then(Value::as_array).into_iter().flatten() {
        match p {
            Value::String(s) => publish.push(s.clone()),
            Value::Number(n) => publish.push(n.to_string()),
            Value::Object(o) => {
                let target = o.get("target").map(scalar).unwrap_or_default();
                let published = o.get("published").map(scalar).unwrap_or_default();
                let ip = o.get("host_ip").map(scalar);
                let proto = o.get("protocol").map(scalar).unwrap_or_else(|| "tcp".into());
                let host = match (ip, published.is_empty()) {
                    (Some(ip), false) => format!("{ip}:{published}:"),
                    (Some(ip), true) => format!("{ip}::"),
                    (None, false) => format!("{published}:"),
                    (None, true) => String::new(),
                };
                publish.push(format!("{host}{target}/{proto}"));
            }
            other => bail!("{}: {other} is not a port", at("ports")),
        }
    }
    let (mut exposed, port_bindings) = crate::commands::create_body::port_bindings(&publish)
        .map_err(|e| anyhow::anyhow!("{}: {e}", at("ports")))?;
    for e in strings(get("expose")) {
        let e = if e.contains('/') { e } else { format!("{e}/tcp") };
        if !exposed.contains(&e) {
            exposed.push(e);
        }
    }

    // Volumes: binds relative to the project, named volumes with the project's prefix.
    let mut mounts = Vec::new();
    let mut binds = Vec::new();
    let mut named = Vec::new();
    let mut anonymous: HashMap<String, ()> = HashMap::new();
    for (n, vol) in get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let what = format!("{}[{n}]", at("volumes"));
        match vol {
            Value::String(spec) => {
                let parts: Vec<&str> = spec.splitn(3, ':').collect();
                match parts.as_slice() {
                    [target] => {
                        anonymous.insert(target.to_string(), ());
                    }
                    [source, target, rest @ ..] => {
                        let opts = rest.first().map(|o| format!(":{o}")).unwrap_or_default();
                        if is_path(source) {
                            let host = host_path(&project.dir, source);
                            binds.push(format!("{}:{target}{opts}", host.display()));
                        } else {
                            let full = resource_name(project, &top, "volumes", source);
                            check_declared(&top, "volumes", source, &what)?;
                            named.push(full.clone());
                            binds.push(format!("{full}:{target}{opts}"));
                        }
                    }
                    _ => bail!("{what}: {spec:?} is not a volume"),
                }
            }
            Value::Object(o) => {
                let kind = o.get("type").and_then(Value::as_str).unwrap_or("volume");
                let target = o.get("target").map(scalar).unwrap_or_default();
                let read_only = o.get("read_only").and_then(Value::as_bool);
                let source = o.get("source").map(scalar).filter(|s| !s.is_empty());
                let mount = match kind {
                    "bind" => Mount {
                        typ: Some(MountType::BIND),
                        source: source.map(|s| host_path(&project.dir, &s).display().to_string()),
                        target: Some(target),
                        read_only,
                        ..Default::default()
                    },
                    "volume" => {
                        let source = match source {
                            Some(s) => {
                                check_declared(&top, "volumes", &s, &what)?;
                                let full = resource_name(project, &top, "volumes", &s);
                                named.push(full.clone());
                                Some(full)
                            }
                            None => None,
                        };
                        Mount {
                            typ: Some(MountType::VOLUME),
                            source,
                            target: Some(target),
                            read_only,
                            ..Default::default()
                        }
                    }
                    "tmpfs" => Mount {
                        typ: Some(MountType::TMPFS),
                        target: Some(target),
                        ..Default::default()
                    },
                    other => bail!("{what}: volumes of type {other} are not supported by berth compose yet"),
                };
                mounts.push(mount);
            }
            other => bail!("{what}: {other} is not a volume"),
        }
    }

    // Networks: the project's default one unless the service names its own.
    let mut networks: Vec<(String, EndpointSettings)> = Vec::new();
    let network_mode = get("network_mode").and_then(Value::as_str).map(str::to_string);
    let alias = |extra: Vec<String>| {
        let mut a = vec![name.to_string()];
        a.extend(extra);
        a
    };
    match get("networks") {
        _ if network_mode.is_some() => {}
        None | Some(Value::Null) => networks.push((
            resource_name(project, &top, "networks", "default"),
            EndpointSettings {
                aliases: Some(alias(Vec::new())),
                ..Default::default()
            },
        )),
        Some(Value::Array(list)) => {
            for n in list.iter().map(scalar) {
                check_declared(&top, "networks", &n, &at("networks"))?;
                networks.push((
                    resource_name(project, &top, "networks", &n),
                    EndpointSettings {
                        aliases: Some(alias(Vec::new())),
                        ..Default::default()
                    },
                ));
            }
        }
        Some(Value::Object(map)) => {
            for (n, cfg) in map {
                check_declared(&top, "networks", n, &at("networks"))?;
                let ipv4 = cfg
                    .get("ipv4_address")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let ipv6 = cfg
                    .get("ipv6_address")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                networks.push((
                    resource_name(project, &top, "networks", n),
                    EndpointSettings {
                        aliases: Some(alias(strings(cfg.get("aliases")))),
                        ipam_config: (ipv4.is_some() || ipv6.is_some()).then(|| EndpointIpamConfig {
                            ipv4_address: ipv4,
                            ipv6_address: ipv6,
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                ));
            }
        }
        Some(other) => bail!("{}: {other} is not a list of networks", at("networks")),
    }
    let network_mode = network_mode.or_else(|| networks.first().map(|(n, _)| n.clone()));

    let healthcheck = match get("healthcheck") {
        None | Some(Value::Null) => None,
        Some(h) if h.get("disable").and_then(Value::as_bool) == Some(true) => Some(HealthConfig {
            test: Some(vec!["NONE".into()]),
            ..Default::default()
        }),
        Some(h) => Some(HealthConfig {
            test: match h.get("test") {
                Some(Value::String(s)) => Some(vec!["CMD-SHELL".into(), s.clone()]),
                Some(Value::Array(a)) => Some(a.iter().map(scalar).collect()),
                _ => None,
            },
            interval: duration_ns(h.get("interval"), &at("healthcheck.interval"))?,
            timeout: duration_ns(h.get("timeout"), &at("healthcheck.timeout"))?,
            retries: h.get("retries").and_then(Value::as_i64),
            start_period: duration_ns(h.get("start_period"), &at("healthcheck.start_period"))?,
            ..Default::default()
        }),
    };

    let deploy = get("deploy");
    let replicas = get("scale")
        .and_then(Value::as_u64)
        .or_else(|| deploy.and_then(|d| d.get("replicas")).and_then(Value::as_u64))
        .unwrap_or(1);
    let limits = deploy.and_then(|d| d.pointer("/resources/limits"));
    let memory = match bytes(get("mem_limit"), &at("mem_limit"))? {
        Some(m) => Some(m),
        None => bytes(
            limits.and_then(|l| l.get("memory")),
            &at("deploy.resources.limits.memory"),
        )?,
    };
    let cpus = get("cpus")
        .or_else(|| limits.and_then(|l| l.get("cpus")))
        .map(scalar)
        .filter(|c| !c.is_empty());
    let nano_cpus = match cpus {
        Some(c) => Some(
            (c.parse::<f64>()
                .map_err(|_| anyhow::anyhow!("{}: {c:?} is not a number of CPUs", at("cpus")))?
                * 1e9) as i64,
        ),
        None => None,
    };
    let restart = match get("restart").and_then(Value::as_str) {
        Some(r) => Some(
            crate::commands::create_body::restart_policy(r)
                .map_err(|e| anyhow::anyhow!("{}: {e}", at("restart")))?,
        ),
        None => None,
    };
    let extra_hosts = match get("extra_hosts") {
        Some(Value::Object(m)) => Some(m.iter().map(|(h, ip)| format!("{h}:{}", scalar(ip))).collect()),
        Some(Value::Array(a)) => Some(a.iter().map(|h| scalar(h).replacen('=', ":", 1)).collect()),
        _ => None,
    };
    let tmpfs = {
        let t = strings(get("tmpfs"));
        (!t.is_empty()).then(|| {
            t.iter()
                .map(|t| match t.split_once(':') {
                    Some((p, o)) => (p.to_string(), o.to_string()),
                    None => (t.clone(), String::new()),
                })
                .collect()
        })
    };
    let links = strings(get("links"));
    let ulimits = match get("ulimits") {
        Some(Value::Object(m)) => Some(
            m.iter()
                .map(|(n, l)| {
                    let (soft, hard) = match l {
                        Value::Object(o) => (
                            o.get("soft").and_then(Value::as_i64),
                            o.get("hard").and_then(Value::as_i64),
                        ),
                        other => (other.as_i64(), other.as_i64()),
                    };
                    bollard::models::ResourcesUlimits {
                        name: Some(n.clone()),
                        soft,
                        hard,
                    }
                })
                .collect(),
        ),
        _ => None,
    };

    let container_name = get("container_name").and_then(Value::as_str).map(str::to_string);
    if container_name.is_some() && replicas > 1 {
        bail!(
            "{}: a service with container_name cannot be scaled to {replicas} — remove container_name",
            at("container_name")
        );
    }
    let depends_on = dependencies(s);
    for (d, _) in &depends_on {
        if !project.compose.services.keys().any(|k| k.as_str() == d) {
            bail!("{}: {d} is not a service of this project", at("depends_on"));
        }
    }

    // The hash of what makes this container what it is: a changed file recreates it.
    let hash = {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(serde_json::to_vec(&v).unwrap_or_default());
        format!("{:x}", h.finalize())
    };
    labels.insert(PROJECT.into(), project.name.clone());
    labels.insert(SERVICE.into(), name.to_string());
    labels.insert(ONEOFF.into(), "False".into());
    labels.insert(CONFIG_HASH.into(), hash.clone());
    labels.insert(WORKING_DIR.into(), project.dir.display().to_string());
    labels.insert(CONFIG_FILES.into(), project.config_files_label());
    labels.insert(VERSION.into(), COMPOSE_VERSION.into());
    if !depends_on.is_empty() {
        labels.insert(
            DEPENDS_ON.into(),
            depends_on
                .iter()
                .map(|(d, c)| {
                    let c = match c {
                        Condition::Started => "service_started",
                        Condition::Healthy => "service_healthy",
                        Condition::CompletedSuccessfully => "service_completed_successfully",
                    };
                    format!("{d}:{c}:false")
                })
                .collect::<Vec<_>>()
                .join(","),
        );
    }

    if let (Some(mac), Some((_, first))) = (get("mac_address").and_then(Value::as_str), networks.first_mut())
    {
        first.mac_address = Some(mac.to_string());
    }
    let mut endpoints = networks.into_iter();
    let first = endpoints.next();
    let more_networks: Vec<_> = endpoints.collect();
    let body = ContainerCreateBody {
        image: Some(image.clone()),
        cmd: command(get("command"), &at("command"))?,
        entrypoint: command(get("entrypoint"), &at("entrypoint"))?,
        env: Some(env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(labels),
        working_dir: get("working_dir").and_then(Value::as_str).map(str::to_string),
        user: get("user").map(scalar),
        hostname: get("hostname").and_then(Value::as_str).map(str::to_string),
        domainname: get("domainname").and_then(Value::as_str).map(str::to_string),
        tty: get("tty").and_then(Value::as_bool),
        open_stdin: get("stdin_open").and_then(Value::as_bool),
        stop_signal: get("stop_signal").and_then(Value::as_str).map(str::to_string),
        stop_timeout: duration_ns(get("stop_grace_period"), &at("stop_grace_period"))?
            .map(|ns| ns / 1_000_000_000),
        healthcheck,
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        volumes: (!anonymous.is_empty()).then(|| anonymous.into_keys().collect()),
        host_config: Some(HostConfig {
            binds: (!binds.is_empty()).then_some(binds),
            mounts: (!mounts.is_empty()).then_some(mounts),
            port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
            network_mode,
            restart_policy: restart,
            init: get("init").and_then(Value::as_bool),
            privileged: get("privileged").and_then(Value::as_bool),
            cap_add: Some(strings(get("cap_add"))).filter(|v| !v.is_empty()),
            cap_drop: Some(strings(get("cap_drop"))).filter(|v| !v.is_empty()),
            extra_hosts,
            dns: Some(strings(get("dns"))).filter(|v| !v.is_empty()),
            dns_search: Some(strings(get("dns_search"))).filter(|v| !v.is_empty()),
            tmpfs,
            readonly_rootfs: get("read_only").and_then(Value::as_bool),
            memory,
            memory_swap: bytes(get("memswap_limit"), &at("memswap_limit"))?,
            nano_cpus,
            cpu_shares: get("cpu_shares").and_then(Value::as_i64),
            cpuset_cpus: get("cpuset").map(scalar).filter(|c| !c.is_empty()),
            pids_limit: get("pids_limit").and_then(Value::as_i64),
            shm_size: bytes(get("shm_size"), &at("shm_size"))?,
            sysctls: Some(
                pairs(get("sysctls"))
                    .into_iter()
                    .map(|(k, v)| (k, v.unwrap_or_default()))
                    .collect::<HashMap<_, _>>(),
            )
            .filter(|m| !m.is_empty()),
            group_add: Some(strings(get("group_add"))).filter(|v| !v.is_empty()),
            security_opt: Some(strings(get("security_opt"))).filter(|v| !v.is_empty()),
            volumes_from: Some(strings(get("volumes_from"))).filter(|v| !v.is_empty()),
            links: (!links.is_empty()).then(|| {
                links
                    .iter()
                    .map(|l| {
                        let (svc, alias) = l.split_once(':').unwrap_or((l, l));
                        format!("{}-{svc}-1:{alias}", project.name)
                    })
                    .collect()
            }),
            ulimits,
            pid_mode: get("pid").and_then(Value::as_str).map(str::to_string),
            uts_mode: get("uts").and_then(Value::as_str).map(str::to_string),
            ..Default::default()
        }),
        networking_config: first.map(|(n, e)| NetworkingConfig {
            endpoints_config: Some(HashMap::from([(n, e)])),
        }),
        ..Default::default()
    };
    Ok(Plan {
        service: name.to_string(),
        image,
        build,
        pull_policy: get("pull_policy")
            .and_then(Value::as_str)
            .unwrap_or("missing")
            .to_string(),
        replicas,
        container_name,
        body,
        more_networks,
        volumes: named,
        depends_on,
        hash,
    })
}

fn env_files(v: Option<&Value>) -> Vec<(String, bool)> {
    match v {
        Some(Value::String(s)) => vec![(s.clone(), true)],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|e| match e {
                Value::String(s) => Some((s.clone(), true)),
                Value::Object(o) => Some((
                    o.get("path").map(scalar)?,
                    o.get("required").and_then(Value::as_bool).unwrap_or(true),
                )),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// A volume source that is a host path (not a volume's name).
fn is_path(source: &str) -> bool {
    source.starts_with('.') || source.starts_with('/') || source.starts_with('~')
}

fn host_path(dir: &Path, source: &str) -> std::path::PathBuf {
    if let Some(rest) = source.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return Path::new(&home).join(rest);
        }
    }
    let joined = dir.join(source);
    // Tidy `./` and `../` the way a path written in the file means it.
    let mut out = std::path::PathBuf::new();
    for c in joined.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn check_declared(top: &Value, kind: &str, key: &str, what: &str) -> anyhow::Result<()> {
    if kind == "networks" && key == "default" {
        return Ok(());
    }
    if top.get(kind).and_then(|m| m.get(key)).is_none() {
        bail!("{what}: {kind} {key:?} is not declared in the top-level {kind}: section — add it there");
    }
    Ok(())
}
