//! The desktop's own settings, kept between launches in `desktop.json`
//! (`$XDG_CONFIG_HOME/berth/`, else `~/.config/berth/`): which engine the window runs.
//! Registry settings are the engine's (`ROOT/daemon.json`), not kept here.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Which engine the window runs when no endpoint is set (Settings' endpoint or
/// `BERTH_HOST` / `DOCKER_HOST` win over it).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, TS, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum EngineChoice {
    /// Berth's engine on this computer (in the app, or a `berth daemon`).
    BuiltIn,
    /// Berth's engine inside its virtual machine (`berth machine`), reached on the
    /// machine's socket.
    Machine,
}

impl EngineChoice {
    /// Built-in on Linux, where the engine runs natively; the machine on macOS and Windows
    /// (those builds are not compiled or run here).
    pub fn platform_default() -> EngineChoice {
        if cfg!(target_os = "linux") {
            EngineChoice::BuiltIn
        } else {
            EngineChoice::Machine
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub struct DesktopSettings {
    #[serde(default = "EngineChoice::platform_default")]
    pub engine: EngineChoice,
}

impl Default for DesktopSettings {
    fn default() -> DesktopSettings {
        DesktopSettings {
            engine: EngineChoice::platform_default(),
        }
    }
}

/// Where the settings file is.
pub fn path() -> PathBuf {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    config.join("berth/desktop.json")
}

impl DesktopSettings {
    /// The file's settings; the defaults when it is missing or unreadable (a broken file
    /// is replaced at the next save, never a reason not to open the window).
    pub fn load_from(file: &Path) -> DesktopSettings {
        match std::fs::read(file) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|e| {
                tracing::warn!("{} is not valid ({e}); using the defaults", file.display());
                DesktopSettings::default()
            }),
            Err(_) => DesktopSettings::default(),
        }
    }

    /// Writes the file whole (beside it, then renamed over it).
    pub fn save_to(&self, file: &Path) -> std::io::Result<()> {
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = file.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(&tmp, file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_choice_is_kept_and_defaults_per_platform() {
        let t = tempfile::tempdir().unwrap();
        let file = t.path().join("berth/desktop.json");
        let fresh = DesktopSettings::load_from(&file);
        assert_eq!(
            fresh.engine,
            EngineChoice::BuiltIn,
            "Linux defaults to the built-in engine"
        );
        let machine = DesktopSettings {
            engine: EngineChoice::Machine,
        };
        machine.save_to(&file).unwrap();
        assert_eq!(DesktopSettings::load_from(&file), machine);
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "{\n  \"engine\": \"machine\"\n}"
        );
        assert!(!file.with_extension("json.tmp").exists());
        // A broken or older file opens with the defaults for what it lacks.
        std::fs::write(&file, "{").unwrap();
        assert_eq!(DesktopSettings::load_from(&file), DesktopSettings::default());
        std::fs::write(&file, "{}").unwrap();
        assert_eq!(DesktopSettings::load_from(&file), DesktopSettings::default());
    }
}
