//! `POST /containers/create`: docker's create body, deserialised into wire types and
//! converted into the engine's typed [`ContainerConfig`]. What Berth does not support is
//! refused by name, so a client never gets a container other than the one it asked for.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};

use berth_containers::{
    ContainerConfig, Limits, LogSettings, MountKind, MountSpec, PortSpec, Proto, RestartName, RestartPolicy,
};
use serde::Deserialize;
use serde_json::{Map, Value};

use berth_units::HostPaths;

use crate::http::Result;
use crate::ApiError;

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

/// docker's strslice: a JSON string or a list of strings.
#[derive(Deserialize)]
#[serde(untagged)]
enum Words {
    One(String),
    Many(Vec<String>),
}

impl Words {
    fn into_vec(self) -> Vec<String> {
        match self {
            Words::One(s) => vec![s],
            Words::Many(v) => v,
        }
    }
}

/// The create body's `Config` part (the top level), as far as Berth reads it.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Body {
    image: Option<String>,
    cmd: Option<Words>,
    entrypoint: Option<Words>,
    env: Option<Vec<String>>,
    working_dir: Option<String>,
    user: Option<String>,
    hostname: Option<String>,
    exposed_ports: Option<HashMap<String, Value>>,
    volumes: Option<HashMap<String, Value>>,
    labels: Option<BTreeMap<String, Option<String>>>,
    tty: Option<bool>,
    open_stdin: Option<bool>,
    healthcheck: Option<berth_containers::HealthConfig>,
    stop_timeout: Option<i64>,
    stop_signal: Option<String>,
    mac_address: Option<String>,
    host_config: Option<WireHostConfig>,
    networking_config: Option<WireNetworking>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct WireHostConfig {
    binds: Option<Vec<String>>,
    port_bindings: Option<HashMap<String, Option<Vec<WirePortBinding>>>>,
    publish_all_ports: Option<bool>,
    mounts: Option<Vec<WireMount>>,
    memory: Option<i64>,
    nano_cpus: Option<i64>,
    pids_limit: Option<i64>,
    restart_policy: Option<WireRestartPolicy>,
    network_mode: Option<String>,
    auto_remove: Option<bool>,
    log_config: Option<WireLogConfig>,
    group_add: Option<Vec<String>>,
    tmpfs: Option<BTreeMap<String, String>>,
    cpu_shares: Option<i64>,
    memory_swap: Option<i64>,
    init: Option<bool>,
    volumes_from: Option<Vec<String>>,
    cpuset_cpus: Option<String>,
    memory_swappiness: Option<i64>,
    pid_mode: Option<String>,
    links: Option<Vec<String>>,
    #[serde(rename = "UTSMode")]
    uts_mode: Option<String>,
    ipc_mode: Option<String>,
    extra_hosts: Option<Vec<String>>,
    dns: Option<Vec<String>>,
    dns_search: Option<Vec<String>>,
    dns_options: Option<Vec<String>>,
    shm_size: Option<i64>,
    cap_add: Option<Vec<String>>,
    cap_drop: Option<Vec<String>>,
    readonly_rootfs: Option<bool>,
    sysctls: Option<BTreeMap<String, String>>,
    security_opt: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct WirePortBinding {
    host_ip: Option<String>,
    host_port: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct WireMount {
    #[serde(rename = "Type")]
    kind: Option<String>,
    source: Option<String>,
    target: Option<String>,
    read_only: Option<bool>,
    bind_options: Option<WireBindOptions>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct WireBindOptions {
    propagation: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct WireRestartPolicy {
    name: Option<String>,
    maximum_retry_count: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct WireLogConfig {
    config: Option<HashMap<String, String>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct WireNetworking {
    endpoints_config: Option<HashMap<String, Option<WireEndpoint>>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct WireEndpoint {
    aliases: Option<Vec<String>>,
    #[serde(rename = "IPAMConfig")]
    ipam_config: Option<Value>,
    mac_address: Option<String>,
}

/// The fixed addresses of an endpoint's `IPAMConfig` (`--ip`, `--ip6`); `LinkLocalIPs`
/// is named in `bad`.
pub(crate) fn ipam_address(
    v: Option<&Value>,
    bad: &mut Vec<String>,
) -> Result<(Option<Ipv4Addr>, Option<std::net::Ipv6Addr>)> {
    let Some(Value::Object(o)) = v else {
        return Ok((None, None));
    };
    unsupported_keys("IPAMConfig", o, &["IPv4Address", "IPv6Address"], bad);
    let text = |key: &str| o.get(key).and_then(Value::as_str).filter(|s| !s.is_empty());
    let v4 = text("IPv4Address")
        .map(|t| {
            t.parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "invalid IPv4 address '{t}' in IPAMConfig — give one like 172.20.0.5"
                ))
            })
        })
        .transpose()?;
    let v6 = text("IPv6Address")
        .map(|t| {
            t.parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "invalid IPv6 address '{t}' in IPAMConfig — give one like fd00:1::5"
                ))
            })
        })
        .transpose()?;
    Ok((v4, v6))
}

/// docker's create body (and `?name=`) as the engine's typed settings.
///
/// `paths`: how the engine's clients spell host paths (a machine on Windows translates
/// `C:\Users\…` to where its guest mounts it).
pub fn container_config(body: &Value, name: Option<String>, paths: HostPaths) -> Result<ContainerConfig> {
    refuse_unsupported(body)?;
    let wire: Body = serde_json::from_value(body.clone()).map_err(|e| {
        ApiError::bad_request(format!("invalid container settings: {e} — check the JSON body"))
    })?;
    let host = wire.host_config.unwrap_or_default();
    let image = wire
        .image
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad_request("Config.Image is required"))?;
    let network = host.network_mode.filter(|m| !m.is_empty() && m != "default");
    let endpoints: Vec<WireEndpoint> = wire
        .networking_config
        .and_then(|n| n.endpoints_config)
        .into_iter()
        .flatten()
        .filter_map(|(_, ep)| ep)
        .collect();
    let nonempty = |s: Option<String>| s.filter(|s| !s.is_empty());
    let mut network_mac = nonempty(wire.mac_address.clone());
    let (mut network_ip, mut network_ip6) = (None, None);
    for ep in &endpoints {
        network_mac = network_mac.or(nonempty(ep.mac_address.clone()));
        let mut bad = Vec::new();
        let (v4, v6) = ipam_address(ep.ipam_config.as_ref(), &mut bad)?;
        network_ip = network_ip.or(v4);
        network_ip6 = network_ip6.or(v6);
    }
    let network_aliases = endpoints
        .into_iter()
        .flat_map(|e| e.aliases.unwrap_or_default())
        .collect();
    let mut mounts = Vec::new();
    for b in host.binds.unwrap_or_default() {
        mounts.push(bind(&b, paths)?);
    }
    for m in host.mounts.unwrap_or_default() {
        mounts.push(mount(m, paths)?);
    }
    // `--tmpfs /run:size=1m,noexec`: the options travel as the mount's source.
    for (target, options) in host.tmpfs.clone().unwrap_or_default() {
        mounts.push(MountSpec {
            kind: MountKind::Tmpfs,
            source: tmpfs_options(&target, &options)?,
            target,
            readonly: false,
            propagation: None,
        });
    }
    // `Volumes` names mount points; one a bind or mount already covers is that mount (the
    // SDK's `volumes=['name:/data']` sends both), as in docker.
    for target in wire.volumes.unwrap_or_default().into_keys() {
        if mounts
            .iter()
            .any(|m| m.target.trim_end_matches('/') == target.trim_end_matches('/'))
        {
            continue;
        }
        mounts.push(MountSpec {
            kind: MountKind::Volume,
            source: String::new(),
            target,
            readonly: false,
            propagation: None,
        });
    }
    let mut exposed_ports = Vec::new();
    for key in wire.exposed_ports.unwrap_or_default().into_keys() {
        exposed_ports.push(port_key(&key)?);
    }
    let text = |s: Option<String>| s.filter(|s| !s.is_empty());
    Ok(ContainerConfig {
        image,
        name,
        cmd: wire.cmd.map(Words::into_vec),
        entrypoint: wire.entrypoint.map(Words::into_vec),
        env: wire.env.unwrap_or_default(),
        working_dir: text(wire.working_dir),
        user: text(wire.user),
        hostname: text(wire.hostname),
        exposed_ports,
        ports: port_bindings(host.port_bindings.unwrap_or_default())?,
        publish_all: host.publish_all_ports.unwrap_or(false),
        mounts,
        network,
        network_aliases,
        network_ip,
        network_ip6,
        network_mac,
        labels: wire
            .labels
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect(),
        tty: wire.tty.unwrap_or(false),
        open_stdin: wire.open_stdin.unwrap_or(false),
        healthcheck: wire.healthcheck,
        stop_timeout: wire.stop_timeout.filter(|t| *t >= 0),
        stop_signal: text(wire.stop_signal),
        group_add: host.group_add.unwrap_or_default(),
        init: host.init.unwrap_or(false),
        pid_mode: text(host.pid_mode),
        uts_mode: text(host.uts_mode),
        ipc_mode: text(host.ipc_mode),
        extra_hosts: host.extra_hosts.unwrap_or_default(),
        dns: host.dns.unwrap_or_default(),
        dns_search: host.dns_search.unwrap_or_default(),
        dns_options: host.dns_options.unwrap_or_default(),
        shm_size: host.shm_size.filter(|s| *s > 0).map(|s| s as u64),
        cap_add: host.cap_add.unwrap_or_default(),
        cap_drop: host.cap_drop.unwrap_or_default(),
        readonly_rootfs: host.readonly_rootfs.unwrap_or(false),
        sysctls: host.sysctls.unwrap_or_default(),
        security_opt: host.security_opt.unwrap_or_default(),
        volumes_from: host.volumes_from.unwrap_or_default(),
        links: host.links.unwrap_or_default(),
        auto_remove: host.auto_remove.unwrap_or(false),
        restart: restart(host.restart_policy.unwrap_or_default())?,
        limits: Limits {
            memory: host.memory.filter(|m| *m > 0).map(|m| m as u64),
            cpus: host.nano_cpus.filter(|n| *n > 0).map(|n| n as f64 / 1e9),
            pids: host.pids_limit.filter(|n| *n > 0),
            cpu_shares: host.cpu_shares.filter(|n| *n > 0).map(|n| n as u64),
            memory_swap: host.memory_swap.filter(|n| *n != 0),
            cpuset_cpus: host.cpuset_cpus.clone().filter(|c| !c.is_empty()),
            swappiness: host.memory_swappiness.filter(|s| *s != -1),
        },
        log: log_settings(host.log_config.and_then(|l| l.config).unwrap_or_default())?,
    })
}

/// Every setting Berth would silently ignore, named in one error.
fn refuse_unsupported(body: &Value) -> Result<()> {
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
            "Healthcheck",
            "StopTimeout",
            "StopSignal",
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
            "GroupAdd",
            "Tmpfs",
            "Runtime",
            "CpuShares",
            "Init",
            "VolumesFrom",
            "CpusetCpus",
            "PidMode",
            "UTSMode",
            "IpcMode",
            "Links",
            "ExtraHosts",
            "Dns",
            "DnsSearch",
            "DnsOptions",
            "ShmSize",
            "CapAdd",
            "CapDrop",
            "ReadonlyRootfs",
            "Sysctls",
            "SecurityOpt",
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
    if let Some(r) = host.get("Runtime").and_then(Value::as_str) {
        // "runc" is docker's name for its default runtime, which Berth's own plays here.
        if !r.is_empty() && r != "runc" {
            return Err(ApiError::bad_request(format!(
                "unknown or invalid runtime name: {r} — leave --runtime out to use Berth's runtime"
            )));
        }
    }
    if let Some(m) = host.get("CgroupnsMode").and_then(Value::as_str) {
        if !m.is_empty() && m != "private" {
            bad.push(format!("HostConfig.CgroupnsMode={m}"));
        }
    }
    let network_mode = host
        .get("NetworkMode")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty() && *m != "default")
        .map(String::from);
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
                    &[
                        "NetworkID",
                        "EndpointID",
                        "Aliases",
                        "DNSNames",
                        "IPAMConfig",
                        "MacAddress",
                    ],
                    &mut bad,
                );
                ipam_address(o.get("IPAMConfig"), &mut bad)?;
            }
        }
    }
    if !bad.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Berth does not support these container settings yet: {} — remove them and try again",
            bad.join(", ")
        )));
    }

    Ok(())
}

/// An `ExposedPorts`/`PortBindings` key: `5000/tcp`, `53/udp`, `80` (tcp).
fn port_key(key: &str) -> Result<(u16, Proto)> {
    let bad = || {
        ApiError::bad_request(format!(
            "invalid port '{key}': use PORT/tcp or PORT/udp, e.g. 5000/tcp"
        ))
    };
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = match proto {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        _ => return Err(bad()),
    };
    let port = port.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(bad)?;
    Ok((port, proto))
}

/// `PortBindings`: `{"5000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}`; an
/// empty HostIp is every address, an empty HostPort a free port.
fn port_bindings(map: HashMap<String, Option<Vec<WirePortBinding>>>) -> Result<Vec<PortSpec>> {
    let mut out = Vec::new();
    let mut keys: Vec<_> = map.into_iter().collect();
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, bindings) in keys {
        let (container_port, proto) = port_key(&key)?;
        let bindings = bindings
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| vec![WirePortBinding::default()]);
        for b in bindings {
            let ip = b.host_ip.unwrap_or_default();
            let ip = ip.trim_start_matches('[').trim_end_matches(']');
            let host_ip = if ip.is_empty() {
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            } else {
                ip.parse().map_err(|_| {
                    ApiError::bad_request(format!(
                        "invalid HostIp '{ip}' for {key}: use an IP address such as 127.0.0.1"
                    ))
                })?
            };
            let hp = b.host_port.unwrap_or_default();
            let host_port = if hp.is_empty() {
                0
            } else {
                hp.parse::<u16>().map_err(|_| {
                    ApiError::bad_request(format!(
                        "invalid HostPort '{hp}' for {key}: use a port number such as 8080"
                    ))
                })?
            };
            out.push(PortSpec {
                host_ip,
                host_port,
                container_port,
                proto,
            });
        }
    }
    Ok(out)
}

/// A `Binds` entry: `name:/path[:ro]` (a volume) or `/host:/path[:ro|rw]` (a bind;
/// `C:\host:/path` from a Windows host).
fn bind(spec: &str, paths: HostPaths) -> Result<MountSpec> {
    let bad = |why: &str| ApiError::bad_request(format!("invalid volume spec '{spec}': {why}"));
    let parts: Vec<&str> = paths.split_bind(spec);
    let (source, target, mode) = match parts.as_slice() {
        [t] => ("", *t, ""),
        [s, t] => (*s, *t, ""),
        [s, t, m] => (*s, *t, *m),
        _ => return Err(bad("use SOURCE:/container/path[:ro]")),
    };
    if !target.starts_with('/') {
        return Err(bad("the container path must be absolute, e.g. /data"));
    }
    let (mut readonly, mut propagation) = (false, None);
    for m in mode.split(',').filter(|m| !m.is_empty()) {
        match m {
            "ro" => readonly = true,
            "rw" | "z" | "Z" | "nocopy" => {}
            other => match berth_containers::Propagation::parse(other) {
                Some(p) => propagation = Some(p),
                None => {
                    return Err(bad(&format!(
                        "unknown mode '{other}' (use ro, rw or a propagation such as rslave)"
                    )))
                }
            },
        }
    }
    let (kind, source) = if paths.is_path(source) {
        (MountKind::Bind, host_path(source, paths)?)
    } else {
        (MountKind::Volume, source.to_string())
    };
    if propagation.is_some() && kind != MountKind::Bind {
        return Err(bad(
            "a propagation mode is for a bind of a host path, not a volume",
        ));
    }
    Ok(MountSpec {
        kind,
        source,
        target: target.to_string(),
        readonly,
        propagation,
    })
}

/// A bind's source as the engine mounts it.
fn host_path(source: &str, paths: HostPaths) -> Result<String> {
    paths
        .resolve(source)
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// A `Mounts` entry (type bind, volume or tmpfs).
fn mount(m: WireMount, paths: HostPaths) -> Result<MountSpec> {
    let kind = match m.kind.as_deref().unwrap_or("volume") {
        "bind" => MountKind::Bind,
        "volume" | "" => MountKind::Volume,
        "tmpfs" => MountKind::Tmpfs,
        other => {
            return Err(ApiError::bad_request(format!(
                "mount type '{other}' is not supported — use bind, volume or tmpfs"
            )))
        }
    };
    let mut source = m.source.unwrap_or_default();
    if kind == MountKind::Bind && source.is_empty() {
        return Err(ApiError::bad_request(
            "a bind mount needs a Source — give the host path",
        ));
    }
    if kind == MountKind::Bind {
        source = host_path(&source, paths)?;
    }
    let propagation = match m
        .bind_options
        .and_then(|b| b.propagation)
        .filter(|p| !p.is_empty())
    {
        None => None,
        Some(p) => Some(berth_containers::Propagation::parse(&p).ok_or_else(|| {
            ApiError::bad_request(format!(
                "invalid bind propagation '{p}' — use rprivate, private, rshared, shared, rslave or slave"
            ))
        })?),
    };
    Ok(MountSpec {
        kind,
        source,
        target: m.target.unwrap_or_default(),
        readonly: m.read_only.unwrap_or(false),
        propagation: propagation.filter(|_| kind == MountKind::Bind),
    })
}

/// A tmpfs mount's options as docker takes them (`size=64m,mode=1777,noexec`), checked
/// and normalised for the runtime; empty is the default.
fn tmpfs_options(target: &str, options: &str) -> Result<String> {
    let mut out = Vec::new();
    for opt in options.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let (key, value) = opt.split_once('=').unwrap_or((opt, ""));
        let ok = match key {
            "size" => berth_units::parse_size(value).is_ok(),
            "mode" => u32::from_str_radix(value, 8).is_ok(),
            "uid" | "gid" | "nr_inodes" => value.parse::<u64>().is_ok(),
            "ro" | "rw" | "noexec" | "exec" | "nosuid" | "suid" | "nodev" | "dev" => value.is_empty(),
            _ => false,
        };
        if !ok {
            return Err(ApiError::bad_request(format!(
                "invalid tmpfs option '{opt}' for {target} — use size=, mode=, uid=, gid=, nr_inodes=, ro, noexec, nosuid or nodev"
            )));
        }
        out.push(opt.to_string());
    }
    Ok(out.join(","))
}

/// `POST /containers/{id}/update`'s body: the limits it changes and the restart policy.
pub fn update_settings(body: &Value) -> Result<(Limits, Option<RestartPolicy>)> {
    let empty = Map::new();
    let obj = body.as_object().unwrap_or(&empty);
    let mut bad = Vec::new();
    unsupported_keys(
        "update",
        obj,
        &[
            "Memory",
            "MemorySwap",
            "NanoCpus",
            "CpuShares",
            "PidsLimit",
            "RestartPolicy",
            "CpusetCpus",
        ],
        &mut bad,
    );
    if !bad.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Berth cannot update these settings yet: {} — remove them and try again",
            bad.join(", ")
        )));
    }
    let int = |k: &str| obj.get(k).and_then(Value::as_i64);
    let limits = Limits {
        memory: int("Memory").map(|m| m.max(0) as u64),
        cpus: int("NanoCpus").map(|n| n as f64 / 1e9),
        pids: int("PidsLimit"),
        cpu_shares: int("CpuShares").map(|n| n.max(0) as u64),
        memory_swap: int("MemorySwap"),
        cpuset_cpus: obj.get("CpusetCpus").and_then(Value::as_str).map(String::from),
        swappiness: None,
    };
    let restart = match obj.get("RestartPolicy") {
        Some(v) if !is_default(v) => {
            Some(restart(serde_json::from_value(v.clone()).map_err(|e| {
                ApiError::bad_request(format!("invalid RestartPolicy: {e}"))
            })?)?)
        }
        _ => None,
    };
    Ok((limits, restart))
}

fn restart(r: WireRestartPolicy) -> Result<RestartPolicy> {
    let name = match r.name.as_deref().unwrap_or("") {
        "" | "no" => RestartName::No,
        "always" => RestartName::Always,
        "unless-stopped" => RestartName::UnlessStopped,
        "on-failure" => RestartName::OnFailure,
        other => {
            return Err(ApiError::bad_request(format!(
                "invalid restart policy '{other}': use no, always, unless-stopped or on-failure"
            )))
        }
    };
    let max = r.maximum_retry_count.unwrap_or(0);
    if max < 0 || (max > 0 && name != RestartName::OnFailure) {
        return Err(ApiError::bad_request(
            "MaximumRetryCount applies to on-failure only and must not be negative",
        ));
    }
    Ok(RestartPolicy {
        name,
        maximum_retry_count: max.min(u32::MAX as i64) as u32,
    })
}

/// json-file's `max-size` (k/m/g; -1 unlimited) and `max-file`.
fn log_settings(opts: HashMap<String, String>) -> Result<LogSettings> {
    let mut log = LogSettings::default();
    for (k, v) in opts {
        let bad = |what: &str| {
            ApiError::bad_request(format!(
                "invalid log option {k}={v}: {what} — use max-size=10m or max-file=3"
            ))
        };
        match k.as_str() {
            "max-size" if v == "-1" => log.max_size = 0,
            "max-size" => {
                log.max_size =
                    berth_units::parse_size(&v).map_err(|_| bad("the size is not a number with k, m or g"))?
            }
            "max-file" => {
                log.max_files = v
                    .parse()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| bad("max-file must be 1 or more"))?
            }
            _ => return Err(bad("Berth's json-file log knows max-size and max-file")),
        }
    }
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(body: Value) -> ContainerConfig {
        container_config(&body, Some("web".into()), HostPaths::Native)
            .unwrap_or_else(|e| panic!("{body}: {e}"))
    }

    fn refused(body: Value) -> String {
        match container_config(&body, None, HostPaths::Native) {
            Ok(c) => panic!("{body} was taken: {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_docker_cli_body_becomes_typed_settings() {
        let c = config(json!({
            "Image": "flask", "Cmd": ["python", "app.py"], "Entrypoint": null,
            "Env": ["A=1"], "WorkingDir": "", "Labels": {"tier": "web", "empty": null},
            "ExposedPorts": {"9000/udp": {}}, "Volumes": {"/cache": {}},
            "Tty": true, "OpenStdin": false,
            "HostConfig": {
                "PortBindings": {"5000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}], "7000": null},
                "Binds": ["data:/data:ro", "/srv:/srv"],
                "Mounts": [{"Type": "tmpfs", "Target": "/tmp/x"}],
                "Memory": 33554432, "NanoCpus": 1500000000, "PidsLimit": 0,
                "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
                "LogConfig": {"Type": "json-file", "Config": {"max-size": "1m", "max-file": "2"}},
                "NetworkMode": "default", "AutoRemove": false
            }
        }));
        assert_eq!((c.image.as_str(), c.name.as_deref()), ("flask", Some("web")));
        assert_eq!(c.cmd, Some(vec!["python".to_string(), "app.py".into()]));
        assert_eq!((c.entrypoint, c.working_dir, c.network), (None, None, None));
        assert_eq!(c.labels.get("empty").map(String::as_str), Some(""));
        assert_eq!(c.exposed_ports, vec![(9000, Proto::Udp)]);
        let localhost: IpAddr = "127.0.0.1".parse().unwrap();
        let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let port = |host_ip, host_port, container_port| PortSpec {
            host_ip,
            host_port,
            container_port,
            proto: Proto::Tcp,
        };
        assert_eq!(c.ports, vec![port(localhost, 8080, 5000), port(any, 0, 7000)]);
        let kinds: Vec<_> = c
            .mounts
            .iter()
            .map(|m| (m.kind, m.source.as_str(), m.target.as_str(), m.readonly))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (MountKind::Volume, "data", "/data", true),
                (MountKind::Bind, "/srv", "/srv", false),
                (MountKind::Tmpfs, "", "/tmp/x", false),
                (MountKind::Volume, "", "/cache", false),
            ]
        );
        assert_eq!(
            c.limits,
            Limits {
                memory: Some(32 << 20),
                cpus: Some(1.5),
                pids: None,
                ..Limits::default()
            }
        );
        assert_eq!(
            c.restart,
            RestartPolicy {
                name: RestartName::OnFailure,
                maximum_retry_count: 3
            }
        );
        assert_eq!(
            c.log,
            LogSettings {
                max_size: 1 << 20,
                max_files: 2
            }
        );
        assert!(c.tty && !c.open_stdin && !c.auto_remove);
    }

    #[test]
    fn entrypoints_as_string_list_or_cleared() {
        assert_eq!(
            config(json!({"Image": "x", "Entrypoint": "sh"})).entrypoint,
            Some(vec!["sh".to_string()])
        );
        assert_eq!(
            config(json!({"Image": "x", "Entrypoint": ["sh", "-c"]})).entrypoint,
            Some(vec!["sh".to_string(), "-c".into()])
        );
        assert_eq!(
            config(json!({"Image": "x", "Entrypoint": []})).entrypoint,
            Some(Vec::new())
        );
        let aliases = config(json!({"Image": "x", "HostConfig": {"NetworkMode": "appnet"},
            "NetworkingConfig": {"EndpointsConfig": {"appnet": {"Aliases": ["db"]}}}}));
        assert_eq!(
            (aliases.network.as_deref(), aliases.network_aliases),
            (Some("appnet"), vec!["db".to_string()])
        );
    }

    #[test]
    fn windows_host_paths_are_translated_on_a_windows_hosts_machine() {
        let body = json!({"Image": "flask", "HostConfig": {
            "Binds": [r"C:\Users\me\app:/app:ro", "/c/Users/me/data:/data", "cache:/cache"],
            "Mounts": [{"Type": "bind", "Source": "C:/Users/me/src", "Target": "/src"}]
        }});
        let c = container_config(&body, None, HostPaths::Windows).unwrap();
        let got: Vec<(MountKind, &str, &str, bool)> = c
            .mounts
            .iter()
            .map(|m| (m.kind, m.source.as_str(), m.target.as_str(), m.readonly))
            .collect();
        assert_eq!(
            got,
            [
                (MountKind::Bind, "/mnt/c/Users/me/app", "/app", true),
                (MountKind::Bind, "/mnt/c/Users/me/data", "/data", false),
                (MountKind::Volume, "cache", "/cache", false),
                (MountKind::Bind, "/mnt/c/Users/me/src", "/src", false),
            ]
        );
        // A native engine says what is wrong with a Windows path, in one sentence.
        let e = refused(json!({"Image": "x", "HostConfig": {"Binds": [r"C:\Users\me:/app"]}}));
        assert!(
            e.contains("is a Windows path") && e.contains("use a Linux path"),
            "{e}"
        );
        let e = refused(json!({"Image": "x", "HostConfig": {
            "Mounts": [{"Type": "bind", "Source": r"C:\x", "Target": "/x"}]}}));
        assert!(e.contains("is a Windows path"), "{e}");
    }

    #[test]
    fn bad_values_are_refused_with_what_to_write() {
        assert!(refused(json!({"Cmd": ["true"]})).contains("Config.Image is required"));
        assert!(refused(json!({"Image": "x", "Domainname": "example.org"})).contains("Config.Domainname"));
        assert!(refused(json!({"Image": "x", "HostConfig": {"Privileged": true}}))
            .contains("HostConfig.Privileged"));
        let hp = refused(
            json!({"Image": "x", "HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": "eighty"}]}}}),
        );
        assert!(hp.contains("invalid HostPort 'eighty'"), "{hp}");
        assert!(refused(json!({"Image": "x", "ExposedPorts": {"80/sctp": {}}})).contains("PORT/tcp"));
        assert!(
            refused(json!({"Image": "x", "HostConfig": {"Binds": ["data:relative"]}}))
                .contains("must be absolute")
        );
        assert!(
            refused(json!({"Image": "x", "HostConfig": {"Binds": ["/a:/b:zz"]}}))
                .contains("unknown mode 'zz'")
        );
        assert!(
            refused(json!({"Image": "x", "HostConfig": {"Mounts": [{"Type": "nfs", "Target": "/x"}]}}))
                .contains("nfs")
        );
        assert!(
            refused(json!({"Image": "x", "HostConfig": {"Mounts": [{"Type": "bind", "Target": "/x"}]}}))
                .contains("Source")
        );
        let r = refused(json!({"Image": "x", "HostConfig": {"RestartPolicy": {"Name": "sometimes"}}}));
        assert!(r.contains("on-failure"), "{r}");
        let r = refused(
            json!({"Image": "x", "HostConfig": {"RestartPolicy": {"Name": "always", "MaximumRetryCount": 2}}}),
        );
        assert!(r.contains("on-failure only"), "{r}");
        let l = refused(json!({"Image": "x", "HostConfig": {"LogConfig": {"Config": {"max-size": "lots"}}}}));
        assert!(l.contains("max-size=10m"), "{l}");
        assert!(refused(
            json!({"Image": "x", "HostConfig": {"LogConfig": {"Config": {"compress": "true"}}}})
        )
        .contains("max-file"));
        assert!(refused(json!({"Image": "x", "Tty": "yes"})).contains("invalid container settings"));
    }

    #[test]
    fn log_size_minus_one_is_unlimited() {
        let c = config(json!({"Image": "x", "HostConfig": {"LogConfig": {"Config": {"max-size": "-1"}}}}));
        assert_eq!(c.log.max_size, 0);
        assert_eq!(config(json!({"Image": "x"})).log, LogSettings::default());
    }
}
