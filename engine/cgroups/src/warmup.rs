//! Keeping cgroup migrations cheap while a container starts.
//!
//! Moving a process into a cgroup takes the kernel's global
//! `cgroup_threadgroup_rwsem` for writing. That semaphore is a per-cpu
//! rwsem guarded by `rcu_sync`: the first writer after a quiet period waits a
//! whole RCU grace period (about 11 ms on this kind of VM), later writers
//! within about one grace period of the previous one pass at once. A
//! container's init pays that wait on its critical path when it joins its
//! groups through `cgroup.procs`. On v1 it joins through `tasks` instead
//! (see `Cgroup::join_files`), which skips the semaphore; on a pure v2 host
//! [`Warmup`] pays the wait early, on a side thread, while the engine sets
//! up the network, and keeps the semaphore warm with cheap no-op
//! migrations until the container has joined.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::mounts::Hierarchies;

/// How often the no-op migration repeats (well inside a grace period).
const PERIOD: Duration = Duration::from_millis(2);
/// A guard that is never dropped (a leaked start) still ends the thread.
const MAX_LIFETIME: Duration = Duration::from_secs(5);

/// Warms the cgroup semaphore until dropped.
pub struct Warmup {
    stop: Arc<AtomicBool>,
}

impl Warmup {
    /// Starts warming on a pure v2 host; elsewhere containers join through v1 `tasks`
    /// files, which need no warming (and a warming write would hold the cgroup mutex they
    /// need). Does nothing when this process cannot migrate itself.
    pub fn start() -> Warmup {
        let stop = Arc::new(AtomicBool::new(false));
        let procs = Hierarchies::current()
            .ok()
            .filter(|h| h.layout().ok() == Some(crate::Layout::V2))
            .and_then(|h| own_procs_file(&h));
        if let Some(procs) = procs {
            let flag = stop.clone();
            let pid = std::process::id().to_string();
            let started = Instant::now();
            std::thread::spawn(move || {
                while !flag.load(Ordering::Relaxed) && started.elapsed() < MAX_LIFETIME {
                    // Moving ourselves into the group we are in: no change, but it takes
                    // (and so keeps warm) the semaphore.
                    if std::fs::write(&procs, &pid).is_err() {
                        return;
                    }
                    std::thread::sleep(PERIOD);
                }
            });
        }
        Warmup { stop }
    }
}

impl Drop for Warmup {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// `cgroup.procs` of this process's own group in one hierarchy.
fn own_procs_file(hierarchies: &Hierarchies) -> Option<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    if let Some(first) = hierarchies.v1.first() {
        let controller = first.controllers.first()?;
        let rel = own.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, list, path) = (parts.next()?, parts.next()?, parts.next()?);
            list.split(',').any(|c| c == controller).then(|| path.to_string())
        })?;
        return Some(first.path.join(rel.trim_start_matches('/')).join("cgroup.procs"));
    }
    let v2 = hierarchies.v2.as_ref()?;
    let rel = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(v2.join(rel.trim_start_matches('/')).join("cgroup.procs"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_its_own_group() {
        let hierarchies = super::Hierarchies::current().expect("cgroups mounted under /sys/fs/cgroup");
        let Some(procs) = super::own_procs_file(&hierarchies) else {
            panic!("no cgroup hierarchy found — these tests need cgroups mounted under /sys/fs/cgroup");
        };
        let pids = std::fs::read_to_string(&procs).unwrap();
        let me = std::process::id().to_string();
        assert!(pids.lines().any(|l| l == me), "{} lists {me}", procs.display());
        drop(super::Warmup::start());
    }
}
