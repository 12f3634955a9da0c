//! The small interface the v1 and v2 implementations share.

use std::fmt::Debug;
use std::path::PathBuf;

use crate::{CgroupError, Resolved, Stats};

/// One container's group in one cgroup layout.
pub(crate) trait Backend: Debug + Send + Sync {
    /// Creates the directories (parents included) and prepares them so that
    /// processes can join.
    fn create(&mut self) -> Result<(), CgroupError>;
    /// Forgets optional directories that do not exist (after `open`).
    fn refresh(&mut self);
    /// Whether the group exists in at least one hierarchy.
    fn exists(&self) -> bool;
    /// Writes the limits that are set.
    fn apply(&self, limits: &Resolved) -> Result<(), CgroupError>;
    /// Every `cgroup.procs` a process must join.
    fn procs_files(&self) -> Vec<PathBuf>;
    /// The files a single-threaded process writes "0" into to join (see `Cgroup::join_files`).
    fn join_files(&self) -> Vec<PathBuf>;
    fn stats(&self) -> Result<Stats, CgroupError>;
    fn oom_killed(&self) -> Result<bool, CgroupError>;
    fn freeze(&self) -> Result<(), CgroupError>;
    fn thaw(&self) -> Result<(), CgroupError>;
    /// Signals every process (`sig` already validated).
    fn kill_all(&self, sig: i32) -> Result<(), CgroupError>;
    /// Removes every directory of the group.
    fn remove(&self) -> Result<(), CgroupError>;
    fn paths(&self) -> Vec<PathBuf>;
    /// The cgroup filesystems to mount inside the container's cgroup namespace.
    fn inner_mounts(&self) -> Vec<crate::InnerMount>;
}

/// Signals each pid in the given procs files once.
pub(crate) fn signal_listed(procs_files: &[PathBuf], sig: i32) -> Result<(), CgroupError> {
    let mut pids = Vec::new();
    for file in procs_files {
        pids.extend(crate::fsutil::read_pids(file)?);
    }
    pids.sort_unstable();
    pids.dedup();
    for pid in pids {
        crate::fsutil::signal(pid, sig)?;
    }
    Ok(())
}

/// Polls `done` every 10 ms until it is true or `secs` pass; `nudge` runs
/// every 100 ms while waiting (to re-request a state the kernel may drop).
pub(crate) fn wait_until(
    secs: u64,
    mut done: impl FnMut() -> Result<bool, CgroupError>,
    mut nudge: impl FnMut() -> Result<(), CgroupError>,
) -> Result<bool, CgroupError> {
    let start = std::time::Instant::now();
    let mut rounds = 0u32;
    loop {
        if done()? {
            return Ok(true);
        }
        if start.elapsed() > std::time::Duration::from_secs(secs) {
            return Ok(false);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        rounds += 1;
        if rounds == 10 {
            rounds = 0;
            nudge()?;
        }
    }
}
