//! Container commands: run, create, start, attach, stop, restart, kill, rm, ps, logs,
//! exec, wait, pause, unpause, port, stats and container prune — each over the client.

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Context};
use bollard::query_parameters as qp;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use hyper::Method;

use super::create_body::create_body;
use super::each;
use crate::cli::{
    AttachArgs, ExecArgs, KillArgs, LogsArgs, PsArgs, RmArgs, RunArgs, StartArgs, StatsArgs, StopArgs,
};
use crate::client::{self, api_error, is_not_found, Client};
use crate::{render, terminal};

/// `run` (and `create` when `start` is false), docker's flow: create (pulling a missing
/// image), register the wait, attach, start, relay the output, exit with the container's code.
pub async fn run(c: &Client, a: RunArgs, start: bool) -> anyhow::Result<u8> {
    let body = create_body(&a)?;
    let opts = || qp::CreateContainerOptions {
        name: a.name.clone(),
        platform: String::new(),
    };
    let id = match c.docker.create_container(Some(opts()), body.clone()).await {
        Ok(created) => created.id,
        Err(e) if is_not_found(&e) && e.to_string().to_lowercase().contains("image") => {
            let reference = berth_reference::ImageRef::parse(&a.image)?;
            eprintln!("Unable to find image '{}' locally", reference.familiar());
            super::image::pull_image(c, &reference, None, &mut crate::progress::Progress::stderr()).await?;
            c.docker
                .create_container(Some(opts()), body)
                .await
                .map_err(api_error)?
                .id
        }
        Err(e) => return Err(api_error(e)),
    };
    if !start {
        println!("{id}");
        return Ok(0);
    }
    if a.detach {
        start_or_clean_up(c, &id, a.rm).await?;
        println!("{id}");
        return Ok(0);
    }
    let session = Session {
        tty: a.tty,
        stdin: a.interactive,
        detach_keys: a.detach_keys.clone(),
        sig_proxy: a.sig_proxy && !a.tty,
    };
    // The wait is registered (its headers are back) before the start, so no exit is missed
    // and, with --rm, the engine removes the container only after reporting its code.
    let wait = wait_request(c, &id, if a.rm { "removed" } else { "next-exit" }).await?;
    let attached = attach_stream(c, &id, &session).await?;
    start_or_clean_up(c, &id, a.rm).await?;
    Ok(finish_session(c, &id, attached, &session, Some(wait))
        .await?
        .unwrap_or(0))
}

/// Starts a created container; docker leaves one whose start failed, but with --rm
/// nothing should remain.
async fn start_or_clean_up(c: &Client, id: &str, rm: bool) -> anyhow::Result<()> {
    let Err(e) = c
        .docker
        .start_container(id, None::<qp::StartContainerOptions>)
        .await
    else {
        return Ok(());
    };
    if rm {
        let opts = qp::RemoveContainerOptions {
            force: true,
            v: true,
            link: false,
        };
        let _ = c.docker.remove_container(id, Some(opts)).await;
    }
    Err(api_error(e))
}

struct Session {
    tty: bool,
    stdin: bool,
    detach_keys: String,
    /// Forward Ctrl-C and SIGTERM to the container (docker's default without a TTY).
    sig_proxy: bool,
}

/// `POST /containers/{id}/wait`, returned once the engine has registered it.
async fn wait_request(
    c: &Client,
    id: &str,
    condition: &str,
) -> anyhow::Result<hyper::Response<hyper::body::Incoming>> {
    c.request(
        Method::POST,
        &format!("/containers/{}/wait?condition={condition}", client::q(id)),
        &[],
        client::empty(),
    )
    .await
}

/// The exit code in a wait answer.
async fn wait_code(resp: hyper::Response<hyper::body::Incoming>) -> anyhow::Result<i64> {
    let bytes = resp
        .into_body()
        .collect()
        .await
        .context("the engine stopped before the container exited")?
        .to_bytes();
    let v: serde_json::Value =
        serde_json::from_slice(bytes.trim_ascii()).context("the engine's wait answer is not JSON")?;
    if let Some(msg) = v
        .pointer("/Error/Message")
        .and_then(|m| m.as_str())
        .filter(|m| !m.is_empty())
    {
        bail!("{msg}");
    }
    Ok(v.get("StatusCode").and_then(|s| s.as_i64()).unwrap_or(0))
}

async fn attach_stream(
    c: &Client,
    id: &str,
    s: &Session,
) -> anyhow::Result<bollard::container::AttachContainerResults> {
    c.docker
        .attach_container(
            id,
            Some(qp::AttachContainerOptions {
                stdin: s.stdin,
                stdout: true,
                stderr: true,
                stream: true,
                logs: false,
                detach_keys: s.stdin.then(|| s.detach_keys.clone()),
            }),
        )
        .await
        .map_err(api_error)
}

/// Relays an attached session until the container exits (its code) or the user detaches
/// (`None`). `wait`: a wait registered before the start; else one is asked for now.
async fn finish_session(
    c: &Client,
    id: &str,
    attached: bollard::container::AttachContainerResults,
    s: &Session,
    wait: Option<hyper::Response<hyper::body::Incoming>>,
) -> anyhow::Result<Option<u8>> {
    let raw = (s.tty && s.stdin).then(terminal::RawMode::enter).flatten();
    let resizer = s.tty.then(|| {
        let (docker, id) = (c.docker.clone(), id.to_string());
        tokio::spawn(async move {
            let mut sizes = terminal::window_sizes();
            while let Some((h, w)) = sizes.recv().await {
                let opts = qp::ResizeContainerTTYOptions {
                    h: h as i32,
                    w: w as i32,
                };
                let _ = docker.resize_container_tty(&id, opts).await;
            }
        })
    });
    let proxy = s.sig_proxy.then(|| {
        let (docker, id) = (c.docker.clone(), id.to_string());
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut int), Ok(mut term)) =
                (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
            else {
                return;
            };
            loop {
                let sig = tokio::select! {
                    _ = int.recv() => "SIGINT",
                    _ = term.recv() => "SIGTERM",
                };
                let _ = docker
                    .kill_container(&id, Some(qp::KillContainerOptions { signal: sig.into() }))
                    .await;
            }
        })
    });
    let bollard::container::AttachContainerResults { output, input } = attached;
    terminal::relay(output, input, s.stdin).await;
    drop(raw);
    for t in [resizer, proxy].into_iter().flatten() {
        t.abort();
    }
    let wait = match wait {
        Some(w) => w,
        None => wait_request(c, id, "not-running").await?,
    };
    if !s.stdin {
        return Ok(Some(wait_code(wait).await?.clamp(0, 255) as u8));
    }
    // With stdin attached the stream also ends when the user types the detach keys.
    let mut code = Box::pin(wait_code(wait));
    loop {
        tokio::select! {
            r = &mut code => return Ok(Some(r?.clamp(0, 255) as u8)),
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                let running = c.docker.inspect_container(id, None::<qp::InspectContainerOptions>).await
                    .ok()
                    .and_then(|i| i.state)
                    .and_then(|s| s.running)
                    .unwrap_or(false);
                if running {
                    return Ok(None);
                }
            }
        }
    }
}

pub async fn start(c: &Client, a: StartArgs) -> anyhow::Result<u8> {
    if !(a.attach || a.interactive) {
        return each(&a.containers, |n| async move {
            c.docker
                .start_container(&n, None::<qp::StartContainerOptions>)
                .await
                .map_err(api_error)
        })
        .await;
    }
    if a.containers.len() > 1 {
        bail!("you cannot start and attach multiple containers at once — start them one by one");
    }
    let id = &a.containers[0];
    let info = c
        .docker
        .inspect_container(id, None::<qp::InspectContainerOptions>)
        .await
        .map_err(api_error)?;
    let tty = info.config.as_ref().and_then(|c| c.tty).unwrap_or(false);
    let session = Session {
        tty,
        stdin: a.interactive,
        detach_keys: a.detach_keys.clone(),
        sig_proxy: !tty,
    };
    let wait = wait_request(c, id, "next-exit").await?;
    let attached = attach_stream(c, id, &session).await?;
    c.docker
        .start_container(id, None::<qp::StartContainerOptions>)
        .await
        .map_err(api_error)?;
    Ok(finish_session(c, id, attached, &session, Some(wait))
        .await?
        .unwrap_or(0))
}

pub async fn attach(c: &Client, a: AttachArgs) -> anyhow::Result<u8> {
    let info = c
        .docker
        .inspect_container(&a.container, None::<qp::InspectContainerOptions>)
        .await
        .map_err(api_error)?;
    let running = info.state.as_ref().and_then(|s| s.running).unwrap_or(false);
    let name = info
        .name
        .as_deref()
        .unwrap_or(&a.container)
        .trim_start_matches('/')
        .to_string();
    if !running {
        bail!("you cannot attach to a stopped container {name} — start it first (`berth start -ai {name}`)");
    }
    let cfg = info.config.as_ref();
    let tty = cfg.and_then(|c| c.tty).unwrap_or(false);
    let session = Session {
        tty,
        stdin: !a.no_stdin && cfg.and_then(|c| c.open_stdin).unwrap_or(false),
        detach_keys: a.detach_keys.clone(),
        sig_proxy: a.sig_proxy && !tty,
    };
    let wait = wait_request(c, &a.container, "next-exit").await?;
    let attached = attach_stream(c, &a.container, &session).await?;
    Ok(finish_session(c, &a.container, attached, &session, Some(wait))
        .await?
        .unwrap_or(0))
}

/// `stop`, and `restart` when `restart` is set.
pub async fn stop(c: &Client, a: StopArgs, restart: bool) -> anyhow::Result<u8> {
    let t = a.time as i32;
    each(&a.containers, |n| async move {
        if restart {
            let opts = qp::RestartContainerOptions {
                t: Some(t),
                signal: None,
            };
            c.docker.restart_container(&n, Some(opts)).await
        } else {
            let opts = qp::StopContainerOptions {
                t: Some(t),
                signal: None,
            };
            c.docker.stop_container(&n, Some(opts)).await
        }
        .map_err(api_error)
    })
    .await
}

pub async fn kill(c: &Client, a: KillArgs) -> anyhow::Result<u8> {
    let signal = a.signal.clone();
    each(&a.containers, |n| {
        let signal = signal.clone();
        async move {
            let opts = qp::KillContainerOptions { signal };
            c.docker.kill_container(&n, Some(opts)).await.map_err(api_error)
        }
    })
    .await
}

pub async fn rm(c: &Client, a: RmArgs) -> anyhow::Result<u8> {
    let (force, v) = (a.force, a.volumes);
    each(&a.containers, |n| async move {
        let opts = qp::RemoveContainerOptions {
            force,
            v,
            link: false,
        };
        c.docker.remove_container(&n, Some(opts)).await.map_err(api_error)
    })
    .await
}

pub async fn pause(c: &Client, containers: &[String], pause: bool) -> anyhow::Result<u8> {
    each(containers, |n| async move {
        if pause {
            c.docker.pause_container(&n).await
        } else {
            c.docker.unpause_container(&n).await
        }
        .map_err(api_error)
    })
    .await
}

pub async fn wait(c: &Client, containers: &[String]) -> anyhow::Result<u8> {
    let mut code = 0;
    for n in containers {
        match async { wait_code(wait_request(c, n, "not-running").await?).await }.await {
            Ok(status) => println!("{status}"),
            Err(e) => {
                eprintln!("Error: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

pub async fn ps(c: &Client, a: PsArgs) -> anyhow::Result<u8> {
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
    let rows = c.docker.list_containers(Some(opts)).await.map_err(api_error)?;
    crate::lists::ps(&rows, &a)?;
    Ok(0)
}

pub async fn port(c: &Client, container: &str) -> anyhow::Result<u8> {
    let v = c
        .get_json(&format!("/containers/{}/json", client::q(container)))
        .await?;
    if v.pointer("/State/Running").and_then(|r| r.as_bool()) != Some(true) {
        return Ok(0);
    }
    let Some(ports) = v.pointer("/NetworkSettings/Ports").and_then(|p| p.as_object()) else {
        return Ok(0);
    };
    let mut lines = Vec::new();
    for (port, bindings) in ports {
        for b in bindings.as_array().into_iter().flatten() {
            let ip = b.get("HostIp").and_then(|i| i.as_str()).unwrap_or("0.0.0.0");
            let hp = b.get("HostPort").and_then(|i| i.as_str()).unwrap_or("");
            lines.push(format!(
                "{port} -> {}:{hp}",
                if ip.is_empty() { "0.0.0.0" } else { ip }
            ));
        }
    }
    lines.sort();
    for l in lines {
        println!("{l}");
    }
    Ok(0)
}

pub async fn logs(c: &Client, a: LogsArgs) -> anyhow::Result<u8> {
    let tail = match a.tail.as_str() {
        "all" | "-1" => "all".to_string(),
        n => n
            .parse::<usize>()
            .map_err(|_| anyhow::anyhow!("invalid --tail '{n}': use a number or all"))?
            .to_string(),
    };
    let when = |s: &Option<String>| -> anyhow::Result<i32> {
        Ok(match s {
            Some(s) => parse_when(s)?.unix_timestamp() as i32,
            None => 0,
        })
    };
    let opts = qp::LogsOptions {
        follow: a.follow,
        stdout: true,
        stderr: true,
        timestamps: a.timestamps,
        tail,
        since: when(&a.since)?,
        until: when(&a.until)?,
    };
    let mut s = c.docker.logs(&a.container, Some(opts));
    while let Some(item) = s.next().await {
        let ok = match item.map_err(api_error)? {
            bollard::container::LogOutput::StdErr { message } => {
                let mut e = std::io::stderr();
                e.write_all(&message).and_then(|()| e.flush())
            }
            other => {
                let mut o = std::io::stdout();
                o.write_all(&other.into_bytes()).and_then(|()| o.flush())
            }
        };
        if ok.is_err() {
            break;
        }
    }
    Ok(0)
}

/// `--since 2026-11-26T10:00:00Z`, `--since 10m`, `--since 1732600000`.
fn parse_when(s: &str) -> anyhow::Result<time::OffsetDateTime> {
    if let Some(t) = render::parse_time(s) {
        return Ok(t);
    }
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(time::OffsetDateTime::from_unix_timestamp(secs)?);
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid time '{s}': use a timestamp or e.g. 10m"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => bail!("invalid time '{s}': use a timestamp or a duration like 30s, 10m, 2h"),
    };
    Ok(time::OffsetDateTime::now_utc() - time::Duration::seconds(secs))
}

pub async fn exec(c: &Client, a: ExecArgs) -> anyhow::Result<u8> {
    let exec = c
        .docker
        .create_exec(
            &a.container,
            bollard::exec::CreateExecOptions {
                cmd: Some(a.command.clone()),
                env: (!a.env.is_empty()).then(|| a.env.clone()),
                user: a.user.clone(),
                working_dir: a.workdir.clone(),
                tty: Some(a.tty),
                attach_stdin: Some(a.interactive && !a.detach),
                attach_stdout: Some(!a.detach),
                attach_stderr: Some(!a.detach),
                ..Default::default()
            },
        )
        .await
        .map_err(api_error)?;
    let size = if a.tty { terminal::window_size() } else { None };
    let opts = bollard::exec::StartExecOptions {
        detach: a.detach,
        tty: a.tty,
        output_capacity: None,
    };
    let started = c
        .docker
        .start_exec(&exec.id, Some(opts))
        .await
        .map_err(api_error)?;
    if let bollard::exec::StartExecResults::Attached { output, input } = started {
        let raw = (a.tty && a.interactive).then(terminal::RawMode::enter).flatten();
        let resizer = a.tty.then(|| {
            let (docker, id) = (c.docker.clone(), exec.id.clone());
            tokio::spawn(async move {
                let mut sizes = terminal::window_sizes();
                while let Some((h, w)) = sizes.recv().await {
                    let opts = bollard::exec::ResizeExecOptions { height: h, width: w };
                    let _ = docker.resize_exec(&id, opts).await;
                }
            })
        });
        let _ = size;
        terminal::relay(output, input, a.interactive).await;
        drop(raw);
        if let Some(r) = resizer {
            r.abort();
        }
    } else {
        return Ok(0);
    }
    // The stream ends when the command does; its code may take a moment to be recorded.
    for _ in 0..100 {
        let info = c.docker.inspect_exec(&exec.id).await.map_err(api_error)?;
        if info.running != Some(true) {
            return Ok(info.exit_code.unwrap_or(0).clamp(0, 255) as u8);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(0)
}

pub async fn prune(c: &Client, force: bool) -> anyhow::Result<u8> {
    if !force {
        println!("WARNING! This will remove all stopped containers.");
        if !super::confirm("Are you sure you want to continue?") {
            return Ok(0);
        }
    }
    let freed = prune_containers(c).await?;
    println!("Total reclaimed space: {}", render::size(freed));
    Ok(0)
}

/// `POST /containers/prune`, printing docker's "Deleted Containers:" list; the bytes freed.
pub(crate) async fn prune_containers(c: &Client) -> anyhow::Result<u64> {
    let report = c
        .docker
        .prune_containers(None::<qp::PruneContainersOptions>)
        .await
        .map_err(api_error)?;
    let deleted = report.containers_deleted.unwrap_or_default();
    super::print_deleted("Containers", &deleted);
    Ok(report.space_reclaimed.unwrap_or(0).max(0) as u64)
}

/// `stats [--no-stream] [-a] [CONTAINER...]`: docker's columns, CPU % between two samples
/// as docker computes it (container CPU time over host CPU time, times the CPUs).
pub async fn stats(c: &Client, a: StatsArgs) -> anyhow::Result<u8> {
    use std::io::IsTerminal;
    let named: Vec<(String, String)> = if a.containers.is_empty() {
        let opts = qp::ListContainersOptions {
            all: a.all,
            ..Default::default()
        };
        let rows = c.docker.list_containers(Some(opts)).await.map_err(api_error)?;
        rows.into_iter()
            .filter_map(|r| r.id)
            .map(|id| (id[..12.min(id.len())].to_string(), id))
            .collect()
    } else {
        a.containers.iter().map(|n| (n.clone(), n.clone())).collect()
    };
    let kind = &crate::format::contexts::STATS;
    let template = crate::format::choose(kind, a.format.as_deref(), "statsFormat", false, false)?;
    let tty = std::io::stdout().is_terminal();
    loop {
        let mut rows = Vec::new();
        for (shown, id) in &named {
            let opts = qp::StatsOptions {
                stream: false,
                one_shot: false,
            };
            let s = c
                .docker
                .stats(id, Some(opts))
                .next()
                .await
                .ok_or_else(|| anyhow::anyhow!("the engine sent no stats for {shown}"))?
                .map_err(api_error)?;
            rows.push(crate::format::contexts::stats(stats_row(shown, &s)));
        }
        let text = template.render_rows(kind, &rows)?;
        let mut out = std::io::stdout().lock();
        if tty && !a.no_stream {
            // Redraw in place, like docker.
            write!(out, "\x1b[2J\x1b[H")?;
        }
        out.write_all(text.as_bytes())?;
        out.flush()?;
        if a.no_stream {
            return Ok(0);
        }
    }
}

fn stats_row(shown: &str, s: &bollard::models::ContainerStatsResponse) -> crate::format::contexts::StatsRow {
    let cpu = s.cpu_stats.as_ref();
    let pre = s.precpu_stats.as_ref();
    let total = |c: Option<&bollard::models::ContainerCpuStats>| {
        c.and_then(|c| c.cpu_usage.as_ref())
            .and_then(|u| u.total_usage)
            .unwrap_or(0)
    };
    let system =
        |c: Option<&bollard::models::ContainerCpuStats>| c.and_then(|c| c.system_cpu_usage).unwrap_or(0);
    let cpus = cpu.and_then(|c| c.online_cpus).unwrap_or(1).max(1) as f64;
    let (cd, sd) = (
        total(cpu).saturating_sub(total(pre)) as f64,
        system(cpu).saturating_sub(system(pre)) as f64,
    );
    let cpu_perc = if sd > 0.0 { cd / sd * cpus * 100.0 } else { 0.0 };
    let mem = s.memory_stats.as_ref();
    let usage = mem.and_then(|m| m.usage).unwrap_or(0);
    let limit = mem.and_then(|m| m.limit).unwrap_or(0);
    let (rx, tx) = s
        .networks
        .as_ref()
        .map(|n| {
            n.values().fold((0, 0), |(r, t), i| {
                (r + i.rx_bytes.unwrap_or(0), t + i.tx_bytes.unwrap_or(0))
            })
        })
        .unwrap_or((0, 0));
    let id = s.id.clone().unwrap_or_default();
    crate::format::contexts::StatsRow {
        container: shown.to_string(),
        name: s
            .name
            .clone()
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        id,
        cpu_perc: format!("{cpu_perc:.2}%"),
        mem_usage: format!("{} / {}", render::binary_size(usage), render::binary_size(limit)),
        mem_perc: format!(
            "{:.2}%",
            if limit > 0 {
                usage as f64 / limit as f64 * 100.0
            } else {
                0.0
            }
        ),
        net_io: format!("{} / {}", render::size(rx), render::size(tx)),
        block_io: "0B / 0B".into(),
        pids: s
            .pids_stats
            .as_ref()
            .and_then(|p| p.current)
            .unwrap_or(0)
            .to_string(),
    }
}
