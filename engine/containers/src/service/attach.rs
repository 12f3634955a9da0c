//! `attach` and `resize`: a running container's stdio and terminal, through its shim's
//! socket (see `berth_runtime::attach` for the wire format).

use super::ContainerService;
use crate::record::*;
use crate::ContainerError;

impl ContainerService {
    /// Attaches to a running container's stdio through its shim (see
    /// `berth_runtime::attach` for the wire format).
    pub fn attach(
        &self,
        name_or_id: &str,
        req: &berth_runtime::attach::AttachRequest,
    ) -> Result<std::os::unix::net::UnixStream, ContainerError> {
        let rec = self.find(name_or_id)?;
        if !matches!(self.status(&rec), Status::Running { .. } | Status::Paused { .. }) {
            return Err(ContainerError::NotRunning(rec.name));
        }
        berth_runtime::attach::connect(&self.paths(&rec.id).shim(), req).map_err(ContainerError::io(format!(
            "cannot attach to container {} — its shim does not answer",
            rec.name
        )))
    }

    /// Resizes a running container's terminal (containers started with `-t`).
    pub fn resize(&self, name_or_id: &str, rows: u16, cols: u16) -> Result<(), ContainerError> {
        let rec = self.find(name_or_id)?;
        if !self.status(&rec).is_running() {
            return Err(ContainerError::NotRunning(rec.name));
        }
        let req = berth_runtime::attach::AttachRequest {
            resize: Some((rows, cols)),
            ..Default::default()
        };
        berth_runtime::attach::connect(&self.paths(&rec.id).shim(), &req)
            .map(drop)
            .map_err(ContainerError::io(format!(
                "cannot resize the terminal of container {}",
                rec.name
            )))
    }
}
