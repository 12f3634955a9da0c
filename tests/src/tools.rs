//! Locating required external tools.

use std::path::{Path, PathBuf};

/// Look `bin` up on `PATH` (plus `/usr/sbin` and `/sbin`).
pub fn find(bin: &str) -> Option<PathBuf> {
    if bin.contains('/') {
        let p = Path::new(bin);
        return is_executable(p).then(|| p.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(bin))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The path of `bin`, or a panic telling the developer how to get it.
/// Tests never skip silently because a tool is missing.
pub fn require(bin: &str, apt_package: &str) -> PathBuf {
    match find(bin) {
        Some(p) => p,
        None => panic!("missing {bin}: run bash scripts/install.sh tests (apt package {apt_package})"),
    }
}
