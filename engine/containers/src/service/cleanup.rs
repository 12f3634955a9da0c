//! `cleanup`: releases what a run held, whether the start failed, the container exited,
//! or the engine died in between. Idempotent: the `cleaned` marker says it is done; a
//! release that fails leaves the `dead` marker instead, with the reason, so the container
//! is listed as dead (and `rm` removes it) rather than blocking whoever lists containers.

use berth_cgroups::Cgroup;

use super::ContainerService;
use crate::record::*;
use crate::ContainerError;

impl ContainerService {
    /// Releases what a run held: port listeners die with the shim; here the cgroup is
    /// removed, the network endpoints detached and the rootfs unmounted. Every step is
    /// tried even when one fails (the first failure is returned and recorded in the
    /// `dead` marker); what is already gone counts as released. Idempotent.
    pub fn cleanup(&self, rec: &ContainerRecord) -> Result<(), ContainerError> {
        let p = self.paths(&rec.id);
        // A run being set up is not a leftover: releasing its cgroup, rootfs or network
        // under the start (a `ps` at that moment) broke the start.
        if p.cleaned().exists() || self.being_started(&rec.id) || self.status(rec).is_running() {
            return Ok(());
        }
        let mut failed: Option<ContainerError> = None;
        let mut step = |r: Result<(), ContainerError>| {
            if let (Err(e), None) = (r, &failed) {
                failed = Some(e);
            }
        };
        step(self.release_cgroup(rec));
        step(self.release_network(rec));
        step(berth_runtime::rootfs::unmount(&p.rootfs()).map_err(ContainerError::from));
        if rec.host.ipc_mode == "shareable" {
            step(berth_runtime::rootfs::unmount(&p.shm()).map_err(ContainerError::from));
        }
        step(super::fail_point("release"));
        if let Some(e) = failed {
            // Best effort: the container's directory may be gone (a removal racing this).
            let _ = std::fs::write(p.dead(), format!("releasing its last run failed ({e})"));
            return Err(e);
        }
        let _ = std::fs::remove_file(p.dir.join("paused"));
        let _ = std::fs::remove_file(p.dead());
        std::fs::write(p.cleaned(), b"").map_err(ContainerError::io("cannot write container state"))?;
        Ok(())
    }

    /// [`cleanup`](Self::cleanup) under the container list's lock, for callers that do not
    /// hold it (listing, copying, repairing): a release outside the lock could run beside a
    /// start, detach the new run's network or unmount its rootfs, and write `cleaned` over
    /// it — seen as a `compose down` whose network "still has 1 attached container" after
    /// a Restart while the window listed containers.
    pub(crate) fn release(&self, rec: &ContainerRecord) -> Result<(), ContainerError> {
        if self.paths(&rec.id).cleaned().exists() {
            return Ok(());
        }
        let _lock = self.lock()?;
        self.cleanup(rec)
    }

    fn release_cgroup(&self, rec: &ContainerRecord) -> Result<(), ContainerError> {
        if let Some(cg) = Cgroup::open(&rec.id)? {
            if cg.oom_killed().unwrap_or(false) {
                let _ = std::fs::write(self.paths(&rec.id).dir.join("oom"), b"");
            }
            cg.destroy(true)?;
        }
        Ok(())
    }

    fn release_network(&self, rec: &ContainerRecord) -> Result<(), ContainerError> {
        if rec.host.network == "host" || rec.host.network == "none" {
            return Ok(());
        }
        // The networks it is on now (it may have been connected since `rec` was read).
        let networks: Vec<String> = self
            .net
            .endpoints_of(&rec.id)
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.network)
            .collect();
        self.net.detach(&rec.id)?;
        for n in networks.iter().filter(|n| *n != berth_net::DEFAULT_NETWORK) {
            self.refresh_peer_hosts(n, &rec.id);
        }
        Ok(())
    }
}
