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
    /// What says the content is unchanged since a hash was recorded (see `HashCache`).
    stamp: Stamp,
    /// The `.dockerignore` rule that excludes this entry (`pattern`, line), if any.
    pub excluded_by: Option<(String, usize)>,
}

/// The context directory as listed at the start of the build.
pub struct BuildContext {
    root: PathBuf,
    /// Paths relative to the root, `/`-separated, without `./`; the root itself is "".
    entries: BTreeMap<String, Entry>,
    hashes: Mutex<BTreeMap<String, String>>,
    /// Hashes recorded by earlier builds, by absolute path.
    known: HashCache,
}

/// The file metadata that changes whenever content does: size, inode, mtime and ctime
/// (nanoseconds). A file rewritten in place within one clock tick keeps the same stamp,
/// so hashes of files changed in the last seconds are never reused ("racy" files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Stamp {
    size: u64,
    ino: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Stamp {
        Stamp {
            size: meta.len(),
            ino: meta.ino(),
            mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
            ctime_ns: meta.ctime() as i128 * 1_000_000_000 + meta.ctime_nsec() as i128,
        }
    }

    fn settled(&self) -> bool {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        now - self.mtime_ns.max(self.ctime_ns) > 2_000_000_000
    }
}

/// Content hashes of context files kept between builds (`ROOT/builder/hashes.json`), so a
/// rebuild reads only files whose stamp changed.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct HashCache {
    files: BTreeMap<String, (Stamp, String)>,
}

/// Entries kept in the hash cache at most.
const HASH_CACHE_MAX: usize = 100_000;

impl BuildContext {
    /// Lists `root` once. `.dockerignore` at its top decides which entries are excluded;
    /// excluded entries stay listed so an error can name the rule that excluded them.
    pub fn open(root: &Path) -> Result<BuildContext, BuildError> {
        Self::open_with_cache(root, None)
    }

    /// Like [`BuildContext::open`], reusing the content hashes recorded in `cache` (a
    /// file written by [`BuildContext::save_hashes`]) for files whose stamp is unchanged.
    pub fn open_with_cache(root: &Path, cache: Option<&Path>) -> Result<BuildContext, BuildError> {
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
                stamp: Stamp::of(&meta),
                excluded_by: None,
            },
        );
        let known = cache
            .and_then(|p| fs::read(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let root = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        let mut ctx = BuildContext {
            root,
            entries,
            hashes: Mutex::new(BTreeMap::new()),
            known,
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
                    stamp: Stamp::of(&meta),
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
        let stamp = self.entries.get(rel).map(|e| e.stamp);
        let key = path.to_string_lossy().into_owned();
        if let (Some(stamp), Some((known, hex))) = (stamp, self.known.files.get(&key)) {
            if *known == stamp && stamp.settled() {
                self.hashes
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(rel.to_string(), hex.clone());
                return Ok(hex.clone());
            }
        }
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

    /// Records the hashes computed in this build into `cache` (best effort: a cache that
    /// cannot be written only costs re-reading files next time).
    pub fn save_hashes(&self, cache: &Path) {
        let hashes = self.hashes.lock().unwrap_or_else(|p| p.into_inner());
        let mut files = self.known.files.clone();
        let mut changed = false;
        for (rel, hex) in hashes.iter() {
            if let Some(e) = self.entries.get(rel).filter(|e| e.stamp.settled()) {
                let key = self.root.join(rel).to_string_lossy().into_owned();
                let new = (e.stamp, hex.clone());
                if files.get(&key) != Some(&new) {
                    files.insert(key, new);
                    changed = true;
                }
            }
        }
        if !changed {
            return;
        }
        while files.len() > HASH_CACHE_MAX {
            let Some(k) = files.keys().next().cloned() else {
                break;
            };
            files.remove(&k);
        }
        let Ok(bytes) = serde_json::to_vec(&HashCache { files }) else {
            return;
        };
        let tmp = cache.with_extension(format!("tmp{}", std::process::id()));
        if fs::write(&tmp, bytes).is_err() || fs::rename(&tmp, cache).is_err() {
            let _ = fs::remove_file(&tmp);
        }
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
        // Recorded hashes are reused while the stamp holds, for files settled 2 s.
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = cache_dir.path().join("hashes.json");
        std::thread::sleep(std::time::Duration::from_millis(2100));
        let c1 = BuildContext::open_with_cache(d.path(), Some(&cache)).unwrap();
        let h1 = c1.sources_digest(&["app.py".to_string()]).unwrap();
        c1.save_hashes(&cache);
        // Poison the recorded hash: if the next build gives another digest, it used it.
        let mut hc: HashCache = serde_json::from_slice(&fs::read(&cache).unwrap()).unwrap();
        assert!(hc.files.keys().any(|k| k.ends_with("/app.py")));
        for (_, (_, hex)) in hc.files.iter_mut() {
            *hex = "0".repeat(64);
        }
        fs::write(&cache, serde_json::to_vec(&hc).unwrap()).unwrap();
        let c2 = BuildContext::open_with_cache(d.path(), Some(&cache)).unwrap();
        let h2 = c2.sources_digest(&["app.py".to_string()]).unwrap();
        assert_ne!(h2, h1, "the unchanged file was not read again");
        fs::write(d.path().join("app.py"), "print(1)\n").unwrap();
        let c3 = BuildContext::open_with_cache(d.path(), Some(&cache)).unwrap();
        assert_eq!(
            c3.sources_digest(&["app.py".to_string()]).unwrap(),
            h1,
            "a rewritten file (same bytes, new stamp) is read again"
        );

        // An excluded file does not take part.
        fs::write(d.path().join("secret.txt"), "changed").unwrap();
        let ctx4 = BuildContext::open(d.path()).unwrap();
        assert_eq!(
            ctx4.sources_digest(&["".to_string()]).unwrap(),
            ctx3.sources_digest(&["".to_string()]).unwrap()
        );
    }
}
