//! [`ContainerConfig`]: everything a container is asked to be, typed. The CLI's flags and
//! the Engine API's JSON both become one of these (the CLI through the API); `create`
//! takes it and applies the image's defaults. No command-line syntax reaches the engine:
//! ports are [`PortSpec`]s, sizes are bytes, the restart policy is a [`RestartPolicy`].

use std::collections::BTreeMap;

pub use berth_units::{PortSpec, Proto};

use crate::record::{MountKind, RestartPolicy};

/// What `create` is given. `None` and empty mean "the image's, or docker's default".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerConfig {
    /// The image as the user named it (`flask`, `127.0.0.1:5000/app:v1`).
    pub image: String,
    pub name: Option<String>,
    /// Replaces the image's Cmd when given.
    pub cmd: Option<Vec<String>>,
    /// Replaces the image's Entrypoint (and drops its Cmd unless `cmd` is given);
    /// `Some(vec![])` clears it.
    pub entrypoint: Option<Vec<String>>,
    /// `KEY=value` pairs over the image's Env (a later one replaces an earlier one).
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    /// More ports to expose (`5000/tcp`), beside the image's and the published ones.
    pub exposed_ports: Vec<(u16, Proto)>,
    /// Published ports; host port 0 picks a free one at start.
    pub ports: Vec<PortSpec>,
    /// `-P`: publish every exposed port on a free host port.
    pub publish_all: bool,
    pub mounts: Vec<MountSpec>,
    /// `bridge` (default), `host`, `none` or a user network's name.
    pub network: Option<String>,
    /// More names on that (user) network.
    pub network_aliases: Vec<String>,
    /// A fixed address on that network (`--ip`), which needs a subnet the user gave.
    pub network_ip: Option<std::net::Ipv4Addr>,
    /// A fixed IPv6 address on that network (`--ip6`), which needs a network with IPv6.
    pub network_ip6: Option<std::net::Ipv6Addr>,
    /// A fixed MAC address on that network (`--mac-address`), checked by the caller.
    pub network_mac: Option<String>,
    /// docker's `Healthcheck` (over the image's; `Test: ["NONE"]` turns it off).
    pub healthcheck: Option<crate::HealthConfig>,
    /// The signal `stop` sends (`--stop-signal`), over the image's STOPSIGNAL.
    pub stop_signal: Option<String>,
    /// Seconds a stop waits before SIGKILL (`--stop-timeout`).
    pub stop_timeout: Option<i64>,
    /// `--volumes-from NAME[:ro|:rw]`.
    pub volumes_from: Vec<String>,
    /// Legacy `--link NAME[:ALIAS]`: the other container's address in /etc/hosts under
    /// the alias (and its name).
    pub links: Vec<String>,
    /// `--init`: an init (tini) as PID 1 that reaps zombies and forwards signals.
    pub init: bool,
    /// `--pid`: `host` or `container:NAME` (empty: its own).
    pub pid_mode: Option<String>,
    /// `--uts`: `host` (empty: its own).
    pub uts_mode: Option<String>,
    /// `--ipc`: `private`, `shareable`, `none`, `host` or `container:NAME` (empty: its own).
    pub ipc_mode: Option<String>,
    /// `--add-host NAME:IP` (IP may be `host-gateway`: the computer running the engine).
    pub extra_hosts: Vec<String>,
    /// `--dns`, `--dns-search`, `--dns-option`.
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    /// `--shm-size` in bytes.
    pub shm_size: Option<u64>,
    /// `--read-only`.
    pub readonly_rootfs: bool,
    /// `--security-opt`.
    pub security_opt: Vec<String>,
    /// `--sysctl KEY=VALUE`: the ones docker allows (IPC and `net.*` ones, which the
    /// container's own namespaces scope).
    pub sysctls: std::collections::BTreeMap<String, String>,
    /// `--cap-add` / `--cap-drop` (`NET_ADMIN`, `CAP_NET_ADMIN`, `ALL`).
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// `--group-add`: group names (from the image's /etc/group) or gids.
    pub group_add: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub tty: bool,
    pub open_stdin: bool,
    pub auto_remove: bool,
    pub restart: RestartPolicy,
    pub limits: Limits,
    pub log: LogSettings,
}

/// A volume, bind or tmpfs mount asked for. A volume without a source is anonymous (it
/// gets a fresh name at create, so a restart finds the same data).
#[derive(Debug, Clone, PartialEq)]
pub struct MountSpec {
    pub kind: MountKind,
    /// A host path (absolute) for binds, a volume name (or empty) for volumes.
    pub source: String,
    /// An absolute path in the container.
    pub target: String,
    pub readonly: bool,
    /// A bind's propagation (`:rslave`, `bind-propagation=`); the kernel's default if `None`.
    pub propagation: Option<berth_runtime::Propagation>,
}

/// Resource limits (cgroups); `None` is no limit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    pub memory: Option<u64>,
    pub cpus: Option<f64>,
    pub pids: Option<i64>,
    /// `--cpu-shares`: relative CPU weight (docker's default is 1024).
    pub cpu_shares: Option<u64>,
    /// `--memory-swap`: memory plus swap in bytes, -1 unlimited.
    pub memory_swap: Option<i64>,
    /// `--cpuset-cpus`: `0-1,3`.
    pub cpuset_cpus: Option<String>,
    /// `--memory-swappiness`: 0..=100 (cgroup v1).
    pub swappiness: Option<i64>,
}

/// json-file log rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSettings {
    /// Bytes per file; 0 is unlimited.
    pub max_size: u64,
    /// Files kept (at least 1).
    pub max_files: u32,
}

impl Default for LogSettings {
    /// Berth rotates logs by default (docker keeps them unbounded unless told).
    fn default() -> Self {
        LogSettings {
            max_size: 10 << 20,
            max_files: 3,
        }
    }
}
