//! The backend of a process that may not make groups: a rootless engine where nobody
//! delegated a cgroup subtree to the user. Containers then run in the engine's own groups,
//! without limits (a start with limits is refused before it gets here), stats or freezing.

use std::path::PathBuf;

use crate::backend::Backend;
use crate::{CgroupError, InnerMount, Resolved, Stats};

#[derive(Debug)]
pub(crate) struct NoGroup {
    pub(crate) why: &'static str,
}

impl NoGroup {
    fn refused(&self) -> CgroupError {
        CgroupError::limits_unavailable(self.why)
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
        Ok(Stats::default())
    }
    fn oom_killed(&self) -> Result<bool, CgroupError> {
        Ok(false)
    }
    fn freeze(&self) -> Result<(), CgroupError> {
        crate::check_freezable()
    }
    fn thaw(&self) -> Result<(), CgroupError> {
        crate::check_freezable()
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
