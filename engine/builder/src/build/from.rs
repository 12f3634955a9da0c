//! FROM: a stage's starting point — an earlier stage, `scratch`, or an image resolved
//! locally or pulled (its lines relayed as build output) — and the base's ONBUILD
//! triggers, which run first and are then dropped from the new image.

use std::sync::Arc;

use berth_dockerfile::Dockerfile;
use berth_reference::ImageRef;

use super::{Session, StageVars};
use crate::image::State;
use crate::{BuildError, BuildEvent};

impl Session<'_> {
    /// The state stage `i` starts from.
    pub(super) fn stage_base(&mut self, df: &Dockerfile, i: usize) -> Result<State, BuildError> {
        let st = &df.stages[i];
        let escape = df.directives.escape;
        let base = self.expand_global(&st.base, escape, st.line)?;
        Ok(match self.stage_index(&base) {
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
        })
    }

    /// Runs the base's ONBUILD triggers, then drops them from the new image.
    pub(super) fn run_triggers(
        &mut self,
        state: &mut State,
        vars: &mut StageVars,
        line: usize,
        escape: char,
    ) -> Result<(), BuildError> {
        let triggers: Vec<String> = state
            .config
            .config()
            .and_then(|c| c.extra.get("OnBuild"))
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default();
        if triggers.is_empty() {
            return Ok(());
        }
        state.container_config().extra.remove("OnBuild");
        self.emit(BuildEvent::Triggers {
            count: triggers.len(),
        });
        for t in &triggers {
            let parsed = berth_dockerfile::parse(&format!("FROM scratch\n{t}\n")).map_err(|e| {
                BuildError::at(
                    line,
                    format!("invalid ONBUILD trigger `{t}` in the base image: {e}"),
                )
            })?;
            for ins in parsed.stages.into_iter().flat_map(|s| s.instructions) {
                self.instruction(state, vars, &ins, escape)?;
            }
        }
        Ok(())
    }

    /// An image by name: the local one unless `--pull`, else pulled.
    pub(super) fn base_image(&mut self, name: &str, platform: Option<&str>) -> Result<State, BuildError> {
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
