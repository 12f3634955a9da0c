//! `wait`: until a container is not running, exits next, or is removed. Woken by the
//! shim's exit record and the container directory going away (inotify on both), not by
//! polling; a slow tick remains for what leaves no file behind (a shim killed with
//! SIGKILL) and for the caller going away. The engine's exit watcher (`watch_exits`) is
//! woken the same way.

use std::collections::HashMap;
use std::time::Duration;

use berth_host::watch::DirWatch;

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
        // Watch before the first look, so a change between the look and the sleep wakes it.
        let watch = DirWatch::new(&[&p.dir, &p.shim()]).ok();
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
            match &watch {
                Some(w) => {
                    w.wait(TICK);
                }
                None => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }
}

impl ContainerService {
    /// Announces `die` for exits no wait or stop saw (a container that ended on its own,
    /// a restart policy's run), woken by the shims' exit records. Returns once `stop()`
    /// says so; meant for a thread of its own (it may sleep up to a second).
    pub fn watch_exits(&self, stop: &dyn Fn() -> bool) {
        let containers = self.root.join("containers");
        // Per container: running at the last look, and the finish time of its last exit.
        let mut known: HashMap<String, (bool, String)> = HashMap::new();
        while !stop() {
            let recs = self.records().unwrap_or_default();
            // Watch first, then look: an exit between the two wakes the next wait.
            let shims: Vec<_> = recs.iter().map(|r| self.paths(&r.id).shim()).collect();
            let mut dirs: Vec<&std::path::Path> = shims.iter().map(|p| p.as_path()).collect();
            dirs.push(&containers);
            let watch = DirWatch::new(&dirs).ok();
            let mut next = HashMap::new();
            for rec in recs {
                let st = self.status(&rec);
                let finished = match &st {
                    Status::Exited {
                        code, finished_at, ..
                    } => {
                        let new_exit = known
                            .get(&rec.id)
                            .is_some_and(|(running, f)| *running || f != finished_at);
                        if new_exit {
                            self.announce_exit(&rec, *code, finished_at);
                        }
                        finished_at.clone()
                    }
                    _ => String::new(),
                };
                next.insert(rec.id.clone(), (st.is_running(), finished));
            }
            known = next;
            match &watch {
                Some(w) => {
                    w.wait(Duration::from_secs(1));
                }
                None => std::thread::sleep(Duration::from_millis(250)),
            }
        }
    }
}
