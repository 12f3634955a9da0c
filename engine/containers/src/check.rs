//! `berth system check` for containers: records that can be read, runs that were released,
//! and no mount under the store root that nothing holds.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::service::ContainerService;
use crate::ContainerError;

/// One thing wrong with the containers of a store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContainerProblem {
    /// A container directory without a readable record (a create or remove cut short).
    OrphanState { dir: PathBuf },
    /// A stopped container whose last run still holds its root filesystem, network or cgroup.
    NotReleased { name: String, id: String },
    /// A container whose image is not in the store any more (it cannot start).
    MissingImage { name: String, image: String },
    /// A mount under the store root that no running container or live build holds.
    StrayMount { path: PathBuf },
    /// A container that is dead for another reason than an unreleased run (its root
    /// filesystem directory is missing): only `berth rm` clears it.
    Dead { name: String, reason: String },
}

impl ContainerProblem {
    /// Whether `berth system check --repair` can fix it (a missing image it cannot).
    pub fn repairable(&self) -> bool {
        !matches!(
            self,
            ContainerProblem::MissingImage { .. } | ContainerProblem::Dead { .. }
        )
    }
}

impl fmt::Display for ContainerProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContainerProblem::OrphanState { dir } => {
                write!(f, "{} holds a container with no readable record", dir.display())
            }
            ContainerProblem::NotReleased { name, .. } => write!(
                f,
                "container {name} has stopped but still holds what its last run used"
            ),
            ContainerProblem::MissingImage { name, image } => write!(
                f,
                "container {name} uses image {image}, which is not in the store: remove the container, or pull the image again"
            ),
            ContainerProblem::StrayMount { path } => {
                write!(f, "{} is mounted but no container or build uses it", path.display())
            }
            ContainerProblem::Dead { name, reason } => {
                write!(f, "container {name} is dead: {reason} — remove it with `berth rm {name}`")
            }
        }
    }
}

impl ContainerService {
    /// Checks every container of the store and the mounts under its root; changes nothing.
    pub fn check(&self) -> Result<Vec<ContainerProblem>, ContainerError> {
        let mut problems = Vec::new();
        let dir = self.root().join("containers");
        let rd =
            std::fs::read_dir(&dir).map_err(ContainerError::io(format!("cannot read {}", dir.display())))?;
        for e in rd.flatten() {
            let config = e.path().join("config.json");
            let readable = std::fs::read(&config)
                .ok()
                .and_then(|b| serde_json::from_slice::<crate::ContainerRecord>(&b).ok())
                .is_some();
            let name = e.file_name().to_string_lossy().into_owned();
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            // Dot names are the service's own (its lock file, creates under way), except
            // the leftovers of a create or removal that was cut short.
            let leftover = match crate::service::unfinished_dir(&name) {
                Some(done) => done,
                None => !name.starts_with('.'),
            };
            if is_dir && !readable && leftover {
                problems.push(ContainerProblem::OrphanState { dir: e.path() });
            }
        }
        let mut held: Vec<PathBuf> = Vec::new();
        // A record that cannot be read is the orphaned state found above.
        for rec in self.records()?.into_iter().filter(|r| r.damage.is_none()) {
            let status = self.status(&rec);
            let p = self.paths(&rec.id);
            // A shim that is still alive after the exit is releasing the run right now.
            let releasing = || {
                berth_runtime::shim::read_state(&p.shim())
                    .ok()
                    .flatten()
                    .is_some_and(|s| berth_host::process::alive(s.shim_pid))
            };
            // A start in progress holds its rootfs too (and has no `cleaned` marker yet).
            if status.is_running() || (!p.cleaned().exists() && (releasing() || self.being_started(&rec.id)))
            {
                held.push(p.rootfs());
            } else if !p.cleaned().exists() {
                problems.push(ContainerProblem::NotReleased {
                    name: rec.name.clone(),
                    id: rec.id.clone(),
                });
                held.push(p.rootfs());
            } else if let crate::Status::Dead { reason } = status {
                problems.push(ContainerProblem::Dead {
                    name: rec.name.clone(),
                    reason,
                });
            }
            if self
                .images()
                .store()
                .image(&rec.image_id)
                .ok()
                .flatten()
                .is_none()
            {
                problems.push(ContainerProblem::MissingImage {
                    name: rec.name.clone(),
                    image: rec.image.clone(),
                });
            }
        }
        for m in berth_host::mounts::mount_points_under(self.root()) {
            if held.iter().any(|h| h == &m) || build_area_alive(self.root(), &m) {
                continue;
            }
            problems.push(ContainerProblem::StrayMount { path: m });
        }
        Ok(problems)
    }

    /// Fixes what [`check`](Self::check) found, except missing images: releases stopped
    /// runs, unmounts stray mounts, removes directories without a record.
    pub fn repair(&self, problems: &[ContainerProblem]) -> Result<usize, ContainerError> {
        let mut fixed = 0;
        for p in problems {
            match p {
                ContainerProblem::NotReleased { id, .. } => {
                    self.release(&self.find(id)?)?;
                    fixed += 1;
                }
                ContainerProblem::StrayMount { path } => {
                    berth_runtime::rootfs::unmount(path)?;
                    fixed += 1;
                }
                ContainerProblem::OrphanState { dir } => {
                    // Listed as a dead container when its name is an ID: removed as one,
                    // so its cgroup and network go too.
                    let id = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                    if self.find(id).is_ok_and(|r| r.id == id) && self.remove(id, true, false).is_ok() {
                        fixed += 1;
                        continue;
                    }
                    let _ = berth_runtime::rootfs::unmount(&dir.join("rootfs"));
                    std::fs::remove_dir_all(dir)
                        .map_err(ContainerError::io(format!("cannot remove {}", dir.display())))?;
                    fixed += 1;
                }
                ContainerProblem::MissingImage { .. } | ContainerProblem::Dead { .. } => {}
            }
        }
        Ok(fixed)
    }
}

/// A build step's area, `ROOT/builder/tmp/<pid>-<id>/…`, whose builder still runs.
fn build_area_alive(root: &Path, mount: &Path) -> bool {
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let Ok(rest) = mount.strip_prefix(root.join("builder").join("tmp")) else {
        return false;
    };
    rest.components()
        .next()
        .and_then(|c| c.as_os_str().to_str())
        .and_then(|n| n.split_once('-'))
        .and_then(|(pid, _)| pid.parse::<i32>().ok())
        .is_some_and(berth_host::process::alive)
}
