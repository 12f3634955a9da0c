//! The mount table, from `/proc/self/mountinfo`.

use std::path::{Path, PathBuf};

/// Mount points at or below `root` (not `root` itself), from this process's mount table.
pub fn mount_points_under(root: &Path) -> Vec<PathBuf> {
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let Ok(table) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    table
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .filter(|p| p.starts_with(&root) && p != &root)
        .collect()
}

/// Whether `path` (canonicalised first, as the table's paths are) is a mount point in this process's mount
/// table. An unprivileged `umount2` fails with EPERM before it looks at its path, so
/// callers ask this to tell "nothing to unmount" from "not allowed to".
pub fn is_mount_point(path: &Path) -> bool {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let Ok(table) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    table
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|p| Path::new(&unescape(p)) == path)
}

/// How the mount that holds `path` propagates: `"shared"`, `"slave"` or `"private"` (from
/// its mountinfo optional fields `shared:N` / `master:N`); `None` if the table cannot be read.
pub fn propagation_of(path: &Path) -> Option<&'static str> {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let table = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    // The longest mount point that contains the path holds it.
    let (_, fields) = table
        .lines()
        .filter_map(|l| {
            let parts: Vec<&str> = l.split(' ').collect();
            let point = PathBuf::from(unescape(parts.get(4)?));
            path.starts_with(&point).then_some((point, parts))
        })
        .max_by_key(|(p, _)| p.as_os_str().len())?;
    let optional = fields.iter().skip(6).take_while(|f| **f != "-");
    let mut kind = "private";
    for f in optional {
        if f.starts_with("shared:") {
            return Some("shared");
        }
        if f.starts_with("master:") {
            kind = "slave";
        }
    }
    Some(kind)
}

/// Undoes the kernel's octal escaping of spaces, tabs, newlines and backslashes in
/// mountinfo paths (`\040`).
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_paths_are_unescaped() {
        assert_eq!(unescape("/a\\040b/c\\134d"), "/a b/c\\d");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape("/end\\04"), "/end\\04");
    }
}
