//! Docker's `config.json`: stored logins (`auths`), credential stores (`credsStore`) and
//! per-registry credential helpers (`credHelpers`). Unknown keys are kept as they are, so
//! Berth and the docker CLI can share one file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::RegistryError;

/// The key docker uses for Docker Hub in `auths` and with credential helpers.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// A username and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The key under which credentials for `registry` are stored: docker.io (and its aliases)
/// use docker's historical index URL, other registries their host\[:port\].
pub fn server_key(registry: &str) -> String {
    if is_docker_hub(registry) {
        DOCKER_HUB_KEY.to_string()
    } else {
        registry.to_string()
    }
}

pub(crate) fn is_docker_hub(registry: &str) -> bool {
    matches!(
        registry,
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com"
    )
}

/// The host part of an `auths` key, which may be written as a URL ("https://host/v1/").
fn normalize_key(key: &str) -> String {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = rest.split('/').next().unwrap_or(rest);
    if is_docker_hub(host) {
        "docker.io".to_string()
    } else {
        host.to_string()
    }
}

/// The default location: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn default_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

/// A docker `config.json`, as a JSON object so that keys Berth does not know survive.
#[derive(Debug, Clone, Default)]
pub struct DockerConfigFile {
    doc: Map<String, Value>,
}

impl DockerConfigFile {
    /// Reads `path`; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<Self, RegistryError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(RegistryError::io(format!("cannot read {}", path.display()), e)),
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        let doc: Value = serde_json::from_slice(&bytes).map_err(|e| RegistryError::Config {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        match doc {
            Value::Object(doc) => Ok(DockerConfigFile { doc }),
            _ => Err(RegistryError::Config {
                path: path.to_path_buf(),
                detail: "the top level is not a JSON object".into(),
            }),
        }
    }

    /// Writes the file atomically (temporary file, then rename) with mode 0600.
    pub fn save(&self, path: &Path) -> Result<(), RegistryError> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let ctx = |what: &str| format!("cannot {what} {}", path.display());
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| RegistryError::io(ctx("create the directory of"), e))?;
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("config.json");
        let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
        let mut text = serde_json::to_vec_pretty(&Value::Object(self.doc.clone()))
            .map_err(|e| RegistryError::io(ctx("serialize"), std::io::Error::other(e)))?;
        text.push(b'\n');
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            RegistryError::io(ctx("write"), e)
        })
    }

    /// A top-level string setting, e.g. `psFormat`.
    pub fn string(&self, key: &str) -> Option<&str> {
        self.doc.get(key).and_then(Value::as_str)
    }

    /// The configured `credsStore`, if any.
    pub fn creds_store(&self) -> Option<&str> {
        self.doc
            .get("credsStore")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// The helper for `registry`: `credHelpers[key]` first, then `credsStore`.
    pub fn helper_for(&self, registry: &str) -> Option<&str> {
        let key = server_key(registry);
        let wanted = normalize_key(&key);
        if let Some(Value::Object(helpers)) = self.doc.get("credHelpers") {
            let found = helpers.get(&key).or_else(|| {
                helpers
                    .iter()
                    .find(|(k, _)| normalize_key(k) == wanted)
                    .map(|(_, v)| v)
            });
            if let Some(h) = found.and_then(Value::as_str).filter(|s| !s.is_empty()) {
                return Some(h);
            }
        }
        self.creds_store()
    }

    fn auths_entry(&self, registry: &str) -> Option<&Map<String, Value>> {
        let key = server_key(registry);
        let wanted = normalize_key(&key);
        let auths = self.doc.get("auths")?.as_object()?;
        auths
            .get(&key)
            .or_else(|| {
                auths
                    .iter()
                    .find(|(k, _)| normalize_key(k) == wanted)
                    .map(|(_, v)| v)
            })?
            .as_object()
    }

    /// The credentials for `registry`, from its helper if one is configured, else from
    /// `auths`. `Ok(None)` means no login is stored.
    pub fn lookup(&self, registry: &str) -> Result<Option<Credential>, RegistryError> {
        if let Some(helper) = self.helper_for(registry) {
            if let Some(c) = helper_get(helper, &server_key(registry))? {
                return Ok(Some(c));
            }
        }
        let Some(entry) = self.auths_entry(registry) else {
            return Ok(None);
        };
        if let Some(auth) = entry
            .get("auth")
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
        {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok());
            return match decoded.as_deref().and_then(|d| d.split_once(':')) {
                Some((u, p)) => Ok(Some(Credential {
                    username: u.to_string(),
                    password: p.to_string(),
                })),
                None => Err(RegistryError::Config {
                    path: PathBuf::from("config.json"),
                    detail: format!("the stored login for {registry} is not base64 of user:password; run `berth login {registry}` again"),
                }),
            };
        }
        let user = entry.get("username").and_then(Value::as_str);
        let pass = entry.get("password").and_then(Value::as_str);
        Ok(match (user, pass) {
            (Some(u), Some(p)) if !u.is_empty() => Some(Credential {
                username: u.to_string(),
                password: p.to_string(),
            }),
            _ => None,
        })
    }

    /// Remembers a login: through the credential helper if one is configured, else as
    /// base64 in `auths`. Call [`DockerConfigFile::save`] afterwards.
    pub fn store(&mut self, registry: &str, cred: &Credential) -> Result<(), RegistryError> {
        let key = server_key(registry);
        if let Some(helper) = self.helper_for(registry).map(str::to_string) {
            let input =
                serde_json::json!({"ServerURL": key, "Username": cred.username, "Secret": cred.password});
            run_helper(&helper, "store", input.to_string().as_bytes())?;
            // Docker leaves an empty entry so that `auths` lists the registry.
            self.auths_mut().insert(key, Value::Object(Map::new()));
            return Ok(());
        }
        let auth =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", cred.username, cred.password));
        let mut entry = Map::new();
        entry.insert("auth".into(), Value::String(auth));
        self.auths_mut().insert(key, Value::Object(entry));
        Ok(())
    }

    /// Forgets a login (from the helper and from `auths`). Returns whether one was stored.
    /// Call [`DockerConfigFile::save`] afterwards.
    pub fn erase(&mut self, registry: &str) -> Result<bool, RegistryError> {
        let key = server_key(registry);
        let mut found = false;
        if let Some(helper) = self.helper_for(registry).map(str::to_string) {
            found |= helper_get(&helper, &key)?.is_some();
            if found {
                run_helper(&helper, "erase", key.as_bytes())?;
            }
        }
        let wanted = normalize_key(&key);
        let auths = self.auths_mut();
        let keys: Vec<String> = auths
            .keys()
            .filter(|k| normalize_key(k) == wanted)
            .cloned()
            .collect();
        for k in keys {
            found |= auths.remove(&k).is_some();
        }
        Ok(found)
    }

    fn auths_mut(&mut self) -> &mut Map<String, Value> {
        let v = self
            .doc
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !v.is_object() {
            *v = Value::Object(Map::new());
        }
        match v {
            Value::Object(m) => m,
            _ => unreachable!("auths was just made an object"),
        }
    }
}

/// Looks up credentials in the configuration at `path` (or the default location).
pub fn lookup(path: Option<&Path>, registry: &str) -> Result<Option<Credential>, RegistryError> {
    let path = match path.map(Path::to_path_buf).or_else(default_path) {
        Some(p) => p,
        None => return Ok(None),
    };
    DockerConfigFile::load(&path)?.lookup(registry)
}

fn helper_get(helper: &str, server: &str) -> Result<Option<Credential>, RegistryError> {
    let out = match run_helper(helper, "get", server.as_bytes()) {
        Ok(out) => out,
        Err(RegistryError::CredentialHelper { detail, .. })
            if detail.to_ascii_lowercase().contains("credentials not found") =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    #[derive(serde::Deserialize)]
    struct Reply {
        #[serde(rename = "Username", default)]
        username: String,
        #[serde(rename = "Secret", default)]
        secret: String,
    }
    let reply: Reply = serde_json::from_slice(&out).map_err(|e| RegistryError::CredentialHelper {
        helper: helper.to_string(),
        detail: format!("its answer is not the expected JSON ({e})"),
    })?;
    if reply.username.is_empty() && reply.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credential {
        username: reply.username,
        password: reply.secret,
    }))
}

fn run_helper(helper: &str, action: &str, input: &[u8]) -> Result<Vec<u8>, RegistryError> {
    let program = format!("docker-credential-{helper}");
    let fail = |detail: String| RegistryError::CredentialHelper {
        helper: helper.to_string(),
        detail,
    };
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                fail(format!("{program} is not installed or not in PATH"))
            } else {
                fail(e.to_string())
            }
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input).map_err(|e| fail(e.to_string()))?;
    }
    let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(if out.stdout.is_empty() {
            &out.stderr
        } else {
            &out.stdout
        })
        .trim()
        .to_string();
        return Err(fail(if msg.is_empty() {
            format!("`{action}` exited with {}", out.status)
        } else {
            msg
        }));
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_keeps_unknown_keys_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("config.json");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            r#"{"psFormat":"table {{.ID}}","auths":{"https://index.docker.io/v1/":{"auth":"dTpw"}}}"#,
        )
        .unwrap();
        let mut cfg = DockerConfigFile::load(&path).unwrap();
        assert_eq!(
            cfg.lookup("docker.io").unwrap(),
            Some(Credential {
                username: "u".into(),
                password: "p".into()
            })
        );
        cfg.store(
            "127.0.0.1:5000",
            &Credential {
                username: "alice".into(),
                password: "s:e:cret".into(),
            },
        )
        .unwrap();
        cfg.save(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let back = DockerConfigFile::load(&path).unwrap();
        assert_eq!(back.doc["psFormat"], "table {{.ID}}");
        assert_eq!(
            back.lookup("127.0.0.1:5000").unwrap().unwrap().password,
            "s:e:cret"
        );
        let mut back = back;
        assert!(back.erase("docker.io").unwrap());
        assert!(!back.erase("docker.io").unwrap());
        assert_eq!(back.lookup("docker.io").unwrap(), None);
    }

    #[test]
    fn keys_written_as_urls_match() {
        let cfg = DockerConfigFile {
            doc: serde_json::from_str(
                r#"{"auths":{"https://ghcr.io/v2/":{"username":"a","password":"b"},"index.docker.io":{"auth":"eDp5"}}}"#,
            )
            .unwrap(),
        };
        assert_eq!(cfg.lookup("ghcr.io").unwrap().unwrap().username, "a");
        assert_eq!(cfg.lookup("docker.io").unwrap().unwrap().password, "y");
        assert_eq!(cfg.lookup("quay.io").unwrap(), None);
    }

    #[test]
    fn missing_or_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let missing = DockerConfigFile::load(&dir.path().join("nope.json")).unwrap();
        assert_eq!(missing.lookup("docker.io").unwrap(), None);
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{not json").unwrap();
        let err = DockerConfigFile::load(&bad).unwrap_err();
        assert!(err.to_string().contains("bad.json"), "{err}");
    }

    #[test]
    fn missing_helper_is_reported() {
        let cfg = DockerConfigFile {
            doc: serde_json::from_str(r#"{"credHelpers":{"example.com":"berth-test-does-not-exist"}}"#)
                .unwrap(),
        };
        let err = cfg.lookup("example.com").unwrap_err();
        assert!(err.to_string().contains("not installed"), "{err}");
        assert_eq!(cfg.lookup("other.example.com").unwrap(), None);
    }
}
