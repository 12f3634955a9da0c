//! Paths on the link (and on a machine's kernel command line) as hex of their bytes, so
//! spaces, newlines and non-UTF-8 names pass through a line-based protocol unchanged.
//!
//! A watch of a shared folder is the stream `watch HEXPATH`; the host answers `ok`, then
//! one line `HEXPATH SECS NSECS` per path changed below it, with its modification time on
//! the host (so the guest, setting that time, never writes back a stale one).

use std::path::{Path, PathBuf};

/// The hex of a path's bytes.
pub fn encode(path: &Path) -> String {
    hex::encode(path.as_os_str().as_encoded_bytes())
}

/// The absolute path whose bytes `hex` spells; `None` for bad hex or a relative path.
pub fn decode(text: &str) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    let bytes = hex::decode(text.trim()).ok()?;
    let p = PathBuf::from(std::ffi::OsString::from_vec(bytes));
    p.is_absolute().then_some(p)
}

/// The line telling that `path` changed and has the modification time `secs`.`nsecs`.
pub fn changed_line(path: &Path, secs: i64, nsecs: i64) -> String {
    format!("{} {secs} {nsecs}\n", encode(path))
}

/// A [`changed_line`] (without its newline) read back.
pub fn parse_changed(line: &str) -> Option<(PathBuf, i64, i64)> {
    let mut w = line.split_whitespace();
    let path = decode(w.next()?)?;
    let secs = w.next()?.parse().ok()?;
    let nsecs: i64 = w.next()?.parse().ok()?;
    (w.next().is_none() && (0..1_000_000_000).contains(&nsecs)).then_some((path, secs, nsecs))
}

/// The target of a stream that watches `dir`.
pub fn watch_target(dir: &Path) -> String {
    format!("watch {}", encode(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip_through_hex() {
        for p in ["/home/ann/my app/app.py", "/tmp/x\ny", "/"] {
            let p = Path::new(p);
            assert_eq!(decode(&encode(p)).as_deref(), Some(p));
        }
        assert_eq!(encode(Path::new("/root")), "2f726f6f74");
        assert_eq!(watch_target(Path::new("/tmp")), "watch 2f746d70");
        assert_eq!(decode("zz"), None);
        assert_eq!(decode("2f7"), None);
        assert_eq!(decode("6161"), None, "relative");
        let l = changed_line(Path::new("/a b"), 1_764_720_000, 5);
        assert_eq!(l, "2f612062 1764720000 5\n");
        assert_eq!(
            parse_changed(l.trim_end()),
            Some((PathBuf::from("/a b"), 1_764_720_000, 5))
        );
        assert_eq!(parse_changed("2f61 1"), None);
        assert_eq!(parse_changed("2f61 1 1000000000"), None);
    }
}
