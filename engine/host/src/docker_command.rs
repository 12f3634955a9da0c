//! The `docker` command for people who installed only Berth: a symbolic link named
//! `docker` to the `berth` binary, which reads its arguments as Berth's when started under
//! that name, so the lectures' commands run verbatim. It is never put over a `docker`
//! that exists (in the folder, or anywhere on `PATH`), and only a link to Berth is removed.

use std::path::{Path, PathBuf};

/// Where the link goes: `/usr/local/bin` for root, `~/.local/bin` for a user (on Debian's
/// default PATH once it exists).
pub fn default_dir() -> PathBuf {
    if crate::privilege::host_root() {
        PathBuf::from("/usr/local/bin")
    } else {
        std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".local/bin"))
            .unwrap_or_else(|| PathBuf::from("/usr/local/bin"))
    }
}

/// What `docker` is on this computer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// No `docker` in the folder or on PATH.
    Absent,
    /// `docker` is Berth (a link to `berth`), at this path.
    Berth(PathBuf),
    /// Another program is `docker`, at this path (Docker's own CLI, podman-docker, …).
    Other(PathBuf),
}

/// Whether `path` is a link (or a chain of them) to a program named `berth`, or to `berth`.
fn is_berth(path: &Path, berth: &Path) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    if !meta.file_type().is_symlink() {
        return false;
    }
    match (std::fs::canonicalize(path), std::fs::canonicalize(berth)) {
        (Ok(target), Ok(ours)) if target == ours => true,
        (Ok(target), _) => target.file_name().is_some_and(|n| n == "berth"),
        _ => false,
    }
}

/// `docker` as the folder `dir` and then `path` (a PATH value) find it.
pub fn status(dir: &Path, path: Option<&std::ffi::OsStr>, berth: &Path) -> Status {
    let mut candidates = vec![dir.join("docker")];
    if let Some(p) = path {
        candidates.extend(std::env::split_paths(p).map(|d| d.join("docker")));
    }
    let mut found = Status::Absent;
    for c in candidates {
        if std::fs::symlink_metadata(&c).is_err() {
            continue;
        }
        if is_berth(&c, berth) {
            if found == Status::Absent {
                found = Status::Berth(c);
            }
        } else if c.is_file() {
            return Status::Other(c);
        }
    }
    found
}

#[derive(Debug, thiserror::Error)]
pub enum DockerCommandError {
    #[error("a docker command is already installed at {0} — Berth never replaces it: use it, or type berth instead of docker")]
    Exists(PathBuf),
    #[error("{0} is not Berth's docker command, so it is left alone")]
    NotOurs(PathBuf),
    #[error(
        "cannot make {path}: {source} — run it as a user who may write there, or choose a folder with --dir"
    )]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Makes `dir/docker` a link to `berth`, unless some `docker` exists already; the link's
/// path (the existing one when Berth's link is already there).
pub fn install(
    dir: &Path,
    path: Option<&std::ffi::OsStr>,
    berth: &Path,
) -> Result<PathBuf, DockerCommandError> {
    match status(dir, path, berth) {
        Status::Other(p) => return Err(DockerCommandError::Exists(p)),
        Status::Berth(p) if p.parent() == Some(dir) => return Ok(p),
        _ => {}
    }
    let link = dir.join("docker");
    if std::fs::symlink_metadata(&link).is_ok() {
        return Err(DockerCommandError::Exists(link));
    }
    let io = |source| DockerCommandError::Io {
        path: link.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let target = std::fs::canonicalize(berth).unwrap_or_else(|_| berth.to_path_buf());
    std::os::unix::fs::symlink(&target, &link).map_err(io)?;
    Ok(link)
}

/// Removes `dir/docker` if it is Berth's link; anything else there is refused.
pub fn remove(dir: &Path, berth: &Path) -> Result<Option<PathBuf>, DockerCommandError> {
    let link = dir.join("docker");
    if std::fs::symlink_metadata(&link).is_err() {
        return Ok(None);
    }
    if !is_berth(&link, berth) {
        return Err(DockerCommandError::NotOurs(link));
    }
    std::fs::remove_file(&link).map_err(|source| DockerCommandError::Io {
        path: link.clone(),
        source,
    })?;
    Ok(Some(link))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_only_where_no_docker_is_and_removed_only_if_ours() {
        let t = tempfile::tempdir().unwrap();
        let berth = t.path().join("bin/berth");
        std::fs::create_dir_all(berth.parent().unwrap()).unwrap();
        std::fs::write(&berth, "#!/bin/sh\n").unwrap();
        let dir = t.path().join("local/bin");
        let other_dir = t.path().join("usr/bin");
        std::fs::create_dir_all(&other_dir).unwrap();
        let no_docker = std::ffi::OsString::from(other_dir.as_os_str());

        assert_eq!(status(&dir, Some(&no_docker), &berth), Status::Absent);
        let link = install(&dir, Some(&no_docker), &berth).unwrap();
        assert_eq!(link, dir.join("docker"));
        assert_eq!(
            status(&dir, Some(&no_docker), &berth),
            Status::Berth(link.clone())
        );
        assert_eq!(
            install(&dir, Some(&no_docker), &berth).unwrap(),
            link,
            "idempotent"
        );
        assert_eq!(remove(&dir, &berth).unwrap(), Some(link.clone()));
        assert_eq!(remove(&dir, &berth).unwrap(), None);

        // Docker's own CLI on PATH: never installed over, never removed.
        std::fs::write(other_dir.join("docker"), "#!/bin/sh\n").unwrap();
        let err = install(&dir, Some(&no_docker), &berth).unwrap_err();
        assert!(err.to_string().contains("already installed at"), "{err}");
        assert!(std::fs::symlink_metadata(dir.join("docker")).is_err());
        std::fs::write(dir.join("docker"), "#!/bin/sh\n").unwrap();
        assert!(matches!(
            remove(&dir, &berth),
            Err(DockerCommandError::NotOurs(_))
        ));
        assert!(
            dir.join("docker").is_file(),
            "someone else's docker is left alone"
        );
    }
}
