//! `create`: a record from the image's config and the user's options, in docker's terms
//! (Entrypoint/Cmd/Env/WorkingDir/User/ExposedPorts/Volumes), made whole in a staging
//! directory and renamed into place.

use std::path::{Path, PathBuf};

use berth_oci::ContainerConfig;

use super::parse::{parse_log_opts, parse_mount, parse_restart, parse_volume};
use super::{now_nanos, random_id, ContainerService};
use crate::record::*;
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

impl ContainerService {
    pub fn create(&self, opts: &CreateOptions) -> Result<ContainerRecord, ContainerError> {
        let image = self.images.resolve(&opts.image)?;
        let config = self.images.config(&image)?;
        let ic = config.config().cloned().unwrap_or_default();

        let (entrypoint, cmd) = command(opts, &ic)?;
        let env = environment(opts, &ic)?;
        let (publish, exposed) = ports(opts, &ic)?;
        let mounts = mounts(opts, &ic)?;
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
        let network = self.network_of(opts)?;
        let mut labels: std::collections::BTreeMap<String, String> =
            ic.labels().clone().unwrap_or_default().into_iter().collect();
        for l in &opts.labels {
            let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
            labels.insert(k.to_string(), v.to_string());
        }

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
                    .workdir
                    .clone()
                    .or(ic.working_dir().clone())
                    .filter(|w| !w.is_empty())
                    .unwrap_or_else(|| "/".into()),
                user: opts.user.clone().or(ic.user().clone()).unwrap_or_default(),
                hostname: opts.hostname.clone().unwrap_or_else(|| id[..12].to_string()),
                tty: opts.tty,
                open_stdin: opts.interactive,
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
        self.write_new(&record)?;
        Ok(record)
    }

    /// `--network` (the default bridge if none), checked to exist, and `--network-alias`
    /// allowed only on a user network.
    fn network_of(&self, opts: &CreateOptions) -> Result<String, ContainerError> {
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
        let p = self.paths(&record.id);
        let staging = ContainerPaths {
            dir: self
                .root
                .join("containers")
                .join(format!(".new-{}-{}", std::process::id(), record.id)),
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
        self.save_in(&staging, record)?;
        std::fs::rename(&staging.dir, &p.dir).map_err(ContainerError::io(format!(
            "cannot create container {}",
            record.name
        )))
    }
}

/// docker's Entrypoint/Cmd rules: `--entrypoint` replaces the image's and drops its Cmd
/// ("" clears it); arguments after the image replace the Cmd.
fn command(opts: &CreateOptions, ic: &ContainerConfig) -> Result<(Vec<String>, Vec<String>), ContainerError> {
    let entrypoint: Vec<String> = match &opts.entrypoint {
        Some(e) if e.is_empty() => Vec::new(),
        Some(e) => vec![e.clone()],
        None => ic.entrypoint().clone().unwrap_or_default(),
    };
    let cmd: Vec<String> = if !opts.cmd.is_empty() {
        opts.cmd.clone()
    } else if opts.entrypoint.is_some() {
        Vec::new()
    } else {
        ic.cmd().clone().unwrap_or_default()
    };
    if entrypoint.is_empty() && cmd.is_empty() {
        return Err(ContainerError::InvalidArgument(format!(
            "no command specified: image {} has no CMD or ENTRYPOINT — give one after the image name",
            opts.image
        )));
    }
    Ok((entrypoint, cmd))
}

/// The image's Env, then `--env-file`s, then `-e`s (a bare `NAME` takes this process's
/// value, or is skipped), each replacing an earlier value; PATH if none set it.
fn environment(opts: &CreateOptions, ic: &ContainerConfig) -> Result<Vec<String>, ContainerError> {
    let mut env = ic.env().clone().unwrap_or_default();
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
    Ok(env)
}

/// `-p` mappings and the exposed ports (the image's plus the published ones); `-P`
/// publishes every exposed port not mapped yet on a random host port.
fn ports(
    opts: &CreateOptions,
    ic: &ContainerConfig,
) -> Result<(Vec<PortMapping>, Vec<String>), ContainerError> {
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
    let mut exposed: Vec<String> = ic.exposed_ports().clone().unwrap_or_default();
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
    Ok((publish, exposed))
}

/// `-v` and `--mount`, plus an anonymous volume for each of the image's VOLUMEs not
/// mounted otherwise. Anonymous volumes get their name now, so a restart finds the same
/// data; bind sources must exist.
fn mounts(opts: &CreateOptions, ic: &ContainerConfig) -> Result<Vec<MountRecord>, ContainerError> {
    let mut mounts = Vec::new();
    for v in &opts.volumes {
        mounts.push(parse_volume(v)?);
    }
    for m in &opts.mounts {
        mounts.push(parse_mount(m)?);
    }
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
    for m in &mounts {
        if m.kind == MountKind::Bind && !Path::new(&m.source).exists() {
            return Err(ContainerError::InvalidArgument(format!(
                "bind mount source path does not exist: {} — create it first or fix the path",
                m.source
            )));
        }
    }
    Ok(mounts)
}
