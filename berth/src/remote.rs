//! The CLI through the Docker Engine API: with `BERTH_HOST=unix:///path.sock` (or
//! `tcp://127.0.0.1:PORT`) the commands below are executed by that engine — a `berth
//! daemon`, or any Docker-compatible engine — through `bollard`, instead of in-process.
//! Commands not listed here say so rather than silently running locally.

use std::collections::HashMap;
use std::io::Write;

use anyhow::{bail, Context};
use bollard::models::{ContainerCreateBody, HostConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum};
use bollard::query_parameters as qp;
use bollard::Docker;
use futures_util::StreamExt;

use crate::cli::{
    Cli, Command, ContainerCommand, ImageCommand, InspectArgs, NetworkCommand, RunArgs, VolumeCommand,
};

/// The engine to drive instead of the local one, from `BERTH_HOST`.
pub fn target() -> Option<String> {
    std::env::var("BERTH_HOST").ok().filter(|h| !h.trim().is_empty())
}

async fn connect(host: &str) -> anyhow::Result<Docker> {
    let docker = if host.starts_with("unix://") {
        Docker::connect_with_unix(host, 120, bollard::API_DEFAULT_VERSION)
    } else if host.starts_with("tcp://") || host.starts_with("http://") {
        Docker::connect_with_http(host, 120, bollard::API_DEFAULT_VERSION)
    } else {
        bail!("BERTH_HOST '{host}' is not supported: use unix:///path/to/berth.sock or tcp://127.0.0.1:PORT");
    }
    .with_context(|| format!("cannot reach the engine at {host} — is `berth daemon` running there?"))?;
    docker.negotiate_version().await.with_context(|| {
        format!("the engine at {host} does not answer the Docker API — is `berth daemon` running there?")
    })
}

/// The engine's error message (docker's `{"message": …}`), as one sentence.
fn api_error(e: bollard::errors::Error) -> anyhow::Error {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => anyhow::anyhow!(message),
        // An `error` line of a progress stream (pull, push).
        bollard::errors::Error::DockerStreamError { error } => anyhow::anyhow!(error),
        other => anyhow::anyhow!("the engine request failed: {other}"),
    }
}

/// Runs a command against the engine at `host`; the returned code is the exit code.
pub async fn run(cli: Cli, host: &str) -> anyhow::Result<u8> {
    let d = connect(host).await?;
    match cli.command {
        Command::Ps(a) | Command::Container(ContainerCommand::Ls(a)) => {
            let mut filters: HashMap<String, Vec<String>> = HashMap::new();
            for f in &a.filter {
                let (k, v) = f
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("invalid filter '{f}' — use key=value, e.g. name=web"))?;
                filters.entry(k.to_string()).or_default().push(v.to_string());
            }
            let opts = qp::ListContainersOptions {
                all: a.all,
                limit: a.latest.then_some(1),
                size: crate::lists::ps_wants_size(&a),
                filters: (!filters.is_empty()).then_some(filters),
            };
            let rows = d.list_containers(Some(opts)).await.map_err(api_error)?;
            crate::lists::ps(&rows, &a)?;
            Ok(0)
        }
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => {
            let opts = qp::ListImagesOptions {
                filters: a
                    .reference
                    .clone()
                    .map(|r| HashMap::from([("reference".to_string(), vec![r])])),
                ..Default::default()
            };
            let rows = d.list_images(Some(opts)).await.map_err(api_error)?;
            crate::lists::images(&rows, &a)?;
            Ok(0)
        }
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => {
            pull(&d, &a.image, a.quiet, false).await?;
            Ok(0)
        }
        Command::Tag { source, target } | Command::Image(ImageCommand::Tag { source, target }) => {
            let (repo, tag) = split_tag(&target);
            let opts = qp::TagImageOptions { repo: Some(repo), tag };
            d.tag_image(&source, Some(opts)).await.map_err(api_error)?;
            Ok(0)
        }
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => {
            let mut code = 0;
            for name in &a.images {
                let opts = qp::RemoveImageOptions { force: a.force, ..Default::default() };
                match d.remove_image(name, Some(opts), None).await {
                    Ok(items) => {
                        for i in items {
                            if let Some(u) = i.untagged {
                                println!("Untagged: {u}");
                            }
                            if let Some(del) = i.deleted {
                                println!("Deleted: {del}");
                            }
                        }
                    }
                    Err(e) => {
                        eprintln!("Error: {}", api_error(e));
                        code = 1;
                    }
                }
            }
            Ok(code)
        }
        Command::Run(a) | Command::Container(ContainerCommand::Run(a)) => run_container(&d, a, true).await,
        Command::Create(a) | Command::Container(ContainerCommand::Create(a)) => run_container(&d, a, false).await,
        Command::Start(a) | Command::Container(ContainerCommand::Start(a)) => {
            if a.attach || a.interactive {
                bail!("start -a/-i is not available through BERTH_HOST yet — use `berth logs -f` after start");
            }
            each(&a.containers, |c| {
                let d = d.clone();
                async move { d.start_container(&c, None::<qp::StartContainerOptions>).await }
            })
            .await
        }
        Command::Stop(a) | Command::Container(ContainerCommand::Stop(a)) => {
            let t = a.time as i32;
            each(&a.containers, |c| {
                let d = d.clone();
                async move {
                    let opts = qp::StopContainerOptions { t: Some(t), signal: None };
                    d.stop_container(&c, Some(opts)).await
                }
            })
            .await
        }
        Command::Rm(a) | Command::Container(ContainerCommand::Rm(a)) => {
            let (force, v) = (a.force, a.volumes);
            each(&a.containers, |c| {
                let d = d.clone();
                async move {
                    let opts = qp::RemoveContainerOptions { force, v, link: false };
                    d.remove_container(&c, Some(opts)).await
                }
            })
            .await
        }
        Command::Logs(a) | Command::Container(ContainerCommand::Logs(a)) => {
            if a.since.is_some() || a.until.is_some() {
                bail!("logs --since/--until are not available through BERTH_HOST yet — unset BERTH_HOST to use the local engine");
            }
            let opts = qp::LogsOptions {
                follow: a.follow,
                stdout: true,
                stderr: true,
                timestamps: a.timestamps,
                tail: a.tail.clone(),
                ..Default::default()
            };
            let mut s = d.logs(&a.container, Some(opts));
            while let Some(item) = s.next().await {
                print_output(item.map_err(api_error)?)?;
            }
            Ok(0)
        }
        Command::Exec(a) | Command::Container(ContainerCommand::Exec(a)) => {
            if a.tty || a.interactive || a.detach {
                bail!("exec -i/-t/-d are not available through BERTH_HOST yet — unset BERTH_HOST to use the local engine");
            }
            let exec = d
                .create_exec(
                    &a.container,
                    bollard::exec::CreateExecOptions {
                        cmd: Some(a.command.clone()),
                        env: Some(a.env.clone()),
                        user: a.user.clone(),
                        working_dir: a.workdir.clone(),
                        attach_stdout: Some(true),
                        attach_stderr: Some(true),
                        ..Default::default()
                    },
                )
                .await
                .map_err(api_error)?;
            if let bollard::exec::StartExecResults::Attached { mut output, .. } =
                d.start_exec(&exec.id, None::<bollard::exec::StartExecOptions>).await.map_err(api_error)?
            {
                while let Some(item) = output.next().await {
                    print_output(item.map_err(api_error)?)?;
                }
            }
            let info = d.inspect_exec(&exec.id).await.map_err(api_error)?;
            Ok(info.exit_code.unwrap_or(0).clamp(0, 255) as u8)
        }
        Command::Inspect(a) => inspect(&d, a).await,
        Command::Image(ImageCommand::Inspect(a)) => inspect(&d, a.of_kind("image")).await,
        Command::Container(ContainerCommand::Inspect(a)) => inspect(&d, a.of_kind("container")).await,
        Command::Volume(VolumeCommand::Ls { quiet, format }) => {
            let vols = d.list_volumes(None::<qp::ListVolumesOptions>).await.map_err(api_error)?;
            crate::lists::volumes(&mut vols.volumes.unwrap_or_default(), quiet, format.as_deref())?;
            Ok(0)
        }
        Command::Network(NetworkCommand::Ls {
            quiet,
            no_trunc,
            format,
        }) => {
            let mut rows = d.list_networks(None::<qp::ListNetworksOptions>).await.map_err(api_error)?;
            crate::lists::networks(&mut rows, quiet, no_trunc, format.as_deref())?;
            Ok(0)
        }
        Command::Volume(VolumeCommand::Create { name }) => {
            let v = d
                .create_volume(bollard::models::VolumeCreateRequest { name, ..Default::default() })
                .await
                .map_err(api_error)?;
            println!("{}", v.name);
            Ok(0)
        }
        Command::Volume(VolumeCommand::Rm { force, names }) => {
            each(&names, |n| {
                let d = d.clone();
                async move { d.remove_volume(&n, Some(qp::RemoveVolumeOptions { force })).await }
            })
            .await
        }
        Command::Network(NetworkCommand::Connect {
            aliases,
            network,
            container,
        }) => {
            let endpoint_config = bollard::models::EndpointSettings {
                aliases: (!aliases.is_empty()).then_some(aliases),
                ..Default::default()
            };
            let req = bollard::models::NetworkConnectRequest {
                container,
                endpoint_config: Some(endpoint_config),
            };
            d.connect_network(&network, req).await.map_err(api_error)?;
            Ok(0)
        }
        Command::Network(NetworkCommand::Disconnect {
            force,
            network,
            container,
        }) => {
            let req = bollard::models::NetworkDisconnectRequest {
                container,
                force: Some(force),
            };
            d.disconnect_network(&network, req).await.map_err(api_error)?;
            Ok(0)
        }
        other => bail!(
            "`berth {}` is not available through BERTH_HOST yet — unset BERTH_HOST to run it on the local engine",
            command_name(&other)
        ),
    }
}

/// `inspect`: containers first, then images (or only one `--type`), docker's JSON or `--format`.
async fn inspect(d: &Docker, a: InspectArgs) -> anyhow::Result<u8> {
    let kind = a.kind.as_deref().unwrap_or("");
    if !matches!(kind, "" | "image" | "container") {
        bail!("--type {kind} is not supported: use image or container");
    }
    let mut values = Vec::new();
    let mut code = 0;
    for name in &a.names {
        let container = match kind {
            "image" => None,
            _ => d
                .inspect_container(name, None::<qp::InspectContainerOptions>)
                .await
                .ok(),
        };
        match container {
            Some(c) => values.push(serde_json::to_value(c)?),
            None if kind == "container" => {
                eprintln!("Error: no such container: {name} — run `berth ps -a` to see your containers");
                code = 1;
            }
            None => match d.inspect_image(name).await {
                Ok(i) => values.push(serde_json::to_value(i)?),
                Err(e) => {
                    eprintln!("Error: {}", api_error(e));
                    code = 1;
                }
            },
        }
    }
    crate::lists::inspect(&values, a.format.as_deref())?;
    Ok(code)
}

fn command_name(c: &Command) -> String {
    format!("{c:?}")
        .split(['(', ' ', '{'])
        .next()
        .unwrap_or("")
        .to_lowercase()
}

/// Runs `f` for each name, printing the name on success and the error otherwise (docker).
async fn each<F, Fut>(names: &[String], f: F) -> anyhow::Result<u8>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), bollard::errors::Error>>,
{
    let mut code = 0;
    for n in names {
        match f(n.clone()).await {
            Ok(()) => println!("{n}"),
            Err(e) => {
                eprintln!("Error: {}", api_error(e));
                code = 1;
            }
        }
    }
    Ok(code)
}

fn print_output(o: bollard::container::LogOutput) -> std::io::Result<()> {
    use bollard::container::LogOutput;
    match o {
        LogOutput::StdErr { message } => {
            let mut e = std::io::stderr();
            e.write_all(&message)?;
            e.flush()
        }
        LogOutput::StdOut { message } | LogOutput::Console { message } | LogOutput::StdIn { message } => {
            let mut o = std::io::stdout();
            o.write_all(&message)?;
            o.flush()
        }
    }
}

/// `name[:tag]` → (repository, tag); a digest or a registry port is not a tag.
fn split_tag(reference: &str) -> (String, Option<String>) {
    match reference.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') && !repo.is_empty() => {
            (repo.to_string(), Some(tag.to_string()))
        }
        _ => (reference.to_string(), None),
    }
}

/// Pulls through the engine, printing docker's lines (one per layer state change) to
/// stdout, or to stderr when the pull is part of `run`.
async fn pull(d: &Docker, image: &str, quiet: bool, to_stderr: bool) -> anyhow::Result<()> {
    let (repo, tag) = split_tag(image);
    let opts = qp::CreateImageOptions {
        from_image: Some(repo),
        tag: Some(tag.unwrap_or_else(|| "latest".into())),
        ..Default::default()
    };
    let mut last: HashMap<String, String> = HashMap::new();
    let mut s = d.create_image(Some(opts), None, None);
    while let Some(item) = s.next().await {
        let info = item.map_err(api_error)?;
        let status = info.status.unwrap_or_default();
        if quiet {
            continue;
        }
        let line = match info.id {
            Some(id) => {
                if last.get(&id) == Some(&status) {
                    continue;
                }
                last.insert(id.clone(), status.clone());
                format!("{id}: {status}")
            }
            None => status,
        };
        if to_stderr {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
    Ok(())
}

/// The create body for `run`/`create` flags, as the docker CLI builds it.
fn create_body(a: &RunArgs) -> anyhow::Result<ContainerCreateBody> {
    if !a.mount.is_empty() || !a.env_file.is_empty() {
        bail!("--mount and --env-file are not available through BERTH_HOST yet — use -v and -e");
    }
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    let mut exposed = Vec::new();
    for p in &a.publish {
        for spec in berth_net::parse_publish(p)? {
            let proto = match spec.proto {
                berth_net::Proto::Udp => "udp",
                berth_net::Proto::Tcp => "tcp",
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
    let (binds, anonymous): (Vec<String>, Vec<String>) =
        a.volume.iter().cloned().partition(|v| v.contains(':'));
    let restart = a.restart.as_deref().map(|r| {
        let (name, max) = r.split_once(':').unwrap_or((r, "0"));
        RestartPolicy {
            name: name.parse::<RestartPolicyNameEnum>().ok(),
            maximum_retry_count: max.parse().ok(),
        }
    });
    let labels: HashMap<String, String> = a
        .label
        .iter()
        .map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .unwrap_or((l.clone(), String::new()))
        })
        .collect();
    let memory = a.memory.as_deref().map(berth_cgroups::parse_memory).transpose()?;
    let cpus = a
        .cpus
        .as_deref()
        .map(|c| {
            c.parse::<f64>()
                .map_err(|_| anyhow::anyhow!("invalid --cpus '{c}': use a number like 1.5"))
        })
        .transpose()?;
    let mut log_config = None;
    if !a.log_opt.is_empty() {
        let config = a
            .log_opt
            .iter()
            .map(|o| {
                o.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .unwrap_or((o.clone(), String::new()))
            })
            .collect();
        log_config = Some(bollard::models::HostConfigLogConfig {
            typ: Some("json-file".into()),
            config: Some(config),
        });
    }
    Ok(ContainerCreateBody {
        image: Some(a.image.clone()),
        cmd: (!a.command.is_empty()).then(|| a.command.clone()),
        entrypoint: a
            .entrypoint
            .as_ref()
            .map(|e| if e.is_empty() { Vec::new() } else { vec![e.clone()] }),
        env: (!a.env.is_empty()).then(|| a.env.clone()),
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
        networking_config: match (&a.network, a.network_alias.is_empty()) {
            (Some(net), false) => Some(bollard::models::NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    net.clone(),
                    bollard::models::EndpointSettings {
                        aliases: Some(a.network_alias.clone()),
                        ..Default::default()
                    },
                )])),
            }),
            _ => None,
        },
        host_config: Some(HostConfig {
            port_bindings: (!bindings.is_empty()).then_some(bindings),
            publish_all_ports: Some(a.publish_all),
            binds: (!binds.is_empty()).then_some(binds),
            network_mode: a.network.clone(),
            memory: memory.map(|m| m as i64),
            nano_cpus: cpus.map(|c| (c * 1e9) as i64),
            pids_limit: a.pids_limit,
            restart_policy: restart,
            auto_remove: Some(a.rm),
            log_config,
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// `run` (and `create` with `start = false`) through the API, docker's flow: create (pull
/// when missing), attach, wait, start, stream the output, exit with the container's code.
async fn run_container(d: &Docker, a: RunArgs, start: bool) -> anyhow::Result<u8> {
    if a.tty {
        bail!("-t is not available through BERTH_HOST yet — unset BERTH_HOST to use the local engine");
    }
    let body = create_body(&a)?;
    let opts = || qp::CreateContainerOptions {
        name: a.name.clone(),
        platform: String::new(),
    };
    let created = match d.create_container(Some(opts()), body.clone()).await {
        Ok(c) => c,
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {
            eprintln!("Unable to find image '{}' locally", a.image);
            pull(d, &a.image, false, true).await?;
            d.create_container(Some(opts()), body).await.map_err(api_error)?
        }
        Err(e) => return Err(api_error(e)),
    };
    if !start {
        println!("{}", created.id);
        return Ok(0);
    }
    let id = created.id;
    if a.detach {
        d.start_container(&id, None::<qp::StartContainerOptions>)
            .await
            .map_err(api_error)?;
        println!("{id}");
        return Ok(0);
    }
    let attach = d
        .attach_container(
            &id,
            Some(qp::AttachContainerOptions {
                stdin: a.interactive,
                stdout: true,
                stderr: true,
                stream: true,
                logs: false,
                detach_keys: None,
            }),
        )
        .await
        .map_err(api_error)?;
    // bollard sends the wait request only when first polled (after start), so the
    // conditions must hold for an exit that already happened.
    let condition = if a.rm { "removed" } else { "not-running" };
    let mut wait = Box::pin(d.wait_container(
        &id,
        Some(qp::WaitContainerOptions {
            condition: condition.into(),
        }),
    ));
    d.start_container(&id, None::<qp::StartContainerOptions>)
        .await
        .map_err(api_error)?;
    let bollard::container::AttachContainerResults {
        mut output,
        mut input,
    } = attach;
    if a.interactive {
        // Our stdin → the container's, read on a plain thread (stdin blocks).
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 8192];
            while let Ok(n) = std::io::stdin().read(&mut buf) {
                if n == 0 || tx.blocking_send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            while let Some(chunk) = rx.recv().await {
                if input.write_all(&chunk).await.is_err() {
                    return;
                }
            }
            let _ = input.shutdown().await;
        });
    }
    while let Some(item) = output.next().await {
        match item {
            Ok(o) => print_output(o)?,
            Err(_) => break,
        }
    }
    let code = match wait.next().await {
        Some(Ok(r)) => r.status_code,
        // bollard reports a non-zero exit as an error carrying the code.
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
        Some(Err(e)) => return Err(api_error(e)),
        None => 0,
    };
    Ok(code.clamp(0, 255) as u8)
}
