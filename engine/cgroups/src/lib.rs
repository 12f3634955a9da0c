//! Control groups for Berth containers on cgroup v1, v2 and the hybrid layout.
//!
//! # Layouts
//!
//! Linux exposes control groups in one of three ways, and Berth finds out
//! which from `/proc/self/mountinfo` (cross-checked with `/proc/self/cgroup`),
//! never by guessing paths:
//!
//! * **v2 (unified)** — a single `cgroup2` mount (normally `/sys/fs/cgroup`)
//!   with `cgroup.controllers`. A controller only works in a child group once
//!   the parent enables it in `cgroup.subtree_control`, so Berth enables
//!   `cpu cpuset io memory pids` (those available) on the root and on
//!   `berth/` before creating `berth/<name>`.
//! * **v1 (legacy)** — one `cgroup` mount per hierarchy, each carrying one or
//!   more controllers (`cpu,cpuacct` are often co-mounted). A container's
//!   group is a directory `berth/<name>` in every hierarchy Berth uses, and
//!   a process must be written into each hierarchy's `cgroup.procs`.
//!   `cpuset` is special: a new group has empty `cpuset.cpus`/`cpuset.mems`
//!   and refuses tasks until they are copied from the parent, which Berth
//!   does.
//! * **hybrid** — v1 controllers plus a `cgroup2` mount (typically
//!   `/sys/fs/cgroup/unified`) that holds few or no controllers (only
//!   `hugetlb` on the machine Berth is developed on). Some runtimes refuse
//!   this layout; Berth does not: limits, stats, freezing and killing go
//!   through the v1 controllers it found, and the v2 mount is ignored for
//!   limits. Berth still creates `berth/<name>` there and lists its
//!   `cgroup.procs` among [`Cgroup::procs_files`], so container processes are
//!   also grouped in the unified tree (if that directory cannot be made, the
//!   processes simply stay where they were in that tree, which is harmless).
//!
//! The v1 and v2 code are sibling implementations of one small private
//! interface (the private `Backend` trait); [`Cgroup`] picks one when it is
//! created.
//!
//! # Limits
//!
//! [`Limits`] follows docker's flags. Fields left `None` are not touched, so
//! [`Cgroup::update`] changes only what it is given; a new group starts
//! unlimited. A value of `0` for memory, memory+swap, cpus or cpu shares means
//! "not set", as in docker's API.

mod backend;
mod error;
mod fsutil;
mod mounts;
mod nogroup;
mod v1;
mod v2;
mod warmup;

use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

pub use error::CgroupError;
pub use warmup::Warmup;

use backend::Backend;
use mounts::Hierarchies;

/// The directory under every controller root holding Berth's groups.
pub const BERTH_DIR: &str = "berth";

/// Smallest memory limit docker accepts (and so does Berth): 6 MiB.
pub const MIN_MEMORY: u64 = 6 * 1024 * 1024;

/// The CFS period Berth uses for `--cpus`, in microseconds.
pub const CPU_PERIOD_US: u64 = 100_000;

/// How control groups are mounted on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Only v1 hierarchies.
    V1,
    /// Only the unified v2 hierarchy.
    V2,
    /// v1 controllers plus a v2 mount; Berth uses the v1 controllers.
    Hybrid,
}

/// Detects the layout from `/proc/self/mountinfo` and `/proc/self/cgroup`.
pub fn detect() -> Result<Layout, CgroupError> {
    Hierarchies::current()?.layout()
}

/// A cgroup filesystem to mount at `/sys/fs/cgroup/<target>` inside a container: mounted
/// from within the container's cgroup namespace, its root is the container's own group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InnerMount {
    /// `cgroup` (v1) or `cgroup2`.
    pub fstype: &'static str,
    /// Mount data: the v1 hierarchy's controllers, comma-separated.
    pub options: String,
    /// Relative to /sys/fs/cgroup; empty for /sys/fs/cgroup itself (pure v2).
    pub target: String,
}

/// Resource limits, with docker's meaning.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    /// `--memory`: hard limit in bytes (`memory.limit_in_bytes` /
    /// `memory.max`). At least 6 MiB. Unless `memory_swap_bytes` says
    /// otherwise, swap is limited like docker does: memory+swap = 2 × memory.
    pub memory_bytes: Option<u64>,
    /// `--memory-swap`: the memory **plus** swap total in bytes
    /// (`memory.memsw.limit_in_bytes`; on v2 `memory.swap.max` = this minus
    /// memory). `-1` means unlimited swap; equal to `memory_bytes` means no
    /// swap. Needs `memory_bytes`. Ignored if the kernel has no swap
    /// accounting.
    pub memory_swap_bytes: Option<i64>,
    /// `--cpus`: CFS quota = cpus × 100000 µs per 100000 µs period
    /// (`cpu.cfs_quota_us`/`cpu.cfs_period_us` or `cpu.max`).
    pub cpus: Option<f64>,
    /// `--cpu-shares`: relative weight, 2..=262144 (`cpu.shares`; on v2
    /// converted to `cpu.weight` 1..=10000).
    pub cpu_shares: Option<u64>,
    /// `--pids-limit`: maximum number of tasks; `0` or `-1` writes
    /// "max" (unlimited), `None` leaves the current value.
    pub pids_limit: Option<i64>,
    /// `--cpuset-cpus`: the CPUs it may run on, `0-1,3` (`cpuset.cpus`).
    pub cpuset_cpus: Option<String>,
    /// `--memory-swappiness`: 0..=100 (`memory.swappiness`, cgroup v1 only); -1 or `None`
    /// leaves the kernel's.
    pub swappiness: Option<i64>,
}

/// Usage figures of a container's group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Total CPU time consumed, in nanoseconds (0 without cpuacct on v1).
    pub cpu_usage_ns: u64,
    /// Memory currently charged to the group, in bytes.
    pub memory_usage: u64,
    /// The memory limit, `None` when unlimited.
    pub memory_limit: Option<u64>,
    /// Tasks currently in the group.
    pub pids_current: u64,
    /// The task limit, `None` when unlimited.
    pub pids_limit: Option<u64>,
}

/// Limits checked and converted to what the kernel files take.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Resolved {
    pub memory: Option<u64>,
    /// memory+swap total; -1 = unlimited.
    pub memsw: Option<i64>,
    /// CFS quota in µs per [`CPU_PERIOD_US`].
    pub cpu_quota: Option<u64>,
    pub cpu_shares: Option<u64>,
    /// `Some(None)` = unlimited.
    pub pids: Option<Option<u64>>,
    pub cpuset: Option<String>,
    pub swappiness: Option<u64>,
}

impl Resolved {
    pub(crate) fn is_empty(&self) -> bool {
        *self == Resolved::default()
    }
}

/// Why this process may not make groups, as the first half of a sentence; `None` when it
/// may (the host's root). A rootless engine could use a subtree systemd delegates on
/// cgroup v2; that is not done yet, so it is refused there too, in its own words.
pub fn unavailable() -> Option<&'static str> {
    if !berth_host::privilege::in_user_namespace() {
        return None;
    }
    Some(match detect() {
        Ok(Layout::V2) => "Berth runs without root and does not yet use the cgroup v2 subtree systemd delegates to users",
        _ => "Berth runs without root and this machine's cgroups (v1 or hybrid, without systemd delegation) give an ordinary user no control groups",
    })
}

/// Refuses limits this process cannot apply (see [`unavailable`]) before anything is made.
pub fn check_applicable(limits: &Limits) -> Result<(), CgroupError> {
    match unavailable() {
        Some(why) if !limits.resolve()?.is_empty() => Err(CgroupError::limits_unavailable(why)),
        _ => Ok(()),
    }
}

/// Refuses pause and unpause where there is no freezer to use (see [`unavailable`]).
pub fn check_freezable() -> Result<(), CgroupError> {
    match unavailable() {
        Some(why) => Err(CgroupError::Unavailable {
            why,
            what: "a container cannot be paused",
            next: "stop it instead, or run Berth as root",
        }),
        None => Ok(()),
    }
}

impl Limits {
    pub(crate) fn resolve(&self) -> Result<Resolved, CgroupError> {
        let memory = match self.memory_bytes {
            None | Some(0) => None,
            Some(m) if m < MIN_MEMORY => return Err(CgroupError::MemoryTooLow(m)),
            Some(m) => Some(m.min(i64::MAX as u64)),
        };
        let memsw = match (memory, self.memory_swap_bytes) {
            (None, None | Some(0) | Some(-1)) => None,
            (None, Some(_)) => return Err(CgroupError::SwapWithoutMemory),
            (Some(m), None | Some(0)) => Some((m as i64).saturating_mul(2)),
            (Some(_), Some(-1)) => Some(-1),
            (Some(m), Some(s)) if s < m as i64 => {
                return Err(CgroupError::SwapBelowMemory { swap: s, memory: m })
            }
            (Some(_), Some(s)) => Some(s),
        };
        let cpu_quota = match self.cpus {
            None => None,
            Some(0.0) => None,
            Some(c) if !c.is_finite() || c < 0.0 => return Err(CgroupError::InvalidCpus(c.to_string())),
            Some(c) => {
                let available = available_cpus();
                if c < 0.01 || c > available as f64 {
                    return Err(CgroupError::CpusOutOfRange { cpus: c, available });
                }
                Some((c * CPU_PERIOD_US as f64).round() as u64)
            }
        };
        let cpu_shares = match self.cpu_shares {
            None | Some(0) => None,
            Some(s) if !(2..=262_144).contains(&s) => return Err(CgroupError::InvalidCpuShares(s)),
            Some(s) => Some(s),
        };
        let pids = self
            .pids_limit
            .map(|p| if p <= 0 { None } else { Some(p as u64) });
        let cpuset = match self
            .cpuset_cpus
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            None => None,
            Some(c) => {
                let available = available_cpus();
                if !cpu_list_fits(c, available) {
                    return Err(CgroupError::InvalidCpuset {
                        cpus: c.to_string(),
                        available,
                    });
                }
                Some(c.to_string())
            }
        };
        let swappiness = match self.swappiness {
            None | Some(-1) => None,
            Some(s @ 0..=100) => Some(s as u64),
            Some(s) => return Err(CgroupError::InvalidSwappiness(s)),
        };
        Ok(Resolved {
            memory,
            memsw,
            cpu_quota,
            cpu_shares,
            pids,
            cpuset,
            swappiness,
        })
    }
}

/// One container's control group, across every controller Berth uses.
#[derive(Debug)]
pub struct Cgroup {
    name: String,
    layout: Layout,
    backend: Box<dyn Backend>,
}

impl Cgroup {
    /// Creates (or reuses) `<controller root>/berth/<name>` in every
    /// hierarchy Berth uses (v1: cpu, cpuacct, cpuset, memory, pids, freezer,
    /// devices, blkio — whichever are mounted; v2: the unified tree) and
    /// applies `limits`. Nothing is created when the limits are invalid.
    pub fn create(name: &str, limits: &Limits) -> Result<Cgroup, CgroupError> {
        let resolved = limits.resolve()?;
        let mut cgroup = Cgroup::for_name(name)?;
        cgroup.backend.create()?;
        cgroup.backend.apply(&resolved)?;
        Ok(cgroup)
    }

    /// Finds an existing group made by [`Cgroup::create`] (possibly by another
    /// engine process); `None` if it exists in no hierarchy.
    pub fn open(name: &str) -> Result<Option<Cgroup>, CgroupError> {
        let mut cgroup = Cgroup::for_name(name)?;
        if !cgroup.backend.exists() {
            return Ok(None);
        }
        cgroup.backend.refresh();
        Ok(Some(cgroup))
    }

    fn for_name(name: &str) -> Result<Cgroup, CgroupError> {
        validate_name(name)?;
        if let Some(why) = unavailable() {
            return Ok(Cgroup {
                name: name.to_string(),
                layout: detect().unwrap_or(Layout::Hybrid),
                backend: Box::new(nogroup::NoGroup { why }),
            });
        }
        let hierarchies = Hierarchies::current()?;
        let layout = hierarchies.layout()?;
        let backend: Box<dyn Backend> = match layout {
            Layout::V2 => {
                let root = hierarchies.v2.clone().ok_or(CgroupError::NotMounted)?;
                Box::new(v2::V2::new(&root, name))
            }
            Layout::V1 | Layout::Hybrid => Box::new(v1::V1::new(&hierarchies, name)),
        };
        Ok(Cgroup {
            name: name.to_string(),
            layout,
            backend,
        })
    }

    /// The container's name (the last path component).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The layout this group was made for.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Applies the limits that are set in `limits`; unset ones stay as they
    /// are.
    pub fn update(&self, limits: &Limits) -> Result<(), CgroupError> {
        self.backend.apply(&limits.resolve()?)
    }

    /// Every `cgroup.procs` file a process must write its pid (or "0", for
    /// itself) into to join the group. The runtime's child does this before
    /// exec.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.backend.procs_files()
    }

    /// What to mount at /sys/fs/cgroup inside the container, so that tools there see
    /// their own limits (as under docker).
    pub fn inner_mounts(&self) -> Vec<InnerMount> {
        self.backend.inner_mounts()
    }

    /// The files a new, still single-threaded process writes "0" into to join the group
    /// (the runtime's child does this before exec). On v1 these are the `tasks` files:
    /// moving one thread skips the kernel's global threadgroup semaphore, whose first
    /// writer after a quiet spell waits a whole RCU grace period (~11 ms here).
    pub fn join_files(&self) -> Vec<PathBuf> {
        self.backend.join_files()
    }

    /// Moves `pid` into the group in every hierarchy.
    pub fn add_pid(&self, pid: i32) -> Result<(), CgroupError> {
        for file in self.backend.procs_files() {
            fsutil::write(&file, &pid.to_string())?;
        }
        Ok(())
    }

    /// The processes in the group (union over all hierarchies), sorted.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let mut pids = Vec::new();
        for file in self.backend.procs_files() {
            pids.extend(fsutil::read_pids(&file)?);
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// CPU, memory and task usage.
    pub fn stats(&self) -> Result<Stats, CgroupError> {
        self.backend.stats()
    }

    /// Whether the kernel's OOM killer has killed a process in this group.
    pub fn oom_killed(&self) -> Result<bool, CgroupError> {
        self.backend.oom_killed()
    }

    /// Freezes every process in the group and waits until the kernel
    /// reports the group frozen.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        self.backend.freeze()
    }

    /// Lets a frozen group run again.
    pub fn thaw(&self) -> Result<(), CgroupError> {
        self.backend.thaw()
    }

    /// Sends `sig` to every process in the group. The group is frozen while
    /// signalling so that no process can fork past the signal (v2 uses
    /// `cgroup.kill` for SIGKILL).
    pub fn kill_all(&self, sig: i32) -> Result<(), CgroupError> {
        fsutil::to_signal(sig)?;
        self.backend.kill_all(sig)
    }

    /// Removes the group from every hierarchy. With `force`, remaining
    /// processes are killed first (waiting up to 5 s for them to go);
    /// `rmdir` is retried for about a second while the kernel reports busy.
    pub fn destroy(&self, force: bool) -> Result<(), CgroupError> {
        if force {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                if self.pids()?.is_empty() {
                    break;
                }
                if Instant::now() > deadline {
                    let path = self.paths().into_iter().next().unwrap_or_default();
                    return Err(CgroupError::KillTimeout { path, secs: 5 });
                }
                self.backend.kill_all(9)?;
                sleep(Duration::from_millis(10));
            }
        }
        self.backend.remove()
    }

    /// The group's directory in every hierarchy.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.backend.paths()
    }
}

/// The names of all groups under `berth/` in any hierarchy, sorted (for leak
/// checks).
pub fn list() -> Result<Vec<String>, CgroupError> {
    let hierarchies = Hierarchies::current()?;
    let mut roots: Vec<PathBuf> = match hierarchies.layout()? {
        Layout::V2 => hierarchies.v2.iter().cloned().collect(),
        Layout::V1 | Layout::Hybrid => {
            let mut roots: Vec<PathBuf> = hierarchies.v1.iter().map(|m| m.path.clone()).collect();
            roots.extend(hierarchies.v2.iter().cloned());
            roots
        }
    };
    roots.dedup();
    let mut names = Vec::new();
    for root in roots {
        names.extend(fsutil::subdirs(&root.join(BERTH_DIR))?);
    }
    names.sort();
    names.dedup();
    Ok(names)
}

/// CPUs this process may run on (its affinity mask), like docker's NumCPU;
/// unlike `available_parallelism` this ignores the engine's own CPU quota.
/// Whether `list` (`0-2,5`) is a CPU list naming only CPUs below `available`.
fn cpu_list_fits(list: &str, available: usize) -> bool {
    list.split(',').all(|part| {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        match (a.trim().parse::<usize>(), b.trim().parse::<usize>()) {
            (Ok(a), Ok(b)) => a <= b && b < available,
            _ => false,
        }
    })
}

fn available_cpus() -> usize {
    match rustix::thread::sched_getaffinity(None) {
        Ok(set) if set.count() > 0 => set.count() as usize,
        _ => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    }
}

fn validate_name(name: &str) -> Result<(), CgroupError> {
    if berth_host::names::is_path_component(name, 200) {
        Ok(())
    } else {
        Err(CgroupError::InvalidName(name.to_string()))
    }
}

/// `<root>/berth/<name>`.
pub(crate) fn group_dir(root: &Path, name: &str) -> PathBuf {
    root.join(BERTH_DIR).join(name)
}

#[cfg(test)]
mod tests;
