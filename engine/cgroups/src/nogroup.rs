//! The backend of a process that may not make groups: a rootless engine where nobody
//! delegated a cgroup subtree to the user. Containers then run in the engine's own groups,
//! without limits (a start with limits is refused before it gets here) and without stats.

use std::path::PathBuf;

use crate::backend::Backend;
use crate::{CgroupError, InnerMount, Resolved, Stats};

#[derive(Debug)]
pub(crate) struct NoGroup {
    pub(crate) reason: &'static str,
}

impl NoGroup {
    fn refused(&self) -> CgroupError {
        CgroupError::Unavailable { reason: self.reason }
    }
}

impl Backend for NoGroup {
    fn create(&mut self) -> Result<(), CgroupError> {
        Ok(())
    }
    fn refresh(&mut self) {}
    fn exists(&self) -> bool {
        false
    }
    fn apply(&self, limits: &Resolved) -> Result<(), CgroupError> {
        if limits.is_empty() {
            Ok(())
        } else {
            Err(self.refused())
        }
    }
    fn procs_files(&self) -> Vec<PathBuf> {
        Vec::new()
    }
    fn join_files(&self) -> Vec<PathBuf> {
        Vec::new()
    }
    fn stats(&self) -> Result<Stats, CgroupError> {
        Err(self.refused())
    }
    fn oom_killed(&self) -> Result<bool, CgroupError> {
        Ok(false)
    }
    fn freeze(&self) -> Result<(), CgroupError> {
        Err(self.refused())
    }
    fn thaw(&self) -> Result<(), CgroupError> {
        Err(self.refused())
    }
    fn kill_all(&self, _sig: i32) -> Result<(), CgroupError> {
        Ok(())
    }
    fn remove(&self) -> Result<(), CgroupError> {
        Ok(())
    }
    fn paths(&self) -> Vec<PathBuf> {
        Vec::new()
    }
    fn inner_mounts(&self) -> Vec<InnerMount> {
        Vec::new()
    }
}
