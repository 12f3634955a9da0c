//! Container commands: run, create, start, stop, restart, kill, rm, ps, logs, exec, wait,
//! pause, unpause, port, container prune/inspect, and the hidden `__shim`.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::bail;
use berth_containers::{ContainerRecord, ContainerService, CreateOptions, ExecOptions, Status};

use crate::cli::{
    AttachArgs, ExecArgs, Global, KillArgs, LogsArgs, PsArgs, RmArgs, RunArgs, StartArgs, StatsArgs, StopArgs,
};
use crate::{engine, render};

fn service(g: &Global) -> anyhow::Result<ContainerService> {
    let images = engine::open(g)?;
    let exe = std::env::current_exe()?;
    Ok(ContainerService::new(images, exe)?)
}

fn create_options(a: &RunArgs) -> CreateOptions {
    CreateOptions {
        image: a.image.clone(),
        name: a.name.clone(),
        cmd: a.command.clone(),
        entrypoint: a.entrypoint.clone(),
        env: a.env.clone(),
        env_files: a.env_file.clone(),
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        hostname: a.hostname.clone(),
        publish: a.publish.clone(),
        publish_all: a.publish_all,
        volumes: a.volume.clone(),
        mounts: a.mount.clone(),
        network: a.network.clone(),
        network_aliases: a.network_alias.clone(),
        memory: a.memory.clone(),
        cpus: a.cpus.clone(),
        pids_limit: a.pids_limit,
        restart: a.restart.clone(),
        labels: a.label.clone(),
        tty: a.tty,
        interactive: a.interactive,
        auto_remove: a.rm,
        log_opts: a.log_opt.clone(),
    }
}

/// docker pulls a missing image on `run`/`create`.
async fn ensure_image(g: &Global, image: &str) -> anyhow::Result<()> {
    let images = engine::open(g)?;
    if images.resolve(image).is_ok() {
        return Ok(());
    }
    let reference = berth_reference::ImageRef::parse(image)?;
    eprintln!("Unable to find image '{}' locally", reference.familiar());
    let progress = crate::progress::for_stderr();
    images
        .pull(&reference, &berth_images::PullOptions::default(), progress)
        .await?;
    Ok(())
}

pub async fn create(g: &Global, a: RunArgs) -> anyhow::Result<u8> {
    ensure_image(g, &a.image).await?;
    let rec = service(g)?.create(&create_options(&a))?;
    println!("{}", rec.id);
    Ok(0)
}

pub async fn run(g: &Global, a: RunArgs) -> anyhow::Result<u8> {
    ensure_image(g, &a.image).await?;
    let svc = service(g)?;
    let rec = svc.create(&create_options(&a))?;
    if !a.detach {
        svc.mark_attached(&rec)?;
    }
    if let Err(e) = svc.start(&rec.id) {
        // docker leaves the created container behind; with --rm nothing should remain.
        if a.rm {
            let _ = svc.remove(&rec.id, true, true);
        }
        return Err(e.into());
    }
    if a.detach {
        println!("{}", rec.id);
        return Ok(0);
    }
    // Attached: relay stdio until the container exits (or the user detaches).
    let session = crate::terminal::Session {
        tty: a.tty,
        stdin: a.interactive,
        detach_keys: berth_containers::parse_detach_keys(&a.detach_keys)
            .map_err(berth_containers::ContainerError::InvalidArgument)?,
        replay: true,
    };
    let code = match attach_until_exit(&svc, &rec, session, a.sig_proxy && !a.tty).await? {
        Some(code) => code,
        None => return Ok(0),
    };
    if a.rm {
        // The shim removes it too; whoever comes first wins.
        let _ = svc.remove(&rec.id, true, true);
    }
    Ok(code.clamp(0, 255) as u8)
}

/// Runs an attach session off the async runtime; forwards Ctrl-C and SIGTERM to the
/// container when `sig_proxy` (docker's default without a TTY). `None`: detached.
async fn attach_until_exit(
    svc: &ContainerService,
    rec: &ContainerRecord,
    session: crate::terminal::Session,
    sig_proxy: bool,
) -> anyhow::Result<Option<i32>> {
    let proxy = sig_proxy.then(|| {
        let (svc, id) = (svc.clone(), rec.id.clone());
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut int), Ok(mut term)) =
                (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
            else {
                return;
            };
            loop {
                let sig = tokio::select! {
                    _ = int.recv() => nix::libc::SIGINT,
                    _ = term.recv() => nix::libc::SIGTERM,
                };
                let _ = svc.kill(&id, sig);
            }
        })
    });
    let replay = session.replay;
    let (svc2, id) = (svc.clone(), rec.id.clone());
    let ended = tokio::task::spawn_blocking(move || crate::terminal::attach(&svc2, &id, &session)).await?;
    if let Some(p) = proxy {
        p.abort();
    }
    match ended {
        Ok(crate::terminal::Ended::Exited { silent: true, .. }) if replay => {
            follow_until_exit(svc, rec).map(Some)
        }
        Ok(crate::terminal::Ended::Exited { code, .. }) => Ok(Some(code)),
        Ok(crate::terminal::Ended::Detached) => Ok(None),
        // It exited before we could attach: its output is all in the log.
        Err(_) if !svc.status(&svc.find(&rec.id)?).is_running() => follow_until_exit(svc, rec).map(Some),
        Err(e) => Err(e),
    }
}

fn follow_until_exit(svc: &ContainerService, rec: &ContainerRecord) -> anyhow::Result<i32> {
    let path = svc.log_path(rec);
    let shim_dir = svc.paths(&rec.id).shim();
    let opts = berth_runtime::logs::LogOptions {
        follow: true,
        exit_file: Some(shim_dir.join("exit.json")),
        ..Default::default()
    };
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    berth_runtime::logs::read(&path, opts, |line| {
        let w: &mut dyn Write = if line.stream == berth_runtime::logs::Stream::Stderr {
            &mut err
        } else {
            &mut out
        };
        let _ = w.write_all(line.log.as_bytes());
        let _ = w.flush();
        true
    })?;
    svc.wait_exit(rec, Duration::from_secs(30));
    Ok(match svc.status(rec) {
        Status::Exited { code, .. } => code,
        _ => 0,
    })
}

pub async fn start(g: &Global, a: StartArgs) -> anyhow::Result<u8> {
    let svc = service(g)?;
    let mut code = 0;
    for c in &a.containers {
        match svc.start(c) {
            Ok(rec) => {
                svc.mark_stopped(&rec, false);
                if a.attach || a.interactive {
                    let session = crate::terminal::Session {
                        tty: rec.config.tty,
                        stdin: a.interactive,
                        detach_keys: berth_containers::parse_detach_keys(&a.detach_keys)
                            .map_err(berth_containers::ContainerError::InvalidArgument)?,
                        replay: true,
                    };
                    code = match attach_until_exit(&svc, &rec, session, !rec.config.tty).await? {
                        Some(code) => code.clamp(0, 255) as u8,
                        None => 0,
                    };
                } else {
                    println!("{c}");
                }
            }
            Err(e) => {
                eprintln!("Error: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

pub fn stop(g: &Global, a: StopArgs) -> anyhow::Result<u8> {
    let svc = service(g)?;
    each(&a.containers, |c| {
        let rec = svc.find(c)?;
        svc.mark_stopped(&rec, true);
        svc.stop(c, Duration::from_secs(a.time))?;
        Ok(())
    })
}

pub fn restart(g: &Global, a: StopArgs) -> anyhow::Result<u8> {
    let svc = service(g)?;
    each(&a.containers, |c| {
        svc.stop(c, Duration::from_secs(a.time))?;
        let rec = svc.start(c)?;
        svc.mark_stopped(&rec, false);
        Ok(())
    })
}

pub fn kill(g: &Global, a: KillArgs) -> anyhow::Result<u8> {
    let svc = service(g)?;
    let sig = berth_containers::signal_number(&a.signal)?;
    each(&a.containers, |c| {
        let rec = svc.kill(c, sig)?;
        svc.mark_stopped(&rec, true);
        Ok(())
    })
}

pub fn rm(g: &Global, a: RmArgs) -> anyhow::Result<u8> {
    let svc = service(g)?;
    each(&a.containers, |c| {
        svc.remove(c, a.force, a.volumes)?;
        Ok(())
    })
}

pub fn pause(g: &Global, containers: &[String], pause: bool) -> anyhow::Result<u8> {
    let svc = service(g)?;
    each(containers, |c| {
        if pause {
            svc.pause(c)?;
        } else {
            svc.unpause(c)?;
        }
        Ok(())
    })
}

pub fn wait(g: &Global, containers: &[String]) -> anyhow::Result<u8> {
    let svc = service(g)?;
    let mut code = 0;
    for c in containers {
        match svc.find(c) {
            Ok(rec) => {
                while !svc.wait_exit(&rec, Duration::from_secs(3600)) {}
                match svc.status(&rec) {
                    Status::Exited { code: c, .. } => println!("{c}"),
                    _ => println!("0"),
                }
            }
            Err(e) => {
                eprintln!("Error: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

/// Runs `f` for each name, printing the name on success and the error otherwise (docker).
fn each(names: &[String], mut f: impl FnMut(&str) -> anyhow::Result<()>) -> anyhow::Result<u8> {
    let mut code = 0;
    for n in names {
        match f(n) {
            Ok(()) => println!("{n}"),
            Err(e) => {
                eprintln!("Error: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

pub fn ps(g: &Global, a: PsArgs) -> anyhow::Result<u8> {
    let svc = service(g)?;
    let mut rows = svc.list(a.all || a.latest)?;
    for f in &a.filter {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("invalid filter '{f}' — use key=value, e.g. name=web"))?;
        rows.retain(|s| match k {
            "name" => s.record.name.contains(v),
            "id" => s.record.id.starts_with(v),
            "status" => s.status.name() == v,
            "ancestor" => s.record.image == v || s.record.image_id.to_string().contains(v),
            "label" => match v.split_once('=') {
                Some((lk, lv)) => s.record.config.labels.get(lk).is_some_and(|x| x == lv),
                None => s.record.config.labels.contains_key(v),
            },
            "exited" => matches!(s.status, Status::Exited { code, .. } if code.to_string() == v),
            _ => true,
        });
        if !matches!(k, "name" | "id" | "status" | "ancestor" | "label" | "exited") {
            bail!("filter '{k}' is not supported — use name, id, status, ancestor, label or exited");
        }
    }
    if a.latest {
        rows.truncate(1);
    }
    let rows = rows
        .iter()
        .map(|s| {
            let mut v = berth_api::container_summary(s);
            if crate::lists::ps_wants_size(&a) {
                v["SizeRw"] = berth_host::disk::tree_size(&svc.paths(&s.record.id).upper()).into();
            }
            crate::lists::model(v)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    crate::lists::ps(&rows, &a)?;
    Ok(0)
}

pub fn port(g: &Global, container: &str) -> anyhow::Result<u8> {
    let svc = service(g)?;
    let rec = svc.find(container)?;
    let status = svc.status(&rec);
    if status.is_running() {
        for p in &rec.bound_ports {
            println!(
                "{}/{} -> {}:{}",
                p.container_port, p.proto, p.host_ip, p.host_port
            );
        }
    }
    Ok(0)
}

pub fn logs(g: &Global, a: LogsArgs) -> anyhow::Result<u8> {
    let svc = service(g)?;
    let rec = svc.find(&a.container)?;
    let tail = match a.tail.as_str() {
        "all" | "-1" => None,
        n => Some(
            n.parse::<usize>()
                .map_err(|_| anyhow::anyhow!("invalid --tail '{n}': use a number or all"))?,
        ),
    };
    let shim_dir = svc.paths(&rec.id).shim();
    let opts = berth_runtime::logs::LogOptions {
        tail,
        since: a.since.as_deref().map(parse_when).transpose()?,
        until: a.until.as_deref().map(parse_when).transpose()?,
        timestamps: a.timestamps,
        follow: a.follow,
        exit_file: Some(shim_dir.join("exit.json")),
    };
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    berth_runtime::logs::read(&svc.log_path(&rec), opts, |line| {
        let w: &mut dyn Write = if line.stream == berth_runtime::logs::Stream::Stderr {
            &mut err
        } else {
            &mut out
        };
        // With --timestamps the line already starts with its RFC 3339 time.
        let ok = w.write_all(line.log.as_bytes());
        let _ = w.flush();
        ok.is_ok()
    })?;
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

pub fn exec(g: &Global, a: ExecArgs) -> anyhow::Result<u8> {
    let svc = service(g)?;
    let opts = ExecOptions {
        cmd: a.command,
        env: a.env,
        workdir: a.workdir,
        user: a.user,
        tty: a.tty,
    };
    let code = if a.tty {
        crate::terminal::exec_in_pty(&svc, &a.container, &opts, a.interactive)?
    } else {
        svc.exec(&a.container, &opts)?
    };
    Ok(code.clamp(0, 255) as u8)
}

pub fn prune(g: &Global, force: bool) -> anyhow::Result<u8> {
    if !force {
        println!("WARNING! This will remove all stopped containers.");
        if !super::confirm("Are you sure you want to continue?") {
            return Ok(0);
        }
    }
    let svc = service(g)?;
    let mut deleted = Vec::new();
    for s in svc.list(true)? {
        if !s.status.is_running() {
            svc.remove(&s.record.id, false, false)?;
            deleted.push(s.record.id.clone());
        }
    }
    if !deleted.is_empty() {
        println!("Deleted Containers:");
        for d in &deleted {
            println!("{d}");
        }
        println!();
    }
    println!("Total reclaimed space: 0B");
    Ok(0)
}

/// `berth __shim DIR`: the container's supervisor. Runs the container, its port proxies
/// and log pump, records its exit, then releases its resources (and applies --rm and the
/// restart policy) — all without the engine.
pub fn shim(g: &Global, state_dir: &Path) -> anyhow::Result<u8> {
    let code = berth_runtime::shim::shim_main(state_dir, |_cfg, _pid, fds| {
        let ports: Option<berth_containers::ShimPorts> = std::fs::read(state_dir.join("ports.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        if let Some(ports) = ports {
            if let Some(ip) = ports.container_ip.as_deref().and_then(|ip| ip.parse().ok()) {
                let bound: Vec<berth_net::BoundPort> = ports_specs(&ports)
                    .into_iter()
                    .zip(fds)
                    .map(|(spec, fd)| berth_net::BoundPort {
                        listener: berth_net::Listener::from_fd(fd, spec.proto),
                        spec,
                    })
                    .collect();
                if let Ok(set) = berth_net::spawn_proxies(bound, ip) {
                    // The proxies live exactly as long as this shim process.
                    std::mem::forget(set);
                }
            }
        }
    });
    // shim_main forks: the copy that started it returns at once; only the detached shim
    // (whose pid is in state.json) goes on to clean up after the container.
    let me = std::process::id() as i32;
    let is_shim = berth_runtime::shim::read_state(state_dir)
        .ok()
        .flatten()
        .is_some_and(|s| s.shim_pid == me);
    if !is_shim {
        return Ok(code.clamp(0, 255) as u8);
    }
    // The container exited: release its rootfs, network and cgroup. The state dir is
    // ROOT/containers/<id>/shim, which also tells which store this shim belongs to.
    let container_dir = state_dir.parent();
    let id = container_dir
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut g = g.clone();
    if let Some(root) = container_dir.and_then(Path::parent).and_then(Path::parent) {
        g.root = Some(root.to_path_buf());
    }
    if let Ok(svc) = service(&g) {
        let _ = svc.after_exit(&id);
    }
    Ok(code.clamp(0, 255) as u8)
}

fn ports_specs(ports: &berth_containers::ShimPorts) -> Vec<berth_net::PortSpec> {
    ports
        .ports
        .iter()
        .map(|p| berth_net::PortSpec {
            host_ip: p
                .host_ip
                .parse()
                .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
            host_port: p.host_port,
            container_port: p.container_port,
            proto: if p.proto == "udp" {
                berth_net::Proto::Udp
            } else {
                berth_net::Proto::Tcp
            },
        })
        .collect()
}

/// `stats [--no-stream] [-a] [CONTAINER...]`: docker's columns; CPU % over one second.
pub fn stats(g: &Global, a: StatsArgs) -> anyhow::Result<u8> {
    use std::io::IsTerminal;
    let svc = service(g)?;
    let records: Vec<(String, ContainerRecord)> = if a.containers.is_empty() {
        let all = svc.list(a.all)?.into_iter().map(|s| s.record);
        all.map(|r| (r.id[..12].to_string(), r)).collect()
    } else {
        a.containers
            .iter()
            .map(|c| svc.find(c).map(|r| (c.clone(), r)))
            .collect::<Result<_, _>>()?
    };
    let kind = &crate::format::contexts::STATS;
    let template = crate::format::choose(kind, a.format.as_deref(), "statsFormat", false, false)?;
    let host = berth_host::facts::facts();
    let (host_mem, ncpu) = (host.memory_bytes, host.cpus as f64);
    let mut prev: Vec<Option<berth_containers::StatsSample>> =
        records.iter().map(|(_, r)| svc.stats(r).ok().flatten()).collect();
    let tty = std::io::stdout().is_terminal();
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let mut rows = Vec::new();
        for ((named, rec), before) in records.iter().zip(prev.iter_mut()) {
            let now = svc.stats(rec)?;
            let row = |cpu_perc, mem_usage, mem_perc, net_io, pids| crate::format::contexts::StatsRow {
                container: named.clone(),
                name: rec.name.clone(),
                id: rec.id.clone(),
                cpu_perc,
                mem_usage,
                mem_perc,
                net_io,
                block_io: "0B / 0B".into(),
                pids,
            };
            let row = match (&now, &*before) {
                (Some(n), Some(b)) => {
                    let wall = n.at.duration_since(b.at).as_nanos().max(1) as f64;
                    let cpu = (n.cpu_usage_ns.saturating_sub(b.cpu_usage_ns)) as f64 / wall * 100.0;
                    let limit = n.memory_limit.unwrap_or(host_mem).min(host_mem.max(1));
                    row(
                        format!("{:.2}%", cpu.min(100.0 * ncpu)),
                        format!("{} / {}", binary_size(n.memory_usage), binary_size(limit)),
                        format!("{:.2}%", n.memory_usage as f64 / limit as f64 * 100.0),
                        format!("{} / {}", render::size(n.net_rx), render::size(n.net_tx)),
                        n.pids.to_string(),
                    )
                }
                _ => row(
                    "0.00%".into(),
                    "0B / 0B".into(),
                    "0.00%".into(),
                    "0B / 0B".into(),
                    "0".into(),
                ),
            };
            rows.push(crate::format::contexts::stats(row));
            *before = now;
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

/// docker stats' binary units: `12.3MiB`, `23.4GiB`.
fn binary_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    // Go's %.4g: four significant digits, trailing zeros dropped.
    let decimals = if v >= 1000.0 {
        0
    } else if v >= 100.0 {
        1
    } else if v >= 10.0 {
        2
    } else {
        3
    };
    let text = format!("{v:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    format!("{text}{}", UNITS[i])
}

pub async fn attach(g: &Global, a: AttachArgs) -> anyhow::Result<u8> {
    let svc = service(g)?;
    let rec = svc.find(&a.container)?;
    if !svc.status(&rec).is_running() {
        bail!(
            "you cannot attach to a stopped container {} — start it first (`berth start -ai {}`)",
            rec.name,
            rec.name
        );
    }
    let session = crate::terminal::Session {
        tty: rec.config.tty,
        stdin: !a.no_stdin && rec.config.open_stdin,
        detach_keys: berth_containers::parse_detach_keys(&a.detach_keys)
            .map_err(berth_containers::ContainerError::InvalidArgument)?,
        replay: false,
    };
    let sig_proxy = a.sig_proxy && !rec.config.tty;
    Ok(match attach_until_exit(&svc, &rec, session, sig_proxy).await? {
        Some(code) => code.clamp(0, 255) as u8,
        None => 0,
    })
}
