//! `remove`: a stopped or dead container (or, forced, a running one after SIGKILL) and, if
//! asked, its anonymous volumes. Renamed out of sight before it is deleted.

use std::time::Duration;

use berth_cgroups::Cgroup;
use berth_events::Action;

use super::ContainerService;
use crate::record::*;
use crate::ContainerError;

impl ContainerService {
    pub fn remove(
        &self,
        name_or_id: &str,
        force: bool,
        volumes: bool,
    ) -> Result<ContainerRecord, ContainerError> {
        let rec = self.find(name_or_id)?;
        if self.status(&rec).is_running() {
            if !force {
                return Err(ContainerError::Running(rec.name.clone()));
            }
            let _ = self.kill(&rec.id, 9);
            if let Ok(Some(cg)) = Cgroup::open(&rec.id) {
                let _ = cg.kill_all(9);
            }
            self.wait_exit(&rec, Duration::from_secs(10));
            self.announce_if_exited(&rec);
        }
        // The shim may be releasing the same resources right now: take turns.
        let _lock = self.lock()?;
        let p = self.paths(&rec.id);
        // A dead container is removed with what can be released (what is gone already is
        // released); only a root filesystem that stays mounted keeps it, since its files
        // cannot be deleted then.
        if let Err(e) = self.cleanup(&rec) {
            if berth_host::mounts::is_mount_point(&p.rootfs()) {
                return Err(e);
            }
            tracing::warn!(container = %rec.name, "removed without releasing all of its last run: {e}");
        }
        // Never delete through a mount: a root filesystem (or shared /dev/shm) still mounted
        // here, whatever the release above concluded, is unmounted first. (Once seen: a
        // rootless engine's `compose down` right after a restart found the rootfs mounted
        // and failed with EBUSY half-way through deleting it.)
        for dir in [p.rootfs(), p.shm()] {
            if berth_host::mounts::is_mount_point(&dir) {
                tracing::warn!(container = %rec.name, path = %dir.display(), "still mounted at removal; unmounting it");
                berth_runtime::rootfs::unmount(&dir)?;
            }
        }
        // Renamed out of sight first: a removal that is cut short leaves a `.removing-`
        // directory the next engine finishes, never a container with half its files.
        let doomed = self.root.join("containers").join(format!(".removing-{}", rec.id));
        match std::fs::rename(&p.dir, &doomed) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(ContainerError::io(format!(
                    "cannot remove container {}",
                    rec.name
                ))(e));
            }
        }
        let mut attempt = 0;
        loop {
            match std::fs::remove_dir_all(&doomed) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) if attempt < 5 && e.kind() == std::io::ErrorKind::DirectoryNotEmpty => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => {
                    return Err(ContainerError::io(format!(
                        "cannot remove container {}",
                        rec.name
                    ))(e))
                }
            }
        }
        if volumes {
            for m in &rec.host.mounts {
                if m.kind == MountKind::Volume && m.anonymous {
                    let _ = self.volumes.remove(&m.source);
                }
            }
        }
        self.emit(Action::Destroy, &rec);
        Ok(rec)
    }
}
