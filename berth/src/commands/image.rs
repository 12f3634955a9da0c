//! Image commands: pull, push, images, tag, rmi, inspect, history, save, load, prune.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};

use anyhow::{bail, Context};
use berth_reference::ImageRef;
use bollard::query_parameters as qp;
use futures_util::StreamExt;
use hyper::Method;

use crate::cli::{
    HistoryArgs, ImagesArgs, InspectArgs, LoadArgs, PruneArgs, PullArgs, PushArgs, RmiArgs, SaveArgs,
};
use crate::client::{self, api_error, Client};
use crate::progress::Progress;
use crate::render;

/// `X-Registry-Auth` for a registry, from the user's docker config (as docker sends it).
fn registry_auth(registry: &str) -> Vec<(&'static str, String)> {
    use base64::Engine as _;
    let Some(path) = berth_registry::credentials::default_path() else {
        return Vec::new();
    };
    let cred = berth_registry::credentials::DockerConfigFile::load(&path)
        .ok()
        .and_then(|f| f.lookup(registry).ok().flatten());
    match cred {
        Some(c) => {
            let json = serde_json::json!({"username": c.username, "password": c.password, "serveraddress": registry});
            vec![(
                "X-Registry-Auth",
                base64::engine::general_purpose::URL_SAFE.encode(json.to_string()),
            )]
        }
        None => Vec::new(),
    }
}

/// Pulls through the engine, rendering its progress; the engine's final status lines
/// ("Digest: …", "Status: …") come through the same stream.
pub(crate) async fn pull_image(
    c: &Client,
    reference: &ImageRef,
    platform: Option<&str>,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let tag = match (reference.digest(), reference.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => "latest".to_string(),
    };
    let mut path = format!(
        "/images/create?fromImage={}&tag={}",
        client::q(&reference.name()),
        client::q(&tag)
    );
    if let Some(p) = platform {
        path.push_str(&format!("&platform={}", client::q(p)));
    }
    registry_stream(c, &path, reference, progress).await
}

/// A pull or push: the request with the user's login, its progress rendered.
async fn registry_stream(
    c: &Client,
    path: &str,
    reference: &ImageRef,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let auth = registry_auth(reference.domain());
    let resp = c.request(Method::POST, path, &auth, client::empty()).await?;
    client::json_lines(resp, |v| {
        progress.message(v);
        Ok(())
    })
    .await
}

pub async fn pull(c: &Client, a: PullArgs) -> anyhow::Result<u8> {
    let reference = ImageRef::parse(&a.image)?;
    if !a.quiet && ImageRef::parse_name_only(&a.image)?.tag().is_none() && reference.digest().is_none() {
        println!("Using default tag: latest");
    }
    let mut progress = Progress::stdout(a.quiet);
    pull_image(c, &reference, a.platform.as_deref(), &mut progress).await?;
    println!("{reference}");
    Ok(0)
}

pub async fn push(c: &Client, a: PushArgs) -> anyhow::Result<u8> {
    let reference = ImageRef::parse(&a.image)?;
    let mut path = format!("/images/{}/push", reference.name());
    if let Some(t) = reference.tag() {
        path.push_str(&format!("?tag={}", client::q(t)));
    }
    registry_stream(c, &path, &reference, &mut Progress::stdout(a.quiet)).await?;
    if a.quiet {
        println!("{reference}");
    }
    Ok(0)
}

pub async fn images(c: &Client, a: ImagesArgs) -> anyhow::Result<u8> {
    let opts = qp::ListImagesOptions {
        all: a.all,
        digests: a.digests,
        filters: a
            .reference
            .clone()
            .map(|r| HashMap::from([("reference".to_string(), vec![r])])),
        ..Default::default()
    };
    let rows = c.docker.list_images(Some(opts)).await.map_err(api_error)?;
    crate::lists::images(&rows, &a)?;
    Ok(0)
}

/// `name[:tag]` → (repository, tag); a digest or a registry port is not a tag.
pub(crate) fn split_tag(reference: &str) -> (String, Option<String>) {
    match reference.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') && !repo.is_empty() => {
            (repo.to_string(), Some(tag.to_string()))
        }
        _ => (reference.to_string(), None),
    }
}

pub async fn tag(c: &Client, source: &str, target: &str) -> anyhow::Result<u8> {
    // Checked here too, so a bad target gets the reference parser's sentence.
    ImageRef::parse(target)?;
    let (repo, tag) = split_tag(target);
    let opts = qp::TagImageOptions {
        repo: Some(repo),
        tag,
    };
    c.docker.tag_image(source, Some(opts)).await.map_err(api_error)?;
    Ok(0)
}

pub async fn rmi(c: &Client, a: RmiArgs) -> anyhow::Result<u8> {
    let mut code = 0;
    for name in &a.images {
        let opts = qp::RemoveImageOptions {
            force: a.force,
            ..Default::default()
        };
        match c.docker.remove_image(name, Some(opts), None).await {
            Ok(items) => {
                for i in items {
                    if let Some(u) = i.untagged {
                        println!("Untagged: {u}");
                    }
                    if let Some(d) = i.deleted {
                        println!("Deleted: {d}");
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

/// `inspect`: containers first, then images (or only one `--type`), the engine's JSON as it
/// sent it, or `--format`.
pub async fn inspect(c: &Client, a: InspectArgs) -> anyhow::Result<u8> {
    let kind = a.kind.as_deref().unwrap_or("");
    if !matches!(kind, "" | "image" | "container" | "volume" | "network") {
        bail!("--type {kind} is not supported: use image, container, volume or network");
    }
    let mut values = Vec::new();
    let mut code = 0;
    for name in &a.names {
        let tries: &[&str] = match kind {
            "" => &["container", "image"],
            "image" => &["image"],
            "container" => &["container"],
            "volume" => &["volume"],
            _ => &["network"],
        };
        let mut last = None;
        for t in tries {
            let path = match *t {
                "container" => format!("/containers/{}/json", client::q(name)),
                "image" => format!("/images/{name}/json"),
                "volume" => format!("/volumes/{}", client::q(name)),
                _ => format!("/networks/{}", client::q(name)),
            };
            match c.get_json(&path).await {
                Ok(v) => {
                    values.push(v);
                    last = None;
                    break;
                }
                Err(e) => last = Some((t, e)),
            }
        }
        if let Some((t, e)) = last {
            if *t == "container" && kind == "container" {
                eprintln!("Error: no such container: {name} — run `berth ps -a` to see your containers");
            } else {
                eprintln!("Error: {e}");
            }
            code = 1;
        }
    }
    crate::lists::inspect(&values, a.format.as_deref())?;
    Ok(code)
}

pub async fn history(c: &Client, a: HistoryArgs) -> anyhow::Result<u8> {
    let rows = c.docker.image_history(&a.image).await.map_err(api_error)?;
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
            let created_at = (r.created > 0)
                .then(|| time::OffsetDateTime::from_unix_timestamp(r.created).ok())
                .flatten()
                .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok());
            let (created, size) = if a.human {
                (
                    render::ago(created_at.as_deref()),
                    render::size(r.size.max(0) as u64),
                )
            } else {
                (created_at.unwrap_or_default(), r.size.to_string())
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

pub async fn save(c: &Client, a: SaveArgs) -> anyhow::Result<u8> {
    if a.output.is_none() && std::io::stdout().is_terminal() {
        bail!("cowardly refusing to save to a terminal — use the -o flag or redirect the output");
    }
    let names: Vec<String> = a
        .images
        .iter()
        .map(|n| format!("names={}", client::q(n)))
        .collect();
    let resp = c
        .request(
            Method::GET,
            &format!("/images/get?{}", names.join("&")),
            &[],
            client::empty(),
        )
        .await?;
    let mut out: Box<dyn Write + Send> = match &a.output {
        // Written beside the target and renamed, so a failed save leaves no half archive.
        Some(path) => {
            let tmp = partial(path);
            Box::new(std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?)
        }
        None => Box::new(std::io::stdout()),
    };
    let mut body = http_body_util::BodyExt::into_data_stream(resp.into_body());
    let copied: anyhow::Result<()> = async {
        while let Some(chunk) = body.next().await {
            out.write_all(&chunk.context("the engine stopped sending the archive")?)?;
        }
        out.flush()?;
        Ok(())
    }
    .await;
    drop(out);
    if let Some(path) = &a.output {
        match copied {
            Ok(()) => std::fs::rename(partial(path), path)
                .with_context(|| format!("cannot write {}", path.display()))?,
            Err(e) => {
                let _ = std::fs::remove_file(partial(path));
                return Err(e);
            }
        }
    } else {
        copied?;
    }
    Ok(0)
}

fn partial(path: &std::path::Path) -> std::path::PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

pub async fn load(c: &Client, a: LoadArgs) -> anyhow::Result<u8> {
    let body = match &a.input {
        Some(p) => {
            let mut f = std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
            client::streamed(move |w| std::io::copy(&mut f, w).map(|_| ()))
        }
        None => {
            if std::io::stdin().is_terminal() {
                bail!("requested load from stdin, but stdin is empty — use -i FILE or pipe an archive in");
            }
            client::streamed(|w| std::io::copy(&mut std::io::stdin().lock(), w).map(|_| ()))
        }
    };
    let path = if a.quiet {
        "/images/load?quiet=1"
    } else {
        "/images/load"
    };
    let resp = c
        .request(
            Method::POST,
            path,
            &[("Content-Type", "application/x-tar".into())],
            body,
        )
        .await?;
    client::json_lines(resp, |v| {
        if let Some(s) = v.get("stream").and_then(|s| s.as_str()) {
            if !a.quiet || s.starts_with("Loaded") {
                print!("{s}");
            }
        }
        Ok(())
    })
    .await?;
    Ok(0)
}

pub(crate) fn print_deleted(items: &[bollard::models::ImageDeleteResponseItem]) {
    for i in items {
        if let Some(u) = &i.untagged {
            println!("untagged: {u}");
        }
        if let Some(d) = &i.deleted {
            println!("deleted: {d}");
        }
    }
}

pub async fn prune(c: &Client, a: PruneArgs) -> anyhow::Result<u8> {
    if !a.force {
        println!(
            "{}",
            if a.all {
                "WARNING! This will remove all images without at least one container associated to them."
            } else {
                "WARNING! This will remove all dangling images."
            }
        );
        if !super::confirm("Are you sure you want to continue?") {
            return Ok(0);
        }
    }
    let freed = prune_images(c, a.all).await?;
    println!("Total reclaimed space: {}", render::size(freed));
    Ok(0)
}

/// `POST /images/prune`, printing docker's "Deleted Images:" list; the bytes freed.
pub(crate) async fn prune_images(c: &Client, all: bool) -> anyhow::Result<u64> {
    let filters = all.then(|| HashMap::from([("dangling".to_string(), vec!["false".to_string()])]));
    let report = c
        .docker
        .prune_images(Some(qp::PruneImagesOptions { filters }))
        .await
        .map_err(api_error)?;
    let deleted = report.images_deleted.unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Images:");
        print_deleted(&deleted);
        println!();
    }
    Ok(report.space_reclaimed.unwrap_or(0).max(0) as u64)
}

/// `berth search`: docker's table of what `GET /images/search` found.
pub async fn search(c: &Client, a: crate::cli::SearchArgs) -> anyhow::Result<u8> {
    let mut filters: HashMap<String, Vec<String>> = HashMap::new();
    for f in &a.filter {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("invalid filter '{f}' — use key=value, e.g. is-official=true"))?;
        filters.entry(k.to_string()).or_default().push(v.to_string());
    }
    let mut path = format!("/images/search?term={}&limit={}", client::q(&a.term), a.limit);
    if !filters.is_empty() {
        path.push_str(&format!(
            "&filters={}",
            client::q(&serde_json::to_string(&filters)?)
        ));
    }
    let found = c.get_json(&path).await?;
    let rows = found.as_array().cloned().unwrap_or_default();
    let cell = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    let mut table = vec![["NAME", "DESCRIPTION", "STARS", "OFFICIAL"]
        .map(String::from)
        .to_vec()];
    for r in &rows {
        let mut description = cell(r, "description").replace('\n', " ");
        if !a.no_trunc && description.chars().count() > 45 {
            description = format!("{}…", description.chars().take(44).collect::<String>());
        }
        let official = r.get("is_official").and_then(|o| o.as_bool()) == Some(true);
        table.push(vec![
            cell(r, "name"),
            description,
            r.get("star_count")
                .and_then(|s| s.as_u64())
                .unwrap_or(0)
                .to_string(),
            if official { "[OK]".into() } else { String::new() },
        ]);
    }
    let widths: Vec<usize> = (0..4)
        .map(|i| table.iter().map(|row| row[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = std::io::stdout().lock();
    for row in table {
        let line: Vec<String> = row.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        writeln!(out, "{}", line.join("   ").trim_end())?;
    }
    Ok(0)
}
