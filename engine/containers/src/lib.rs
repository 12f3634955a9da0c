//! Container services: create, start, stop, kill, remove, list, inspect, logs, exec.
//! This is where images (rootfs layers), the runtime (processes and the shim), cgroups
//! (limits) and the network meet; none of those crates knows the others.
//!
//! State lives in `ROOT/containers/<id>/`: `config.json` (the record), the shim's
//! `shim/state.json` and `shim/exit.json`, and the json-file log. Everything a container
//! needs after the engine is gone (logs, exit code, port proxies, cleanup) is done by its
//! shim, so killing the CLI or the daemon never stops a container.
//!
//! Architecture invariant: the container record is written before anything is started, and
//! every resource a start acquires (overlay mount, network endpoint, cgroup, bound ports) is
//! released by `cleanup` whether the start failed, the container exited, or the engine died
//! in between (cleanup is idempotent and runs again lazily).

mod check;
mod config;
mod error;
mod health;
mod names;
mod record;
mod service;
mod supervisor;
mod volumes;

pub use berth_net::{is_ipv6_subnet, network_id, Endpoint, NetError, NetworkConfig, NetworkSpec};
pub use berth_runtime::attach::{parse_detach_keys, AttachRequest};
pub use berth_runtime::logs::{LogLine, LogOptions, Stream};
pub use berth_runtime::{Propagation, Stdio};
pub use check::ContainerProblem;
pub use config::{ContainerConfig, Limits, LogSettings, MountSpec, PortSpec, Proto};
pub use error::ContainerError;
pub use health::{HealthChange, HealthConfig, HealthResult, HealthState};
pub use record::{
    ContainerPaths, ContainerRecord, EndpointInfo, HostConfig, MountKind, MountRecord, NetworkAttachment,
    RestartName, RestartPolicy, RunConfig, Status,
};
pub use service::{
    copy_helper, resolve_stopped, signal_number, wait_for, Change, ChangeKind, ContainerService,
    ContainerSummary, CopyTarget, ExecOptions, HostPorts, OutputHold, StatsSample, StoppedRoot,
    WaitCondition, Waiter, COPY_NOT_FOUND,
};
pub use supervisor::supervise;
pub use volumes::{VolumeInfo, VolumeService};
