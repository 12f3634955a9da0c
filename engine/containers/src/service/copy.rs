//! `cp`: the files of a container, read and written by a helper process (`berth __cp`,
//! [`copy_helper`]) chrooted into them, so every path and every symlink is resolved
//! inside the container, never on the host. A running container is entered through
//! `/proc/PID/root` (its volumes are seen too). A created or exited one is read without
//! changing it: a path under a volume or bind mount is read from the mount's source, any
//! other path from a read-only overlay of the container's layers that exists only as a
//! detached mount of the helper, so it vanishes with the helper's last fd and nothing is
//! left mounted. Writing into a stopped container works the same way, the overlay then
//! having the container's upper and work dirs (as its next start will), or into the
//! mount's source.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::ContainerService;
use crate::record::*;
use crate::ContainerError;

/// Exit code of the helper when the path does not exist in the container.
pub const COPY_NOT_FOUND: i32 = 2;

/// The environment variable that hands a stopped container's [`StoppedRoot`] to the helper
/// (which then gets PID 0).
const STOPPED_ROOT_ENV: &str = "BERTH_CP_ROOT";

/// Where a stopped container's path lives on the host, for the helper.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoppedRoot {
    /// Directories stacked as a read-only overlay, top first (the container's upper dir,
    /// then its image layers); a single directory is entered as it is.
    pub dirs: Vec<PathBuf>,
    /// The path inside that root.
    pub inner: String,
    /// For writing into the layers: the overlay's work dir, `dirs[0]` being its upper dir.
    #[serde(default)]
    pub work: Option<PathBuf>,
}

/// How the helper reaches the container's files.
pub enum CopyTarget {
    Running(i32),
    Stopped(StoppedRoot),
}

/// `path` with `.` and `..` resolved lexically (never above `/`): the same path the
/// container would see once inside its root, used to pick the mount it falls under.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The index of the deepest mount destination in `dests` that contains `path`.
fn mount_of<'a>(path: &str, dests: impl Iterator<Item = &'a str>) -> Option<usize> {
    let path = normalize(path);
    dests
        .map(normalize)
        .enumerate()
        .filter(|(_, dest)| dest == "/" || path == *dest || path.starts_with(&format!("{dest}/")))
        .max_by_key(|(_, dest)| dest.len())
        .map(|(i, _)| i)
}

/// Picks where `path` lives in a stopped container: under the deepest mount destination
/// that contains it (`mounts` = destination, host source), else in the layered root
/// (`layers` top first).
pub fn resolve_stopped(path: &str, mounts: &[(String, PathBuf)], layers: Vec<PathBuf>) -> StoppedRoot {
    let normalized = normalize(path);
    match mount_of(path, mounts.iter().map(|(d, _)| d.as_str())) {
        Some(i) => StoppedRoot {
            dirs: vec![mounts[i].1.clone()],
            inner: normalize(&normalized[normalize(&mounts[i].0).len()..]),
            work: None,
        },
        None => StoppedRoot {
            dirs: layers,
            inner: normalized,
            work: None,
        },
    }
}

impl ContainerService {
    /// How the copy helper reaches `path` of `rec`; `write` to copy into it.
    pub fn copy_target(
        &self,
        rec: &ContainerRecord,
        path: &str,
        write: bool,
    ) -> Result<CopyTarget, ContainerError> {
        let status = self.status(rec);
        if let Some(pid) = status.pid() {
            return Ok(CopyTarget::Running(pid));
        }
        if write {
            let dests: Vec<&MountRecord> = rec
                .host
                .mounts
                .iter()
                .filter(|m| m.kind != MountKind::Tmpfs)
                .collect();
            if let Some(i) = mount_of(path, dests.iter().map(|m| m.destination.as_str())) {
                if dests[i].readonly {
                    return Err(ContainerError::InvalidArgument(format!(
                        "{} is mounted read-only in container {} — copy into another path",
                        dests[i].destination, rec.name
                    )));
                }
            }
            // The overlay of the last run, if nothing released it yet, must go before the
            // same upper dir is mounted again.
            if matches!(status, Status::Exited { .. }) {
                self.release(rec)?;
            }
        }
        let mut mounts = Vec::new();
        for m in &rec.host.mounts {
            let source = match m.kind {
                // A named volume is made at the first start; before that the path is the
                // image's.
                MountKind::Volume => match self.volumes.get(&m.source)? {
                    Some(v) => v.mountpoint,
                    None => continue,
                },
                MountKind::Bind => PathBuf::from(&m.source),
                // A tmpfs' content is gone once the container stopped.
                MountKind::Tmpfs => continue,
            };
            mounts.push((m.destination.clone(), source));
        }
        let paths = self.paths(&rec.id);
        let mut layers = vec![paths.upper()];
        layers.extend(self.image_layers(rec)?);
        let mut root = resolve_stopped(path, &mounts, layers);
        if write && root.dirs.len() > 1 {
            root.work = Some(paths.work());
        }
        Ok(CopyTarget::Stopped(root))
    }

    /// The container's own filesystem, running or not: its upper dir over its image's
    /// layers, without any mount (what `export` archives).
    pub fn filesystem_target(&self, rec: &ContainerRecord) -> Result<CopyTarget, ContainerError> {
        let mut dirs = vec![self.paths(&rec.id).upper()];
        dirs.extend(self.image_layers(rec)?);
        Ok(CopyTarget::Stopped(StoppedRoot {
            dirs,
            inner: "/".into(),
            work: None,
        }))
    }

    /// The copy helper (`berth __cp OP PID PATH`, see [`copy_helper`]) for `target`, its
    /// stderr piped.
    pub fn copy_command(&self, op: &str, target: &CopyTarget, path: &str) -> Result<Command, ContainerError> {
        let mut c = Command::new(&self.shim_exe);
        let pid = match target {
            CopyTarget::Running(pid) => *pid,
            CopyTarget::Stopped(root) => {
                // Paths that are not UTF-8 cannot travel in JSON: say so instead of panicking.
                let spec = serde_json::to_string(root).map_err(|e| {
                    ContainerError::InvalidArgument(format!(
                        "cannot copy from this container: its files live under a path that is not UTF-8 ({e}) — use a store root with a plain path"
                    ))
                })?;
                c.env(STOPPED_ROOT_ENV, spec);
                0
            }
        };
        c.args(["__cp", op, &pid.to_string(), path])
            .stderr(Stdio::piped());
        Ok(c)
    }
}

/// `berth __cp stat|get|put PID PATH`: runs chrooted into the container's root and
/// prints the path's stat JSON, writes a tar of it to stdout, or unpacks a tar from stdin
/// into it. PID 0 means a stopped container whose [`StoppedRoot`] is in `BERTH_CP_ROOT`.
/// Returns the process exit code (2: the path does not exist).
pub fn copy_helper(op: &str, pid: i32, path: &str) -> i32 {
    match copy_helper_inner(op, pid, path) {
        Ok(()) => 0,
        Err((code, message)) => {
            eprintln!("{message}");
            code
        }
    }
}

fn copy_helper_inner(op: &str, pid: i32, path: &str) -> std::result::Result<(), (i32, String)> {
    let fail = |e: std::io::Error| (1, e.to_string());
    let enter_err = |e: rustix::io::Errno| (1, format!("cannot enter the container: {e}"));
    // The tar's top entry is named after the path the client asked for, even when the
    // file is reached by another path (the root of a volume).
    let name = Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| ".".into());
    let inner = if pid == 0 {
        let spec = std::env::var(STOPPED_ROOT_ENV).map_err(|_| {
            (
                1,
                format!("{STOPPED_ROOT_ENV} is not set for a stopped container"),
            )
        })?;
        let root: StoppedRoot =
            serde_json::from_str(&spec).map_err(|e| (1, format!("bad {STOPPED_ROOT_ENV}: {e}")))?;
        enter_stopped(&root.dirs, root.work.as_deref()).map_err(enter_err)?;
        root.inner
    } else {
        rustix::process::chroot(format!("/proc/{pid}/root")).map_err(enter_err)?;
        path.to_string()
    };
    std::env::set_current_dir("/").map_err(fail)?;
    let p = Path::new(&inner);
    let meta = std::fs::symlink_metadata(p).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => (COPY_NOT_FOUND, format!("{path}: no such file or directory")),
        _ => (1, format!("{path}: {e}")),
    })?;
    match op {
        "stat" => {
            use std::os::unix::fs::PermissionsExt;
            // Go's FileMode bits, as docker's clients decode them.
            let mut mode = u64::from(meta.permissions().mode() & 0o777);
            if meta.is_dir() {
                mode |= 1 << 31;
            }
            let link = if meta.file_type().is_symlink() {
                mode |= 1 << 27;
                std::fs::read_link(p)
                    .map(|l| l.to_string_lossy().into_owned())
                    .unwrap_or_default()
            } else {
                String::new()
            };
            let mtime = meta
                .modified()
                .ok()
                .map(time::OffsetDateTime::from)
                .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
                .unwrap_or_default();
            let v =
                json!({"name": name, "size": meta.len(), "mode": mode, "mtime": mtime, "linkTarget": link});
            println!("{v}");
            Ok(())
        }
        "get" => {
            let stdout = std::io::stdout();
            let mut b = tar::Builder::new(stdout.lock());
            // Symlinks are archived as links, never followed.
            b.follow_symlinks(false);
            if meta.is_dir() {
                b.append_dir_all(&name, p).map_err(fail)?;
            } else {
                b.append_path_with_name(p, &name).map_err(fail)?;
            }
            let mut out = b.into_inner().map_err(fail)?;
            out.flush().map_err(fail)
        }
        "put" => {
            if !std::fs::metadata(p).map(|m| m.is_dir()).unwrap_or(false) {
                return Err((1, format!("{path} is not a directory")));
            }
            let mut archive = tar::Archive::new(std::io::stdin().lock());
            archive.set_preserve_permissions(true);
            archive.set_overwrite(true);
            archive.unpack(p).map_err(fail)
        }
        other => Err((1, format!("unknown copy operation {other}"))),
    }
}

/// Chroots into `dirs`: one directory as it is, several as an overlay (top first) mounted
/// nowhere — a detached mount held by this process only, gone when it exits. Read-only,
/// unless `work` is given: then `dirs[0]` is the upper dir written through.
fn enter_stopped(dirs: &[PathBuf], work: Option<&Path>) -> std::result::Result<(), rustix::io::Errno> {
    use rustix::mount::{FsMountFlags, MountAttrFlags};
    let (lowers, upper) = match (dirs, work) {
        ([upper, lowers @ ..], Some(work)) if !lowers.is_empty() => (lowers, Some((upper, work))),
        _ => (dirs, None),
    };
    // overlay_context takes the layers bottom first; `dirs` is top first. A layer listed
    // twice counts once, so a stack may come down to one directory.
    let bottom_first: Vec<PathBuf> = lowers.iter().rev().cloned().collect();
    let bottom_first = berth_runtime::rootfs::distinct_layers(&bottom_first);
    let root = match bottom_first.as_slice() {
        [] => return Err(rustix::io::Errno::INVAL),
        [one] if upper.is_none() => return rustix::process::chroot(one),
        _ => {
            let upper_work = upper.map(|(u, w)| (u.as_path(), w));
            let fs = berth_runtime::rootfs::overlay_context(&bottom_first, upper_work, false)?;
            let attrs = match upper {
                Some(_) => MountAttrFlags::empty(),
                None => MountAttrFlags::MOUNT_ATTR_RDONLY,
            };
            rustix::mount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs)?
        }
    };
    rustix::process::fchdir(&root)?;
    rustix::process::chroot(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mounts() -> Vec<(String, PathBuf)> {
        vec![
            ("/data".into(), PathBuf::from("/vol/data")),
            ("/data/sub/".into(), PathBuf::from("/host/sub")),
            ("/etc/hosts".into(), PathBuf::from("/host/hosts")),
        ]
    }

    fn layers() -> Vec<PathBuf> {
        vec![
            PathBuf::from("/c/upper"),
            PathBuf::from("/l/2"),
            PathBuf::from("/l/1"),
        ]
    }

    #[test]
    fn paths_under_a_mount_resolve_in_its_source() {
        let r = resolve_stopped("/data/a/b.txt", &mounts(), layers());
        assert_eq!(r.dirs, vec![PathBuf::from("/vol/data")]);
        assert_eq!(r.inner, "/a/b.txt");
        let r = resolve_stopped("/data", &mounts(), layers());
        assert_eq!(
            (r.dirs[0].as_path(), r.inner.as_str()),
            (Path::new("/vol/data"), "/")
        );
        // The deepest mount wins.
        let r = resolve_stopped("/data/sub/x", &mounts(), layers());
        assert_eq!(
            (r.dirs[0].as_path(), r.inner.as_str()),
            (Path::new("/host/sub"), "/x")
        );
        let r = resolve_stopped("/etc/hosts", &mounts(), layers());
        assert_eq!(
            (r.dirs[0].as_path(), r.inner.as_str()),
            (Path::new("/host/hosts"), "/")
        );
    }

    #[test]
    fn other_paths_resolve_in_the_layers() {
        // A sibling whose name only starts like a mount is not under it.
        let r = resolve_stopped("/database/x", &mounts(), layers());
        assert_eq!(r.dirs, layers());
        assert_eq!(r.inner, "/database/x");
        // `..` is taken lexically and never climbs above the root.
        let r = resolve_stopped("/data/../../etc/passwd", &mounts(), layers());
        assert_eq!((r.dirs.len(), r.inner.as_str()), (3, "/etc/passwd"));
        let r = resolve_stopped("/data/./x/../y", &mounts(), layers());
        assert_eq!(
            (r.dirs[0].as_path(), r.inner.as_str()),
            (Path::new("/vol/data"), "/y")
        );
    }
}
