//! `create`: a record from the image's config and the typed [`ContainerConfig`], in
//! docker's terms (Entrypoint/Cmd/Env/WorkingDir/User/ExposedPorts/Volumes), made whole
//! in a staging directory and renamed into place.

use std::path::Path;

use berth_oci::ContainerConfig as ImageConfig;

use berth_events::Action;

use super::{now_nanos, random_id, ContainerService};
use crate::config::{ContainerConfig, MountSpec, PortSpec, Proto};
use crate::record::*;
use crate::{names, ContainerError};

impl ContainerService {
    pub fn create(&self, opts: &ContainerConfig) -> Result<ContainerRecord, ContainerError> {
        let image = self.images.resolve(&opts.image)?;
        let config = self.images.config(&image)?;
        let ic = config.config().cloned().unwrap_or_default();

        let (entrypoint, cmd) = command(opts, &ic)?;
        let env = environment(opts, &ic)?;
        let (publish, exposed) = ports(opts, &ic);
        let mut mounts = mounts(opts, &ic)?;
        self.add_volumes_from(&mut mounts, &opts.volumes_from)?;
        let links = self.links_of(&opts.links)?;
        // A rootless engine without delegated cgroups refuses limits here, before any record.
        check_limits(&opts.limits)?;
        if opts.auto_remove && opts.restart.name != RestartName::No {
            return Err(ContainerError::InvalidArgument(
                "--rm and --restart cannot be used together — choose one".into(),
            ));
        }
        if opts.log.max_files == 0 {
            return Err(ContainerError::InvalidArgument(
                "invalid log max-file 0 — keep at least 1 file, e.g. max-file=3".into(),
            ));
        }
        let network = self.network_of(opts)?;
        let image_health: Option<crate::HealthConfig> = ic
            .extra
            .get("Healthcheck")
            .and_then(|v| serde_json::from_value(v.clone()).ok());
        if opts.init {
            init_binary()?;
        }
        if let Some(s) = &opts.stop_signal {
            crate::signal_number(s)?;
        }
        self.check_namespace_modes(opts)?;
        check_host_settings(opts)?;
        if let Some(h) = &opts.healthcheck {
            h.check()?;
        }
        let healthcheck = crate::HealthConfig::merged(opts.healthcheck.as_ref(), image_health.as_ref());
        let mut labels: std::collections::BTreeMap<String, String> =
            ic.labels().clone().unwrap_or_default().into_iter().collect();
        labels.extend(opts.labels.iter().map(|(k, v)| (k.clone(), v.clone())));

        let id = random_id();
        let _lock = self.lock()?;
        let name = self.unique_name(opts.name.as_deref())?;
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
                    .working_dir
                    .clone()
                    .or(ic.working_dir().clone())
                    .filter(|w| !w.is_empty())
                    .unwrap_or_else(|| "/".into()),
                user: opts.user.clone().or(ic.user().clone()).unwrap_or_default(),
                hostname: opts.hostname.clone().unwrap_or_else(|| id[..12].to_string()),
                tty: opts.tty,
                open_stdin: opts.open_stdin,
                labels,
                exposed_ports: exposed,
                stop_signal: opts.stop_signal.clone().or(ic.stop_signal().clone()),
                image_volumes: ic.volumes().clone().unwrap_or_default(),
                healthcheck,
                stop_timeout: opts.stop_timeout,
                group_add: opts.group_add.clone(),
            },
            host: HostConfig {
                publish,
                publish_all: opts.publish_all,
                mounts,
                network: network.clone(),
                memory: opts.limits.memory.filter(|m| *m > 0),
                cpus: opts.limits.cpus.filter(|c| *c > 0.0),
                pids_limit: opts.limits.pids.filter(|p| *p > 0),
                cpu_shares: opts.limits.cpu_shares.filter(|s| *s > 0),
                memory_swap: opts.limits.memory_swap.filter(|s| *s != 0),
                cpuset_cpus: opts.limits.cpuset_cpus.clone().filter(|c| !c.is_empty()),
                swappiness: opts.limits.swappiness.filter(|s| *s >= 0),
                restart: opts.restart,
                auto_remove: opts.auto_remove,
                init: opts.init,
                pid_mode: opts.pid_mode.clone().unwrap_or_default(),
                uts_mode: opts.uts_mode.clone().unwrap_or_default(),
                ipc_mode: opts.ipc_mode.clone().unwrap_or_default(),
                extra_hosts: opts.extra_hosts.clone(),
                dns: opts.dns.clone(),
                dns_search: opts.dns_search.clone(),
                dns_options: opts.dns_options.clone(),
                shm_size: opts.shm_size.filter(|s| *s > 0),
                readonly_rootfs: opts.readonly_rootfs,
                security_opt: opts.security_opt.clone(),
                sysctls: opts.sysctls.clone(),
                cap_add: opts
                    .cap_add
                    .iter()
                    .map(|c| berth_runtime::normalize_capability(c))
                    .collect(),
                cap_drop: opts
                    .cap_drop
                    .iter()
                    .map(|c| berth_runtime::normalize_capability(c))
                    .collect(),
                links,
                log_max_size: opts.log.max_size,
                log_max_files: opts.log.max_files,
            },
            networks: Some(match network.as_str() {
                "host" | "none" => Vec::new(),
                _ => vec![NetworkAttachment {
                    name: network.clone(),
                    aliases: opts.network_aliases.clone(),
                    ip: opts.network_ip,
                    ip6: opts.network_ip6,
                    mac: opts.network_mac.clone(),
                }],
            }),
            endpoints: Vec::new(),
            bound_ports: Vec::new(),
            restart_count: 0,
            damage: None,
        };
        self.write_new(&record)?;
        self.emit(Action::Create, &record);
        Ok(record)
    }

    /// `--network` (the default bridge if none), checked to exist, and `--network-alias`
    /// allowed only on a user network.
    fn network_of(&self, opts: &ContainerConfig) -> Result<String, ContainerError> {
        let network = opts.network.clone().unwrap_or_else(|| "bridge".into());
        let builtin = matches!(network.as_str(), "bridge" | "host" | "none");
        if !builtin && !self.net.list_networks()?.iter().any(|n| n.name == network) {
            return Err(ContainerError::InvalidArgument(format!(
                "network {network} not found — create it with `berth network create {network}`"
            )));
        }
        if let Some(mac) = &opts.network_mac {
            if berth_net::parse_mac(mac).is_none() {
                return Err(ContainerError::InvalidArgument(format!(
                    "invalid MAC address '{mac}' — write six hex pairs with a unicast first byte, e.g. 02:42:ac:11:00:02"
                )));
            }
            if network == "host" || network == "none" {
                return Err(ContainerError::InvalidArgument(
                    "a MAC address needs a network — leave --mac-address out with --network host or none"
                        .into(),
                ));
            }
        }
        if opts.network_ip.is_some() && builtin {
            return Err(ContainerError::InvalidArgument(
                "user specified IP address is supported on user defined networks only — add --network NAME"
                    .into(),
            ));
        }
        if !opts.network_aliases.is_empty() && builtin {
            return Err(ContainerError::InvalidArgument(
                "network-scoped alias is supported only for containers in user defined networks — add --network NAME"
                    .into(),
            ));
        }
        Ok(network)
    }

    /// The name given (checked, and free), or a random free one. Called with the
    /// container list locked.
    fn unique_name(&self, given: Option<&str>) -> Result<String, ContainerError> {
        let taken: Vec<ContainerRecord> = self.records()?;
        let name = match given {
            Some(n) => {
                let n = n.trim_start_matches('/').to_string();
                if !names::is_valid(&n) {
                    return Err(ContainerError::InvalidName(n));
                }
                n
            }
            None => {
                let mut n = names::random();
                while taken.iter().any(|r| r.name == n) {
                    n = format!("{}{}", names::random(), rand::random::<u8>() % 100);
                }
                n
            }
        };
        if let Some(other) = taken.iter().find(|r| r.name == name) {
            return Err(ContainerError::NameInUse {
                name,
                id: other.id[..12].to_string(),
            });
        }
        Ok(name)
    }

    /// `update`: new limits (each `Some` replaces the old; 0 lifts it) and restart policy,
    /// applied to the running container's cgroups at once and recorded for its next runs.
    pub fn update(
        &self,
        name_or_id: &str,
        limits: &crate::Limits,
        restart: Option<crate::RestartPolicy>,
    ) -> Result<ContainerRecord, ContainerError> {
        let _lock = self.lock()?;
        let mut rec = self.find(name_or_id)?;
        let mut next = rec.host.limits();
        let set = |old: &mut Option<u64>, new: Option<u64>| {
            if let Some(n) = new {
                *old = (n > 0).then_some(n);
            }
        };
        set(&mut next.memory, limits.memory);
        set(&mut next.cpu_shares, limits.cpu_shares);
        if let Some(c) = limits.cpus {
            next.cpus = (c > 0.0).then_some(c);
        }
        if let Some(p) = limits.pids {
            next.pids = (p > 0).then_some(p);
        }
        if let Some(s) = limits.memory_swap {
            next.memory_swap = (s != 0).then_some(s);
        }
        if let Some(c) = &limits.cpuset_cpus {
            next.cpuset_cpus = Some(c.clone()).filter(|c| !c.is_empty());
        }
        check_limits(&next)?;
        if let Some(r) = &restart {
            if rec.host.auto_remove && r.name != RestartName::No {
                return Err(ContainerError::InvalidArgument(
                    "Restart policy cannot be updated because AutoRemove is enabled for the container — leave the restart policy as it is".into(),
                ));
            }
        }
        if self.status(&rec).is_running() {
            if let Some(cg) = berth_cgroups::Cgroup::open(&rec.id)? {
                cg.update(&cgroup_limits(&next))?;
            }
        }
        rec.host.memory = next.memory;
        rec.host.cpus = next.cpus;
        rec.host.pids_limit = next.pids;
        rec.host.cpu_shares = next.cpu_shares;
        rec.host.memory_swap = next.memory_swap;
        rec.host.cpuset_cpus = next.cpuset_cpus.clone();
        if let Some(r) = restart {
            rec.host.restart = r;
        }
        self.save(&rec)?;
        Ok(rec)
    }

    /// `--volumes-from NAME[:ro|:rw]`: that container's volumes and binds (not its tmpfs
    /// mounts) at the same paths, read-only with `:ro`; paths this container mounts itself
    /// keep its own. Another container's anonymous volume is shared, not owned: `rm -v` of
    /// this one leaves it.
    /// `--link NAME[:ALIAS]`: the containers named (they must exist), each with its alias
    /// (its name when none is given).
    fn links_of(&self, links: &[String]) -> Result<Vec<(String, String)>, ContainerError> {
        links
            .iter()
            .map(|l| {
                let (name, alias) = l.split_once(':').unwrap_or((l.as_str(), l.as_str()));
                let (name, alias) = (name.trim_start_matches('/'), alias.trim_start_matches('/'));
                if name.is_empty() || alias.is_empty() || alias.contains(['/', ' ']) {
                    return Err(ContainerError::InvalidArgument(format!(
                        "invalid link '{l}' — write NAME or NAME:ALIAS"
                    )));
                }
                let other = self.find(name)?;
                Ok((other.id, alias.to_string()))
            })
            .collect()
    }

    fn add_volumes_from(&self, mounts: &mut Vec<MountRecord>, from: &[String]) -> Result<(), ContainerError> {
        for spec in from {
            let (name, mode) = match spec.rsplit_once(':') {
                Some((n, m @ ("ro" | "rw"))) => (n, Some(m)),
                _ => (spec.as_str(), None),
            };
            let other = self.find(name)?;
            for m in other.host.mounts.iter().filter(|m| m.kind != MountKind::Tmpfs) {
                if mounts.iter().any(|own| own.destination == m.destination) {
                    continue;
                }
                mounts.push(MountRecord {
                    readonly: match mode {
                        Some("ro") => true,
                        Some(_) => false,
                        None => m.readonly,
                    },
                    anonymous: false,
                    ..m.clone()
                });
            }
        }
        Ok(())
    }

    /// `rename`: a new name, free and valid, for a container in any state. A running
    /// container answers to it on its networks at once (its peers' /etc/hosts too).
    pub fn rename(&self, name_or_id: &str, new_name: &str) -> Result<ContainerRecord, ContainerError> {
        let _lock = self.lock()?;
        let mut rec = self.find(name_or_id)?;
        let new_name = new_name.trim_start_matches('/');
        if new_name == rec.name {
            return Err(ContainerError::InvalidArgument(format!(
                "Renaming a container with the same name as its current name — {} is already called that",
                rec.name
            )));
        }
        let new_name = self.unique_name(Some(new_name))?;
        let old = std::mem::replace(&mut rec.name, new_name);
        self.save(&rec)?;
        if self.status(&rec).is_running() {
            for a in rec.attachments() {
                let names = super::networks::endpoint_names(&rec, &a);
                if let Err(e) = self.net.set_names(&rec.id, &a.name, &names) {
                    tracing::warn!(container = %rec.name, "cannot rename on network {}: {e}", a.name);
                }
                self.refresh_after_network_change(&rec, &a.name);
            }
        }
        let mut event = rec.clone();
        event.config.labels.insert("oldName".into(), format!("/{old}"));
        self.emit(berth_events::Action::Rename, &event);
        Ok(rec)
    }

    /// Writes the container's directory. Made whole in a directory of its own, then renamed
    /// into place: a create that is cut short leaves no half container, only a
    /// `.new-<pid>-` directory that the next engine sweeps (see `sweep_unfinished`).
    fn write_new(&self, record: &ContainerRecord) -> Result<(), ContainerError> {
        let staging = ContainerPaths {
            dir: self
                .root
                .join("containers")
                .join(format!(".new-{}-{}", std::process::id(), record.id)),
        };
        let made = self.fill_new(record, &staging);
        if made.is_err() {
            // A create that fails leaves nothing, not even for the next engine to sweep.
            let _ = std::fs::remove_dir_all(&staging.dir);
        }
        made
    }

    fn fill_new(&self, record: &ContainerRecord, staging: &ContainerPaths) -> Result<(), ContainerError> {
        let p = self.paths(&record.id);
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
        self.save_in(staging, record)?;
        std::fs::rename(&staging.dir, &p.dir)
            .and_then(|()| std::fs::File::open(self.root.join("containers"))?.sync_all())
            .map_err(ContainerError::io(format!(
                "cannot create container {}",
                record.name
            )))
    }
}

/// docker's Entrypoint/Cmd rules: a given Entrypoint replaces the image's and drops its
/// Cmd (an empty one clears it); a given Cmd replaces the image's.
fn command(opts: &ContainerConfig, ic: &ImageConfig) -> Result<(Vec<String>, Vec<String>), ContainerError> {
    let given_cmd = opts.cmd.clone().filter(|c| !c.is_empty());
    let entrypoint = match &opts.entrypoint {
        Some(e) => e.clone(),
        None => ic.entrypoint().clone().unwrap_or_default(),
    };
    let cmd = match (given_cmd, &opts.entrypoint) {
        (Some(c), _) => c,
        (None, Some(_)) => Vec::new(),
        (None, None) => ic.cmd().clone().unwrap_or_default(),
    };
    if entrypoint.is_empty() && cmd.is_empty() {
        return Err(ContainerError::InvalidArgument(format!(
            "no command specified: image {} has no CMD or ENTRYPOINT — give one after the image name",
            opts.image
        )));
    }
    Ok((entrypoint, cmd))
}

/// The image's Env, then the given `KEY=value`s, each replacing an earlier value of its
/// key; PATH if none set it. A bare `KEY` (no `=`) sets nothing: clients resolve those
/// from their own environment, as the docker CLI does.
fn environment(opts: &ContainerConfig, ic: &ImageConfig) -> Result<Vec<String>, ContainerError> {
    let mut env = ic.env().clone().unwrap_or_default();
    for kv in &opts.env {
        let Some((k, v)) = kv.split_once('=') else {
            continue;
        };
        if k.is_empty() {
            return Err(ContainerError::InvalidArgument(format!(
                "invalid environment variable '{kv}': use KEY=value"
            )));
        }
        env.retain(|e| e.split_once('=').map(|(ek, _)| ek) != Some(k));
        env.push(format!("{k}={v}"));
    }
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    }
    Ok(env)
}

/// The published ports and the exposed ones (the image's, the asked-for and the
/// published); `publish_all` publishes every exposed port not mapped yet on a free port.
fn ports(opts: &ContainerConfig, ic: &ImageConfig) -> (Vec<PortSpec>, Vec<String>) {
    let mut publish = opts.ports.clone();
    let mut exposed: Vec<String> = ic.exposed_ports().clone().unwrap_or_default();
    let more = opts.exposed_ports.iter().copied();
    for (port, proto) in more.chain(publish.iter().map(|p| (p.container_port, p.proto))) {
        let key = format!("{port}/{proto}");
        if !exposed.contains(&key) {
            exposed.push(key);
        }
    }
    if opts.publish_all {
        for key in &exposed {
            let (port, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
            let Ok(port) = port.parse::<u16>() else { continue };
            let proto = if proto == "udp" { Proto::Udp } else { Proto::Tcp };
            if !publish
                .iter()
                .any(|p| p.container_port == port && p.proto == proto)
            {
                publish.push(PortSpec {
                    host_ip: std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                    host_port: 0,
                    container_port: port,
                    proto,
                });
            }
        }
    }
    (publish, exposed)
}

/// The asked-for mounts, plus an anonymous volume for each of the image's VOLUMEs not
/// mounted otherwise. Anonymous volumes get their name now, so a restart finds the same
/// data; bind sources must be absolute and exist.
fn mounts(opts: &ContainerConfig, ic: &ImageConfig) -> Result<Vec<MountRecord>, ContainerError> {
    let mut mounts: Vec<MountRecord> = opts.mounts.iter().map(record_of).collect::<Result<_, _>>()?;
    for dest in ic.volumes().clone().unwrap_or_default() {
        if !mounts.iter().any(|m| m.destination == dest) {
            mounts.push(MountRecord {
                source: String::new(),
                destination: dest,
                readonly: false,
                kind: MountKind::Volume,
                anonymous: true,
                propagation: None,
            });
        }
    }
    for m in &mut mounts {
        if m.kind == MountKind::Volume && m.source.is_empty() {
            m.source = random_id();
            m.anonymous = true;
        }
    }
    Ok(mounts)
}

fn record_of(m: &MountSpec) -> Result<MountRecord, ContainerError> {
    let bad = |why: String| ContainerError::InvalidArgument(why);
    if !m.target.starts_with('/') {
        return Err(bad(format!(
            "invalid mount target '{}': the container path must be absolute, e.g. /data",
            m.target
        )));
    }
    match m.kind {
        MountKind::Bind if !m.source.starts_with('/') => {
            return Err(bad(format!(
                "invalid bind mount source '{}': use an absolute host path, e.g. /home/me/app",
                m.source
            )))
        }
        MountKind::Bind if !Path::new(&m.source).exists() => {
            return Err(bad(format!(
                "bind mount source path does not exist: {} — create it first or fix the path",
                m.source
            )))
        }
        MountKind::Volume if !m.source.is_empty() && !names::is_valid(&m.source) => {
            return Err(bad(format!(
                "invalid volume name '{}': a volume name uses letters, digits, '_', '.' and '-'",
                m.source
            )))
        }
        _ => {}
    }
    Ok(MountRecord {
        source: m.source.clone(),
        destination: m.target.clone(),
        readonly: m.readonly,
        kind: m.kind,
        anonymous: false,
        propagation: m.propagation.filter(|_| m.kind == MountKind::Bind),
    })
}

/// Refuses limits the machine cannot apply (a rootless engine without delegated cgroups)
/// and values docker refuses, before anything is made or changed.
impl ContainerService {
    /// `--pid` and `--uts`: docker's values, and another container that exists.
    fn check_namespace_modes(&self, opts: &ContainerConfig) -> Result<(), ContainerError> {
        match opts.pid_mode.as_deref().unwrap_or("") {
            "" => {}
            "host" if berth_host::privilege::in_user_namespace() => {
                return Err(ContainerError::InvalidArgument(
                    "--pid host cannot be used by an ordinary user's engine: its containers may not see this computer's processes — leave --pid out, or use Berth as root".into(),
                ))
            }
            "host" => {}
            other => match other.strip_prefix("container:") {
                Some(name) if !name.is_empty() => {
                    self.find(name)?;
                }
                _ => {
                    return Err(ContainerError::InvalidArgument(format!(
                        "invalid PID mode: {other} — use host or container:NAME"
                    )))
                }
            },
        }
        match opts.uts_mode.as_deref().unwrap_or("") {
            "" | "host" => {}
            other => {
                return Err(ContainerError::InvalidArgument(format!(
                    "invalid UTS mode: {other} — use host or leave it out"
                )))
            }
        }
        match opts.ipc_mode.as_deref().unwrap_or("") {
            "" | "private" | "shareable" | "none" => Ok(()),
            "host" if berth_host::privilege::in_user_namespace() => Err(ContainerError::InvalidArgument(
                "--ipc host cannot be used by an ordinary user's engine: its containers may not share this computer's IPC — leave --ipc out, or use Berth as root".into(),
            )),
            "host" => Ok(()),
            other => match other.strip_prefix("container:") {
                Some(name) if !name.is_empty() => self.find(name).map(|_| ()),
                _ => Err(ContainerError::InvalidArgument(format!(
                    "invalid IPC mode: {other} — use private, shareable, none, host or container:NAME"
                ))),
            },
        }
    }
}

/// `--add-host`, `--dns` and `--cap-add`/`--cap-drop` as docker checks them.
fn check_host_settings(opts: &ContainerConfig) -> Result<(), ContainerError> {
    crate::record::security_options(&opts.security_opt)?;
    for h in &opts.extra_hosts {
        let ok = h
            .split_once(':')
            .filter(|(name, _)| !name.is_empty())
            .is_some_and(|(_, ip)| ip == "host-gateway" || ip.parse::<std::net::IpAddr>().is_ok());
        if !ok {
            return Err(ContainerError::InvalidArgument(format!(
                "invalid --add-host {h}: use NAME:IP, e.g. db:10.0.0.5 or host.docker.internal:host-gateway"
            )));
        }
    }
    for key in opts.sysctls.keys() {
        let ipc = matches!(
            key.as_str(),
            "kernel.msgmax"
                | "kernel.msgmnb"
                | "kernel.msgmni"
                | "kernel.sem"
                | "kernel.shmall"
                | "kernel.shmmax"
                | "kernel.shmmni"
                | "kernel.shm_rmid_forced"
        ) || key.starts_with("fs.mqueue.");
        let net = key.starts_with("net.");
        let shared = |mode: &Option<String>| {
            mode.as_deref()
                .is_some_and(|m| m == "host" || m.starts_with("container:"))
        };
        let why = if !(ipc || net) || key.contains("..") || key.contains('/') {
            Some("it is not namespaced: it would change this computer, not the container".to_string())
        } else if net && shared(&opts.network) {
            Some(
                "the container shares another's network namespace (--network host or container:)".to_string(),
            )
        } else if ipc && shared(&opts.ipc_mode) {
            Some("the container shares another's IPC namespace (--ipc host or container:)".to_string())
        } else {
            None
        };
        if let Some(why) = why {
            return Err(ContainerError::InvalidArgument(format!(
                "sysctl '{key}' is not allowed: {why} — leave it out"
            )));
        }
    }
    if let Some(d) = opts.dns.iter().find(|d| d.parse::<std::net::IpAddr>().is_err()) {
        return Err(ContainerError::InvalidArgument(format!(
            "invalid --dns {d}: give a name server's IP address, e.g. 1.1.1.1"
        )));
    }
    let norm = |v: &[String]| {
        v.iter()
            .map(|c| berth_runtime::normalize_capability(c))
            .collect::<Vec<_>>()
    };
    berth_runtime::capability_mask(&norm(&opts.cap_add), &norm(&opts.cap_drop)).map_err(|e| {
        ContainerError::InvalidArgument(format!("{e} — use names such as NET_ADMIN or SYS_TIME"))
    })?;
    Ok(())
}

pub(super) fn check_limits(l: &crate::Limits) -> Result<(), ContainerError> {
    if l.cpus.is_some_and(|c| !c.is_finite() || c < 0.0) {
        return Err(ContainerError::InvalidArgument(
            "invalid cpus limit — use a positive number such as 1.5".into(),
        ));
    }
    if let Some(swap) = l.memory_swap.filter(|s| *s > 0) {
        if l.memory.is_none_or(|m| (swap as u64) < m) {
            return Err(ContainerError::InvalidArgument(
                "Minimum memoryswap limit should be larger than memory limit, see usage — give --memory too, and --memory-swap at least as large".into(),
            ));
        }
    }
    berth_cgroups::check_applicable(&cgroup_limits(l))?;
    Ok(())
}

/// The engine's limits as the cgroup crate takes them.
pub(super) fn cgroup_limits(l: &crate::Limits) -> berth_cgroups::Limits {
    berth_cgroups::Limits {
        memory_bytes: l.memory.filter(|m| *m > 0),
        memory_swap_bytes: l.memory_swap.filter(|s| *s != 0),
        cpus: l.cpus.filter(|c| *c > 0.0),
        cpu_shares: l.cpu_shares.filter(|s| *s > 0),
        pids_limit: l.pids.filter(|p| *p > 0),
        cpuset_cpus: l.cpuset_cpus.clone(),
        swappiness: l.swappiness,
    }
}

/// Where `--init`'s binary is inside the container, as in docker.
pub(super) const INIT_PATH: &str = "/sbin/docker-init";

/// The static tini `--init` runs (`BERTH_INIT` overrides), refused in one sentence when
/// it is missing.
pub(super) fn init_binary() -> Result<std::path::PathBuf, ContainerError> {
    let candidates = std::env::var_os("BERTH_INIT")
        .map(std::path::PathBuf::from)
        .into_iter()
        .chain(
            [
                "/usr/bin/tini-static",
                "/usr/bin/docker-init",
                "/usr/libexec/docker/docker-init",
            ]
            .map(Into::into),
        );
    for c in candidates {
        if c.is_file() {
            return Ok(c);
        }
    }
    Err(ContainerError::InvalidArgument(
        "--init needs a static tini, which is missing — install the tini package (apt install tini)".into(),
    ))
}
