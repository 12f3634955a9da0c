//! `status`: a container's state, derived from what its shim left on disk (`state.json`,
//! `exit.json`) and from `/proc`, so any process finds running containers again.
//!
//! Reading ([`ContainerService::observe`]) and deciding ([`status_at`]) are apart: the
//! decision is a pure function of the facts read, and nothing here waits. A container
//! whose init is gone while its shim still runs is reported running until the shim has
//! recorded the exit — callers that wait for an exit (`wait`, `wait_exit`) are woken by
//! the init's end and look again until that record is there.

use berth_runtime::shim::{ExitStatus, ShimState};

use super::ContainerService;
use crate::record::*;

/// What was read about a container's run, in the order that makes the decision sound:
/// the exit record is read again after the shim was seen gone (a shim writes it before it
/// exits, so an exit still missing then will never come).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Observed {
    /// `shim/state.json`: absent until a start got the container running.
    pub state: Option<ShimState>,
    /// `shim/exit.json`.
    pub exit: Option<ExitStatus>,
    /// The init recorded in `state` still runs (same pid and start time, not a zombie).
    pub container_alive: bool,
    /// The shim recorded in `state` still runs.
    pub shim_alive: bool,
    /// The `paused` marker `pause` writes.
    pub paused: bool,
    /// The `oom` marker `cleanup` writes when the cgroup saw an OOM kill.
    pub oom_killed: bool,
    /// Why the container is dead (its record unreadable, its files missing, its last run
    /// not released), looked at only when no run is alive.
    pub dead: Option<String>,
}

/// docker's exit code for a container killed by SIGKILL: what a run that ended without a
/// record (power lost, shim killed) is reported as.
const KILLED: i32 = 137;

/// The status the facts in `obs` mean.
pub(crate) fn status_at(obs: Observed) -> Status {
    // A live run is what it is, whatever else is wrong; otherwise dead wins.
    let live = obs.state.is_some() && obs.exit.is_none() && (obs.container_alive || obs.shim_alive);
    if let (Some(reason), false) = (obs.dead, live) {
        return Status::Dead { reason };
    }
    let Some(s) = obs.state else {
        return Status::Created;
    };
    if let Some(e) = obs.exit {
        return Status::Exited {
            code: e.exit_code,
            started_at: s.started_at,
            finished_at: e.finished_at,
            oom_killed: obs.oom_killed,
        };
    }
    if obs.container_alive && obs.paused {
        return Status::Paused {
            pid: s.container_pid,
            started_at: s.started_at,
        };
    }
    if obs.container_alive || obs.shim_alive {
        // A gone init with a live shim: the shim is reaping it, draining its output and
        // writing the exit. Still running until that record exists (a guessed code here
        // once reached `docker run --rm`'s exit code).
        return Status::Running {
            pid: s.container_pid,
            started_at: s.started_at,
        };
    }
    // The container and its shim died without recording an exit (the machine lost power,
    // or someone killed the shim): report it as killed.
    Status::Exited {
        code: KILLED,
        started_at: s.started_at.clone(),
        finished_at: s.started_at,
        oom_killed: false,
    }
}

impl ContainerService {
    /// The container's status now. Never blocks: see [`status_at`].
    pub fn status(&self, rec: &ContainerRecord) -> Status {
        status_at(self.observe(rec))
    }

    /// Reads what [`status_at`] needs, and no more: `/proc` only while no exit is recorded,
    /// the markers only where they can change the answer.
    pub(crate) fn observe(&self, rec: &ContainerRecord) -> Observed {
        let p = self.paths(&rec.id);
        let shim = p.shim();
        let read_exit = || berth_runtime::shim::read_exit(&shim).ok().flatten();
        let mut obs = Observed {
            state: berth_runtime::shim::read_state(&shim).ok().flatten(),
            exit: read_exit(),
            ..Observed::default()
        };
        if let Some(s) = &obs.state {
            if obs.exit.is_none() {
                obs.container_alive = berth_runtime::shim::is_alive(s.container_pid, &s.started_at);
                if obs.container_alive {
                    obs.paused = p.dir.join("paused").exists();
                } else {
                    obs.shim_alive = berth_runtime::shim::shim_running(s.shim_pid);
                    if !obs.shim_alive {
                        // It may have written the exit and ended since the first read.
                        obs.exit = read_exit();
                    }
                }
            }
        }
        if obs.exit.is_some() {
            obs.oom_killed = p.dir.join("oom").exists();
        }
        let live = obs.exit.is_none() && (obs.container_alive || obs.shim_alive);
        if !live {
            obs.dead = dead_reason(rec, &p);
        }
        obs
    }
}

/// Why a container that runs no process cannot be used, if it cannot: its record could
/// not be read, releasing its last run failed (the `dead` marker `cleanup` writes), or its
/// root filesystem directory is gone (while the container's directory is still there: one
/// being removed is not dead).
fn dead_reason(rec: &ContainerRecord, p: &ContainerPaths) -> Option<String> {
    if let Some(d) = &rec.damage {
        return Some(d.clone());
    }
    if let Ok(why) = std::fs::read_to_string(p.dead()) {
        return Some(why.trim().to_string());
    }
    (p.dir.is_dir() && !p.rootfs().is_dir()).then(|| "its root filesystem directory is missing".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STARTED: &str = "2026-12-02T10:00:00.000000000Z";
    const FINISHED: &str = "2026-12-02T10:05:00.000000000Z";

    fn ran() -> Option<ShimState> {
        Some(ShimState {
            shim_pid: 100,
            container_pid: 101,
            started_at: STARTED.into(),
        })
    }

    fn exit(code: i32) -> Option<ExitStatus> {
        Some(ExitStatus {
            exit_code: code,
            finished_at: FINISHED.into(),
            signal: None,
        })
    }

    fn running() -> Status {
        Status::Running {
            pid: 101,
            started_at: STARTED.into(),
        }
    }

    #[test]
    fn never_started_is_created() {
        assert_eq!(status_at(Observed::default()), Status::Created);
        // An exit without a state (a start that failed after a previous run's files
        // were cleared) is still no run.
        let obs = Observed {
            exit: exit(1),
            ..Observed::default()
        };
        assert_eq!(status_at(obs), Status::Created);
    }

    #[test]
    fn a_live_init_is_running_or_paused() {
        let obs = Observed {
            state: ran(),
            container_alive: true,
            shim_alive: true,
            ..Observed::default()
        };
        assert_eq!(status_at(obs.clone()), running());
        let paused = Observed { paused: true, ..obs };
        assert_eq!(
            status_at(paused),
            Status::Paused {
                pid: 101,
                started_at: STARTED.into()
            }
        );
    }

    #[test]
    fn a_recorded_exit_gives_its_code() {
        let obs = Observed {
            state: ran(),
            exit: exit(3),
            oom_killed: true,
            ..Observed::default()
        };
        assert_eq!(
            status_at(obs),
            Status::Exited {
                code: 3,
                started_at: STARTED.into(),
                finished_at: FINISHED.into(),
                oom_killed: true,
            }
        );
    }

    #[test]
    fn the_exit_record_wins_over_liveness() {
        // Read after the liveness checks: a record there is the truth, whatever /proc said.
        let obs = Observed {
            state: ran(),
            exit: exit(0),
            container_alive: true,
            paused: true,
            ..Observed::default()
        };
        assert!(matches!(status_at(obs), Status::Exited { code: 0, .. }));
    }

    #[test]
    fn an_exit_being_recorded_is_still_running() {
        // The init is gone, the shim is writing exit.json: no guessed code, no waiting.
        let obs = Observed {
            state: ran(),
            container_alive: false,
            shim_alive: true,
            // A leftover marker does not make a dying container paused.
            paused: true,
            ..Observed::default()
        };
        assert_eq!(status_at(obs), running());
    }

    #[test]
    fn a_shim_dead_without_an_exit_record_means_killed() {
        let obs = Observed {
            state: ran(),
            ..Observed::default()
        };
        assert_eq!(
            status_at(obs),
            Status::Exited {
                code: 137,
                started_at: STARTED.into(),
                finished_at: STARTED.into(),
                oom_killed: false,
            }
        );
    }

    #[test]
    fn dead_wins_unless_a_run_is_alive() {
        let why = || Some("its record is damaged".to_string());
        let never_ran = Observed {
            dead: why(),
            ..Observed::default()
        };
        assert_eq!(
            status_at(never_ran),
            Status::Dead {
                reason: "its record is damaged".into()
            }
        );
        let exited = Observed {
            state: ran(),
            exit: exit(0),
            dead: why(),
            ..Observed::default()
        };
        assert!(matches!(status_at(exited), Status::Dead { .. }));
        // A run that is still alive is reported as it is (and can be stopped or killed).
        let alive = Observed {
            state: ran(),
            container_alive: true,
            shim_alive: true,
            dead: why(),
            ..Observed::default()
        };
        assert_eq!(status_at(alive), running());
    }
}
