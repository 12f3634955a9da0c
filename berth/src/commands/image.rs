//! Image commands: pull, push, images, tag, rmi, inspect, history, save, load, prune.

use std::io::{IsTerminal, Write};

use anyhow::{bail, Context};
use berth_images::{PullOptions, RemoveEvent};
use berth_oci::Platform;
use berth_reference::ImageRef;

use crate::cli::{
    Global, HistoryArgs, ImagesArgs, InspectArgs, LoadArgs, PruneArgs, PullArgs, PushArgs, RmiArgs, SaveArgs,
};
use crate::{engine, progress, render};

pub async fn pull(g: &Global, a: PullArgs) -> anyhow::Result<u8> {
    let reference = ImageRef::parse(&a.image)?;
    let platform = a.platform.as_deref().map(str::parse::<Platform>).transpose()?;
    let images = engine::open(g)?;
    if !a.quiet && ImageRef::parse_name_only(&a.image)?.tag().is_none() && reference.digest().is_none() {
        println!("Using default tag: latest");
    }
    let outcome = images
        .pull(
            &reference,
            &PullOptions { platform },
            progress::for_stdout(a.quiet),
        )
        .await?;
    if !a.quiet {
        println!("Digest: {}", outcome.digest);
        let shown = reference.familiar();
        if outcome.up_to_date {
            println!("Status: Image is up to date for {shown}");
        } else {
            println!("Status: Downloaded newer image for {shown}");
        }
    }
    println!("{reference}");
    Ok(0)
}

pub async fn push(g: &Global, a: PushArgs) -> anyhow::Result<u8> {
    let reference = ImageRef::parse(&a.image)?;
    let images = engine::open(g)?;
    let outcome = images.push(&reference, progress::for_stdout(a.quiet)).await?;
    if a.quiet {
        println!("{reference}");
    } else {
        println!(
            "{}: digest: {} size: {}",
            outcome.tag, outcome.digest, outcome.size
        );
    }
    Ok(0)
}

pub fn images(g: &Global, a: ImagesArgs) -> anyhow::Result<u8> {
    let images = engine::open(g)?;
    let mut rows = images.list()?;
    if let Some(filter) = &a.reference {
        let wanted = ImageRef::parse_name_only(filter)?;
        rows.retain(|r| r.repository == wanted.familiar_name() && wanted.tag().is_none_or(|t| r.tag == t));
    }
    let containers = berth_containers::ContainerService::new(images.clone(), std::env::current_exe()?)?;
    let users: Vec<berth_oci::Digest> = containers.records()?.into_iter().map(|r| r.image_id).collect();
    let kept: Vec<&berth_images::ImageSummary> = rows.iter().collect();
    let summaries = berth_api::image_summaries(&kept, &users)
        .into_iter()
        .map(crate::lists::model)
        .collect::<anyhow::Result<Vec<_>>>()?;
    crate::lists::images(&summaries, &a)?;
    Ok(0)
}

pub fn tag(g: &Global, source: &str, target: &str) -> anyhow::Result<u8> {
    engine::open(g)?.tag(source, target)?;
    Ok(0)
}

pub fn rmi(g: &Global, a: RmiArgs) -> anyhow::Result<u8> {
    let images = engine::open(g)?;
    let containers = berth_containers::ContainerService::new(images.clone(), std::env::current_exe()?)?;
    let mut code = 0;
    for name in &a.images {
        if !a.force {
            if let Ok(rec) = images.resolve(name) {
                if let Some(user) = containers.users_of_image(&rec.id)?.first() {
                    eprintln!(
                        "Error: {}",
                        berth_containers::ContainerError::ImageInUse {
                            image: name.clone(),
                            container: user.name.clone()
                        }
                    );
                    code = 1;
                    continue;
                }
            }
        }
        match images.remove(name, a.force) {
            Ok(events) => print_remove_events(&events, false),
            Err(e) => {
                eprintln!("Error: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

pub(crate) fn print_remove_events(events: &[RemoveEvent], lower: bool) {
    for e in events {
        let (word, what) = match e {
            RemoveEvent::Untagged(t) => ("Untagged", t.clone()),
            RemoveEvent::Deleted(d) => ("Deleted", d.to_string()),
        };
        if lower {
            println!("{}: {what}", word.to_lowercase());
        } else {
            println!("{word}: {what}");
        }
    }
}

pub fn inspect(g: &Global, a: InspectArgs) -> anyhow::Result<u8> {
    let kind = a.kind.as_deref().unwrap_or("");
    if !matches!(kind, "" | "image" | "container") {
        bail!("--type {kind} is not supported: use image or container");
    }
    let images = engine::open(g)?;
    let containers = berth_containers::ContainerService::new(images.clone(), std::env::current_exe()?)?;
    let mut values = Vec::new();
    let mut code = 0;
    for name in &a.names {
        if kind != "image" {
            if let Ok(rec) = containers.find(name) {
                values.push(berth_api::container_inspect(&containers, &rec));
                continue;
            }
            if kind == "container" {
                eprintln!("Error: no such container: {name} — run `berth ps -a` to see your containers");
                code = 1;
                continue;
            }
        }
        match images
            .resolve(name)
            .and_then(|rec| images.config(&rec).map(|c| (rec, c)))
        {
            Ok((rec, config)) => values.push(berth_api::image_inspect(&images, &rec, &config)?),
            Err(e) => {
                eprintln!("Error: {e}");
                code = 1;
            }
        }
    }
    crate::lists::inspect(&values, a.format.as_deref())?;
    Ok(code)
}

pub fn history(g: &Global, a: HistoryArgs) -> anyhow::Result<u8> {
    let images = engine::open(g)?;
    let rows = images.history(&a.image)?;
    let mut out = std::io::stdout().lock();
    if a.quiet {
        for r in &rows {
            writeln!(out, "{}", short_id(&r.id, a.no_trunc))?;
        }
        return Ok(0);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let created_by = if a.no_trunc {
                r.created_by.clone()
            } else {
                crate::format::contexts::ellipsis(&r.created_by, 45)
            };
            let (created, size) = if a.human {
                (render::ago(r.created.as_deref()), render::size(r.size))
            } else {
                (r.created.clone().unwrap_or_default(), r.size.to_string())
            };
            vec![
                short_id(&r.id, a.no_trunc),
                created,
                created_by,
                size,
                r.comment.clone(),
            ]
        })
        .collect();
    render::table(
        &mut out,
        &["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
        &table,
    )?;
    Ok(0)
}

fn short_id(id: &str, no_trunc: bool) -> String {
    match id.strip_prefix("sha256:") {
        Some(hex) if !no_trunc => hex[..12.min(hex.len())].to_string(),
        _ => id.to_string(),
    }
}

pub fn save(g: &Global, a: SaveArgs) -> anyhow::Result<u8> {
    let images = engine::open(g)?;
    match &a.output {
        Some(path) => images.save(&a.images, path)?,
        None => {
            if std::io::stdout().is_terminal() {
                bail!("cowardly refusing to save to a terminal — use the -o flag or redirect the output");
            }
            let tmp = tempfile_path(images.store().root())?;
            let result = images
                .save(&a.images, &tmp)
                .map_err(anyhow::Error::from)
                .and_then(|()| {
                    let mut f = std::fs::File::open(&tmp)?;
                    std::io::copy(&mut f, &mut std::io::stdout().lock())?;
                    Ok(())
                });
            let _ = std::fs::remove_file(&tmp);
            result?;
        }
    }
    Ok(0)
}

pub fn load(g: &Global, a: LoadArgs) -> anyhow::Result<u8> {
    let images = engine::open(g)?;
    let (path, cleanup) = match &a.input {
        Some(p) => (p.clone(), false),
        None => {
            if std::io::stdin().is_terminal() {
                bail!("requested load from stdin, but stdin is empty — use -i FILE or pipe an archive in");
            }
            let tmp = tempfile_path(images.store().root())?;
            let mut f =
                std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
            std::io::copy(&mut std::io::stdin().lock(), &mut f)?;
            (tmp, true)
        }
    };
    let result = images.load(&path);
    if cleanup {
        let _ = std::fs::remove_file(&path);
    }
    for line in result? {
        if !a.quiet || line.starts_with("Loaded") {
            println!("{line}");
        }
    }
    Ok(0)
}

fn tempfile_path(root: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    let dir = root.join("tmp");
    std::fs::create_dir_all(&dir)?;
    Ok(dir.join(format!(
        "stream-{}-{}",
        std::process::id(),
        time::OffsetDateTime::now_utc().unix_timestamp_nanos()
    )))
}

pub fn prune(g: &Global, a: PruneArgs) -> anyhow::Result<u8> {
    if !a.force {
        let what = if a.all {
            "WARNING! This will remove all images without at least one container associated to them."
        } else {
            "WARNING! This will remove all dangling images."
        };
        println!("{what}");
        if !super::confirm("Are you sure you want to continue?") {
            return Ok(0);
        }
    }
    let images = engine::open(g)?;
    let containers = berth_containers::ContainerService::new(images.clone(), std::env::current_exe()?)?;
    let in_use: Vec<berth_oci::Digest> = containers.records()?.into_iter().map(|r| r.image_id).collect();
    let report = images.prune(a.all, &in_use)?;
    if !report.events.is_empty() {
        println!("Deleted Images:");
        print_remove_events(&report.events, true);
        println!();
    }
    println!("Total reclaimed space: {}", render::size(report.space_reclaimed));
    Ok(0)
}
