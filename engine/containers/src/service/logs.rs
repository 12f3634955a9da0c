//! `logs`: a container's json-file log, read (and followed) in docker's terms.

use berth_runtime::logs::{LogLine, LogOptions};

use super::ContainerService;
use crate::record::*;
use crate::ContainerError;

impl ContainerService {
    /// Hands each line of the container's log that `opts` keeps to `out` until it returns
    /// false; with `opts.follow`, waits for more until the container's run ends.
    pub fn read_logs(
        &self,
        rec: &ContainerRecord,
        opts: LogOptions,
        out: impl FnMut(LogLine) -> bool,
    ) -> Result<(), ContainerError> {
        Ok(berth_runtime::logs::read(&self.log_path(rec), opts, out)?)
    }

    /// The processes in the container's cgroup (its init and everything it started).
    pub fn pids(&self, rec: &ContainerRecord) -> Vec<i32> {
        berth_cgroups::Cgroup::open(&rec.id)
            .ok()
            .flatten()
            .and_then(|c| c.pids().ok())
            .unwrap_or_default()
    }
}
