//! Registry credentials stored the way `docker login` stores them: base64 `user:pass`
//! under `auths.<registry>` in `$DOCKER_CONFIG/config.json` (default `~/.docker`), so the
//! CLI, the engine and this app share one login.

use std::path::PathBuf;

use base64::Engine as _;
use bollard::auth::DockerCredentials;
use serde_json::{json, Value};

use crate::dto::LoginResult;
use crate::error::UserError;

const DOCKER_HUB: &str = "https://index.docker.io/v1/";

pub fn config_path() -> PathBuf {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
        .unwrap_or_else(|| PathBuf::from("/root/.docker"));
    dir.join("config.json")
}

/// The registry host of a repository name, docker-style: the first path component if it
/// looks like a host (has a dot or a port, or is localhost), else Docker Hub.
pub fn registry_of(repository: &str) -> String {
    match repository.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first.to_string()
        }
        _ => "docker.io".to_string(),
    }
}

fn auth_key(registry: &str) -> String {
    if registry == "docker.io" || registry == "index.docker.io" {
        DOCKER_HUB.to_string()
    } else {
        registry.to_string()
    }
}

fn read_config() -> Value {
    std::fs::read(config_path())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| json!({}))
}

/// Stored credentials for the registry that `repository` lives on, if any.
pub fn credentials_for(repository: &str) -> Option<DockerCredentials> {
    let registry = registry_of(repository);
    let cfg = read_config();
    let entry = cfg.get("auths")?.get(auth_key(&registry))?;
    let encoded = entry.get("auth")?.as_str()?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some(DockerCredentials {
        username: Some(user.to_string()),
        password: Some(pass.to_string()),
        serveraddress: Some(registry),
        ..Default::default()
    })
}

pub fn store(registry: &str, username: &str, password: &str) -> Result<PathBuf, UserError> {
    let path = config_path();
    let mut cfg = read_config();
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    if !cfg.get("auths").is_some_and(Value::is_object) {
        cfg["auths"] = json!({});
    }
    cfg["auths"][auth_key(registry)] = json!({ "auth": encoded });
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&cfg).unwrap_or_default())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        }
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| {
        UserError::invalid(
            format!("Berth could not save the login to {}.", path.display()),
            "Check that the folder is writable.",
        )
        .with_details(e.to_string())
    })?;
    Ok(path)
}

/// `docker login`: store the credentials; the engine presents them on the next pull or push.
#[tauri::command]
pub async fn registry_login(
    registry: String,
    username: String,
    password: String,
) -> Result<LoginResult, UserError> {
    let registry = registry.trim().trim_end_matches('/').to_string();
    if registry.is_empty() || username.is_empty() {
        return Err(UserError::invalid(
            "The registry and user name are required.",
            "Fill in both, e.g. docker.io and your Docker Hub user name.",
        ));
    }
    let path = store(&registry, &username, &password)?;
    Ok(LoginResult {
        registry,
        config_path: path.display().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_hosts_are_found_like_docker_does() {
        assert_eq!(registry_of("library/flask"), "docker.io");
        assert_eq!(registry_of("127.0.0.1:5000/app"), "127.0.0.1:5000");
        assert_eq!(registry_of("localhost/app"), "localhost");
        assert_eq!(registry_of("ghcr.io/a/b"), "ghcr.io");
        assert_eq!(registry_of("user/app"), "docker.io");
    }

    #[test]
    fn stored_logins_are_read_back_for_push() {
        let dir = tempfile::tempdir().expect("tempdir");
        // SAFETY of env mutation: this is the only test in the crate touching DOCKER_CONFIG.
        unsafe { std::env::set_var("DOCKER_CONFIG", dir.path()) };
        store("127.0.0.1:5000", "alice", "s3cret:x").expect("store");
        let creds = credentials_for("127.0.0.1:5000/app").expect("creds");
        assert_eq!(creds.username.as_deref(), Some("alice"));
        assert_eq!(creds.password.as_deref(), Some("s3cret:x"));
        assert!(credentials_for("other.io/app").is_none());
        let text = std::fs::read_to_string(dir.path().join("config.json")).expect("read");
        assert!(text.contains("\"auths\""));
    }
}
