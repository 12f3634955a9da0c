//! What `ps`, `images`, `volume ls` and `network ls` print, from the Engine API's list
//! shapes (bollard's models) as the engine sends them.

use std::io::Write;

use bollard::models::{ContainerSummary, ImageSummary, Network, Volume};

use crate::cli::{ImagesArgs, PsArgs};
use crate::format::{self, contexts, Template};

fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Whether `ps` must ask for container sizes: docker does when `--format` (not the
/// config's psFormat) uses `.Size`, which `{{json .}}` does too.
pub fn ps_wants_size(a: &PsArgs) -> bool {
    let f = a.format.as_deref().unwrap_or_default();
    !a.quiet && (f.contains(".Size") || f.contains("json .") || f == "json")
}

pub fn ps(rows: &[ContainerSummary], a: &PsArgs) -> anyhow::Result<()> {
    let kind = &contexts::CONTAINER;
    let t = format::choose(kind, a.format.as_deref(), "psFormat", a.quiet, true)?;
    let values: Vec<_> = rows.iter().map(|c| contexts::container(c, !a.no_trunc)).collect();
    print(&t.render_rows(kind, &values)?)
}

/// `images`: a row per repository and tag, through `--format`, the config's
/// `imagesFormat` or the default table; `-q` prints each row's ID (an image with two tags
/// twice), as docker does.
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

/// `volume ls`, sorted by name as docker sorts it.
pub fn volumes(rows: &mut [Volume], quiet: bool, flag: Option<&str>) -> anyhow::Result<()> {
    let kind = &contexts::VOLUME;
    let t = format::choose(kind, flag, "volumesFormat", quiet, false)?;
    rows.sort_by(|a, b| natural(&a.name, &b.name));
    let values: Vec<_> = rows.iter().map(contexts::volume).collect();
    print(&t.render_rows(kind, &values)?)
}

/// `network ls`, sorted by name as docker sorts it.
pub fn networks(rows: &mut [Network], quiet: bool, no_trunc: bool, flag: Option<&str>) -> anyhow::Result<()> {
    let kind = &contexts::NETWORK;
    let t = format::choose(kind, flag, "networksFormat", quiet, false)?;
    rows.sort_by(|a, b| natural(a.name.as_deref().unwrap_or(""), b.name.as_deref().unwrap_or("")));
    let values: Vec<_> = rows.iter().map(|n| contexts::network(n, !no_trunc)).collect();
    print(&t.render_rows(kind, &values)?)
}

/// docker's `sortorder.NaturalLess`: runs of digits compare as numbers (`v2` < `v10`).
fn natural(a: &str, b: &str) -> std::cmp::Ordering {
    fn chunks(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push((bytes[start].is_ascii_digit(), &s[start..i]));
                start = i;
            }
        }
        out
    }
    for (x, y) in chunks(a).into_iter().zip(chunks(b)) {
        let ord = match (x, y) {
            ((true, m), (true, n)) => {
                let (mt, nt) = (m.trim_start_matches('0'), n.trim_start_matches('0'));
                mt.len()
                    .cmp(&nt.len())
                    .then(mt.cmp(nt))
                    .then(m.len().cmp(&n.len()))
            }
            ((_, m), (_, n)) => m.cmp(n),
        };
        if ord.is_ne() {
            return ord;
        }
    }
    a.len().cmp(&b.len()).then(a.cmp(b))
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

#[cfg(test)]
mod tests {
    #[test]
    fn natural_order() {
        let mut names = vec!["v10", "v2", "b", "a1", "none", "bridge"];
        names.sort_by(|a, b| super::natural(a, b));
        assert_eq!(names, ["a1", "b", "bridge", "none", "v2", "v10"]);
    }
}
