//! Parent side of [`spawn`] and [`exec`]: turns a spec into a [`Prepared`]
//! plan (every string, fd and filter the child needs), clones, and reads
//! the child's report.

use std::ffi::{c_int, c_ulong, CString};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::child::{self, Msg, Prepared, Stage, Step, MSG_ERROR, MSG_PID};
use crate::spec::{ContainerSpec, ExecSpec, MountKind, NetNs, Share, Stdio, User};
use crate::{caps, seccomp, Pid, RuntimeError};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Paths hidden from the container (as runc/docker do).
const MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths the container sees read-only.
const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

fn cstr(s: impl AsRef<[u8]>, what: &str) -> Result<CString, RuntimeError> {
    CString::new(s.as_ref().to_vec())
        .map_err(|_| RuntimeError::InvalidSpec(format!("{what} contains a NUL byte")))
}

/// Splits an absolute container path into clean components.
fn components(path: &str, what: &str) -> Result<Vec<String>, RuntimeError> {
    if !path.starts_with('/') {
        return Err(RuntimeError::InvalidSpec(format!(
            "{what} '{path}' is not an absolute path"
        )));
    }
    let mut out = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            p => out.push(p.to_string()),
        }
    }
    Ok(out)
}

fn join(parts: &[String]) -> String {
    format!("/{}", parts.join("/"))
}

/// Mkdir steps for every prefix of `parts` (mkdir -p).
fn mkdir_p(parts: &[String], steps: &mut Plan) -> Result<(), RuntimeError> {
    for i in 1..=parts.len() {
        let p = join(&parts[..i]);
        steps.push(Step::Mkdir(cstr(&p, "path")?), format!("creating {p}"));
    }
    Ok(())
}

/// The steps and a description of each, for error messages.
#[derive(Default)]
struct Plan {
    steps: Vec<Step>,
    what: Vec<String>,
}

impl Plan {
    fn push(&mut self, step: Step, what: String) {
        self.steps.push(step);
        self.what.push(what);
    }

    fn mount(
        &mut self,
        src: Option<&str>,
        target: &str,
        fstype: Option<&str>,
        flags: c_ulong,
        data: Option<&str>,
    ) -> Result<(), RuntimeError> {
        let step = Step::Mount {
            src: src.map(|s| cstr(s, "mount source")).transpose()?,
            target: cstr(target, "mount target")?,
            fstype: fstype.map(|s| cstr(s, "fs type")).transpose()?,
            flags,
            data: data.map(|s| cstr(s, "mount data")).transpose()?,
        };
        self.push(step, format!("mounting {}", target));
        Ok(())
    }

    /// A new `fstype` file system at `target` (see [`Step::Fresh`]); `attr` holds
    /// `MOUNT_ATTR_*` flags.
    fn fresh(&mut self, fstype: &str, target: &str, attr: u64) -> Result<(), RuntimeError> {
        let fresh = self
            .steps
            .iter()
            .filter(|s| matches!(s, Step::Fresh { .. }))
            .count();
        if fresh >= crate::child::MAX_FRESH {
            return Err(RuntimeError::InvalidSpec(format!(
                "too many new file systems at {target}"
            )));
        }
        let step = Step::Fresh {
            fstype: cstr(fstype, "fs type")?,
            attr,
            target: cstr(target, "mount target")?,
        };
        self.push(step, format!("mounting {target}"));
        Ok(())
    }
}

/// `MOUNT_ATTR_*` of fsmount(2).
const ATTR_RDONLY: u64 = 0x1;
const ATTR_NOSUID_NODEV_NOEXEC: u64 = 0x2 | 0x4 | 0x8;

/// Fds the plan refers to by number; closed when the spawn is over.
#[derive(Default)]
struct Held(Vec<OwnedFd>);

impl Held {
    fn open(&mut self, path: &Path, flags: c_int, what: &str) -> Result<RawFd, RuntimeError> {
        let f = std::fs::OpenOptions::new()
            .read(flags & libc::O_WRONLY == 0)
            .write(flags & libc::O_WRONLY != 0)
            .custom_flags(flags)
            .open(path)
            .map_err(|e| RuntimeError::io(format!("cannot open {what} {}", path.display()), e))?;
        let fd: OwnedFd = f.into();
        let raw = fd.as_raw_fd();
        self.0.push(fd);
        Ok(raw)
    }

    /// A detached copy of the mount tree at `path` (`open_tree`), which the
    /// child attaches after pivot_root, when host paths are out of reach.
    fn clone_tree(&mut self, path: &Path, what: &str) -> Result<RawFd, RuntimeError> {
        const OPEN_TREE_CLONE: libc::c_uint = 1;
        const AT_RECURSIVE: libc::c_uint = 0x8000;
        let c = cstr(path.as_os_str().as_bytes(), what)?;
        // SAFETY: open_tree on a NUL-terminated path; returns a new fd.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_open_tree,
                libc::AT_FDCWD,
                c.as_ptr(),
                OPEN_TREE_CLONE | AT_RECURSIVE | libc::O_CLOEXEC as libc::c_uint,
            )
        };
        if fd < 0 {
            return Err(RuntimeError::io(
                format!("cannot bind {what} {}", path.display()),
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: fd is fresh and ours.
        Ok(self.keep(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }))
    }

    fn keep(&mut self, fd: OwnedFd) -> RawFd {
        let raw = fd.as_raw_fd();
        self.0.push(fd);
        raw
    }
}

fn env_path(env: &[String]) -> String {
    env.iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH)
        .to_string()
}

fn candidates(arg0: &str, env: &[String]) -> Result<Vec<CString>, RuntimeError> {
    if arg0.contains('/') {
        return Ok(vec![cstr(arg0, "the command")?]);
    }
    env_path(env)
        .split(':')
        .map(|dir| {
            let dir = if dir.is_empty() { "." } else { dir };
            cstr(format!("{}/{}", dir.trim_end_matches('/'), arg0), "the command")
        })
        .collect()
}

fn rlimit_resource(name: &str) -> Result<c_int, RuntimeError> {
    let n = name.to_ascii_lowercase();
    let n = n.strip_prefix("rlimit_").unwrap_or(&n);
    let r = match n {
        "core" => libc::RLIMIT_CORE,
        "cpu" => libc::RLIMIT_CPU,
        "data" => libc::RLIMIT_DATA,
        "fsize" => libc::RLIMIT_FSIZE,
        "locks" => libc::RLIMIT_LOCKS,
        "memlock" => libc::RLIMIT_MEMLOCK,
        "msgqueue" => libc::RLIMIT_MSGQUEUE,
        "nice" => libc::RLIMIT_NICE,
        "nofile" => libc::RLIMIT_NOFILE,
        "nproc" => libc::RLIMIT_NPROC,
        "rss" => libc::RLIMIT_RSS,
        "rtprio" => libc::RLIMIT_RTPRIO,
        "rttime" => libc::RLIMIT_RTTIME,
        "sigpending" => libc::RLIMIT_SIGPENDING,
        "stack" => libc::RLIMIT_STACK,
        "as" => libc::RLIMIT_AS,
        _ => return Err(RuntimeError::InvalidSpec(format!("unknown ulimit '{name}'"))),
    };
    Ok(r as c_int)
}

struct Common {
    argv: Vec<CString>,
    envp: Vec<CString>,
    candidates: Vec<CString>,
    cwd: CString,
    user: User,
}

fn common(args: &[String], env: &[String], cwd: &str, user: &User) -> Result<Common, RuntimeError> {
    let Some(arg0) = args.first() else {
        return Err(RuntimeError::InvalidSpec(
            "no command given and the image has no default command".into(),
        ));
    };
    let cwd = if cwd.is_empty() { "/" } else { cwd };
    components(cwd, "working directory")?;
    Ok(Common {
        argv: args
            .iter()
            .map(|a| cstr(a, "an argument"))
            .collect::<Result<_, _>>()?,
        envp: env
            .iter()
            .map(|e| cstr(e, "an environment variable"))
            .collect::<Result<_, _>>()?,
        candidates: candidates(arg0, env)?,
        cwd: cstr(cwd, "the working directory")?,
        user: user.clone(),
    })
}

fn ptrs(v: &[CString]) -> Vec<*const std::ffi::c_char> {
    v.iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// The child's stdio: fds for 0..2, whether they are a pty, and the console socket.
type ChildStdio = (Option<[RawFd; 3]>, bool, Option<RawFd>);

fn stdio_fds(stdio: Stdio, held: &mut Held) -> Result<ChildStdio, RuntimeError> {
    Ok(match stdio {
        Stdio::Inherit => (None, false, None),
        Stdio::ContainerPty(sock) => (None, false, Some(held.keep(sock))),
        Stdio::Fds {
            stdin,
            stdout,
            stderr,
        } => {
            let i = match stdin {
                Some(fd) => held.keep(fd),
                None => held.open(Path::new("/dev/null"), libc::O_RDONLY | libc::O_CLOEXEC, "stdin")?,
            };
            (Some([i, held.keep(stdout), held.keep(stderr)]), false, None)
        }
        Stdio::Pty(slave) => {
            let fd = held.keep(slave);
            (Some([fd, fd, fd]), true, None)
        }
    })
}

fn prepared(c: Common, held: &mut Held, stdio: Stdio) -> Result<Prepared, RuntimeError> {
    let (stdio, pty, console) = stdio_fds(stdio, held)?;
    let mut groups = c.user.additional_gids.clone();
    groups.dedup();
    Ok(Prepared {
        argv_ptrs: ptrs(&c.argv),
        argv: c.argv,
        envp_ptrs: ptrs(&c.envp),
        envp: c.envp,
        candidates: c.candidates,
        rootfs: None,
        steps: Vec::new(),
        hostname: None,
        netns_fd: None,
        utsns_fd: None,
        ipcns_fd: None,
        cgroup_fds: Vec::new(),
        unshare_cgroupns: false,
        lo_up: false,
        ns_fds: Vec::new(),
        root_fd: None,
        rlimits: Vec::new(),
        uid: c.user.uid,
        gid: c.user.gid,
        groups,
        set_groups: !berth_host::privilege::setgroups_denied(),
        cwd: c.cwd,
        caps: caps::default_mask(),
        last_cap: caps::last_cap(),
        filters: seccomp::default_filters()?,
        stdio,
        pty,
        console,
    })
}

fn container_steps(spec: &ContainerSpec, held: &mut Held) -> Result<Plan, RuntimeError> {
    let mut p = Plan::default();
    let nosuid_nodev_noexec = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    p.push(Step::Mkdir(cstr("/proc", "")?), "creating /proc".into());
    p.fresh("proc", "/proc", ATTR_NOSUID_NODEV_NOEXEC)?;
    p.push(Step::Mkdir(cstr("/dev", "")?), "creating /dev".into());
    p.mount(
        Some("tmpfs"),
        "/dev",
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    for dev in DEVICES {
        let host = format!("/dev/{dev}");
        let fd = held.clone_tree(Path::new(&host), "device")?;
        p.push(Step::Touch(cstr(&host, "")?), format!("creating {host}"));
        p.push(
            Step::Attach {
                fd,
                target: cstr(&host, "")?,
            },
            format!("mounting {host}"),
        );
    }
    p.push(Step::Mkdir(cstr("/dev/pts", "")?), "creating /dev/pts".into());
    p.mount(
        Some("devpts"),
        "/dev/pts",
        Some("devpts"),
        libc::MS_NOSUID | libc::MS_NOEXEC,
        // The tty group, unless a rootless engine's namespace maps one id only.
        Some(if berth_host::privilege::gid_mapped(5) {
            "newinstance,ptmxmode=0666,mode=0620,gid=5"
        } else {
            "newinstance,ptmxmode=0666,mode=0620"
        }),
    )?;
    p.push(Step::Mkdir(cstr("/dev/shm", "")?), "creating /dev/shm".into());
    let shm = match spec.shm_size {
        Some(bytes) => format!("mode=1777,size={bytes}"),
        None => "mode=1777,size=65536k".to_string(),
    };
    p.mount(
        Some("shm"),
        "/dev/shm",
        Some("tmpfs"),
        nosuid_nodev_noexec,
        Some(&shm),
    )?;
    p.push(
        Step::Mkdir(cstr("/dev/mqueue", "")?),
        "creating /dev/mqueue".into(),
    );
    p.mount(
        Some("mqueue"),
        "/dev/mqueue",
        Some("mqueue"),
        nosuid_nodev_noexec,
        None,
    )?;
    for (target, link) in [
        ("pts/ptmx", "/dev/ptmx"),
        ("/proc/self/fd", "/dev/fd"),
        ("/proc/self/fd/0", "/dev/stdin"),
        ("/proc/self/fd/1", "/dev/stdout"),
        ("/proc/self/fd/2", "/dev/stderr"),
        ("/proc/kcore", "/dev/core"),
    ] {
        p.push(
            Step::Symlink {
                target: cstr(target, "")?,
                link: cstr(link, "")?,
            },
            format!("linking {link}"),
        );
    }
    p.push(Step::Mkdir(cstr("/sys", "")?), "creating /sys".into());
    p.fresh("sysfs", "/sys", ATTR_NOSUID_NODEV_NOEXEC | ATTR_RDONLY)?;
    cgroup_steps(&spec.cgroup_mounts, &mut p)?;

    for m in &spec.mounts {
        let parts = components(&m.destination, "mount destination")?;
        let dest = join(&parts);
        if parts.is_empty() {
            return Err(RuntimeError::InvalidSpec(
                "a mount cannot replace the container's root directory".into(),
            ));
        }
        match m.kind {
            MountKind::Bind => {
                let meta = std::fs::metadata(&m.source).map_err(|e| {
                    RuntimeError::io(
                        format!("bind mount source {} is not usable", m.source.display()),
                        e,
                    )
                })?;
                if meta.is_dir() {
                    mkdir_p(&parts, &mut p)?;
                } else {
                    mkdir_p(&parts[..parts.len() - 1], &mut p)?;
                    p.push(Step::Touch(cstr(&dest, "")?), format!("creating {dest}"));
                }
                let fd = held.clone_tree(&m.source, "bind source")?;
                p.push(
                    Step::Attach {
                        fd,
                        target: cstr(&dest, "")?,
                    },
                    format!("mounting {} at {dest}", m.source.display()),
                );
                if m.readonly {
                    p.mount(
                        None,
                        &dest,
                        None,
                        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                        None,
                    )?;
                }
            }
            MountKind::Tmpfs => {
                mkdir_p(&parts, &mut p)?;
                let (flags, data) = tmpfs_flags(&m.source.to_string_lossy(), m.readonly);
                p.mount(Some("tmpfs"), &dest, Some("tmpfs"), flags, Some(&data))?;
            }
        }
    }
    // Propagation asked for a bind (`:rslave`, …), once everything is mounted.
    for (dest, mode) in &spec.propagation {
        p.mount(None, dest, None, mode.flags(), None)?;
    }
    // `--sysctl`s, while /proc/sys is still writable.
    for (key, value) in &spec.sysctls {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        p.push(
            Step::Write {
                path: cstr(&path, "sysctl")?,
                value: cstr(value, "sysctl value")?,
            },
            format!("setting the sysctl {key}={value}"),
        );
    }
    let system_paths: (&[&str], &[&str]) = if spec.systempaths_unconfined {
        (&[], &[])
    } else {
        (MASKED, READONLY)
    };
    for m in system_paths.0 {
        p.push(Step::Mask(cstr(m, "")?), format!("masking {m}"));
    }
    for r in system_paths.1 {
        p.push(Step::ReadOnly(cstr(r, "")?), format!("making {r} read-only"));
    }
    let cwd = if spec.cwd.is_empty() { "/" } else { &spec.cwd };
    mkdir_p(&components(cwd, "working directory")?, &mut p)?;
    if spec.readonly_rootfs {
        p.push(Step::RootReadOnly, "making the root file system read-only".into());
    }
    Ok(p)
}

/// `/sys/fs/cgroup`, read-only: cgroup2 itself for pure v2, otherwise a tmpfs holding
/// one directory per hierarchy (what docker shows on v1 hosts).
fn cgroup_steps(mounts: &[crate::CgroupFsMount], p: &mut Plan) -> Result<(), RuntimeError> {
    const ROOT: &str = "/sys/fs/cgroup";
    let ro = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | libc::MS_RDONLY;
    let data = |m: &crate::CgroupFsMount| (!m.options.is_empty()).then(|| m.options.clone());
    match mounts {
        [] => Ok(()),
        [only] if only.target.is_empty() => p.mount(
            Some("cgroup"),
            ROOT,
            Some(&only.fstype),
            ro,
            data(only).as_deref(),
        ),
        _ => {
            let rw = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
            p.mount(Some("tmpfs"), ROOT, Some("tmpfs"), rw, Some("mode=755"))?;
            for m in mounts {
                if m.target.is_empty() || m.target.contains('/') || m.target.starts_with('.') {
                    return Err(RuntimeError::InvalidSpec(format!(
                        "cgroup mount target {:?} must be one directory name",
                        m.target
                    )));
                }
                let target = format!("{ROOT}/{}", m.target);
                p.push(Step::Mkdir(cstr(&target, "")?), format!("creating {target}"));
                p.mount(Some("cgroup"), &target, Some(&m.fstype), ro, data(m).as_deref())?;
            }
            p.mount(None, ROOT, None, libc::MS_REMOUNT | ro, Some("mode=755"))
        }
    }
}

fn raw_clone(flags: c_ulong) -> Result<libc::pid_t, RuntimeError> {
    // SAFETY: fork-like clone (no CLONE_VM, no new stack); the child only
    // runs code from `child`, which sticks to raw syscalls.
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    if pid < 0 {
        let e = std::io::Error::last_os_error();
        return Err(RuntimeError::Setup {
            step: "creating the container process".into(),
            source: e,
        });
    }
    Ok(pid as libc::pid_t)
}

fn pipe() -> Result<(File, OwnedFd), RuntimeError> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    if rc != 0 {
        return Err(RuntimeError::io(
            "cannot create a pipe",
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: both fds are fresh and owned by us.
    unsafe { Ok((File::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))) }
}

fn read_msgs(mut r: File) -> Vec<Msg> {
    let mut out = Vec::new();
    let size = std::mem::size_of::<Msg>();
    let mut buf = vec![0u8; size];
    loop {
        match r.read_exact(&mut buf) {
            Ok(()) => {
                let mut m = Msg::default();
                // SAFETY: Msg is repr(C) plain integers; buf has its size.
                unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), &mut m as *mut Msg as *mut u8, size) };
                out.push(m);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    out
}

fn reap(pid: libc::pid_t) {
    let _ = berth_host::process::wait_child(pid);
}

fn to_error(m: &Msg, args0: &str, cwd: &str, what: &[String], extra: &[String]) -> RuntimeError {
    let source = std::io::Error::from_raw_os_error(m.value);
    let idx = m.index.max(0) as usize;
    let step = |s: &str| RuntimeError::Setup {
        step: s.to_string(),
        source: std::io::Error::from_raw_os_error(m.value),
    };
    match Stage::from_u32(m.stage) {
        Some(Stage::ExecNotFound) => RuntimeError::ExecutableNotFound(args0.to_string()),
        Some(Stage::ExecDenied) => RuntimeError::ExecutablePermission(args0.to_string()),
        Some(Stage::Exec) => RuntimeError::Exec {
            command: args0.to_string(),
            source,
        },
        Some(Stage::Cwd) => RuntimeError::Cwd {
            cwd: cwd.to_string(),
            source,
        },
        Some(Stage::Step) => step(what.get(idx).map_or("mounting", |s| s.as_str())),
        Some(Stage::Cgroup) => step(&format!(
            "joining cgroup {}",
            extra.get(idx).map_or("", |s| s.as_str())
        )),
        Some(Stage::Setns) => step(&format!(
            "joining the container's {} namespace",
            extra.get(idx).map_or("", |s| s.as_str())
        )),
        Some(s) => step(match s {
            Stage::Stdio => "setting up standard streams",
            Stage::NetNs => "joining the network namespace",
            Stage::CgroupNs => "creating the cgroup namespace",
            Stage::Propagation => "making mounts private",
            Stage::BindRoot => "binding the root filesystem",
            Stage::Pivot => "switching to the root filesystem",
            Stage::Hostname => "setting the hostname",
            Stage::Loopback => "bringing up the loopback interface",
            Stage::Rlimit => "setting ulimits",
            Stage::Bounding => "dropping capabilities",
            Stage::Groups => "setting supplementary groups",
            Stage::Gid => "switching group",
            Stage::Uid => "switching user",
            Stage::Capset => "setting capabilities",
            Stage::NoNewPrivs => "setting no_new_privs",
            Stage::CloseFds => "closing inherited files",
            Stage::Seccomp => "installing the seccomp filter",
            Stage::Chroot => "entering the container's root",
            Stage::Fork => "forking into the container",
            Stage::Console => "creating the container's terminal",
            _ => "starting",
        }),
        None => step("starting"),
    }
}

fn cgroup_fds(paths: &[std::path::PathBuf], held: &mut Held) -> Result<Vec<RawFd>, RuntimeError> {
    paths
        .iter()
        .map(|p| held.open(p, libc::O_WRONLY | libc::O_CLOEXEC, "cgroup file"))
        .collect()
}

/// Spawns the container's init process; returns its host pid once it has
/// exec'd the command (or the reason it could not).
pub fn spawn(spec: &ContainerSpec, stdio: Stdio) -> Result<Pid, RuntimeError> {
    let meta = std::fs::metadata(&spec.rootfs).map_err(|e| {
        RuntimeError::io(
            format!("root filesystem {} is not usable", spec.rootfs.display()),
            e,
        )
    })?;
    if !meta.is_dir() {
        return Err(RuntimeError::InvalidSpec(format!(
            "root filesystem {} is not a directory",
            spec.rootfs.display()
        )));
    }
    let rootfs = std::fs::canonicalize(&spec.rootfs)
        .map_err(|e| RuntimeError::io(format!("cannot resolve {}", spec.rootfs.display()), e))?;
    let mut held = Held::default();
    let common = common(&spec.args, &spec.env, &spec.cwd, &spec.user)?;
    let plan = container_steps(spec, &mut held)?;
    let mut p = prepared(common, &mut held, stdio)?;
    if let Some(caps) = spec.caps {
        p.caps = caps;
    }
    if spec.seccomp_unconfined {
        p.filters.clear();
    }
    p.rootfs = Some(cstr(rootfs.as_os_str().as_bytes(), "root filesystem path")?);
    p.steps = plan.steps;
    p.hostname = if spec.hostname.is_empty() {
        None
    } else {
        Some(cstr(&spec.hostname, "hostname")?)
    };
    p.cgroup_fds = cgroup_fds(&spec.cgroup_procs, &mut held)?;
    p.unshare_cgroupns = true;
    let mut flags = libc::CLONE_NEWNS;
    match &spec.ipcns {
        Share::New => flags |= libc::CLONE_NEWIPC,
        Share::Host => {}
        Share::Path(path) => {
            p.ipcns_fd = Some(held.open(path, libc::O_RDONLY | libc::O_CLOEXEC, "IPC namespace")?);
        }
    }
    // Another container's PID namespace: this thread's next child is born in it (a setns on
    // a PID namespace moves where children go, not the caller), and the thread goes back
    // to its own right after the clone: until then it could start no thread.
    let mut pid_join: Option<(RawFd, RawFd)> = None;
    match &spec.pidns {
        Share::New => flags |= libc::CLONE_NEWPID,
        Share::Host => {}
        Share::Path(path) => {
            let target = held.open(path, libc::O_RDONLY | libc::O_CLOEXEC, "PID namespace")?;
            let own = held.open(
                Path::new("/proc/thread-self/ns/pid"),
                libc::O_RDONLY | libc::O_CLOEXEC,
                "this process's PID namespace",
            )?;
            pid_join = Some((target, own));
        }
    }
    match &spec.utsns {
        Share::New => flags |= libc::CLONE_NEWUTS,
        // The host's or another's hostname is theirs: never set it.
        Share::Host => p.hostname = None,
        Share::Path(path) => {
            p.utsns_fd = Some(held.open(path, libc::O_RDONLY | libc::O_CLOEXEC, "UTS namespace")?);
            p.hostname = None;
        }
    }
    match &spec.netns {
        NetNs::New => {
            flags |= libc::CLONE_NEWNET;
            p.lo_up = true;
        }
        NetNs::Host => {}
        NetNs::Path(path) => {
            p.netns_fd = Some(held.open(path, libc::O_RDONLY | libc::O_CLOEXEC, "network namespace")?);
        }
    }
    for (name, soft, hard) in &spec.rlimits {
        p.rlimits.push((
            rlimit_resource(name)?,
            libc::rlimit {
                rlim_cur: *soft,
                rlim_max: *hard,
            },
        ));
    }
    let (reader, writer) = pipe()?;
    if let Some((target, _)) = pid_join {
        // SAFETY: setns on a namespace fd opened above.
        if unsafe { libc::setns(target, libc::CLONE_NEWPID) } != 0 {
            return Err(RuntimeError::io(
                "cannot join the other container's PID namespace (is it still running?)",
                std::io::Error::last_os_error(),
            ));
        }
    }
    let cloned = raw_clone(flags as c_ulong | libc::SIGCHLD as c_ulong);
    if let Ok(0) = cloned {
        child::run_init(&p, writer.as_raw_fd());
    }
    if let Some((_, own)) = pid_join {
        // SAFETY: setns back to this thread's own PID namespace (its active one).
        unsafe { libc::setns(own, libc::CLONE_NEWPID) };
    }
    let pid = cloned?;
    drop(writer);
    let msgs = read_msgs(reader);
    drop(held);
    if let Some(m) = msgs.iter().find(|m| m.kind == MSG_ERROR) {
        reap(pid);
        let cg: Vec<String> = spec
            .cgroup_procs
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        return Err(to_error(m, &spec.args[0], &spec.cwd, &plan.what, &cg));
    }
    Ok(pid)
}

/// Runs a command inside the running container whose init is `target_pid`.
/// The returned process is a child of the caller (wait for it with `berth_host::process::wait_child`).
pub fn exec(target_pid: i32, spec: &ExecSpec, stdio: Stdio) -> Result<Pid, RuntimeError> {
    let proc_dir = format!("/proc/{target_pid}");
    if !Path::new(&proc_dir).exists() {
        return Err(RuntimeError::NotRunning(target_pid));
    }
    let mut held = Held::default();
    let common = common(&spec.args, &spec.env, &spec.cwd, &spec.user)?;
    let mut p = prepared(common, &mut held, stdio)?;
    if let Some(caps) = spec.caps {
        p.caps = caps;
    }
    if spec.seccomp_unconfined {
        p.filters.clear();
    }
    p.cgroup_fds = cgroup_fds(&spec.cgroup_procs, &mut held)?;
    // cgroup first (its root is resolved against our cgroup), mnt last.
    let names = ["cgroup", "ipc", "uts", "net", "pid", "mnt"];
    for ns in names {
        let path = format!("{proc_dir}/ns/{ns}");
        let fd = held
            .open(Path::new(&path), libc::O_RDONLY | libc::O_CLOEXEC, "namespace")
            .map_err(|_| RuntimeError::NotRunning(target_pid))?;
        p.ns_fds.push(fd);
    }
    p.root_fd = Some(
        held.open(
            Path::new(&format!("{proc_dir}/root")),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            "container root",
        )
        .map_err(|_| RuntimeError::NotRunning(target_pid))?,
    );
    let (reader, writer) = pipe()?;
    let pid = raw_clone(libc::SIGCHLD as c_ulong)?;
    if pid == 0 {
        child::run_exec(&p, writer.as_raw_fd());
    }
    drop(writer);
    let msgs = read_msgs(reader);
    drop(held);
    reap(pid);
    let exec_pid = msgs.iter().find(|m| m.kind == MSG_PID).map(|m| m.value);
    if let Some(m) = msgs.iter().find(|m| m.kind == MSG_ERROR) {
        if let Some(ep) = exec_pid {
            reap(ep);
        }
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        return Err(to_error(m, &spec.args[0], &spec.cwd, &[], &names));
    }
    exec_pid.ok_or_else(|| RuntimeError::Setup {
        step: "forking into the container".into(),
        source: std::io::Error::from_raw_os_error(libc::ECHILD),
    })
}

/// Receives the master of a container's pty sent by its init (`Stdio::ContainerPty`);
/// call after `spawn` returned, on the other end of the socket.
pub fn recv_console(sock: &OwnedFd) -> Result<OwnedFd, RuntimeError> {
    let io = |e| RuntimeError::io("cannot receive the container's terminal", e);
    // SAFETY: recvmsg into stack buffers; the received fd is fresh and ours.
    unsafe {
        let mut byte = [0u8; 1];
        let mut control = [0u64; 4];
        let mut iov = child::byte_iovec(&mut byte);
        let mut msg = child::fd_msghdr(&mut iov, &mut control);
        let n = libc::recvmsg(
            sock.as_raw_fd(),
            &mut msg,
            libc::MSG_CMSG_CLOEXEC | libc::MSG_DONTWAIT,
        );
        if n < 0 {
            return Err(io(std::io::Error::last_os_error()));
        }
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null() || (*cmsg).cmsg_type != libc::SCM_RIGHTS {
            return Err(io(std::io::Error::other("no descriptor in the message")));
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const c_int);
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// A tmpfs mount's flags and data from docker's options (`size=64m,mode=1777,noexec,ro`):
/// nosuid and nodev unless asked otherwise, mode 1777 unless given.
fn tmpfs_flags(options: &str, readonly: bool) -> (libc::c_ulong, String) {
    let mut flags = libc::MS_NOSUID | libc::MS_NODEV;
    if readonly {
        flags |= libc::MS_RDONLY;
    }
    let mut data = Vec::new();
    for opt in options.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        match opt {
            "ro" => flags |= libc::MS_RDONLY,
            "rw" => flags &= !libc::MS_RDONLY,
            "noexec" => flags |= libc::MS_NOEXEC,
            "exec" => flags &= !libc::MS_NOEXEC,
            "nosuid" => flags |= libc::MS_NOSUID,
            "suid" => flags &= !libc::MS_NOSUID,
            "nodev" => flags |= libc::MS_NODEV,
            "dev" => flags &= !libc::MS_NODEV,
            kv => data.push(kv.to_string()),
        }
    }
    if !data.iter().any(|d| d.starts_with("mode=")) {
        data.push("mode=1777".into());
    }
    (flags, data.join(","))
}
