//! COPY and ADD: what to copy (context paths, heredoc bodies, another stage's or image's
//! paths, and for ADD downloads), the summary that names it in history and the cache key,
//! and writing it into the step's root with `--chown`/`--chmod`.

use std::path::{Path, PathBuf};

use berth_dockerfile::Copy as CopyInstr;
use sha2::{Digest as _, Sha256};

use super::add::{archive_kind, download, extract, Archive};
use super::{Session, StageVars};
use crate::cache_key::{copy_history, CacheKey};
use crate::context::EntryKind;
use crate::fsroot::{clean_parts, copy_entry, copy_tree, Root};
use crate::image::State;
use crate::scratch::Scratch;
use crate::{layer, BuildError};

/// What a COPY/ADD copies, and the summary of it that goes into its history line (and so
/// into its cache key): a content digest, never times.
struct Plan {
    sources: Vec<Source>,
    summary: String,
    /// For `--from`: the paths, which the summary joins with `:` (see `CacheKey::copy`).
    from_paths: Option<Vec<String>>,
}

impl Session<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn copy(
        &mut self,
        state: &mut State,
        vars: &StageVars,
        c: &CopyInstr,
        add: bool,
        line: usize,
        escape: char,
    ) -> Result<(), BuildError> {
        let verb = if add { "ADD" } else { "COPY" };
        if !c.excludes.is_empty() {
            return Err(BuildError::at(
                line,
                format!("{verb} --exclude needs BuildKit's labs syntax, which this classic builder does not support — use .dockerignore"),
            ));
        }
        let mut sources = Vec::new();
        for s in &c.sources {
            sources.push(self.expand(state, vars, s, escape, line)?);
        }
        let dest = self.expand(state, vars, &c.dest, escape, line)?;
        let chown = c
            .chown
            .as_ref()
            .map(|o| self.expand(state, vars, o, escape, line))
            .transpose()?;
        let chmod = match &c.chmod {
            Some(m) => Some(parse_chmod(m).ok_or_else(|| {
                BuildError::at(line, format!("invalid --chmod={m} — use an octal mode like 755"))
            })?),
            None => None,
        };
        let dest_abs = if dest.starts_with('/') {
            dest.clone()
        } else {
            format!("{}/{}", state.working_dir().trim_end_matches('/'), dest)
        };
        let dest_is_dir_syntax = dest.ends_with('/') || dest == "." || dest.ends_with("/.");
        let Plan {
            sources: plan,
            summary,
            from_paths,
        } = if !c.heredocs.is_empty() {
            self.plan_heredocs(state, vars, c, line, escape)?
        } else if let Some(from) = &c.from {
            let from = self.expand(state, vars, from, escape, line)?;
            self.plan_from(&from, sources)?
        } else {
            self.plan_context(&sources, add, line, verb)?
        };
        let items = plan.iter().filter(|s| !matches!(s, Source::Cleanup(_))).count();
        if items > 1 && !dest_is_dir_syntax {
            return Err(BuildError::at(
                line,
                format!("When using {verb} with more than one source file, the destination must be a directory and end with a /"),
            ));
        }
        let created_by = copy_history(&Self::shell(state), verb, &summary, &dest);
        let key = {
            let (line, owner, link) = (created_by.clone(), chown.clone(), c.link);
            move |parent: &str| {
                CacheKey::copy(
                    parent,
                    &line,
                    owner.as_deref(),
                    chmod,
                    link,
                    from_paths.as_deref(),
                )
            }
        };
        let multi = items > 1;
        let mut exec = move |s: &mut Self, st: &State| -> Result<berth_store::LayerRecord, BuildError> {
            let mut scratch = Scratch::create(&s.builder.tmp_root)?;
            scratch.mount(&s.lowers(st))?;
            let rootfs = scratch.rootfs();
            let owner = match &chown {
                Some(spec) => {
                    let u = berth_runtime::resolve_user(&rootfs, spec)
                        .map_err(|e| BuildError::at(line, format!("{verb} --chown={spec}: {e}")))?;
                    Some((u.uid, u.gid))
                }
                None => Some((0, 0)),
            };
            let root = Root::open(&rootfs)?;
            let into_dir = dest_is_dir_syntax || multi || root.is_dir(&dest_abs);
            for src in &plan {
                s.copy_source(
                    &root, src, &dest_abs, into_dir, owner, chmod, &scratch, line, verb,
                )?;
            }
            drop(root);
            scratch.unmount()?;
            layer::commit_dir(s.builder.images.store(), &scratch.upper(), &scratch.dir)
        };
        self.cached_step(state, &key, created_by, &|_| {}, Some(&mut exec))
    }

    /// `COPY <<EOF /path`: the heredoc bodies (expanded unless the name was quoted) are
    /// the files.
    fn plan_heredocs(
        &self,
        state: &State,
        vars: &StageVars,
        c: &CopyInstr,
        line: usize,
        escape: char,
    ) -> Result<Plan, BuildError> {
        let mut plan = Vec::new();
        let scratch_files = tempdir_in(&self.builder.tmp_root)?;
        // Removed with the plan, whatever happens next.
        plan.push(Source::Cleanup(scratch_files.clone()));
        let mut h = Sha256::new();
        for hd in &c.heredocs {
            let content = if hd.expand {
                berth_dockerfile::expand::process_heredoc(
                    &hd.content,
                    &|n| self.lookup(state, vars, n),
                    escape,
                )
                .map_err(|e| BuildError::at(line, e.to_string()))?
            } else {
                hd.content.clone()
            };
            let p = scratch_files.join(&hd.name);
            std::fs::write(&p, &content).map_err(BuildError::io("cannot write a heredoc file"))?;
            h.update(format!("{}\0{}\n", hd.name, content));
            plan.push(Source::File {
                host: p,
                name: hd.name.clone(),
                archive: None,
            });
        }
        Ok(Plan {
            sources: plan,
            summary: format!("heredoc:{}", hex::encode(h.finalize())),
            from_paths: None,
        })
    }

    /// `COPY --from=`: paths in an earlier stage, or in an image (resolved or pulled).
    fn plan_from(&mut self, from: &str, sources: Vec<String>) -> Result<Plan, BuildError> {
        let src_state = match self.stage_index(from).and_then(|j| self.results.get(&j).cloned()) {
            Some(s) => s,
            None => self.base_image(from, None)?,
        };
        let summary = format!("from:{}:{}", src_state.id, sources.join(":"));
        Ok(Plan {
            sources: vec![Source::Stage {
                state: Box::new(src_state),
                paths: sources.clone(),
            }],
            summary,
            from_paths: Some(sources),
        })
    }

    /// Paths of the build context (after `.dockerignore`), and for ADD, URLs downloaded
    /// now so their content is part of the summary.
    fn plan_context(
        &mut self,
        sources: &[String],
        add: bool,
        line: usize,
        verb: &str,
    ) -> Result<Plan, BuildError> {
        let mut plan = Vec::new();
        let mut selected = Vec::new();
        let mut urls = Vec::new();
        for s in sources {
            if add && (s.starts_with("http://") || s.starts_with("https://")) {
                urls.push(s.clone());
                continue;
            }
            let found = self
                .ctx
                .select(s)
                .map_err(|m| BuildError::at(line, format!("{verb} failed: {m}")))?;
            selected.extend(found);
        }
        let digest = self.ctx.sources_digest(&selected)?;
        let kind = if selected.len() == 1 && urls.is_empty() {
            match self.ctx.entry(&selected[0]).map(|e| &e.kind) {
                Some(EntryKind::Dir) => "dir",
                _ => "file",
            }
        } else {
            "multi"
        };
        let mut url_part = String::new();
        if !urls.is_empty() {
            let dir = tempdir_in(&self.builder.tmp_root)?;
            plan.push(Source::Cleanup(dir.clone()));
            let mut h = Sha256::new();
            for u in &urls {
                let (name, path) =
                    download(u, &dir).map_err(|m| BuildError::at(line, format!("ADD failed: {m}")))?;
                let bytes = std::fs::read(&path).map_err(BuildError::io("cannot read a download"))?;
                h.update(format!("{u}\0{}\n", hex::encode(Sha256::digest(&bytes))));
                plan.push(Source::File {
                    host: path,
                    name,
                    archive: None,
                });
            }
            url_part = format!(" url:{}", hex::encode(h.finalize()));
        }
        for rel in selected {
            let e = self.ctx.entry(&rel).cloned();
            let host = self.ctx.root().join(&rel);
            match e.map(|e| e.kind) {
                Some(EntryKind::Dir) => plan.push(Source::ContextDir { rel }),
                _ => {
                    let name = rel.rsplit('/').next().unwrap_or(&rel).to_string();
                    let archive = if add { archive_kind(&host) } else { None };
                    plan.push(Source::File { host, name, archive });
                }
            }
        }
        Ok(Plan {
            sources: plan,
            summary: format!("{kind}:{digest}{url_part}"),
            from_paths: None,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn copy_source(
        &mut self,
        root: &Root,
        src: &Source,
        dest: &str,
        into_dir: bool,
        owner: crate::fsroot::Owner,
        chmod: Option<u32>,
        scratch: &Scratch,
        line: usize,
        verb: &str,
    ) -> Result<(), BuildError> {
        match src {
            Source::Cleanup(_) => Ok(()),
            Source::ContextDir { rel } => {
                let fd = root.mkdir_p(dest, owner)?;
                let ctx = &self.ctx;
                let base = rel.clone();
                let skip = |p: &Path| {
                    let full = if base.is_empty() {
                        p.to_string_lossy().into_owned()
                    } else {
                        format!("{base}/{}", p.to_string_lossy())
                    };
                    ctx.entry(&full).is_none_or(|e| e.excluded_by.is_some())
                };
                copy_tree(&ctx.root().join(rel), &fd, owner, chmod, &skip)
            }
            Source::File { host, name, archive } => {
                if let Some(kind) = archive {
                    let out = scratch.dir.join("archive");
                    extract(*kind, host, &out)
                        .map_err(|m| BuildError::at(line, format!("{verb} cannot extract {name}: {m}")))?;
                    let fd = root.mkdir_p(dest, owner)?;
                    // Without --chown the archive's owners stay, as with docker.
                    let keep = if chown_given(owner) { owner } else { None };
                    copy_tree(&out, &fd, keep, chmod, &|_| false)?;
                    let _ = std::fs::remove_dir_all(&out);
                    return Ok(());
                }
                if into_dir {
                    let fd = root.mkdir_p(dest, owner)?;
                    copy_entry(host, &fd, name, owner, chmod)?;
                } else {
                    let parts = clean_parts(dest);
                    let Some((last, parent)) = parts.split_last() else {
                        return Err(BuildError::at(
                            line,
                            format!("{verb} cannot replace the root directory with a file"),
                        ));
                    };
                    let fd = root.mkdir_p(&parent.join("/"), None)?;
                    copy_entry(host, &fd, last, owner, chmod)?;
                }
                Ok(())
            }
            Source::Stage { state, paths } => {
                let mut view = Scratch::create(&self.builder.tmp_root)?;
                view.mount(&self.lowers(state))?;
                let from_root = Root::open(&view.rootfs())?;
                for p in paths {
                    let Some(host) = from_root.resolve(p) else {
                        return Err(BuildError::at(
                            line,
                            format!("{verb} --from failed: {p} does not exist in the source image — check the path"),
                        ));
                    };
                    let meta = std::fs::symlink_metadata(&host)
                        .map_err(BuildError::io(format!("cannot read {p}")))?;
                    if meta.is_dir() {
                        let fd = root.mkdir_p(dest, owner)?;
                        copy_tree(&host, &fd, owner, chmod, &|_| false)?;
                    } else {
                        let name = clean_parts(p).last().cloned().unwrap_or_default();
                        let src = Source::File {
                            host,
                            name,
                            archive: None,
                        };
                        self.copy_source(root, &src, dest, into_dir, owner, chmod, scratch, line, verb)?;
                    }
                }
                drop(from_root);
                view.unmount()?;
                Ok(())
            }
        }
    }
}

/// `--chmod=` as octal, at most 0o7777.
fn parse_chmod(m: &str) -> Option<u32> {
    u32::from_str_radix(m, 8).ok().filter(|m| *m <= 0o7777)
}

fn chown_given(owner: crate::fsroot::Owner) -> bool {
    owner != Some((0, 0))
}

enum Source {
    ContextDir {
        rel: String,
    },
    File {
        host: PathBuf,
        name: String,
        archive: Option<Archive>,
    },
    Stage {
        state: Box<State>,
        paths: Vec<String>,
    },
    /// A temp dir to remove when the step is done.
    Cleanup(PathBuf),
}

impl Drop for Source {
    fn drop(&mut self) {
        if let Source::Cleanup(p) = self {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

fn tempdir_in(root: &Path) -> Result<PathBuf, BuildError> {
    let p = root.join(format!(
        "{}-files-{}",
        std::process::id(),
        hex::encode(rand::random::<[u8; 8]>())
    ));
    std::fs::create_dir_all(&p).map_err(BuildError::io(format!("cannot create {}", p.display())))?;
    Ok(p)
}
