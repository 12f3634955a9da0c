//! The image a build is producing, step by step: config + layers, written to the store
//! as config and manifest blobs so every step has an image ID like docker's.

use berth_oci::{media_type, Descriptor, Digest, HistoryEntry, ImageConfig, Manifest, Platform};
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
        let host = Platform::host();
        State {
            config: ImageConfig {
                architecture: host.architecture.clone(),
                os: host.os.clone(),
                ..ImageConfig::default()
            },
            layers: Vec::new(),
            id: "scratch".into(),
        }
    }

    pub fn from_record(store: &Store, rec: ImageRecord) -> Result<State, BuildError> {
        let bytes = store.read_blob(&rec.config.digest)?;
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
        self.config.config.get_or_insert_with(Default::default)
    }

    pub fn env(&self) -> Vec<String> {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.env.clone())
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
            .config
            .as_ref()
            .and_then(|c| c.working_dir.clone())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into())
    }

    pub fn user(&self) -> String {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.user.clone())
            .unwrap_or_default()
    }

    /// Appends a history entry and, if given, a layer; stamps the creation time.
    pub fn push(&mut self, created_by: String, layer: Option<LayerRecord>) {
        let created = now();
        self.config.created = Some(created.clone());
        self.config.history.push(HistoryEntry {
            created: Some(created),
            created_by: Some(created_by),
            empty_layer: layer.is_none(),
            ..HistoryEntry::default()
        });
        if let Some(l) = layer {
            self.config.rootfs.diff_ids.push(l.diff_id.clone());
            self.layers.push(l);
        }
    }

    /// Writes config and manifest blobs; returns the record (not yet stored as an image).
    pub fn materialize(&mut self, store: &Store) -> Result<ImageRecord, BuildError> {
        self.config.rootfs.kind = "layers".into();
        self.config.rootfs.diff_ids = self.layers.iter().map(|l| l.diff_id.clone()).collect();
        let config_bytes = serde_json::to_vec(&self.config)
            .map_err(|e| BuildError::io("cannot serialize the image config")(std::io::Error::other(e)))?;
        let config_digest = store.write_blob(&config_bytes)?;
        let config = Descriptor::new(
            media_type::OCI_CONFIG,
            config_digest.clone(),
            config_bytes.len() as u64,
        );
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(media_type::OCI_MANIFEST.to_string()),
            config: config.clone(),
            layers: self.layers.iter().map(|l| l.blob.clone()).collect(),
            annotations: Default::default(),
        };
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
            platform: Some(Platform {
                architecture: self.config.architecture.clone(),
                os: self.config.os.clone(),
                ..Platform::host()
            }),
            created: self.config.created.clone(),
            stored_at: now(),
        })
    }

    pub fn digest(&self) -> Option<Digest> {
        Digest::from_hex(&self.id).ok()
    }
}
