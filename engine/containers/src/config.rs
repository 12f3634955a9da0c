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
}

/// Resource limits (cgroups); `None` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    pub memory: Option<u64>,
    pub cpus: Option<f64>,
    pub pids: Option<i64>,
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
