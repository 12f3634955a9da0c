//! Healthchecks: docker's `Healthcheck` settings (from the image's HEALTHCHECK and the
//! create request), the checks themselves, and the state they leave in
//! `ROOT/containers/<id>/health.json` (docker's `State.Health`).
//!
//! The checks run in the container's supervisor (see `supervisor.rs`), which lives exactly as
//! long as the run: they go on with no engine running, and stop with the container. Engines
//! read the file; their exit watcher turns a change of status into `health_status` events.

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::{ContainerError, ContainerService, ExecOptions};

/// docker's `Config.Healthcheck`: `Test` is `["NONE"]`, `["CMD", args…]` or
/// `["CMD-SHELL", command]`; durations are nanoseconds, 0 meaning docker's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthConfig {
    pub test: Vec<String>,
    #[serde(skip_serializing_if = "is_zero")]
    pub interval: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub timeout: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub start_period: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub start_interval: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub retries: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// docker's defaults: every 30 s, 30 s to answer, 3 failures in a row make it unhealthy.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: u32 = 3;
/// What docker keeps of a check's output, and how many results.
const MAX_OUTPUT: usize = 4096;
const MAX_LOG: usize = 5;

fn nanos(n: i64, default: Duration) -> Duration {
    if n > 0 {
        Duration::from_nanos(n as u64)
    } else {
        default
    }
}

impl HealthConfig {
    /// The container's settings over the image's, as docker merges them: an empty `Test`
    /// and zero fields are taken from the image.
    pub fn merged(container: Option<&HealthConfig>, image: Option<&HealthConfig>) -> Option<HealthConfig> {
        match (container, image) {
            (None, i) => i.cloned(),
            (Some(c), None) => Some(c.clone()),
            (Some(c), Some(i)) => {
                let pick = |a: i64, b: i64| if a != 0 { a } else { b };
                Some(HealthConfig {
                    test: if c.test.is_empty() {
                        i.test.clone()
                    } else {
                        c.test.clone()
                    },
                    interval: pick(c.interval, i.interval),
                    timeout: pick(c.timeout, i.timeout),
                    start_period: pick(c.start_period, i.start_period),
                    start_interval: pick(c.start_interval, i.start_interval),
                    retries: pick(c.retries, i.retries),
                })
            }
        }
    }

    /// Whether there is a check to run (not absent, not `NONE`).
    pub fn enabled(&self) -> bool {
        matches!(self.test.first().map(String::as_str), Some("CMD" | "CMD-SHELL")) && self.test.len() > 1
    }

    /// The command a check runs in the container.
    fn command(&self) -> Vec<String> {
        match self.test.first().map(String::as_str) {
            Some("CMD-SHELL") => vec!["/bin/sh".into(), "-c".into(), self.test[1..].join(" ")],
            _ => self.test[1..].to_vec(),
        }
    }

    /// Refuses what docker refuses: negative durations, durations under 1 ms, and a
    /// test that is neither NONE, CMD nor CMD-SHELL.
    pub fn check(&self) -> Result<(), ContainerError> {
        let bad = |m: String| Err(ContainerError::InvalidArgument(m));
        for (what, n) in [
            ("interval", self.interval),
            ("timeout", self.timeout),
            ("start period", self.start_period),
            ("start interval", self.start_interval),
        ] {
            if n < 0 || (n > 0 && n < 1_000_000) {
                return bad(format!(
                    "healthcheck {what} must be at least 1ms — e.g. --health-{}=5s",
                    what.replace(' ', "-")
                ));
            }
        }
        if self.retries < 0 {
            return bad("healthcheck retries must not be negative — e.g. --health-retries=3".into());
        }
        match self.test.first().map(String::as_str) {
            None | Some("NONE") => Ok(()),
            Some("CMD" | "CMD-SHELL") if self.test.len() > 1 => Ok(()),
            Some(other) => bad(format!(
                "healthcheck test must start with NONE, CMD or CMD-SHELL, not {other:?} — e.g. [\"CMD-SHELL\", \"curl -f http://localhost/\"]"
            )),
        }
    }
}

/// docker's `State.Health`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthState {
    /// `starting`, `healthy` or `unhealthy`.
    pub status: String,
    pub failing_streak: u32,
    pub log: Vec<HealthResult>,
    /// The last verdict changes (to healthy or unhealthy), oldest first, so an engine that
    /// looks now and then announces each one (not part of docker's `State.Health`).
    #[serde(default)]
    pub changes: Vec<HealthChange>,
}

/// A change of verdict: when (RFC 3339 with nanoseconds) and to what.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthChange {
    pub at: String,
    pub status: String,
}

/// One check: when it ran, its exit code (-1: it could not run or timed out) and output.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthResult {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

pub(crate) fn state_path(container_dir: &Path) -> PathBuf {
    container_dir.join("health.json")
}

/// The health of a container's current run, if it has a check.
pub(crate) fn read_state(container_dir: &Path) -> Option<HealthState> {
    serde_json::from_slice(&std::fs::read(state_path(container_dir)).ok()?).ok()
}

fn write_state(container_dir: &Path, st: &HealthState) {
    let path = state_path(container_dir);
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec(st).unwrap_or_default();
    if std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .is_err()
    {
        let _ = std::fs::remove_file(&tmp);
    }
}

impl ContainerService {
    /// docker's `State.Health` of a container with a healthcheck: what its checks found in
    /// this (or the last) run, `starting` before the first.
    pub fn health(&self, rec: &crate::ContainerRecord) -> Option<HealthState> {
        rec.config.healthcheck.as_ref().filter(|h| h.enabled())?;
        Some(
            read_state(&self.paths(&rec.id).dir).unwrap_or_else(|| HealthState {
                status: "starting".into(),
                ..HealthState::default()
            }),
        )
    }

    /// Runs container `id`'s healthcheck for as long as its init (`init_pid`) lives: status
    /// `starting` first, `healthy` after a check that exits 0, `unhealthy` after `retries`
    /// failures in a row (failures inside the start period do not count). Called on a
    /// thread of the container's supervisor; returns at once when the container has no
    /// check.
    pub fn monitor_health(&self, id: &str, init_pid: i32) {
        let Ok(rec) = self.find(id) else { return };
        let Some(cfg) = rec.config.healthcheck.clone().filter(HealthConfig::enabled) else {
            return;
        };
        let dir = self.paths(&rec.id).dir;
        let mut st = HealthState {
            status: "starting".into(),
            ..HealthState::default()
        };
        write_state(&dir, &st);
        let began = Instant::now();
        let start_period = nanos(cfg.start_period, Duration::ZERO);
        let retries = if cfg.retries > 0 {
            cfg.retries as u32
        } else {
            DEFAULT_RETRIES
        };
        let timeout = nanos(cfg.timeout, DEFAULT_TIMEOUT);
        loop {
            let in_start = began.elapsed() < start_period;
            let pause = if in_start && cfg.start_interval > 0 {
                nanos(cfg.start_interval, DEFAULT_START_INTERVAL)
            } else {
                nanos(cfg.interval, DEFAULT_INTERVAL)
            };
            std::thread::sleep(pause);
            if !berth_host::process::alive(init_pid) {
                return;
            }
            let in_start = began.elapsed() < start_period;
            let result = self.run_check(&rec.id, &cfg.command(), timeout);
            let before = st.status.clone();
            if !berth_host::process::alive(init_pid) {
                return;
            }
            if result.exit_code == 0 {
                st.status = "healthy".into();
                st.failing_streak = 0;
            } else if !in_start || st.status != "starting" {
                st.failing_streak += 1;
                if st.failing_streak >= retries {
                    st.status = "unhealthy".into();
                }
            }
            if st.status != before {
                st.changes.push(HealthChange {
                    // Fixed width, so that times compare as text.
                    at: berth_runtime::logs::format_time(time::OffsetDateTime::now_utc()),
                    status: st.status.clone(),
                });
                if st.changes.len() > MAX_LOG {
                    st.changes.remove(0);
                }
            }
            st.log.push(result);
            if st.log.len() > MAX_LOG {
                st.log.remove(0);
            }
            write_state(&dir, &st);
        }
    }

    /// One check: the command with stdout and stderr on one pipe, killed after `timeout`.
    fn run_check(&self, id: &str, cmd: &[String], timeout: Duration) -> HealthResult {
        let start = crate::service::now();
        let (code, output) = match self.spawn_check(id, cmd) {
            Ok((pid, reader)) => collect(pid, reader, timeout),
            Err(e) => (-1, e.to_string()),
        };
        HealthResult {
            start,
            end: crate::service::now(),
            exit_code: code,
            output,
        }
    }

    fn spawn_check(&self, id: &str, cmd: &[String]) -> Result<(i32, OwnedFd), ContainerError> {
        let io = |e: nix::Error| ContainerError::io("cannot make a pipe for the healthcheck")(e.into());
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io)?;
        let w2 = w
            .try_clone()
            .map_err(ContainerError::io("cannot make a pipe for the healthcheck"))?;
        let opts = ExecOptions {
            cmd: cmd.to_vec(),
            ..ExecOptions::default()
        };
        let pid = self.exec_with(
            id,
            &opts,
            berth_runtime::Stdio::Fds {
                stdin: None,
                stdout: w,
                stderr: w2,
            },
        )?;
        Ok((pid, r))
    }
}

/// Reads a check's output until it ends or `timeout` passes (then it is killed, as docker
/// does), and its exit code (-1 for a timeout).
fn collect(pid: i32, reader: OwnedFd, timeout: Duration) -> (i32, String) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut file = std::fs::File::from(reader);
    let mut timed_out = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            timed_out = true;
            break;
        }
        let ms = PollTimeout::try_from(left.as_millis().min(60_000) as i32).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
        let mut buf = [0u8; 4096];
        match file.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if out.len() < MAX_OUTPUT {
                    out.extend_from_slice(&buf[..n.min(MAX_OUTPUT - out.len())]);
                }
            }
        }
    }
    if timed_out {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
    let code = berth_host::process::wait_child(pid)
        .map(berth_host::process::ChildExit::code)
        .unwrap_or(-1);
    let mut text = String::from_utf8_lossy(&out).into_owned();
    if timed_out {
        text = format!("Health check exceeded timeout ({}s)", timeout.as_secs_f64());
        return (-1, text);
    }
    (code, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hc(test: &[&str], interval: i64, retries: i64) -> HealthConfig {
        HealthConfig {
            test: test.iter().map(|s| s.to_string()).collect(),
            interval,
            retries,
            ..HealthConfig::default()
        }
    }

    #[test]
    fn the_container_s_settings_win_and_fill_in_from_the_image() {
        let image = hc(&["CMD-SHELL", "wget -q localhost"], 1_000_000_000, 3);
        let user = hc(&[], 0, 5);
        let m = HealthConfig::merged(Some(&user), Some(&image)).unwrap();
        assert_eq!(m.test, image.test);
        assert_eq!((m.interval, m.retries), (1_000_000_000, 5));
        let none = hc(&["NONE"], 0, 0);
        let m = HealthConfig::merged(Some(&none), Some(&image)).unwrap();
        assert!(!m.enabled(), "--no-healthcheck disables the image's check");
        assert_eq!(HealthConfig::merged(None, Some(&image)), Some(image.clone()));
        assert_eq!(HealthConfig::merged(None, None), None);
        assert_eq!(image.command(), ["/bin/sh", "-c", "wget -q localhost"]);
        assert_eq!(hc(&["CMD", "true", "x"], 0, 0).command(), ["true", "x"]);
    }

    #[test]
    fn docker_s_json_shape_and_what_is_refused() {
        let v: HealthConfig =
            serde_json::from_str(r#"{"Test":["CMD","true"],"Interval":2000000000,"Retries":2}"#).unwrap();
        assert_eq!((v.interval, v.retries, v.timeout), (2_000_000_000, 2, 0));
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"Test":["CMD","true"],"Interval":2000000000,"Retries":2}"#
        );
        assert!(v.check().is_ok());
        assert!(hc(&["CMD"], 0, 0).check().is_err());
        assert!(hc(&["RUN", "x"], 0, 0).check().is_err());
        assert!(hc(&["CMD", "x"], 5, 0).check().is_err(), "under 1ms");
        assert!(hc(&["CMD", "x"], 0, -1).check().is_err());
    }
}
