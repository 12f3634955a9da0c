//! Host paths as clients write them, turned into paths the engine can mount.
//!
//! On Linux and macOS a bind's source is already a path the engine sees: a machine shares
//! the user's home and temp folders at the same paths. On Windows the lectures write
//! `-v %cd%:/app` (cmd), `-v ${PWD}:/app` (PowerShell) or `-v "$(pwd)":/app` (Git Bash),
//! which reach the engine as `C:\Users\me\app`, `C:/Users/me/app` or `/c/Users/me/app`.
//! A machine on Windows shares `C:\Users\me` at `/mnt/c/Users/me` (WSL's convention), and
//! [`HostPaths::Windows`] translates every spelling of a drive path to that form.
//!
//! The Windows translation is exercised by unit tests only: Berth's Windows host is not
//! built or run on the Linux machine where it is developed.

use crate::UnitError;

/// How the engine's clients spell host paths.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HostPaths {
    /// Linux or macOS: a path is used as it is; a Windows path is refused in one sentence.
    #[default]
    Native,
    /// A machine on a Windows host: drive paths become `/mnt/<drive>/…`.
    Windows,
}

/// Where a Windows host's drives appear inside its machine.
pub const DRIVES: &str = "/mnt";

impl HostPaths {
    /// The path the engine mounts for a bind source as a client wrote it.
    pub fn resolve(self, source: &str) -> Result<String, UnitError> {
        match (self, parse_windows(source, self == HostPaths::Windows)) {
            (_, None) => Ok(source.to_string()),
            (HostPaths::Native, Some(_)) => Err(UnitError::ForeignPath(source.to_string())),
            (HostPaths::Windows, Some(Err(why))) => Err(UnitError::WindowsPath {
                path: source.to_string(),
                why,
            }),
            (HostPaths::Windows, Some(Ok((drive, rest)))) => Ok(guest_drive_path(drive, &rest)),
        }
    }

    /// Whether `source` (as [`resolve`](Self::resolve) takes it) names a host path rather
    /// than a named volume.
    pub fn is_path(self, source: &str) -> bool {
        source.starts_with('/') || parse_windows(source, false).is_some()
    }
}

/// `/mnt/c/Users/me` for drive `c` and the components `Users`, `me`.
fn guest_drive_path(drive: char, rest: &[&str]) -> String {
    let mut out = format!("{DRIVES}/{}", drive.to_ascii_lowercase());
    for c in rest {
        out.push('/');
        out.push_str(c);
    }
    out
}

/// A drive path's letter and components, `Some(Err)` for a Windows path that cannot be
/// shared, `None` for anything that is not a Windows path. `msys`: Git Bash's `/c/…` is a
/// drive path too (on a Windows host only; elsewhere it is an ordinary path).
#[allow(clippy::type_complexity)]
fn parse_windows(s: &str, msys: bool) -> Option<Result<(char, Vec<&str>), &'static str>> {
    // `\\?\C:\x` (a verbatim path, what canonicalize gives on Windows) is `C:\x`.
    let s2 = s
        .strip_prefix(r"\\?\")
        .or_else(|| s.strip_prefix("//?/"))
        .unwrap_or(s);
    let b = s2.as_bytes();
    if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        let rest = &s2[2..];
        if !rest.is_empty() && !rest.starts_with(['\\', '/']) {
            return Some(Err(
                "a path relative to a drive's current folder cannot be shared",
            ));
        }
        return Some(Ok((b[0] as char, split(rest))));
    }
    if s.starts_with(r"\\") {
        return Some(Err("network folders cannot be shared with Berth's machine"));
    }
    if !msys {
        return None;
    }
    // Git Bash: `/c/Users/me`, or `//c/Users/me` to stop its own path conversion.
    let msys = s.strip_prefix("//").or_else(|| s.strip_prefix('/'))?;
    let mut it = msys.splitn(2, '/');
    let first = it.next()?;
    let fb = first.as_bytes();
    if fb.len() == 1 && fb[0].is_ascii_alphabetic() {
        return Some(Ok((fb[0] as char, split(it.next().unwrap_or("")))));
    }
    None
}

fn split(rest: &str) -> Vec<&str> {
    rest.split(['\\', '/']).filter(|c| !c.is_empty()).collect()
}

impl HostPaths {
    /// A `Binds` entry split at its colons. On Windows a drive's colon stays in the source
    /// (`C:\x:/app:ro` is `["C:\x", "/app", "ro"]`); elsewhere `c:/data` is the volume `c`,
    /// as in docker, and a backslashed drive path is refused by [`resolve`](Self::resolve).
    pub fn split_bind(self, spec: &str) -> Vec<&str> {
        let verbatim = [r"\\?\", "//?/"]
            .iter()
            .find(|p| spec.starts_with(*p))
            .map_or(0, |p| p.len());
        let b = &spec.as_bytes()[verbatim..];
        let drive = b.len() >= 3
            && b[0].is_ascii_alphabetic()
            && b[1] == b':'
            && match self {
                HostPaths::Windows => matches!(b[2], b'\\' | b'/'),
                HostPaths::Native => b[2] == b'\\',
            };
        if !drive {
            return spec.split(':').collect();
        }
        let drive_len = verbatim + 2;
        let mut parts: Vec<&str> = spec[drive_len..].split(':').collect();
        parts[0] = &spec[..drive_len + parts[0].len()];
        parts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_a_windows_drive_path_lands_under_mnt() {
        let w = HostPaths::Windows;
        for (given, want) in [
            (r"C:\Users\me\app", "/mnt/c/Users/me/app"),
            ("C:/Users/me/app", "/mnt/c/Users/me/app"),
            (r"c:\Users\me\app\", "/mnt/c/Users/me/app"),
            (r"D:\", "/mnt/d"),
            ("C:", "/mnt/c"),
            (r"\\?\C:\Users\me", "/mnt/c/Users/me"),
            ("/c/Users/me/app", "/mnt/c/Users/me/app"),
            ("//c/Users/me/app", "/mnt/c/Users/me/app"),
            ("/c", "/mnt/c"),
            (r"C:\Users\me\My Project", "/mnt/c/Users/me/My Project"),
            (r"C:\Users\me\\app", "/mnt/c/Users/me/app"),
        ] {
            assert_eq!(w.resolve(given).unwrap(), want, "{given}");
        }
        // Guest paths and volume names stay as they are.
        for same in ["/home/me", "/srv/data", "/cd/x", "data", "my_volume"] {
            assert_eq!(w.resolve(same).unwrap(), same);
        }
    }

    #[test]
    fn windows_paths_that_cannot_be_shared_say_so() {
        let w = HostPaths::Windows;
        let e = w.resolve(r"\\server\share\x").unwrap_err().to_string();
        assert!(e.contains("network folders"), "{e}");
        assert!(e.contains(r"C:\Users"), "{e}");
        let e = w.resolve("C:app").unwrap_err().to_string();
        assert!(e.contains("relative"), "{e}");
    }

    #[test]
    fn a_native_engine_refuses_windows_paths_in_one_sentence() {
        let n = HostPaths::Native;
        assert_eq!(n.resolve("/c/Users").unwrap(), "/c/Users");
        assert_eq!(n.resolve("/home/me").unwrap(), "/home/me");
        for p in [r"C:\Users\me", "C:/Users/me", r"\\server\x"] {
            let e = n.resolve(p).unwrap_err().to_string();
            assert!(e.contains("Windows path") && e.contains("Linux path"), "{e}");
            assert_eq!(e.matches(". ").count(), 0, "one sentence: {e}");
        }
    }

    #[test]
    fn paths_and_volume_names_are_told_apart() {
        let w = HostPaths::Windows;
        assert!(w.is_path(r"C:\x") && w.is_path("/x") && w.is_path(r"\\s\x"));
        assert!(!w.is_path("data") && !w.is_path("c"));
    }

    #[test]
    fn binds_keep_a_drive_colon_in_the_source() {
        let w = HostPaths::Windows;
        assert_eq!(w.split_bind(r"C:\x:/app:ro"), [r"C:\x", "/app", "ro"]);
        assert_eq!(w.split_bind("C:/x:/app"), ["C:/x", "/app"]);
        assert_eq!(w.split_bind(r"\\?\C:\x:/app"), [r"\\?\C:\x", "/app"]);
        assert_eq!(w.split_bind("data:/data:ro"), ["data", "/data", "ro"]);
        assert_eq!(w.split_bind("/c/x:/app"), ["/c/x", "/app"]);
        assert_eq!(w.split_bind("/data"), ["/data"]);
        let n = HostPaths::Native;
        // On Linux a one-letter volume name is not a drive, as in docker.
        assert_eq!(n.split_bind("c:/data"), ["c", "/data"]);
        assert_eq!(n.split_bind("/srv:/srv"), ["/srv", "/srv"]);
        // A backslashed drive path stays whole, for resolve to refuse.
        assert_eq!(n.split_bind(r"C:\x:/app"), [r"C:\x", "/app"]);
    }
}
