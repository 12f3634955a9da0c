//! `stop`: the container's stop signal, then SIGKILL after the timeout; and `wait_exit`,
//! which waits until a container and its shim are done.

use std::time::{Duration, Instant};

use berth_cgroups::Cgroup;
use berth_events::Action;
use berth_host::watch::{wait_any, ProcWatch};

use super::signal::parse_signal;
use super::wait::RunWatch;
use super::ContainerService;
use crate::record::*;
use crate::ContainerError;

impl ContainerService {
    pub fn stop(&self, name_or_id: &str, timeout: Duration) -> Result<ContainerRecord, ContainerError> {
        let rec = self.find(name_or_id)?;
        if !self.status(&rec).is_running() {
            return Ok(rec);
        }
        let sig = rec
            .config
            .stop_signal
            .as_deref()
            .and_then(parse_signal)
            .unwrap_or(15);
        if matches!(self.status(&rec), Status::Paused { .. }) {
            self.unpause(&rec.id)?;
        }
        self.kill(&rec.id, sig)?;
        if !self.wait_exit(&rec, timeout) {
            let _ = self.kill(&rec.id, 9);
            if let Ok(Some(cg)) = Cgroup::open(&rec.id) {
                let _ = cg.kill_all(9);
            }
            self.wait_exit(&rec, Duration::from_secs(10));
        }
        self.announce_if_exited(&rec);
        self.emit(Action::Stop, &rec);
        Ok(rec)
    }

    /// `restart`: stop (as [`Self::stop`]) and start again.
    pub fn restart(&self, name_or_id: &str, timeout: Duration) -> Result<ContainerRecord, ContainerError> {
        let rec = self.stop(name_or_id, timeout)?;
        let rec = self.start(&rec.id)?;
        self.emit(Action::Restart, &rec);
        Ok(rec)
    }

    /// Waits until the container is no longer running and its shim has finished (so its
    /// published ports are closed and its resources released); false on timeout.
    pub fn wait_exit(&self, rec: &ContainerRecord, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let p = self.paths(&rec.id);
        let state = berth_runtime::shim::read_state(&p.shim()).ok().flatten();
        // Woken by the init's and the shim's ends (see `RunWatch`).
        let mut run = RunWatch::default();
        loop {
            if !self.status(rec).is_running() {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            run.pause(
                state.as_ref(),
                None,
                (deadline - now).min(Duration::from_millis(50)),
            );
        }
        // The shim records the exit, then releases what the run held and exits itself.
        if let Some(pid) = state.map(|s| s.shim_pid) {
            let shim_deadline = Instant::now() + Duration::from_secs(5);
            match ProcWatch::open(pid) {
                Some(shim) => {
                    let _ = wait_any(&[&shim], None, Duration::from_secs(5));
                }
                None => {
                    while berth_host::process::alive(pid) && Instant::now() < shim_deadline {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            }
        }
        true
    }
}
