//! virtiofs for a machine's shares, where the host has `virtiofsd` (Linux: `cargo install
//! virtiofsd`, which `scripts/install.sh tests` does; Debian 12 does not package it). One
//! virtiofsd per shared folder serves it on a vhost-user socket in the machine's directory;
//! QEMU maps the guest's memory from a shared memfd so virtiofsd can reach the buffers.
//! Without virtiofsd (and on macOS and Windows, where QEMU has no vhost-user) the shares
//! are 9p, as before; the start says so in its warnings.
//!
//! Each virtiofsd ends by itself when QEMU disconnects (the guest powered off or QEMU
//! ended); [`stop_all`] ends any that are left (a QEMU that never connected).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::config::Paths;

/// How a machine's shares reach the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SharesFs {
    NineP,
    /// One vhost-user socket per share, in the order of the shares.
    Virtiofs {
        sockets: Vec<PathBuf>,
    },
}

/// The virtiofsd to use: `$BERTH_VIRTIOFSD` (empty: none, so 9p), else `virtiofsd` on PATH,
/// in `~/.cargo/bin`, `/usr/libexec` or `/usr/lib/qemu`.
pub fn find() -> Option<PathBuf> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    if let Some(v) = std::env::var_os("BERTH_VIRTIOFSD") {
        return (!v.is_empty()).then(|| PathBuf::from(v));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let home = std::env::var_os("HOME").map(PathBuf::from);
    std::env::split_paths(&path)
        .chain(home.map(|h| h.join(".cargo/bin")))
        .chain([PathBuf::from("/usr/libexec"), PathBuf::from("/usr/lib/qemu")])
        .map(|d| d.join("virtiofsd"))
        .find(|p| p.is_file())
}

/// The socket and pid file of share `i`.
pub fn socket(paths: &Paths, i: usize) -> PathBuf {
    paths.dir.join(format!("virtiofs{i}.sock"))
}

fn pid_file(paths: &Paths, i: usize) -> PathBuf {
    paths.dir.join(format!("virtiofs{i}.pid"))
}

/// virtiofsd's arguments for `dir` on `socket`. Root sandboxes it in namespaces of its
/// own; a user cannot, so there it runs unsandboxed with the user's rights.
pub fn args(dir: &Path, socket: &Path, root: bool) -> Vec<String> {
    vec![
        format!("--socket-path={}", socket.display()),
        format!("--shared-dir={}", dir.display()),
        // Attributes are cached for a second (`auto`): a host edit is seen within it.
        "--cache=auto".into(),
        format!("--sandbox={}", if root { "namespace" } else { "none" }),
        "--log-level=error".into(),
    ]
}

/// Starts one virtiofsd per share and waits for their sockets; on any failure stops those
/// started and says why in one sentence (the caller falls back to 9p).
pub fn start_all(bin: &Path, paths: &Paths, shares: &[PathBuf]) -> Result<SharesFs, String> {
    stop_all(paths);
    let log = std::fs::File::create(paths.dir.join("virtiofsd.log"))
        .map_err(|e| format!("cannot create virtiofsd's log ({e})"))?;
    let root = nix::unistd::geteuid().is_root();
    let mut sockets = Vec::new();
    for (i, dir) in shares.iter().enumerate() {
        let sock = socket(paths, i);
        let _ = std::fs::remove_file(&sock);
        let mut cmd = Command::new(bin);
        cmd.args(args(dir, &sock, root))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.try_clone().map_err(|e| e.to_string())?);
        crate::detach(&mut cmd);
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                stop_all(paths);
                return Err(format!("cannot start {} ({e})", bin.display()));
            }
        };
        let pid = child.id() as i32;
        let _ = std::fs::write(pid_file(paths, i), format!("{pid}\n"));
        // Reaped by init: it outlives this command, as QEMU does.
        std::mem::forget(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !sock.exists() {
            if !berth_host::process::alive(pid) || Instant::now() > deadline {
                stop_all(paths);
                let said = std::fs::read_to_string(paths.dir.join("virtiofsd.log")).unwrap_or_default();
                let said = said.lines().last().unwrap_or("no message").to_string();
                return Err(format!("virtiofsd did not serve {} ({said})", dir.display()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        sockets.push(sock);
    }
    Ok(SharesFs::Virtiofs { sockets })
}

/// Ends the machine's virtiofsd processes that are still there.
pub fn stop_all(paths: &Paths) {
    for i in 0.. {
        let f = pid_file(paths, i);
        let Some(pid) = crate::read_pid(&f) else {
            if !f.exists() {
                break;
            }
            let _ = std::fs::remove_file(&f);
            continue;
        };
        if berth_host::process::cmdline_contains(pid, b"--shared-dir=") {
            crate::signal_and_wait(pid, nix::sys::signal::Signal::SIGTERM, Duration::from_secs(2));
        }
        // Ended, it is a zombie of a caller that lives on (the desktop app) until reaped.
        crate::reap(Some(pid));
        let _ = std::fs::remove_file(&f);
        let _ = std::fs::remove_file(socket(paths, i));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtiofsd_is_told_the_folder_the_socket_and_its_sandbox() {
        let a = args(
            Path::new("/home/ann"),
            Path::new("/m/default/virtiofs0.sock"),
            true,
        );
        assert_eq!(
            a,
            [
                "--socket-path=/m/default/virtiofs0.sock",
                "--shared-dir=/home/ann",
                "--cache=auto",
                "--sandbox=namespace",
                "--log-level=error"
            ]
        );
        assert!(args(Path::new("/x"), Path::new("/s"), false).contains(&"--sandbox=none".to_string()));
    }

    #[test]
    fn an_empty_berth_virtiofsd_means_9p() {
        // Only this test in this binary sets the variable.
        std::env::set_var("BERTH_VIRTIOFSD", "");
        assert_eq!(find(), None);
        std::env::set_var("BERTH_VIRTIOFSD", "/opt/virtiofsd");
        assert_eq!(find(), Some(PathBuf::from("/opt/virtiofsd")));
        std::env::remove_var("BERTH_VIRTIOFSD");
    }
}
