//! `kill`: a signal to a running (or paused) container's init.

use berth_events::Action;

use super::ContainerService;
use crate::record::*;
use crate::ContainerError;

impl ContainerService {
    pub fn kill(&self, name_or_id: &str, signal: i32) -> Result<ContainerRecord, ContainerError> {
        let rec = self.find(name_or_id)?;
        let (pid, paused) = match self.status(&rec) {
            Status::Running { pid, .. } => (pid, false),
            Status::Paused { pid, .. } => (pid, true),
            _ => return Err(ContainerError::NotRunning(rec.name.clone())),
        };
        if paused && signal == 9 {
            // A frozen process cannot die until thawed.
            self.unpause(&rec.id)?;
        }
        let signo = signal_of(signal)?;
        // A user's kill or stop sticks: restart policies leave the container stopped.
        self.mark_stopped(&rec, true);
        let pid = rustix::process::Pid::from_raw(pid)
            .ok_or_else(|| ContainerError::NotRunning(rec.name.clone()))?;
        let _ = rustix::process::kill_process(pid, signo);
        self.emit(Action::Kill { signal }, &rec);
        Ok(rec)
    }
}

fn signal_of(n: i32) -> Result<rustix::process::Signal, ContainerError> {
    rustix::process::Signal::from_named_raw(n)
        .ok_or_else(|| ContainerError::InvalidArgument(format!("invalid signal {n}")))
}
