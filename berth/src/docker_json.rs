//! Docker's JSON shape for `image inspect`. (When the Engine API crate arrives, this
//! moves there: only the API boundary should know Docker's JSON shapes.)

use berth_images::ImageService;
use berth_oci::ImageConfig;
use berth_store::ImageRecord;
use serde_json::{json, Map, Value};

pub fn image_inspect(
    images: &ImageService,
    rec: &ImageRecord,
    config: &ImageConfig,
) -> anyhow::Result<Value> {
    let tags = images.tags_of(&rec.id)?;
    let size: u64 = rec.layers.iter().map(|l| l.unpacked_size).sum();
    let root = images.store().root();
    let layer_dirs: Vec<String> = rec
        .layers
        .iter()
        .rev()
        .map(|l| images.store().layer_dir(&l.diff_id).display().to_string())
        .collect();
    let mut graph_data = Map::new();
    if let Some((upper, lower)) = layer_dirs.split_first() {
        graph_data.insert("UpperDir".into(), json!(upper));
        if !lower.is_empty() {
            graph_data.insert("LowerDir".into(), json!(lower.join(":")));
        }
    }
    let _ = root;
    Ok(json!({
        "Id": rec.id.to_string(),
        "RepoTags": tags,
        "RepoDigests": rec.repo_digests.iter().map(|d| familiar_digest(d)).collect::<Vec<_>>(),
        "Parent": "",
        "Comment": config.history.last().and_then(|h| h.comment.clone()).unwrap_or_default(),
        "Created": config.created.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
        "DockerVersion": config.extra.get("docker_version").cloned().unwrap_or(json!("")),
        "Author": config.author.clone().unwrap_or_default(),
        "Config": container_config(config),
        "Architecture": config.architecture,
        "Variant": config.variant,
        "Os": config.os,
        "Size": size,
        "GraphDriver": { "Name": "overlay2", "Data": graph_data },
        "RootFS": {
            "Type": "layers",
            "Layers": config.rootfs.diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        },
        "Metadata": { "LastTagTime": rec.stored_at },
    }))
}

/// docker prints every Config key, with null/empty defaults for those the image omits.
fn container_config(config: &ImageConfig) -> Value {
    let mut v = json!({
        "Hostname": "", "Domainname": "", "User": "",
        "AttachStdin": false, "AttachStdout": false, "AttachStderr": false,
        "Tty": false, "OpenStdin": false, "StdinOnce": false,
        "Env": null, "Cmd": null, "Image": "", "Volumes": null, "WorkingDir": "",
        "Entrypoint": null, "OnBuild": null, "Labels": null,
    });
    if let Some(c) = &config.config {
        if let (Value::Object(base), Ok(Value::Object(given))) = (&mut v, serde_json::to_value(c)) {
            for (k, val) in given {
                base.insert(k, val);
            }
        }
    }
    v
}

fn familiar_digest(repo_digest: &str) -> String {
    match repo_digest.split_once('@') {
        Some((name, digest)) => match berth_reference::ImageRef::parse_name_only(name) {
            Ok(r) => format!("{}@{}", r.familiar_name(), digest),
            Err(_) => repo_digest.to_string(),
        },
        None => repo_digest.to_string(),
    }
}

/// A small subset of Go templates: `{{.Field.Sub}}`, `{{json .Field}}`, literal text.
pub fn format(template: &str, value: &Value) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| anyhow::anyhow!("template '{template}' has '{{{{' without '}}}}'"))?;
        let expr = after[..end].trim();
        let (as_json, path) = match expr.strip_prefix("json ") {
            Some(p) => (true, p.trim()),
            None => (false, expr),
        };
        let path = path.strip_prefix('.').ok_or_else(|| {
            anyhow::anyhow!("template field '{path}' must start with '.', e.g. {{{{.Id}}}}")
        })?;
        let mut cur = value;
        for part in path.split('.').filter(|p| !p.is_empty()) {
            cur = cur.get(part).ok_or_else(|| {
                anyhow::anyhow!(
                    "template field '.{path}' does not exist — see `berth image inspect` for the fields"
                )
            })?;
        }
        match (as_json, cur) {
            (true, v) => out.push_str(&serde_json::to_string(v)?),
            (false, Value::String(s)) => out.push_str(s),
            (false, Value::Null) => out.push_str("<no value>"),
            (false, Value::Array(a)) => {
                let items: Vec<String> = a
                    .iter()
                    .map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string()))
                    .collect();
                out.push_str(&format!("[{}]", items.join(" ")));
            }
            (false, v) => out.push_str(&v.to_string()),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_fields() {
        let v = json!({"Id": "sha256:x", "Config": {"Cmd": ["sh", "-c"]}, "Size": 3});
        assert_eq!(format("{{.Id}}", &v).unwrap(), "sha256:x");
        assert_eq!(format("id={{.Id}} n={{.Size}}", &v).unwrap(), "id=sha256:x n=3");
        assert_eq!(format("{{json .Config.Cmd}}", &v).unwrap(), r#"["sh","-c"]"#);
        assert_eq!(format("{{.Config.Cmd}}", &v).unwrap(), "[sh -c]");
        assert!(format("{{.Nope}}", &v).is_err());
        assert!(format("{{.Id", &v).is_err());
    }
}
