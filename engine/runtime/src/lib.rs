//! Namespace-isolated container processes, the per-container shim, and
//! docker json-file logs.
//!
//! * [`spawn`] starts a container's init process in fresh pid, mount, uts,
//!   ipc, cgroup (and optionally net) namespaces, with docker's default
//!   capabilities, seccomp filter, masked and read-only paths.
//! * [`exec`] runs another process inside a running container.
//! * [`shim`] is the per-container supervisor that outlives the engine.
//! * [`logs`] reads and writes docker's json-file log format.
//! * [`rootfs`] mounts overlay root filesystems.
//!
//! Everything here is rootful today. The child set-up is written to stay
//! usable under a user namespace later: device nodes are bind mounts (no
//! mknod), host paths are reached through file descriptors opened by the
//! parent, and the parent/child protocol already runs over a pipe, so a
//! "uid maps written" sync step can be slotted in.

pub mod attach;
mod caps;
mod child;
mod error;
pub mod logs;
mod plan;
pub mod rootfs;
mod seccomp;
pub mod shim;
mod spec;
mod user;

pub use caps::{capability_mask, normalize_capability};
pub use error::RuntimeError;
pub use plan::{exec, recv_console, spawn};
pub use spec::{
    CgroupFsMount, ContainerSpec, ExecSpec, MountKind, MountSpec, NetNs, Propagation, Share, Stdio, User,
};
pub use user::{resolve_groups, resolve_user};

/// A host process id.
pub type Pid = i32;
