//! `build`, `builder prune` and `system prune`, over the client: the context goes to the
//! engine as a tar (docker's `POST /build`), its output comes back as docker's JSON lines.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use hyper::Method;

use crate::cli::{BuildArgs, SystemPruneArgs};
use crate::client::{self, Client};
use crate::render;

/// Where a Dockerfile from outside the context travels inside the context's tar.
const OUTSIDE_DOCKERFILE: &str = ".berth-dockerfile";

fn key_value(s: &str, what: &str) -> anyhow::Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => bail!("invalid {what} \"{s}\": use KEY=value"),
    }
}

/// The context directory as a tar, plus the Dockerfile when it lies outside the context.
fn context_tar(dir: &Path, outside: Option<PathBuf>, w: &mut dyn Write) -> std::io::Result<()> {
    let mut tar = tar::Builder::new(w);
    tar.follow_symlinks(false);
    tar.mode(tar::HeaderMode::Complete);
    tar.append_dir_all(".", dir)?;
    if let Some(file) = outside {
        tar.append_path_with_name(&file, OUTSIDE_DOCKERFILE)?;
    }
    tar.finish()
}

/// The `dockerfile` query value, and the file to add when it lies outside the context.
fn dockerfile_in_context(
    context: &Path,
    file: Option<&Path>,
) -> anyhow::Result<(Option<String>, Option<PathBuf>)> {
    let Some(file) = file else {
        return Ok((None, None));
    };
    // A relative -f is relative to the current directory, as with docker.
    let abs = std::path::absolute(file).with_context(|| format!("cannot find {}", file.display()))?;
    if !abs.is_file() {
        bail!(
            "cannot find the Dockerfile {} — check the path given to -f",
            file.display()
        );
    }
    let ctx = std::fs::canonicalize(context)?;
    let real = std::fs::canonicalize(&abs)?;
    match real.strip_prefix(&ctx) {
        Ok(rel) => Ok((Some(rel.to_string_lossy().to_string()), None)),
        Err(_) => Ok((Some(OUTSIDE_DOCKERFILE.to_string()), Some(real))),
    }
}

pub async fn build(c: &Client, a: BuildArgs) -> anyhow::Result<u8> {
    if !a.path.is_dir() {
        bail!(
            "unable to prepare context: the build context {} is not a directory — give the directory that holds your Dockerfile",
            a.path.display()
        );
    }
    let mut build_args = serde_json::Map::new();
    for b in &a.build_args {
        match b.split_once('=') {
            Some((k, v)) => {
                build_args.insert(k.to_string(), v.into());
            }
            // docker takes a bare NAME from the environment, and ignores it if unset.
            None => {
                if let Ok(v) = std::env::var(b) {
                    build_args.insert(b.clone(), v.into());
                }
            }
        }
    }
    let mut labels = serde_json::Map::new();
    for l in &a.labels {
        let (k, v) = key_value(l, "label")?;
        labels.insert(k, v.into());
    }
    let (dockerfile, outside) = dockerfile_in_context(&a.path, a.file.as_deref())?;
    let mut query = vec![format!("networkmode={}", client::q(&a.network))];
    for t in &a.tags {
        berth_reference::ImageRef::parse(t)?;
        query.push(format!("t={}", client::q(t)));
    }
    if let Some(d) = &dockerfile {
        query.push(format!("dockerfile={}", client::q(d)));
    }
    if let Some(t) = &a.target {
        query.push(format!("target={}", client::q(t)));
    }
    for (flag, on) in [("nocache", a.no_cache), ("pull", a.pull), ("q", a.quiet)] {
        if on {
            query.push(format!("{flag}=1"));
        }
    }
    if !build_args.is_empty() {
        query.push(format!(
            "buildargs={}",
            client::q(&serde_json::Value::Object(build_args).to_string())
        ));
    }
    if !labels.is_empty() {
        query.push(format!(
            "labels={}",
            client::q(&serde_json::Value::Object(labels).to_string())
        ));
    }
    let dir = a.path.clone();
    let body = client::streamed(move |w| context_tar(&dir, outside, w));
    let resp = c
        .request(
            Method::POST,
            &format!("/build?{}", query.join("&")),
            &[("Content-Type", "application/x-tar".into())],
            body,
        )
        .await?;
    // Ctrl-C hangs up, which cancels the build in the engine (it releases its mounts).
    let lines = client::json_lines(resp, |v| {
        if let Some(s) = v.get("stream").and_then(|s| s.as_str()) {
            if let Some(w) = s.strip_prefix("[Warning] ") {
                eprint!("[Warning] {w}");
            } else {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(s.as_bytes()).and_then(|()| out.flush());
            }
        }
        Ok(())
    });
    tokio::select! {
        r = lines => r?,
        _ = tokio::signal::ctrl_c() => bail!("the build was cancelled"),
    }
    Ok(0)
}

/// `POST /build/prune`; (entries removed, bytes freed).
async fn prune_cache(c: &Client, all: bool) -> anyhow::Result<(u64, u64)> {
    let v = c
        .post_json(
            if all { "/build/prune?all=1" } else { "/build/prune" },
            client::empty(),
        )
        .await?;
    let entries = v
        .get("EntriesRemoved")
        .and_then(|n| n.as_u64())
        .or_else(|| {
            v.get("CachesDeleted")
                .and_then(|d| d.as_array())
                .map(|d| d.len() as u64)
        })
        .unwrap_or(0);
    Ok((
        entries,
        v.get("SpaceReclaimed").and_then(|n| n.as_u64()).unwrap_or(0),
    ))
}

pub async fn builder_prune(c: &Client, all: bool, force: bool) -> anyhow::Result<u8> {
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
    let (entries, freed) = prune_cache(c, all).await?;
    if entries > 0 {
        println!("Deleted build cache objects: {entries}");
    }
    println!("Total reclaimed space: {}", render::size(freed));
    Ok(0)
}

pub async fn system_prune(c: &Client, a: SystemPruneArgs) -> anyhow::Result<u8> {
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
    let mut freed = super::container::prune_containers(c).await?;
    super::volume::prune_networks(c).await?;
    if a.volumes {
        freed += super::volume::prune_volumes(c, false).await?;
    }
    freed += super::image::prune_images(c, a.all).await?;
    let (entries, cache) = prune_cache(c, a.all).await?;
    if entries > 0 {
        println!("Deleted build cache objects: {entries}");
        println!();
    }
    println!("Total reclaimed space: {}", render::size(freed + cache));
    Ok(0)
}
