//! What Berth remembers about a container (`ROOT/containers/<id>/config.json`) and how its
//! state is read back from the shim's files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_oci::Digest;
use berth_units::PortSpec;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ContainerRecord {
    pub id: String,
    pub name: String,
    /// The image as the user named it (`flask`, `127.0.0.1:5000/app:v1`).
    pub image: String,
    pub image_id: Digest,
    /// RFC 3339 with nanoseconds.
    pub created: String,
    pub config: RunConfig,
    pub host: HostConfig,
    /// The networks the container joins when it starts, in order (the first gives `eth0`
    /// and the default route), with the aliases asked for; `network connect`/`disconnect`
    /// edit it. `None` in records written before containers could be on several networks:
    /// then it is `host.network` alone (see [`ContainerRecord::attachments`]).
    #[serde(default)]
    pub networks: Option<Vec<NetworkAttachment>>,
    /// The network endpoints while the container runs, in interface order.
    #[serde(default, alias = "endpoint", deserialize_with = "one_or_many")]
    pub endpoints: Vec<EndpointInfo>,
    /// Host ports actually bound (with `-p 80` / `-P` the host port is picked at start).
    #[serde(default)]
    pub bound_ports: Vec<PortSpec>,
    #[serde(default)]
    pub restart_count: u32,
    /// Why this container cannot be used (its record could not be read, so the rest is
    /// what could be salvaged): set when read, never written. See [`ContainerRecord::broken`].
    #[serde(skip)]
    pub damage: Option<String>,
}

/// The process side: docker's `Config`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RunConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub hostname: String,
    pub tty: bool,
    pub open_stdin: bool,
    pub labels: BTreeMap<String, String>,
    /// `5000/tcp` style keys, from the image and `--expose`.
    pub exposed_ports: Vec<String>,
    pub stop_signal: Option<String>,
    /// Mount points the image declares with VOLUME.
    pub image_volumes: Vec<String>,
    /// The healthcheck (the image's, merged with the create request's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<crate::HealthConfig>,
    /// Seconds `stop` waits before SIGKILL when the caller gives none (docker's 10 if unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    /// Extra groups for the container's processes (`--group-add`: names or gids).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_add: Vec<String>,
}

/// What `--security-opt` asks of the runtime.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SecurityOptions {
    pub seccomp_unconfined: bool,
    pub systempaths_unconfined: bool,
}

/// `--security-opt` values as docker takes them (`key=value` or `key:value`): `seccomp`
/// and `systempaths` `=unconfined` lift Berth's seccomp filter and /proc masks;
/// `no-new-privileges` (true) is what Berth always does; `apparmor=unconfined` and
/// `label=disable` turn off what Berth never applies. Anything else is the error.
pub fn security_options(opts: &[String]) -> Result<SecurityOptions, crate::ContainerError> {
    let mut out = SecurityOptions::default();
    for o in opts {
        let (key, value) = o.split_once(['=', ':']).unwrap_or((o.as_str(), ""));
        match (key, value) {
            ("seccomp", "unconfined") => out.seccomp_unconfined = true,
            ("systempaths", "unconfined") => out.systempaths_unconfined = true,
            ("no-new-privileges", "" | "true") | ("apparmor", "unconfined") | ("label", "disable") => {}
            ("seccomp", _) => {
                return Err(crate::ContainerError::InvalidArgument(format!(
                    "--security-opt {o}: custom seccomp profiles are not supported by Berth yet — use seccomp=unconfined or leave it out"
                )))
            }
            ("no-new-privileges", "false") => {
                return Err(crate::ContainerError::InvalidArgument(
                    "--security-opt no-new-privileges=false: Berth always sets no_new_privs on its containers — leave it out".into(),
                ))
            }
            ("apparmor" | "label", _) => {
                return Err(crate::ContainerError::InvalidArgument(format!(
                    "--security-opt {o}: Berth applies no AppArmor or SELinux profiles — leave it out"
                )))
            }
            _ => {
                return Err(crate::ContainerError::InvalidArgument(format!(
                    "invalid --security-opt {o} — use seccomp=unconfined, systempaths=unconfined, no-new-privileges, apparmor=unconfined or label=disable"
                )))
            }
        }
    }
    Ok(out)
}

impl HostConfig {
    /// Its resource limits.
    pub fn limits(&self) -> crate::Limits {
        crate::Limits {
            memory: self.memory,
            cpus: self.cpus,
            pids: self.pids_limit,
            cpu_shares: self.cpu_shares,
            memory_swap: self.memory_swap,
            cpuset_cpus: self.cpuset_cpus.clone(),
            swappiness: self.swappiness,
        }
    }
}

/// The host side: docker's `HostConfig`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HostConfig {
    pub publish: Vec<PortSpec>,
    pub publish_all: bool,
    pub mounts: Vec<MountRecord>,
    /// `bridge` (default), `host`, `none` or a user network's name.
    pub network: String,
    pub memory: Option<u64>,
    pub cpus: Option<f64>,
    pub pids_limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_shares: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_swap: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpuset_cpus: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swappiness: Option<i64>,
    pub restart: RestartPolicy,
    pub auto_remove: bool,
    /// `--init`: tini runs as PID 1 and the command under it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub init: bool,
    /// docker's PidMode: "" (its own), `host`, `container:NAME`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pid_mode: String,
    /// docker's UTSMode: "" (its own) or `host`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uts_mode: String,
    /// docker's IpcMode: "" (its own, docker's `private`), `private`, `shareable`, `none`,
    /// `host`, `container:NAME`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ipc_mode: String,
    /// `--add-host NAME:IP` entries as given (IP may be `host-gateway`), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    /// `--dns`, `--dns-search`, `--dns-option`: what the container's resolv.conf says
    /// instead of the host's nameservers, search domains and options.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_options: Vec<String>,
    /// `--shm-size` in bytes (64 MiB when `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<u64>,
    /// `--read-only`: the container's root file system is read-only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub readonly_rootfs: bool,
    /// `--security-opt` as given (checked at create: see `security_options`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    /// `--sysctl KEY=VALUE` (namespaced keys only).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub sysctls: std::collections::BTreeMap<String, String>,
    /// `--cap-add` / `--cap-drop`, normalised (`NET_ADMIN`, `ALL`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    /// Legacy links: (the other container's ID, the alias it is reached by).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<(String, String)>,
    /// json-file log rotation: bytes per file (0 = unlimited) and files kept.
    #[serde(default = "default_log_max_size")]
    pub log_max_size: u64,
    #[serde(default = "default_log_max_files")]
    pub log_max_files: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MountRecord {
    /// A host path for binds, a volume name for volumes.
    pub source: String,
    pub destination: String,
    pub readonly: bool,
    pub kind: MountKind,
    /// A volume made for this container alone (`-v /path`); `rm -v` removes it.
    #[serde(default)]
    pub anonymous: bool,
    /// A bind's propagation, when asked for (`:rshared`, `:rslave`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation: Option<berth_runtime::Propagation>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    Bind,
    Volume,
    Tmpfs,
}

/// docker's restart policy; `maximum_retry_count` counts for `on-failure` only (0: no limit).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RestartPolicy {
    pub name: RestartName,
    pub maximum_retry_count: u32,
}

/// docker's policy names, spelled as docker spells them in JSON.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RestartName {
    #[default]
    #[serde(alias = "")]
    No,
    OnFailure,
    Always,
    UnlessStopped,
}

impl RestartName {
    pub fn as_str(self) -> &'static str {
        match self {
            RestartName::No => "no",
            RestartName::OnFailure => "on-failure",
            RestartName::Always => "always",
            RestartName::UnlessStopped => "unless-stopped",
        }
    }
}

impl ContainerRecord {
    /// The stand-in for a container whose record `bytes` cannot be read (`why`: one
    /// phrase), so that it is listed, shown as dead and removable: its ID is its
    /// directory's name, and the name and image are salvaged from the start of the record
    /// when it is there (a record cut short keeps its first lines).
    pub fn broken(id: &str, bytes: &[u8], why: &str) -> ContainerRecord {
        let text = String::from_utf8_lossy(bytes);
        let name = salvage(&text, "name").unwrap_or_else(|| id.chars().take(12).collect());
        let image_id = salvage(&text, "image_id")
            .and_then(|d| d.parse().ok())
            .unwrap_or_else(|| Digest::of(b""));
        ContainerRecord {
            id: id.to_string(),
            name,
            image: salvage(&text, "image").unwrap_or_default(),
            image_id,
            created: salvage(&text, "created").unwrap_or_default(),
            config: RunConfig::default(),
            // Nothing known of its networks: `cleanup` looks them up by ID.
            host: HostConfig {
                log_max_size: default_log_max_size(),
                log_max_files: default_log_max_files(),
                ..HostConfig::default()
            },
            networks: None,
            endpoints: Vec::new(),
            bound_ports: Vec::new(),
            restart_count: 0,
            damage: Some(why.to_string()),
        }
    }

    /// The networks this container joins at start (none with `--network host|none`).
    pub fn attachments(&self) -> Vec<NetworkAttachment> {
        match (&self.networks, self.host.network.as_str()) {
            (_, "host" | "none") => Vec::new(),
            (Some(n), _) => n.clone(),
            (None, mode) => vec![NetworkAttachment {
                name: mode.to_string(),
                aliases: Vec::new(),
                ip: None,
                ip6: None,
                mac: None,
            }],
        }
    }

    /// The endpoint published ports forward to: the first network's.
    pub fn primary_endpoint(&self) -> Option<&EndpointInfo> {
        self.endpoints.first()
    }
}

impl HostConfig {
    /// The capability set `--cap-add` / `--cap-drop` make (`None`: docker's default).
    pub fn caps(&self) -> Result<Option<u64>, crate::ContainerError> {
        if self.cap_add.is_empty() && self.cap_drop.is_empty() {
            return Ok(None);
        }
        berth_runtime::capability_mask(&self.cap_add, &self.cap_drop)
            .map(Some)
            .map_err(crate::ContainerError::InvalidArgument)
    }
}

/// A network a container is connected to, as docker's `EndpointSettings` config.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NetworkAttachment {
    pub name: String,
    /// Extra names the container answers to on this network (`--alias`).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// A fixed address on this network (`--ip`, `IPAMConfig.IPv4Address`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<std::net::Ipv4Addr>,
    /// A fixed IPv6 address on this network (`--ip6`, `IPAMConfig.IPv6Address`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip6: Option<std::net::Ipv6Addr>,
    /// A fixed MAC address on this network (`--mac-address`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

impl NetworkAttachment {
    /// What is fixed about its endpoint.
    pub fn fixed(&self) -> berth_net::Fixed {
        berth_net::Fixed {
            ip: self.ip,
            ip6: self.ip6,
            mac: self.mac.as_deref().and_then(berth_net::parse_mac),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EndpointInfo {
    pub network: String,
    pub ip: String,
    pub prefix: u8,
    pub gateway: String,
    pub mac: String,
    /// `eth0`, `eth1`, … inside the container.
    #[serde(default)]
    pub interface: String,
    /// Its IPv6 address, prefix and gateway, on a network with IPv6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<berth_net::Ipv6Endpoint>,
}

/// Reads `endpoints`, or the single `endpoint` (possibly null) older records stored.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<EndpointInfo>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<EndpointInfo>),
        One(Option<EndpointInfo>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::Many(v) => v,
        OneOrMany::One(o) => o.into_iter().collect(),
    })
}

/// The first string value of `"key"` in a JSON text that may be cut short.
fn salvage(text: &str, key: &str) -> Option<String> {
    let quoted = format!("\"{key}\"");
    let rest = &text[text.find(&quoted)? + quoted.len()..];
    let rest = rest
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('"')?;
    let value: String = serde_json::from_str(&format!("\"{}\"", &rest[..rest.find('"')?])).ok()?;
    Some(value).filter(|v| !v.is_empty())
}

/// A container's state as docker reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Created,
    Running {
        pid: i32,
        started_at: String,
    },
    Paused {
        pid: i32,
        started_at: String,
    },
    Exited {
        code: i32,
        started_at: String,
        finished_at: String,
        oom_killed: bool,
    },
    /// docker's "dead": a container Berth cannot run or release by itself (its record is
    /// unreadable, its files are missing, or releasing its last run failed); `reason` is
    /// one sentence on what happened. `rm` removes it.
    Dead {
        reason: String,
    },
}

impl Status {
    /// docker's `State.Status`.
    pub fn name(&self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running { .. } => "running",
            Status::Paused { .. } => "paused",
            Status::Exited { .. } => "exited",
            Status::Dead { .. } => "dead",
        }
    }

    pub fn is_running(&self) -> bool {
        matches!(self, Status::Running { .. } | Status::Paused { .. })
    }

    pub fn pid(&self) -> Option<i32> {
        match self {
            Status::Running { pid, .. } | Status::Paused { pid, .. } => Some(*pid),
            _ => None,
        }
    }
}

/// Where a container's files live.
#[derive(Debug, Clone)]
pub struct ContainerPaths {
    pub dir: PathBuf,
}

impl ContainerPaths {
    pub fn new(root: &Path, id: &str) -> ContainerPaths {
        ContainerPaths {
            dir: root.join("containers").join(id),
        }
    }
    pub fn config(&self) -> PathBuf {
        self.dir.join("config.json")
    }
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }
    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }
    /// The shared `/dev/shm` of a container run with `--ipc shareable`, mounted while it runs.
    pub fn shm(&self) -> PathBuf {
        self.dir.join("shm")
    }
    pub fn log(&self) -> PathBuf {
        self.dir.join("container-json.log")
    }
    /// The shim's state directory (state.json, exit.json, shim.json).
    pub fn shim(&self) -> PathBuf {
        self.dir.join("shim")
    }
    pub fn etc(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
    /// The pid of the process starting the container, while it does.
    pub fn starting(&self) -> PathBuf {
        self.dir.join("starting")
    }
    /// Says why releasing the last run failed (one sentence), while it has not succeeded.
    pub fn dead(&self) -> PathBuf {
        self.dir.join("dead")
    }
    /// Marks that the rootfs, network and cgroup of the last run were released.
    pub fn cleaned(&self) -> PathBuf {
        self.dir.join("cleaned")
    }
}

fn default_log_max_size() -> u64 {
    crate::LogSettings::default().max_size
}

fn default_log_max_files() -> u32 {
    crate::LogSettings::default().max_files
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(extra: &str) -> ContainerRecord {
        let digest = format!("sha256:{}", "0".repeat(64));
        let text = format!(
            r#"{{"id": "abcdef0123456789", "name": "web", "image": "busybox", "image_id": "{digest}",
            "created": "", "config": {{"entrypoint": [], "cmd": [], "env": [], "working_dir": "/",
            "user": "", "hostname": "h", "tty": false, "open_stdin": false, "labels": {{}},
            "exposed_ports": [], "stop_signal": null, "image_volumes": []}},
            "host": {{"publish": [], "publish_all": false, "mounts": [], "network": "lab",
            "memory": null, "cpus": null, "pids_limit": null,
            "restart": {{"name": "no", "maximum_retry_count": 0}}, "auto_remove": false}}{extra}}}"#
        );
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn records_from_before_several_networks_still_read() {
        // The single `endpoint` of older records, set or null, becomes the endpoint list.
        let ep = r#", "endpoint": {"network": "lab", "ip": "10.89.0.2", "prefix": 24,
            "gateway": "10.89.0.1", "mac": "02:42:0a:59:00:02"}"#;
        let rec = record(ep);
        assert_eq!(rec.endpoints.len(), 1);
        assert_eq!(rec.primary_endpoint().unwrap().ip, "10.89.0.2");
        assert!(record(r#", "endpoint": null"#).endpoints.is_empty());
        assert!(record("").endpoints.is_empty());
        // No `networks` yet: the network mode is the one attachment.
        assert_eq!(
            rec.attachments(),
            [NetworkAttachment {
                name: "lab".into(),
                aliases: vec![],
                ip: None,
                ip6: None,
                mac: None,
            }]
        );
        // Written back, the list round-trips under its new name.
        let again: ContainerRecord = serde_json::from_value(serde_json::to_value(&rec).unwrap()).unwrap();
        assert_eq!(again, rec);
        // An explicit empty list (disconnected from everything) is not the network mode.
        let none = record(r#", "networks": []"#);
        assert!(none.attachments().is_empty());
    }

    #[test]
    fn records_from_before_typed_settings_still_read() {
        // Ports were strings and the restart policy a free-form name; the JSON is the same.
        let old = serde_json::to_string(&record("")).unwrap().replace(
            r#""publish":[]"#,
            r#""publish":[{"host_ip":"127.0.0.1","host_port":8080,"container_port":53,"proto":"udp"}]"#,
        );
        let old = old.replace(r#""name":"no""#, r#""name":"unless-stopped""#);
        let rec: ContainerRecord = serde_json::from_str(&old).unwrap();
        let p = rec.host.publish[0];
        assert_eq!(
            (p.host_ip.to_string(), p.host_port, p.proto),
            ("127.0.0.1".into(), 8080, berth_units::Proto::Udp)
        );
        assert_eq!(rec.host.restart.name, RestartName::UnlessStopped);
        assert_eq!(
            serde_json::to_string(&rec).unwrap(),
            old,
            "written back unchanged"
        );
        let blank = old.replace(r#""name":"unless-stopped""#, r#""name":"""#);
        let rec: ContainerRecord = serde_json::from_str(&blank).unwrap();
        assert_eq!(rec.host.restart.name, RestartName::No);
    }

    #[test]
    fn a_record_cut_short_keeps_what_its_first_lines_say() {
        let whole = serde_json::to_string_pretty(&record("")).unwrap();
        let cut = &whole.as_bytes()[..whole.find("\"config\"").unwrap()];
        let rec = ContainerRecord::broken("abcdef0123456789", cut, "its record is damaged");
        assert_eq!((rec.name.as_str(), rec.image.as_str()), ("web", "busybox"));
        assert_eq!(rec.image_id.to_string(), format!("sha256:{}", "0".repeat(64)));
        assert_eq!(rec.damage.as_deref(), Some("its record is damaged"));
        // Nothing readable: named after its ID, and never written back with its damage.
        let rec = ContainerRecord::broken("abcdef0123456789", b"\0\0\0", "its record is damaged");
        assert_eq!((rec.name.as_str(), rec.image.as_str()), ("abcdef012345", ""));
        assert!(!serde_json::to_string(&rec).unwrap().contains("damage"));
    }
}
