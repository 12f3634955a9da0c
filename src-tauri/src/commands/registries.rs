//! Settings → Registries: docker.io mirrors and insecure registries, kept where Berth's
//! engine reads them — `ROOT/daemon.json` (`registry-mirrors`, `insecure-registries`, as
//! docker's daemon.json). The engine reads the file again before each pull or push, so a
//! change applies to the next one without a restart. Other keys in the file are kept.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use tauri::State;

use crate::dto::{EndpointKind, RegistrySettings};
use crate::error::UserError;
use crate::state::AppState;

const MIRRORS: &str = "registry-mirrors";
const INSECURE: &str = "insecure-registries";

fn daemon_json() -> PathBuf {
    crate::embedded::store_root().join("daemon.json")
}

fn read_object(path: &Path) -> Result<Map<String, Value>, UserError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
        Err(e) => {
            return Err(UserError::invalid(
                format!("Berth cannot read {}.", path.display()),
                "Check the file's permissions, then open Settings again.",
            )
            .with_details(e.to_string()))
        }
    };
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(not_json(path, "it is not a JSON object".into())),
        Err(e) => Err(not_json(path, e.to_string())),
    }
}

fn not_json(path: &Path, detail: String) -> UserError {
    UserError::invalid(
        format!("{} is not valid JSON.", path.display()),
        "Fix or remove the file, then open Settings again.",
    )
    .with_details(detail)
}

fn strings(m: &Map<String, Value>, key: &str) -> Vec<String> {
    m.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
        .unwrap_or_default()
}

/// The settings as stored, and whether they affect the engine the window uses.
pub fn load(kind: Option<EndpointKind>) -> Result<RegistrySettings, UserError> {
    let path = daemon_json();
    let m = read_object(&path)?;
    let applies = !matches!(kind, Some(EndpointKind::External));
    Ok(RegistrySettings {
        mirrors: strings(&m, MIRRORS),
        insecure_registries: strings(&m, INSECURE),
        path: path.display().to_string(),
        applies,
    })
}

/// Checks a mirror like the engine does: an http:// or https:// URL with a host.
fn check_mirror(m: &str) -> Result<(), UserError> {
    let ok = url::Url::parse(m)
        .map(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(UserError::invalid(
            format!("\"{m}\" is not a mirror URL."),
            "Write it like https://mirror.example.com or http://127.0.0.1:5000.",
        ))
    }
}

fn check_insecure(r: &str) -> Result<(), UserError> {
    let bare = r
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/');
    let cidr = bare
        .split_once('/')
        .is_some_and(|(_, bits)| bits.parse::<u8>().is_ok());
    if bare.is_empty() || bare.contains(char::is_whitespace) || (bare.contains('/') && !cidr) {
        return Err(UserError::invalid(
            format!("\"{r}\" is not a registry host."),
            "Write it like registry.example.com:5000, or a network like 10.0.0.0/8.",
        ));
    }
    Ok(())
}

fn clean(list: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in list.into_iter().map(|s| s.trim().to_string()) {
        if !item.is_empty() && !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// Writes the two keys into daemon.json (atomically; other keys untouched).
pub fn save(path: &Path, mirrors: &[String], insecure: &[String]) -> Result<(), UserError> {
    let mut m = read_object(path)?;
    for (key, list) in [(MIRRORS, mirrors), (INSECURE, insecure)] {
        if list.is_empty() {
            m.remove(key);
        } else {
            m.insert(key.into(), Value::from(list.to_vec()));
        }
    }
    let cannot = |e: std::io::Error| {
        UserError::invalid(
            format!("Berth cannot write {}.", path.display()),
            "Check that the folder exists and that you may write to it.",
        )
        .with_details(e.to_string())
    };
    let mut text = serde_json::to_string_pretty(&Value::Object(m)).map_err(|e| cannot(e.into()))?;
    text.push('\n');
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(cannot)?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text).map_err(cannot)?;
    std::fs::rename(&tmp, path).map_err(cannot)
}

#[tauri::command]
pub async fn registry_settings(state: State<'_, AppState>) -> Result<RegistrySettings, UserError> {
    load(state.endpoint().await.map(|(kind, _)| kind))
}

#[tauri::command]
pub async fn set_registry_settings(
    state: State<'_, AppState>,
    mirrors: Vec<String>,
    insecure_registries: Vec<String>,
) -> Result<RegistrySettings, UserError> {
    let mirrors = clean(mirrors);
    let insecure = clean(insecure_registries);
    mirrors.iter().try_for_each(|m| check_mirror(m))?;
    insecure.iter().try_for_each(|r| check_insecure(r))?;
    save(&daemon_json(), &mirrors, &insecure)?;
    load(state.endpoint().await.map(|(kind, _)| kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saving_keeps_other_keys_and_drops_empty_lists() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("daemon.json");
        std::fs::write(&path, r#"{"debug": true, "insecure-registries": ["old:5000"]}"#).expect("write");
        save(&path, &["http://127.0.0.1:5000".into()], &[]).expect("save");
        let m = read_object(&path).expect("read");
        assert_eq!(m.get("debug"), Some(&Value::Bool(true)));
        assert_eq!(strings(&m, MIRRORS), vec!["http://127.0.0.1:5000".to_string()]);
        assert!(!m.contains_key(INSECURE));
    }

    #[test]
    fn mirrors_must_be_urls() {
        assert!(check_mirror("https://mirror.example.com").is_ok());
        assert!(check_mirror("http://127.0.0.1:5000").is_ok());
        assert!(check_mirror("mirror.example.com").is_err());
        assert!(check_mirror("ftp://x").is_err());
        assert!(check_insecure("10.0.0.0/8").is_ok());
        assert!(check_insecure("reg.lan:5000").is_ok());
        assert!(check_insecure("a b").is_err());
    }
}
