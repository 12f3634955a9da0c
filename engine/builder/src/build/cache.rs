//! A step through the build cache: looked up by its key (see [`crate::cache_key`]) unless
//! `--no-cache`, else run and recorded with `Store::put_build_cache`.

use super::Session;
use crate::cache_key::CacheKey;
use crate::image::State;
use crate::{BuildError, BuildEvent};

/// What a step that makes a layer runs on a cache miss.
pub(super) type StepExec<'f, S> =
    dyn FnMut(&mut S, &State) -> Result<berth_store::LayerRecord, BuildError> + 'f;

impl Session<'_> {
    /// Looks the step up in the cache; on a miss runs `exec` (which returns the layer, if
    /// the step makes one) and records the result.
    pub(super) fn cached_step(
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

    /// A config-only step (no layer) whose history line is its cache key.
    pub(super) fn set_config(
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

    /// A config-only step whose history line can read alike for different results: its
    /// key adds `detail` (see [`CacheKey::config`]).
    pub(super) fn set_config_detailed(
        &mut self,
        state: &mut State,
        created_by: String,
        detail: serde_json::Value,
        apply: impl Fn(&mut State),
    ) -> Result<(), BuildError> {
        let line = created_by.clone();
        self.cached_step(
            state,
            &|parent| CacheKey::config(parent, &line, &detail),
            created_by,
            &apply,
            None,
        )
    }
}
