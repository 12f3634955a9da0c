//! Outbound access for the user's network namespace: pasta (Debian `passt`), else
//! slirp4netns, else none. Which one runs, and the address at which it maps the host's
//! loopback, is written to `network` in the state directory for later processes.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outbound {
    /// pasta: the namespace has the host's address and routes; connections to the gateway
    /// reach the host's loopback.
    Pasta,
    /// slirp4netns: 10.0.2.100 behind 10.0.2.2, which is the host's loopback.
    Slirp4netns,
    None,
}

impl Outbound {
    fn name(self) -> &'static str {
        match self {
            Outbound::Pasta => "pasta",
            Outbound::Slirp4netns => "slirp4netns",
            Outbound::None => "none",
        }
    }
}

pub(crate) fn read(dir: &Path) -> Outbound {
    let text = std::fs::read_to_string(dir.join("network")).unwrap_or_default();
    match text.split_whitespace().next() {
        Some("pasta") => Outbound::Pasta,
        Some("slirp4netns") => Outbound::Slirp4netns,
        _ => Outbound::None,
    }
}

pub(crate) fn host_address(dir: &Path) -> Option<Ipv4Addr> {
    let text = std::fs::read_to_string(dir.join("network")).ok()?;
    text.split_whitespace().nth(1)?.parse().ok()
}

/// The host's default gateway from `/proc/net/route` (little-endian hex).
fn default_gateway() -> Option<Ipv4Addr> {
    let text = std::fs::read_to_string("/proc/net/route").ok()?;
    text.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(1) == Some(&"00000000"))
            .then(|| u32::from_str_radix(f.get(2)?, 16).ok())
            .flatten()
            .map(|g| Ipv4Addr::from(g.swap_bytes()))
    })
}

/// Starts the first helper that is installed for the keeper `pid`'s namespace and records
/// it. A helper that fails leaves the namespace without outbound access (the warning says
/// so), never the engine without a namespace.
pub(crate) fn start(pid: i32, dir: &Path) -> Outbound {
    stop_stale(dir);
    let log = || {
        std::fs::File::create(dir.join("network.log"))
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::null())
    };
    let pid_file = dir.join(HELPER_PID);
    let (kind, address) = if pasta(pid, &pid_file, log()) {
        (Outbound::Pasta, default_gateway())
    } else if slirp4netns(pid, &pid_file, log()) {
        (Outbound::Slirp4netns, Some(Ipv4Addr::new(10, 0, 2, 2)))
    } else {
        (Outbound::None, None)
    };
    let address = address.map(|a| a.to_string()).unwrap_or_default();
    let _ = std::fs::write(dir.join("network"), format!("{} {address}\n", kind.name()));
    kind
}

/// The helper's pid, so that the next keeper's start ends the helper of one that died
/// (neither helper notices the namespace it serves going away).
const HELPER_PID: &str = "network.pid";

/// The running helper's pid, from its file.
pub(crate) fn helper_pid(dir: &Path) -> Option<i32> {
    std::fs::read_to_string(dir.join(HELPER_PID))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn stop_stale(dir: &Path) {
    let Some(pid) = helper_pid(dir) else {
        return;
    };
    let is_helper = berth_host::process::cmdline_contains(pid, b"pasta")
        || berth_host::process::cmdline_contains(pid, b"slirp4netns");
    if is_helper {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
    }
    let _ = std::fs::remove_file(dir.join(HELPER_PID));
}

fn pasta(pid: i32, pid_file: &Path, log: Stdio) -> bool {
    // Forks into the background once the namespace is configured.
    Command::new("pasta")
        .args([
            "--config-net",
            "--quiet",
            "-t",
            "none",
            "-u",
            "none",
            "-T",
            "none",
            "-U",
            "none",
        ])
        .arg("--pid")
        .arg(pid_file)
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .status()
        .is_ok_and(|s| s.success())
}

fn slirp4netns(pid: i32, pid_file: &Path, log: Stdio) -> bool {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new("slirp4netns");
    cmd.args(["--configure", "--mtu=65520"])
        .arg(pid.to_string())
        .arg("tap0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    // SAFETY: setsid is async-signal-safe; the helper outlives this process in a session of its own.
    unsafe {
        cmd.pre_exec(|| nix::unistd::setsid().map(|_| ()).map_err(std::io::Error::from));
    }
    let Ok(mut child) = cmd.spawn() else {
        return false;
    };
    // It runs in the foreground; one that stays up for a moment has configured the namespace.
    std::thread::sleep(std::time::Duration::from_millis(100));
    let _ = std::fs::write(pid_file, format!("{}\n", child.id()));
    matches!(child.try_wait(), Ok(None))
}
