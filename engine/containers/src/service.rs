//! The container lifecycle.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_cgroups::{Cgroup, Limits};
use berth_images::ImageService;
use berth_net::NetworkManager;
use berth_runtime::shim::ShimConfig;
use berth_runtime::{ContainerSpec, MountKind as RtMountKind, MountSpec, NetNs};
use serde::{Deserialize, Serialize};

use crate::record::*;
use crate::volumes::VolumeService;
use crate::{names, ContainerError};

/// Everything `create` accepts, in docker's terms (strings as typed on the command line).
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub image: String,
    pub name: Option<String>,
    /// Arguments after the image: they replace the image's Cmd.
    pub cmd: Vec<String>,
    /// `--entrypoint`: replaces the image's Entrypoint (and drops its Cmd); "" clears it.
    pub entrypoint: Option<String>,
    pub env: Vec<String>,
    pub env_files: Vec<PathBuf>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub publish: Vec<String>,
    pub publish_all: bool,
    /// `-v` specs: `name:/path[:ro]`, `/host:/path[:ro]`, `/path`.
    pub volumes: Vec<String>,
    /// `--mount type=bind|volume|tmpfs,source=…,target=…[,readonly]`.
    pub mounts: Vec<String>,
    pub network: Option<String>,
    /// `--network-alias`: more names on that (user) network.
    pub network_aliases: Vec<String>,
    pub memory: Option<String>,
    pub cpus: Option<String>,
    pub pids_limit: Option<i64>,
    pub restart: Option<String>,
    pub labels: Vec<String>,
    pub tty: bool,
    pub interactive: bool,
    pub auto_remove: bool,
    /// `--log-opt max-size=10m`, `--log-opt max-file=3` (json-file log rotation).
    pub log_opts: Vec<String>,
}

/// A row of `ps`.
#[derive(Debug, Clone)]
pub struct ContainerSummary {
    pub record: ContainerRecord,
    pub status: Status,
}

#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub tty: bool,
}

/// A container's resource use at one moment.
#[derive(Debug, Clone)]
pub struct StatsSample {
    pub at: Instant,
    pub cpu_usage_ns: u64,
    pub memory_usage: u64,
    /// `None`: no limit (the host's memory is the limit).
    pub memory_limit: Option<u64>,
    pub pids: u64,
    /// Bytes the container received and sent.
    pub net_rx: u64,
    pub net_tx: u64,
}

/// What the shim needs to run the port proxies (`shim/ports.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShimPorts {
    pub container_ip: Option<String>,
    pub ports: Vec<PortMapping>,
}

#[derive(Clone)]
pub struct ContainerService {
    images: ImageService,
    root: PathBuf,
    shim_exe: PathBuf,
    net: NetworkManager,
    volumes: VolumeService,
}

/// For a directory name under `containers/`: `None` for a container's own directory,
/// `Some(true)` for the leftover of a create or removal that was cut short, `Some(false)`
/// for a create still in progress (its process lives).
pub(crate) fn unfinished_dir(name: &str) -> Option<bool> {
    if name.starts_with(".removing-") {
        return Some(true);
    }
    let rest = name.strip_prefix(".new-")?;
    let pid = rest.split('-').next().and_then(|p| p.parse::<i32>().ok());
    Some(!pid.is_some_and(berth_host::process::alive))
}

pub(crate) fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl ContainerService {
    /// `shim_exe` is the binary whose hidden `__shim` subcommand runs a container's shim
    /// (the `berth` binary itself).
    pub fn new(images: ImageService, shim_exe: PathBuf) -> Result<ContainerService, ContainerError> {
        let root = images.store().root().to_path_buf();
        std::fs::create_dir_all(root.join("containers")).map_err(ContainerError::io(format!(
            "cannot create {}",
            root.join("containers").display()
        )))?;
        let run_dir = run_dir(&root);
        // Bridges, addresses and NAT rules are the machine's, not one store's: every store
        // on this machine shares one network state, so two stores never hand out one IP.
        let net = NetworkManager::new(&network_state_dir(), &run_dir.join("netns"))?;
        let svc = ContainerService {
            volumes: VolumeService::new(&root),
            images,
            root,
            shim_exe,
            net,
        };
        svc.sweep_unfinished();
        Ok(svc)
    }

    /// Removes what creates and removals that were cut short left: `.new-<pid>-<id>`
    /// directories whose process is gone, and every `.removing-<id>` directory.
    fn sweep_unfinished(&self) {
        let Ok(rd) = std::fs::read_dir(self.root.join("containers")) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if unfinished_dir(&name) == Some(true) {
                let _ = berth_runtime::rootfs::unmount(&e.path().join("rootfs"));
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }

    /// The store root this service's containers live under.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn images(&self) -> &ImageService {
        &self.images
    }

    pub fn volumes(&self) -> &VolumeService {
        &self.volumes
    }

    pub fn network(&self) -> &NetworkManager {
        &self.net
    }

    pub fn paths(&self, id: &str) -> ContainerPaths {
        ContainerPaths::new(&self.root, id)
    }

    // ------------------------------------------------------------------ records

    fn lock(&self) -> Result<std::fs::File, ContainerError> {
        let path = self.root.join("containers").join(".lock");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(ContainerError::io(format!("cannot open {}", path.display())))?;
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| ContainerError::io("cannot lock the container list")(e.into()))?;
        Ok(f)
    }

    fn save(&self, rec: &ContainerRecord) -> Result<(), ContainerError> {
        self.save_in(&self.paths(&rec.id), rec)
    }

    fn save_in(&self, p: &ContainerPaths, rec: &ContainerRecord) -> Result<(), ContainerError> {
        let tmp = p.dir.join("config.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(rec).expect("serializable"))
            .and_then(|()| std::fs::rename(&tmp, p.config()))
            .map_err(ContainerError::io(format!("cannot save container {}", rec.name)))
    }

    pub fn records(&self) -> Result<Vec<ContainerRecord>, ContainerError> {
        let mut out = Vec::new();
        let dir = self.root.join("containers");
        let rd =
            std::fs::read_dir(&dir).map_err(ContainerError::io(format!("cannot read {}", dir.display())))?;
        for e in rd.flatten() {
            // `.new-…` and `.removing-…` are creates and removals under way, not containers.
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if let Ok(bytes) = std::fs::read(e.path().join("config.json")) {
                if let Ok(rec) = serde_json::from_slice::<ContainerRecord>(&bytes) {
                    out.push(rec);
                }
            }
        }
        out.sort_by(|a, b| b.created.cmp(&a.created));
        Ok(out)
    }

    /// Finds a container by full or partial ID, or by name (docker's order).
    pub fn find(&self, name_or_id: &str) -> Result<ContainerRecord, ContainerError> {
        let key = name_or_id.trim_start_matches('/');
        let all = self.records()?;
        if let Some(r) = all.iter().find(|r| r.id == key || r.name == key) {
            return Ok(r.clone());
        }
        let by_prefix: Vec<&ContainerRecord> = all
            .iter()
            .filter(|r| !key.is_empty() && r.id.starts_with(key))
            .collect();
        match by_prefix.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(ContainerError::NotFound(name_or_id.to_string())),
            _ => Err(ContainerError::InvalidArgument(format!(
                "'{name_or_id}' matches several containers — give more of the ID or the name"
            ))),
        }
    }

    pub fn status(&self, rec: &ContainerRecord) -> Status {
        let p = self.paths(&rec.id);
        let state = berth_runtime::shim::read_state(&p.shim()).ok().flatten();
        let exit = berth_runtime::shim::read_exit(&p.shim()).ok().flatten();
        match (state, exit) {
            (None, _) => Status::Created,
            (Some(s), Some(e)) => Status::Exited {
                code: e.exit_code,
                started_at: s.started_at.clone(),
                finished_at: e.finished_at.clone(),
                oom_killed: p.dir.join("oom").exists(),
            },
            (Some(s), None) => {
                if berth_runtime::shim::is_alive(s.container_pid, &s.started_at) {
                    if p.dir.join("paused").exists() {
                        Status::Paused {
                            pid: s.container_pid,
                            started_at: s.started_at,
                        }
                    } else {
                        Status::Running {
                            pid: s.container_pid,
                            started_at: s.started_at,
                        }
                    }
                } else if berth_runtime::shim::shim_running(s.shim_pid) {
                    // The container has just ended and its shim is reaping it and writing
                    // the exit: wait for that record rather than guess (a guess of 137 here
                    // once reached `docker run --rm`'s exit code).
                    for _ in 0..100 {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        if let Ok(Some(e)) = berth_runtime::shim::read_exit(&p.shim()) {
                            return Status::Exited {
                                code: e.exit_code,
                                started_at: s.started_at,
                                finished_at: e.finished_at,
                                oom_killed: p.dir.join("oom").exists(),
                            };
                        }
                    }
                    Status::Running {
                        pid: s.container_pid,
                        started_at: s.started_at,
                    }
                } else {
                    // The container and its shim died without recording an exit (the
                    // machine lost power, or someone killed the shim): report it as killed.
                    Status::Exited {
                        code: 137,
                        started_at: s.started_at.clone(),
                        finished_at: s.started_at,
                        oom_killed: false,
                    }
                }
            }
        }
    }

    pub fn list(&self, all: bool) -> Result<Vec<ContainerSummary>, ContainerError> {
        let mut out = Vec::new();
        for record in self.records()? {
            let status = self.status(&record);
            if !status.is_running() {
                // A container that stopped while no engine ran: release what it held.
                self.cleanup(&record)?;
                if record.host.auto_remove
                    && matches!(status, Status::Exited { .. })
                    && !self.attached_client_alive(&record)
                {
                    let _ = self.remove(&record.id, true, true);
                    continue;
                }
            }
            if all || status.is_running() {
                out.push(ContainerSummary { record, status });
            }
        }
        Ok(out)
    }

    // ------------------------------------------------------------------ create

    pub fn create(&self, opts: &CreateOptions) -> Result<ContainerRecord, ContainerError> {
        let image = self.images.resolve(&opts.image)?;
        let config = self.images.config(&image)?;
        let ic = config.config.clone().unwrap_or_default();

        let entrypoint: Vec<String> = match &opts.entrypoint {
            Some(e) if e.is_empty() => Vec::new(),
            Some(e) => vec![e.clone()],
            None => ic.entrypoint.clone().unwrap_or_default(),
        };
        let cmd: Vec<String> = if !opts.cmd.is_empty() {
            opts.cmd.clone()
        } else if opts.entrypoint.is_some() {
            Vec::new()
        } else {
            ic.cmd.clone().unwrap_or_default()
        };
        if entrypoint.is_empty() && cmd.is_empty() {
            return Err(ContainerError::InvalidArgument(format!(
                "no command specified: image {} has no CMD or ENTRYPOINT — give one after the image name",
                opts.image
            )));
        }

        let mut env = ic.env.clone().unwrap_or_default();
        let mut given = Vec::new();
        for f in &opts.env_files {
            let text = std::fs::read_to_string(f).map_err(|e| {
                ContainerError::InvalidArgument(format!("cannot read env file {}: {e}", f.display()))
            })?;
            given.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_string),
            );
        }
        given.extend(opts.env.iter().cloned());
        for kv in given {
            let (k, v) = match kv.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => match std::env::var(&kv) {
                    Ok(v) => (kv.clone(), v),
                    Err(_) => continue,
                },
            };
            if k.is_empty() {
                return Err(ContainerError::InvalidArgument(format!(
                    "invalid environment variable '{kv}': use KEY=value"
                )));
            }
            env.retain(|e| e.split_once('=').map(|(ek, _)| ek) != Some(k.as_str()));
            env.push(format!("{k}={v}"));
        }
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
        }

        let mut publish = Vec::new();
        for spec in &opts.publish {
            for p in berth_net::parse_publish(spec)? {
                publish.push(PortMapping {
                    host_ip: p.host_ip.to_string(),
                    host_port: p.host_port,
                    container_port: p.container_port,
                    proto: p.proto.to_string(),
                });
            }
        }
        let mut exposed: Vec<String> = ic.exposed_ports.clone().unwrap_or_default().into_keys().collect();
        for p in &publish {
            let key = format!("{}/{}", p.container_port, p.proto);
            if !exposed.contains(&key) {
                exposed.push(key);
            }
        }
        if opts.publish_all {
            for key in &exposed {
                let (port, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
                let Ok(port) = port.parse::<u16>() else { continue };
                if !publish
                    .iter()
                    .any(|p| p.container_port == port && p.proto == proto)
                {
                    publish.push(PortMapping {
                        host_ip: "0.0.0.0".into(),
                        host_port: 0,
                        container_port: port,
                        proto: proto.to_string(),
                    });
                }
            }
        }

        let mut mounts = Vec::new();
        for v in &opts.volumes {
            mounts.push(parse_volume(v)?);
        }
        for m in &opts.mounts {
            mounts.push(parse_mount(m)?);
        }
        // Anonymous volumes (`-v /data`, and the image's VOLUMEs) get their name now, so a
        // restart finds the same data.
        for dest in ic.volumes.clone().unwrap_or_default().into_keys() {
            if !mounts.iter().any(|m| m.destination == dest) {
                mounts.push(MountRecord {
                    source: String::new(),
                    destination: dest,
                    readonly: false,
                    kind: MountKind::Volume,
                    anonymous: true,
                });
            }
        }
        for m in &mut mounts {
            if m.kind == MountKind::Volume && m.source.is_empty() {
                m.source = random_id();
                m.anonymous = true;
            }
        }
        for m in &mounts {
            if m.kind == MountKind::Bind && !Path::new(&m.source).exists() {
                return Err(ContainerError::InvalidArgument(format!(
                    "bind mount source path does not exist: {} — create it first or fix the path",
                    m.source
                )));
            }
        }

        let memory = opts
            .memory
            .as_deref()
            .map(berth_cgroups::parse_memory)
            .transpose()?;
        let cpus = opts.cpus.as_deref().map(berth_cgroups::parse_cpus).transpose()?;
        let restart = parse_restart(opts.restart.as_deref().unwrap_or("no"))?;
        if opts.auto_remove && restart.name != "no" {
            return Err(ContainerError::InvalidArgument(
                "--rm and --restart cannot be used together — choose one".into(),
            ));
        }
        let (log_max_size, log_max_files) = parse_log_opts(&opts.log_opts)?;
        let network = opts.network.clone().unwrap_or_else(|| "bridge".into());
        if !matches!(network.as_str(), "bridge" | "host" | "none")
            && !self.net.list_networks()?.iter().any(|n| n.name == network)
        {
            return Err(ContainerError::InvalidArgument(format!(
                "network {network} not found — create it with `berth network create {network}`"
            )));
        }
        if !opts.network_aliases.is_empty() && matches!(network.as_str(), "bridge" | "host" | "none") {
            return Err(ContainerError::InvalidArgument(
                "network-scoped alias is supported only for containers in user defined networks — add --network NAME"
                    .into(),
            ));
        }
        let mut labels = ic.labels.clone().unwrap_or_default();
        for l in &opts.labels {
            let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
            labels.insert(k.to_string(), v.to_string());
        }

        let id = random_id();
        let _lock = self.lock()?;
        let name = match &opts.name {
            Some(n) => {
                let n = n.trim_start_matches('/').to_string();
                if !names::is_valid(&n) {
                    return Err(ContainerError::InvalidName(n));
                }
                n
            }
            None => {
                let taken: Vec<String> = self.records()?.into_iter().map(|r| r.name).collect();
                let mut n = names::random();
                while taken.contains(&n) {
                    n = format!("{}{}", names::random(), rand::random::<u8>() % 100);
                }
                n
            }
        };
        if let Some(other) = self.records()?.into_iter().find(|r| r.name == name) {
            return Err(ContainerError::NameInUse {
                name,
                id: other.id[..12].to_string(),
            });
        }
        let record = ContainerRecord {
            id: id.clone(),
            name,
            image: opts.image.clone(),
            image_id: image.id.clone(),
            created: now_nanos(),
            config: RunConfig {
                entrypoint,
                cmd,
                env,
                working_dir: opts
                    .workdir
                    .clone()
                    .or(ic.working_dir.clone())
                    .filter(|w| !w.is_empty())
                    .unwrap_or_else(|| "/".into()),
                user: opts.user.clone().or(ic.user.clone()).unwrap_or_default(),
                hostname: opts.hostname.clone().unwrap_or_else(|| id[..12].to_string()),
                tty: opts.tty,
                open_stdin: opts.interactive,
                labels,
                exposed_ports: exposed,
                stop_signal: ic.stop_signal.clone(),
                image_volumes: ic.volumes.clone().unwrap_or_default().into_keys().collect(),
            },
            host: HostConfig {
                publish,
                publish_all: opts.publish_all,
                mounts,
                network: network.clone(),
                memory,
                cpus,
                pids_limit: opts.pids_limit,
                restart,
                auto_remove: opts.auto_remove,
                log_max_size,
                log_max_files,
            },
            networks: Some(match network.as_str() {
                "host" | "none" => Vec::new(),
                _ => vec![NetworkAttachment {
                    name: network.clone(),
                    aliases: opts.network_aliases.clone(),
                }],
            }),
            endpoints: Vec::new(),
            bound_ports: Vec::new(),
            restart_count: 0,
        };
        // Made whole in a directory of its own, then renamed into place: a create that is
        // cut short leaves no half container, only a `.new-<pid>-` directory that the next
        // engine sweeps (see `sweep_unfinished`).
        let p = self.paths(&id);
        let staging = ContainerPaths {
            dir: self
                .root
                .join("containers")
                .join(format!(".new-{}-{id}", std::process::id())),
        };
        for d in [
            staging.dir.clone(),
            staging.rootfs(),
            staging.upper(),
            staging.work(),
            staging.shim(),
        ] {
            std::fs::create_dir_all(&d)
                .map_err(ContainerError::io(format!("cannot create {}", d.display())))?;
        }
        std::fs::write(staging.cleaned(), b"").map_err(ContainerError::io("cannot write container state"))?;
        self.save_in(&staging, &record)?;
        std::fs::rename(&staging.dir, &p.dir).map_err(ContainerError::io(format!(
            "cannot create container {}",
            record.name
        )))?;
        Ok(record)
    }

    // ------------------------------------------------------------------ start

    pub fn start(&self, name_or_id: &str) -> Result<ContainerRecord, ContainerError> {
        let mut rec = self.find(name_or_id)?;
        match self.status(&rec) {
            Status::Running { .. } => return Ok(rec),
            Status::Paused { .. } => return Err(ContainerError::Paused(rec.name.clone())),
            _ => {}
        }
        // Release whatever the previous run left, then start from a clean slate.
        self.cleanup(&rec)?;
        let p = self.paths(&rec.id);
        for f in ["state.json", "exit.json", "start-error"] {
            let _ = std::fs::remove_file(p.shim().join(f));
        }
        let _ = std::fs::remove_file(p.dir.join("oom"));
        let _ = std::fs::remove_file(p.cleaned());
        match self.start_inner(&mut rec) {
            Ok(()) => Ok(rec),
            Err(e) => {
                let _ = self.cleanup(&rec);
                Err(e)
            }
        }
    }

    fn start_inner(&self, rec: &mut ContainerRecord) -> Result<(), ContainerError> {
        // Limits. The groups are made first: the warm-up below holds the kernel's cgroup
        // mutex while it waits out a grace period, which would stall a mkdir.
        let cgroup = Cgroup::create(
            &rec.id,
            &Limits {
                memory_bytes: rec.host.memory,
                memory_swap_bytes: None,
                cpus: rec.host.cpus,
                cpu_shares: None,
                pids_limit: rec.host.pids_limit,
            },
        )?;
        // The container's init joins its groups at the end of this; pay the kernel's grace
        // period for that now, beside the network set-up (see berth_cgroups::Warmup).
        let _warm = berth_cgroups::Warmup::start();
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
        berth_runtime::rootfs::mount_overlay(&lowers, &p.upper(), &p.work(), &p.rootfs())?;

        // Volumes: named ones are created on first use and filled from the image once.
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
                MountKind::Tmpfs => PathBuf::new(),
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

        // Network: the first network makes the namespace and eth0, the others eth1, eth2, …
        let netns = match rec.host.network.as_str() {
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
                        let ep = self
                            .net
                            .attach(&rec.id, &first.name, &endpoint_names(rec, first))?;
                        rec.endpoints.push(endpoint_info(&ep));
                        for a in rest {
                            let ep = self.net.connect(&rec.id, &a.name, &endpoint_names(rec, a))?;
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
        };

        // /etc/hosts, /etc/hostname, /etc/resolv.conf.
        let hosts = self.hosts_for(rec);
        let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
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

        // Containers already on these networks learn the new name (docker's embedded DNS
        // would answer it; here their /etc/hosts is rewritten in place).
        for ep in &rec.endpoints {
            if ep.network != berth_net::DEFAULT_NETWORK {
                self.refresh_peer_hosts(&ep.network, &rec.id);
            }
        }

        // Published ports are bound here, so "port in use" is an error before anything runs.
        let specs: Vec<berth_net::PortSpec> = rec
            .host
            .publish
            .iter()
            .map(|m| berth_net::PortSpec {
                host_ip: m
                    .host_ip
                    .parse()
                    .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
                host_port: m.host_port,
                container_port: m.container_port,
                proto: if m.proto == "udp" {
                    berth_net::Proto::Udp
                } else {
                    berth_net::Proto::Tcp
                },
            })
            .collect();
        if !specs.is_empty() && rec.endpoints.is_empty() {
            return Err(ContainerError::InvalidArgument(format!(
                "ports cannot be published with --network {} — use the default bridge network",
                rec.host.network
            )));
        }
        let bound = berth_net::bind_published(&specs)?;
        rec.bound_ports = bound
            .iter()
            .map(|b| PortMapping {
                host_ip: b.spec.host_ip.to_string(),
                host_port: b.spec.host_port,
                container_port: b.spec.container_port,
                proto: b.spec.proto.to_string(),
            })
            .collect();
        let ports = ShimPorts {
            container_ip: rec.primary_endpoint().map(|e| e.ip.clone()),
            ports: rec.bound_ports.clone(),
        };
        std::fs::write(
            p.shim().join("ports.json"),
            serde_json::to_vec(&ports).expect("serializable"),
        )
        .map_err(ContainerError::io("cannot write container state"))?;
        let extra_fds: Vec<OwnedFd> = bound.into_iter().map(|b| b.listener.into_fd()).collect();

        let user = berth_runtime::resolve_user(&p.rootfs(), &rec.config.user)?;
        let mut args = rec.config.entrypoint.clone();
        args.extend(rec.config.cmd.iter().cloned());
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
        let shim_dir = p.shim();
        let shim_arg = shim_dir.to_string_lossy().to_string();
        berth_runtime::shim::start_shim(&self.shim_exe, &["__shim", &shim_arg], &shim_cfg, extra_fds)?;
        Ok(())
    }

    // ------------------------------------------------------------------ stop, kill, wait

    pub fn kill(&self, name_or_id: &str, signal: i32) -> Result<ContainerRecord, ContainerError> {
        let rec = self.find(name_or_id)?;
        let pid = match self.status(&rec) {
            Status::Running { pid, .. } | Status::Paused { pid, .. } => pid,
            _ => return Err(ContainerError::NotRunning(rec.name.clone())),
        };
        if matches!(self.status(&rec), Status::Paused { .. }) && signal == 9 {
            // A frozen process cannot die until thawed.
            self.unpause(&rec.id)?;
        }
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(pid).expect("pid > 0"),
            signal_of(signal)?,
        );
        Ok(rec)
    }

    pub fn stop(&self, name_or_id: &str, timeout: Duration) -> Result<ContainerRecord, ContainerError> {
        let rec = self.find(name_or_id)?;
        if !self.status(&rec).is_running() {
            return Ok(rec);
        }
        let sig = rec
            .config
            .stop_signal
            .as_deref()
            .and_then(parse_signal)
            .unwrap_or(15);
        if matches!(self.status(&rec), Status::Paused { .. }) {
            self.unpause(&rec.id)?;
        }
        self.kill(&rec.id, sig)?;
        if !self.wait_exit(&rec, timeout) {
            let _ = self.kill(&rec.id, 9);
            if let Ok(Some(cg)) = Cgroup::open(&rec.id) {
                let _ = cg.kill_all(9);
            }
            self.wait_exit(&rec, Duration::from_secs(10));
        }
        Ok(rec)
    }

    /// Waits until the container is no longer running and its shim has finished (so its
    /// published ports are closed and its resources released); false on timeout.
    pub fn wait_exit(&self, rec: &ContainerRecord, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let shim_pid = berth_runtime::shim::read_state(&self.paths(&rec.id).shim())
            .ok()
            .flatten()
            .map(|s| s.shim_pid);
        loop {
            if !self.status(rec).is_running() {
                break;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // The shim records the exit, then releases what the run held and exits itself.
        if let Some(pid) = shim_pid {
            let shim_deadline = Instant::now() + Duration::from_secs(5);
            while berth_host::process::alive(pid) && Instant::now() < shim_deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        true
    }

    pub fn pause(&self, name_or_id: &str) -> Result<(), ContainerError> {
        let rec = self.find(name_or_id)?;
        if !matches!(self.status(&rec), Status::Running { .. }) {
            return Err(ContainerError::NotRunning(rec.name));
        }
        if let Some(cg) = Cgroup::open(&rec.id)? {
            cg.freeze()?;
        }
        std::fs::write(self.paths(&rec.id).dir.join("paused"), b"")
            .map_err(ContainerError::io("cannot record the pause"))
    }

    pub fn unpause(&self, name_or_id: &str) -> Result<(), ContainerError> {
        let rec = self.find(name_or_id)?;
        if let Some(cg) = Cgroup::open(&rec.id)? {
            cg.thaw()?;
        }
        let _ = std::fs::remove_file(self.paths(&rec.id).dir.join("paused"));
        Ok(())
    }

    // ------------------------------------------------------------------ cleanup, remove

    /// Releases what a run held: port listeners die with the shim; here the rootfs is
    /// unmounted, the network endpoint detached and the cgroup removed. Idempotent.
    pub fn cleanup(&self, rec: &ContainerRecord) -> Result<(), ContainerError> {
        let p = self.paths(&rec.id);
        if p.cleaned().exists() || self.status(rec).is_running() {
            return Ok(());
        }
        if let Some(cg) = Cgroup::open(&rec.id)? {
            if cg.oom_killed().unwrap_or(false) {
                let _ = std::fs::write(p.dir.join("oom"), b"");
            }
            cg.destroy(true)?;
        }
        if rec.host.network != "host" && rec.host.network != "none" {
            // The networks it is on now (it may have been connected since `rec` was read).
            let networks: Vec<String> = self
                .net
                .endpoints_of(&rec.id)
                .unwrap_or_default()
                .into_iter()
                .map(|e| e.network)
                .collect();
            self.net.detach(&rec.id)?;
            for n in networks.iter().filter(|n| *n != berth_net::DEFAULT_NETWORK) {
                self.refresh_peer_hosts(n, &rec.id);
            }
        }
        berth_runtime::rootfs::unmount(&p.rootfs())?;
        let _ = std::fs::remove_file(p.dir.join("paused"));
        std::fs::write(p.cleaned(), b"").map_err(ContainerError::io("cannot write container state"))?;
        Ok(())
    }

    /// Rewrites the /etc/hosts of every running container of this store on `network`
    /// except `except`, in place (the file is bind-mounted, so the inode must stay).
    fn refresh_peer_hosts(&self, network: &str, except: &str) {
        let Ok(peers) = self.net.endpoints(network) else {
            return;
        };
        for ep in peers.iter().filter(|e| e.container_id != except) {
            let Ok(peer) = self.find(&ep.container_id) else {
                continue; // a container of another store on this machine
            };
            let _ = std::fs::write(self.paths(&peer.id).etc("hosts"), self.hosts_for(&peer));
        }
    }

    /// A container's /etc/hosts from the network state: its own addresses, and the other
    /// containers on each of its user networks (the default bridge has no name resolution,
    /// as in docker).
    fn hosts_for(&self, rec: &ContainerRecord) -> String {
        let own = self.net.endpoints_of(&rec.id).unwrap_or_default();
        let mut peers = Vec::new();
        for ep in own.iter().filter(|e| e.network != berth_net::DEFAULT_NETWORK) {
            peers.extend(self.net.endpoints(&ep.network).unwrap_or_default());
        }
        hosts_file(rec, &own, &peers)
    }

    // ------------------------------------------------------------------ network connect

    /// Connects a container to one more network, like `docker network connect`. A running
    /// container gets the next `ethN` at once and the names on that network learn each
    /// other; a stopped or created one joins the network at its next start.
    pub fn connect(
        &self,
        network: &str,
        name_or_id: &str,
        aliases: &[String],
    ) -> Result<ContainerRecord, ContainerError> {
        let _lock = self.lock()?;
        let mut rec = self.find(name_or_id)?;
        let network = self.network_name(network)?;
        match (rec.host.network.as_str(), network.as_str()) {
            (_, "host") => return Err(ContainerError::HostNetwork),
            ("host", _) => return Err(ContainerError::SharedNamespace),
            ("none", _) | (_, "none") => return Err(ContainerError::PrivateNetwork),
            _ => {}
        }
        let mut attachments = rec.attachments();
        if attachments.iter().any(|a| a.name == network) {
            return Err(ContainerError::EndpointExists {
                name: rec.name,
                network,
            });
        }
        let attachment = NetworkAttachment {
            name: network.clone(),
            aliases: aliases.to_vec(),
        };
        if self.status(&rec).is_running() {
            let ep = self
                .net
                .connect(&rec.id, &network, &endpoint_names(&rec, &attachment))?;
            rec.endpoints.push(endpoint_info(&ep));
        }
        attachments.push(attachment);
        rec.networks = Some(attachments);
        if let Err(e) = self.save(&rec) {
            if self.status(&rec).is_running() {
                let _ = self.net.disconnect(&rec.id, &network);
            }
            return Err(e);
        }
        self.refresh_after_network_change(&rec, &network);
        Ok(rec)
    }

    /// Disconnects a container from a network, like `docker network disconnect`: a running
    /// container loses that interface and the names on that network at once.
    pub fn disconnect(&self, network: &str, name_or_id: &str) -> Result<ContainerRecord, ContainerError> {
        let _lock = self.lock()?;
        let mut rec = self.find(name_or_id)?;
        let network = self.network_name(network)?;
        if network == "host" || rec.host.network == "host" {
            return Err(ContainerError::HostNetwork);
        }
        let mut attachments = rec.attachments();
        let Some(pos) = attachments.iter().position(|a| a.name == network) else {
            return Err(ContainerError::NotConnected {
                id: rec.id.clone(),
                name: rec.name.clone(),
                network,
            });
        };
        attachments.remove(pos);
        if self.status(&rec).is_running() {
            match self.net.disconnect(&rec.id, &network) {
                Ok(_) | Err(berth_net::NetError::NotConnected { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            rec.endpoints.retain(|e| e.network != network);
        }
        rec.networks = Some(attachments);
        self.save(&rec)?;
        self.refresh_after_network_change(&rec, &network);
        Ok(rec)
    }

    /// The network's own name for a name or ID the user gave ("bridge", "host", "none" or
    /// a user network).
    fn network_name(&self, network: &str) -> Result<String, ContainerError> {
        let all = self.net.list_networks()?;
        all.iter()
            .find(|n| n.name == network)
            .map(|n| n.name.clone())
            .ok_or_else(|| berth_net::NetError::NetworkNotFound(network.to_string()).into())
    }

    /// After a live connect or disconnect: the container's own /etc/hosts and those of its
    /// peers on `network` are rewritten.
    fn refresh_after_network_change(&self, rec: &ContainerRecord, network: &str) {
        if !self.status(rec).is_running() {
            return;
        }
        let _ = std::fs::write(self.paths(&rec.id).etc("hosts"), self.hosts_for(rec));
        if network != berth_net::DEFAULT_NETWORK {
            self.refresh_peer_hosts(network, &rec.id);
        }
    }

    pub fn remove(
        &self,
        name_or_id: &str,
        force: bool,
        volumes: bool,
    ) -> Result<ContainerRecord, ContainerError> {
        let rec = self.find(name_or_id)?;
        if self.status(&rec).is_running() {
            if !force {
                return Err(ContainerError::Running(rec.name.clone()));
            }
            let _ = self.kill(&rec.id, 9);
            if let Ok(Some(cg)) = Cgroup::open(&rec.id) {
                let _ = cg.kill_all(9);
            }
            self.wait_exit(&rec, Duration::from_secs(10));
        }
        // The shim may be releasing the same resources right now: take turns.
        let _lock = self.lock()?;
        self.cleanup(&rec)?;
        let p = self.paths(&rec.id);
        // Renamed out of sight first: a removal that is cut short leaves a `.removing-`
        // directory the next engine finishes, never a container with half its files.
        let doomed = self.root.join("containers").join(format!(".removing-{}", rec.id));
        match std::fs::rename(&p.dir, &doomed) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(ContainerError::io(format!(
                    "cannot remove container {}",
                    rec.name
                ))(e));
            }
        }
        let mut attempt = 0;
        loop {
            match std::fs::remove_dir_all(&doomed) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) if attempt < 5 && e.kind() == std::io::ErrorKind::DirectoryNotEmpty => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => {
                    return Err(ContainerError::io(format!(
                        "cannot remove container {}",
                        rec.name
                    ))(e))
                }
            }
        }
        if volumes {
            for m in &rec.host.mounts {
                if m.kind == MountKind::Volume && m.anonymous {
                    let _ = self.volumes.remove(&m.source);
                }
            }
        }
        Ok(rec)
    }

    /// IDs of containers (any state) created from `image_id`.
    pub fn users_of_image(
        &self,
        image_id: &berth_oci::Digest,
    ) -> Result<Vec<ContainerRecord>, ContainerError> {
        Ok(self
            .records()?
            .into_iter()
            .filter(|r| &r.image_id == image_id)
            .collect())
    }

    /// Names of containers that mount volume `name`.
    pub fn users_of_volume(&self, name: &str) -> Result<Vec<String>, ContainerError> {
        Ok(self
            .records()?
            .into_iter()
            .filter(|r| {
                r.host
                    .mounts
                    .iter()
                    .any(|m| m.kind == MountKind::Volume && m.source == name)
            })
            .map(|r| r.name)
            .collect())
    }

    // ------------------------------------------------------------------ exec, logs

    /// Runs a command in a running container with the caller's stdio; returns its exit code.
    pub fn exec(&self, name_or_id: &str, opts: &ExecOptions) -> Result<i32, ContainerError> {
        let child = self.exec_with(name_or_id, opts, berth_runtime::Stdio::Inherit)?;
        wait_for(child)
    }

    /// Starts a command in a running container with the given stdio (e.g. a pty's slave)
    /// and returns its pid, a child of this process: wait for it with [`wait_for`].
    pub fn exec_with(
        &self,
        name_or_id: &str,
        opts: &ExecOptions,
        stdio: berth_runtime::Stdio,
    ) -> Result<i32, ContainerError> {
        let rec = self.find(name_or_id)?;
        let pid = match self.status(&rec) {
            Status::Running { pid, .. } => pid,
            Status::Paused { .. } => return Err(ContainerError::Paused(rec.name)),
            _ => return Err(ContainerError::NotRunning(rec.name)),
        };
        if opts.cmd.is_empty() {
            return Err(ContainerError::InvalidArgument(
                "exec needs a command, e.g. `berth exec NAME sh`".into(),
            ));
        }
        let p = self.paths(&rec.id);
        let user =
            berth_runtime::resolve_user(&p.rootfs(), opts.user.as_deref().unwrap_or(&rec.config.user))?;
        let mut env = rec.config.env.clone();
        for kv in &opts.env {
            if let Some((k, _)) = kv.split_once('=') {
                env.retain(|e| e.split_once('=').map(|(ek, _)| ek) != Some(k));
                env.push(kv.clone());
            }
        }
        let cgroup_procs = Cgroup::open(&rec.id)?.map(|c| c.join_files()).unwrap_or_default();
        let spec = berth_runtime::ExecSpec {
            args: opts.cmd.clone(),
            env,
            cwd: opts
                .workdir
                .clone()
                .unwrap_or_else(|| rec.config.working_dir.clone()),
            user,
            tty: opts.tty,
            cgroup_procs,
        };
        Ok(berth_runtime::exec(pid, &spec, stdio)?)
    }

    /// Attaches to a running container's stdio through its shim (see
    /// `berth_runtime::attach` for the wire format).
    pub fn attach(
        &self,
        name_or_id: &str,
        req: &berth_runtime::attach::AttachRequest,
    ) -> Result<std::os::unix::net::UnixStream, ContainerError> {
        let rec = self.find(name_or_id)?;
        if !matches!(self.status(&rec), Status::Running { .. } | Status::Paused { .. }) {
            return Err(ContainerError::NotRunning(rec.name));
        }
        berth_runtime::attach::connect(&self.paths(&rec.id).shim(), req).map_err(ContainerError::io(format!(
            "cannot attach to container {} — its shim does not answer",
            rec.name
        )))
    }

    /// Resizes a running container's terminal (containers started with `-t`).
    pub fn resize(&self, name_or_id: &str, rows: u16, cols: u16) -> Result<(), ContainerError> {
        let rec = self.find(name_or_id)?;
        if !self.status(&rec).is_running() {
            return Err(ContainerError::NotRunning(rec.name));
        }
        let req = berth_runtime::attach::AttachRequest {
            resize: Some((rows, cols)),
            ..Default::default()
        };
        berth_runtime::attach::connect(&self.paths(&rec.id).shim(), &req)
            .map(drop)
            .map_err(ContainerError::io(format!(
                "cannot resize the terminal of container {}",
                rec.name
            )))
    }

    /// One sample of a running container's resource use (for `stats`).
    pub fn stats(&self, rec: &ContainerRecord) -> Result<Option<StatsSample>, ContainerError> {
        if !self.status(rec).is_running() {
            return Ok(None);
        }
        let Some(cg) = Cgroup::open(&rec.id)? else {
            return Ok(None);
        };
        let st = cg.stats()?;
        // The host sides of the veths (one per network): what they receive the container
        // sent, and vice versa; docker's NET I/O sums the interfaces too.
        let mut veths: Vec<String> = self
            .net
            .endpoints_of(&rec.id)
            .unwrap_or_default()
            .iter()
            .map(berth_net::Endpoint::host_veth)
            .collect();
        if veths.is_empty() {
            veths.push(berth_net::veth_name(&rec.id));
        }
        let counter = |name: &str| -> u64 {
            veths
                .iter()
                .filter_map(|veth| {
                    std::fs::read_to_string(format!("/sys/class/net/{veth}/statistics/{name}")).ok()
                })
                .filter_map(|v| v.trim().parse::<u64>().ok())
                .sum()
        };
        Ok(Some(StatsSample {
            at: Instant::now(),
            cpu_usage_ns: st.cpu_usage_ns,
            memory_usage: st.memory_usage,
            memory_limit: st.memory_limit,
            pids: st.pids_current,
            net_rx: counter("tx_bytes"),
            net_tx: counter("rx_bytes"),
        }))
    }

    pub fn log_path(&self, rec: &ContainerRecord) -> PathBuf {
        self.paths(&rec.id).log()
    }

    /// Called by the shim process once its container has exited: releases the run's
    /// resources, then applies `--rm` and the restart policy.
    pub fn after_exit(&self, id: &str) -> Result<(), ContainerError> {
        let mut rec = self.find(id)?;
        {
            let _lock = self.lock()?;
            if !self.paths(&rec.id).config().exists() {
                return Ok(());
            }
            self.cleanup(&rec)?;
        }
        if rec.host.auto_remove {
            // An attached `run --rm` still reading the output removes it itself.
            if !self.attached_client_alive(&rec) {
                self.remove(&rec.id, true, true)?;
            }
            return Ok(());
        }
        let code = match self.status(&rec) {
            Status::Exited { code, .. } => code,
            _ => return Ok(()),
        };
        let stopped_by_user = self.paths(&rec.id).dir.join("stopped").exists();
        let restart = match rec.host.restart.name.as_str() {
            "always" | "unless-stopped" => !stopped_by_user,
            "on-failure" => {
                code != 0
                    && !stopped_by_user
                    && (rec.host.restart.maximum_retry_count == 0
                        || rec.restart_count < rec.host.restart.maximum_retry_count)
            }
            _ => false,
        };
        if restart {
            rec.restart_count += 1;
            self.save(&rec)?;
            // Back off a little like docker does, so a crashing container does not spin.
            std::thread::sleep(Duration::from_millis(100 * u64::from(rec.restart_count.min(50))));
            self.start(&rec.id)?;
        }
        Ok(())
    }

    /// Records that this process follows the container's output (`run` without -d), so
    /// the shim leaves `--rm` to it.
    pub fn mark_attached(&self, rec: &ContainerRecord) -> Result<(), ContainerError> {
        std::fs::write(
            self.paths(&rec.id).dir.join("attached"),
            std::process::id().to_string(),
        )
        .map_err(ContainerError::io("cannot write container state"))
    }

    fn attached_client_alive(&self, rec: &ContainerRecord) -> bool {
        std::fs::read_to_string(self.paths(&rec.id).dir.join("attached"))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
            .is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
    }

    /// Marks that the user stopped the container (restart policies then leave it stopped).
    pub fn mark_stopped(&self, rec: &ContainerRecord, stopped: bool) {
        let f = self.paths(&rec.id).dir.join("stopped");
        if stopped {
            let _ = std::fs::write(f, b"");
        } else {
            let _ = std::fs::remove_file(f);
        }
    }

    pub fn labels(rec: &ContainerRecord) -> &BTreeMap<String, String> {
        &rec.config.labels
    }
}

/// `/run/berth` for root, `$XDG_RUNTIME_DIR/berth` otherwise. Machine-wide like the
/// network state: container IDs are random, so stores never collide here.
fn run_dir(_root: &Path) -> PathBuf {
    if rustix::process::geteuid().is_root() {
        PathBuf::from("/run/berth")
    } else {
        std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir)
            .join("berth")
    }
}

/// Waits for a child of this process; returns its exit code (128 + signal if killed).
/// Berth rotates logs by default (docker keeps them unbounded unless told).
const LOG_MAX_SIZE: u64 = 10 << 20;
const LOG_MAX_FILES: u32 = 3;

pub(crate) fn default_log_max_size() -> u64 {
    LOG_MAX_SIZE
}

pub(crate) fn default_log_max_files() -> u32 {
    LOG_MAX_FILES
}

/// docker's json-file `--log-opt`s: `max-size` (bytes with k/m/g; -1 = unlimited) and
/// `max-file`.
fn parse_log_opts(opts: &[String]) -> Result<(u64, u32), ContainerError> {
    let (mut size, mut files) = (LOG_MAX_SIZE, LOG_MAX_FILES);
    for o in opts {
        let bad = |what: &str| {
            ContainerError::InvalidArgument(format!(
                "invalid --log-opt {o:?}: {what} — use max-size=10m or max-file=3"
            ))
        };
        match o.split_once('=') {
            Some(("max-size", "-1")) => size = 0,
            Some(("max-size", v)) => {
                size = berth_cgroups::parse_memory(v)
                    .map_err(|_| bad("the size is not a number with k, m or g"))?
            }
            Some(("max-file", v)) => {
                files = v
                    .parse()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| bad("max-file must be 1 or more"))?
            }
            _ => return Err(bad("Berth's json-file log knows max-size and max-file")),
        }
    }
    Ok((size, files))
}

/// A container's /etc/hosts: localhost, itself on each of its networks, and the other
/// containers on its user networks.
fn hosts_file(rec: &ContainerRecord, own: &[berth_net::Endpoint], peers: &[berth_net::Endpoint]) -> String {
    let mut hosts = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    for ep in own.iter().filter(|e| !e.ip.is_unspecified()) {
        hosts.push_str(&format!("{}\t{} {}\n", ep.ip, rec.config.hostname, rec.name));
    }
    for other in peers.iter().filter(|e| e.container_id != rec.id) {
        hosts.push_str(&format!("{}\t{}\n", other.ip, other.aliases.join(" ")));
    }
    hosts
}

/// The names a container answers to on a network: its name, its aliases there and its
/// short ID (docker's embedded DNS answers all three).
fn endpoint_names(rec: &ContainerRecord, a: &NetworkAttachment) -> Vec<String> {
    let mut names = vec![rec.name.clone()];
    for n in a
        .aliases
        .iter()
        .chain(std::iter::once(&rec.id[..12.min(rec.id.len())].to_string()))
    {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    names
}

fn endpoint_info(ep: &berth_net::Endpoint) -> EndpointInfo {
    EndpointInfo {
        network: ep.network.clone(),
        ip: ep.ip.to_string(),
        prefix: ep.prefix,
        gateway: ep.gateway.to_string(),
        mac: ep.mac.clone(),
        interface: ep.interface.clone(),
    }
}

pub fn wait_for(pid: i32) -> Result<i32, ContainerError> {
    let pid = rustix::process::Pid::from_raw(pid)
        .ok_or_else(|| ContainerError::InvalidArgument("invalid pid".into()))?;
    loop {
        match rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty()) {
            Ok(Some((_, status))) => {
                if let Some(code) = status.exit_status() {
                    return Ok(code);
                }
                if let Some(sig) = status.terminating_signal() {
                    return Ok(128 + sig);
                }
            }
            Ok(None) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(ContainerError::io("cannot wait for the exec'd process")(e.into())),
        }
    }
}

/// Machine-wide network state: `/var/lib/berth/network` as root, else under the user's
/// data directory.
fn network_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BERTH_NETWORK_STATE") {
        return PathBuf::from(dir);
    }
    if rustix::process::geteuid().is_root() {
        PathBuf::from("/var/lib/berth/network")
    } else {
        std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .unwrap_or_else(std::env::temp_dir)
            .join("berth/network")
    }
}

fn random_id() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

fn now_nanos() -> String {
    let t = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z"
    );
    t.format(&fmt).unwrap_or_default()
}

pub(crate) fn parse_signal(s: &str) -> Option<i32> {
    let s = s.trim().to_ascii_uppercase();
    let s = s.strip_prefix("SIG").unwrap_or(&s);
    if let Ok(n) = s.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    Some(match s {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "KILL" => 9,
        "USR1" => 10,
        "USR2" => 12,
        "TERM" => 15,
        "CONT" => 18,
        "STOP" => 19,
        "WINCH" => 28,
        _ => return None,
    })
}

/// Parses a signal given as a name (`SIGTERM`, `term`) or number.
pub fn signal_number(s: &str) -> Result<i32, ContainerError> {
    parse_signal(s).ok_or_else(|| {
        ContainerError::InvalidArgument(format!(
            "invalid signal '{s}': use a name like SIGTERM or a number like 15"
        ))
    })
}

fn signal_of(n: i32) -> Result<rustix::process::Signal, ContainerError> {
    rustix::process::Signal::from_named_raw(n)
        .ok_or_else(|| ContainerError::InvalidArgument(format!("invalid signal {n}")))
}

fn parse_restart(s: &str) -> Result<RestartPolicy, ContainerError> {
    let (name, max) = match s.split_once(':') {
        Some((n, m)) => (n, Some(m)),
        None => (s, None),
    };
    let bad = || {
        ContainerError::InvalidArgument(format!(
            "invalid restart policy '{s}': use no, always, unless-stopped or on-failure[:N]"
        ))
    };
    match (name, max) {
        ("no" | "always" | "unless-stopped", None) => Ok(RestartPolicy {
            name: name.to_string(),
            maximum_retry_count: 0,
        }),
        ("on-failure", m) => Ok(RestartPolicy {
            name: name.into(),
            maximum_retry_count: m.map(|m| m.parse().map_err(|_| bad())).transpose()?.unwrap_or(0),
        }),
        _ => Err(bad()),
    }
}

fn parse_volume(spec: &str) -> Result<MountRecord, ContainerError> {
    let bad = |why: &str| ContainerError::InvalidArgument(format!("invalid volume spec '{spec}': {why}"));
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, dest, mode) = match parts.as_slice() {
        [d] => ("", *d, ""),
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => return Err(bad("use SOURCE:/container/path[:ro]")),
    };
    if !dest.starts_with('/') {
        return Err(bad("the container path must be absolute, e.g. /data"));
    }
    let readonly = match mode {
        "" | "rw" => false,
        "ro" => true,
        other => return Err(bad(&format!("unknown mode '{other}' (use ro or rw)"))),
    };
    let kind = if source.is_empty()
        || !(source.starts_with('/') || source.starts_with('.') || source.starts_with('~'))
    {
        if !source.is_empty() && !names::is_valid(source) {
            return Err(bad("a volume name uses letters, digits, '_', '.' and '-'"));
        }
        MountKind::Volume
    } else {
        MountKind::Bind
    };
    let source = if kind == MountKind::Bind {
        std::path::absolute(source)
            .map_err(|e| bad(&e.to_string()))?
            .to_string_lossy()
            .to_string()
    } else {
        source.to_string()
    };
    Ok(MountRecord {
        source,
        destination: dest.to_string(),
        readonly,
        kind,
        anonymous: false,
    })
}

fn parse_mount(spec: &str) -> Result<MountRecord, ContainerError> {
    let bad = |why: &str| ContainerError::InvalidArgument(format!("invalid --mount '{spec}': {why}"));
    let mut kind = MountKind::Volume;
    let (mut source, mut target, mut readonly) = (String::new(), String::new(), false);
    for field in spec.split(',') {
        let (k, v) = field.split_once('=').unwrap_or((field, ""));
        match k {
            "type" => {
                kind = match v {
                    "bind" => MountKind::Bind,
                    "volume" => MountKind::Volume,
                    "tmpfs" => MountKind::Tmpfs,
                    _ => return Err(bad("type must be bind, volume or tmpfs")),
                }
            }
            "source" | "src" => source = v.to_string(),
            "target" | "destination" | "dst" => target = v.to_string(),
            "readonly" | "ro" => readonly = v.is_empty() || v == "true" || v == "1",
            _ => return Err(bad(&format!("unknown option '{k}'"))),
        }
    }
    if !target.starts_with('/') {
        return Err(bad("target= must be an absolute path"));
    }
    if kind == MountKind::Bind {
        if source.is_empty() {
            return Err(bad("a bind mount needs source="));
        }
        source = std::path::absolute(&source)
            .map_err(|e| bad(&e.to_string()))?
            .to_string_lossy()
            .to_string();
    }
    Ok(MountRecord {
        source,
        destination: target,
        readonly,
        kind,
        anonymous: false,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_specs() {
        let v = parse_volume("data:/var/lib/data:ro").unwrap();
        assert_eq!(
            (v.kind, v.source.as_str(), v.readonly),
            (MountKind::Volume, "data", true)
        );
        let b = parse_volume("/tmp:/host-tmp").unwrap();
        assert_eq!(b.kind, MountKind::Bind);
        let anon = parse_volume("/data").unwrap();
        assert_eq!((anon.kind, anon.source.as_str()), (MountKind::Volume, ""));
        assert!(parse_volume("data:relative").is_err());
        assert!(parse_volume("a:/b:zz").is_err());
        let m = parse_mount("type=bind,source=/tmp,target=/x,readonly").unwrap();
        assert!(m.readonly && m.kind == MountKind::Bind);
        assert!(parse_mount("type=nfs,target=/x").is_err());
    }

    #[test]
    fn restart_and_signals() {
        assert_eq!(parse_restart("on-failure:3").unwrap().maximum_retry_count, 3);
        assert!(parse_restart("sometimes").is_err());
        assert_eq!(parse_signal("SIGTERM"), Some(15));
        assert_eq!(parse_signal("kill"), Some(9));
        assert_eq!(parse_signal("9"), Some(9));
        assert_eq!(parse_signal("NOPE"), None);
    }
}
