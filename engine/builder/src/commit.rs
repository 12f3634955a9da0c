//! `commit`: a container's changes (its overlay's upper dir) as one more layer on its
//! image, with the container's settings as the new image's config (docker's `POST /commit`).

use std::path::Path;

use berth_oci::Digest;

use crate::image::State;
use crate::scratch::Scratch;
use crate::{layer, BuildError, Builder};

/// What a commit records besides the layer: the container's settings, as docker takes them
/// into the image config.
#[derive(Debug, Clone, Default)]
pub struct CommitConfig {
    pub cmd: Vec<String>,
    pub entrypoint: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub labels: std::collections::BTreeMap<String, String>,
    pub exposed_ports: Vec<String>,
    pub comment: Option<String>,
    pub author: Option<String>,
    /// `--change`: Dockerfile instructions for the new image's config, applied last.
    pub changes: Vec<String>,
}

/// Files Berth provides for every run; not the container's own changes.
const PROVIDED: [&str; 3] = ["etc/hosts", "etc/hostname", "etc/resolv.conf"];

impl Builder {
    /// Commits `upper` (left as it is: it is copied) on top of image `base` with `config`;
    /// returns the new image's ID (tag it with the image service).
    pub fn commit(&self, upper: &Path, base: &Digest, config: &CommitConfig) -> Result<Digest, BuildError> {
        let store = self.images.store();
        let rec = store.image(base)?.ok_or_else(|| {
            BuildError::io("the container's image is gone")(std::io::ErrorKind::NotFound.into())
        })?;
        let mut state = State::from_record(store, rec)?;
        let scratch = Scratch::create(&self.tmp_root)?;
        let copy = scratch.dir.join("commit");
        // cp -a keeps what overlayfs records: whiteouts (0/0 devices), opaque xattrs, owners.
        let out = std::process::Command::new("cp")
            .arg("-a")
            .arg(upper)
            .arg(&copy)
            .output()
            .map_err(BuildError::io("cannot run cp to copy the container's changes"))?;
        if !out.status.success() {
            return Err(BuildError::io("cannot copy the container's changes")(
                std::io::Error::other(String::from_utf8_lossy(&out.stderr).trim().to_string()),
            ));
        }
        for f in PROVIDED {
            let p = copy.join(f);
            if p.is_file() {
                let _ = std::fs::remove_file(&p);
            }
        }
        let layer = layer::commit_dir(store, &copy, &scratch.dir)?;
        let cc = state.container_config();
        cc.set_cmd((!config.cmd.is_empty()).then(|| config.cmd.clone()));
        cc.set_entrypoint((!config.entrypoint.is_empty()).then(|| config.entrypoint.clone()));
        cc.set_env(Some(config.env.clone()));
        cc.set_working_dir(Some(config.working_dir.clone()).filter(|w| !w.is_empty() && w != "/"));
        cc.set_user(Some(config.user.clone()).filter(|u| !u.is_empty()));
        cc.set_labels(Some(config.labels.clone().into_iter().collect()));
        if !config.exposed_ports.is_empty() {
            cc.set_exposed_ports(Some(config.exposed_ports.clone()));
        }
        if let Some(a) = &config.author {
            state.config.set_author(Some(a.clone()));
        }
        crate::build::changes::apply(&mut state, &config.changes)?;
        let mut created_by = config.entrypoint.clone();
        created_by.extend(config.cmd.iter().cloned());
        let comment = config.comment.clone().filter(|c| !c.is_empty());
        state.push_commented(created_by.join(" "), comment, Some(layer));
        let rec = state.materialize(store)?;
        let id = rec.id.clone();
        store.put_image(rec)?;
        Ok(id)
    }
}

impl Builder {
    /// `import`: a root filesystem tar (plain or compressed) as a one-layer image with
    /// `message` as its history comment and `changes` (`--change`) in its config; entries that would escape the root are refused as
    /// for any layer. Returns the new image's ID.
    pub fn import(
        &self,
        tar: impl std::io::Read,
        message: Option<&str>,
        changes: &[String],
    ) -> Result<Digest, BuildError> {
        let store = self.images.store();
        let scratch = Scratch::create(&self.tmp_root)?;
        let dir = scratch.dir.join("import");
        std::fs::create_dir_all(&dir).map_err(BuildError::io("cannot make room for the import"))?;
        let opts = berth_layers::UnpackOptions {
            compression: berth_layers::Compression::Auto,
            preserve_ownership: berth_host::privilege::can_chown(),
            rootless: berth_host::privilege::in_user_namespace(),
        };
        berth_layers::unpack(tar, &dir, &opts).map_err(|e| {
            BuildError::io(
                "cannot import it: give docker import a tar of a root filesystem (docker export makes one)",
            )(std::io::Error::other(e))
        })?;
        let layer = layer::commit_dir(store, &dir, &scratch.dir)?;
        let mut state = State::scratch();
        crate::build::changes::apply(&mut state, changes)?;
        let comment = message
            .filter(|m| !m.is_empty())
            .unwrap_or("Imported from -")
            .to_string();
        state.push_commented(String::new(), Some(comment), Some(layer));
        let rec = state.materialize(store)?;
        let id = rec.id.clone();
        store.put_image(rec)?;
        Ok(id)
    }
}
