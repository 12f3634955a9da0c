//! Lexical checks on entry names and link targets. Nothing here touches the filesystem.

/// A path inside the layer, as a list of normal components (no `.`, `..` or empty parts).
pub(crate) type RelPath = Vec<Vec<u8>>;

/// Normalizes an entry name (or hard link target) into components below the layer root.
///
/// A leading `./` and repeated slashes are normal. `..` is resolved lexically and refused
/// when it would climb above the root; absolute names are refused.
pub(crate) fn normalize_entry_path(raw: &[u8]) -> Result<RelPath, String> {
    if raw.first() == Some(&b'/') {
        return Err("absolute paths are not allowed in a layer".to_string());
    }
    if raw.contains(&0) {
        return Err("the name contains a NUL byte".to_string());
    }
    let mut out: RelPath = Vec::new();
    for comp in raw.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() {
                    return Err("its '..' components climb above the layer root".to_string());
                }
            }
            c => out.push(c.to_vec()),
        }
    }
    Ok(out)
}

/// Checks a symlink target. Absolute targets are stored as-is (they are resolved inside the
/// container's root at run time, and the unpacker never follows links). Relative targets are
/// resolved lexically from the link's directory and must stay inside the layer root.
pub(crate) fn check_symlink_target(link_parent: &[Vec<u8>], target: &[u8]) -> Result<(), String> {
    if target.is_empty() {
        return Err("the symlink target is empty".to_string());
    }
    if target.contains(&0) {
        return Err("the symlink target contains a NUL byte".to_string());
    }
    if target.first() == Some(&b'/') {
        return Ok(());
    }
    let mut depth = link_parent.len();
    for comp in target.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                if depth == 0 {
                    return Err(format!(
                        "symlink target '{}' climbs above the layer root",
                        String::from_utf8_lossy(target)
                    ));
                }
                depth -= 1;
            }
            _ => depth += 1,
        }
    }
    Ok(())
}

/// Renders components for messages and for building full paths.
pub(crate) fn display(rel: &[Vec<u8>]) -> String {
    let parts: Vec<String> = rel
        .iter()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    parts.join("/")
}

pub(crate) fn to_path(rel: &[Vec<u8>]) -> std::path::PathBuf {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    rel.iter().map(|c| OsStr::from_bytes(c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comps(s: &str) -> RelPath {
        s.split('/').map(|c| c.as_bytes().to_vec()).collect()
    }

    #[test]
    fn normalizes_names() {
        assert_eq!(normalize_entry_path(b"./usr/bin/").unwrap(), comps("usr/bin"));
        assert_eq!(
            normalize_entry_path(b"usr//./lib/../bin").unwrap(),
            comps("usr/bin")
        );
        assert_eq!(normalize_entry_path(b"./").unwrap(), RelPath::new());
        assert!(normalize_entry_path(b"../x").is_err());
        assert!(normalize_entry_path(b"a/../../x").is_err());
        assert!(normalize_entry_path(b"/etc/passwd").is_err());
        assert!(normalize_entry_path(b"a\0b").is_err());
    }

    #[test]
    fn checks_symlink_targets() {
        assert!(check_symlink_target(&[], b"/lib/x86_64-linux-gnu/ld-2.36.so").is_ok());
        assert!(check_symlink_target(&comps("usr/bin"), b"../lib/x").is_ok());
        assert!(check_symlink_target(&comps("usr/bin"), b"../../x").is_ok());
        assert!(check_symlink_target(&comps("usr/bin"), b"../../../x").is_err());
        assert!(check_symlink_target(&comps("x"), b"../../..").is_err());
        assert!(check_symlink_target(&[], b"..").is_err());
        assert!(check_symlink_target(&[], b"a/../..").is_err());
        assert!(check_symlink_target(&[], b"").is_err());
    }
}
