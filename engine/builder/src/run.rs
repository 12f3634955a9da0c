//! RUN steps: the command runs in a container made directly with the runtime (same
//! namespaces, capabilities, seccomp and masked paths as `berth run`), its output
//! streamed, and the overlay's upper dir kept as the step's layer.

use std::fs;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use berth_net::NetworkManager;
use berth_runtime::{ContainerSpec, MountKind, MountSpec, NetNs, Stdio};

use crate::scratch::Scratch;
use crate::{BuildError, BuildEvent};

/// Files bind-mounted into a RUN container that must not end up in its layer.
const ETC_FILES: [&str; 3] = ["hosts", "hostname", "resolv.conf"];

pub struct RunSpec<'a> {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: String,
    /// `default`/`bridge`, `none` or `host`.
    pub network: &'a str,
    pub lowers: Vec<PathBuf>,
    /// A heredoc script `(name, content)` to mount executable at `/dev/pipes/<name>`.
    pub script: Option<(String, String)>,
    /// `(name, address)` lines added to /etc/hosts (`--add-host`).
    pub extra_hosts: &'a [(String, String)],
    /// Bytes of /dev/shm, if not the runtime's default.
    pub shm_size: Option<u64>,
}

fn pipe() -> Result<(OwnedFd, OwnedFd), BuildError> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| BuildError::io("cannot create a pipe")(e.into()))
}

fn wait(pid: i32) -> Result<i32, BuildError> {
    berth_host::process::wait_child(pid)
        .map(berth_host::process::ChildExit::code)
        .map_err(BuildError::io("cannot wait for the RUN command"))
}

/// Runs the command in `scratch` (mounted over `spec.lowers`). Returns the exit code and
/// the last lines of output. The scratch area is unmounted and detached afterwards, so
/// its upper dir is ready to become a layer.
pub fn run(
    scratch: &mut Scratch,
    spec: &RunSpec<'_>,
    net: Option<&NetworkManager>,
    running: &std::sync::atomic::AtomicI32,
    events: &mut dyn FnMut(BuildEvent),
) -> Result<(i32, Vec<String>), BuildError> {
    scratch.mount(&spec.lowers)?;
    let rootfs = scratch.rootfs();
    // Which /etc files the image has, to tell stubs made for the bind mounts from content.
    let had: Vec<bool> = ETC_FILES
        .iter()
        .map(|f| fs::symlink_metadata(rootfs.join("etc").join(f)).is_ok())
        .collect();
    let had_dirs: Vec<bool> = ["proc", "sys", "dev", "etc"]
        .iter()
        .map(|d| fs::symlink_metadata(rootfs.join(d)).is_ok())
        .collect();
    let hostname = scratch.id[..12].to_string();
    let netns = match spec.network {
        "host" => NetNs::Host,
        "none" => NetNs::New,
        _ => match net {
            Some(net) => {
                let _ = net.prune_stale();
                let ep = net.attach(&scratch.id, "bridge", &[])?;
                scratch.attached(net.clone());
                NetNs::Path(ep.netns.clone())
            }
            None => NetNs::New,
        },
    };
    let etc = scratch.dir.join("etc");
    let mut hosts =
        format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n");
    for (name, ip) in spec.extra_hosts {
        hosts.push_str(&format!("{ip}\t{name}\n"));
    }
    let resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut mounts = Vec::new();
    if let Some(bytes) = spec.shm_size {
        // Over the runtime's own /dev/shm; a tmpfs's source is its options.
        mounts.push(MountSpec {
            source: PathBuf::from(format!("size={bytes},noexec")),
            destination: "/dev/shm".into(),
            kind: MountKind::Tmpfs,
            readonly: false,
        });
    }
    for (name, content) in [
        ("hosts", hosts),
        ("hostname", format!("{hostname}\n")),
        ("resolv.conf", resolv),
    ] {
        fs::write(etc.join(name), content)
            .map_err(BuildError::io("cannot write the RUN container's /etc files"))?;
        if spec.network == "host" && name != "hostname" {
            mounts.push(MountSpec {
                source: PathBuf::from(format!("/etc/{name}")),
                destination: format!("/etc/{name}"),
                kind: MountKind::Bind,
                readonly: true,
            });
            continue;
        }
        mounts.push(MountSpec {
            source: etc.join(name),
            destination: format!("/etc/{name}"),
            kind: MountKind::Bind,
            readonly: false,
        });
    }
    if let Some((name, content)) = &spec.script {
        let host = scratch.dir.join("script");
        fs::write(&host, content).map_err(BuildError::io("cannot write the RUN heredoc script"))?;
        fs::set_permissions(&host, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .map_err(BuildError::io("cannot write the RUN heredoc script"))?;
        mounts.push(MountSpec {
            source: host,
            destination: format!("/dev/pipes/{name}"),
            kind: MountKind::Bind,
            readonly: true,
        });
    }
    let user = berth_runtime::resolve_user(&rootfs, &spec.user)?;
    let cspec = ContainerSpec {
        id: scratch.id.clone(),
        rootfs: rootfs.clone(),
        args: spec.args.clone(),
        env: spec.env.clone(),
        cwd: if spec.cwd.is_empty() {
            "/".into()
        } else {
            spec.cwd.clone()
        },
        user,
        hostname,
        mounts,
        netns,
        pidns: Default::default(),
        utsns: Default::default(),
        ipcns: Default::default(),
        caps: None,
        shm_size: None,
        readonly_rootfs: false,
        sysctls: Vec::new(),
        propagation: Vec::new(),
        seccomp_unconfined: false,
        systempaths_unconfined: false,
        cgroup_procs: Vec::new(),
        tty: false,
        stdin: false,
        rlimits: Vec::new(),
        cgroup_mounts: Vec::new(),
    };
    let (reader, writer) = pipe()?;
    let writer2 = writer
        .try_clone()
        .map_err(BuildError::io("cannot duplicate a pipe"))?;
    let pid = berth_runtime::spawn(
        &cspec,
        Stdio::Fds {
            stdin: None,
            stdout: writer,
            stderr: writer2,
        },
    )?;
    // Recorded so a cancel can kill it, and a later sweep too if this process dies.
    let started = berth_runtime::logs::format_time(time::OffsetDateTime::now_utc());
    let _ = fs::write(scratch.dir.join("pid"), format!("{pid} {started}"));
    running.store(pid, std::sync::atomic::Ordering::SeqCst);
    let mut f = fs::File::from(reader);
    let mut buf = vec![0u8; 16 * 1024];
    let mut tail: Vec<u8> = Vec::new();
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                events(BuildEvent::Output(buf[..n].to_vec()));
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > 64 * 1024 {
                    tail.drain(..tail.len() - 16 * 1024);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let code = wait(pid);
    running.store(0, std::sync::atomic::Ordering::SeqCst);
    let code = code?;
    let text = String::from_utf8_lossy(&tail);
    let lines: Vec<&str> = text.lines().collect();
    let last = lines[lines.len().saturating_sub(10)..]
        .iter()
        .map(|s| s.to_string())
        .collect();

    // Take out what only the runtime's mount points put in the upper dir.
    let upper = scratch.upper();
    for (name, had) in ETC_FILES.iter().zip(had) {
        let p = upper.join("etc").join(name);
        if let Ok(m) = fs::symlink_metadata(&p) {
            // A stub: empty and new, or copied up unchanged by opening it for the mount.
            let lower_same = had && m.is_file() && same_as_lower(&spec.lowers, &format!("etc/{name}"), &p);
            if (!had && m.is_file() && m.len() == 0) || lower_same {
                let _ = fs::remove_file(&p);
            }
        }
    }
    scratch.unmount()?;
    scratch.detach()?;
    for (d, had) in ["proc", "sys", "dev", "etc"].iter().zip(had_dirs) {
        let p = upper.join(d);
        if !had && fs::read_dir(&p).is_ok_and(|mut r| r.next().is_none()) {
            let _ = fs::remove_dir(&p);
        } else if had && *d == "etc" && fs::read_dir(&p).is_ok_and(|mut r| r.next().is_none()) && !opaque(&p)
        {
            // Copied up only because a stub inside was; the lower's /etc is unchanged.
            let _ = fs::remove_dir(&p);
        }
    }
    for d in ["proc", "sys", "dev"] {
        let p = upper.join(d);
        if fs::read_dir(&p).is_ok_and(|mut r| r.next().is_none()) && !opaque(&p) {
            let _ = fs::remove_dir(&p);
        }
    }
    Ok((code, last))
}

/// Marked opaque by whichever overlay ran the step (the host's, a user's, fuse-overlayfs).
fn opaque(p: &std::path::Path) -> bool {
    crate::layer::is_opaque(p)
}

/// Whether the upper copy at `upper_file` has the same bytes as the topmost lower's `rel`.
fn same_as_lower(lowers: &[PathBuf], rel: &str, upper_file: &std::path::Path) -> bool {
    let Some(lower) = lowers
        .iter()
        .rev()
        .map(|l| l.join(rel))
        .find(|p| p.symlink_metadata().is_ok())
    else {
        return false;
    };
    match (fs::read(lower), fs::read(upper_file)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
