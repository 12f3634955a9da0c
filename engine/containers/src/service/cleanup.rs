//! `cleanup`: releases what a run held, whether the start failed, the container exited,
//! or the engine died in between. Idempotent: the `cleaned` marker says it is done.

use berth_cgroups::Cgroup;

use super::ContainerService;
use crate::record::*;
use crate::ContainerError;

impl ContainerService {
    /// Releases what a run held: port listeners die with the shim; here the rootfs is
    /// unmounted, the network endpoint detached and the cgroup removed. Idempotent.
    pub fn cleanup(&self, rec: &ContainerRecord) -> Result<(), ContainerError> {
        let p = self.paths(&rec.id);
        // A run being set up is not a leftover: releasing its cgroup, rootfs or network
        // under the start (a `ps` at that moment) broke the start.
        if p.cleaned().exists() || self.being_started(&rec.id) || self.status(rec).is_running() {
            return Ok(());
        }
        if let Some(cg) = Cgroup::open(&rec.id)? {
            if cg.oom_killed().unwrap_or(false) {
                let _ = std::fs::write(p.dir.join("oom"), b"");
            }
            cg.destroy(true)?;
        }
        if rec.host.network != "host" && rec.host.network != "none" {
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
        }
        berth_runtime::rootfs::unmount(&p.rootfs())?;
        let _ = std::fs::remove_file(p.dir.join("paused"));
        std::fs::write(p.cleaned(), b"").map_err(ContainerError::io("cannot write container state"))?;
        Ok(())
    }
}
