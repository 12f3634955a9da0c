//! `wait`: until a container is not running, exits next, or is removed. Woken, not by
//! polling, when the run's init or shim ends (pidfds) and when this engine changes a
//! container (a start, a removal: [`ContainerService::emit`] wakes every wait). Between
//! the init's end and the shim's exit record (the shim drains the output, then writes it)
//! it looks again after 1, 2, 4 … ms; a slow tick remains for the caller going away and
//! for changes no process end or event tells of. The engine's exit watcher
//! (`watch_exits`) is woken the same way.

use std::collections::HashMap;
use std::time::Duration;

use berth_host::watch::{wait_any, ProcWatch, Wakeup};
use berth_runtime::shim::ShimState;

use super::ContainerService;
use crate::record::*;

/// What a wait waits for (docker's `condition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    /// Not running now: a created or exited container returns at once.
    NotRunning,
    /// The exit after this wait began (a container that never started counts its first).
    NextExit,
    /// The container's removal; with `--rm` this waiter removes it itself.
    Removed,
}

/// How often a wait looks again without a file event.
const TICK: Duration = Duration::from_millis(100);

/// A registered wait: what counts as "next" was decided when it began.
pub struct Waiter {
    svc: ContainerService,
    rec: ContainerRecord,
    condition: WaitCondition,
    start: Status,
}

impl ContainerService {
    /// Registers a wait. With [`WaitCondition::Removed`] on a `--rm` container this waiter
    /// is the one that removes it, once it has the exit code (otherwise the shim would
    /// remove it first and the code would be lost).
    pub fn begin_wait(&self, rec: &ContainerRecord, condition: WaitCondition) -> Waiter {
        if condition == WaitCondition::Removed && rec.host.auto_remove {
            let _ = self.mark_attached(rec);
        }
        Waiter {
            svc: self.clone(),
            rec: rec.clone(),
            condition,
            start: self.status(rec),
        }
    }
}

impl Waiter {
    /// Blocks until the condition holds and returns the exit code (0 for a container that
    /// never ran or was removed before it exited); `None` once `gone()` says the caller
    /// left.
    pub fn wait(self, gone: impl Fn() -> bool) -> Option<i32> {
        let (svc, rec) = (&self.svc, &self.rec);
        let p = svc.paths(&rec.id);
        // Registered before the first look, so a change between the look and the sleep
        // wakes it.
        let wakeup = svc.changes.waiter();
        let mut run = RunWatch::default();
        let before = match &self.start {
            Status::Exited { finished_at, .. } => Some(finished_at.clone()),
            _ => None,
        };
        let mut seen_exit: Option<i32> = None;
        loop {
            if gone() {
                return None;
            }
            if !p.config().exists() {
                return Some(seen_exit.unwrap_or(0));
            }
            let st = svc.status(rec);
            let exited_now = match &st {
                Status::Exited {
                    code, finished_at, ..
                } => {
                    let fresh = before.as_deref() != Some(finished_at.as_str());
                    match self.condition {
                        // An exit from before the wait is not the next one; for
                        // `Removed` any exit counts (the removal is what is awaited).
                        WaitCondition::NextExit if !fresh && !matches!(self.start, Status::Created) => None,
                        _ => Some((*code, finished_at.clone())),
                    }
                }
                Status::Created if self.condition == WaitCondition::NotRunning => Some((0, String::new())),
                // Nothing more will happen to a dead container: its last exit, if any.
                Status::Dead { .. } => Some(
                    berth_runtime::shim::read_exit(&p.shim())
                        .ok()
                        .flatten()
                        .map(|e| (e.exit_code, e.finished_at))
                        .unwrap_or((0, String::new())),
                ),
                _ => None,
            };
            if let Some((code, finished_at)) = exited_now {
                if !finished_at.is_empty() {
                    svc.announce_exit(rec, code, &finished_at);
                }
                if self.condition != WaitCondition::Removed {
                    return Some(code);
                }
                if seen_exit.is_none() && rec.host.auto_remove {
                    // Attached clients first get the last output (it may be served from
                    // the log, which goes with the container), for up to 5 s. No need to
                    // wait for the shim: `remove` takes turns with its cleanup.
                    let until = std::time::Instant::now() + Duration::from_secs(5);
                    while svc.output_read(&rec.id) && std::time::Instant::now() < until && !gone() {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    let _ = svc.remove(&rec.id, true, true);
                }
                seen_exit = Some(code);
            }
            let state = match st {
                Status::Running { .. } | Status::Paused { .. } => {
                    berth_runtime::shim::read_state(&p.shim()).ok().flatten()
                }
                _ => None,
            };
            run.pause(state.as_ref(), wakeup.as_ref(), TICK);
        }
    }
}

/// The processes of one run that a wait sleeps on: its init and its shim, each until it
/// has ended.
#[derive(Default)]
pub(crate) struct RunWatch {
    /// (shim, init) of the run watched.
    pids: Option<(i32, i32)>,
    procs: Vec<ProcWatch>,
    /// Looks since the init ended without the exit recorded.
    settling: u32,
}

impl RunWatch {
    /// Sleeps until the running `state` (none: not running) may have changed: its init or
    /// shim ended, `wakeup` was woken, or `tick` passed. Once the init has ended the exit
    /// record is close: the next looks come after 1, 2, 4 … ms (at most `tick`).
    pub(crate) fn pause(&mut self, state: Option<&ShimState>, wakeup: Option<&Wakeup>, tick: Duration) {
        let Some(s) = state else {
            let _ = wait_any(&[], wakeup, tick);
            return;
        };
        if self.pids != Some((s.shim_pid, s.container_pid)) {
            self.pids = Some((s.shim_pid, s.container_pid));
            self.procs = [s.container_pid, s.shim_pid]
                .into_iter()
                .filter_map(ProcWatch::open)
                .collect();
            self.settling = 0;
        }
        let timeout = if self.procs.len() < 2 {
            // The init has ended (or could not be watched): the record comes soon.
            self.settling += 1;
            tick.min(Duration::from_millis(1 << self.settling.min(7)))
        } else {
            tick
        };
        let procs: Vec<&ProcWatch> = self.procs.iter().collect();
        if let Ok(ended) = wait_any(&procs, wakeup, timeout) {
            let mut i = 0;
            self.procs.retain(|_| {
                i += 1;
                !ended.contains(&(i - 1))
            });
        }
    }
}

impl ContainerService {
    /// Announces `die` for exits no wait or stop saw (a container that ended on its own,
    /// a restart policy's run) since this call, woken by the runs' processes ending and by
    /// this service's changes. Returns once `stop()` says so; meant for a thread of its own
    /// (it may sleep up to a second).
    ///
    /// Its first look waits until `wanted()` (someone follows the events) or a second has
    /// passed: a command's engine, gone sooner, never looks. An exit in that second is still
    /// announced (it finished after this call began). Wake it with [`Self::wake_waiters`]
    /// when `wanted()` changes.
    pub fn watch_exits(&self, stop: &dyn Fn() -> bool, wanted: &dyn Fn() -> bool) {
        let since = berth_runtime::logs::format_time(time::OffsetDateTime::now_utc());
        let wakeup = self.changes.waiter();
        let begun = std::time::Instant::now();
        while !wanted() && !stop() {
            let Some(left) = Duration::from_secs(1).checked_sub(begun.elapsed()) else {
                break;
            };
            let _ = wait_any(&[], wakeup.as_ref(), left);
        }
        // Per container: running at the last look, and the finish time of its last exit
        // (one not seen before is news if it ended after `since`; the announced set keeps
        // a wait's announcement from being repeated).
        let mut known: HashMap<String, (bool, String)> = HashMap::new();
        // Per container with a healthcheck: the time of the last verdict change announced
        // (changes before this watcher began are old news).
        let mut verdicts: HashMap<String, String> = HashMap::new();
        while !stop() {
            let mut next = HashMap::new();
            let mut procs = Vec::new();
            // A run whose init ended and whose exit is not recorded yet: look again soon.
            let mut settling = false;
            for rec in self.records().unwrap_or_default() {
                let st = self.status(&rec);
                let finished = match &st {
                    Status::Exited {
                        code, finished_at, ..
                    } => {
                        let new_exit = match known.get(&rec.id) {
                            Some((running, f)) => *running || f != finished_at,
                            None => finished_at.as_str() > since.as_str(),
                        };
                        if new_exit {
                            self.announce_exit(&rec, *code, finished_at);
                        }
                        finished_at.clone()
                    }
                    _ => String::new(),
                };
                if st.is_running() && known.get(&rec.id).is_none_or(|(running, _)| !running) {
                    self.announce_on_host(&rec);
                }
                if st.is_running() {
                    if let Some(h) = self.health(&rec) {
                        let seen = verdicts.entry(rec.id.clone()).or_insert_with(|| since.clone());
                        let fresh: Vec<_> = h.changes.iter().filter(|c| c.at > *seen).cloned().collect();
                        for c in fresh {
                            self.emit(
                                berth_events::Action::HealthStatus {
                                    healthy: c.status == "healthy",
                                },
                                &rec,
                            );
                            *seen = c.at;
                        }
                    }
                    if let Ok(Some(s)) = berth_runtime::shim::read_state(&self.paths(&rec.id).shim()) {
                        // A zombie init's pidfd is ready at once: not one to sleep on.
                        let init = berth_host::process::alive(s.container_pid)
                            .then(|| ProcWatch::open(s.container_pid))
                            .flatten();
                        match init {
                            Some(w) => procs.push(w),
                            None => settling = true,
                        }
                        procs.extend(ProcWatch::open(s.shim_pid));
                    }
                }
                next.insert(rec.id.clone(), (st.is_running(), finished));
            }
            known = next;
            let timeout = if settling {
                Duration::from_millis(2)
            } else {
                Duration::from_secs(1)
            };
            let procs: Vec<&ProcWatch> = procs.iter().collect();
            let _ = wait_any(&procs, wakeup.as_ref(), timeout);
        }
    }
}
