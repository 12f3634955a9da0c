//! Persistent network namespaces: a namespace is kept alive by bind-mounting its nsfs file
//! onto `run_dir/<id>`, exactly like `ip netns add` does, so it outlives every process.

use std::fs::File;
use std::io::ErrorKind;
use std::os::fd::AsFd;
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

use crate::NetError;

/// Creates a fresh network namespace and pins it at `path` (which must not be mounted yet).
pub(crate) fn create(path: &Path) -> Result<(), NetError> {
    File::create(path).map_err(|e| NetError::io("create the netns file", path, e))?;
    let target = path.to_path_buf();
    // unshare() only changes the namespace of the calling thread, so do it in a throwaway one.
    let res = std::thread::spawn(move || -> Result<(), NetError> {
        unshare(CloneFlags::CLONE_NEWNET).map_err(|e| NetError::sys("create a network namespace", e))?;
        mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| {
            NetError::sys(
                format!("bind-mount the network namespace at {}", target.display()),
                e,
            )
        })
    })
    .join()
    .unwrap_or_else(|_| {
        Err(NetError::sys(
            "create a network namespace",
            std::io::Error::other("thread panicked"),
        ))
    });
    if res.is_err() {
        let _ = std::fs::remove_file(path);
    }
    res
}

/// True when `path` is a mount point (a pinned namespace).
pub(crate) fn is_mounted(path: &Path) -> bool {
    berth_host::mounts::is_mount_point(path)
}

/// Unmounts (all stacked mounts) and removes the pinned namespace; missing is fine.
pub(crate) fn remove(path: &Path) -> Result<(), NetError> {
    for _ in 0..16 {
        match umount2(path, MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => break,
            // Unprivileged, umount2 says EPERM before it looks: nothing mounted is done.
            Err(nix::errno::Errno::EPERM) if !is_mounted(path) => break,
            Err(e) => {
                return Err(NetError::sys(
                    format!("unmount the network namespace {}", path.display()),
                    e,
                ))
            }
        }
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(NetError::io("remove the netns file", path, e)),
    }
}

/// The user's own network namespace when this process is a rootless engine's (see
/// berth-rootless): bridges, host-side veths, NAT rules and the port proxies' upstream
/// connections live there. `None` for the host's root, whose home is the host's namespace.
pub(crate) fn home() -> Option<std::path::PathBuf> {
    berth_rootless::network_namespace()
}

/// Runs `f` on a thread that has joined the network namespace at `path` (the thread ends
/// before this returns, so `f` may borrow).
pub fn run_in<T: Send>(path: &Path, f: impl FnOnce() -> Result<T, NetError> + Send) -> Result<T, NetError> {
    let ns = File::open(path).map_err(|e| NetError::io("open the network namespace", path, e))?;
    std::thread::scope(|s| {
        s.spawn(move || {
            setns(ns.as_fd(), CloneFlags::CLONE_NEWNET)
                .map_err(|e| NetError::sys("enter a network namespace", e))?;
            f()
        })
        .join()
        .unwrap_or_else(|_| {
            Err(NetError::sys(
                "work inside a network namespace",
                std::io::Error::other("thread panicked"),
            ))
        })
    })
}
