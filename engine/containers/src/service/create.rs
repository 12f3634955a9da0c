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
        let mounts = mounts(opts, &ic)?;
        if opts.limits.cpus.is_some_and(|c| !c.is_finite() || c < 0.0) {
            return Err(ContainerError::InvalidArgument(
                "invalid cpus limit — use a positive number such as 1.5".into(),
            ));
        }
        // A rootless engine without delegated cgroups refuses limits here, before any record.
        berth_cgroups::check_applicable(&berth_cgroups::Limits {
            memory_bytes: opts.limits.memory.filter(|m| *m > 0),
            cpus: opts.limits.cpus.filter(|c| *c > 0.0),
            pids_limit: opts.limits.pids.filter(|p| *p > 0),
            ..Default::default()
        })?;
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
                stop_signal: ic.stop_signal().clone(),
                image_volumes: ic.volumes().clone().unwrap_or_default(),
            },
            host: HostConfig {
                publish,
                publish_all: opts.publish_all,
                mounts,
                network: network.clone(),
                memory: opts.limits.memory.filter(|m| *m > 0),
                cpus: opts.limits.cpus.filter(|c| *c > 0.0),
                pids_limit: opts.limits.pids.filter(|p| *p > 0),
                restart: opts.restart,
                auto_remove: opts.auto_remove,
                log_max_size: opts.log.max_size,
                log_max_files: opts.log.max_files,
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
    })
}
