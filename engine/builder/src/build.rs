//! Executing a parsed Dockerfile like docker's classic builder: stages in order (only
//! those the target needs), one step per instruction, each step looked up in the build
//! cache first by (parent image, instruction after substitution, copied content).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_dockerfile::{Copy as CopyInstr, Dockerfile, Healthcheck, Instruction, Kind, ShellOrExec};
use berth_reference::ImageRef;
use sha2::{Digest as _, Sha256};

use crate::cache_key::{run_history, CacheKey};
use crate::context::{BuildContext, EntryKind};
use crate::fsroot::{clean_parts, copy_entry, copy_tree, Root};
use crate::image::State;
use crate::scratch::Scratch;
use crate::{layer, run, BuildError, BuildEvent, BuildOptions, BuildOutcome, Builder};

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

/// What a step that makes a layer runs on a cache miss.
type StepExec<'f, S> = dyn FnMut(&mut S, &State) -> Result<berth_store::LayerRecord, BuildError> + 'f;

/// The per-stage variables: declared ARGs with their values.
struct StageVars {
    args: BTreeMap<String, Option<String>>,
    cmd_set: bool,
}

/// Go's `%q`-like rendering docker uses in history: `["python" "app.py"]`.
fn quoted_list(items: &[String]) -> String {
    let q: Vec<String> = items
        .iter()
        .map(|s| serde_json::to_string(s).unwrap_or_default())
        .collect();
    format!("[{}]", q.join(" "))
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
    let mut tags = Vec::new();
    for t in &opts.tags {
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
        tags.push(r);
    }
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
    let mut fin = s.results.remove(&target).unwrap_or_else(State::scratch);
    if !opts.labels.is_empty() {
        let labels = fin.container_config().labels.get_or_insert_with(Default::default);
        for (k, v) in &opts.labels {
            labels.insert(k.clone(), v.clone());
        }
    }
    let store = builder.images.store();
    let rec = fin.materialize(store)?;
    let id = rec.id.clone();
    store.put_image(rec)?;
    let unused: Vec<String> = s
        .build_args
        .keys()
        .filter(|k| !s.used_args.contains(*k) && !PROXY_ARGS.contains(&k.as_str()))
        .cloned()
        .collect();
    if !unused.is_empty() {
        (s.events)(BuildEvent::Warning(format!(
            "One or more build-args [{}] were not consumed",
            unused.join(" ")
        )));
    }
    let mut tagged = Vec::new();
    for r in &tags {
        builder.images.tag(id.hex(), &r.to_string())?;
        tagged.push(r.familiar());
    }
    Ok(BuildOutcome {
        image_id: id,
        tags: tagged,
    })
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

    fn base_image(&mut self, name: &str, platform: Option<&str>) -> Result<State, BuildError> {
        let images = &self.builder.images;
        let platform = platform
            .map(|p| p.parse::<berth_oci::Platform>())
            .transpose()
            .map_err(|e| BuildError::Parse(format!("FROM --platform: {e}")))?;
        let reference = ImageRef::parse(name)
            .map_err(|e| BuildError::Parse(format!("invalid base image {name}: {e}")))?;
        let local = if self.opts.pull {
            None
        } else {
            images.resolve(name).ok()
        };
        let rec = match local {
            Some(rec) => rec,
            None => {
                let (tx, rx) = std::sync::mpsc::channel();
                let progress: Arc<dyn berth_images::Progress> =
                    Arc::new(PullLines(std::sync::Mutex::new(tx)));
                let pull_opts = berth_images::PullOptions { platform };
                let out = match tokio::runtime::Handle::try_current() {
                    Ok(h) => {
                        // The pull is polled in slices; its lines are relayed between them,
                        // outside `block_on`, because the event sink may itself block (an
                        // API stream's `blocking_send` panics inside a runtime context).
                        let pull = images.pull(&reference, &pull_opts, progress);
                        tokio::pin!(pull);
                        let result = loop {
                            let done = h.block_on(async {
                                tokio::select! {
                                    r = &mut pull => Some(r),
                                    _ = tokio::time::sleep(std::time::Duration::from_millis(20)) => None,
                                }
                            });
                            while let Ok(line) = rx.try_recv() {
                                (self.events)(BuildEvent::Status(line));
                            }
                            if let Some(r) = done {
                                break r;
                            }
                        };
                        result?
                    }
                    Err(_) => tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(BuildError::io("cannot start an async runtime to pull"))?
                        .block_on(images.pull(&reference, &pull_opts, progress))?,
                };
                self.emit(BuildEvent::Status(format!("Digest: {}", out.digest)));
                self.emit(BuildEvent::Status(format!(
                    "Status: Downloaded newer image for {}",
                    reference.familiar()
                )));
                out.image
            }
        };
        State::from_record(images.store(), rec)
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
        let base = self.expand_global(&st.base, escape, st.line)?;
        let mut state = match self.stage_index(&base) {
            Some(j) if j < i && base.parse::<usize>().is_err() => self
                .results
                .get(&j)
                .cloned()
                .ok_or_else(|| BuildError::at(st.line, format!("stage {base} was not built")))?,
            _ if base.eq_ignore_ascii_case("scratch") => State::scratch(),
            _ => {
                let platform = st
                    .platform
                    .as_ref()
                    .map(|p| self.expand_global(p, escape, st.line))
                    .transpose()?;
                self.base_image(&base, platform.as_deref())?
            }
        };
        if let Some(d) = state.digest() {
            self.emit(BuildEvent::StepDone { image: d });
        }
        let mut vars = StageVars {
            args: BTreeMap::new(),
            cmd_set: false,
        };
        // ONBUILD triggers of the base run first, then are dropped from the new image.
        let triggers: Vec<String> = state
            .config
            .config
            .as_ref()
            .and_then(|c| c.extra.get("OnBuild"))
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default();
        if !triggers.is_empty() {
            if let Some(c) = state.config.config.as_mut() {
                c.extra.remove("OnBuild");
            }
            self.emit(BuildEvent::Triggers {
                count: triggers.len(),
            });
            for t in &triggers {
                let parsed = berth_dockerfile::parse(&format!("FROM scratch\n{t}\n")).map_err(|e| {
                    BuildError::at(
                        st.line,
                        format!("invalid ONBUILD trigger `{t}` in the base image: {e}"),
                    )
                })?;
                for ins in parsed.stages.into_iter().flat_map(|s| s.instructions) {
                    self.instruction(&mut state, &mut vars, &ins, escape)?;
                }
            }
        }
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

    /// Looks the step up in the cache; on a miss runs `exec` (which returns the layer, if
    /// the step makes one) and records the result.
    fn cached_step(
        &mut self,
        state: &mut State,
        key: &dyn Fn(&str) -> CacheKey,
        created_by: String,
        apply: &dyn Fn(&mut State),
        exec: Option<&mut StepExec<'_, Self>>,
    ) -> Result<(), BuildError> {
        self.builder.check_cancelled()?;
        let key = key(&state.id);
        let key = key.hex();
        let store = self.builder.images.store().clone();
        if !self.opts.no_cache {
            if let Some(rec) = store.build_cache(key)? {
                let id = rec.id.clone();
                *state = State::from_record(&store, rec)?;
                self.emit(BuildEvent::UsingCache);
                self.emit(BuildEvent::StepDone { image: id });
                return Ok(());
            }
        }
        let layer = match exec {
            Some(f) => Some(f(self, state)?),
            None => None,
        };
        apply(state);
        state.push(created_by, layer);
        let rec = state.materialize(&store)?;
        let id = rec.id.clone();
        store.put_build_cache(key, rec)?;
        self.emit(BuildEvent::StepDone { image: id });
        Ok(())
    }

    fn shell(state: &State) -> Vec<String> {
        state
            .config
            .config
            .as_ref()
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

    fn set_config(
        &mut self,
        state: &mut State,
        created_by: String,
        apply: impl Fn(&mut State),
    ) -> Result<(), BuildError> {
        let line = created_by.clone();
        self.cached_step(
            state,
            &|parent| CacheKey::line(parent, &line),
            created_by,
            &apply,
            None,
        )
    }

    fn instruction(
        &mut self,
        state: &mut State,
        vars: &mut StageVars,
        ins: &Instruction,
        escape: char,
    ) -> Result<(), BuildError> {
        let line = ins.line;
        let shell_prefix = Self::shell(state).join(" ");
        let nop = |text: String| format!("{shell_prefix} #(nop)  {text}");
        match &ins.kind {
            Kind::Run(r) => self.run(state, vars, r, line),
            Kind::Copy(c) => self.copy(state, vars, c, false, line, escape),
            Kind::Add(c) => self.copy(state, vars, c, true, line, escape),
            Kind::Workdir(w) => {
                let w = self.expand(state, vars, w, escape, line)?;
                let path = if w.starts_with('/') {
                    w.clone()
                } else {
                    format!("{}/{}", state.working_dir().trim_end_matches('/'), w)
                };
                let path = format!("/{}", clean_parts(&path).join("/"));
                let created_by = format!("{shell_prefix} #(nop) WORKDIR {path}");
                let p2 = path.clone();
                let mut exec = move |s: &mut Self, st: &State| s.workdir_layer(st, &p2);
                let line = created_by.clone();
                self.cached_step(
                    state,
                    &|parent| CacheKey::line(parent, &line),
                    created_by,
                    &|st: &mut State| st.container_config().working_dir = Some(path.clone()),
                    Some(&mut exec),
                )
            }
            Kind::Env(kvs) => {
                let mut pairs = Vec::new();
                for kv in kvs {
                    pairs.push((kv.key.clone(), self.expand(state, vars, &kv.value, escape, line)?));
                }
                let text: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                self.set_config(state, nop(format!("ENV {}", text.join(" "))), move |st| {
                    let mut env = st.env();
                    for (k, v) in &pairs {
                        env.retain(|e| e.split_once('=').map_or(e.as_str(), |(ek, _)| ek) != k);
                        env.push(format!("{k}={v}"));
                    }
                    st.container_config().env = Some(env);
                })
            }
            Kind::Arg(decls) => {
                let mut text = Vec::new();
                for d in decls {
                    let value = if let Some(v) = self.build_args.get(&d.name) {
                        self.used_args.insert(d.name.clone());
                        Some(v.clone())
                    } else if let Some(def) = &d.default {
                        Some(self.expand(state, vars, def, escape, line)?)
                    } else {
                        self.global_lookup(&d.name)
                    };
                    vars.args.insert(d.name.clone(), value);
                    text.push(match &d.default {
                        Some(def) => format!("{}={def}", d.name),
                        None => d.name.clone(),
                    });
                }
                self.set_config(state, nop(format!("ARG {}", text.join(" "))), |_| {})
            }
            Kind::Label(kvs) => {
                let mut pairs = Vec::new();
                for kv in kvs {
                    pairs.push((
                        self.expand(state, vars, &kv.key, escape, line)?,
                        self.expand(state, vars, &kv.value, escape, line)?,
                    ));
                }
                let text: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                self.set_config(state, nop(format!("LABEL {}", text.join(" "))), move |st| {
                    let labels = st.container_config().labels.get_or_insert_with(Default::default);
                    for (k, v) in &pairs {
                        labels.insert(k.clone(), v.clone());
                    }
                })
            }
            Kind::Expose(ports) => {
                let mut norm = Vec::new();
                for p in ports {
                    let p = self.expand(state, vars, p, escape, line)?;
                    for p in p.split_whitespace() {
                        let port = if p.contains('/') {
                            p.to_ascii_lowercase()
                        } else {
                            format!("{p}/tcp")
                        };
                        let num = port.split('/').next().unwrap_or("");
                        let valid = num.split('-').all(|n| n.parse::<u16>().is_ok_and(|n| n > 0));
                        if !valid {
                            return Err(BuildError::at(
                                line,
                                format!("invalid port {p} in EXPOSE — use a number like 5000 or 5000/udp"),
                            ));
                        }
                        norm.push(port);
                    }
                }
                let shown: Vec<&str> = norm.iter().map(|p| p.trim_end_matches("/tcp")).collect();
                let text = nop(format!("EXPOSE {}", shown.join(" ")));
                self.set_config(state, text, move |st| {
                    let ports = st
                        .container_config()
                        .exposed_ports
                        .get_or_insert_with(Default::default);
                    for p in &norm {
                        ports.insert(p.clone(), serde_json::json!({}));
                    }
                })
            }
            Kind::Cmd(c) => {
                let args = Self::command_args(state, c);
                vars.cmd_set = true;
                self.set_config(state, nop(format!("CMD {}", quoted_list(&args))), move |st| {
                    st.container_config().cmd = Some(args.clone());
                })
            }
            Kind::Entrypoint(c) => {
                let args = Self::command_args(state, c);
                let reset_cmd = !vars.cmd_set;
                self.set_config(
                    state,
                    nop(format!("ENTRYPOINT {}", quoted_list(&args))),
                    move |st| {
                        let cc = st.container_config();
                        cc.entrypoint = Some(args.clone());
                        // docker drops an inherited CMD when the stage sets ENTRYPOINT.
                        if reset_cmd {
                            cc.cmd = None;
                        }
                    },
                )
            }
            Kind::User(u) => {
                let u = self.expand(state, vars, u, escape, line)?;
                self.set_config(state, nop(format!("USER {u}")), move |st| {
                    st.container_config().user = Some(u.clone());
                })
            }
            Kind::Volume(vols) => {
                let mut v = Vec::new();
                for x in vols {
                    v.push(self.expand(state, vars, x, escape, line)?);
                }
                self.set_config(state, nop(format!("VOLUME [{}]", v.join(" "))), move |st| {
                    let m = st.container_config().volumes.get_or_insert_with(Default::default);
                    for x in &v {
                        m.insert(x.clone(), serde_json::json!({}));
                    }
                })
            }
            Kind::Shell(sh) => {
                let sh = sh.clone();
                self.set_config(state, nop(format!("SHELL [{}]", sh.join(" "))), move |st| {
                    st.container_config()
                        .extra
                        .insert("Shell".into(), serde_json::json!(sh.clone()));
                })
            }
            Kind::StopSignal(sig) => {
                let sig = self.expand(state, vars, sig, escape, line)?;
                self.set_config(state, nop(format!("STOPSIGNAL {sig}")), move |st| {
                    st.container_config().stop_signal = Some(sig.clone());
                })
            }
            Kind::Healthcheck(h) => {
                let value = match h {
                    Healthcheck::None => serde_json::json!({"Test": ["NONE"]}),
                    Healthcheck::Check {
                        test,
                        interval,
                        timeout,
                        start_period,
                        start_interval,
                        retries,
                    } => {
                        let test = match test {
                            ShellOrExec::Shell(s) => vec!["CMD-SHELL".to_string(), s.clone()],
                            ShellOrExec::Exec(v) => {
                                let mut t = vec!["CMD".to_string()];
                                t.extend(v.iter().cloned());
                                t
                            }
                        };
                        let mut m = serde_json::Map::new();
                        m.insert("Test".into(), serde_json::json!(test));
                        for (k, d) in [
                            ("Interval", interval),
                            ("Timeout", timeout),
                            ("StartPeriod", start_period),
                            ("StartInterval", start_interval),
                        ] {
                            if let Some(d) = d {
                                m.insert(k.into(), serde_json::json!(d.as_nanos() as u64));
                            }
                        }
                        if let Some(r) = retries {
                            m.insert("Retries".into(), serde_json::json!(r));
                        }
                        serde_json::Value::Object(m)
                    }
                };
                let text = ins
                    .original
                    .split_once(char::is_whitespace)
                    .map(|(_, rest)| rest)
                    .unwrap_or("")
                    .to_string();
                self.set_config(state, nop(format!("HEALTHCHECK {text}")), move |st| {
                    st.container_config()
                        .extra
                        .insert("Healthcheck".into(), value.clone());
                })
            }
            Kind::Onbuild(inner) => {
                let trigger = inner.original.clone();
                self.set_config(state, nop(format!("ONBUILD {trigger}")), move |st| {
                    let cc = st.container_config();
                    let mut list: Vec<String> = cc
                        .extra
                        .get("OnBuild")
                        .and_then(|v| serde_json::from_value(v.clone()).ok())
                        .unwrap_or_default();
                    list.push(trigger.clone());
                    cc.extra.insert("OnBuild".into(), serde_json::json!(list));
                })
            }
            Kind::Maintainer(m) => {
                let m = m.clone();
                self.set_config(state, nop(format!("MAINTAINER {m}")), move |st| {
                    st.config.author = Some(m.clone());
                })
            }
        }
    }

    fn workdir_layer(&mut self, state: &State, path: &str) -> Result<berth_store::LayerRecord, BuildError> {
        let mut scratch = Scratch::create(&self.builder.tmp_root)?;
        scratch.mount(&self.lowers(state))?;
        let root = Root::open(&scratch.rootfs())?;
        root.mkdir_p(path, None)?;
        drop(root);
        scratch.unmount()?;
        layer::commit_dir(self.builder.images.store(), &scratch.upper(), &scratch.dir)
    }

    fn lowers(&self, state: &State) -> Vec<PathBuf> {
        let store = self.builder.images.store();
        state.layers.iter().map(|l| store.layer_dir(&l.diff_id)).collect()
    }

    fn run(
        &mut self,
        state: &mut State,
        vars: &StageVars,
        r: &berth_dockerfile::Run,
        line: usize,
    ) -> Result<(), BuildError> {
        // A heredoc script with a shebang runs as an executable file mounted in /dev
        // (a tmpfs in the container), so it never lands in the layer.
        let (args, script) = match r.script() {
            berth_dockerfile::RunScript::Command(c) => (Self::command_args(state, &c), None),
            berth_dockerfile::RunScript::Executable { name, content } => {
                let base = clean_parts(&name)
                    .last()
                    .cloned()
                    .unwrap_or_else(|| "script".into());
                (vec![format!("/dev/pipes/{base}")], Some((base, content)))
            }
        };
        if args.is_empty() {
            return Err(BuildError::at(line, "RUN needs a command"));
        }
        if !r.mounts.is_empty() {
            return Err(BuildError::at(
                line,
                "RUN --mount needs BuildKit, which this classic builder does not emulate — remove the --mount flag",
            ));
        }
        // Build args in scope reach the command as environment variables and, like
        // docker, become part of its history line and cache key.
        let declared: Vec<(String, String)> = vars
            .args
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect();
        let created_by = run_history(&args, &declared);
        let mut env = state.env();
        let proxies: Vec<(String, String)> = self
            .build_args
            .iter()
            .filter(|(k, _)| PROXY_ARGS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in declared.iter().chain(&proxies) {
            if !env
                .iter()
                .any(|e| e.split_once('=').is_some_and(|(ek, _)| ek == k))
            {
                env.push(format!("{k}={v}"));
            }
        }
        let key = {
            let (line, script, network) = (created_by.clone(), script.clone(), r.network.clone());
            move |parent: &str| {
                let script = script.as_ref().map(|(n, c)| (n.as_str(), c.as_str()));
                CacheKey::run(parent, &line, script, network.as_deref())
            }
        };
        let network = r.network.clone().unwrap_or_else(|| self.opts.network.clone());
        let shown = args.join(" ");
        let mut exec = move |s: &mut Self, st: &State| -> Result<berth_store::LayerRecord, BuildError> {
            let mut scratch = Scratch::create(&s.builder.tmp_root)?;
            let short = scratch.id[..12].to_string();
            s.emit(BuildEvent::Running {
                container: short.clone(),
            });
            let spec = run::RunSpec {
                args: args.clone(),
                env: env.clone(),
                cwd: st.working_dir(),
                user: st.user(),
                network: &network,
                lowers: s.lowers(st),
                script: script.clone(),
            };
            let net = s.builder.net.clone();
            let running = s.builder.running.clone();
            let (code, last_lines) = run::run(&mut scratch, &spec, net.as_ref(), &running, s.events)?;
            s.builder.check_cancelled()?;
            if code != 0 {
                return Err(BuildError::RunFailed {
                    command: shown.clone(),
                    code,
                    last_lines,
                });
            }
            let layer = layer::commit_dir(s.builder.images.store(), &scratch.upper(), &scratch.dir)?;
            s.emit(BuildEvent::RemovingIntermediate { container: short });
            Ok(layer)
        };
        self.cached_step(state, &key, created_by, &|_| {}, Some(&mut exec))
    }

    #[allow(clippy::too_many_arguments)]
    fn copy(
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
            Some(m) => Some(
                u32::from_str_radix(m, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| {
                        BuildError::at(line, format!("invalid --chmod={m} — use an octal mode like 755"))
                    })?,
            ),
            None => None,
        };
        let dest_abs = if dest.starts_with('/') {
            dest.clone()
        } else {
            format!("{}/{}", state.working_dir().trim_end_matches('/'), dest)
        };
        let dest_is_dir_syntax = dest.ends_with('/') || dest == "." || dest.ends_with("/.");
        let mut plan: Vec<Source> = Vec::new();
        let summary;
        if !c.heredocs.is_empty() {
            // COPY <<EOF /path: the heredoc bodies are the files.
            let scratch_files = tempdir_in(&self.builder.tmp_root)?;
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
            summary = format!("heredoc:{}", hex::encode(h.finalize()));
            plan.push(Source::Cleanup(scratch_files));
        } else if let Some(from) = &c.from {
            let from = self.expand(state, vars, from, escape, line)?;
            let src_state = match self
                .stage_index(&from)
                .and_then(|j| self.results.get(&j).cloned())
            {
                Some(s) => s,
                None => self.base_image(&from, None)?,
            };
            summary = format!("from:{}:{}", src_state.id, sources.join(":"));
            plan.push(Source::Stage {
                state: Box::new(src_state),
                paths: sources.clone(),
            });
        } else {
            let mut selected = Vec::new();
            let mut urls = Vec::new();
            for s in &sources {
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
                plan.push(Source::Cleanup(dir));
            }
            summary = format!("{kind}:{digest}{url_part}");
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
        }
        let items = plan.iter().filter(|s| !matches!(s, Source::Cleanup(_))).count();
        if items > 1 && !dest_is_dir_syntax {
            return Err(BuildError::at(
                line,
                format!("When using {verb} with more than one source file, the destination must be a directory and end with a /"),
            ));
        }
        let created_by = format!(
            "{} #(nop) {verb} {summary} in {dest} ",
            Self::shell(state).join(" ")
        );
        let key = {
            let (line, owner, link) = (created_by.clone(), chown.clone(), c.link);
            move |parent: &str| CacheKey::copy(parent, &line, owner.as_deref(), chmod, link)
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

/// Relays the lines of a base image pull that docker's classic builder shows.
struct PullLines(std::sync::Mutex<std::sync::mpsc::Sender<String>>);

impl berth_images::Progress for PullLines {
    fn event(&self, event: berth_images::ProgressEvent) {
        use berth_images::ProgressEvent as E;
        let line = match event {
            E::Status(s) => s,
            E::AlreadyExists { id } => format!("{id}: Already exists"),
            E::PullComplete { id } => format!("{id}: Pull complete"),
            _ => return,
        };
        let _ = self.0.lock().unwrap_or_else(|p| p.into_inner()).send(line);
    }
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

/// A local archive ADD unpacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Archive {
    Tar,
    Gzip,
    Bzip2,
    Xz,
}

impl Archive {
    /// The host tool that decompresses it to stdout, for the formats Rust code here does not.
    fn tool(self) -> Option<(&'static str, &'static str)> {
        match self {
            Archive::Bzip2 => Some(("bzip2", "bzip2")),
            Archive::Xz => Some(("xz", "xz-utils")),
            _ => None,
        }
    }
}

fn is_tar_header(head: &[u8]) -> bool {
    head.len() >= 262 && &head[257..262] == b"ustar"
}

/// What kind of archive `path` is, if ADD should unpack it: a tar, plain or compressed
/// with gzip, bzip2 or xz. A compressed file that is not a tar is copied as it is.
fn archive_kind(path: &Path) -> Option<Archive> {
    use std::io::Read;
    let mut head = [0u8; 512];
    let mut f = std::fs::File::open(path).ok()?;
    let n = f.read(&mut head).unwrap_or(0);
    let head = &head[..n];
    let kind = if head.starts_with(&[0x1f, 0x8b]) {
        Archive::Gzip
    } else if head.starts_with(b"BZh") {
        Archive::Bzip2
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Archive::Xz
    } else {
        return is_tar_header(head).then_some(Archive::Tar);
    };
    let mut inner = Vec::new();
    match kind.tool() {
        None => {
            let f = std::fs::File::open(path).ok()?;
            flate2::read::GzDecoder::new(f)
                .take(512)
                .read_to_end(&mut inner)
                .ok()?;
        }
        Some((tool, _)) => {
            let mut child = std::process::Command::new(tool)
                .arg("-dc")
                .arg(path)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .ok()?;
            child.stdout.take()?.take(512).read_to_end(&mut inner).ok()?;
            let _ = child.kill();
            let _ = child.wait();
        }
    }
    is_tar_header(&inner).then_some(kind)
}

/// Unpacks the archive at `path` into `out` (which must not exist) with the layer
/// unpacker, so entries escaping the root are refused.
fn extract(kind: Archive, path: &Path, out: &Path) -> Result<(), String> {
    let opts = |c| berth_layers::UnpackOptions {
        compression: c,
        preserve_ownership: true,
    };
    match kind.tool() {
        None => {
            let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
            berth_layers::unpack(f, out, &opts(berth_layers::Compression::Auto))
                .map_err(|e| e.to_string())?;
        }
        Some((tool, package)) => {
            let mut child = std::process::Command::new(tool)
                .arg("-dc")
                .arg(path)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .map_err(|e| format!("cannot run {tool} ({e}) — install the {package} package"))?;
            let stdout = child.stdout.take().ok_or("no output from the decompressor")?;
            let none = berth_layers::Compression::Known(berth_layers::LayerCompression::None);
            let result = berth_layers::unpack(stdout, out, &opts(none)).map_err(|e| e.to_string());
            let status = child.wait().map_err(|e| e.to_string())?;
            result?;
            if !status.success() {
                return Err(format!("{tool} failed to decompress it ({status})"));
            }
        }
    }
    Ok(())
}

/// Downloads `url` into `dir`; returns the file name docker would give it and its path.
fn download(url: &str, dir: &Path) -> Result<(String, PathBuf), String> {
    let name = url
        .split(['?', '#'])
        .next()
        .unwrap_or(url)
        .rsplit('/')
        .find(|s| !s.is_empty() && !s.contains(':'))
        .unwrap_or("download")
        .to_string();
    let fut = async {
        let resp = reqwest::get(url)
            .await
            .map_err(|e| format!("cannot download {url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!(
                "cannot download {url}: the server answered {}",
                resp.status()
            ));
        }
        resp.bytes()
            .await
            .map_err(|e| format!("cannot download {url}: {e}"))
    };
    let bytes = match tokio::runtime::Handle::try_current() {
        Ok(h) => h.block_on(fut)?,
        Err(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?
            .block_on(fut)?,
    };
    let path = dir.join(&name);
    std::fs::write(&path, &bytes).map_err(|e| format!("cannot save {url}: {e}"))?;
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(|e| format!("cannot save {url}: {e}"))?;
    Ok((name, path))
}
