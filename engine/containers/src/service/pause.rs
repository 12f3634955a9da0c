//! `pause` and `unpause`: the container's cgroup frozen and thawed, and a `paused` marker
//! that `status` reads.

use berth_cgroups::Cgroup;
use berth_events::Action;

use super::ContainerService;
use crate::record::*;
use crate::ContainerError;

impl ContainerService {
    pub fn pause(&self, name_or_id: &str) -> Result<(), ContainerError> {
        let rec = self.find(name_or_id)?;
        if !matches!(self.status(&rec), Status::Running { .. }) {
            return Err(ContainerError::NotRunning(rec.name));
        }
        berth_cgroups::check_freezable()?;
        if let Some(cg) = Cgroup::open(&rec.id)? {
            cg.freeze()?;
        }
        std::fs::write(self.paths(&rec.id).dir.join("paused"), b"")
            .map_err(ContainerError::io("cannot record the pause"))?;
        self.emit(Action::Pause, &rec);
        Ok(())
    }

    pub fn unpause(&self, name_or_id: &str) -> Result<(), ContainerError> {
        let rec = self.find(name_or_id)?;
        if let Some(cg) = Cgroup::open(&rec.id)? {
            cg.thaw()?;
        }
        let _ = std::fs::remove_file(self.paths(&rec.id).dir.join("paused"));
        self.emit(Action::Unpause, &rec);
        Ok(())
    }
}
