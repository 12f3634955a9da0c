//! Named volumes: `ROOT/volumes/<name>/_data`, docker's layout. A volume outlives every
//! container that uses it; only `volume rm` / `volume prune` delete its data.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_events::{Action, Events, Kind};

use serde::{Deserialize, Serialize};

use crate::ContainerError;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VolumeInfo {
    pub name: String,
    pub mountpoint: PathBuf,
    pub created: String,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// False until the first container filled it from its image (docker copies the image's
    /// content at the mount point into a new, empty volume once).
    #[serde(default)]
    pub populated: bool,
}

#[derive(Clone)]
pub struct VolumeService {
    dir: PathBuf,
    events: Events,
}

impl VolumeService {
    pub fn new(root: &Path) -> VolumeService {
        VolumeService {
            dir: root.join("volumes"),
            events: Events::none(),
        }
    }

    /// Emits `create` and `destroy` on `events`.
    pub fn with_events(mut self, events: Events) -> Self {
        self.events = events;
        self
    }

    fn emit(&self, action: Action, name: &str) {
        let attrs = BTreeMap::from([("driver".to_string(), "local".to_string())]);
        self.events.emit(Kind::Volume, action, name, attrs);
    }

    fn meta(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("volume.json")
    }

    pub fn is_valid_name(name: &str) -> bool {
        crate::names::is_valid(name)
    }

    /// Creates the volume if it does not exist; returns it either way (docker's behaviour).
    pub fn create(&self, name: &str) -> Result<VolumeInfo, ContainerError> {
        self.create_with(name, &BTreeMap::new())
    }

    /// Like [`create`](Self::create), with labels for a new volume (an existing one keeps
    /// its own, as in docker).
    pub fn create_with(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<VolumeInfo, ContainerError> {
        if !Self::is_valid_name(name) {
            return Err(ContainerError::InvalidArgument(format!(
                "invalid volume name '{name}': use letters, digits, '_', '.' and '-', starting with a letter or digit"
            )));
        }
        if let Some(v) = self.get(name)? {
            return Ok(v);
        }
        let data = self.dir.join(name).join("_data");
        std::fs::create_dir_all(&data).map_err(ContainerError::io(format!("cannot create volume {name}")))?;
        let info = VolumeInfo {
            name: name.to_string(),
            mountpoint: data,
            created: crate::service::now(),
            labels: labels.clone(),
            populated: false,
        };
        self.save(&info)?;
        self.emit(Action::Create, name);
        Ok(info)
    }

    pub(crate) fn save(&self, info: &VolumeInfo) -> Result<(), ContainerError> {
        let path = self.meta(&info.name);
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(info).expect("serializable"))
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(ContainerError::io(format!("cannot write volume {}", info.name)))
    }

    pub fn get(&self, name: &str) -> Result<Option<VolumeInfo>, ContainerError> {
        match std::fs::read(self.meta(name)) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ContainerError::io(format!("cannot read volume {name}"))(e)),
        }
    }

    pub fn list(&self) -> Result<Vec<VolumeInfo>, ContainerError> {
        let mut out = Vec::new();
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Ok(out);
        };
        for e in rd.flatten() {
            if let Some(v) = self.get(&e.file_name().to_string_lossy())? {
                out.push(v);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Removes a volume and its data. The caller checks that no container uses it.
    pub fn remove(&self, name: &str) -> Result<(), ContainerError> {
        if self.get(name)?.is_none() {
            return Err(ContainerError::InvalidArgument(format!(
                "no such volume: {name} — run `berth volume ls` to see your volumes"
            )));
        }
        std::fs::remove_dir_all(self.dir.join(name))
            .map_err(ContainerError::io(format!("cannot remove volume {name}")))?;
        self.emit(Action::Destroy, name);
        Ok(())
    }
}
