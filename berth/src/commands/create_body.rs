//! `run`/`create` flags → the Engine API's create body, as the docker CLI builds it.

use std::collections::HashMap;

use anyhow::{bail, Context};
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, HostConfigLogConfig, Mount, MountType,
    NetworkingConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
};

use crate::cli::RunArgs;

pub(crate) fn key_values(items: &[String]) -> HashMap<String, String> {
    items
        .iter()
        .map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .unwrap_or((l.clone(), String::new()))
        })
        .collect()
}

/// `--env-file`: `KEY=value` lines; a bare `KEY` takes this process's value (skipped when
/// unset); blank lines and `#` comments are ignored, as docker does.
fn env_file(path: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the env file {} — check the path", path.display()))?;
    let mut env = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once('=') {
            Some(("", _)) => bail!(
                "{} line {}: the variable has no name — use KEY=value",
                path.display(),
                n + 1
            ),
            Some(_) => env.push(line.to_string()),
            None => {
                if line.contains(char::is_whitespace) {
                    bail!(
                        "{} line {}: variable '{line}' contains whitespace — use KEY=value",
                        path.display(),
                        n + 1
                    );
                }
                if let Ok(v) = std::env::var(line) {
                    env.push(format!("{line}={v}"));
                }
            }
        }
    }
    Ok(env)
}

/// `--mount type=bind,source=/a,target=/b,readonly` (docker's keys and aliases).
fn mount(spec: &str) -> anyhow::Result<Mount> {
    let mut m = Mount {
        typ: Some(MountType::VOLUME),
        ..Default::default()
    };
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (k, v) = field.split_once('=').unwrap_or((field, ""));
        match k {
            "type" => {
                m.typ = Some(match v {
                    "bind" => MountType::BIND,
                    "volume" => MountType::VOLUME,
                    "tmpfs" => MountType::TMPFS,
                    other => bail!("invalid --mount type '{other}' — use bind, volume or tmpfs"),
                })
            }
            "source" | "src" => m.source = Some(v.to_string()),
            "target" | "dst" | "destination" => m.target = Some(v.to_string()),
            "readonly" | "ro" => m.read_only = Some(!matches!(v, "false" | "0")),
            other => {
                bail!("invalid --mount field '{other}' in '{spec}' — use type, source, target and readonly")
            }
        }
    }
    if let (Some(MountType::BIND), Some(src)) = (&m.typ, &m.source) {
        if !src.starts_with('/') {
            // A relative bind source means a path here, not on the engine's side.
            let abs = std::path::absolute(src)
                .with_context(|| format!("cannot make --mount source {src} absolute — give the full path"))?;
            m.source = Some(abs.to_string_lossy().to_string());
        }
    }
    if m.target.as_deref().is_none_or(str::is_empty) {
        bail!("invalid --mount '{spec}': a target is required, e.g. type=bind,source=/data,target=/data");
    }
    Ok(m)
}

/// `-v ./app:/app`: a bind source that is a relative (or `~`) path is made absolute here,
/// where the path means something; the engine takes absolute binds and volume names only.
fn absolute_bind(spec: &str) -> anyhow::Result<String> {
    let Some((source, rest)) = spec.split_once(':') else {
        return Ok(spec.to_string());
    };
    let path = if source == "~" || source.starts_with("~/") {
        let home =
            std::env::var("HOME").context("cannot expand ~ in -v: HOME is not set — give the full path")?;
        format!("{home}{}", &source[1..])
    } else if source.starts_with('.') {
        std::path::absolute(source)
            .with_context(|| format!("cannot make -v source {source} absolute — give the full path"))?
            .to_string_lossy()
            .to_string()
    } else {
        return Ok(spec.to_string());
    };
    Ok(format!("{path}:{rest}"))
}

type PortMap = HashMap<String, Option<Vec<PortBinding>>>;

/// `-p` specs → (exposed ports, port bindings).
pub(crate) fn port_bindings(publish: &[String]) -> anyhow::Result<(Vec<String>, PortMap)> {
    let mut bindings: PortMap = HashMap::new();
    let mut exposed = Vec::new();
    for p in publish {
        for spec in berth_units::parse_publish(p)? {
            let proto = match spec.proto {
                berth_units::Proto::Udp => "udp",
                berth_units::Proto::Tcp => "tcp",
            };
            let key = format!("{}/{proto}", spec.container_port);
            if !exposed.contains(&key) {
                exposed.push(key.clone());
            }
            let ip = if spec.host_ip.is_unspecified() {
                String::new()
            } else {
                spec.host_ip.to_string()
            };
            let port = if spec.host_port == 0 {
                String::new()
            } else {
                spec.host_port.to_string()
            };
            bindings
                .entry(key)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: Some(ip),
                    host_port: Some(port),
                });
        }
    }
    Ok((exposed, bindings))
}

pub(crate) fn restart_policy(r: &str) -> anyhow::Result<RestartPolicy> {
    let (name, max) = r.split_once(':').unwrap_or((r, ""));
    let name = match name {
        "no" => RestartPolicyNameEnum::NO,
        "always" => RestartPolicyNameEnum::ALWAYS,
        "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
        "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
        _ => bail!("invalid restart policy '{r}' — use no, always, unless-stopped or on-failure[:N]"),
    };
    let max = match max {
        "" => None,
        n => Some(n.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            anyhow::anyhow!(
                "invalid restart policy '{r}': the retry count must be a number, e.g. on-failure:3"
            )
        })?),
    };
    if max.is_some() && name != RestartPolicyNameEnum::ON_FAILURE {
        bail!("invalid restart policy '{r}': only on-failure takes a retry count");
    }
    Ok(RestartPolicy {
        name: Some(name),
        maximum_retry_count: max,
    })
}

pub fn create_body(a: &RunArgs) -> anyhow::Result<ContainerCreateBody> {
    let (exposed, bindings) = port_bindings(&a.publish)?;
    let (binds, anonymous): (Vec<String>, Vec<String>) = a
        .volume
        .iter()
        .map(|v| absolute_bind(v))
        .collect::<anyhow::Result<Vec<_>>>()?
        .into_iter()
        .partition(|v| v.contains(':'));
    let mounts = a
        .mount
        .iter()
        .map(|m| mount(m))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut env = Vec::new();
    for f in &a.env_file {
        env.extend(env_file(f)?);
    }
    // A bare `-e NAME` takes this shell's value (and is left out when unset), as docker's does.
    env.extend(a.env.iter().filter_map(|e| match e.contains('=') {
        true => Some(e.clone()),
        false => std::env::var(e).ok().map(|v| format!("{e}={v}")),
    }));
    let restart = a.restart.as_deref().map(restart_policy).transpose()?;
    let labels = key_values(&a.label);
    let memory = a.memory.as_deref().map(berth_units::parse_size).transpose()?;
    let cpus = a
        .cpus
        .as_deref()
        .map(|c| {
            c.parse::<f64>()
                .ok()
                .filter(|c| *c > 0.0)
                .ok_or_else(|| anyhow::anyhow!("invalid --cpus '{c}': use a positive number like 1.5"))
        })
        .transpose()?;
    let log_config = (!a.log_opt.is_empty()).then(|| HostConfigLogConfig {
        typ: Some("json-file".into()),
        config: Some(key_values(&a.log_opt)),
    });
    if !a.network_alias.is_empty()
        && a.network
            .as_deref()
            .is_none_or(|n| matches!(n, "bridge" | "host" | "none"))
    {
        bail!("network-scoped aliases are only supported for user defined networks — create one with `berth network create NAME` and use --network NAME");
    }
    if (a.ip.is_some() || a.ip6.is_some())
        && a.network
            .as_deref()
            .is_none_or(|n| matches!(n, "bridge" | "host" | "none"))
    {
        bail!("user specified IP address is supported on user defined networks only — create one with `berth network create --subnet CIDR NAME` and use --network NAME");
    }
    let fixed = !a.network_alias.is_empty() || a.ip.is_some() || a.ip6.is_some() || a.mac_address.is_some();
    let networking_config = match a
        .network
        .clone()
        .or(a.mac_address.as_ref().map(|_| "bridge".into()))
    {
        Some(net) if fixed => Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                net,
                EndpointSettings {
                    aliases: (!a.network_alias.is_empty()).then(|| a.network_alias.clone()),
                    mac_address: a.mac_address.clone(),
                    ipam_config: (a.ip.is_some() || a.ip6.is_some()).then(|| {
                        bollard::models::EndpointIpamConfig {
                            ipv4_address: a.ip.clone(),
                            ipv6_address: a.ip6.clone(),
                            ..Default::default()
                        }
                    }),
                    ..Default::default()
                },
            )])),
        }),
        _ => None,
    };
    let healthcheck = healthcheck(a)?;
    Ok(ContainerCreateBody {
        healthcheck,
        stop_signal: a.stop_signal.clone(),
        stop_timeout: a.stop_timeout,
        image: Some(a.image.clone()),
        cmd: (!a.command.is_empty()).then(|| a.command.clone()),
        entrypoint: a
            .entrypoint
            .as_ref()
            .map(|e| if e.is_empty() { Vec::new() } else { vec![e.clone()] }),
        env: (!env.is_empty()).then_some(env),
        working_dir: a.workdir.clone(),
        user: a.user.clone(),
        hostname: a.hostname.clone(),
        labels: (!labels.is_empty()).then_some(labels),
        tty: Some(a.tty),
        open_stdin: Some(a.interactive),
        stdin_once: Some(a.interactive && !a.detach),
        attach_stdin: Some(a.interactive && !a.detach),
        attach_stdout: Some(!a.detach),
        attach_stderr: Some(!a.detach),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        volumes: (!anonymous.is_empty()).then_some(anonymous),
        networking_config,
        host_config: Some(HostConfig {
            init: a.init.then_some(true),
            pid_mode: a.pid.clone(),
            uts_mode: a.uts.clone(),
            ipc_mode: a.ipc.clone(),
            extra_hosts: (!a.add_host.is_empty()).then(|| a.add_host.clone()),
            dns: (!a.dns.is_empty()).then(|| a.dns.clone()),
            dns_search: (!a.dns_search.is_empty()).then(|| a.dns_search.clone()),
            dns_options: (!a.dns_option.is_empty()).then(|| a.dns_option.clone()),
            shm_size: a
                .shm_size
                .as_deref()
                .map(|s| {
                    berth_units::parse_size(s)
                        .map(|b| b as i64)
                        .map_err(|e| anyhow::anyhow!("invalid --shm-size {s}: {e}"))
                })
                .transpose()?,
            cap_add: (!a.cap_add.is_empty()).then(|| a.cap_add.clone()),
            cap_drop: (!a.cap_drop.is_empty()).then(|| a.cap_drop.clone()),
            readonly_rootfs: a.read_only.then_some(true),
            security_opt: (!a.security_opt.is_empty()).then(|| a.security_opt.clone()),
            sysctls: (!a.sysctl.is_empty()).then(|| key_values(&a.sysctl).into_iter().collect()),
            links: (!a.link.is_empty()).then(|| a.link.clone()),
            port_bindings: (!bindings.is_empty()).then_some(bindings),
            publish_all_ports: Some(a.publish_all),
            binds: (!binds.is_empty()).then_some(binds),
            mounts: (!mounts.is_empty()).then_some(mounts),
            network_mode: a.network.clone(),
            memory: memory.map(|m| m as i64),
            nano_cpus: cpus.map(|c| (c * 1e9) as i64),
            pids_limit: a.pids_limit,
            memory_swap: match a.memory_swap.as_deref() {
                None => None,
                Some("-1") => Some(-1),
                Some(s) => Some(berth_units::parse_size(s)? as i64),
            },
            memory_swappiness: a.memory_swappiness,
            cpu_shares: a.cpu_shares,
            cpuset_cpus: a.cpuset_cpus.clone(),
            tmpfs: (!a.tmpfs.is_empty()).then(|| {
                a.tmpfs
                    .iter()
                    .map(|t| match t.split_once(':') {
                        Some((path, opts)) => (path.to_string(), opts.to_string()),
                        None => (t.clone(), String::new()),
                    })
                    .collect()
            }),
            group_add: (!a.group_add.is_empty()).then(|| a.group_add.clone()),
            restart_policy: restart,
            auto_remove: Some(a.rm),
            log_config,
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// `--health-*` and `--no-healthcheck` as docker's `Healthcheck` (durations in ns).
fn healthcheck(a: &RunArgs) -> anyhow::Result<Option<bollard::models::HealthConfig>> {
    let dur = |flag: &str, v: &Option<String>| -> anyhow::Result<Option<i64>> {
        v.as_deref()
            .map(|text| {
                berth_units::go_duration(text)
                    .map(|d| d.as_nanos() as i64)
                    .ok_or_else(|| {
                        anyhow::anyhow!("--{flag}={text} is not a duration — write e.g. 30s, 1m30s or 500ms")
                    })
            })
            .transpose()
    };
    let given = a.health_cmd.is_some()
        || a.health_interval.is_some()
        || a.health_timeout.is_some()
        || a.health_retries.is_some()
        || a.health_start_period.is_some();
    if a.no_healthcheck {
        if given {
            bail!("--no-healthcheck conflicts with the --health-* options — use one or the other");
        }
        return Ok(Some(bollard::models::HealthConfig {
            test: Some(vec!["NONE".into()]),
            ..Default::default()
        }));
    }
    if !given {
        return Ok(None);
    }
    Ok(Some(bollard::models::HealthConfig {
        test: a.health_cmd.clone().map(|c| vec!["CMD-SHELL".into(), c]),
        interval: dur("health-interval", &a.health_interval)?,
        timeout: dur("health-timeout", &a.health_timeout)?,
        retries: a.health_retries,
        start_period: dur("health-start-period", &a.health_start_period)?,
        ..Default::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_take_dockers_keys_and_need_a_target() {
        let m = mount("type=bind,src=/a,dst=/b,ro").unwrap();
        assert_eq!(m.typ, Some(MountType::BIND));
        assert_eq!(m.source.as_deref(), Some("/a"));
        assert_eq!(m.target.as_deref(), Some("/b"));
        assert_eq!(m.read_only, Some(true));
        assert!(mount("type=bind,source=/a")
            .unwrap_err()
            .to_string()
            .contains("target"));
        assert!(mount("type=nfs,target=/a")
            .unwrap_err()
            .to_string()
            .contains("nfs"));
    }

    #[test]
    fn relative_bind_sources_become_absolute_here() {
        let here = std::env::current_dir().unwrap().display().to_string();
        assert_eq!(
            absolute_bind("./app:/app:ro").unwrap(),
            format!("{here}/app:/app:ro")
        );
        assert_eq!(absolute_bind("/srv:/srv").unwrap(), "/srv:/srv");
        assert_eq!(absolute_bind("data:/data").unwrap(), "data:/data");
        assert_eq!(absolute_bind("/only-a-target").unwrap(), "/only-a-target");
        let home = std::env::var("HOME").unwrap();
        assert_eq!(absolute_bind("~/src:/src").unwrap(), format!("{home}/src:/src"));
        let m = mount("type=bind,source=rel,target=/x").unwrap();
        assert_eq!(m.source, Some(format!("{here}/rel")));
    }

    #[test]
    fn restart_policies_as_docker_spells_them() {
        let r = restart_policy("on-failure:3").unwrap();
        assert_eq!(r.name, Some(RestartPolicyNameEnum::ON_FAILURE));
        assert_eq!(r.maximum_retry_count, Some(3));
        assert!(restart_policy("always:2").is_err());
        assert!(restart_policy("sometimes").is_err());
        assert!(restart_policy("on-failure:x").is_err());
    }

    #[test]
    fn env_files_skip_comments_and_take_bare_names_from_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("env");
        std::fs::write(&f, "# comment\n\nA=1\nPATH\nBERTH_SURELY_UNSET_VAR\n").unwrap();
        let env = env_file(&f).unwrap();
        assert_eq!(env[0], "A=1");
        assert!(env[1].starts_with("PATH="));
        assert_eq!(env.len(), 2);
        std::fs::write(&f, "=x\n").unwrap();
        assert!(env_file(&f).is_err());
    }
}
