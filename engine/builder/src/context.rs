//! The build context: the directory `berth build PATH` names, listed once with its
//! `.dockerignore` applied. Only the files a COPY or ADD selects are ever read and hashed.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use berth_dockerfile::ignore::DockerIgnore;
use sha2::{Digest as _, Sha256};

use crate::BuildError;

/// What kind of thing a context entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink(PathBuf),
    /// Sockets, fifos, devices: never copied.
    Other,
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub kind: EntryKind,
    pub mode: u32,
    pub size: u64,
    /// The `.dockerignore` rule that excludes this entry (`pattern`, line), if any.
    pub excluded_by: Option<(String, usize)>,
}

/// The context directory as listed at the start of the build.
pub struct BuildContext {
    root: PathBuf,
    /// Paths relative to the root, `/`-separated, without `./`; the root itself is "".
    entries: BTreeMap<String, Entry>,
    hashes: Mutex<BTreeMap<String, String>>,
}

impl BuildContext {
    /// Lists `root` once. `.dockerignore` at its top decides which entries are excluded;
    /// excluded entries stay listed so an error can name the rule that excluded them.
    pub fn open(root: &Path) -> Result<BuildContext, BuildError> {
        let meta = fs::metadata(root).map_err(|e| BuildError::Context {
            path: root.to_path_buf(),
            reason: e.to_string(),
        })?;
        if !meta.is_dir() {
            return Err(BuildError::Context {
                path: root.to_path_buf(),
                reason: "not a directory".into(),
            });
        }
        let ignore = match fs::read_to_string(root.join(".dockerignore")) {
            Ok(text) => Some(DockerIgnore::parse(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(BuildError::io(format!(
                    "cannot read {}",
                    root.join(".dockerignore").display()
                ))(e))
            }
        };
        let mut entries = BTreeMap::new();
        entries.insert(
            String::new(),
            Entry {
                kind: EntryKind::Dir,
                mode: meta.permissions().mode() & 0o7777,
                size: 0,
                excluded_by: None,
            },
        );
        let mut ctx = BuildContext {
            root: root.to_path_buf(),
            entries,
            hashes: Mutex::new(BTreeMap::new()),
        };
        ctx.walk("", ignore.as_ref())?;
        Ok(ctx)
    }

    fn walk(&mut self, rel: &str, ignore: Option<&DockerIgnore>) -> Result<(), BuildError> {
        let dir = self.root.join(rel);
        let rd = fs::read_dir(&dir).map_err(BuildError::io(format!("cannot list {}", dir.display())))?;
        let mut names: Vec<String> = Vec::new();
        for e in rd {
            let e = e.map_err(BuildError::io(format!("cannot list {}", dir.display())))?;
            names.push(e.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        for name in names {
            let child = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let path = self.root.join(&child);
            let meta = fs::symlink_metadata(&path)
                .map_err(BuildError::io(format!("cannot read {}", path.display())))?;
            let ft = meta.file_type();
            let kind = if ft.is_dir() {
                EntryKind::Dir
            } else if ft.is_file() {
                EntryKind::File
            } else if ft.is_symlink() {
                EntryKind::Symlink(
                    fs::read_link(&path)
                        .map_err(BuildError::io(format!("cannot read {}", path.display())))?,
                )
            } else {
                EntryKind::Other
            };
            let excluded_by = ignore
                .and_then(|i| i.excluded(&child))
                .map(|r| (r.pattern.clone(), r.line));
            let is_dir = kind == EntryKind::Dir;
            self.entries.insert(
                child.clone(),
                Entry {
                    kind,
                    mode: meta.mode() & 0o7777,
                    size: meta.len(),
                    excluded_by,
                },
            );
            if is_dir {
                // Descend even into excluded directories: a later `!` rule may re-include
                // something inside.
                self.walk(&child, ignore)?;
            }
        }
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn entry(&self, rel: &str) -> Option<&Entry> {
        self.entries.get(rel)
    }

    /// Resolves the COPY/ADD source `src` to context entries (relative paths). Wildcards
    /// match like docker's (`*`, `?`, `[…]`, never across `/`). A source outside the
    /// context or excluded by `.dockerignore` is an error naming the path and the rule.
    pub fn select(&self, src: &str) -> Result<Vec<String>, String> {
        let rel = normalize_rel(src).ok_or_else(|| {
            format!("forbidden path outside the build context: {src} — COPY and ADD only read files inside the context directory")
        })?;
        let wildcard = rel.contains(['*', '?', '[']);
        if !wildcard {
            return match self.entries.get(&rel) {
                Some(e) => match &e.excluded_by {
                    Some((pattern, line)) => Err(format!(
                        "{src} is excluded by .dockerignore rule `{pattern}` (line {line}) — remove that rule or stop copying the file"
                    )),
                    None => Ok(vec![rel]),
                },
                None => Err(format!(
                    "file not found in build context: {src} — check the path relative to the context directory"
                )),
            };
        }
        let pattern = glob::Pattern::new(&rel).map_err(|e| format!("invalid wildcard {src}: {e}"))?;
        let opts = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: false,
        };
        let mut out = Vec::new();
        let mut excluded = None;
        for (path, e) in &self.entries {
            if path.is_empty() || !pattern.matches_with(path, opts) {
                continue;
            }
            match &e.excluded_by {
                Some(rule) => excluded = excluded.or(Some(rule.clone())),
                None => out.push(path.clone()),
            }
        }
        if out.is_empty() {
            return Err(match excluded {
                Some((pattern, line)) => format!(
                    "every file matching {src} is excluded by .dockerignore rule `{pattern}` (line {line}) — remove that rule or stop copying the files"
                ),
                None => format!("no source files were specified: nothing in the context matches {src}"),
            });
        }
        Ok(out)
    }

    /// The not-excluded entries under directory `rel` (not including `rel` itself), in
    /// walk order (parents before children).
    pub fn children(&self, rel: &str) -> Vec<(&str, &Entry)> {
        let prefix = if rel.is_empty() {
            String::new()
        } else {
            format!("{rel}/")
        };
        self.entries
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .filter(|(p, e)| !p.is_empty() && e.excluded_by.is_none())
            .map(|(p, e)| (p.as_str(), e))
            .collect()
    }

    /// sha256 of a file's content, computed once per build.
    pub fn file_hash(&self, rel: &str) -> Result<String, BuildError> {
        if let Some(h) = self.hashes.lock().unwrap_or_else(|p| p.into_inner()).get(rel) {
            return Ok(h.clone());
        }
        let path = self.root.join(rel);
        let mut f =
            fs::File::open(&path).map_err(BuildError::io(format!("cannot read {}", path.display())))?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = f
                .read(&mut buf)
                .map_err(BuildError::io(format!("cannot read {}", path.display())))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        let hex = hex::encode(h.finalize());
        self.hashes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(rel.to_string(), hex.clone());
        Ok(hex)
    }

    /// A digest of what copying `sources` would write: for every entry, its path below
    /// the source, kind, mode and content (or link target). Times and owners are left
    /// out, as docker leaves them out of its cache key.
    pub fn sources_digest(&self, sources: &[String]) -> Result<String, BuildError> {
        let mut h = Sha256::new();
        for src in sources {
            let Some(e) = self.entries.get(src) else { continue };
            h.update(format!("source {src}\n"));
            self.hash_entry(&mut h, src, "", e)?;
            if e.kind == EntryKind::Dir {
                for (path, child) in self.children(src) {
                    let below = if src.is_empty() {
                        path
                    } else {
                        &path[src.len() + 1..]
                    };
                    self.hash_entry(&mut h, path, below, child)?;
                }
            }
        }
        Ok(hex::encode(h.finalize()))
    }

    fn hash_entry(&self, h: &mut Sha256, path: &str, below: &str, e: &Entry) -> Result<(), BuildError> {
        let what = match &e.kind {
            EntryKind::File => format!("file {}", self.file_hash(path)?),
            EntryKind::Dir => "dir".to_string(),
            EntryKind::Symlink(t) => format!("symlink {}", t.display()),
            EntryKind::Other => "other".to_string(),
        };
        h.update(format!("{below}\0{:o}\0{what}\n", e.mode));
        Ok(())
    }
}

/// Cleans a context-relative path lexically; `None` if it climbs out of the root.
pub fn normalize_rel(src: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for p in src.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_and_refuses_escapes() {
        assert_eq!(normalize_rel("./a/b/../c").as_deref(), Some("a/c"));
        assert_eq!(normalize_rel(".").as_deref(), Some(""));
        assert_eq!(normalize_rel("/x").as_deref(), Some("x"));
        assert_eq!(normalize_rel("../x"), None);
        assert_eq!(normalize_rel("a/../../x"), None);
    }

    #[test]
    fn select_names_ignore_rules_and_hashes_content_not_times() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("app.py"), "print(1)\n").unwrap();
        fs::write(d.path().join("secret.txt"), "s").unwrap();
        fs::create_dir(d.path().join("src")).unwrap();
        fs::write(d.path().join("src/a.py"), "a").unwrap();
        fs::write(d.path().join(".dockerignore"), "# comment\nsecret*\n").unwrap();
        let ctx = BuildContext::open(d.path()).unwrap();
        assert_eq!(ctx.select("app.py").unwrap(), vec!["app.py"]);
        let err = ctx.select("secret.txt").unwrap_err();
        assert!(err.contains("`secret*` (line 2)"), "{err}");
        assert!(ctx
            .select("../x")
            .unwrap_err()
            .contains("outside the build context"));
        assert!(ctx.select("nope").unwrap_err().contains("not found"));
        assert_eq!(ctx.select("*.py").unwrap(), vec!["app.py"]);
        let all = ctx.sources_digest(&["".to_string()]).unwrap();
        // Touching a file keeps the digest; changing its content changes it.
        let f = fs::File::options()
            .append(true)
            .open(d.path().join("src/a.py"))
            .unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
        let ctx2 = BuildContext::open(d.path()).unwrap();
        assert_eq!(ctx2.sources_digest(&["".to_string()]).unwrap(), all);
        fs::write(d.path().join("src/a.py"), "b").unwrap();
        let ctx3 = BuildContext::open(d.path()).unwrap();
        assert_ne!(ctx3.sources_digest(&["".to_string()]).unwrap(), all);
        // An excluded file does not take part.
        fs::write(d.path().join("secret.txt"), "changed").unwrap();
        let ctx4 = BuildContext::open(d.path()).unwrap();
        assert_eq!(
            ctx4.sources_digest(&["".to_string()]).unwrap(),
            ctx3.sources_digest(&["".to_string()]).unwrap()
        );
    }
}
