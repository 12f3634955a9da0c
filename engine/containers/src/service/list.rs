//! `ps` and the queries over all containers (which use an image or a volume).

use super::ContainerService;
use crate::record::*;
use crate::ContainerError;

/// A row of `ps`.
#[derive(Debug, Clone)]
pub struct ContainerSummary {
    pub record: ContainerRecord,
    pub status: Status,
    /// Its healthcheck's verdict (`starting`, `healthy`, `unhealthy`) while it runs.
    pub health: Option<String>,
}

impl ContainerService {
    pub fn list(&self, all: bool) -> Result<Vec<ContainerSummary>, ContainerError> {
        let mut out = Vec::new();
        for record in self.records()? {
            let mut status = self.status(&record);
            if !status.is_running() && record.damage.is_none() {
                // A container that stopped while no engine ran: release what it held. One
                // that cannot be released is listed as dead (the reason is recorded), so
                // `ps` still lists everything and `rm` can remove it.
                if let Err(e) = self.release(&record) {
                    tracing::warn!(container = %record.name, "cannot release the last run: {e}");
                    status = self.status(&record);
                }
                if record.host.auto_remove
                    && matches!(status, Status::Exited { .. } | Status::Dead { .. })
                    && !self.attached_client_alive(&record)
                    && self.remove(&record.id, true, true).is_ok()
                {
                    continue;
                }
            }
            if all || status.is_running() {
                let health = status
                    .is_running()
                    .then(|| self.health(&record).map(|h| h.status))
                    .flatten();
                out.push(ContainerSummary {
                    record,
                    status,
                    health,
                });
            }
        }
        Ok(out)
    }

    /// IDs of containers (any state) created from `image_id`.
    pub fn users_of_image(
        &self,
        image_id: &berth_oci::Digest,
    ) -> Result<Vec<ContainerRecord>, ContainerError> {
        Ok(self
            .records()?
            .into_iter()
            .filter(|r| &r.image_id == image_id)
            .collect())
    }

    /// Names of containers that mount volume `name`.
    pub fn users_of_volume(&self, name: &str) -> Result<Vec<String>, ContainerError> {
        Ok(self
            .records()?
            .into_iter()
            .filter(|r| {
                r.host
                    .mounts
                    .iter()
                    .any(|m| m.kind == MountKind::Volume && m.source == name)
            })
            .map(|r| r.name)
            .collect())
    }
}
