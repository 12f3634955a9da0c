//! Waiting instead of polling, for what the engine waits on: processes it did not start
//! (a container's init and its shim: pidfds) and changes made in this process (a start, a
//! removal: an eventfd per waiter, woken by [`Wakeups::wake_all`]).
//!
//! Both close at once. inotify was used here before, but closing an inotify instance
//! that holds a watch waits for an SRCU grace period (15 ms on a 2-core VM), and every
//! command paid that at its exit and in each wait (measured in BENCHMARKS.md, "Session 8").

use std::io;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use rustix::event::{eventfd, poll, EventfdFlags, PollFd, PollFlags, Timespec};
use rustix::process::{pidfd_open, Pid, PidfdFlags};

/// A process to wait for that this process need not be the parent of (a pidfd).
pub struct ProcWatch {
    fd: OwnedFd,
}

impl ProcWatch {
    /// `None` when there is no such process (or the kernel has no pidfds: before 5.3).
    /// A zombie can be opened, and counts as ended.
    pub fn open(pid: i32) -> Option<ProcWatch> {
        let pid = Pid::from_raw(pid)?;
        pidfd_open(pid, PidfdFlags::empty())
            .ok()
            .map(|fd| ProcWatch { fd })
    }
}

/// The waiters of one process's changes; each [`Wakeups::waiter`] is woken by every
/// [`Wakeups::wake_all`] after it was made.
#[derive(Clone, Default)]
pub struct Wakeups {
    waiters: Arc<Mutex<Vec<Weak<OwnedFd>>>>,
}

/// One waiter's end of [`Wakeups`]: wakes [`wait_any`] once per `wake_all` (or several
/// `wake_all`s before it looked).
pub struct Wakeup {
    fd: Arc<OwnedFd>,
}

impl Wakeups {
    /// A waiter woken by the `wake_all`s from now on. `None` only if the system is out of
    /// file descriptors (then the waiter's own timeout is what wakes it).
    pub fn waiter(&self) -> Option<Wakeup> {
        let fd = Arc::new(eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).ok()?);
        let mut waiters = self
            .waiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        waiters.retain(|w| w.strong_count() > 0);
        waiters.push(Arc::downgrade(&fd));
        Some(Wakeup { fd })
    }

    /// Wakes every waiter that exists now.
    pub fn wake_all(&self) {
        let waiters = self
            .waiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for fd in waiters.iter().filter_map(Weak::upgrade) {
            let _ = rustix::io::write(&*fd, &1u64.to_ne_bytes());
        }
    }
}

/// Blocks until one of `procs` has ended, `wakeup` was woken or `timeout` passed, and
/// returns the indexes of the processes that have ended (none on a wake-up or timeout).
/// An ended process stays ended: drop it before waiting again.
pub fn wait_any(procs: &[&ProcWatch], wakeup: Option<&Wakeup>, timeout: Duration) -> io::Result<Vec<usize>> {
    let t = Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    let mut fds: Vec<PollFd> = procs.iter().map(|p| PollFd::new(&p.fd, PollFlags::IN)).collect();
    if let Some(w) = wakeup {
        fds.push(PollFd::new(&*w.fd, PollFlags::IN));
    }
    loop {
        match poll(&mut fds, Some(&t)) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
            Ok(_) => break,
        }
    }
    let ended = fds[..procs.len()]
        .iter()
        .enumerate()
        .filter(|(_, f)| !f.revents().is_empty())
        .map(|(i, _)| i)
        .collect();
    if let Some(w) = wakeup {
        // Take the count, so the next wait sleeps until the next wake_all.
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(&*w.fd, &mut buf);
    }
    Ok(ended)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::time::Instant;

    #[test]
    fn a_process_ending_wakes_the_waiter_at_once() {
        let mut child = Command::new("sleep").arg("0.2").spawn().unwrap();
        let long = Command::new("sleep").arg("30").spawn().unwrap();
        let w = ProcWatch::open(child.id() as i32).expect("pidfd of a live child");
        let other = ProcWatch::open(long.id() as i32).expect("pidfd of a live child");
        assert_eq!(
            wait_any(&[&other, &w], None, Duration::from_millis(20)).unwrap(),
            Vec::<usize>::new()
        );
        let t = Instant::now();
        assert_eq!(
            wait_any(&[&other, &w], None, Duration::from_secs(10)).unwrap(),
            vec![1]
        );
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "woken by the exit, not the timeout"
        );
        // Ended stays ended, reaped or not.
        assert_eq!(wait_any(&[&w], None, Duration::from_secs(10)).unwrap(), vec![0]);
        child.wait().unwrap();
        assert_eq!(wait_any(&[&w], None, Duration::from_secs(10)).unwrap(), vec![0]);
        let mut long = long;
        long.kill().unwrap();
        long.wait().unwrap();
        assert!(
            ProcWatch::open(long.id() as i32).is_none(),
            "a reaped process cannot be opened"
        );
    }

    #[test]
    fn wake_all_wakes_each_waiter_once_and_only_those_made_before() {
        let wakeups = Wakeups::default();
        let (a, b) = (wakeups.waiter().unwrap(), wakeups.waiter().unwrap());
        wakeups.wake_all();
        let late = wakeups.waiter().unwrap();
        for w in [&a, &b] {
            let t = Instant::now();
            wait_any(&[], Some(w), Duration::from_secs(10)).unwrap();
            assert!(t.elapsed() < Duration::from_secs(5), "woken, not timed out");
            let t = Instant::now();
            wait_any(&[], Some(w), Duration::from_millis(30)).unwrap();
            assert!(t.elapsed() >= Duration::from_millis(25), "one wake-up wakes once");
        }
        let t = Instant::now();
        wait_any(&[], Some(&late), Duration::from_millis(30)).unwrap();
        assert!(
            t.elapsed() >= Duration::from_millis(25),
            "made after the wake_all"
        );
        // A waiter from another thread.
        let w = wakeups.waiter().unwrap();
        let waker = wakeups.clone();
        let h = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            waker.wake_all();
        });
        let t = Instant::now();
        wait_any(&[], Some(&w), Duration::from_secs(10)).unwrap();
        assert!(t.elapsed() < Duration::from_secs(5));
        h.join().unwrap();
        drop((a, b, late, w));
        wakeups.waiter().unwrap();
        assert_eq!(
            wakeups.waiters.lock().unwrap().len(),
            1,
            "dropped waiters are forgotten"
        );
    }
}
