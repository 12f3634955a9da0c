//! The guest's end of file events for shared folders (the host's end is berth-machine's
//! `watch`): for each bind source of a running container that lies in a share, a stream
//! `watch HEXPATH`; for each path the host says changed, a touch here, so this kernel
//! raises the inotify event that 9p does not (Flask's reloader with watchdog, nodemon and
//! webpack in a container then see an edit made on the host).

use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_link::Link;
use tokio::io::AsyncBufReadExt;

/// Asks the host to watch `dir` and touches what it reports, until the returned task is
/// aborted (which closes the stream, and the host stops watching).
pub async fn watch(link: &Link, dir: &Path) -> Result<tokio::task::AbortHandle, String> {
    let stream = link
        .open(&berth_link::paths::watch_target(dir))
        .await
        .map_err(|e| e.to_string())?;
    let (mine, theirs) = tokio::io::duplex(64 * 1024);
    tokio::spawn(stream.splice(theirs));
    let mut lines = tokio::io::BufReader::new(mine).lines();
    match tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await {
        Ok(Ok(Some(l))) if l == "ok" => {}
        Ok(Ok(Some(l))) => return Err(l),
        _ => return Err("the machine's host did not answer".into()),
    }
    let task = tokio::spawn(async move {
        while let Ok(Some(l)) = lines.next_line().await {
            if let Some((p, secs, nsecs)) = berth_link::paths::parse_changed(&l) {
                let _ = tokio::task::spawn_blocking(move || touch(&p, secs, nsecs)).await;
            }
        }
    });
    Ok(task.abort_handle())
}

/// Sets `path`'s modification time (alone) to `secs`.`nsecs`, its time on the host: nothing
/// changes there, but this kernel raises IN_MODIFY for it, to watchers of the file and of
/// its folder (with its name). The time comes from the host because this side's may be
/// cached and stale (virtiofs keeps attributes for a second): setting a stale one would
/// turn the host's file back in time. (Opening the file for writing would raise
/// IN_CLOSE_WRITE too, but the host would see that close and report it again.)
pub fn touch(path: &Path, secs: i64, nsecs: i64) {
    use nix::sys::stat::{utimensat, UtimensatFlags};
    use nix::sys::time::TimeSpec;
    let _ = utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &TimeSpec::UTIME_OMIT,
        &TimeSpec::new(secs, nsecs),
        UtimensatFlags::NoFollowSymlink,
    );
}

/// The bind sources worth watching: those inside one of the machine's shares.
pub fn in_shares(dirs: &[PathBuf], shares: &[PathBuf]) -> Vec<PathBuf> {
    dirs.iter()
        .filter(|d| shares.iter().any(|s| d.starts_with(s)))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

    fn mtime(p: &Path) -> (i64, i64) {
        use std::os::unix::fs::MetadataExt;
        let md = std::fs::metadata(p).unwrap();
        (md.mtime(), md.mtime_nsec())
    }

    #[test]
    fn a_touch_raises_a_modify_event_and_changes_nothing() {
        let t = tempfile::tempdir().unwrap();
        let file = t.path().join("app.py");
        std::fs::write(&file, "print(1)").unwrap();
        let before = std::fs::metadata(&file).unwrap().modified().unwrap();
        let ino = Inotify::init(InitFlags::IN_NONBLOCK).unwrap();
        ino.add_watch(t.path(), AddWatchFlags::IN_ALL_EVENTS).unwrap();
        let (secs, nsecs) = mtime(&file);
        touch(&file, secs, nsecs);
        let ev = ino.read_events().expect("an event");
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert!(ev[0].mask.contains(AddWatchFlags::IN_MODIFY), "{ev:?}");
        assert_eq!(ev[0].name.as_deref(), Some(std::ffi::OsStr::new("app.py")));
        assert_eq!(std::fs::metadata(&file).unwrap().modified().unwrap(), before);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "print(1)");
        // A folder (the host reports a path that is gone as its folder).
        let dir_ino = Inotify::init(InitFlags::IN_NONBLOCK).unwrap();
        dir_ino.add_watch(t.path(), AddWatchFlags::IN_ALL_EVENTS).unwrap();
        let (secs, nsecs) = mtime(t.path());
        touch(t.path(), secs, nsecs);
        let ev = dir_ino.read_events().expect("an event on the folder");
        assert!(
            ev[0].mask.contains(AddWatchFlags::IN_MODIFY) && ev[0].name.is_none(),
            "{ev:?}"
        );
    }

    #[test]
    fn only_bind_sources_in_shares_are_watched() {
        let shares = [PathBuf::from("/root"), PathBuf::from("/tmp")];
        let dirs = [
            PathBuf::from("/root/app"),
            PathBuf::from("/srv"),
            PathBuf::from("/tmp"),
        ];
        assert_eq!(
            in_shares(&dirs, &shares),
            [PathBuf::from("/root/app"), PathBuf::from("/tmp")]
        );
    }
}
