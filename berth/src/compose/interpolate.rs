//! A compose file's variables: the `.env` file's lines and `${VAR}` interpolation, as the
//! compose specification defines them (`$VAR`, `${VAR}`, `${VAR:-default}`,
//! `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `${VAR:+other}`, `${VAR+other}`,
//! `$$` for a dollar), applied to every string value of the file before it is parsed.

use std::collections::HashMap;

use anyhow::{bail, Context};

/// The variables a file sees: this process's environment over the project's `.env`.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    pub values: HashMap<String, String>,
}

impl Vars {
    /// `.env` in `dir` (if there is one) under this process's environment.
    pub fn for_project(dir: &std::path::Path, env_file: Option<&std::path::Path>) -> anyhow::Result<Vars> {
        let mut values = HashMap::new();
        let path = env_file
            .map(std::path::Path::to_path_buf)
            .unwrap_or_else(|| dir.join(".env"));
        if path.is_file() {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {} — check its permissions", path.display()))?;
            for (k, v) in parse_dotenv(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))? {
                values.insert(k, v);
            }
        } else if env_file.is_some() {
            bail!("the env file {} does not exist — check the path", path.display());
        }
        values.extend(std::env::vars());
        Ok(Vars { values })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
}

/// The lines of a `.env` file (or a service's `env_file`): `KEY=value`, `export KEY=value`,
/// values in single quotes taken as they are, in double quotes with `\n`, `\t`, `\"` and
/// `\\` unescaped, unquoted ones up to a ` #` comment; blank lines and `#` lines skipped.
/// A bare `KEY` has no value here (the caller decides; compose takes the environment's).
pub fn parse_dotenv(text: &str) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map(str::trim_start).unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            if let Ok(v) = std::env::var(line) {
                out.push((line.to_string(), v));
            }
            continue;
        };
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            bail!("line {}: '{key}' is not a variable name — write KEY=value", n + 1);
        }
        let value = value.trim_start();
        let value = if let Some(rest) = value.strip_prefix('\'') {
            match rest.find('\'') {
                Some(end) => rest[..end].to_string(),
                None => bail!("line {}: the value of {key} has no closing ' quote", n + 1),
            }
        } else if let Some(rest) = value.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = rest.chars();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => match chars.next() {
                        Some('n') => v.push('\n'),
                        Some('t') => v.push('\t'),
                        Some(o) => v.push(o),
                        None => v.push('\\'),
                    },
                    o => v.push(o),
                }
            }
            if !closed {
                bail!("line {}: the value of {key} has no closing \" quote", n + 1);
            }
            v
        } else {
            let v = match value.find(" #") {
                Some(i) => &value[..i],
                None => value,
            };
            v.trim_end().to_string()
        };
        out.push((key.to_string(), value));
    }
    Ok(out)
}

/// `text` with its variables replaced; `where_` names the value in errors.
pub fn interpolate(text: &str, vars: &Vars, where_: &str) -> anyhow::Result<String> {
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            let next = text[i..].find('$').map_or(b.len(), |n| i + n);
            out.push_str(&text[i..next]);
            i = next;
            continue;
        }
        match b.get(i + 1) {
            Some(b'$') => {
                out.push('$');
                i += 2;
            }
            Some(b'{') => {
                let end = closing_brace(text, i + 2)
                    .with_context(|| format!("{where_}: a '${{' is not closed in {text:?}"))?;
                out.push_str(&expand(&text[i + 2..end], vars, where_)?);
                i = end + 1;
            }
            Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                out.push_str(vars.get(&text[start..j]).unwrap_or(""));
                i = j;
            }
            _ => {
                out.push('$');
                i += 1;
            }
        }
    }
    Ok(out)
}

/// The index of the `}` that closes a `${` whose body starts at `from` (nested `${…}` in
/// defaults count).
fn closing_brace(text: &str, from: usize) -> Option<usize> {
    let b = text.as_bytes();
    let mut depth = 0;
    let mut i = from;
    while i < b.len() {
        match b[i] {
            b'$' if b.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 2;
                continue;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// The body of one `${…}`.
fn expand(body: &str, vars: &Vars, where_: &str) -> anyhow::Result<String> {
    let name_end = body
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(body.len());
    let (name, rest) = body.split_at(name_end);
    if name.is_empty() {
        bail!("{where_}: '${{{body}}}' names no variable");
    }
    let value = vars.get(name);
    let set_nonempty = value.is_some_and(|v| !v.is_empty());
    let (op, arg) = if let Some(a) = rest.strip_prefix(":-") {
        (":-", a)
    } else if let Some(a) = rest.strip_prefix(":?") {
        (":?", a)
    } else if let Some(a) = rest.strip_prefix(":+") {
        (":+", a)
    } else if rest.is_empty() {
        ("", "")
    } else {
        rest.split_at(1)
    };
    let arg = || interpolate(arg, vars, where_);
    Ok(match op {
        "" => value.unwrap_or("").to_string(),
        ":-" if !set_nonempty => arg()?,
        "-" if value.is_none() => arg()?,
        ":?" if !set_nonempty => bail!("{where_}: {name} is required: {}", arg()?),
        "?" if value.is_none() => bail!("{where_}: {name} is required: {}", arg()?),
        ":+" => {
            if set_nonempty {
                arg()?
            } else {
                String::new()
            }
        }
        "+" => {
            if value.is_some() {
                arg()?
            } else {
                String::new()
            }
        }
        ":-" | "-" | ":?" | "?" => value.unwrap_or("").to_string(),
        _ => bail!("{where_}: '${{{body}}}' is not a variable substitution compose knows"),
    })
}

/// Interpolates every string value (not the keys) of a parsed YAML document in place.
pub fn interpolate_yaml(value: &mut serde_yaml::Value, vars: &Vars, path: &str) -> anyhow::Result<()> {
    match value {
        serde_yaml::Value::String(s) => *s = interpolate(s, vars, path)?,
        serde_yaml::Value::Sequence(items) => {
            for (n, v) in items.iter_mut().enumerate() {
                interpolate_yaml(v, vars, &format!("{path}[{n}]"))?;
            }
        }
        serde_yaml::Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                let key = k.as_str().map(str::to_string).unwrap_or_else(|| format!("{k:?}"));
                let at = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                interpolate_yaml(v, vars, &at)?;
            }
        }
        serde_yaml::Value::Tagged(t) => interpolate_yaml(&mut t.value, vars, path)?,
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        Vars {
            values: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn every_form_the_specification_names() {
        let v = vars(&[("TAG", "3.12"), ("EMPTY", ""), ("PORT", "8080")]);
        let i = |t: &str| interpolate(t, &v, "x").unwrap();
        assert_eq!(i("python:${TAG}"), "python:3.12");
        assert_eq!(i("python:$TAG-slim"), "python:3.12-slim");
        assert_eq!(i("${MISSING}"), "");
        assert_eq!(i("${MISSING:-5000}"), "5000");
        assert_eq!(i("${EMPTY:-d}"), "d");
        assert_eq!(i("${EMPTY-d}"), "");
        assert_eq!(i("${MISSING-d}"), "d");
        assert_eq!(i("${PORT:+on}|${EMPTY:+on}|${EMPTY+on}|${MISSING+on}"), "on||on|");
        assert_eq!(i("${MISSING:-${PORT}}:5000"), "8080:5000");
        assert_eq!(i("cost $$5 and $ alone"), "cost $5 and $ alone");
        let err = interpolate("${MISSING:?set it in .env}", &v, "services.web.image").unwrap_err();
        assert_eq!(
            err.to_string(),
            "services.web.image: MISSING is required: set it in .env"
        );
        assert!(interpolate("${OPEN", &v, "x").is_err());
        assert!(interpolate("${}", &v, "x").is_err());
    }

    #[test]
    fn dotenv_lines() {
        let text = "# comment\n\nTAG=3.12\nexport NAME = 'a b # c'\nQUOTED=\"line\\nnext\" \nPLAIN=v # note\nEMPTY=\n";
        let got = parse_dotenv(text).unwrap();
        assert_eq!(
            got,
            [
                ("TAG".to_string(), "3.12".to_string()),
                ("NAME".into(), "a b # c".into()),
                ("QUOTED".into(), "line\nnext".into()),
                ("PLAIN".into(), "v".into()),
                ("EMPTY".into(), "".into()),
            ]
        );
        assert!(parse_dotenv("A='open\n").is_err());
        assert!(parse_dotenv("BAD KEY=1\n").is_err());
    }

    #[test]
    fn yaml_values_not_keys() {
        let v = vars(&[("IMG", "busybox"), ("K", "no")]);
        let mut doc: serde_yaml::Value =
            serde_yaml::from_str("services:\n  ${K}:\n    image: ${IMG}\n    command: [echo, $$HOME]\n")
                .unwrap();
        interpolate_yaml(&mut doc, &v, "").unwrap();
        let back = serde_yaml::to_string(&doc).unwrap();
        assert!(back.contains("${K}:"), "{back}");
        assert!(back.contains("image: busybox"), "{back}");
        assert!(back.contains("$HOME"), "{back}");
    }
}
