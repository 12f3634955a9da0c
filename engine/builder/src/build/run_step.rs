//! RUN as a build step: the command line (or heredoc script), the build args in scope as
//! its environment, history line and cache key; on a miss the command runs in a container
//! ([`crate::run`]) and the upper dir becomes the layer.

use super::{Session, StageVars, PROXY_ARGS};
use crate::cache_key::{run_history, CacheKey, RunInputs};
use crate::fsroot::clean_parts;
use crate::image::State;
use crate::scratch::Scratch;
use crate::{layer, run, BuildError, BuildEvent};

impl Session<'_> {
    pub(super) fn run(
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
            let (line, argv, script, network) = (
                created_by.clone(),
                args.clone(),
                script.clone(),
                r.network.clone(),
            );
            move |parent: &str| {
                let inputs = RunInputs {
                    history: &line,
                    argv: &argv,
                    build_args: &declared,
                    script: script.as_ref().map(|(n, c)| (n.as_str(), c.as_str())),
                    network: network.as_deref(),
                };
                CacheKey::run(parent, &inputs)
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
                extra_hosts: &s.opts.extra_hosts,
                shm_size: s.opts.shm_size,
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
}
