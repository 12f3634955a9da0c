//! Overlay root filesystems.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, UnmountFlags};

use std::sync::atomic::Ordering::Relaxed;

use crate::RuntimeError;

fn overlay_err(target: &Path, reason: impl Into<String>) -> RuntimeError {
    RuntimeError::Overlay {
        target: target.to_path_buf(),
        reason: reason.into(),
    }
}

fn check_path(p: &Path, target: &Path) -> Result<(), RuntimeError> {
    let b = p.as_os_str().as_bytes();
    if b.contains(&b':') || b.contains(&b',') {
        return Err(overlay_err(
            target,
            format!(
                "path {} contains ':' or ',' which overlayfs cannot take",
                p.display()
            ),
        ));
    }
    Ok(())
}

/// The distinct directories of a layer stack (bottom first), each kept at its topmost
/// position.
///
/// An image may list one layer twice: two build steps that change nothing produce the same
/// empty layer, and pushed images can repeat a layer too. overlayfs refuses a directory
/// that appears twice among its lower layers (ELOOP). Keeping only the topmost occurrence
/// gives docker's tree: every file, whiteout and opaque directory of the lower copy is
/// restated by the upper one, which sits above everything the lower copy could affect.
pub fn distinct_layers(lowers: &[PathBuf]) -> Vec<PathBuf> {
    let mut seen = std::collections::HashSet::new();
    let mut top_first: Vec<PathBuf> = lowers
        .iter()
        .rev()
        .filter(|p| seen.insert(p.as_path()))
        .cloned()
        .collect();
    top_first.reverse();
    top_first
}

/// An overlay filesystem context, configured and created but mounted nowhere yet: the
/// distinct `lowers` (bottom layer first, see [`distinct_layers`]), and `upper_work` as its
/// upper and work directories, or none for a read-only stack.
///
/// Lower layers are added one at a time (`lowerdir+`, Linux 6.8+), so there is no limit
/// from the one-page option string; older kernels with the new mount API take them as one
/// `lowerdir=` option.
pub fn overlay_context(
    lowers: &[PathBuf],
    upper_work: Option<(&Path, &Path)>,
    volatile: bool,
) -> Result<rustix::fd::OwnedFd, rustix::io::Errno> {
    let lowers = distinct_layers(lowers);
    let build = |one_by_one: bool| -> Result<_, rustix::io::Errno> {
        let fs = rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
        if one_by_one {
            // Top layer first, as overlayfs orders them.
            for l in lowers.iter().rev() {
                rustix::mount::fsconfig_set_string(&fs, "lowerdir+", l)?;
            }
        } else {
            let all: Vec<String> = lowers.iter().rev().map(|d| d.display().to_string()).collect();
            rustix::mount::fsconfig_set_string(&fs, "lowerdir", all.join(":"))?;
        }
        if let Some((upper, work)) = upper_work {
            rustix::mount::fsconfig_set_string(&fs, "upperdir", upper)?;
            rustix::mount::fsconfig_set_string(&fs, "workdir", work)?;
            rustix::mount::fsconfig_set_string(&fs, "index", "off")?;
            if volatile {
                rustix::mount::fsconfig_set_flag(&fs, "volatile")?;
            }
        }
        if berth_host::privilege::in_user_namespace() {
            // A rootless engine's overlays (Linux 5.11+) keep their metadata in `user.` xattrs.
            rustix::mount::fsconfig_set_flag(&fs, "userxattr")?;
        }
        rustix::mount::fsconfig_create(&fs)?;
        Ok(fs)
    };
    // A kernel whose overlayfs predates `lowerdir+` refuses it at once (6.5–6.7) or only
    // when the file system is created (before 6.5, where overlayfs takes its options as
    // one legacy string): either way with EINVAL, and then the single option is tried.
    // Once refused, not tried again by this process (each refusal is a kernel log line).
    static NO_LOWERDIR_PLUS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if NO_LOWERDIR_PLUS.load(std::sync::atomic::Ordering::Relaxed) {
        return build(false);
    }
    match build(true) {
        Err(rustix::io::Errno::INVAL) => {
            NO_LOWERDIR_PLUS.store(true, std::sync::atomic::Ordering::Relaxed);
            build(false)
        }
        other => other,
    }
}

/// Mounts an overlay of `lowers` (bottom layer first; a layer listed twice counts once, at
/// its topmost place) with `upper` and `work` at `target`.
///
/// Uses the new mount API ([`overlay_context`]); on kernels without it, falls back to
/// `mount(2)` with a `lowerdir=` option, which fits roughly 4 KiB of layer paths.
pub fn mount_overlay(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<(), RuntimeError> {
    Overlay {
        lowers,
        upper,
        work,
        target,
        volatile: false,
    }
    .mount()
}

/// [`mount_overlay`] for an upper dir that is thrown away when its process ends (a `--rm`
/// run, a build's step, which is diffed first): overlayfs's `volatile`, so its unmount does
/// not sync the whole file system the upper dir lives on (2–68 ms each under load). A
/// volatile overlay leaves `work/incompat/volatile` behind, which refuses any later mount
/// of the same dirs; this upper dir has nothing worth that guard, so the marker goes first.
pub fn mount_overlay_volatile(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<(), RuntimeError> {
    let _ = std::fs::remove_dir_all(work.join("work").join("incompat"));
    Overlay {
        lowers,
        upper,
        work,
        target,
        volatile: true,
    }
    .mount()
}

/// Which overlayfs mounts a container's root: `BERTH_OVERLAY=kernel` or `fuse-overlayfs`;
/// unset, the kernel's, and fuse-overlayfs for an ordinary user whose kernel refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OverlayChoice {
    Auto,
    Kernel,
    Fuse,
}

impl OverlayChoice {
    fn from_env() -> OverlayChoice {
        match std::env::var("BERTH_OVERLAY").as_deref() {
            Ok("kernel") => OverlayChoice::Kernel,
            Ok("fuse-overlayfs") => OverlayChoice::Fuse,
            _ => OverlayChoice::Auto,
        }
    }
}

/// Set once the kernel refused an overlay in this user namespace, so later mounts go
/// straight to fuse-overlayfs.
static KERNEL_REFUSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// One overlay mount: its dirs and whether it is volatile.
struct Overlay<'a> {
    lowers: &'a [PathBuf],
    upper: &'a Path,
    work: &'a Path,
    target: &'a Path,
    volatile: bool,
}

impl Overlay<'_> {
    fn mount(&self) -> Result<(), RuntimeError> {
        let target = self.target;
        if self.lowers.is_empty() {
            return Err(overlay_err(target, "no lower layers were given"));
        }
        for p in self
            .lowers
            .iter()
            .map(|p| p.as_path())
            .chain([self.upper, self.work])
        {
            check_path(p, target)?;
        }
        let choice = OverlayChoice::from_env();
        if choice == OverlayChoice::Fuse || (choice == OverlayChoice::Auto && KERNEL_REFUSED.load(Relaxed)) {
            return self.mount_fuse();
        }
        let kernel = match self.mount_new_api() {
            Ok(()) => Ok(()),
            // No new mount API, or one that refuses what mount(2) takes (seen on 6.1 with
            // three or more layers, without a word in the context's log).
            Err(rustix::io::Errno::NOSYS | rustix::io::Errno::INVAL) => self.mount_legacy(),
            Err(e) => Err(overlay_err(target, std::io::Error::from(e).to_string())),
        };
        match kernel {
            // Before Linux 5.11 the kernel's overlayfs cannot be mounted in a user
            // namespace: an ordinary user's engine then uses fuse-overlayfs, as rootless
            // podman does, from then on.
            Err(RuntimeError::Overlay { reason, .. })
                if choice == OverlayChoice::Auto && berth_host::privilege::in_user_namespace() =>
            {
                self.mount_fuse().map_err(|e| match e {
                    RuntimeError::Overlay { target, reason: fuse } => RuntimeError::Overlay {
                        target,
                        reason: format!("{reason}; and fuse-overlayfs: {fuse}"),
                    },
                    other => other,
                })?;
                KERNEL_REFUSED.store(true, Relaxed);
                Ok(())
            }
            other => other,
        }
    }

    /// The same overlay served by `fuse-overlayfs` (Debian's package of that name), which
    /// daemonizes once the mount is in place and ends when it is unmounted.
    fn mount_fuse(&self) -> Result<(), RuntimeError> {
        let target = self.target;
        let lowers = distinct_layers(self.lowers);
        let lower: Vec<String> = lowers.iter().rev().map(|p| p.display().to_string()).collect();
        let mut options = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.join(":"),
            self.upper.display(),
            self.work.display()
        );
        if self.volatile {
            options.push_str(",volatile");
        }
        let out = std::process::Command::new("fuse-overlayfs")
            .arg("-o")
            .arg(&options)
            .arg(target)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .output();
        match out {
            Ok(o) if o.status.success() => Ok(()),
            Ok(o) => {
                let said = String::from_utf8_lossy(&o.stderr);
                // Its options parser's notes about mount options it ignores are noise.
                let said: Vec<&str> = said
                    .lines()
                    .filter(|l| !l.starts_with("unknown argument ignored"))
                    .collect();
                let said = said.join("; ");
                if said.contains("/dev/fuse") {
                    return Err(overlay_err(
                        target,
                        format!("fuse-overlayfs cannot open /dev/fuse ({said}): as root, run chmod 666 /dev/fuse (Debian's udev makes it so)"),
                    ));
                }
                Err(overlay_err(target, format!("fuse-overlayfs failed: {said}")))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(overlay_err(
                target,
                "this kernel cannot mount overlayfs for an ordinary user and fuse-overlayfs is not installed: install it (apt install fuse-overlayfs)",
            )),
            Err(e) => Err(overlay_err(target, format!("cannot run fuse-overlayfs: {e}"))),
        }
    }

    fn mount_new_api(&self) -> Result<(), rustix::io::Errno> {
        let fs = overlay_context(self.lowers, Some((self.upper, self.work)), self.volatile)?;
        let mnt = rustix::mount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())?;
        rustix::mount::move_mount(
            &mnt,
            "",
            rustix::fs::CWD,
            self.target,
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        )
    }

    fn mount_legacy(&self) -> Result<(), RuntimeError> {
        let (upper, work, target, volatile) = (self.upper, self.work, self.target, self.volatile);
        let lowers = distinct_layers(self.lowers);
        let lower: Vec<String> = lowers.iter().rev().map(|p| p.display().to_string()).collect();
        let data = format!(
            "lowerdir={},upperdir={},workdir={},index=off{}{}",
            lower.join(":"),
            upper.display(),
            work.display(),
            if berth_host::privilege::in_user_namespace() {
                ",userxattr"
            } else {
                ""
            },
            if volatile { ",volatile" } else { "" }
        );
        if data.len() >= 4096 {
            return Err(overlay_err(
                target,
                format!(
                    "{} layers do not fit in overlayfs options on this kernel (needs Linux 6.8 for more)",
                    lowers.len()
                ),
            ));
        }
        let data = std::ffi::CString::new(data)
            .map_err(|_| overlay_err(target, "a layer path contains a NUL byte"))?;
        rustix::mount::mount(
            "overlay",
            target,
            "overlay",
            rustix::mount::MountFlags::empty(),
            Some(data.as_c_str()),
        )
        .map_err(|e| overlay_err(target, std::io::Error::from(e).to_string()))
    }
}

/// Unmounts `target`; a path that is not a mount point is fine. A busy
/// mount is detached lazily.
/// Mounts a container's own `/dev/shm` (a 64 MiB tmpfs, as docker's) at `target` on this
/// side, for a container whose IPC others may join (`--ipc shareable`): theirs is a bind of
/// the same mount. `target` is made if missing. Undo it with [`unmount`].
pub fn mount_shm(target: &Path) -> Result<(), RuntimeError> {
    std::fs::create_dir_all(target)
        .map_err(|e| RuntimeError::io(format!("cannot create {}", target.display()), e))?;
    if berth_host::mounts::is_mount_point(target) {
        return Ok(());
    }
    rustix::mount::mount(
        "shm",
        target,
        "tmpfs",
        rustix::mount::MountFlags::NOSUID
            | rustix::mount::MountFlags::NODEV
            | rustix::mount::MountFlags::NOEXEC,
        c"mode=1777,size=65536k",
    )
    .map_err(|e| {
        RuntimeError::io(
            format!("cannot mount a /dev/shm at {}", target.display()),
            e.into(),
        )
    })
}

pub fn unmount(target: &Path) -> Result<(), RuntimeError> {
    match rustix::mount::unmount(target, UnmountFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => Ok(()),
        // Unprivileged, umount2 says EPERM before it looks at the path: a path that is
        // not mounted (a start that failed before its mount, a rootfs already released)
        // has nothing to undo.
        Err(rustix::io::Errno::PERM) if !berth_host::mounts::is_mount_point(target) => Ok(()),
        Err(rustix::io::Errno::BUSY) => rustix::mount::unmount(target, UnmountFlags::DETACH)
            .map_err(|e| RuntimeError::io(format!("cannot unmount {}", target.display()), e.into())),
        Err(e) => Err(RuntimeError::io(
            format!("cannot unmount {}", target.display()),
            e.into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(names: &[&str]) -> Vec<PathBuf> {
        names.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn a_repeated_layer_is_kept_at_its_topmost_place() {
        assert_eq!(
            distinct_layers(&paths(&["a", "b", "a", "c"])),
            paths(&["b", "a", "c"])
        );
        assert_eq!(distinct_layers(&paths(&["e", "e", "e"])), paths(&["e"]));
        assert_eq!(distinct_layers(&paths(&["a", "b", "c"])), paths(&["a", "b", "c"]));
        assert_eq!(
            distinct_layers(&paths(&["base", "e", "x", "e", "y"])),
            paths(&["base", "x", "e", "y"])
        );
        assert!(distinct_layers(&[]).is_empty());
    }
}
