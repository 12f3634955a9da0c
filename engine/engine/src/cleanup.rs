//! Removals that cross services: an image, volume or network goes only when no container
//! uses it (the containers service knows the users; the image and volume services do the
//! removing). The Engine API and every front end reach these, never the checks themselves.

use berth_containers::{ContainerError, VolumeInfo};
use berth_images::{ImageError, PruneReport, RemoveEvent};

use crate::Engine;

/// Refusals of the removals here, worded as dockerd words them (the docker CLI shows them
/// as they are), and the services' own errors.
#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    #[error("conflict: unable to remove repository reference \"{reference}\" (must force) - container {container} is using its referenced image {image}")]
    ImageInUse {
        reference: String,
        container: String,
        image: String,
    },
    #[error("remove {name}: volume is in use - [{users}]")]
    VolumeInUse { name: String, users: String },
    #[error("get {0}: no such volume")]
    NoSuchVolume(String),
    #[error(transparent)]
    Images(#[from] ImageError),
    #[error(transparent)]
    Containers(#[from] ContainerError),
}

/// What `volume prune` removed.
#[derive(Debug, Default)]
pub struct VolumesPruned {
    pub deleted: Vec<String>,
    pub space_reclaimed: u64,
}

impl Engine {
    /// `rmi [-f] NAME`. Without force it refuses an image a container (in any state) was
    /// created from, unless the name is one of several tags, which only untags (docker's
    /// rule).
    pub fn remove_image(&self, name: &str, force: bool) -> Result<Vec<RemoveEvent>, RemoveError> {
        if !force {
            if let Ok(rec) = self.images.resolve(name) {
                let only_untags = self.images.tags_of(&rec.id).map(|t| t.len() > 1).unwrap_or(false)
                    && !rec.id.to_string().contains(name.trim_start_matches("sha256:"));
                if !only_untags {
                    if let Some(user) = self.containers.users_of_image(&rec.id)?.first() {
                        return Err(RemoveError::ImageInUse {
                            reference: name.to_string(),
                            container: user.id[..12].to_string(),
                            image: rec.id.short().to_string(),
                        });
                    }
                }
            }
        }
        Ok(self.images.remove(name, force)?)
    }

    /// `image prune [-a]`: dangling images, or with `all` every image no container was
    /// created from.
    pub fn prune_images(&self, all: bool) -> Result<PruneReport, RemoveError> {
        let in_use: Vec<berth_oci::Digest> = self
            .containers
            .records()?
            .into_iter()
            .map(|r| r.image_id)
            .collect();
        Ok(self.images.prune(all, &in_use)?)
    }

    /// `volume rm [-f] NAME`: refused while a container mounts it; with force a missing
    /// volume is no error.
    pub fn remove_volume(&self, name: &str, force: bool) -> Result<(), RemoveError> {
        let volumes = self.containers.volumes();
        if volumes.get(name)?.is_none() {
            return if force {
                Ok(())
            } else {
                Err(RemoveError::NoSuchVolume(name.to_string()))
            };
        }
        let users = self.containers.users_of_volume(name)?;
        if !users.is_empty() {
            return Err(RemoveError::VolumeInUse {
                name: name.to_string(),
                users: users.join(", "),
            });
        }
        Ok(volumes.remove(name)?)
    }

    /// `volume prune [-a]`: volumes no container mounts that `wanted` picks — only anonymous
    /// ones (named by a 64-digit hex ID) unless `all`.
    pub fn prune_volumes(
        &self,
        all: bool,
        wanted: impl Fn(&VolumeInfo) -> bool,
    ) -> Result<VolumesPruned, RemoveError> {
        let mut pruned = VolumesPruned::default();
        for v in self.containers.volumes().list()? {
            let anonymous = v.name.len() == 64 && v.name.chars().all(|c| c.is_ascii_hexdigit());
            if (!all && !anonymous) || !wanted(&v) || !self.containers.users_of_volume(&v.name)?.is_empty() {
                continue;
            }
            pruned.space_reclaimed += berth_host::disk::tree_size(&v.mountpoint);
            self.containers.volumes().remove(&v.name)?;
            pruned.deleted.push(v.name);
        }
        Ok(pruned)
    }

    /// `network prune`: user networks with no endpoint that no container (running or not)
    /// is attached to; the names of those removed.
    pub fn prune_networks(&self) -> Result<Vec<String>, RemoveError> {
        let net = self.containers.network();
        let records = self.containers.records()?;
        let mut deleted = Vec::new();
        for n in net.list_networks().map_err(ContainerError::from)? {
            if matches!(n.name.as_str(), "bridge" | "host" | "none") {
                continue;
            }
            let no_endpoint = net.endpoints(&n.name).map(|e| e.is_empty()).unwrap_or(false);
            let attached = records
                .iter()
                .any(|r| r.attachments().iter().any(|a| a.name == n.name));
            if no_endpoint && !attached && self.containers.remove_network(&n.name).is_ok() {
                deleted.push(n.name);
            }
        }
        Ok(deleted)
    }
}
