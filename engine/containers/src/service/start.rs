//! `start`: everything a run needs, acquired in order — cgroup, overlay rootfs, volumes,
//! network endpoints, /etc files, bound ports — and then the shim. A start that fails
//! part-way is undone by `cleanup`, like a run that ended.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use berth_cgroups::Cgroup;
use berth_runtime::shim::ShimConfig;
use berth_runtime::{ContainerSpec, MountKind as RtMountKind, MountSpec, NetNs};
use serde::{Deserialize, Serialize};

use super::networks::{endpoint_info, endpoint_names};
use super::{fail_point, ContainerService};
use crate::record::*;
use crate::ContainerError;

/// What the supervisor needs to run the port proxies (`shim/ports.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShimPorts {
    pub container_ip: Option<String>,
    pub ports: Vec<berth_units::PortSpec>,
}

impl ContainerService {
    pub fn start(&self, name_or_id: &str) -> Result<ContainerRecord, ContainerError> {
        let mut rec = self.find(name_or_id)?;
        match self.status(&rec) {
            Status::Running { .. } => return Ok(rec),
            Status::Paused { .. } => return Err(ContainerError::Paused(rec.name.clone())),
            _ => {}
        }
        // Release whatever the previous run left, then start from a clean slate. A release
        // that failed before is tried again: it may work now, and then the container is
        // no longer dead.
        //
        // Under the container list's lock, until the start is marked: the previous run's
        // supervisor releases that run under it too, and without the lock its release could
        // end after this one had begun, writing `cleaned` over the new run — whose rootfs the
        // next release then skipped (seen as EBUSY from a `compose down` after a restart).
        let p = self.paths(&rec.id);
        {
            let _lock = self.lock()?;
            let released = self.cleanup(&rec);
            if let Status::Dead { reason } = self.status(&rec) {
                return Err(ContainerError::Dead {
                    name: rec.name.clone(),
                    reason,
                });
            }
            released?;
            self.begin_start(&rec.id);
            for f in ["state.json", "exit.json", "start-error"] {
                let _ = std::fs::remove_file(p.shim().join(f));
            }
            let _ = std::fs::remove_file(p.dir.join("oom"));
            let _ = std::fs::remove_file(p.cleaned());
        }
        match self.start_inner(&mut rec) {
            Ok(()) => {
                // A start undoes a user's stop: restart policies apply again.
                self.mark_stopped(&rec, false);
                self.end_start(&rec, true);
                Ok(rec)
            }
            Err(e) => {
                self.end_start(&rec, false);
                if let Err(c) = self.cleanup(&rec) {
                    // Recorded: the container is listed as dead until `rm` removes it.
                    tracing::warn!(container = %rec.name, "a failed start was not fully undone: {c}");
                }
                self.release_host_ports(&rec.id);
                // As dockerd does: a `--rm` container that cannot start is removed, so a
                // client waiting for its removal (docker run --rm) is not left waiting.
                if rec.host.auto_remove {
                    let _ = self.remove(&rec.id, true, true);
                }
                Err(e)
            }
        }
    }

    fn start_inner(&self, rec: &mut ContainerRecord) -> Result<(), ContainerError> {
        // Limits. The groups are made first: the warm-up below holds the kernel's cgroup
        // mutex while it waits out a grace period, which would stall a mkdir.
        let cgroup = Cgroup::create(&rec.id, &super::create::cgroup_limits(&rec.host.limits()))?;
        fail_point("cgroup")?;
        // The container's init joins its groups at the end of this; pay the kernel's grace
        // period for that now, beside the network set-up (see berth_cgroups::Warmup).
        let _warm = berth_cgroups::Warmup::start();
        self.mount_rootfs(rec)?;
        fail_point("rootfs")?;
        let mut mounts = self.volume_mounts(rec)?;
        fail_point("volumes")?;
        let netns = self.join_networks(rec)?;
        fail_point("network")?;
        mounts.extend(self.write_etc_files(rec)?);
        // Containers already on these networks learn the new name (docker's embedded DNS
        // would answer it; here their /etc/hosts is rewritten in place).
        for ep in &rec.endpoints {
            if ep.network != berth_net::DEFAULT_NETWORK {
                self.refresh_peer_hosts(&ep.network, &rec.id);
            }
        }
        let extra_fds = self.bind_ports(rec)?;
        fail_point("ports")?;
        self.watch_binds(rec);

        let p = self.paths(&rec.id);
        let security = crate::record::security_options(&rec.host.security_opt)?;
        let mut user = berth_runtime::resolve_user(&p.rootfs(), &rec.config.user)?;
        add_groups(&mut user, &p.rootfs(), &rec.config.group_add)?;
        let mut args = rec.config.entrypoint.clone();
        args.extend(rec.config.cmd.iter().cloned());
        if rec.host.init {
            mounts.push(MountSpec {
                source: super::create::init_binary()?,
                destination: super::create::INIT_PATH.into(),
                kind: RtMountKind::Bind,
                readonly: true,
            });
            let mut with_init = vec![super::create::INIT_PATH.to_string(), "--".into()];
            with_init.append(&mut args);
            args = with_init;
        }
        let pidns = match rec.host.pid_mode.as_str() {
            "" => berth_runtime::Share::New,
            "host" => berth_runtime::Share::Host,
            other => {
                let name = other.strip_prefix("container:").unwrap_or(other);
                let (_, pid) = self.running_peer(name, "PID")?;
                berth_runtime::Share::Path(PathBuf::from(format!("/proc/{pid}/ns/pid")))
            }
        };
        let utsns = match rec.host.uts_mode.as_str() {
            "host" => berth_runtime::Share::Host,
            _ => berth_runtime::Share::New,
        };
        // `--ipc host|container:NAME`: that IPC namespace, and its /dev/shm over the
        // container's own (POSIX shared memory lives there, as in docker).
        // A shareable one's /dev/shm is mounted on this side, so a joiner can bind the same.
        let ipcns = match rec.host.ipc_mode.as_str() {
            "host" => {
                mounts.push(shm_bind(PathBuf::from("/dev/shm")));
                berth_runtime::Share::Host
            }
            "shareable" => {
                berth_runtime::rootfs::mount_shm(&p.shm())?;
                mounts.push(shm_bind(p.shm()));
                berth_runtime::Share::New
            }
            other => match other.strip_prefix("container:") {
                Some(name) => {
                    let (peer, pid) = self.running_peer(name, "IPC")?;
                    if peer.host.ipc_mode != "shareable" {
                        return Err(ContainerError::InvalidArgument(format!(
                            "cannot join the IPC namespace of container {}: it is not shareable — run it with --ipc shareable",
                            peer.name
                        )));
                    }
                    mounts.push(shm_bind(self.paths(&peer.id).shm()));
                    berth_runtime::Share::Path(PathBuf::from(format!("/proc/{pid}/ns/ipc")))
                }
                None => berth_runtime::Share::New,
            },
        };
        let spec = ContainerSpec {
            id: rec.id.clone(),
            rootfs: p.rootfs(),
            args,
            env: rec.config.env.clone(),
            cwd: rec.config.working_dir.clone(),
            user,
            hostname: rec.config.hostname.clone(),
            mounts,
            netns,
            pidns,
            utsns,
            ipcns,
            caps: rec.host.caps()?,
            shm_size: rec.host.shm_size,
            readonly_rootfs: rec.host.readonly_rootfs,
            sysctls: rec.host.sysctls.clone().into_iter().collect(),
            propagation: bind_propagation(rec)?,
            seccomp_unconfined: security.seccomp_unconfined,
            systempaths_unconfined: security.systempaths_unconfined,
            cgroup_procs: cgroup.join_files(),
            tty: rec.config.tty,
            stdin: rec.config.open_stdin,
            rlimits: Vec::new(),
            cgroup_mounts: cgroup
                .inner_mounts()
                .into_iter()
                .map(|m| berth_runtime::CgroupFsMount {
                    fstype: m.fstype.to_string(),
                    options: m.options,
                    target: m.target,
                })
                .collect(),
        };
        let shim_cfg = ShimConfig {
            state_dir: p.shim(),
            spec,
            log_path: p.log(),
            log_max_size: rec.host.log_max_size,
            log_max_files: rec.host.log_max_files,
            stdin_open: rec.config.open_stdin,
        };
        self.save(rec)?;
        fail_point("shim")?;
        let args = crate::supervisor::supervisor_args(&self.root, &p.shim());
        berth_runtime::shim::start_shim(&self.shim_exe, &args, &shim_cfg, extra_fds)?;
        Ok(())
    }

    /// The overlay of the image's layers under the container's own upper dir.
    fn mount_rootfs(&self, rec: &ContainerRecord) -> Result<(), ContainerError> {
        let p = self.paths(&rec.id);
        let image = self.images.store().image(&rec.image_id)?.ok_or_else(|| {
            ContainerError::InvalidArgument(format!(
                "the image of container {} ({}) was removed — pull it again or create a new container",
                rec.name, rec.image
            ))
        })?;
        let lowers: Vec<PathBuf> = image
            .layers
            .iter()
            .map(|l| self.images.store().layer_dir(&l.diff_id))
            .collect();
        // A `--rm` run's upper dir goes with it: no sync of the store's file system when it
        // is unmounted.
        let mount = if rec.host.auto_remove {
            berth_runtime::rootfs::mount_overlay_volatile
        } else {
            berth_runtime::rootfs::mount_overlay
        };
        mount(&lowers, &p.upper(), &p.work(), &p.rootfs())?;
        Ok(())
    }

    /// The record's mounts for the runtime. Named volumes are created on first use and
    /// filled from the image once.
    fn volume_mounts(&self, rec: &ContainerRecord) -> Result<Vec<MountSpec>, ContainerError> {
        let p = self.paths(&rec.id);
        let mut mounts = Vec::new();
        for m in &rec.host.mounts {
            let source = match m.kind {
                MountKind::Volume => {
                    let name = m.source.clone();
                    let mut vol = self.volumes.create(&name)?;
                    if !vol.populated {
                        let from = p.rootfs().join(m.destination.trim_start_matches('/'));
                        if from.is_dir() && dir_is_empty(&vol.mountpoint) {
                            copy_tree(&from, &vol.mountpoint).map_err(ContainerError::io(format!(
                                "cannot fill volume {name} from the image"
                            )))?;
                        }
                        vol.populated = true;
                        self.volumes.save(&vol)?;
                    }
                    vol.mountpoint
                }
                MountKind::Bind => PathBuf::from(&m.source),
                // A tmpfs's source is its options (`size=64m,noexec`).
                MountKind::Tmpfs => PathBuf::from(&m.source),
            };
            mounts.push(MountSpec {
                source,
                destination: m.destination.clone(),
                kind: if m.kind == MountKind::Tmpfs {
                    RtMountKind::Tmpfs
                } else {
                    RtMountKind::Bind
                },
                readonly: m.readonly,
            });
        }
        Ok(mounts)
    }

    /// The network namespace: the first network makes it and eth0, the others eth1,
    /// eth2, …; `rec.endpoints` is filled as they are made.
    fn join_networks(&self, rec: &mut ContainerRecord) -> Result<NetNs, ContainerError> {
        Ok(match rec.host.network.as_str() {
            "host" => NetNs::Host,
            "none" => NetNs::New,
            _ => {
                // Addresses of containers whose namespace is gone (a reboot, a deleted
                // store) go back to the pool first.
                let _ = self.net.prune_stale();
                let attachments = rec.attachments();
                rec.endpoints.clear();
                match attachments.split_first() {
                    Some((first, rest)) => {
                        let ep = self.net.attach_at(
                            &rec.id,
                            &first.name,
                            &endpoint_names(rec, first),
                            first.fixed(),
                        )?;
                        rec.endpoints.push(endpoint_info(&ep));
                        for a in rest {
                            let ep =
                                self.net
                                    .connect_at(&rec.id, &a.name, &endpoint_names(rec, a), a.fixed())?;
                            rec.endpoints.push(endpoint_info(&ep));
                        }
                    }
                    // Disconnected from every network before it started: only `lo`, but
                    // a namespace of its own that `network connect` can add to later.
                    None => {
                        self.net.sandbox(&rec.id)?;
                    }
                }
                NetNs::Path(self.net.netns_path(&rec.id))
            }
        })
    }

    /// Writes /etc/hosts, /etc/hostname and /etc/resolv.conf for the container and returns
    /// their bind mounts (with the host network, the host's resolv.conf stays).
    fn write_etc_files(&self, rec: &ContainerRecord) -> Result<Vec<MountSpec>, ContainerError> {
        let p = self.paths(&rec.id);
        let hosts = self.hosts_for(rec);
        let resolv = resolv_conf(
            &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
            &rec.host,
        );
        let mut mounts = Vec::new();
        for (name, content) in [
            ("hosts", hosts),
            ("hostname", format!("{}\n", rec.config.hostname)),
            ("resolv.conf", resolv),
        ] {
            std::fs::write(p.etc(name), content)
                .map_err(ContainerError::io("cannot write the container's /etc files"))?;
            if rec.host.network != "host" || name != "resolv.conf" {
                mounts.push(MountSpec {
                    source: p.etc(name),
                    destination: format!("/etc/{name}"),
                    kind: RtMountKind::Bind,
                    readonly: false,
                });
            }
        }
        Ok(mounts)
    }

    /// Asks the other host (a machine's) to announce its changes to the bind sources.
    fn watch_binds(&self, rec: &ContainerRecord) {
        let Some(h) = &self.host_ports else { return };
        let dirs: Vec<PathBuf> = rec
            .host
            .mounts
            .iter()
            .filter(|m| m.kind == MountKind::Bind)
            .map(|m| PathBuf::from(&m.source))
            .collect();
        if !dirs.is_empty() {
            h.watch(&rec.id, &dirs);
        }
    }

    /// Publishes a running container's ports on the other host again, and watches its
    /// binds again, for a run this process did not start: a restart policy's (started by
    /// the container's shim, which has no link to the host) or one from before this engine
    /// started (a guest engine that was restarted). `HostPorts` takes a repeat as a no-op.
    pub(crate) fn announce_on_host(&self, rec: &ContainerRecord) {
        let Some(h) = &self.host_ports else { return };
        if !rec.bound_ports.is_empty() {
            if let Err(e) = h.publish(&rec.id, &rec.bound_ports) {
                tracing::warn!(container = %rec.name, "ports not published on the host again: {e}");
            }
        }
        self.watch_binds(rec);
    }

    /// Binds the published ports here, so "port in use" is an error before anything runs;
    /// records them (in `rec` and `shim/ports.json`) and returns the listeners for the
    /// shim's proxies.
    fn bind_ports(&self, rec: &mut ContainerRecord) -> Result<Vec<OwnedFd>, ContainerError> {
        let specs = rec.host.publish.clone();
        if !specs.is_empty() && rec.endpoints.is_empty() {
            return Err(ContainerError::InvalidArgument(format!(
                "ports cannot be published with --network {} — use the default bridge network",
                rec.host.network
            )));
        }
        let bound = berth_net::bind_published(&specs)?;
        rec.bound_ports = bound.iter().map(|b| b.spec).collect();
        if let (Some(h), false) = (&self.host_ports, rec.bound_ports.is_empty()) {
            // The sockets bound here close again with `bound` if the host refuses.
            h.publish(&rec.id, &rec.bound_ports)
                .map_err(ContainerError::HostPort)?;
        }
        let ports = ShimPorts {
            container_ip: rec.primary_endpoint().map(|e| e.ip.clone()),
            ports: rec.bound_ports.clone(),
        };
        std::fs::write(
            self.paths(&rec.id).shim().join("ports.json"),
            serde_json::to_vec(&ports).expect("serializable"),
        )
        .map_err(ContainerError::io("cannot write container state"))?;
        Ok(bound.into_iter().map(|b| b.listener.into_fd()).collect())
    }
}

fn dir_is_empty(p: &Path) -> bool {
    std::fs::read_dir(p)
        .map(|mut d| d.next().is_none())
        .unwrap_or(true)
}

/// Copies a tree keeping modes, owners and symlinks (for filling a new volume).
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let md = entry.path().symlink_metadata()?;
        let dest = to.join(entry.file_name());
        if md.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &dest)?;
        } else if md.is_dir() {
            std::fs::create_dir(&dest)?;
            copy_tree(&entry.path(), &dest)?;
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(md.mode()))?;
        } else if md.is_file() {
            std::fs::copy(entry.path(), &dest)?;
        } else {
            continue;
        }
        let _ = std::os::unix::fs::lchown(&dest, Some(md.uid()), Some(md.gid()));
    }
    Ok(())
}

impl ContainerService {
    /// Container `name`, whose `kind` namespace (PID, IPC) another joins, and its init's pid.
    fn running_peer(&self, name: &str, kind: &str) -> Result<(ContainerRecord, i32), ContainerError> {
        let peer = self.find(name)?;
        match self.status(&peer).pid() {
            Some(pid) => Ok((peer, pid)),
            None => Err(ContainerError::InvalidArgument(format!(
                "cannot join the {kind} namespace of container {}: it is not running — start it first",
                peer.name
            ))),
        }
    }
}

/// Every bind's propagation: docker's default `rprivate` first, then the ones asked for
/// (so a recursive default never undoes them), checked as docker checks them: `shared`
/// needs the host path on a shared mount, `slave` on a shared or slave one.
fn bind_propagation(
    rec: &ContainerRecord,
) -> Result<Vec<(String, berth_runtime::Propagation)>, ContainerError> {
    use berth_runtime::Propagation as P;
    let binds = || rec.host.mounts.iter().filter(|m| m.kind == MountKind::Bind);
    let mut out: Vec<(String, P)> = binds()
        .filter(|m| m.propagation.is_none())
        .map(|m| (m.destination.clone(), P::Rprivate))
        .collect();
    for m in binds() {
        let Some(mode) = m.propagation else { continue };
        let host = berth_host::mounts::propagation_of(Path::new(&m.source)).unwrap_or("private");
        let needs = match mode {
            P::Shared | P::Rshared => (host != "shared").then_some("shared"),
            P::Slave | P::Rslave => (host == "private").then_some("shared or slave"),
            P::Private | P::Rprivate => None,
        };
        if let Some(needs) = needs {
            return Err(ContainerError::InvalidArgument(format!(
                "path {} is on a {host} mount, but :{} needs a {needs} one — make its mount point shared (mount --make-rshared) or leave the option out",
                m.source,
                mode.as_str()
            )));
        }
        out.push((m.destination.clone(), mode));
    }
    Ok(out)
}

/// The container's resolv.conf: the host's, with `--dns`, `--dns-search` and `--dns-option`
/// in place of its nameservers, search domains and options when given (as docker writes it).
fn resolv_conf(host: &str, h: &HostConfig) -> String {
    let replaced = |line: &str| {
        let key = line.split_whitespace().next().unwrap_or("");
        (key == "nameserver" && !h.dns.is_empty())
            || (matches!(key, "search" | "domain") && !h.dns_search.is_empty())
            || (key == "options" && !h.dns_options.is_empty())
    };
    let mut out: String = host
        .lines()
        .filter(|l| !replaced(l))
        .map(|l| format!("{l}\n"))
        .collect();
    for ns in &h.dns {
        out.push_str(&format!("nameserver {ns}\n"));
    }
    if !h.dns_search.is_empty() {
        out.push_str(&format!("search {}\n", h.dns_search.join(" ")));
    }
    if !h.dns_options.is_empty() {
        out.push_str(&format!("options {}\n", h.dns_options.join(" ")));
    }
    out
}

/// `source` (the host's or another container's /dev/shm) over the container's /dev/shm.
fn shm_bind(source: PathBuf) -> MountSpec {
    MountSpec {
        source,
        destination: "/dev/shm".into(),
        kind: RtMountKind::Bind,
        readonly: false,
    }
}

/// `--group-add`: the extra groups, after the user's own supplementary ones.
pub(super) fn add_groups(
    user: &mut berth_runtime::User,
    rootfs: &std::path::Path,
    wanted: &[String],
) -> Result<(), ContainerError> {
    for gid in berth_runtime::resolve_groups(rootfs, wanted)? {
        if !user.additional_gids.contains(&gid) {
            user.additional_gids.push(gid);
        }
    }
    Ok(())
}
