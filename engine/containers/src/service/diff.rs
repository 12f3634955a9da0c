//! `diff`: what a container changed in its filesystem, read from its overlay's upper dir
//! against the image's layers (docker's `GET /containers/{id}/changes`).

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::ContainerService;
use crate::ContainerError;

/// One change: docker's kinds are 0 modified, 1 added, 2 deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub kind: ChangeKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Modified = 0,
    Added = 1,
    Deleted = 2,
}

/// Files Berth provides for every run (docker keeps them in its "init" layer, which its diff
/// leaves out too).
const PROVIDED: [&str; 3] = ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"];

impl ContainerService {
    /// The changes of container `name_or_id` against its image, sorted by path; a directory
    /// is "modified" when something under it changed.
    pub fn changes(&self, name_or_id: &str) -> Result<Vec<Change>, ContainerError> {
        let rec = self.find(name_or_id)?;
        let lowers = self.image_layers(&rec)?;
        let mut out = Vec::new();
        walk(&self.paths(&rec.id).upper(), "", &lowers, &mut out).map_err(ContainerError::io(format!(
            "cannot read the changes of {}",
            rec.name
        )))?;
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }
}

impl ContainerService {
    /// The unpacked layers of the container's image, top first.
    pub(super) fn image_layers(&self, rec: &crate::ContainerRecord) -> Result<Vec<PathBuf>, ContainerError> {
        let store = self.images.store();
        let image = store
            .image(&rec.image_id)?
            .ok_or_else(|| ContainerError::ImageGone {
                name: rec.name.clone(),
                image: rec.image.clone(),
            })?;
        Ok(image
            .layers
            .iter()
            .rev()
            .map(|l| store.layer_dir(&l.diff_id))
            .collect())
    }
}

fn in_lowers(lowers: &[PathBuf], rel: &str) -> bool {
    lowers
        .iter()
        .any(|l| std::fs::symlink_metadata(l.join(rel.trim_start_matches('/'))).is_ok())
}

/// Adds the changes under `dir` (whose path in the container is `rel`); returns whether
/// it added any.
fn walk(dir: &Path, rel: &str, lowers: &[PathBuf], out: &mut Vec<Change>) -> std::io::Result<bool> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(false);
    };
    let mut any = false;
    for e in entries {
        let e = e?;
        let name = e.file_name();
        let path = format!("{rel}/{}", name.to_string_lossy());
        if PROVIDED.contains(&path.as_str()) {
            continue;
        }
        let meta = std::fs::symlink_metadata(e.path())?;
        let existed = in_lowers(lowers, &path);
        if meta.file_type().is_char_device() && meta.rdev() == 0 {
            out.push(Change {
                path,
                kind: ChangeKind::Deleted,
            });
            any = true;
            continue;
        }
        if meta.is_dir() {
            let below = walk(&e.path(), &path, lowers, out)?;
            if !existed {
                out.push(Change {
                    path,
                    kind: ChangeKind::Added,
                });
                any = true;
            } else if below {
                out.push(Change {
                    path,
                    kind: ChangeKind::Modified,
                });
                any = true;
            }
            continue;
        }
        out.push(Change {
            path,
            kind: if existed {
                ChangeKind::Modified
            } else {
                ChangeKind::Added
            },
        });
        any = true;
    }
    Ok(any)
}
