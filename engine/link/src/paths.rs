//! Paths on the link (and on a machine's kernel command line) as hex of their bytes, so
//! spaces, newlines and non-UTF-8 names pass through a line-based protocol unchanged.
//!
//! A watch of a shared folder is the stream `watch HEXPATH`; the host answers `ok`, then
//! one line `HEXPATH` per path changed below it.

use std::path::{Path, PathBuf};

/// The hex of a path's bytes.
pub fn encode(path: &Path) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for b in path.as_os_str().as_encoded_bytes() {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The absolute path whose bytes `hex` spells; `None` for bad hex or a relative path.
pub fn decode(hex: &str) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    let hex = hex.trim();
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| hex.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect();
    let p = PathBuf::from(std::ffi::OsString::from_vec(bytes?));
    p.is_absolute().then_some(p)
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
    }
}
