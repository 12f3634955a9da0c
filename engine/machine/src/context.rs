//! A docker context per machine, so `docker context use berth` points the docker CLI at
//! the machine's socket. The docker CLI keeps contexts as
//! `$DOCKER_CONFIG/contexts/meta/<sha256 of the name>/meta.json` (DOCKER_CONFIG defaults
//! to `~/.docker`).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The context's name: `berth` for the default machine, `berth-NAME` for others.
pub fn context_name(machine: &str) -> String {
    if machine == crate::DEFAULT_NAME {
        "berth".to_string()
    } else {
        format!("berth-{machine}")
    }
}

fn docker_config() -> Option<PathBuf> {
    std::env::var_os("DOCKER_CONFIG")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
}

fn meta_dir(name: &str) -> Option<PathBuf> {
    Some(meta_dir_in(&docker_config()?, name))
}

fn meta_dir_in(config: &Path, name: &str) -> PathBuf {
    let digest = hex::encode(Sha256::digest(name.as_bytes()));
    config.join("contexts/meta").join(digest)
}

/// Writes the context (a failure only costs the convenience; it is logged).
pub fn register(machine: &str, socket: &Path) {
    let name = context_name(machine);
    let Some(dir) = meta_dir(&name) else { return };
    let meta = serde_json::json!({
        "Name": name,
        "Metadata": { "Description": format!("Berth machine {machine}") },
        "Endpoints": { "docker": { "Host": format!("unix://{}", socket.display()), "SkipTLSVerify": false } },
    });
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        std::fs::write(
            dir.join("meta.json"),
            serde_json::to_vec(&meta).unwrap_or_default(),
        )
    });
    if let Err(e) = written {
        tracing::warn!(dir = %dir.display(), "cannot register the docker context {name}: {e}");
    }
}

pub fn unregister(machine: &str) {
    if let Some(dir) = meta_dir(&context_name(machine)) {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_the_docker_cli_s_digest() {
        assert_eq!(context_name("default"), "berth");
        assert_eq!(context_name("lab"), "berth-lab");
        // The docker CLI names a context's directory by the SHA-256 of its name
        // (`printf berth | sha256sum`).
        assert_eq!(
            meta_dir_in(Path::new("/d"), "berth"),
            Path::new("/d/contexts/meta/5c2f64c7f21efd5fb5e3d6a499abe5eacb248ae6f6f0085387c9a056d10ef5fd")
        );
    }
}
