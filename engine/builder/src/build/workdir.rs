//! WORKDIR: the stage's working directory, made in a layer of its own like docker does
//! (an existing directory gives an empty layer).

use super::{Session, StageVars};
use crate::cache_key::CacheKey;
use crate::fsroot::{clean_parts, Root};
use crate::image::State;
use crate::scratch::Scratch;
use crate::{layer, BuildError};

impl Session<'_> {
    pub(super) fn workdir(
        &mut self,
        state: &mut State,
        vars: &StageVars,
        w: &str,
        line: usize,
        escape: char,
    ) -> Result<(), BuildError> {
        let w = self.expand(state, vars, w, escape, line)?;
        let path = if w.starts_with('/') {
            w.clone()
        } else {
            format!("{}/{}", state.working_dir().trim_end_matches('/'), w)
        };
        let path = format!("/{}", clean_parts(&path).join("/"));
        let created_by = format!("{} #(nop) WORKDIR {path}", Self::shell(state).join(" "));
        let p2 = path.clone();
        let mut exec = move |s: &mut Self, st: &State| s.workdir_layer(st, &p2);
        let line = created_by.clone();
        self.cached_step(
            state,
            &|parent| CacheKey::line(parent, &line),
            created_by,
            &|st: &mut State| {
                st.container_config().set_working_dir(Some(path.clone()));
            },
            Some(&mut exec),
        )
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
}
