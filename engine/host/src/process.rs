//! Processes, from `/proc/<pid>/stat`, and waiting for a child of this process.
//!
//! A zombie (`Z`) or dead (`X`) process is not alive: it runs no code any more and will
//! never write another file, whatever `kill(pid, 0)` says.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How far a process's start time may be from the one recorded for it: /proc counts in
/// clock ticks from boot, records are wall-clock, so they differ by rounding.
const START_TOLERANCE: Duration = Duration::from_secs(2);

/// The fields of `/proc/<pid>/stat` after the command name, from field 3 (state) on.
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    if pid <= 0 {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may itself hold ") ".
    let (_, rest) = stat.rsplit_once(") ")?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// What a process and every process below it use now: the measure of a container's
/// resources where no cgroup of its own counts them (an ordinary user's engine without
/// delegated cgroups).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TreeUsage {
    /// CPU time, user and system, of the live processes (their exited children's too,
    /// once reaped: the kernel adds those into the parent's cutime/cstime).
    pub cpu_ns: u64,
    /// Resident memory.
    pub rss_bytes: u64,
    pub pids: u64,
}

/// [`TreeUsage`] of `pid` and its descendants, from `/proc/*/stat`; None when `pid` is
/// not a live process.
pub fn tree_usage(pid: i32) -> Option<TreeUsage> {
    if !alive(pid) {
        return None;
    }
    // (pid, ppid, cpu ticks, rss pages) of every process.
    let mut procs: Vec<(i32, i32, u64, u64)> = Vec::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(p) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Some(f) = stat_fields(p) else { continue };
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let ppid = f.get(1).and_then(|v| v.parse::<i32>().ok()).unwrap_or(0);
        // Fields 14-17: utime, stime, cutime, cstime; field 24: rss (pages).
        procs.push((p, ppid, num(11) + num(12) + num(13) + num(14), num(21)));
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            procs
                .iter()
                .filter(|p| p.1 == parent && p.0 != parent)
                .map(|p| p.0),
        );
        i += 1;
    }
    let hz = rustix::param::clock_ticks_per_second().max(1);
    let page = rustix::param::page_size() as u64;
    let mut usage = TreeUsage::default();
    for p in procs.iter().filter(|p| tree.contains(&p.0)) {
        usage.cpu_ns += p.2.saturating_mul(1_000_000_000) / hz;
        usage.rss_bytes += p.3 * page;
        usage.pids += 1;
    }
    Some(usage)
}

/// Whether `pid` is a live process: it exists and is neither a zombie nor dead.
pub fn alive(pid: i32) -> bool {
    stat_fields(pid).is_some_and(|f| !matches!(f.first().map(String::as_str), Some("Z" | "X") | None))
}

/// When a live process started, as wall-clock time (None if it is not alive).
pub fn started_at(pid: i32) -> Option<SystemTime> {
    let fields = stat_fields(pid)?;
    if matches!(fields.first().map(String::as_str), Some("Z" | "X") | None) {
        return None;
    }
    // starttime is field 22: index 19 from field 3.
    let ticks: u64 = fields.get(19)?.parse().ok()?;
    let btime: u64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    let hz = rustix::param::clock_ticks_per_second().max(1);
    Some(
        UNIX_EPOCH
            + Duration::from_secs(btime)
            + Duration::from_nanos(ticks.saturating_mul(1_000_000_000) / hz),
    )
}

/// Whether `pid` is alive and is the process that started at `when` (within two seconds),
/// which rules out a pid reused by another process in practice.
pub fn is_same(pid: i32, when: SystemTime) -> bool {
    let Some(started) = started_at(pid) else {
        return false;
    };
    let diff = started
        .duration_since(when)
        .or_else(|_| when.duration_since(started))
        .unwrap_or(Duration::MAX);
    diff <= START_TOLERANCE
}

/// Whether `pid` is alive and its command line contains `needle`.
pub fn cmdline_contains(pid: i32, needle: &[u8]) -> bool {
    alive(pid)
        && std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| !needle.is_empty() && c.windows(needle.len()).any(|w| w == needle))
            .unwrap_or(false)
}

/// How a child of this process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildExit {
    /// It exited with this code.
    Code(i32),
    /// This signal killed it.
    Signal(i32),
}

impl ChildExit {
    /// The code a shell and docker report: the exit code, or 128 + the signal.
    pub fn code(self) -> i32 {
        match self {
            ChildExit::Code(c) => c,
            ChildExit::Signal(s) => 128 + s,
        }
    }

    /// The signal that killed it, if one did.
    pub fn signal(self) -> Option<i32> {
        match self {
            ChildExit::Code(_) => None,
            ChildExit::Signal(s) => Some(s),
        }
    }
}

/// Waits until the child `pid` of this process has ended and reaps it. An interrupted
/// wait is retried; a stopped child is waited for further (only an end is an answer).
/// Allocates nothing, so a freshly forked process may call it.
pub fn wait_child(pid: i32) -> std::io::Result<ChildExit> {
    let pid = rustix::process::Pid::from_raw(pid)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "pid 0 is no child"))?;
    loop {
        match rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty()) {
            Ok(Some((_, status))) => {
                if let Some(code) = status.exit_status() {
                    return Ok(ChildExit::Code(code));
                }
                if let Some(sig) = status.terminating_signal() {
                    return Ok(ChildExit::Signal(sig));
                }
            }
            Ok(None) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn wait_until(what: &str, f: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !f() {
            assert!(std::time::Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn this_process_is_alive_and_started_just_now_or_before() {
        let me = std::process::id() as i32;
        assert!(alive(me));
        let started = started_at(me).expect("a start time");
        assert!(started <= SystemTime::now() + START_TOLERANCE);
        assert!(is_same(me, started));
        assert!(
            !is_same(me, started - Duration::from_secs(60)),
            "another start time is another process"
        );
        assert!(cmdline_contains(me, b"berth_host"), "the test binary's name");
    }

    #[test]
    fn a_tree_counts_its_processes_their_memory_and_cpu() {
        // A shell with a CPU burner and a sleeper below it: three processes.
        let mut sh = Command::new("sh")
            .args(["-c", "yes > /dev/null & sleep 30 & wait"])
            .spawn()
            .unwrap();
        let pid = sh.id() as i32;
        wait_until("the tree has three processes", || {
            tree_usage(pid).is_some_and(|u| u.pids == 3)
        });
        wait_until("the burner's CPU time shows", || {
            tree_usage(pid).is_some_and(|u| u.cpu_ns >= 20_000_000)
        });
        let u = tree_usage(pid).unwrap();
        assert!(u.rss_bytes >= 3 * 4096, "{u:?}");
        // This process's own usage is not in the child's tree.
        let me = tree_usage(std::process::id() as i32).unwrap();
        assert!(
            me.pids > u.pids,
            "the test's tree holds the shell's: {me:?} {u:?}"
        );
        let _ = Command::new("pkill").args(["-P", &pid.to_string()]).status();
        let _ = sh.kill();
        let _ = sh.wait();
        assert_eq!(tree_usage(pid), None, "a reaped process has no tree");
    }

    #[test]
    fn no_such_pid_and_bad_pids_are_not_alive() {
        assert!(!alive(0));
        assert!(!alive(-1));
        assert!(!alive(i32::MAX));
        assert!(started_at(i32::MAX).is_none());
        assert!(!cmdline_contains(i32::MAX, b"x"));
    }

    #[test]
    fn a_zombie_is_not_alive_and_a_reaped_child_is_gone() {
        let mut child = Command::new("true").spawn().expect("spawn true");
        let pid = child.id() as i32;
        // Not reaped yet: a zombie.
        let zombie = || stat_fields(pid).is_some_and(|f| f.first().map(String::as_str) == Some("Z"));
        wait_until("true became a zombie", zombie);
        assert!(!alive(pid));
        assert!(started_at(pid).is_none());
        child.wait().unwrap();
        assert!(!alive(pid));
    }

    #[test]
    fn a_running_child_is_alive_until_killed() {
        let mut child = Command::new("sleep").arg("30").spawn().expect("spawn sleep");
        let pid = child.id() as i32;
        wait_until("sleep started", || cmdline_contains(pid, b"sleep"));
        assert!(alive(pid));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!alive(pid));
    }

    #[test]
    #[allow(clippy::zombie_processes, reason = "wait_child is what reaps them here")]
    fn a_child_is_waited_for_with_its_code_or_its_signal() {
        let child = Command::new("sh")
            .args(["-c", "exit 3"])
            .spawn()
            .expect("spawn sh");
        let exit = wait_child(child.id() as i32).unwrap();
        assert_eq!((exit, exit.code(), exit.signal()), (ChildExit::Code(3), 3, None));

        let mut child = Command::new("sleep").arg("30").spawn().expect("spawn sleep");
        let pid = child.id() as i32;
        child.kill().unwrap();
        let exit = wait_child(pid).unwrap();
        assert_eq!((exit.code(), exit.signal()), (137, Some(9)));
        assert!(wait_child(pid).is_err(), "a reaped child is no child any more");
        assert!(wait_child(0).is_err());
    }
}
