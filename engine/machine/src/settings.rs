//! A machine's CPUs, memory and disk size: checked the same way by `init` and `set`, and
//! changed by `berth machine set` (like `podman machine set`) while the machine is stopped.
//!
//! Invariants: `machine.json` is replaced whole (written beside, then renamed), so a reader
//! sees the old settings or the new ones, never half; the data disk only grows — the guest
//! grows its ext4 to the disk at the next boot (`resize2fs`), and nothing ever shrinks it.

use std::path::Path;

use crate::config::{MachineConfig, Paths};
use crate::{io_err, MachineError, Machines, State};

/// What `berth machine set` changes (`None`: keep it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetOptions {
    pub cpus: Option<u32>,
    /// MiB.
    pub memory: Option<u64>,
    /// GiB.
    pub disk_size: Option<u64>,
}

impl SetOptions {
    pub fn is_empty(&self) -> bool {
        *self == SetOptions::default()
    }
}

/// The limits `init` and `set` share.
pub fn check(cpus: u32, memory: u64, disk_size: u64) -> Result<(), MachineError> {
    if cpus == 0 || cpus > 256 {
        return Err(MachineError::BadSetting {
            what: format!("--cpus {cpus}"),
            why: "give between 1 and 256".into(),
        });
    }
    if memory < 256 {
        return Err(MachineError::BadSetting {
            what: format!("--memory {memory}"),
            why: "a machine needs at least 256 MiB".into(),
        });
    }
    if disk_size == 0 {
        return Err(MachineError::BadSetting {
            what: "--disk-size 0".into(),
            why: "give at least 1 GiB".into(),
        });
    }
    // `disk_size << 30` must fit a file length.
    if disk_size > 1 << 20 {
        return Err(MachineError::BadSetting {
            what: format!("--disk-size {disk_size}"),
            why: "give at most 1048576 GiB".into(),
        });
    }
    Ok(())
}

/// Replaces `machine.json` whole: written beside it, flushed, then renamed over it.
pub(crate) fn write_config(paths: &Paths, cfg: &MachineConfig) -> Result<(), MachineError> {
    use std::io::Write;
    let tmp = paths.dir.join("machine.json.tmp");
    let body = serde_json::to_vec_pretty(cfg).unwrap_or_default();
    let write = |tmp: &Path| -> std::io::Result<()> {
        let mut f = std::fs::File::create(tmp)?;
        f.write_all(&body)?;
        f.sync_all()
    };
    write(&tmp).map_err(io_err("cannot write the machine's settings", &tmp))?;
    std::fs::rename(&tmp, paths.config())
        .map_err(io_err("cannot write the machine's settings", &paths.config()))
}

/// Makes the sparse data disk `gib` GiB long; it never shrinks (a longer file is kept).
pub(crate) fn size_disk(path: &Path, gib: u64, create: bool) -> Result<(), MachineError> {
    let disk = std::fs::OpenOptions::new()
        .create(create)
        .truncate(create)
        .write(true)
        .open(path)
        .map_err(io_err("cannot open the data disk", path))?;
    let len = disk
        .metadata()
        .map_err(io_err("cannot read the data disk", path))?
        .len();
    if gib << 30 > len {
        disk.set_len(gib << 30)
            .map_err(io_err("cannot size the data disk", path))?;
    }
    Ok(())
}

impl Machines {
    /// The settings `set` would write, checked (limits, a disk that only grows) without
    /// looking at whether the machine runs: the desktop asks before it stops the machine.
    pub fn settings_after(&self, name: &str, opts: &SetOptions) -> Result<MachineConfig, MachineError> {
        let old = self.load(name)?;
        let new = MachineConfig {
            cpus: opts.cpus.unwrap_or(old.cpus),
            memory: opts.memory.unwrap_or(old.memory),
            disk_size: opts.disk_size.unwrap_or(old.disk_size),
            ..old.clone()
        };
        check(new.cpus, new.memory, new.disk_size)?;
        if new.disk_size < old.disk_size {
            return Err(MachineError::BadSetting {
                what: format!("--disk-size {}", new.disk_size),
                why: format!(
                    "the disk of machine '{name}' is {} GiB and can only grow (a smaller one would lose data): give {} or more",
                    old.disk_size, old.disk_size
                ),
            });
        }
        Ok(new)
    }

    /// `berth machine set`: new CPUs, memory or disk size for a stopped machine; they apply
    /// at its next start. Returns the settings now in `machine.json`.
    pub fn set(&self, name: &str, opts: &SetOptions) -> Result<MachineConfig, MachineError> {
        let new = self.settings_after(name, opts)?;
        if self.state(name) != State::Stopped {
            return Err(MachineError::RunningSet(name.to_string()));
        }
        if new == self.load(name)? {
            return Ok(new);
        }
        let paths = self.paths(name);
        // The disk first: settings that name a disk larger than the file would make the
        // guest look for space that is not there; a longer file than the settings say is
        // harmless (the next `set` keeps it).
        size_disk(&paths.disk(), new.disk_size, false)?;
        write_config(&paths, &new)?;
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InitOptions;

    fn machine() -> (tempfile::TempDir, Machines) {
        let t = tempfile::tempdir().unwrap();
        std::env::set_var("DOCKER_CONFIG", t.path().join("home/.docker"));
        let m = Machines::new(t.path().join("machines"));
        let opts = InitOptions {
            cpus: Some(1),
            memory: Some(512),
            disk_size: Some(2),
            guest: None,
        };
        m.init("default", &opts, t.path().join("guest")).unwrap();
        (t, m)
    }

    #[test]
    fn set_changes_cpus_memory_and_grows_the_disk_sparse() {
        let (_t, m) = machine();
        let before = m.load("default").unwrap();
        let cfg = m
            .set(
                "default",
                &SetOptions {
                    cpus: Some(3),
                    memory: Some(1024),
                    disk_size: Some(5),
                },
            )
            .unwrap();
        assert_eq!((cfg.cpus, cfg.memory, cfg.disk_size), (3, 1024, 5));
        assert_eq!((cfg.guest, cfg.created), (before.guest, before.created));
        let i = m.inspect("default").unwrap();
        assert_eq!((i.cpus, i.memory, i.disk_size), (3, 1024, 5));
        let disk = std::fs::metadata(m.paths("default").disk()).unwrap();
        assert_eq!(disk.len(), 5 << 30);
        assert!(
            i.disk_used < 1 << 20,
            "the grown disk stays sparse: {}",
            i.disk_used
        );
        assert!(!m.paths("default").dir.join("machine.json.tmp").exists());

        // Only what is given changes.
        let cfg = m
            .set(
                "default",
                &SetOptions {
                    memory: Some(768),
                    ..SetOptions::default()
                },
            )
            .unwrap();
        assert_eq!((cfg.cpus, cfg.memory, cfg.disk_size), (3, 768, 5));
    }

    #[test]
    fn the_disk_never_shrinks_and_bad_values_are_refused() {
        let (_t, m) = machine();
        let e = m
            .set(
                "default",
                &SetOptions {
                    disk_size: Some(1),
                    ..SetOptions::default()
                },
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("can only grow") && e.contains("give 2 or more"), "{e}");
        assert_eq!(
            std::fs::metadata(m.paths("default").disk()).unwrap().len(),
            2 << 30
        );
        for (opts, words) in [
            (
                SetOptions {
                    cpus: Some(0),
                    ..SetOptions::default()
                },
                "between 1 and 256",
            ),
            (
                SetOptions {
                    memory: Some(100),
                    ..SetOptions::default()
                },
                "at least 256 MiB",
            ),
        ] {
            let e = m.set("default", &opts).unwrap_err().to_string();
            assert!(e.contains(words), "{e}");
        }
        // Nothing changed on disk.
        let cfg = m.load("default").unwrap();
        assert_eq!((cfg.cpus, cfg.memory, cfg.disk_size), (1, 512, 2));
        assert!(matches!(
            m.set("other", &SetOptions::default()),
            Err(MachineError::NoSuchMachine(_))
        ));
    }

    #[test]
    fn a_running_machine_is_refused() {
        let (_t, m) = machine();
        // A live process whose command line says qemu-system: what `state` takes for the
        // machine's QEMU (no VM is started).
        use std::os::unix::process::CommandExt;
        let mut fake = std::process::Command::new("sleep")
            .arg0("qemu-system-fake")
            .arg("30")
            .spawn()
            .unwrap();
        std::fs::write(m.paths("default").qemu_pid(), format!("{}\n", fake.id())).unwrap();
        // Until the child has exec'd, its command line is this test's.
        for _ in 0..200 {
            if m.state("default") != State::Stopped {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(m.state("default"), State::Unreachable);
        let e = m
            .set(
                "default",
                &SetOptions {
                    cpus: Some(2),
                    ..SetOptions::default()
                },
            )
            .unwrap_err()
            .to_string();
        let _ = fake.kill();
        let _ = fake.wait();
        assert_eq!(
            e,
            "machine 'default' is running: stop it first: berth machine stop default"
        );
        assert_eq!(m.load("default").unwrap().cpus, 1);
    }
}
