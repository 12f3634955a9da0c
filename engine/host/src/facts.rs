//! Host facts — CPUs, memory, OS, kernel, host name — through `sysinfo`, which answers the
//! same questions on Linux, macOS and Windows (the VM backend sizes its VM from them).

use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};

/// What `info`, `system df`, stats and the desktop say about the machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostFacts {
    /// Logical CPUs.
    pub cpus: usize,
    /// Physical memory in bytes.
    pub memory_bytes: u64,
    /// The OS as people name it, e.g. `Debian GNU/Linux 12 (bookworm)`.
    pub os: String,
    /// The kernel release, e.g. `6.1.0-27-amd64`.
    pub kernel: String,
    pub hostname: String,
}

/// The host's facts, read once per process (they do not change while an engine runs).
pub fn facts() -> &'static HostFacts {
    static FACTS: std::sync::OnceLock<HostFacts> = std::sync::OnceLock::new();
    FACTS.get_or_init(read)
}

/// Reads the host's facts (memory and the CPU list only: no process table, no sampling).
fn read() -> HostFacts {
    let sys = System::new_with_specifics(
        RefreshKind::nothing()
            .with_memory(MemoryRefreshKind::nothing().with_ram())
            .with_cpu(CpuRefreshKind::nothing()),
    )
    .ok();
    let cpus = sys
        .as_ref()
        .map(|s| s.cpus().len())
        .filter(|n| *n > 0)
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1);
    HostFacts {
        cpus,
        memory_bytes: sys.as_ref().map(|s| s.total_memory()).unwrap_or(0),
        os: System::long_os_version()
            .or_else(|_| System::name())
            .unwrap_or_else(|_| std::env::consts::OS.to_string()),
        kernel: System::kernel_version().unwrap_or_default(),
        hostname: System::host_name().unwrap_or_default(),
    }
}

/// Total CPU time the host has spent, in nanoseconds, since boot (docker's
/// `system_cpu_usage`, the denominator of a container's CPU %). sysinfo has no cumulative
/// counter, only sampled percentages, so this reads `/proc/stat`: the engine always runs on
/// Linux (on macOS and Windows, inside its VM).
pub fn cpu_time_ns() -> u64 {
    let ticks: u64 = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines().next().map(|l| {
                l.split_whitespace()
                    .skip(1)
                    .take(7)
                    .filter_map(|x| x.parse::<u64>().ok())
                    .sum()
            })
        })
        .unwrap_or(0);
    ticks.saturating_mul(1_000_000_000) / rustix::param::clock_ticks_per_second().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checked against what Linux itself says, read independently of sysinfo.
    #[test]
    fn facts_match_the_kernel() {
        let f = facts();
        let nproc = std::thread::available_parallelism().unwrap().get();
        assert_eq!(f.cpus, nproc);
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
        let kb: u64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap();
        assert_eq!(f.memory_bytes, kb * 1024);
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        assert_eq!(f.kernel, release.trim());
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(f.hostname, host.trim());
        assert!(!f.os.is_empty());
        let (a, b) = (cpu_time_ns(), {
            std::thread::sleep(std::time::Duration::from_millis(50));
            cpu_time_ns()
        });
        assert!(a > 0 && b >= a, "a growing counter: {a} then {b}");
    }
}
