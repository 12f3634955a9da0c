//! Disk use of a tree, counted the way docker counts it (`directory.Size`): the apparent
//! size of every entry that is not a directory (files and symlinks), each inode once, so
//! hard links are not counted twice.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Bytes used under `path` (or by `path` itself when it is not a directory). Entries that
/// cannot be read count as nothing: a size is a report, not a reason to fail.
pub fn tree_size(path: &Path) -> u64 {
    let mut seen = HashSet::new();
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.size();
    }
    walk(path, &mut seen)
}

fn walk(dir: &Path, seen: &mut HashSet<(u64, u64)>) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    let mut total = 0;
    for e in rd.flatten() {
        let Ok(md) = e.path().symlink_metadata() else {
            continue;
        };
        if md.is_dir() {
            total += walk(&e.path(), seen);
        } else if md.nlink() <= 1 || seen.insert((md.dev(), md.ino())) {
            total += md.size();
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_symlinks_and_hard_links_once() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("a/b")).unwrap();
        std::fs::write(d.path().join("a/one"), vec![0u8; 1000]).unwrap();
        std::fs::write(d.path().join("a/b/two"), vec![0u8; 24]).unwrap();
        std::fs::hard_link(d.path().join("a/one"), d.path().join("a/b/same")).unwrap();
        std::os::unix::fs::symlink("one", d.path().join("a/link")).unwrap();
        assert_eq!(tree_size(d.path()), 1000 + 24 + 3);
        assert_eq!(tree_size(&d.path().join("a/one")), 1000);
        assert_eq!(tree_size(&d.path().join("missing")), 0);
    }
}
