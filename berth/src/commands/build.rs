//! `build`, `builder prune` and `system prune`: argument handling and docker's classic
//! builder output; the engine (`berth_builder`) does the work.

use std::io::Write;

use berth_builder::{BuildError, BuildEvent, BuildOptions, Builder};

use crate::cli::{BuildArgs, Global, SystemPruneArgs};
use crate::{engine, render};

fn open_builder(g: &Global) -> anyhow::Result<(Builder, berth_containers::ContainerService)> {
    let images = engine::open(g)?;
    let containers = berth_containers::ContainerService::new(images.clone(), std::env::current_exe()?)?;
    let builder = Builder::new(images, Some(containers.network().clone()))?;
    Ok((builder, containers))
}

fn key_value(s: &str, what: &str) -> anyhow::Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => anyhow::bail!("invalid {what} \"{s}\": use KEY=value"),
    }
}

fn render_event(e: BuildEvent) {
    let mut out = std::io::stdout().lock();
    let _ = match e {
        BuildEvent::Step {
            number,
            total,
            instruction,
        } => writeln!(out, "Step {number}/{total} : {instruction}"),
        BuildEvent::UsingCache => writeln!(out, " ---> Using cache"),
        BuildEvent::Running { container } => writeln!(out, " ---> Running in {container}"),
        BuildEvent::Output(bytes) => out.write_all(&bytes),
        BuildEvent::RemovingIntermediate { container } => {
            writeln!(out, "Removing intermediate container {container}")
        }
        BuildEvent::StepDone { image } => writeln!(out, " ---> {}", image.short()),
        BuildEvent::Triggers { count } => writeln!(
            out,
            "# Executing {count} build trigger{}",
            if count == 1 { "" } else { "s" }
        ),
        BuildEvent::Status(s) => writeln!(out, "{s}"),
        BuildEvent::Warning(w) => {
            drop(out);
            eprintln!("[Warning] {w}");
            return;
        }
    };
    let _ = out.flush();
}

pub async fn build(g: &Global, a: BuildArgs) -> anyhow::Result<u8> {
    let mut build_args = Vec::new();
    for b in &a.build_args {
        match b.split_once('=') {
            Some((k, v)) => build_args.push((k.to_string(), v.to_string())),
            // docker takes a bare NAME from the environment, and ignores it if unset.
            None => {
                if let Ok(v) = std::env::var(b) {
                    build_args.push((b.clone(), v));
                }
            }
        }
    }
    let labels = a
        .labels
        .iter()
        .map(|l| key_value(l, "label"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if !matches!(a.network.as_str(), "default" | "bridge" | "none" | "host") {
        anyhow::bail!(
            "network mode \"{}\" is not supported for builds — use default, none or host",
            a.network
        );
    }
    let opts = BuildOptions {
        context: a.path.clone(),
        dockerfile: a.file.clone(),
        tags: a.tags.clone(),
        target: a.target.clone(),
        no_cache: a.no_cache,
        pull: a.pull,
        build_args,
        labels,
        network: a.network.clone(),
    };
    let (builder, _containers) = open_builder(g)?;
    let quiet = a.quiet;
    let canceller = builder.clone();
    let mut task = tokio::task::spawn_blocking(move || {
        builder.build(&opts, &mut |e| {
            if !quiet || matches!(e, BuildEvent::Warning(_)) {
                render_event(e)
            }
        })
    });
    // Ctrl-C stops the RUN in flight; the build then releases its mounts and network.
    let result = tokio::select! {
        r = &mut task => r?,
        _ = tokio::signal::ctrl_c() => {
            canceller.cancel();
            task.await?
        }
    };
    match result {
        Ok(outcome) => {
            if quiet {
                println!("{}", outcome.image_id);
            } else {
                println!("Successfully built {}", outcome.image_id.short());
                for t in &outcome.tags {
                    println!("Successfully tagged {t}");
                }
            }
            Ok(0)
        }
        Err(e) => {
            if let BuildError::RunFailed { last_lines, .. } = &e {
                if quiet {
                    for l in last_lines {
                        eprintln!("{l}");
                    }
                }
            }
            Err(e.into())
        }
    }
}

pub fn builder_prune(g: &Global, all: bool, force: bool) -> anyhow::Result<u8> {
    if !force {
        println!(
            "{}",
            if all {
                "WARNING! This will remove all build cache."
            } else {
                "WARNING! This will remove all dangling build cache."
            }
        );
        if !super::confirm("Are you sure you want to continue?") {
            return Ok(0);
        }
    }
    let (builder, _) = open_builder(g)?;
    let report = builder.prune(all)?;
    if report.entries_removed > 0 {
        println!("Deleted build cache objects: {}", report.entries_removed);
    }
    println!("Total reclaimed space: {}", render::size(report.bytes_freed));
    Ok(0)
}

pub fn system_prune(g: &Global, a: SystemPruneArgs) -> anyhow::Result<u8> {
    if !a.force {
        println!("WARNING! This will remove:");
        println!("  - all stopped containers");
        println!("  - all networks not used by at least one container");
        if a.volumes {
            println!("  - all anonymous volumes not used by at least one container");
        }
        if a.all {
            println!("  - all images without at least one container associated to them");
            println!("  - all build cache");
        } else {
            println!("  - all dangling images");
            println!("  - unused build cache");
        }
        if !super::confirm("\nAre you sure you want to continue?") {
            return Ok(0);
        }
    }
    let (builder, svc) = open_builder(g)?;
    let mut containers = Vec::new();
    for s in svc.list(true)? {
        if !s.status.is_running() {
            svc.remove(&s.record.id, false, false)?;
            containers.push(s.record.id.clone());
        }
    }
    if !containers.is_empty() {
        println!("Deleted Containers:");
        for c in &containers {
            println!("{c}");
        }
        println!();
    }
    let net = svc.network();
    let mut networks = Vec::new();
    for n in net.list_networks()? {
        if n.name == "bridge" || n.name == "host" || n.name == "none" {
            continue;
        }
        if net.endpoints(&n.name)?.is_empty() && net.remove_network(&n.name).is_ok() {
            networks.push(n.name.clone());
        }
    }
    if !networks.is_empty() {
        println!("Deleted Networks:");
        for n in &networks {
            println!("{n}");
        }
        println!();
    }
    if a.volumes {
        let vols = svc.volumes();
        let mut deleted = Vec::new();
        for v in vols.list()? {
            let anonymous = v.name.len() == 64 && v.name.bytes().all(|b| b.is_ascii_hexdigit());
            if anonymous && svc.users_of_volume(&v.name)?.is_empty() {
                vols.remove(&v.name)?;
                deleted.push(v.name);
            }
        }
        if !deleted.is_empty() {
            println!("Deleted Volumes:");
            for d in deleted {
                println!("{d}");
            }
            println!();
        }
    }
    let in_use: Vec<berth_oci::Digest> = svc.records()?.into_iter().map(|r| r.image_id).collect();
    let report = svc.images().prune(a.all, &in_use)?;
    if !report.events.is_empty() {
        println!("Deleted Images:");
        super::image::print_remove_events(&report.events, true);
        println!();
    }
    let cache = builder.prune(a.all)?;
    if cache.entries_removed > 0 {
        println!("Deleted build cache objects: {}", cache.entries_removed);
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        render::size(report.space_reclaimed + cache.bytes_freed)
    );
    Ok(0)
}
