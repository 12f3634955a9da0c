//! The crate's error type: every message is one plain sentence that names the
//! problem and the next step.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while managing a container's cgroup.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// /proc/self/mountinfo lists no cgroup or cgroup2 filesystem.
    #[error(
        "no cgroup filesystem is mounted according to /proc/self/mountinfo — mount cgroup2 on \
         /sys/fs/cgroup (or the v1 controllers under it) and try again"
    )]
    NotMounted,

    /// A kernel file could not be read.
    #[error("could not read {path}: {source} — check that /proc and the cgroup filesystems are mounted and readable")]
    Read { path: PathBuf, source: io::Error },

    /// The kernel refused a value written to a cgroup file.
    #[error(
        "could not write '{value}' to {path}: {source} — check that Berth runs as root and that the kernel accepts this value"
    )]
    Write {
        path: PathBuf,
        value: String,
        source: io::Error,
    },

    /// A cgroup directory could not be created.
    #[error(
        "could not create cgroup directory {path}: {source} — check that Berth runs as root and the cgroup filesystem is mounted read-write"
    )]
    Create { path: PathBuf, source: io::Error },

    /// A cgroup directory could not be removed.
    #[error(
        "could not remove cgroup directory {path}: {source} — stop the processes still in it (or destroy with force) and try again"
    )]
    Remove { path: PathBuf, source: io::Error },

    /// A kernel file held something Berth does not understand.
    #[error(
        "unexpected content '{content}' in {path} — this kernel's cgroup interface differs from what Berth supports, please report it"
    )]
    Parse { path: PathBuf, content: String },

    /// The cgroup name cannot be used as a single directory name.
    #[error(
        "invalid cgroup name '{0}' — use letters, digits, '_', '-' or '.', at most 200 characters and no '/'"
    )]
    InvalidName(String),

    /// The memory limit is below what a container can start with.
    #[error("invalid memory limit: {0} bytes is below the kernel minimum — use at least 6m")]
    MemoryTooLow(u64),

    /// memory+swap is smaller than memory.
    #[error(
        "invalid memory+swap limit: {swap} bytes is below the memory limit of {memory} bytes — use at least the memory limit, or -1 for unlimited swap"
    )]
    SwapBelowMemory { swap: i64, memory: u64 },

    /// memory+swap was given without a memory limit.
    #[error(
        "a memory+swap limit needs a memory limit as well — set the memory limit too (e.g. --memory 512m)"
    )]
    SwapWithoutMemory,

    /// A docker-style cpus string could not be parsed.
    #[error("invalid cpus value '{0}' — use a positive decimal number such as 1.5")]
    InvalidCpus(String),

    /// The cpus limit is outside what this machine offers.
    #[error(
        "invalid cpus limit {cpus}: this machine allows 0.01 to {available} — choose a value in that range"
    )]
    CpusOutOfRange { cpus: f64, available: usize },

    /// cpu shares outside the kernel's range.
    #[error("invalid cpu shares {0} — use a value from 2 to 262144")]
    InvalidCpuShares(u64),

    /// A CPU list that is malformed or names CPUs this machine lacks.
    #[error("invalid cpuset {cpus}: this machine has CPUs 0 to {} — give a list such as 0-1 or 0,2", available - 1)]
    InvalidCpuset { cpus: String, available: usize },

    /// Swappiness outside 0..=100.
    #[error("invalid memory swappiness {0} — use a value from 0 to 100, or -1 for the kernel's")]
    InvalidSwappiness(i64),

    /// A limit needs a controller that this machine does not offer.
    #[error(
        "the {controller} cgroup controller is not available here, so the {what} cannot be applied — enable that controller or drop the option"
    )]
    ControllerMissing {
        controller: &'static str,
        what: &'static str,
    },

    /// A rootless engine where no cgroup subtree is delegated to the user.
    #[error("{why}, so {what} — {next}")]
    Unavailable {
        why: &'static str,
        what: &'static str,
        next: &'static str,
    },

    /// The freezer did not settle.
    #[error(
        "cgroup {path} did not report frozen within {secs} seconds — look for processes stuck in the kernel (state D) and try again"
    )]
    FreezeTimeout { path: PathBuf, secs: u64 },

    /// Processes stayed in the cgroup although they were sent SIGKILL.
    #[error(
        "processes in cgroup {path} survived SIGKILL for {secs} seconds — look for processes stuck in the kernel (state D) and try again"
    )]
    KillTimeout { path: PathBuf, secs: u64 },

    /// The signal number is not one `kill(2)` can send.
    #[error("invalid signal number {0} — use a signal from 1 to 64 (not 32 or 33, which libc reserves)")]
    InvalidSignal(i32),

    /// kill(2) failed for a reason other than the process being gone.
    #[error("could not send signal {signal} to process {pid}: {source} — check that Berth runs as root")]
    Signal {
        pid: i32,
        signal: i32,
        source: io::Error,
    },
}

impl CgroupError {
    /// Limits refused by a process that may not make groups (`why`: see `unavailable`).
    pub(crate) fn limits_unavailable(why: &'static str) -> CgroupError {
        CgroupError::Unavailable {
            why,
            what: "--memory, --cpus and --pids-limit cannot be applied",
            next: "run without limits, or run Berth as root",
        }
    }
}
