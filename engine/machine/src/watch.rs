//! File events for a machine's shares. A folder shared over 9p raises no inotify events in
//! the guest when the host changes it, so a watcher in a container (Flask's reloader with
//! watchdog, nodemon, webpack) would never hear of an edit made on the host. The guest's
//! engine opens a stream `watch HEXPATH` for each bind source of a running container; the
//! host watches that tree with inotify and writes one line per changed path (hex, as the
//! kernel command line's shares are), and the guest touches that path so its own kernel
//! raises the event (berth-guest's `watch`); each line carries the path's modification time
//! on the host, which the guest sets. The host's first line is `ok` once its
//! watches are in place. Event-driven on both sides.
//!
//! Forwarded: a file written and closed, created, deleted or moved. Not forwarded: a bare
//! modification without a close, which is what the guest's touch (a set of the mtime)
//! makes here, so nothing loops.
//!
//! Linux hosts only (inotify); macOS's FSEvents is not written, there the stream is refused.

use std::path::{Path, PathBuf};

/// The most directories one watch follows (each is one inotify watch of the user's).
pub const MAX_DIRS: usize = 8192;

/// The line for a changed path: the path and its modification time now, or for a path that
/// is gone its folder's.
pub fn report(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let (p, md) = match std::fs::symlink_metadata(path) {
        Ok(md) => (path, md),
        Err(_) => {
            let parent = path.parent()?;
            (parent, std::fs::symlink_metadata(parent).ok()?)
        }
    };
    Some(berth_link::paths::changed_line(p, md.mtime(), md.mtime_nsec()))
}

/// Whether `path` lies in one of `shares` (the host watches nothing the guest cannot see).
pub fn allowed(path: &Path, shares: &[PathBuf]) -> bool {
    !path
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
        && shares.iter().any(|s| path.starts_with(s))
}

#[cfg(target_os = "linux")]
pub use imp::serve;

#[cfg(target_os = "linux")]
mod imp {
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};

    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
    use tokio::io::unix::AsyncFd;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use crate::asyncfd::Owned;

    fn flags() -> AddWatchFlags {
        AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_DONT_FOLLOW
    }

    struct Tree {
        fd: AsyncFd<Owned<Inotify>>,
        dirs: HashMap<WatchDescriptor, PathBuf>,
        full: bool,
    }

    impl Tree {
        /// Watches `path` and every directory below it (not following symlinks), up to
        /// [`super::MAX_DIRS`].
        fn add(&mut self, path: &Path) {
            let mut todo = vec![path.to_path_buf()];
            while let Some(dir) = todo.pop() {
                if self.dirs.len() >= super::MAX_DIRS {
                    if !self.full {
                        eprintln!(
                            "relay: watching the first {} folders of {} only",
                            super::MAX_DIRS,
                            path.display()
                        );
                        self.full = true;
                    }
                    return;
                }
                let Ok(wd) = self.fd.get_ref().0.add_watch(&dir, flags()) else {
                    continue;
                };
                if let Ok(entries) = std::fs::read_dir(&dir) {
                    for e in entries.flatten() {
                        if e.file_type().is_ok_and(|t| t.is_dir()) {
                            todo.push(e.path());
                        }
                    }
                }
                self.dirs.insert(wd, dir);
            }
        }
    }

    /// Watches `root` (a folder or one file) and writes a line on `stream` for each path
    /// changed below it, until the guest closes the stream.
    pub async fn serve(stream: berth_link::Stream, root: PathBuf) {
        let inotify = match Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC) {
            Ok(i) => i,
            Err(e) => return stream.refuse(&format!("cannot watch files here ({e})")).await,
        };
        let fd = match crate::asyncfd::register(inotify) {
            Ok(fd) => fd,
            Err(e) => return stream.refuse(&format!("cannot watch files here ({e})")).await,
        };
        let mut tree = Tree {
            fd,
            dirs: HashMap::new(),
            full: false,
        };
        tree.add(&root);
        let (mut mine, theirs) = tokio::io::duplex(64 * 1024);
        tokio::spawn(stream.splice(theirs));
        if mine.write_all(b"ok\n").await.is_err() {
            return;
        }
        let mut byte = [0u8; 1];
        loop {
            tokio::select! {
                ready = tree.fd.readable() => {
                    let Ok(mut ready) = ready else { break };
                    let events = match tree.fd.get_ref().0.read_events() {
                        Ok(ev) => ev,
                        Err(nix::errno::Errno::EAGAIN) => {
                            ready.clear_ready();
                            continue;
                        }
                        Err(_) => break,
                    };
                    let mut out = String::new();
                    for ev in events {
                        if ev.mask.contains(AddWatchFlags::IN_IGNORED) {
                            tree.dirs.remove(&ev.wd);
                            continue;
                        }
                        let Some(dir) = tree.dirs.get(&ev.wd).cloned() else { continue };
                        let path = match &ev.name {
                            Some(n) => dir.join(n),
                            None => dir,
                        };
                        let new_dir = ev.mask.contains(AddWatchFlags::IN_ISDIR)
                            && ev.mask.intersects(AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO);
                        if new_dir {
                            tree.add(&path);
                        }
                        if let Some(l) = super::report(&path) {
                            out.push_str(&l);
                        }
                    }
                    if !out.is_empty() && mine.write_all(out.as_bytes()).await.is_err() {
                        break;
                    }
                }
                // The guest closed the stream (the container's run ended) or the link went down.
                _ = mine.read(&mut byte) => break,
            }
        }
    }
}

/// On hosts without inotify: the guest is told in one sentence.
#[cfg(not(target_os = "linux"))]
pub async fn serve(stream: berth_link::Stream, _root: PathBuf) {
    stream
        .refuse("file events are forwarded from Linux hosts only")
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_in_the_shares_are_watched() {
        let shares = [PathBuf::from("/home/ann"), PathBuf::from("/tmp")];
        assert!(allowed(Path::new("/home/ann/app"), &shares));
        assert!(allowed(Path::new("/tmp"), &shares));
        assert!(!allowed(Path::new("/etc"), &shares));
        assert!(!allowed(Path::new("/home/annie"), &shares));
        assert!(!allowed(Path::new("/home/ann/../bob"), &shares));
    }

    /// Real inotify on a real tree, over a real link: what the guest hears of each change.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn changes_on_the_host_come_back_as_lines_and_the_guests_touch_does_not() {
        use berth_link::{Link, Side};
        use tokio::io::AsyncBufReadExt;
        let t = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(t.path()).unwrap();
        std::fs::create_dir(root.join("app")).unwrap();
        std::fs::write(root.join("app/app.py"), "v1").unwrap();
        let (h, g) = tokio::io::duplex(64 * 1024);
        let (hr, hw) = tokio::io::split(h);
        let (gr, gw) = tokio::io::split(g);
        let (_host, mut host_in) = Link::new(hr, hw, Side::Host);
        let (guest, _guest_in) = Link::new(gr, gw, Side::Guest);
        tokio::spawn(async move {
            while let Some((target, stream)) = host_in.next().await {
                let p = berth_link::paths::decode(target.strip_prefix("watch ").unwrap()).unwrap();
                tokio::spawn(serve(stream, p));
            }
        });
        let stream = guest.open(&berth_link::paths::watch_target(&root)).await.unwrap();
        let (mine, theirs) = tokio::io::duplex(64 * 1024);
        tokio::spawn(stream.splice(theirs));
        let mut lines = tokio::io::BufReader::new(mine).lines();
        async fn next(l: &mut tokio::io::Lines<tokio::io::BufReader<tokio::io::DuplexStream>>) -> PathBuf {
            let got = tokio::time::timeout(std::time::Duration::from_secs(5), l.next_line())
                .await
                .expect("a line within 5 s")
                .unwrap()
                .expect("the stream is open");
            if got == "ok" {
                return PathBuf::from("ok");
            }
            berth_link::paths::parse_changed(&got).expect("a changed line").0
        }
        assert_eq!(next(&mut lines).await, PathBuf::from("ok"));
        std::fs::write(root.join("app/app.py"), "v2").unwrap();
        assert_eq!(next(&mut lines).await, root.join("app/app.py"));
        // A set of the mtime (what the guest's touch makes) is not sent back.
        let f = std::fs::File::open(root.join("app/app.py")).unwrap();
        f.set_modified(std::time::SystemTime::now()).unwrap();
        std::fs::write(root.join("marker"), "").unwrap();
        let got = next(&mut lines).await;
        assert_eq!(got, root.join("marker"), "the touch of app.py came back");
        assert_eq!(
            next(&mut lines).await,
            root.join("marker"),
            "created, then closed after writing"
        );
        // A new folder is watched too.
        std::fs::create_dir(root.join("app/templates")).unwrap();
        assert_eq!(next(&mut lines).await, root.join("app/templates"));
        std::fs::write(root.join("app/templates/index.html"), "<p>").unwrap();
        assert_eq!(next(&mut lines).await, root.join("app/templates/index.html"));
        std::fs::remove_file(root.join("app/app.py")).unwrap();
        assert_eq!(next(&mut lines).await, root.join("app/templates/index.html"));
        // A path that is gone is reported as its folder.
        assert_eq!(next(&mut lines).await, root.join("app"));
    }
}
