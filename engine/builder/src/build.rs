//! Executing a parsed Dockerfile like docker's classic builder: stages in order (only
//! those the target needs), one step per instruction, each step looked up in the build
//! cache first by (parent image, instruction after substitution, copied content).
//!
//! This file holds the [`Session`] of one build, the walk over stages and the variables
//! in scope; each instruction family is a file below `build/`, adding its steps to
//! `impl Session`:
//!
//! * `from`: FROM (a stage, `scratch`, or an image resolved or pulled) and the base's
//!   ONBUILD triggers;
//! * `run_step`: RUN as a cached step (the container itself is [`crate::run`]);
//! * `copy`: COPY and ADD — what to copy, its cache summary, and writing it;
//! * `add`: what only ADD does (URLs, unpacking local archives);
//! * `workdir`: WORKDIR, a step that makes a directory layer;
//! * `metadata`: the config-only instructions (ENV, ARG, LABEL, EXPOSE, CMD, ENTRYPOINT,
//!   USER, VOLUME, SHELL, STOPSIGNAL, HEALTHCHECK, ONBUILD, MAINTAINER);
//! * `cache`: a step looked up in, or recorded into, the build cache (keys are made by
//!   [`crate::cache_key`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use berth_dockerfile::{Dockerfile, Instruction, Kind, ShellOrExec};
use berth_reference::ImageRef;

use crate::context::BuildContext;
use crate::image::State;
use crate::{BuildError, BuildEvent, BuildOptions, BuildOutcome, Builder};

mod add;
mod cache;
pub(crate) mod changes;
mod copy;
mod from;
mod metadata;
mod run_step;
mod workdir;

/// ARGs every build knows without a declaration (docker's predefined proxy args). They
/// are passed to RUN but kept out of history and the cache key.
const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

pub(crate) struct Session<'a> {
    builder: &'a Builder,
    opts: &'a BuildOptions,
    ctx: BuildContext,
    events: &'a mut dyn FnMut(BuildEvent),
    step: usize,
    total: usize,
    build_args: BTreeMap<String, String>,
    used_args: BTreeSet<String>,
    results: HashMap<usize, State>,
    names: Vec<Option<String>>,
    global_args: BTreeMap<String, Option<String>>,
}

/// The per-stage variables: declared ARGs with their values.
struct StageVars {
    args: BTreeMap<String, Option<String>>,
    cmd_set: bool,
}

fn resolve_dockerfile(opts: &BuildOptions) -> PathBuf {
    match &opts.dockerfile {
        None => opts.context.join("Dockerfile"),
        Some(p) if p.is_absolute() => p.clone(),
        Some(p) => {
            if p.exists() {
                p.clone()
            } else {
                opts.context.join(p)
            }
        }
    }
}

pub(crate) fn build(
    builder: &Builder,
    opts: &BuildOptions,
    events: &mut dyn FnMut(BuildEvent),
) -> Result<BuildOutcome, BuildError> {
    // The context first: a wrong PATH is the likelier mistake and says more than the
    // Dockerfile missing from it.
    let hash_cache = builder.tmp_root.with_file_name("hashes.json");
    let ctx = BuildContext::open_with_cache(&opts.context, Some(&hash_cache))?;
    let df = read_dockerfile(opts)?;
    let tags = parse_tags(&opts.tags)?;
    let _lease = builder.images.store().lease()?;
    let mut s = Session {
        builder,
        opts,
        ctx,
        events,
        step: 0,
        total: 0,
        build_args: opts.build_args.iter().cloned().collect(),
        used_args: BTreeSet::new(),
        results: HashMap::new(),
        names: df.stages.iter().map(|st| st.name.clone()).collect(),
        global_args: BTreeMap::new(),
    };
    for a in &df.global_args {
        let v = s.build_args.get(&a.name).cloned().or_else(|| a.default.clone());
        if s.build_args.contains_key(&a.name) {
            s.used_args.insert(a.name.clone());
        }
        s.global_args.insert(a.name.clone(), v);
    }
    let target = match &opts.target {
        Some(t) => s.stage_index(t).ok_or_else(|| BuildError::NoTarget(t.clone()))?,
        None => df.stages.len() - 1,
    };
    let needed = s.needed_stages(&df, target)?;
    s.total = needed.iter().map(|&i| 1 + df.stages[i].instructions.len()).sum();
    for &i in &needed {
        let state = s.run_stage(&df, i)?;
        s.results.insert(i, state);
    }
    s.ctx.save_hashes(&hash_cache);
    let fin = s.results.remove(&target).unwrap_or_else(State::scratch);
    s.finish(fin, &tags)
}

/// The Dockerfile's text (from `-f`, the context, or stdin for `-f -`), parsed.
fn read_dockerfile(opts: &BuildOptions) -> Result<Dockerfile, BuildError> {
    let path = resolve_dockerfile(opts);
    let from_stdin = opts.dockerfile.as_deref() == Some(Path::new("-"));
    let text = if from_stdin {
        let mut t = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut t).map(|_| t)
    } else {
        std::fs::read_to_string(&path)
    }
    .map_err(|e| BuildError::NoDockerfile {
        path: path.clone(),
        reason: match e.kind() {
            std::io::ErrorKind::NotFound => "no such file".into(),
            _ => e.to_string(),
        },
    })?;
    let df = berth_dockerfile::parse(&text).map_err(|e| BuildError::Parse(e.to_string()))?;
    if df.stages.is_empty() {
        return Err(BuildError::Parse(
            "the Dockerfile has no FROM instruction — start it with FROM <image>".into(),
        ));
    }
    Ok(df)
}

/// `-t` names, checked before anything runs.
fn parse_tags(tags: &[String]) -> Result<Vec<ImageRef>, BuildError> {
    let mut out = Vec::new();
    for t in tags {
        let r = ImageRef::parse(t).map_err(|e| BuildError::InvalidTag {
            tag: t.clone(),
            reason: e.to_string(),
        })?;
        if r.digest().is_some() {
            return Err(BuildError::InvalidTag {
                tag: t.clone(),
                reason: "a tag cannot contain a digest — use name:tag".into(),
            });
        }
        out.push(r);
    }
    Ok(out)
}

impl Session<'_> {
    fn emit(&mut self, e: BuildEvent) {
        (self.events)(e)
    }

    fn stage_index(&self, name: &str) -> Option<usize> {
        if let Ok(n) = name.parse::<usize>() {
            return (n < self.names.len()).then_some(n);
        }
        self.names
            .iter()
            .position(|n| n.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(name)))
    }

    fn global_lookup(&self, name: &str) -> Option<String> {
        self.global_args.get(name).cloned().flatten()
    }

    fn expand_global(&self, word: &str, escape: char, line: usize) -> Result<String, BuildError> {
        berth_dockerfile::expand::process_word(word, &|n| self.global_lookup(n), escape)
            .map_err(|e| BuildError::at(line, e.to_string()))
    }

    /// Stages the target depends on (FROM another stage, COPY --from), in file order.
    fn needed_stages(&self, df: &Dockerfile, target: usize) -> Result<Vec<usize>, BuildError> {
        let mut need = BTreeSet::new();
        let mut todo = vec![target];
        while let Some(i) = todo.pop() {
            if !need.insert(i) {
                continue;
            }
            let st = &df.stages[i];
            let base = self.expand_global(&st.base, df.directives.escape, st.line)?;
            if let Some(j) = self
                .stage_index(&base)
                .filter(|&j| j < i && base.parse::<usize>().is_err())
            {
                todo.push(j);
            }
            for ins in &st.instructions {
                if let Kind::Copy(c) | Kind::Add(c) = &ins.kind {
                    if let Some(from) = &c.from {
                        if let Some(j) = self.stage_index(from).filter(|&j| j < i) {
                            todo.push(j);
                        }
                    }
                }
            }
        }
        Ok(need.into_iter().collect())
    }

    fn run_stage(&mut self, df: &Dockerfile, i: usize) -> Result<State, BuildError> {
        let st = &df.stages[i];
        let escape = df.directives.escape;
        self.step += 1;
        let mut from_text = match &st.platform {
            Some(p) => format!("FROM --platform={p} {}", st.base),
            None => format!("FROM {}", st.base),
        };
        if let Some(n) = &st.name {
            from_text.push_str(&format!(" AS {n}"));
        }
        let (n, total) = (self.step, self.total);
        self.emit(BuildEvent::Step {
            number: n,
            total,
            instruction: from_text,
        });
        let mut state = self.stage_base(df, i)?;
        if let Some(d) = state.digest() {
            self.emit(BuildEvent::StepDone { image: d });
        }
        let mut vars = StageVars {
            args: BTreeMap::new(),
            cmd_set: false,
        };
        self.run_triggers(&mut state, &mut vars, st.line, escape)?;
        for ins in &st.instructions {
            self.step += 1;
            let (n, total) = (self.step, self.total);
            self.emit(BuildEvent::Step {
                number: n,
                total,
                instruction: ins.original.clone(),
            });
            self.instruction(&mut state, &mut vars, ins, escape)?;
        }
        Ok(state)
    }

    /// The target's image with `--label`s stored, unused build args warned about, and
    /// the tags set.
    fn finish(&mut self, mut fin: State, tags: &[ImageRef]) -> Result<BuildOutcome, BuildError> {
        let (builder, opts) = (self.builder, self.opts);
        if !opts.labels.is_empty() {
            let labels = fin
                .container_config()
                .labels_mut()
                .get_or_insert_with(Default::default);
            for (k, v) in &opts.labels {
                labels.insert(k.clone(), v.clone());
            }
        }
        let store = builder.images.store();
        let rec = fin.materialize(store)?;
        let id = rec.id.clone();
        store.put_image(rec)?;
        let unused: Vec<String> = self
            .build_args
            .keys()
            .filter(|k| !self.used_args.contains(*k) && !PROXY_ARGS.contains(&k.as_str()))
            .cloned()
            .collect();
        if !unused.is_empty() {
            self.emit(BuildEvent::Warning(format!(
                "One or more build-args [{}] were not consumed",
                unused.join(" ")
            )));
        }
        let mut tagged = Vec::new();
        for r in tags {
            builder.images.tag(id.hex(), &r.to_string())?;
            tagged.push(r.familiar());
        }
        Ok(BuildOutcome {
            image_id: id,
            tags: tagged,
        })
    }

    fn lookup(&self, state: &State, vars: &StageVars, name: &str) -> Option<String> {
        state
            .env_lookup(name)
            .or_else(|| vars.args.get(name).cloned().flatten())
            .or_else(|| {
                PROXY_ARGS
                    .contains(&name)
                    .then(|| self.build_args.get(name).cloned())
                    .flatten()
            })
    }

    fn expand(
        &self,
        state: &State,
        vars: &StageVars,
        word: &str,
        escape: char,
        line: usize,
    ) -> Result<String, BuildError> {
        berth_dockerfile::expand::process_word(word, &|n| self.lookup(state, vars, n), escape)
            .map_err(|e| BuildError::at(line, e.to_string()))
    }

    fn shell(state: &State) -> Vec<String> {
        state
            .config
            .config()
            .and_then(|c| c.extra.get("Shell"))
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_else(|| DEFAULT_SHELL.iter().map(|s| s.to_string()).collect())
    }

    fn command_args(state: &State, cmd: &ShellOrExec) -> Vec<String> {
        match cmd {
            ShellOrExec::Exec(v) => v.clone(),
            ShellOrExec::Shell(s) => {
                let mut v = Self::shell(state);
                v.push(s.clone());
                v
            }
        }
    }

    fn instruction(
        &mut self,
        state: &mut State,
        vars: &mut StageVars,
        ins: &Instruction,
        escape: char,
    ) -> Result<(), BuildError> {
        let line = ins.line;
        match &ins.kind {
            Kind::Run(r) => self.run(state, vars, r, line),
            Kind::Copy(c) => self.copy(state, vars, c, false, line, escape),
            Kind::Add(c) => self.copy(state, vars, c, true, line, escape),
            Kind::Workdir(w) => self.workdir(state, vars, w, line, escape),
            Kind::Env(kvs) => self.set_pairs(state, vars, "ENV", kvs, metadata::set_env, line, escape),
            Kind::Arg(decls) => self.arg(state, vars, decls, line, escape),
            Kind::Label(kvs) => self.set_pairs(state, vars, "LABEL", kvs, metadata::set_labels, line, escape),
            Kind::Expose(ports) => self.expose(state, vars, ports, line, escape),
            Kind::Cmd(c) => self.cmd(state, vars, c),
            Kind::Entrypoint(c) => self.entrypoint(state, vars, c),
            Kind::User(u) => self.set_word(
                state,
                vars,
                "USER",
                u,
                |c, v| {
                    c.set_user(v);
                },
                line,
                escape,
            ),
            Kind::Volume(vols) => self.volume(state, vars, vols, line, escape),
            Kind::Shell(sh) => self.shell_instruction(state, sh),
            Kind::StopSignal(sig) => self.set_word(
                state,
                vars,
                "STOPSIGNAL",
                sig,
                |c, v| {
                    c.set_stop_signal(v);
                },
                line,
                escape,
            ),
            Kind::Healthcheck(h) => self.healthcheck(state, h, &ins.original),
            Kind::Onbuild(inner) => self.onbuild(state, &inner.original),
            Kind::Maintainer(m) => self.maintainer(state, m),
        }
    }

    /// The `#(nop)` history line of a config-only step, after the stage's shell.
    fn nop(state: &State, text: &str) -> String {
        format!("{} #(nop)  {text}", Self::shell(state).join(" "))
    }

    fn lowers(&self, state: &State) -> Vec<PathBuf> {
        let store = self.builder.images.store();
        state.layers.iter().map(|l| store.layer_dir(&l.diff_id)).collect()
    }
}
