//! The image a build is producing, step by step: config + layers, written to the store
//! as config and manifest blobs so every step has an image ID like docker's.

use berth_oci::{media_type, Descriptor, Digest, History, ImageConfig, Manifest, Platform};
use berth_store::{ImageRecord, LayerRecord, Store};

use crate::BuildError;

/// The state after a step.
#[derive(Clone, Debug)]
pub struct State {
    pub config: ImageConfig,
    pub layers: Vec<LayerRecord>,
    /// What cache keys of the next step hang off: the image ID, or `scratch`.
    pub id: String,
}

pub fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl State {
    pub fn scratch() -> State {
        State {
            config: ImageConfig::for_platform(&Platform::host()),
            layers: Vec::new(),
            id: "scratch".into(),
        }
    }

    pub fn from_record(store: &Store, rec: ImageRecord) -> Result<State, BuildError> {
        let bytes = store.read_blob(&rec.config.digest())?;
        let config: ImageConfig = serde_json::from_slice(&bytes).map_err(|e| {
            BuildError::io(format!(
                "the config of image {} is not valid JSON",
                rec.id.short()
            ))(std::io::Error::other(e))
        })?;
        Ok(State {
            config,
            layers: rec.layers,
            id: rec.id.hex().to_string(),
        })
    }

    pub fn container_config(&mut self) -> &mut berth_oci::ContainerConfig {
        self.config.config_mut()
    }

    pub fn env(&self) -> Vec<String> {
        self.config
            .config()
            .and_then(|c| c.env().clone())
            .unwrap_or_default()
    }

    pub fn env_lookup(&self, name: &str) -> Option<String> {
        self.env().iter().rev().find_map(|kv| {
            kv.split_once('=')
                .filter(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    pub fn working_dir(&self) -> String {
        self.config
            .config()
            .and_then(|c| c.working_dir().clone())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into())
    }

    pub fn user(&self) -> String {
        self.config
            .config()
            .and_then(|c| c.user().clone())
            .unwrap_or_default()
    }

    /// Appends a history entry and, if given, a layer; stamps the creation time.
    pub fn push(&mut self, created_by: String, layer: Option<LayerRecord>) {
        self.push_commented(created_by, None, layer)
    }

    /// [`push`](Self::push) with the history entry's comment (a commit's message).
    pub fn push_commented(
        &mut self,
        created_by: String,
        comment: Option<String>,
        layer: Option<LayerRecord>,
    ) {
        let created = now();
        self.config.set_created(Some(created.clone()));
        let mut entry = History::default();
        entry
            .set_created(Some(created))
            .set_created_by(Some(created_by))
            .set_comment(comment);
        if layer.is_none() {
            entry.set_empty_layer(Some(true));
        }
        self.config.push_history(entry);
        if let Some(l) = layer {
            self.layers.push(l);
        }
        self.set_diff_ids();
    }

    /// Writes config and manifest blobs; returns the record (not yet stored as an image).
    pub fn materialize(&mut self, store: &Store) -> Result<ImageRecord, BuildError> {
        self.set_diff_ids();
        let config_bytes = serde_json::to_vec(&self.config)
            .map_err(|e| BuildError::io("cannot serialize the image config")(std::io::Error::other(e)))?;
        let config_digest = store.write_blob(&config_bytes)?;
        let config = Descriptor::new(
            media_type::OCI_CONFIG,
            config_digest.clone(),
            config_bytes.len() as u64,
        );
        let manifest = Manifest::new(
            media_type::OCI_MANIFEST,
            config.clone(),
            self.layers.iter().map(|l| l.blob.clone()).collect(),
        );
        let manifest_bytes = serde_json::to_vec(&manifest)
            .map_err(|e| BuildError::io("cannot serialize the manifest")(std::io::Error::other(e)))?;
        let manifest_digest = store.write_blob(&manifest_bytes)?;
        self.id = config_digest.hex().to_string();
        Ok(ImageRecord {
            id: config_digest,
            manifest: Descriptor::new(
                media_type::OCI_MANIFEST,
                manifest_digest,
                manifest_bytes.len() as u64,
            ),
            index_digest: None,
            config,
            layers: self.layers.clone(),
            repo_digests: Vec::new(),
            platform: Some(self.config.platform()),
            created: self.config.created().clone(),
            stored_at: now(),
        })
    }

    fn set_diff_ids(&mut self) {
        let diff_ids: Vec<Digest> = self.layers.iter().map(|l| l.diff_id.clone()).collect();
        self.config.set_diff_ids(&diff_ids);
    }

    pub fn digest(&self) -> Option<Digest> {
        Digest::from_hex(&self.id).ok()
    }
}
