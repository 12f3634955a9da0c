//! docker's formatter contexts: what `{{.Field}}` means in `ps`, `images`, `volume ls`
//! and `network ls`, each built from the Engine API's list shape (bollard's models), so
//! the in-process commands and `BERTH_HOST` render the same rows. Field names, header
//! texts, truncation and default tables are docker CLI v28's.

use std::collections::BTreeMap;
use std::rc::Rc;

use bollard::models::{ContainerSummary, ImageSummary, Network, PortSummary, Volume};

use super::value::{LabelMethod, Object, Value};
use crate::render;

/// One kind of listing: its fields with the header docker prints for each.
pub struct Kind {
    pub name: &'static str,
    pub headers: &'static [(&'static str, &'static str)],
    pub default_table: &'static str,
    pub quiet: &'static str,
}

pub const CONTAINER: Kind = Kind {
    name: "container",
    headers: &[
        ("ID", "CONTAINER ID"),
        ("Names", "NAMES"),
        ("Image", "IMAGE"),
        ("Command", "COMMAND"),
        ("CreatedAt", "CREATED AT"),
        ("RunningFor", "CREATED"),
        ("Ports", "PORTS"),
        ("State", "STATE"),
        ("Status", "STATUS"),
        ("Size", "SIZE"),
        ("Labels", "LABELS"),
        ("Mounts", "MOUNTS"),
        ("LocalVolumes", "LOCAL VOLUMES"),
        ("Networks", "NETWORKS"),
        ("Platform", "PLATFORM"),
    ],
    default_table:
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}",
    quiet: "{{.ID}}",
};

pub const IMAGE: Kind = Kind {
    name: "image",
    headers: &[
        ("ID", "IMAGE ID"),
        ("Repository", "REPOSITORY"),
        ("Tag", "TAG"),
        ("Digest", "DIGEST"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("Size", "SIZE"),
        ("Containers", "CONTAINERS"),
        ("VirtualSize", "SIZE"),
        ("SharedSize", "SHARED SIZE"),
        ("UniqueSize", "UNIQUE SIZE"),
    ],
    default_table:
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}",
    quiet: "{{.ID}}",
};

/// `images --digests`: the digest column before the ID.
pub const IMAGE_TABLE_WITH_DIGEST: &str = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}";

pub const VOLUME: Kind = Kind {
    name: "volume",
    headers: &[
        ("Name", "VOLUME NAME"),
        ("Driver", "DRIVER"),
        ("Scope", "SCOPE"),
        ("Mountpoint", "MOUNTPOINT"),
        ("Labels", "LABELS"),
        ("Links", "LINKS"),
        ("Size", "SIZE"),
        ("Group", "GROUP"),
        ("Availability", "AVAILABILITY"),
        ("Status", "STATUS"),
    ],
    default_table: "table {{.Driver}}\t{{.Name}}",
    quiet: "{{.Name}}",
};

pub const NETWORK: Kind = Kind {
    name: "network",
    headers: &[
        ("ID", "NETWORK ID"),
        ("Name", "NAME"),
        ("Driver", "DRIVER"),
        ("Scope", "SCOPE"),
        ("IPv6", "IPV6"),
        ("Internal", "INTERNAL"),
        ("Labels", "LABELS"),
        ("CreatedAt", "CREATED AT"),
    ],
    default_table: "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
    quiet: "{{.ID}}",
};

pub const STATS: Kind = Kind {
    name: "stats row",
    headers: &[
        ("Container", "CONTAINER"),
        ("Name", "NAME"),
        ("ID", "CONTAINER ID"),
        ("CPUPerc", "CPU %"),
        ("MemUsage", "MEM USAGE / LIMIT"),
        ("MemPerc", "MEM %"),
        ("NetIO", "NET I/O"),
        ("BlockIO", "BLOCK I/O"),
        ("PIDs", "PIDS"),
    ],
    default_table:
        "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}",
    quiet: "{{.ID}}",
};

/// One `stats` sample, already in docker's words ("0.25%", "1.2MiB / 7.6GiB").
pub struct StatsRow {
    /// The container as the user named it (its short ID when listing all).
    pub container: String,
    pub name: String,
    pub id: String,
    pub cpu_perc: String,
    pub mem_usage: String,
    pub mem_perc: String,
    pub net_io: String,
    pub block_io: String,
    pub pids: String,
}

pub fn stats(r: StatsRow) -> Value {
    Value::Object(Rc::new(Object {
        kind: STATS.name,
        fields: vec![
            ("Container", Value::Str(r.container)),
            ("Name", Value::Str(r.name)),
            ("ID", Value::Str(truncate_id(&r.id))),
            ("CPUPerc", Value::Str(r.cpu_perc)),
            ("MemUsage", Value::Str(r.mem_usage)),
            ("MemPerc", Value::Str(r.mem_perc)),
            ("NetIO", Value::Str(r.net_io)),
            ("BlockIO", Value::Str(r.block_io)),
            ("PIDs", Value::Str(r.pids)),
        ],
        label: None,
        strict: true,
    }))
}

impl Kind {
    /// The table header's context: each field's column name, and `.Label` as docker
    /// names label columns.
    pub fn header(&self) -> Value {
        Value::Object(Rc::new(Object {
            kind: "header",
            fields: self.headers.iter().map(|(k, h)| (*k, Value::str(*h))).collect(),
            label: Some(LabelMethod::Header),
            strict: false,
        }))
    }

    fn row(&self, fields: Vec<(&'static str, Value)>, labels: BTreeMap<String, String>) -> Value {
        Value::Object(Rc::new(Object {
            kind: self.name,
            fields,
            label: Some(LabelMethod::Lookup(labels)),
            strict: true,
        }))
    }
}

/// docker's `stringid.TruncateID`: no algorithm prefix, 12 characters.
pub fn truncate_id(id: &str) -> String {
    let id = id.split_once(':').map(|(_, h)| h).unwrap_or(id);
    id.chars().take(12).collect()
}

/// docker's `Ellipsis`: at most `max` columns wide, the last one `…` when cut.
pub fn ellipsis(s: &str, max: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    if unicode_width::UnicodeWidthStr::width(s) <= max {
        return s.to_string();
    }
    let mut out = String::new();
    let mut width = 0;
    for c in s.chars() {
        let w = c.width().unwrap_or(0);
        if width + w > max.saturating_sub(1) {
            break;
        }
        width += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// Go's `strconv.Quote`.
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0b' => out.push_str("\\v"),
            '\x0c' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn sorted_labels(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Go's `time.Unix(t, 0).String()`, in UTC (Berth does not read the local time zone).
fn unix_string(t: i64) -> String {
    let Ok(at) = time::OffsetDateTime::from_unix_timestamp(t) else {
        return String::new();
    };
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] +0000 UTC");
    at.format(&f).unwrap_or_default()
}

/// `units.HumanDuration(now - t) + " ago"`.
fn since(t: i64) -> String {
    let secs = time::OffsetDateTime::now_utc().unix_timestamp() - t;
    format!("{} ago", render::human_duration(secs.max(0)))
}

pub fn container(c: &ContainerSummary, trunc: bool) -> Value {
    let id = c.id.clone().unwrap_or_default();
    let names: Vec<String> = c
        .names
        .iter()
        .flatten()
        .map(|n| n.trim_start_matches('/').to_string())
        .collect();
    let names = if trunc {
        names
            .iter()
            .find(|n| !n.contains('/'))
            .cloned()
            .unwrap_or_default()
    } else {
        names.join(",")
    };
    let image = c.image.clone().unwrap_or_default();
    let image = if image.is_empty() {
        "<no image>".to_string()
    } else if !trunc {
        image
    } else if truncate_id(c.image_id.as_deref().unwrap_or_default()) == truncate_id(&image) {
        truncate_id(&image)
    } else {
        match berth_reference::ImageRef::parse_name_only(&image) {
            Ok(r) => match r.tag() {
                Some(tag) => format!("{}:{tag}", r.familiar_name()),
                None => r.familiar_name(),
            },
            Err(_) => image,
        }
    };
    let command = c.command.clone().unwrap_or_default();
    let command = go_quote(&if trunc { ellipsis(&command, 20) } else { command });
    let created = c.created.unwrap_or(0);
    let labels: BTreeMap<String, String> = c.labels.clone().unwrap_or_default().into_iter().collect();
    let size_rw = render::size(c.size_rw.unwrap_or(0).max(0) as u64);
    let size = match c.size_root_fs.unwrap_or(0) {
        n if n > 0 => format!("{size_rw} (virtual {})", render::size(n as u64)),
        _ => size_rw,
    };
    let mounts = c.mounts.iter().flatten();
    let mount_names: Vec<String> = mounts
        .clone()
        .map(|m| {
            let name = m
                .name
                .clone()
                .filter(|n| !n.is_empty())
                .or(m.source.clone())
                .unwrap_or_default();
            if trunc {
                ellipsis(&name, 15)
            } else {
                name
            }
        })
        .collect();
    let local_volumes = mounts.filter(|m| m.driver.as_deref() == Some("local")).count();
    let mut networks: Vec<String> = c
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .map(|n| n.keys().cloned().collect())
        .unwrap_or_default();
    networks.sort();
    CONTAINER.row(
        vec![
            ("ID", Value::Str(if trunc { truncate_id(&id) } else { id })),
            ("Names", Value::Str(names)),
            ("Image", Value::Str(image)),
            ("Command", Value::Str(command)),
            ("CreatedAt", Value::Str(unix_string(created))),
            ("RunningFor", Value::Str(since(created))),
            (
                "Ports",
                Value::Str(displayable_ports(c.ports.as_deref().unwrap_or_default())),
            ),
            (
                "State",
                Value::Str(c.state.map(|s| s.to_string()).unwrap_or_default()),
            ),
            ("Status", Value::Str(c.status.clone().unwrap_or_default())),
            ("Size", Value::Str(size)),
            ("Labels", Value::Str(sorted_labels(&labels))),
            ("Mounts", Value::Str(mount_names.join(","))),
            ("LocalVolumes", Value::Str(local_volumes.to_string())),
            ("Networks", Value::Str(networks.join(","))),
            ("Platform", Value::NilPointer),
        ],
        labels,
    )
}

/// docker's PORTS text: `0.0.0.0:8080->80/tcp, 443/tcp`, consecutive ports as ranges.
pub fn displayable_ports(ports: &[PortSummary]) -> String {
    let mut ports: Vec<&PortSummary> = ports.iter().collect();
    let typ = |p: &PortSummary| p.typ.map(|t| t.to_string()).unwrap_or_else(|| "tcp".into());
    let ip = |p: &PortSummary| p.ip.clone().filter(|ip| !ip.is_empty());
    ports.sort_by(|a, b| {
        (a.private_port, ip(a), a.public_port, typ(a)).cmp(&(b.private_port, ip(b), b.public_port, typ(b)))
    });
    let host_port = |ip: &str, port: &str| {
        if ip.contains(':') {
            format!("[{ip}]:{port}")
        } else {
            format!("{ip}:{port}")
        }
    };
    let group_text = |key: &str, first: u16, last: u16| {
        let (ip, proto) = key
            .rsplit_once('/')
            .map(|(i, p)| (Some(i), p))
            .unwrap_or((None, key));
        let range = if first == last {
            first.to_string()
        } else {
            format!("{first}-{last}")
        };
        match ip {
            Some(ip) => format!("{}->{range}/{proto}", host_port(ip, &range)),
            None => format!("{range}/{proto}"),
        }
    };
    let mut groups: Vec<(String, u16, u16)> = Vec::new();
    let mut result = Vec::new();
    let mut mappings = Vec::new();
    for p in ports {
        let current = p.private_port;
        let mut key = typ(p);
        if let Some(ip) = ip(p) {
            let public = p.public_port.unwrap_or(0);
            if public != current {
                mappings.push(format!(
                    "{}->{current}/{}",
                    host_port(&ip, &public.to_string()),
                    typ(p)
                ));
                continue;
            }
            key = format!("{ip}/{key}");
        }
        match groups.iter_mut().find(|(k, ..)| *k == key) {
            None => groups.push((key, current, current)),
            Some(g) if current == g.2.wrapping_add(1) => g.2 = current,
            Some(g) => {
                result.push(group_text(&g.0, g.1, g.2));
                g.1 = current;
                g.2 = current;
            }
        }
    }
    result.extend(groups.iter().map(|(k, f, l)| group_text(k, *f, *l)));
    result.extend(mappings);
    result.join(", ")
}

/// The rows docker prints for one image: one per repository and tag (per digest too
/// when digests are shown), or one `<none>` row for a dangling image.
pub fn image_rows(i: &ImageSummary, trunc: bool, show_digests: bool, want_digest: bool) -> Vec<Value> {
    let row = |repo: &str, tag: &str, digest: &str| {
        let size = |n: i64, prec: usize| render::size_with_precision(n.max(0) as u64, prec);
        IMAGE.row(
            vec![
                (
                    "ID",
                    Value::Str(if trunc { truncate_id(&i.id) } else { i.id.clone() }),
                ),
                ("Repository", Value::str(repo)),
                ("Tag", Value::str(tag)),
                ("Digest", Value::str(digest)),
                ("CreatedSince", Value::Str(since(i.created))),
                ("CreatedAt", Value::Str(unix_string(i.created))),
                ("Size", Value::Str(size(i.size, 3))),
                (
                    "Containers",
                    Value::Str(if i.containers == -1 {
                        "N/A".into()
                    } else {
                        i.containers.to_string()
                    }),
                ),
                ("VirtualSize", Value::Str(size(i.size, 4))),
                (
                    "SharedSize",
                    Value::Str(if i.shared_size == -1 {
                        "N/A".into()
                    } else {
                        size(i.shared_size, 4)
                    }),
                ),
                (
                    "UniqueSize",
                    Value::Str(if i.size == -1 || i.shared_size == -1 {
                        "N/A".into()
                    } else {
                        size(i.size - i.shared_size, 4)
                    }),
                ),
            ],
            i.labels.clone().into_iter().collect(),
        )
    };
    let dangling = (i.repo_tags.is_empty() && i.repo_digests.is_empty())
        || (i.repo_tags == ["<none>:<none>"] && i.repo_digests == ["<none>@<none>"]);
    if dangling {
        return vec![row("<none>", "<none>", "<none>")];
    }
    // Repositories in the order the engine lists their tags (docker's order is a Go map's).
    let mut tags: Vec<(String, Vec<String>)> = Vec::new();
    for t in &i.repo_tags {
        let Ok(r) = berth_reference::ImageRef::parse_name_only(t) else {
            continue;
        };
        let Some(tag) = r.tag() else { continue };
        let repo = r.familiar_name();
        match tags.iter_mut().find(|(n, _)| *n == repo) {
            Some((_, v)) => v.push(tag.to_string()),
            None => tags.push((repo, vec![tag.to_string()])),
        }
    }
    let mut digests: Vec<(String, Vec<String>)> = Vec::new();
    for d in &i.repo_digests {
        let Some((name, digest)) = d.split_once('@') else {
            continue;
        };
        let Ok(r) = berth_reference::ImageRef::parse_name_only(name) else {
            continue;
        };
        let repo = r.familiar_name();
        match digests.iter_mut().find(|(n, _)| *n == repo) {
            Some((_, v)) => v.push(digest.to_string()),
            None => digests.push((repo, vec![digest.to_string()])),
        }
    }
    let mut rows = Vec::new();
    for (repo, repo_tags) in &tags {
        let pos = digests.iter().position(|(n, _)| n == repo);
        let repo_digests = pos
            .map(|p| digests.remove(p).1)
            .filter(|_| want_digest)
            .unwrap_or_default();
        for tag in repo_tags {
            if repo_digests.is_empty() {
                rows.push(row(repo, tag, "<none>"));
            }
            for d in &repo_digests {
                rows.push(row(repo, tag, d));
            }
        }
    }
    for (repo, repo_digests) in &digests {
        if show_digests {
            for d in repo_digests {
                rows.push(row(repo, "<none>", d));
            }
        } else {
            rows.push(row(repo, "<none>", ""));
        }
    }
    rows
}

pub fn volume(v: &Volume) -> Value {
    let labels: BTreeMap<String, String> = v.labels.clone().into_iter().collect();
    let usage = v.usage_data.as_ref();
    VOLUME.row(
        vec![
            ("Name", Value::str(&v.name)),
            ("Driver", Value::str(&v.driver)),
            (
                "Scope",
                Value::Str(v.scope.map(|s| s.to_string()).unwrap_or_default()),
            ),
            ("Mountpoint", Value::str(&v.mountpoint)),
            ("Labels", Value::Str(sorted_labels(&labels))),
            (
                "Links",
                Value::Str(
                    usage
                        .map(|u| u.ref_count.to_string())
                        .unwrap_or_else(|| "N/A".into()),
                ),
            ),
            (
                "Size",
                Value::Str(
                    usage
                        .map(|u| render::size_with_precision(u.size.max(0) as u64, 4))
                        .unwrap_or_else(|| "N/A".into()),
                ),
            ),
            ("Group", Value::str("N/A")),
            ("Availability", Value::str("N/A")),
            ("Status", Value::str("N/A")),
        ],
        labels,
    )
}

pub fn network(n: &Network, trunc: bool) -> Value {
    let labels: BTreeMap<String, String> = n.labels.clone().unwrap_or_default().into_iter().collect();
    let id = n.id.clone().unwrap_or_default();
    NETWORK.row(
        vec![
            ("ID", Value::Str(if trunc { truncate_id(&id) } else { id })),
            ("Name", Value::Str(n.name.clone().unwrap_or_default())),
            ("Driver", Value::Str(n.driver.clone().unwrap_or_default())),
            ("Scope", Value::Str(n.scope.clone().unwrap_or_default())),
            ("IPv6", Value::str("false")),
            ("Internal", Value::Str(n.internal.unwrap_or(false).to_string())),
            ("Labels", Value::Str(sorted_labels(&labels))),
            (
                "CreatedAt",
                Value::Str(n.created.as_ref().map(|c| c.to_string()).unwrap_or_default()),
            ),
        ],
        labels,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::PortSummaryTypeEnum;

    fn port(ip: Option<&str>, private: u16, public: Option<u16>) -> PortSummary {
        PortSummary {
            ip: ip.map(str::to_string),
            private_port: private,
            public_port: public,
            typ: Some(PortSummaryTypeEnum::TCP),
        }
    }

    #[test]
    fn ports_like_docker() {
        assert_eq!(displayable_ports(&[]), "");
        assert_eq!(
            displayable_ports(&[port(Some("0.0.0.0"), 5000, Some(8080)), port(None, 443, None)]),
            "443/tcp, 0.0.0.0:8080->5000/tcp"
        );
        assert_eq!(
            displayable_ports(&[
                port(None, 81, None),
                port(None, 80, None),
                port(None, 82, None),
                port(None, 90, None)
            ]),
            "80-82/tcp, 90/tcp"
        );
        assert_eq!(
            displayable_ports(&[
                port(Some("0.0.0.0"), 80, Some(80)),
                port(Some("0.0.0.0"), 81, Some(81))
            ]),
            "0.0.0.0:80-81->80-81/tcp"
        );
    }

    #[test]
    fn ids_commands_and_ellipsis() {
        assert_eq!(truncate_id("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(ellipsis("sleep 1000", 20), "sleep 1000");
        assert_eq!(
            ellipsis("sh -c 'while true; do sleep 1; done'", 20),
            "sh -c 'while true; …"
        );
        assert_eq!(go_quote("echo \"hi\"\n"), "\"echo \\\"hi\\\"\\n\"");
    }
}
