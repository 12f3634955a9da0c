//! A step's working area: `ROOT/builder/tmp/<pid>-<id>/` holding an overlay (the parent
//! image's layers + a fresh upper dir) mounted at `rootfs/`. The upper dir becomes the
//! step's layer. Areas left by a process that died are unmounted, detached from the
//! network and removed by [`sweep`] when the next builder opens the store.

use std::fs;
use std::path::{Path, PathBuf};

use berth_net::NetworkManager;

use crate::BuildError;

pub struct Scratch {
    pub dir: PathBuf,
    /// The container id of this area (also its network endpoint id).
    pub id: String,
    mounted: bool,
    net: Option<NetworkManager>,
}

impl Scratch {
    pub fn create(tmp_root: &Path) -> Result<Scratch, BuildError> {
        let id = hex::encode(rand::random::<[u8; 32]>());
        let dir = tmp_root.join(format!("{}-{}", std::process::id(), id));
        for sub in ["upper", "work", "rootfs", "empty", "etc"] {
            fs::create_dir_all(dir.join(sub))
                .map_err(BuildError::io(format!("cannot create {}", dir.display())))?;
        }
        Ok(Scratch {
            dir,
            id,
            mounted: false,
            net: None,
        })
    }

    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// Mounts `lowers` (bottom first; may be empty for `FROM scratch`) with the upper dir.
    pub fn mount(&mut self, lowers: &[PathBuf]) -> Result<(), BuildError> {
        let lowers = if lowers.is_empty() {
            vec![self.dir.join("empty")]
        } else {
            lowers.to_vec()
        };
        // The upper dir is diffed into a layer (stored with its own fsync) and removed:
        // its unmount need not sync the store's file system.
        berth_runtime::rootfs::mount_overlay_volatile(
            &lowers,
            &self.upper(),
            &self.dir.join("work"),
            &self.rootfs(),
        )?;
        self.mounted = true;
        Ok(())
    }

    pub fn unmount(&mut self) -> Result<(), BuildError> {
        if self.mounted {
            berth_runtime::rootfs::unmount(&self.rootfs())?;
            self.mounted = false;
        }
        Ok(())
    }

    /// Remembers that this area's id has a network endpoint to detach on drop.
    pub fn attached(&mut self, net: NetworkManager) {
        self.net = Some(net);
    }

    pub fn detach(&mut self) -> Result<(), BuildError> {
        if let Some(net) = self.net.take() {
            net.detach(&self.id)?;
        }
        Ok(())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Best effort: a leftover is swept by the next builder.
        let _ = self.detach();
        let _ = self.unmount();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Cleans the areas of builder processes that are gone: unmounts, detaches the network
/// endpoint, removes the directory.
pub fn sweep(tmp_root: &Path, net: &NetworkManager) {
    let Ok(rd) = fs::read_dir(tmp_root) else { return };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some((pid, id)) = name.split_once('-') else {
            continue;
        };
        let Ok(pid) = pid.parse::<i32>() else { continue };
        if berth_host::process::alive(pid) {
            continue;
        }
        let dir = e.path();
        // A RUN command orphaned by its builder: kill it if it is still the one in there.
        if let Ok(text) = fs::read_to_string(dir.join("pid")) {
            if let Some((pid, started)) = text.trim().split_once(' ') {
                let pid = pid.parse::<i32>().unwrap_or(0);
                // The start time rules out a pid reused by an unrelated process.
                if berth_runtime::shim::is_alive(pid, started) {
                    if let Some(p) = rustix::process::Pid::from_raw(pid) {
                        let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                    }
                }
            }
        }
        let _ = berth_runtime::rootfs::unmount(&dir.join("rootfs"));
        let _ = net.detach(id);
        let _ = fs::remove_dir_all(&dir);
    }
}
