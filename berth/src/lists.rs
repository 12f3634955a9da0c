//! What `ps`, `images`, `volume ls` and `network ls` print, from the Engine API's list
//! shapes (bollard's models): the in-process commands build them with `berth_api`'s
//! `*_summary` functions, `remote.rs` gets them from the engine, and both print here.

use std::io::Write;

use bollard::models::{ContainerSummary, ImageSummary, Network, Volume};

use crate::cli::{ImagesArgs, PsArgs};
use crate::format::{self, contexts, Template};

/// docker's own list shape from `berth_api`'s JSON, as the remote path receives it.
pub fn model<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> anyhow::Result<T> {
    serde_json::from_value(v).map_err(|e| {
        anyhow::anyhow!("internal error: an Engine API list row does not parse ({e}) — please report it")
    })
}

fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

pub fn ps(rows: &[ContainerSummary], a: &PsArgs) -> anyhow::Result<()> {
    let kind = &contexts::CONTAINER;
    let t = format::choose(kind, a.format.as_deref(), "psFormat", a.quiet, true)?;
    let values: Vec<_> = rows.iter().map(|c| contexts::container(c, !a.no_trunc)).collect();
    print(&t.render_rows(kind, &values)?)
}

/// `images` with a format, from the config or `--format`, or the default table. (`-q`
/// without a format prints each image ID once and stays with the callers.)
pub fn images(rows: &[ImageSummary], a: &ImagesArgs) -> anyhow::Result<()> {
    let kind = &contexts::IMAGE;
    let default = if a.digests {
        contexts::IMAGE_TABLE_WITH_DIGEST
    } else {
        kind.default_table
    };
    let (mut format, origin) = format::pick(a.format.as_deref(), "imagesFormat", a.quiet);
    // docker adds the digest column to a custom table when --digests asks for it.
    if a.digests && format != "table" && format.starts_with("table") && !format.contains("{{.Digest}}") {
        format.push_str("\t{{.Digest}}");
    }
    let t = match format.as_str() {
        "table" if a.quiet => Template::parse(kind.quiet, None)?,
        "table" => Template::parse(default, None)?,
        f => Template::parse(f, origin.as_deref())?,
    };
    let want_digest = a.digests || format.contains("{{.Digest}}");
    let values: Vec<_> = rows
        .iter()
        .flat_map(|i| contexts::image_rows(i, !a.no_trunc, a.digests, want_digest))
        .collect();
    print(&t.render_rows(kind, &values)?)
}

pub fn volumes(rows: &[Volume], quiet: bool, flag: Option<&str>) -> anyhow::Result<()> {
    let kind = &contexts::VOLUME;
    let t = format::choose(kind, flag, "volumesFormat", quiet, false)?;
    let values: Vec<_> = rows.iter().map(contexts::volume).collect();
    print(&t.render_rows(kind, &values)?)
}

/// `network ls`, sorted by name as docker sorts it.
pub fn networks(rows: &mut [Network], quiet: bool, no_trunc: bool, flag: Option<&str>) -> anyhow::Result<()> {
    let kind = &contexts::NETWORK;
    let t = format::choose(kind, flag, "networksFormat", quiet, false)?;
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    let values: Vec<_> = rows.iter().map(|n| contexts::network(n, !no_trunc)).collect();
    print(&t.render_rows(kind, &values)?)
}

/// `inspect`: docker's indented JSON array, or each object through `--format`.
pub fn inspect(values: &[serde_json::Value], flag: Option<&str>) -> anyhow::Result<()> {
    let Some(f) = flag.filter(|f| !f.is_empty()) else {
        let mut buf = Vec::new();
        let mut ser = serde_json::Serializer::with_formatter(
            &mut buf,
            serde_json::ser::PrettyFormatter::with_indent(b"    "),
        );
        serde::Serialize::serialize(&values, &mut ser)?;
        buf.push(b'\n');
        return print(&String::from_utf8_lossy(&buf));
    };
    let (text, error) = Template::parse(f, None)?.render_inspect(values);
    print(&text)?;
    match error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
