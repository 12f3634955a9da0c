//! A compose project: its files found (or named with `-f`), read, merged, interpolated
//! and parsed with the `compose_spec` crate; its name; the services its profiles enable.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use compose_spec::{Compose, Service};

use super::interpolate::{interpolate_yaml, Vars};

/// The files Compose v2 looks for, in its order.
const DEFAULT_FILES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];
const OVERRIDE_FILES: [&str; 4] = [
    "compose.override.yaml",
    "compose.override.yml",
    "docker-compose.override.yaml",
    "docker-compose.override.yml",
];

/// How the project was asked for (`berth compose`'s global flags).
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub files: Vec<PathBuf>,
    pub project_name: Option<String>,
    pub project_directory: Option<PathBuf>,
    pub profiles: Vec<String>,
    pub env_file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Project {
    pub name: String,
    /// The folder relative paths in the files are taken from.
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
    pub compose: Compose,
    pub vars: Vars,
    pub profiles: Vec<String>,
}

impl Project {
    pub fn load(opts: &Options) -> anyhow::Result<Project> {
        let cwd = std::env::current_dir().context("cannot read the current folder")?;
        let files = if opts.files.is_empty() {
            default_files(&cwd)?
        } else {
            opts.files
                .iter()
                .map(|f| if f.is_absolute() { f.clone() } else { cwd.join(f) })
                .collect()
        };
        let dir = match &opts.project_directory {
            Some(d) => cwd.join(d),
            None => files[0].parent().map(Path::to_path_buf).unwrap_or(cwd.clone()),
        };
        let vars = Vars::for_project(&dir, opts.env_file.as_deref())?;
        let mut merged = serde_yaml::Value::Mapping(Default::default());
        for f in &files {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("cannot read the compose file {} — check the path", f.display()))?;
            let mut doc: serde_yaml::Value = serde_yaml::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{} is not valid YAML: {e}", f.display()))?;
            if doc.is_null() {
                bail!(
                    "{} is empty — a compose file needs a services: section",
                    f.display()
                );
            }
            doc.apply_merge()
                .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
            interpolate_yaml(&mut doc, &vars, "").map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
            merge(&mut merged, doc);
        }
        let compose: Compose = serde_yaml::from_value(merged).map_err(|e| {
            anyhow::anyhow!(
                "{}: {e} — see the compose specification for this field",
                names(&files)
            )
        })?;
        compose
            .validate_all()
            .map_err(|e| anyhow::anyhow!("{}: {e}", names(&files)))?;
        if compose.services.is_empty() {
            bail!("{} defines no services — add a services: section", names(&files));
        }
        let name = match opts
            .project_name
            .clone()
            .or_else(|| vars.get("COMPOSE_PROJECT_NAME").map(str::to_string))
            .or_else(|| compose.name.as_ref().map(|n| n.to_string()))
        {
            Some(n) => check_name(&n)?,
            None => folder_name(&dir)?,
        };
        let mut profiles = opts.profiles.clone();
        if profiles.is_empty() {
            if let Some(p) = vars.get("COMPOSE_PROFILES") {
                profiles = p
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
            }
        }
        Ok(Project {
            name,
            dir,
            files,
            compose,
            vars,
            profiles,
        })
    }

    /// The services enabled: those without profiles, those of an active profile, and any
    /// named on the command line (as Compose v2 does); in the file's order.
    pub fn services(&self, named: &[String]) -> anyhow::Result<Vec<(String, &Service)>> {
        for n in named {
            if !self.compose.services.keys().any(|k| k.as_str() == n) {
                bail!(
                    "no such service: {n} — the project's services are {}",
                    self.service_names().join(", ")
                );
            }
        }
        let active = |name: &str, s: &Service| {
            named.iter().any(|n| n == name)
                || s.profiles.is_empty()
                || s.profiles
                    .iter()
                    .any(|p| self.profiles.iter().any(|a| a == p.as_str() || a == "*"))
        };
        Ok(self
            .compose
            .services
            .iter()
            .filter(|(k, s)| active(k.as_str(), s))
            .filter(|(k, _)| {
                named.is_empty() || named.iter().any(|n| n == k.as_str()) || self.needed_by(named, k.as_str())
            })
            .map(|(k, s)| (k.to_string(), s))
            .collect())
    }

    /// Whether `service` is a dependency (directly or not) of one of `named`.
    fn needed_by(&self, named: &[String], service: &str) -> bool {
        let mut todo: Vec<String> = named.to_vec();
        let mut seen = std::collections::HashSet::new();
        while let Some(n) = todo.pop() {
            if !seen.insert(n.clone()) {
                continue;
            }
            if let Some(s) = self
                .compose
                .services
                .iter()
                .find(|(k, _)| k.as_str() == n)
                .map(|(_, s)| s)
            {
                for d in super::convert::dependencies(s) {
                    if d.0 == service {
                        return true;
                    }
                    todo.push(d.0);
                }
            }
        }
        false
    }

    pub fn service_names(&self) -> Vec<String> {
        self.compose.services.keys().map(|k| k.to_string()).collect()
    }

    /// The files, comma-separated, as the `com.docker.compose.project.config_files` label.
    pub fn config_files_label(&self) -> String {
        self.files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn names(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// compose.yaml (or one of the other names) in `dir` or the nearest folder above it, with
/// its override file when there is one.
fn default_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    for d in dir.ancestors() {
        if let Some(f) = DEFAULT_FILES.iter().map(|n| d.join(n)).find(|p| p.is_file()) {
            let mut files = vec![f];
            if let Some(o) = OVERRIDE_FILES.iter().map(|n| d.join(n)).find(|p| p.is_file()) {
                files.push(o);
            }
            return Ok(files);
        }
    }
    bail!(
        "no compose file here or in any folder above {} — write a compose.yaml (or name one with -f)",
        dir.display()
    )
}

/// A later file's values over an earlier one's: mappings merge key by key, anything else is
/// replaced (Compose's rule for most fields).
fn merge(base: &mut serde_yaml::Value, over: serde_yaml::Value) {
    match (base, over) {
        (serde_yaml::Value::Mapping(b), serde_yaml::Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// The project name from a folder: lower case, only letters, digits, `-` and `_`.
fn folder_name(dir: &Path) -> anyhow::Result<String> {
    let base = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let name: String = base
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_')
        .collect();
    let name = name.trim_start_matches(['-', '_']).to_string();
    if name.is_empty() {
        bail!(
            "the folder name {:?} gives no project name — name the project with -p NAME",
            dir.display().to_string()
        );
    }
    Ok(name)
}

fn check_name(name: &str) -> anyhow::Result<String> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric());
    if !ok {
        bail!("{name:?} is not a valid project name — use lower-case letters, digits, '-' and '_', starting with a letter or digit");
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(files: &[(&str, &str)], opts: Options) -> anyhow::Result<Project> {
        let dir = tempfile::Builder::new().prefix("My App.").tempdir().unwrap();
        for (n, text) in files {
            std::fs::write(dir.path().join(n), text).unwrap();
        }
        let mut o = opts;
        o.files = files
            .iter()
            .filter(|(n, _)| !n.starts_with('.'))
            .map(|(n, _)| dir.path().join(n))
            .collect();
        let p = Project::load(&o);
        drop(dir);
        p
    }

    #[test]
    fn names_files_profiles_and_interpolation() {
        let p = project(
            &[
                (".env", "TAG=3.12\n"),
                (
                    "compose.yaml",
                    "services:\n  web:\n    image: python:${TAG}\n  debug:\n    image: busybox\n    profiles: [debug]\n",
                ),
                ("compose.override.yaml", "services:\n  web:\n    ports: ['8080:5000']\n"),
            ],
            Options::default(),
        )
        .unwrap();
        assert!(p.name.starts_with("myapp"), "{}", p.name);
        let web = &p
            .compose
            .services
            .iter()
            .find(|(k, _)| k.as_str() == "web")
            .unwrap()
            .1;
        assert_eq!(web.image.as_ref().unwrap().as_str(), "python:3.12");
        assert_eq!(web.ports.len(), 1, "the override file's ports merged in");
        let names = |p: &Project, named: &[String]| -> Vec<String> {
            p.services(named).unwrap().into_iter().map(|(n, _)| n).collect()
        };
        assert_eq!(names(&p, &[]), ["web"]);
        assert_eq!(names(&p, &["debug".into()]), ["debug"]);
        let mut with = p.clone();
        with.profiles = vec!["debug".into()];
        assert_eq!(names(&with, &[]), ["web", "debug"]);
        assert!(p
            .services(&["nope".into()])
            .unwrap_err()
            .to_string()
            .contains("no such service: nope"));
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let err = |files: &[(&str, &str)], opts: Options| project(files, opts).unwrap_err().to_string();
        assert!(err(&[("compose.yaml", "services: [")], Options::default()).contains("is not valid YAML"));
        assert!(err(&[("compose.yaml", "")], Options::default()).contains("is empty"));
        assert!(err(
            &[("compose.yaml", "services:\n  web:\n    image: ${IMG:?set IMG}\n")],
            Options::default()
        )
        .contains("IMG is required: set IMG"));
        assert!(err(
            &[("compose.yaml", "services:\n  web:\n    image: busybox\n")],
            Options {
                project_name: Some("Bad Name".into()),
                ..Default::default()
            }
        )
        .contains("not a valid project name"));
    }
}
