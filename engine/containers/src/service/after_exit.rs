//! What happens once a container has exited: the shim calls `after_exit`, which releases
//! the run, applies `--rm` (unless an attached client does it) and the restart policy.
//! The markers it reads (`attached`, `stopped`) are written here too.

use std::time::Duration;

use super::ContainerService;
use crate::record::*;
use crate::ContainerError;

impl ContainerService {
    /// Called by the shim process once its container has exited: releases the run's
    /// resources, then applies `--rm` and the restart policy.
    pub fn after_exit(&self, id: &str) -> Result<(), ContainerError> {
        let mut rec = self.find(id)?;
        {
            let _lock = self.lock()?;
            if !self.paths(&rec.id).config().exists() {
                return Ok(());
            }
            if let Err(e) = self.cleanup(&rec) {
                // Recorded: the container is listed as dead; a `--rm` one is removed still.
                tracing::warn!(container = %rec.name, "cannot release the run that ended: {e}");
            }
        }
        if rec.host.auto_remove {
            // An attached `run --rm` still reading the output removes it itself.
            if !self.attached_client_alive(&rec) {
                self.remove(&rec.id, true, true)?;
            }
            return Ok(());
        }
        let code = match self.status(&rec) {
            Status::Exited { code, .. } => code,
            _ => return Ok(()),
        };
        let stopped_by_user = self.paths(&rec.id).dir.join("stopped").exists();
        if restarts(&rec.host.restart, rec.restart_count, code, stopped_by_user) {
            rec.restart_count += 1;
            self.save(&rec)?;
            // Back off a little like docker does, so a crashing container does not spin.
            std::thread::sleep(Duration::from_millis(100 * u64::from(rec.restart_count.min(50))));
            self.start(&rec.id)?;
        }
        Ok(())
    }

    /// Records that this process follows the container's output (`run` without -d), so
    /// the shim leaves `--rm` to it.
    pub fn mark_attached(&self, rec: &ContainerRecord) -> Result<(), ContainerError> {
        std::fs::write(
            self.paths(&rec.id).dir.join("attached"),
            std::process::id().to_string(),
        )
        .map_err(ContainerError::io("cannot write container state"))
    }

    pub(super) fn attached_client_alive(&self, rec: &ContainerRecord) -> bool {
        std::fs::read_to_string(self.paths(&rec.id).dir.join("attached"))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
            .is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
    }

    /// Marks that the user stopped the container (restart policies then leave it stopped).
    pub fn mark_stopped(&self, rec: &ContainerRecord, stopped: bool) {
        let f = self.paths(&rec.id).dir.join("stopped");
        if stopped {
            let _ = std::fs::write(f, b"");
        } else {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// Whether the restart policy starts the container again after an exit with `code`, when
/// it has been restarted `restart_count` times already.
fn restarts(policy: &RestartPolicy, restart_count: u32, code: i32, stopped_by_user: bool) -> bool {
    match policy.name {
        RestartName::Always | RestartName::UnlessStopped => !stopped_by_user,
        RestartName::OnFailure => {
            code != 0
                && !stopped_by_user
                && (policy.maximum_retry_count == 0 || restart_count < policy.maximum_retry_count)
        }
        RestartName::No => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(name: &str, max: u32) -> RestartPolicy {
        RestartPolicy {
            name: serde_json::from_value(serde_json::json!(name)).unwrap(),
            maximum_retry_count: max,
        }
    }

    #[test]
    fn restart_policies_decide_after_an_exit() {
        assert!(!restarts(&policy("no", 0), 0, 1, false));
        assert!(restarts(&policy("always", 0), 7, 0, false));
        assert!(
            !restarts(&policy("always", 0), 0, 0, true),
            "a user's stop sticks"
        );
        assert!(restarts(&policy("unless-stopped", 0), 0, 0, false));
        assert!(
            !restarts(&policy("on-failure", 0), 0, 0, false),
            "success is not a failure"
        );
        assert!(
            restarts(&policy("on-failure", 0), 100, 1, false),
            "0 retries means no limit"
        );
        assert!(restarts(&policy("on-failure", 3), 2, 1, false));
        assert!(!restarts(&policy("on-failure", 3), 3, 1, false));
        assert!(!restarts(&policy("on-failure", 3), 0, 1, true));
    }
}
