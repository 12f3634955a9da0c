//! cgroup v2: one directory in the unified hierarchy.

use std::path::{Path, PathBuf};

use crate::backend::{signal_listed, wait_until, Backend};
use crate::{fsutil, group_dir, CgroupError, Resolved, Stats, BERTH_DIR, CPU_PERIOD_US};

/// Controllers Berth enables for its subtree when the kernel offers them.
const WANTED: &[&str] = &["cpu", "cpuset", "io", "memory", "pids"];

const FREEZE_SECS: u64 = 5;

#[derive(Debug)]
pub(crate) struct V2 {
    /// The cgroup2 mount point.
    root: PathBuf,
    /// `<root>/berth/<name>`.
    dir: PathBuf,
}

/// Converts v1 cpu shares (2..=262144) to a v2 cpu.weight (1..=10000),
/// mapping the ends of both ranges onto each other linearly.
pub(crate) fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + (shares - 2) * 9_999 / 262_142
}

/// Enables every wanted controller `dir` can hand to its children. A
/// controller the kernel refuses is skipped: a limit that needs it then fails
/// with [`CgroupError::ControllerMissing`].
fn enable_subtree(dir: &Path) -> Result<(), CgroupError> {
    let available = fsutil::read(&dir.join("cgroup.controllers"))?;
    let enabled = fsutil::read(&dir.join("cgroup.subtree_control"))?;
    for controller in WANTED {
        let has = |text: &str| text.split_whitespace().any(|c| c == *controller);
        if has(&available) && !has(&enabled) {
            let _ = fsutil::write(&dir.join("cgroup.subtree_control"), &format!("+{controller}"));
        }
    }
    Ok(())
}

impl V2 {
    pub fn new(root: &Path, name: &str) -> V2 {
        V2 {
            root: root.to_path_buf(),
            dir: group_dir(root, name),
        }
    }

    fn require(&self, controller: &'static str, what: &'static str) -> Result<(), CgroupError> {
        let controllers = fsutil::read(&self.dir.join("cgroup.controllers"))?;
        if controllers.split_whitespace().any(|c| c == controller) {
            Ok(())
        } else {
            Err(CgroupError::ControllerMissing { controller, what })
        }
    }

    fn frozen(&self) -> Result<bool, CgroupError> {
        Ok(fsutil::read_keyed(&self.dir.join("cgroup.events"), "frozen")? == Some(1))
    }

    fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        let file = self.dir.join("cgroup.freeze");
        let value = if frozen { "1" } else { "0" };
        fsutil::write(&file, value)?;
        let settled = wait_until(FREEZE_SECS, || Ok(self.frozen()? == frozen), || Ok(()))?;
        if settled {
            return Ok(());
        }
        if frozen {
            let _ = fsutil::write(&file, "0");
        }
        Err(CgroupError::FreezeTimeout {
            path: self.dir.clone(),
            secs: FREEZE_SECS,
        })
    }
}

impl Backend for V2 {
    fn create(&mut self) -> Result<(), CgroupError> {
        enable_subtree(&self.root)?;
        let berth = self.root.join(BERTH_DIR);
        fsutil::mkdir(&berth)?;
        enable_subtree(&berth)?;
        fsutil::mkdir(&self.dir)?;
        Ok(())
    }

    fn refresh(&mut self) {}

    fn exists(&self) -> bool {
        self.dir.is_dir()
    }

    fn apply(&self, limits: &Resolved) -> Result<(), CgroupError> {
        if let Some(memory) = limits.memory {
            self.require("memory", "memory limit")?;
            fsutil::write(&self.dir.join("memory.max"), &memory.to_string())?;
            let swap_file = self.dir.join("memory.swap.max");
            if let Some(memsw) = limits.memsw.filter(|_| swap_file.exists()) {
                let swap = if memsw < 0 {
                    "max".to_string()
                } else {
                    (memsw as u64 - memory).to_string()
                };
                fsutil::write(&swap_file, &swap)?;
            }
        }
        if let Some(quota) = limits.cpu_quota {
            self.require("cpu", "cpus limit")?;
            fsutil::write(&self.dir.join("cpu.max"), &format!("{quota} {CPU_PERIOD_US}"))?;
        }
        if let Some(shares) = limits.cpu_shares {
            self.require("cpu", "cpu shares")?;
            fsutil::write(
                &self.dir.join("cpu.weight"),
                &shares_to_weight(shares).to_string(),
            )?;
        }
        if let Some(cpus) = &limits.cpuset {
            self.require("cpuset", "cpuset")?;
            fsutil::write(&self.dir.join("cpuset.cpus"), cpus)?;
        }
        if limits.swappiness.is_some() {
            // cgroup v2 has no per-group swappiness.
            return Err(CgroupError::ControllerMissing {
                controller: "memory (v1)",
                what: "memory swappiness",
            });
        }
        if let Some(pids) = limits.pids {
            self.require("pids", "pids limit")?;
            let value = pids.map_or_else(|| "max".to_string(), |p| p.to_string());
            fsutil::write(&self.dir.join("pids.max"), &value)?;
        }
        Ok(())
    }

    fn procs_files(&self) -> Vec<PathBuf> {
        vec![self.dir.join("cgroup.procs")]
    }

    fn join_files(&self) -> Vec<PathBuf> {
        self.procs_files()
    }

    fn stats(&self) -> Result<Stats, CgroupError> {
        let mut stats = Stats::default();
        // cpu.stat's usage_usec is always present (core accounting).
        let usage = fsutil::read_keyed(&self.dir.join("cpu.stat"), "usage_usec")?;
        stats.cpu_usage_ns = usage.unwrap_or(0).saturating_mul(1000);
        let current = self.dir.join("memory.current");
        if current.exists() {
            stats.memory_usage = fsutil::read_u64(&current)?;
            stats.memory_limit = fsutil::read_u64_or_max(&self.dir.join("memory.max"))?;
        }
        let pids = self.dir.join("pids.current");
        if pids.exists() {
            stats.pids_current = fsutil::read_u64(&pids)?;
            stats.pids_limit = fsutil::read_u64_or_max(&self.dir.join("pids.max"))?;
        } else {
            stats.pids_current = fsutil::read_pids(&self.dir.join("cgroup.procs"))?.len() as u64;
        }
        Ok(stats)
    }

    fn oom_killed(&self) -> Result<bool, CgroupError> {
        let events = self.dir.join("memory.events");
        if !events.exists() {
            return Ok(false);
        }
        Ok(fsutil::read_keyed(&events, "oom_kill")?.unwrap_or(0) > 0)
    }

    fn freeze(&self) -> Result<(), CgroupError> {
        self.set_frozen(true)
    }

    fn thaw(&self) -> Result<(), CgroupError> {
        self.set_frozen(false)
    }

    fn kill_all(&self, sig: i32) -> Result<(), CgroupError> {
        let kill_file = self.dir.join("cgroup.kill");
        if sig == 9 && kill_file.exists() {
            return fsutil::write(&kill_file, "1");
        }
        let was_frozen = self.frozen()?;
        let frozen = was_frozen || self.set_frozen(true).is_ok();
        let result = signal_listed(&self.procs_files(), sig);
        if frozen && (!was_frozen || sig == 9) {
            self.set_frozen(false)?;
        }
        result
    }

    fn remove(&self) -> Result<(), CgroupError> {
        fsutil::rmdir_retry(&self.dir)
    }

    fn paths(&self) -> Vec<PathBuf> {
        vec![self.dir.clone()]
    }

    fn inner_mounts(&self) -> Vec<crate::InnerMount> {
        vec![crate::InnerMount {
            fstype: "cgroup2",
            options: String::new(),
            target: String::new(),
        }]
    }
}
