//! Where Berth keeps its runtime files (the engine's sockets, pinned network namespaces):
//! `/run/berth` for root; otherwise `$XDG_RUNTIME_DIR/berth`, or `/tmp/berth-UID` without a
//! session's runtime directory (`su -`, cron, ssh without logind). A non-root user's
//! directory is made with mode 0700 and, when it exists already, used only if it is the
//! user's own directory and closed to others: anyone can create `/tmp/berth-UID` first,
//! and whoever owns the directory owns the sockets clients connect to.

use std::ffi::OsString;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Why a runtime directory is not used: one sentence with the next step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaceError {
    #[error("{} belongs to another user (uid {owner}), so Berth will not keep its sockets there — have it removed (as root: rm -r {}) or set XDG_RUNTIME_DIR to a directory of your own", .path.display(), .path.display())]
    NotOwned { path: PathBuf, owner: u32 },
    #[error("{} is open to other users (mode {mode:04o}), so Berth will not keep its sockets there — run `chmod 700 {}`, or remove it and Berth makes it again", .path.display(), .path.display())]
    OpenToOthers { path: PathBuf, mode: u32 },
    #[error("{} is not a directory, so Berth cannot keep its sockets there — remove it, or set XDG_RUNTIME_DIR to a directory of your own", .path.display())]
    NotADirectory { path: PathBuf },
    #[error("cannot create {}: {reason} — check that its parent exists and is writable, or set XDG_RUNTIME_DIR", .path.display())]
    Create { path: PathBuf, reason: String },
}

/// The runtime directory of this process's user (see the module's words). Only the path:
/// [`ensure_runtime_dir`] makes and checks it.
pub fn runtime_dir() -> PathBuf {
    // The host's root and uid: a rootless engine's uid 0 is an ordinary user's (privilege).
    runtime_dir_from(
        crate::privilege::host_root(),
        crate::privilege::host_uid(),
        std::env::var_os("XDG_RUNTIME_DIR"),
    )
}

/// [`runtime_dir`] for a given user and `XDG_RUNTIME_DIR` (pure, for tests). The XDG spec
/// says a relative value is invalid and must be ignored.
pub fn runtime_dir_from(is_root: bool, uid: u32, xdg_runtime_dir: Option<OsString>) -> PathBuf {
    if is_root {
        return PathBuf::from("/run/berth");
    }
    match xdg_runtime_dir.map(PathBuf::from).filter(|d| d.is_absolute()) {
        Some(d) => d.join("berth"),
        None => PathBuf::from(format!("/tmp/berth-{uid}")),
    }
}

/// Makes the runtime directory if it is missing and returns it; for a user other than
/// root, refuses one that is not the user's own, private directory ([`private_dir`]).
pub fn ensure_runtime_dir() -> Result<PathBuf, PlaceError> {
    let dir = runtime_dir();
    let uid = rustix::process::geteuid();
    if crate::privilege::host_root() {
        std::fs::create_dir_all(&dir).map_err(|e| PlaceError::Create {
            path: dir.clone(),
            reason: e.to_string(),
        })?;
    } else {
        private_dir(&dir, uid.as_raw())?;
    }
    Ok(dir)
}

/// Makes `path` with mode 0700 when it is missing (its parent must exist); otherwise
/// checks that it is a directory (not a symlink) owned by `uid` with no group or other
/// permission bits.
pub fn private_dir(path: &Path, uid: u32) -> Result<(), PlaceError> {
    match std::fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(PlaceError::Create {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })
        }
    }
    let md = std::fs::symlink_metadata(path).map_err(|e| PlaceError::Create {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    if !md.is_dir() {
        return Err(PlaceError::NotADirectory {
            path: path.to_path_buf(),
        });
    }
    if md.uid() != uid {
        return Err(PlaceError::NotOwned {
            path: path.to_path_buf(),
            owner: md.uid(),
        });
    }
    let mode = md.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(PlaceError::OpenToOthers {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    fn me() -> u32 {
        rustix::process::geteuid().as_raw()
    }

    /// `parent/name`, made with `mode` whatever the umask.
    fn dir_with_mode(parent: &Path, name: &str, mode: u32) -> PathBuf {
        let dir = parent.join(name);
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
        dir
    }

    #[test]
    fn where_the_runtime_dir_is() {
        let s = |v: &str| Some(OsString::from(v));
        assert_eq!(
            runtime_dir_from(true, 0, s("/run/user/0")),
            PathBuf::from("/run/berth")
        );
        assert_eq!(
            runtime_dir_from(false, 1000, s("/run/user/1000")),
            PathBuf::from("/run/user/1000/berth")
        );
        // No session (su -, cron): a directory of the user's own, never a shared one.
        assert_eq!(
            runtime_dir_from(false, 1000, None),
            PathBuf::from("/tmp/berth-1000")
        );
        assert_eq!(
            runtime_dir_from(false, 1000, s("")),
            PathBuf::from("/tmp/berth-1000")
        );
        assert_eq!(
            runtime_dir_from(false, 1000, s("rel")),
            PathBuf::from("/tmp/berth-1000")
        );
    }

    #[test]
    fn a_missing_dir_is_made_private() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("berth-x");
        private_dir(&dir, me()).unwrap();
        assert_eq!(mode_of(&dir), 0o700);
        // And accepted as it is the next time.
        private_dir(&dir, me()).unwrap();
    }

    #[test]
    fn a_private_dir_of_ones_own_is_accepted() {
        let t = tempfile::tempdir().unwrap();
        let dir = dir_with_mode(t.path(), "own", 0o700);
        assert_eq!(private_dir(&dir, me()), Ok(()));
    }

    #[test]
    fn a_dir_open_to_others_is_refused() {
        let t = tempfile::tempdir().unwrap();
        for mode in [0o755, 0o770, 0o701, 0o1777] {
            let dir = dir_with_mode(t.path(), &format!("open-{mode:o}"), mode);
            let e = private_dir(&dir, me()).unwrap_err();
            assert_eq!(
                e,
                PlaceError::OpenToOthers {
                    path: dir.clone(),
                    mode
                }
            );
            let words = e.to_string();
            assert!(
                words.contains("open to other users") && words.contains("chmod 700"),
                "{words}"
            );
            assert_eq!(mode_of(&dir), mode & 0o777, "left as it was");
        }
    }

    #[test]
    fn a_dir_of_another_user_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let dir = dir_with_mode(t.path(), "theirs", 0o700);
        if rustix::process::geteuid().is_root() {
            // Made by root and given to another uid, as another user would have made it.
            std::os::unix::fs::chown(&dir, Some(4242), Some(4242)).unwrap();
            let e = private_dir(&dir, 0).unwrap_err();
            assert_eq!(
                e,
                PlaceError::NotOwned {
                    path: dir.clone(),
                    owner: 4242
                }
            );
            assert!(e.to_string().contains("set XDG_RUNTIME_DIR"), "{e}");
        } else {
            // Not root: the directory is this user's, so ask as if another user did.
            let e = private_dir(&dir, me() + 1).unwrap_err();
            assert!(matches!(e, PlaceError::NotOwned { .. }), "{e}");
        }
    }

    #[test]
    fn a_symlink_or_a_file_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let real = dir_with_mode(t.path(), "real", 0o700);
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert_eq!(
            private_dir(&link, me()),
            Err(PlaceError::NotADirectory { path: link })
        );
        let file = t.path().join("file");
        std::fs::write(&file, b"").unwrap();
        assert!(matches!(
            private_dir(&file, me()),
            Err(PlaceError::NotADirectory { .. })
        ));
    }
}
