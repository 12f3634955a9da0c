//! A machine's settings and where its files live.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::MachineError;

/// The machine `berth machine` commands mean when no name is given.
pub const DEFAULT_NAME: &str = "default";

/// What `berth machine init` decided; kept as `machine.json` in the machine's directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MachineConfig {
    pub name: String,
    #[serde(rename = "CPUs")]
    pub cpus: u32,
    /// MiB.
    pub memory: u64,
    /// GiB.
    pub disk_size: u64,
    /// The guest payload: a directory holding `vmlinuz` and `initrd.img`.
    pub guest: PathBuf,
    /// RFC 3339.
    pub created: String,
}

impl MachineConfig {
    pub const DEFAULT_CPUS: u32 = 2;
    pub const DEFAULT_MEMORY: u64 = 2048;
    pub const DEFAULT_DISK: u64 = 20;
}

/// Where every machine's directory is: `$BERTH_MACHINE_DIR`, else
/// `/var/lib/berth/machines` for root, else `$XDG_DATA_HOME/berth/machines` (or
/// `~/.local/share/berth/machines`).
pub fn machines_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("BERTH_MACHINE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/lib/berth/machines");
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    data.join("berth/machines")
}

/// A machine's name: letters, digits, `_`, `.`, `-`, starting with a letter or digit,
/// at most 30 characters (it becomes a directory and a docker context's name).
pub fn check_name(name: &str) -> Result<(), MachineError> {
    let ok = !name.is_empty()
        && name.len() <= 30
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(MachineError::BadName(name.to_string()))
    }
}

/// The files of one machine.
#[derive(Debug, Clone)]
pub struct Paths {
    pub dir: PathBuf,
}

impl Paths {
    pub fn new(machines: &Path, name: &str) -> Paths {
        Paths {
            dir: machines.join(name),
        }
    }
    pub fn config(&self) -> PathBuf {
        self.dir.join("machine.json")
    }
    /// The data disk: a sparse raw file, ext4 inside.
    pub fn disk(&self) -> PathBuf {
        self.dir.join("disk.raw")
    }
    /// The guest's serial console (`berth machine logs`).
    pub fn console(&self) -> PathBuf {
        self.dir.join("console.log")
    }
    /// QEMU's own messages.
    pub fn qemu_log(&self) -> PathBuf {
        self.dir.join("qemu.log")
    }
    pub fn relay_log(&self) -> PathBuf {
        self.dir.join("relay.log")
    }
    pub fn qemu_pid(&self) -> PathBuf {
        self.dir.join("qemu.pid")
    }
    pub fn relay_pid(&self) -> PathBuf {
        self.dir.join("relay.pid")
    }
    /// The link's host end: QEMU listens, the relay connects.
    pub fn link(&self) -> PathBuf {
        self.dir.join("link.sock")
    }
    /// The Engine API on the host (only the machine's user may open it).
    pub fn api(&self) -> PathBuf {
        self.dir.join("api.sock")
    }
    /// What the last start found (the accelerator used).
    pub fn state(&self) -> PathBuf {
        self.dir.join("state.json")
    }
}

/// What the last start decided, kept as `state.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StartState {
    pub accelerator: String,
    pub started_at: String,
    /// Milliseconds from QEMU's start to the guest's ready line.
    pub boot_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["default", "m1", "lecture-3", "a.b_c", "X"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", ".x", "a/b", "a b", "ü", &"x".repeat(31), ".."] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn config_is_written_as_inspect_names_it() {
        let c = MachineConfig {
            name: "default".into(),
            cpus: 2,
            memory: 2048,
            disk_size: 20,
            guest: "/usr/lib/berth/guest".into(),
            created: "2026-12-03T07:00:00Z".into(),
        };
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["CPUs"], 2);
        assert_eq!(v["Memory"], 2048);
        assert_eq!(v["DiskSize"], 20);
        assert_eq!(serde_json::from_value::<MachineConfig>(v).unwrap(), c);
    }
}
