//! The container and exec descriptions the caller fills in.

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Everything needed to start a container's init process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerSpec {
    pub id: String,
    /// A directory that becomes `/` (an overlay mounted with
    /// [`crate::rootfs::mount_overlay`], or a plain directory).
    pub rootfs: PathBuf,
    pub args: Vec<String>,
    /// `KEY=value` entries; `PATH` is also used to find `args[0]`.
    pub env: Vec<String>,
    /// Absolute working directory; created if missing.
    pub cwd: String,
    pub user: User,
    pub hostname: String,
    pub mounts: Vec<MountSpec>,
    pub netns: NetNs,
    /// The PID namespace: its own (the default), the host's (`--pid host`), or another
    /// container's (`--pid container:NAME`: its init's `/proc/PID/ns/pid`).
    #[serde(default)]
    pub pidns: Share,
    /// The UTS namespace (hostname): its own, the host's (`--uts host`: the hostname is
    /// left alone), or another's.
    #[serde(default)]
    pub utsns: Share,
    /// The IPC namespace: its own, the host's (`--ipc host`), or another container's
    /// (`--ipc container:NAME`). Its `/dev/shm` is the caller's to mount over.
    #[serde(default)]
    pub ipcns: Share,
    /// The capability set (a bit per capability, see `capability_mask`); docker's
    /// default when `None`.
    #[serde(default)]
    pub caps: Option<u64>,
    /// The size of its own /dev/shm in bytes (`--shm-size`); 64 MiB when `None`.
    #[serde(default)]
    pub shm_size: Option<u64>,
    /// `--read-only`: the root file system is mounted read-only once everything is set up
    /// (volumes, binds, tmpfs and /dev stay as they are).
    #[serde(default)]
    pub readonly_rootfs: bool,
    /// `--sysctl KEY=VALUE` (namespaced ones only: the caller checks), written into the
    /// container's /proc/sys before it is made read-only.
    #[serde(default)]
    pub sysctls: Vec<(String, String)>,
    /// The binds' mount propagation (`-v SRC:DST:rslave`; docker's default is `rprivate`):
    /// (destination, mode), applied in order once every mount is made.
    #[serde(default)]
    pub propagation: Vec<(String, Propagation)>,
    /// `--security-opt seccomp=unconfined`: no seccomp filter (exec's too).
    #[serde(default)]
    pub seccomp_unconfined: bool,
    /// `--security-opt systempaths=unconfined`: /proc's masked and read-only paths left
    /// as they are.
    #[serde(default)]
    pub systempaths_unconfined: bool,
    /// `cgroup.procs` files the init process joins before exec.
    pub cgroup_procs: Vec<PathBuf>,
    pub tty: bool,
    pub stdin: bool,
    /// `(resource, soft, hard)`, resource named like docker's `--ulimit`
    /// (`nofile`, `nproc`, `core`, `memlock`, `stack`, ...).
    pub rlimits: Vec<(String, u64, u64)>,
    /// cgroup filesystems for `/sys/fs/cgroup` inside (mounted from the container's
    /// cgroup namespace, so the container's group is their root); empty: none.
    #[serde(default)]
    pub cgroup_mounts: Vec<CgroupFsMount>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// One cgroup filesystem at `/sys/fs/cgroup/<target>` (the caller knows the layout).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupFsMount {
    /// `cgroup` or `cgroup2`.
    pub fstype: String,
    /// Mount data (a v1 hierarchy's controllers); may be empty.
    pub options: String,
    /// A single path component under /sys/fs/cgroup; empty: /sys/fs/cgroup itself.
    pub target: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    /// Host path for binds (file or directory); for tmpfs its options as docker takes them
    /// (`size=64m,mode=1777,noexec`; empty: the defaults).
    pub source: PathBuf,
    /// Absolute path inside the container.
    pub destination: String,
    pub kind: MountKind,
    pub readonly: bool,
}

/// A bind's mount propagation, as docker names it (`rprivate` is docker's default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Propagation {
    Private,
    Rprivate,
    Shared,
    Rshared,
    Slave,
    Rslave,
}

impl Propagation {
    /// docker's word for it (`rslave`), or `None`.
    pub fn parse(word: &str) -> Option<Propagation> {
        Some(match word {
            "private" => Propagation::Private,
            "rprivate" => Propagation::Rprivate,
            "shared" => Propagation::Shared,
            "rshared" => Propagation::Rshared,
            "slave" => Propagation::Slave,
            "rslave" => Propagation::Rslave,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Propagation::Private => "private",
            Propagation::Rprivate => "rprivate",
            Propagation::Shared => "shared",
            Propagation::Rshared => "rshared",
            Propagation::Slave => "slave",
            Propagation::Rslave => "rslave",
        }
    }

    /// The mount(2) flags that set it.
    pub(crate) fn flags(self) -> libc::c_ulong {
        match self {
            Propagation::Private => libc::MS_PRIVATE,
            Propagation::Rprivate => libc::MS_PRIVATE | libc::MS_REC,
            Propagation::Shared => libc::MS_SHARED,
            Propagation::Rshared => libc::MS_SHARED | libc::MS_REC,
            Propagation::Slave => libc::MS_SLAVE,
            Propagation::Rslave => libc::MS_SLAVE | libc::MS_REC,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountKind {
    Bind,
    Tmpfs,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetNs {
    /// A new, empty network namespace with `lo` up.
    New,
    /// The host's network namespace.
    Host,
    /// Join a persistent namespace (a bind-mounted nsfs file).
    Path(PathBuf),
}

/// A namespace of the container's own, or one it shares.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Share {
    #[default]
    New,
    Host,
    /// Join the namespace this nsfs file names (`/proc/PID/ns/…`).
    Path(PathBuf),
}

/// A process to run inside a running container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecSpec {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: User,
    /// `cgroup.procs` files the process joins (usually the container's).
    pub cgroup_procs: Vec<PathBuf>,
    pub tty: bool,
    /// The container's capability set (docker's default when `None`).
    #[serde(default)]
    pub caps: Option<u64>,
    /// The container runs without a seccomp filter; so does the exec.
    #[serde(default)]
    pub seccomp_unconfined: bool,
}

/// Where the container's standard streams go.
#[derive(Debug)]
pub enum Stdio {
    /// The caller's own fds 0, 1, 2.
    Inherit,
    /// Explicit fds; `stdin: None` means `/dev/null`.
    Fds {
        stdin: Option<OwnedFd>,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
    /// The slave side of a pty; it becomes the controlling terminal.
    Pty(OwnedFd),
    /// A new pty from the container's own devpts (so it has a name inside): the
    /// container's init opens it once `/dev/pts` is mounted, makes the slave its stdio
    /// and controlling terminal, and sends the master over this unix socket
    /// (`SCM_RIGHTS`); receive it with [`crate::recv_console`].
    ContainerPty(OwnedFd),
}
