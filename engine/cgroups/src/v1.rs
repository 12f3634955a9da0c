//! cgroup v1 (and hybrid): one directory per hierarchy.

use std::path::{Path, PathBuf};

use crate::backend::{signal_listed, wait_until, Backend};
use crate::mounts::Hierarchies;
use crate::{fsutil, group_dir, CgroupError, Resolved, Stats, BERTH_DIR, CPU_PERIOD_US};

/// The v1 controllers Berth places containers in. `devices` stays at the
/// parent's (allow-all) rules: the runtime restricts `/dev` itself.
const USED: &[&str] = &[
    "cpu", "cpuacct", "cpuset", "memory", "pids", "freezer", "devices", "blkio",
];

/// Seconds to wait for the freezer to settle.
const FREEZE_SECS: u64 = 5;

/// Memory limits at or above this are the kernel's "unlimited" value.
const UNLIMITED_FLOOR: u64 = 1 << 62;

#[derive(Debug, Clone)]
struct Dir {
    /// The used controllers of this hierarchy (co-mounted ones together).
    controllers: Vec<&'static str>,
    /// The mount point of the hierarchy.
    root: PathBuf,
    /// Every controller of the hierarchy (mounting it again needs the exact set).
    mounted_with: Vec<String>,
    /// `<root>/berth/<name>`.
    path: PathBuf,
}

#[derive(Debug)]
pub(crate) struct V1 {
    dirs: Vec<Dir>,
    /// Hybrid only: `<unified>/berth/<name>`, for placement only.
    unified: Option<PathBuf>,
}

impl V1 {
    pub fn new(hierarchies: &Hierarchies, name: &str) -> V1 {
        let mut dirs: Vec<Dir> = Vec::new();
        for &controller in USED {
            let Some(root) = hierarchies.v1_path(controller) else {
                continue;
            };
            match dirs.iter_mut().find(|d| d.root == root) {
                Some(dir) => dir.controllers.push(controller),
                None => dirs.push(Dir {
                    controllers: vec![controller],
                    root: root.to_path_buf(),
                    mounted_with: hierarchies
                        .v1
                        .iter()
                        .find(|m| m.path == root)
                        .map(|m| m.controllers.clone())
                        .unwrap_or_default(),
                    path: group_dir(root, name),
                }),
            }
        }
        let unified = hierarchies.v2.as_deref().map(|root| group_dir(root, name));
        V1 { dirs, unified }
    }

    fn dir(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|d| d.controllers.contains(&controller))
            .map(|d| d.path.as_path())
    }

    fn require(&self, controller: &'static str, what: &'static str) -> Result<&Path, CgroupError> {
        self.dir(controller)
            .ok_or(CgroupError::ControllerMissing { controller, what })
    }

    fn freezer_state(&self, dir: &Path) -> Result<String, CgroupError> {
        fsutil::read_trimmed(&dir.join("freezer.state"))
    }

    fn set_memory(dir: &Path, memory: u64, memsw: Option<i64>) -> Result<(), CgroupError> {
        let mem_file = dir.join("memory.limit_in_bytes");
        let sw_file = dir.join("memory.memsw.limit_in_bytes");
        let memsw = memsw.filter(|_| sw_file.exists());
        let Some(memsw) = memsw else {
            return fsutil::write(&mem_file, &memory.to_string());
        };
        // The kernel keeps memory <= memory+swap at every moment, so raise
        // memsw first when the new memory limit would exceed the old memsw.
        let current = fsutil::read_trimmed(&sw_file)?;
        let current: i64 = current.parse().map_err(|_| CgroupError::Parse {
            path: sw_file.clone(),
            content: current,
        })?;
        if memsw == -1 || memsw > current {
            fsutil::write(&sw_file, &memsw.to_string())?;
            fsutil::write(&mem_file, &memory.to_string())
        } else {
            fsutil::write(&mem_file, &memory.to_string())?;
            fsutil::write(&sw_file, &memsw.to_string())
        }
    }
}

/// Copies `cpuset.cpus` and `cpuset.mems` from the parent when empty; a v1
/// cpuset group refuses tasks until both are set.
fn fill_cpuset(dir: &Path) -> Result<(), CgroupError> {
    let parent = dir.parent().unwrap_or(dir);
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let own = fsutil::read_trimmed(&dir.join(file))?;
        if own.is_empty() {
            let inherited = fsutil::read_trimmed(&parent.join(file))?;
            fsutil::write(&dir.join(file), &inherited)?;
        }
    }
    Ok(())
}

impl Backend for V1 {
    fn create(&mut self) -> Result<(), CgroupError> {
        for dir in &self.dirs {
            let berth = dir.root.join(BERTH_DIR);
            fsutil::mkdir(&berth)?;
            let is_cpuset = dir.controllers.contains(&"cpuset");
            if is_cpuset {
                fill_cpuset(&berth)?;
            }
            fsutil::mkdir(&dir.path)?;
            if is_cpuset {
                fill_cpuset(&dir.path)?;
            }
        }
        if let Some(unified) = &self.unified {
            // Placement in the unified tree is a courtesy: if it cannot be
            // made, processes stay where they are there.
            let made = unified
                .parent()
                .map(fsutil::mkdir)
                .transpose()
                .and_then(|_| fsutil::mkdir(unified));
            if made.is_err() {
                self.unified = None;
            }
        }
        Ok(())
    }

    fn refresh(&mut self) {
        if self.unified.as_deref().is_some_and(|u| !u.is_dir()) {
            self.unified = None;
        }
    }

    fn exists(&self) -> bool {
        self.dirs.iter().any(|d| d.path.is_dir())
    }

    fn apply(&self, limits: &Resolved) -> Result<(), CgroupError> {
        if let Some(memory) = limits.memory {
            let dir = self.require("memory", "memory limit")?;
            V1::set_memory(dir, memory, limits.memsw)?;
        }
        if let Some(quota) = limits.cpu_quota {
            let dir = self.require("cpu", "cpus limit")?;
            fsutil::write(&dir.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
            fsutil::write(&dir.join("cpu.cfs_quota_us"), &quota.to_string())?;
        }
        if let Some(shares) = limits.cpu_shares {
            let dir = self.require("cpu", "cpu shares")?;
            fsutil::write(&dir.join("cpu.shares"), &shares.to_string())?;
        }
        if let Some(cpus) = &limits.cpuset {
            let dir = self.require("cpuset", "cpuset")?;
            fsutil::write(&dir.join("cpuset.cpus"), cpus)?;
        }
        if let Some(s) = limits.swappiness {
            let dir = self.require("memory", "memory swappiness")?;
            fsutil::write(&dir.join("memory.swappiness"), &s.to_string())?;
        }
        if let Some(pids) = limits.pids {
            let dir = self.require("pids", "pids limit")?;
            let value = pids.map_or_else(|| "max".to_string(), |p| p.to_string());
            fsutil::write(&dir.join("pids.max"), &value)?;
        }
        Ok(())
    }

    fn join_files(&self) -> Vec<PathBuf> {
        // `tasks` moves only the writing thread, which the kernel does without its global
        // threadgroup semaphore (and so without an RCU grace period); the unified tree of a
        // hybrid host has no such file and is left out.
        self.dirs.iter().map(|d| d.path.join("tasks")).collect()
    }

    fn procs_files(&self) -> Vec<PathBuf> {
        self.paths().into_iter().map(|p| p.join("cgroup.procs")).collect()
    }

    fn stats(&self) -> Result<Stats, CgroupError> {
        let mut stats = Stats::default();
        if let Some(dir) = self.dir("cpuacct") {
            stats.cpu_usage_ns = fsutil::read_u64(&dir.join("cpuacct.usage"))?;
        }
        if let Some(dir) = self.dir("memory") {
            stats.memory_usage = fsutil::read_u64(&dir.join("memory.usage_in_bytes"))?;
            let limit = fsutil::read_u64(&dir.join("memory.limit_in_bytes"))?;
            stats.memory_limit = (limit < UNLIMITED_FLOOR).then_some(limit);
        }
        if let Some(dir) = self.dir("pids") {
            stats.pids_current = fsutil::read_u64(&dir.join("pids.current"))?;
            stats.pids_limit = fsutil::read_u64_or_max(&dir.join("pids.max"))?;
        }
        Ok(stats)
    }

    fn oom_killed(&self) -> Result<bool, CgroupError> {
        let Some(dir) = self.dir("memory") else {
            return Ok(false);
        };
        // "oom_kill N" exists since Linux 4.13; older kernels cannot tell.
        Ok(fsutil::read_keyed(&dir.join("memory.oom_control"), "oom_kill")?.unwrap_or(0) > 0)
    }

    fn freeze(&self) -> Result<(), CgroupError> {
        let dir = self.require("freezer", "freeze operation")?;
        let state = dir.join("freezer.state");
        fsutil::write(&state, "FROZEN")?;
        let frozen = wait_until(
            FREEZE_SECS,
            || Ok(self.freezer_state(dir)? == "FROZEN"),
            || fsutil::write(&state, "FROZEN"),
        )?;
        if frozen {
            return Ok(());
        }
        // Leave the group running rather than half-frozen.
        let _ = fsutil::write(&state, "THAWED");
        Err(CgroupError::FreezeTimeout {
            path: dir.to_path_buf(),
            secs: FREEZE_SECS,
        })
    }

    fn thaw(&self) -> Result<(), CgroupError> {
        let dir = self.require("freezer", "thaw operation")?;
        let state = dir.join("freezer.state");
        fsutil::write(&state, "THAWED")?;
        let thawed = wait_until(
            FREEZE_SECS,
            || Ok(self.freezer_state(dir)? == "THAWED"),
            || fsutil::write(&state, "THAWED"),
        )?;
        if thawed {
            Ok(())
        } else {
            Err(CgroupError::FreezeTimeout {
                path: dir.to_path_buf(),
                secs: FREEZE_SECS,
            })
        }
    }

    fn kill_all(&self, sig: i32) -> Result<(), CgroupError> {
        // Freeze so that nothing forks between reading the list and
        // signalling; a group that will not freeze is still signalled. A v1
        // frozen task does not act on SIGKILL until thawed, so after SIGKILL
        // the group is always thawed; otherwise its earlier state is kept.
        let Some(dir) = self.dir("freezer") else {
            return signal_listed(&self.procs_files(), sig);
        };
        let was_frozen = self.freezer_state(dir)? == "FROZEN";
        let frozen_now = !was_frozen && self.freeze().is_ok();
        let result = signal_listed(&self.procs_files(), sig);
        if frozen_now || (was_frozen && sig == 9) {
            self.thaw()?;
        }
        result
    }

    fn remove(&self) -> Result<(), CgroupError> {
        for path in self.paths() {
            fsutil::rmdir_retry(&path)?;
        }
        Ok(())
    }

    fn paths(&self) -> Vec<PathBuf> {
        self.dirs
            .iter()
            .map(|d| d.path.clone())
            .chain(self.unified.clone())
            .collect()
    }

    fn inner_mounts(&self) -> Vec<crate::InnerMount> {
        let out: Vec<crate::InnerMount> = self
            .dirs
            .iter()
            .filter(|d| !d.mounted_with.is_empty())
            .map(|d| crate::InnerMount {
                fstype: "cgroup",
                options: d.mounted_with.join(","),
                target: d
                    .root
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_else(|| d.mounted_with.join(",")),
            })
            .collect();
        // The unified tree is not joined (see join_files), so it is not shown either: from
        // the container's cgroup namespace its root would be the engine's group.
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comounted_controllers_share_one_directory() {
        let mountinfo = "\
26 25 0:23 / /sys/fs/cgroup/systemd rw shared:10 - cgroup cgroup rw,xattr,name=systemd
28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw shared:11 - cgroup cgroup rw,cpu,cpuacct
30 25 0:27 / /sys/fs/cgroup/memory rw shared:13 - cgroup cgroup rw,memory
31 25 0:28 / /sys/fs/cgroup/pids rw shared:14 - cgroup cgroup rw,pids
32 25 0:30 / /sys/fs/cgroup/perf_event rw shared:16 - cgroup cgroup rw,perf_event
";
        let v1 = V1::new(&Hierarchies::parse(mountinfo, ""), "web");
        let paths: Vec<String> = v1.paths().iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            paths,
            [
                "/sys/fs/cgroup/cpu,cpuacct/berth/web",
                "/sys/fs/cgroup/memory/berth/web",
                "/sys/fs/cgroup/pids/berth/web"
            ]
        );
        assert_eq!(v1.dir("cpuacct"), v1.dir("cpu"));
        assert_eq!(
            v1.procs_files()[1],
            Path::new("/sys/fs/cgroup/memory/berth/web/cgroup.procs")
        );
        assert!(v1.dir("freezer").is_none());
        let err = v1.require("freezer", "freeze operation").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the freezer cgroup controller is not available here, so the freeze operation cannot be applied — \
             enable that controller or drop the option"
        );
    }

    #[test]
    fn hybrid_adds_the_unified_directory() {
        let mountinfo = "\
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
        let v1 = V1::new(&Hierarchies::parse(mountinfo, ""), "db");
        assert_eq!(
            v1.procs_files(),
            [
                PathBuf::from("/sys/fs/cgroup/memory/berth/db/cgroup.procs"),
                PathBuf::from("/sys/fs/cgroup/unified/berth/db/cgroup.procs")
            ]
        );
    }
}
