//! `--format` as the docker CLI does it, for the in-process commands and `BERTH_HOST` alike:
//! a Go `text/template` subset (`template.rs` parses, `exec.rs` runs, `value.rs` is the
//! data), docker's row contexts (`contexts.rs`), the `table` prefix with its header row
//! aligned by docker's tabwriter (`tabwriter.rs`), and the list formats docker reads
//! from `config.json` (`psFormat`, `imagesFormat`, `volumesFormat`, `networksFormat`).

pub mod contexts;
mod exec;
pub mod tabwriter;
mod template;
mod value;

use anyhow::anyhow;

pub use contexts::Kind;
pub use value::Value;

/// A parsed `--format`.
pub struct Template {
    /// The format as the user wrote it (quoted, with where it came from), for errors.
    shown: String,
    table: bool,
    json_inspect: bool,
    nodes: Vec<template::Node>,
}

impl Template {
    /// docker's preprocessing, then parsing: `table` prefix, `json` for `{{json .}}`,
    /// surrounding spaces trimmed, `\t` and `\n` written as escapes become tabs and newlines.
    /// `origin` says where the format came from when it was not `--format`.
    pub fn parse(format: &str, origin: Option<&str>) -> anyhow::Result<Template> {
        let shown = match origin {
            Some(o) => format!("'{format}' ({o})"),
            None => format!("'{format}'"),
        };
        let table = format.starts_with("table");
        let text = match format {
            "json" => "{{json .}}",
            f => f.strip_prefix("table").unwrap_or(f),
        }
        .trim_matches(' ')
        .replace("\\t", "\t")
        .replace("\\n", "\n");
        let nodes =
            template::parse(&text).map_err(|e| anyhow!(e.0.replacen(&format!("'{text}'"), &shown, 1)))?;
        Ok(Template {
            shown,
            table,
            json_inspect: format == "json",
            nodes,
        })
    }

    fn run(&self, data: &Value, opts: exec::Options, out: &mut String) -> anyhow::Result<()> {
        exec::execute(&self.nodes, data, opts, out)
            .map_err(|e| anyhow!("the format template {} {}", self.shown, e.0))
    }

    /// docker's `Context.Write`: every row through the template (any error: nothing is
    /// printed), then for `table` a header row from the same template with docker's
    /// header functions (its errors end the header, as in docker), all aligned.
    pub fn render_rows(&self, kind: &Kind, rows: &[Value]) -> anyhow::Result<String> {
        let mut body = String::new();
        for row in rows {
            self.run(row, exec::Options::default(), &mut body)?;
            body.push('\n');
        }
        if !self.table {
            return Ok(body);
        }
        let mut text = String::new();
        let header = exec::Options {
            header: true,
            ..Default::default()
        };
        let _ = self.run(&kind.header(), header, &mut text);
        text.push('\n');
        text.push_str(&body);
        Ok(tabwriter::align(&text))
    }

    /// `inspect --format`: one line per object; objects the template fails on are left
    /// out and the first failure is returned beside what did render.
    pub fn render_inspect(&self, values: &[serde_json::Value]) -> (String, Option<anyhow::Error>) {
        if self.json_inspect {
            return (format!("{}\n", serde_json::Value::from(values.to_vec())), None);
        }
        let opts = exec::Options {
            missing_key_error: true,
            ..Default::default()
        };
        let mut out = String::new();
        let mut first_error = None;
        for v in values {
            let mut line = String::new();
            match self.run(&Value::from_json(v), opts, &mut line) {
                Ok(()) => {
                    out.push_str(&line);
                    out.push('\n');
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        (out, first_error)
    }
}

/// A list format from docker's `config.json` (`$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`, the file logins go to): the format and where it came from.
pub fn configured(key: &str) -> Option<(String, String)> {
    use berth_registry::credentials::{default_path, DockerConfigFile};
    let path = default_path()?;
    match DockerConfigFile::load(&path) {
        Ok(file) => file
            .string(key)
            .filter(|f| !f.is_empty())
            .map(|f| (f.to_string(), format!("{key} in {}", path.display()))),
        Err(e) => {
            // docker warns and goes on with its defaults.
            eprintln!("WARNING: Error loading config file: {e}");
            None
        }
    }
}

/// The format a listing asks for, as docker picks it: `--format`, else the `config.json`
/// key (not with `--quiet`), else `table` (the default); and where a config format came from.
pub fn pick(flag: Option<&str>, config_key: &str, quiet: bool) -> (String, Option<String>) {
    match flag.filter(|f| !f.is_empty()) {
        Some(f) => (f.to_string(), None),
        None => match configured(config_key).filter(|_| !quiet) {
            Some((f, origin)) => (f, Some(origin)),
            None => ("table".to_string(), None),
        },
    }
}

/// The template a listing prints with: [`pick`], where `table` alone is the default table
/// and, with `--quiet`, the quiet format. For `ps` (`quiet_wins`) `--quiet` beats any
/// format, with docker's warning when `--format` is given too.
pub fn choose(
    kind: &Kind,
    flag: Option<&str>,
    config_key: &str,
    quiet: bool,
    quiet_wins: bool,
) -> anyhow::Result<Template> {
    if quiet_wins && quiet {
        if flag.is_some_and(|f| !f.is_empty()) {
            eprintln!("WARNING: Ignoring custom format, because both --format and --quiet are set.");
        }
        return Template::parse(kind.quiet, None);
    }
    let (format, origin) = pick(flag, config_key, quiet);
    match format.as_str() {
        "table" if quiet => Template::parse(kind.quiet, None),
        "table" => Template::parse(kind.default_table, None),
        f => Template::parse(f, origin.as_deref()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    fn rows() -> Vec<Value> {
        let row = |name: &str, image: &str, status: &str| {
            Value::Object(Rc::new(value::Object {
                kind: "container",
                fields: vec![
                    ("Names", Value::str(name)),
                    ("Image", Value::str(image)),
                    ("Status", Value::str(status)),
                    ("ID", Value::str("0123456789ab")),
                ],
                label: Some(value::LabelMethod::Lookup(Default::default())),
                strict: true,
            }))
        };
        vec![
            row("web", "127.0.0.1:5000/library/busybox:latest", "Up 2 seconds"),
            row("a-much-longer-name", "<no image>", "Exited (0) 1 second ago"),
        ]
    }

    #[test]
    fn lecture_ps_format() {
        let t =
            Template::parse("table {{.Names}}\\t{{truncate .Image 25}}\\t{{.Status}}", None).expect("parse");
        let out = t.render_rows(&contexts::CONTAINER, &rows()).expect("render");
        assert_eq!(
            out,
            "NAMES                IMAGE                       STATUS\n\
             web                  127.0.0.1:5000/library/bu   Up 2 seconds\n\
             a-much-longer-name   <no image>                  Exited (0) 1 second ago\n"
        );
    }

    #[test]
    fn plain_and_json_formats() {
        let t = Template::parse("{{.ID}} {{upper .Names}}", None).expect("parse");
        assert_eq!(
            t.render_rows(&contexts::CONTAINER, &rows()).expect("render"),
            "0123456789ab WEB\n0123456789ab A-MUCH-LONGER-NAME\n"
        );
        let t = Template::parse("json", None).expect("parse");
        let out = t.render_rows(&contexts::CONTAINER, &rows()[1..]).expect("render");
        assert!(out.contains(r#""Image":"\u003cno image\u003e""#), "{out}");
        let out = t.render_rows(&contexts::CONTAINER, &rows()[..1]).expect("render");
        assert_eq!(
            out,
            "{\"ID\":\"0123456789ab\",\"Image\":\"127.0.0.1:5000/library/busybox:latest\",\"Names\":\"web\",\"Status\":\"Up 2 seconds\"}\n"
        );
    }

    #[test]
    fn errors_name_the_template_and_print_nothing() {
        let e = Template::parse("table {{nope .Names}}", Some("psFormat in /x/config.json"))
            .err()
            .expect("unknown function")
            .to_string();
        assert_eq!(e.lines().count(), 1, "one line: {e}");
        assert!(
            e.contains("'table {{nope .Names}}' (psFormat in /x/config.json)"),
            "{e}"
        );
        assert!(
            e.contains("uses the function 'nope', which does not exist"),
            "{e}"
        );
        let t = Template::parse("{{.Names}} {{.Nope}}", None).expect("parse");
        let e = t
            .render_rows(&contexts::CONTAINER, &rows())
            .expect_err("unknown field")
            .to_string();
        assert!(
            e.starts_with("the format template '{{.Names}} {{.Nope}}' asks for .Nope"),
            "{e}"
        );
    }

    #[test]
    fn inspect_formats() {
        let values = vec![
            serde_json::json!({"Id": "a", "Config": {"Image": "busybox"}}),
            serde_json::json!({"Id": "b"}),
        ];
        let t = Template::parse("{{.Id}}", None).expect("parse");
        assert_eq!(t.render_inspect(&values).0, "a\nb\n");
        let t = Template::parse("{{.Config.Image}}", None).expect("parse");
        let (out, err) = t.render_inspect(&values);
        assert_eq!(out, "busybox\n");
        assert!(err.is_some_and(|e| e.to_string().contains("asks for .Config")));
        let t = Template::parse("json", None).expect("parse");
        assert_eq!(t.render_inspect(&values[1..]).0, "[{\"Id\":\"b\"}]\n");
    }
}
