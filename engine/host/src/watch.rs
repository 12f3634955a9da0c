//! Waiting for a directory to change instead of polling it: inotify on a few directories.
//! The engine waits this way for a container's exit record (the shim writes
//! `shim/exit.json` by rename) and for a container's directory to go away.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::fs::inotify::{self, CreateFlags, WatchFlags};

/// A watch on some directories: entries created, renamed in or out, written or removed,
/// and the directory itself removed or renamed.
pub struct DirWatch {
    fd: OwnedFd,
}

impl DirWatch {
    /// Watches each of `dirs` that exists (one that does not is skipped: there is nothing
    /// in it to change).
    pub fn new(dirs: &[&Path]) -> io::Result<DirWatch> {
        let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)?;
        let what = WatchFlags::CREATE
            | WatchFlags::MOVED_TO
            | WatchFlags::MOVED_FROM
            | WatchFlags::DELETE
            | WatchFlags::CLOSE_WRITE
            | WatchFlags::DELETE_SELF
            | WatchFlags::MOVE_SELF;
        for d in dirs {
            match inotify::add_watch(&fd, *d, what) {
                Ok(_) => {}
                Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(DirWatch { fd })
    }

    /// Blocks until something changed in a watched directory (true) or `timeout` passed
    /// (false). Takes every pending change, so the next call waits for a new one.
    pub fn wait(&self, timeout: Duration) -> bool {
        let t = Timespec {
            tv_sec: timeout.as_secs() as i64,
            tv_nsec: i64::from(timeout.subsec_nanos()),
        };
        let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
        let ready = loop {
            match poll(&mut fds, Some(&t)) {
                Err(rustix::io::Errno::INTR) => continue,
                Ok(n) => break n > 0,
                Err(_) => return false,
            }
        };
        if ready {
            let mut buf = [MaybeUninit::uninit(); 4096];
            let mut events = inotify::Reader::new(&self.fd, &mut buf);
            while events.next().is_ok() {}
        }
        ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_rename_into_the_directory_wakes_the_waiter_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let watch = DirWatch::new(&[dir.path()]).unwrap();
        assert!(!watch.wait(Duration::from_millis(20)), "nothing changed yet");
        let d = dir.path().to_path_buf();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            std::fs::write(d.join(".exit.json.tmp"), b"{}").unwrap();
            std::fs::rename(d.join(".exit.json.tmp"), d.join("exit.json")).unwrap();
        });
        let t = Instant::now();
        assert!(watch.wait(Duration::from_secs(10)));
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "woken by the change, not the timeout"
        );
        writer.join().unwrap();
    }

    #[test]
    fn the_directory_going_away_wakes_the_waiter_and_missing_ones_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("container");
        std::fs::create_dir(&sub).unwrap();
        let missing = dir.path().join("missing");
        let watch = DirWatch::new(&[&sub, &missing]).unwrap();
        std::fs::remove_dir(&sub).unwrap();
        assert!(watch.wait(Duration::from_secs(10)));
    }
}
