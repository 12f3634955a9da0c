//! The `RegistryClient` type and its settings, and the HTTP plumbing every operation shares:
//! endpoints (scheme, insecure registries, the `GET /v2/` ping), sending with authorization,
//! retries with backoff, and turning error answers into [`RegistryError`]s.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use reqwest::header::AUTHORIZATION;
use reqwest::{RequestBuilder, Response, StatusCode};
use url::Url;

use crate::auth::{challenge_of, Challenge, TokenCache};
use crate::credentials::{self, Credential};
use crate::{RegistryError, DOCKER_HUB_API};

pub(crate) type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// Settings of a [`RegistryClient`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Registries (`host[:port]`, or CIDRs like `10.0.0.0/8`) that may be reached over plain
    /// HTTP or HTTPS with an unverified certificate. Loopback addresses always may.
    pub insecure_registries: Vec<String>,
    /// Mirrors for docker.io (e.g. `http://127.0.0.1:5000`), tried in order before Docker
    /// Hub itself for pulls, like dockerd's `registry-mirrors`.
    pub mirrors: Vec<String>,
    /// Where Docker Hub's API is (`https://registry-1.docker.io/`). Errors still call it
    /// Docker Hub; tests point it at an unreachable address.
    pub docker_hub: String,
    /// Where Docker Hub's index (its search API) is (`https://index.docker.io/`).
    pub docker_hub_index: String,
    /// Docker's `config.json` to take logins from; `None` means use no stored logins.
    /// Defaults to `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`.
    pub docker_config: Option<PathBuf>,
    /// How many times a failed request is tried again (connection errors, 5xx, 429, cut
    /// transfers). Downloads that make progress do not use up retries.
    pub max_retries: u32,
    /// Delay before the first retry; it doubles with each further one.
    pub retry_delay: Duration,
    pub user_agent: String,
    /// How long connecting (TCP, proxy and TLS handshake) may take.
    pub connect_timeout: Duration,
    /// How long the registry may stay silent while we wait for (part of) an answer.
    pub read_timeout: Duration,
    /// Blobs larger than this are pushed in chunks (PATCH); smaller ones in one PUT.
    /// Set it to 0 to push every blob in chunks.
    pub chunk_threshold: u64,
    /// Size of each PATCH of a chunked upload.
    pub chunk_size: u64,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            insecure_registries: Vec::new(),
            mirrors: Vec::new(),
            docker_hub: DOCKER_HUB_API.to_string(),
            docker_hub_index: crate::search::DOCKER_HUB_INDEX.to_string(),
            docker_config: credentials::default_path(),
            max_retries: 4,
            retry_delay: Duration::from_millis(200),
            user_agent: format!("berth/{}", env!("CARGO_PKG_VERSION")),
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(120),
            chunk_threshold: 64 << 20,
            chunk_size: 16 << 20,
        }
    }
}

/// A client for OCI distribution registries. Cloning is cheap: clones share one
/// connection pool, the token cache and what was learned about each registry.
#[derive(Clone)]
pub struct RegistryClient {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("config", &self.inner.cfg)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub(crate) cfg: ClientConfig,
    /// Verifies certificates.
    secure: OnceLock<std::result::Result<reqwest::Client, String>>,
    /// For insecure registries: accepts any certificate.
    insecure: OnceLock<std::result::Result<reqwest::Client, String>>,
    endpoints: Mutex<HashMap<String, Arc<Endpoint>>>,
    pub(crate) tokens: Mutex<TokenCache>,
    pub(crate) creds: Mutex<HashMap<String, (Option<Credential>, Instant)>>,
}

/// One way to reach a registry (a base URL) and what it asked for on `GET /v2/`.
pub(crate) struct Endpoint {
    /// The registry as errors name it: "127.0.0.1:5000", "docker.io", or a mirror's host.
    pub(crate) name: String,
    /// Whose logins apply.
    pub(crate) cred_key: String,
    /// Ends with '/'; API paths ("v2/...") are joined to it.
    base: Url,
    pub(crate) insecure_tls: bool,
    pub(crate) challenge: Mutex<Option<Challenge>>,
}

impl Endpoint {
    pub(crate) fn url(&self, path: &str) -> Result<Url> {
        self.base
            .join(path)
            .map_err(|e| RegistryError::InvalidInput(format!("cannot form a URL from {path}: {e}")))
    }
}

/// How to reach a registry before it has been pinged.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) name: String,
    pub(crate) cred_key: String,
    /// Base URLs to try in order (https before http for insecure registries).
    pub(crate) bases: Vec<Url>,
    pub(crate) insecure_tls: bool,
    pub(crate) is_mirror: bool,
}

/// A response, and whether it answered a bearer token obtained with credentials (a 401
/// then means the account lacks access, not that a login is missing).
pub(crate) struct Sent {
    pub(crate) resp: Response,
    pub(crate) bearer_with_credentials: bool,
}

pub(crate) fn check_repo(repo: &str) -> Result<()> {
    let ok = !repo.is_empty()
        && repo.split('/').all(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'))
                && c != "."
                && c != ".."
        });
    if ok {
        Ok(())
    } else {
        Err(RegistryError::InvalidInput(format!(
            "'{repo}' is not a valid repository name (lowercase letters, digits, '.', '_', '-' and '/')"
        )))
    }
}

pub(crate) fn check_reference(reference: &str) -> Result<()> {
    let ok = !reference.is_empty()
        && reference.len() <= 200
        && reference
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(RegistryError::InvalidInput(format!(
            "'{reference}' is not a valid tag or digest"
        )))
    }
}

/// A base URL to join API paths to: `url` parsed, its path ending in '/'.
pub(crate) fn base_url(url: &str, what: &str) -> Result<Url> {
    let mut base = Url::parse(url)
        .map_err(|e| RegistryError::InvalidInput(format!("{what} '{url}' is not a URL ({e})")))?;
    if !base.path().ends_with('/') {
        let p = format!("{}/", base.path());
        base.set_path(&p);
    }
    Ok(base)
}

/// The host of "host[:port]" or "[v6]:port".
fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match registry.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => registry,
    }
}

fn in_cidr(ip: IpAddr, cidr: &str) -> bool {
    let Some((net, bits)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) if bits <= 32 => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if bits <= 128 => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

impl RegistryClient {
    pub fn new(cfg: ClientConfig) -> Result<Self> {
        for m in &cfg.mirrors {
            let u = Url::parse(m).map_err(|e| {
                RegistryError::InvalidInput(format!(
                    "registry mirror '{m}' is not a URL like https://mirror.example ({e})"
                ))
            })?;
            if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
                return Err(RegistryError::InvalidInput(format!(
                    "registry mirror '{m}' must be an http:// or https:// URL"
                )));
            }
        }
        if cfg.chunk_size == 0 {
            return Err(RegistryError::InvalidInput(
                "the upload chunk size must not be 0".into(),
            ));
        }
        Ok(RegistryClient {
            inner: Arc::new(Inner {
                secure: OnceLock::new(),
                insecure: OnceLock::new(),
                cfg,
                endpoints: Mutex::new(HashMap::new()),
                tokens: Mutex::new(TokenCache::default()),
                creds: Mutex::new(HashMap::new()),
            }),
        })
    }

    // ----- endpoints -------------------------------------------------------------------

    /// Whether `registry` may be used over plain HTTP / unverified TLS.
    pub(crate) fn is_insecure(&self, registry: &str) -> bool {
        let host = host_of(registry);
        if host == "localhost" || host.ends_with(".localhost") {
            return true;
        }
        let ip = host.parse::<IpAddr>().ok();
        if ip.is_some_and(|ip| ip.is_loopback()) {
            return true;
        }
        self.inner.cfg.insecure_registries.iter().any(|entry| {
            let entry = entry
                .trim_start_matches("http://")
                .trim_start_matches("https://")
                .trim_end_matches('/');
            entry == registry || entry == host || ip.is_some_and(|ip| in_cidr(ip, entry))
        })
    }

    pub(crate) fn target(&self, registry: &str) -> Result<Target> {
        if registry.is_empty() || registry.contains(['/', '?', '#', '@', ' ']) {
            return Err(RegistryError::InvalidInput(format!(
                "'{registry}' is not a registry host[:port]"
            )));
        }
        if credentials::is_docker_hub(registry) {
            return Ok(Target {
                name: "docker.io".into(),
                cred_key: "docker.io".into(),
                bases: vec![self.docker_hub_url()?],
                insecure_tls: false,
                is_mirror: false,
            });
        }
        let parse = |scheme: &str| {
            Url::parse(&format!("{scheme}://{registry}/")).map_err(|e| {
                RegistryError::InvalidInput(format!("'{registry}' is not a registry host[:port] ({e})"))
            })
        };
        let insecure = self.is_insecure(registry);
        let mut bases = vec![parse("https")?];
        if insecure {
            bases.push(parse("http")?);
        }
        Ok(Target {
            name: registry.to_string(),
            cred_key: registry.to_string(),
            bases,
            insecure_tls: insecure,
            is_mirror: false,
        })
    }

    fn docker_hub_url(&self) -> Result<Url> {
        base_url(&self.inner.cfg.docker_hub, "the Docker Hub URL")
    }

    /// The HTTP client, built on first use: loading the system's root certificates costs
    /// milliseconds that commands which never reach a registry (`run`, `ps`) should not pay.
    pub(crate) fn client_for(&self, insecure_tls: bool) -> Result<&reqwest::Client> {
        let cell = if insecure_tls {
            &self.inner.insecure
        } else {
            &self.inner.secure
        };
        cell.get_or_init(|| {
            reqwest::Client::builder()
                .user_agent(self.inner.cfg.user_agent.clone())
                .connect_timeout(self.inner.cfg.connect_timeout)
                .read_timeout(self.inner.cfg.read_timeout)
                .danger_accept_invalid_certs(insecure_tls)
                .build()
                .map_err(|e| format!("cannot set up the HTTP client: {e}"))
        })
        .as_ref()
        .map_err(|e| RegistryError::InvalidInput(e.clone()))
    }

    /// The endpoint for a target, pinging `GET /v2/` the first time to learn the scheme
    /// and the authentication the registry wants. Not retried here: callers retry the
    /// whole operation.
    pub(crate) async fn endpoint(&self, target: &Target) -> Result<Arc<Endpoint>> {
        let key = target.bases[0].to_string();
        if let Some(ep) = self.inner.endpoints.lock().expect("endpoint cache").get(&key) {
            return Ok(ep.clone());
        }
        let ep = self.ping(target).await?;
        let ep = Arc::new(ep);
        self.inner
            .endpoints
            .lock()
            .expect("endpoint cache")
            .insert(key, ep.clone());
        Ok(ep)
    }

    async fn ping(&self, target: &Target) -> Result<Endpoint> {
        let mut last = None;
        for base in &target.bases {
            match self.ping_base(target, base).await {
                Ok(challenge) => {
                    tracing::debug!(registry = %target.name, %base, "registry endpoint ready");
                    return Ok(Endpoint {
                        name: target.name.clone(),
                        cred_key: target.cred_key.clone(),
                        base: base.clone(),
                        insecure_tls: target.insecure_tls,
                        challenge: Mutex::new(challenge),
                    });
                }
                Err(e) => {
                    tracing::debug!(registry = %target.name, %base, error = %e, "registry ping failed");
                    last = Some(e);
                }
            }
        }
        Err(last.expect("a target has at least one base URL"))
    }

    async fn ping_base(&self, target: &Target, base: &Url) -> Result<Option<Challenge>> {
        let url = base
            .join("v2/")
            .map_err(|e| RegistryError::InvalidInput(e.to_string()))?;
        let resp = self
            .client_for(target.insecure_tls)?
            .get(url)
            .send()
            .await
            .map_err(|e| RegistryError::from_send(&target.name, "GET /v2/", e))?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED {
            return Ok(challenge_of(&resp));
        }
        if status.is_success() {
            return Ok(None);
        }
        Err(error_for(resp, &target.name, "the API check (GET /v2/)", false).await)
    }

    // ----- sending ---------------------------------------------------------------------

    /// Sends a request with the authorization `scopes` need. On a 401 it learns the
    /// registry's challenge, gets new authorization and sends the request once more.
    pub(crate) async fn send(
        &self,
        ep: &Endpoint,
        scopes: &[String],
        what: &str,
        build: &(dyn Fn(&reqwest::Client) -> Result<RequestBuilder> + Send + Sync),
    ) -> Result<Sent> {
        let client = self.client_for(ep.insecure_tls)?;
        let (auth, with_creds) = self.authorization(ep, scopes, false).await?;
        let resp = with_auth(build(client)?, auth.as_deref())
            .send()
            .await
            .map_err(|e| RegistryError::from_send(&ep.name, what, e))?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(Sent {
                resp,
                bearer_with_credentials: auth.is_some() && with_creds,
            });
        }
        let Some(challenge) = challenge_of(&resp) else {
            return Ok(Sent {
                resp,
                bearer_with_credentials: false,
            });
        };
        let mut scopes = scopes.to_vec();
        if let Challenge::Bearer { scope: Some(s), .. } = &challenge {
            scopes.extend(s.split(' ').filter(|s| !s.is_empty()).map(str::to_string));
        }
        let had_challenge = ep
            .challenge
            .lock()
            .expect("challenge")
            .replace(challenge.clone())
            .is_some();
        // Basic with the same credentials would fail again.
        if matches!(challenge, Challenge::Basic) && had_challenge && auth.is_some() {
            return Ok(Sent {
                resp,
                bearer_with_credentials: false,
            });
        }
        let (auth2, with_creds) = self.authorization(ep, &scopes, true).await?;
        if auth2.is_none() {
            return Ok(Sent {
                resp,
                bearer_with_credentials: false,
            });
        }
        let resp = with_auth(build(client)?, auth2.as_deref())
            .send()
            .await
            .map_err(|e| RegistryError::from_send(&ep.name, what, e))?;
        Ok(Sent {
            resp,
            bearer_with_credentials: with_creds && matches!(challenge, Challenge::Bearer { .. }),
        })
    }

    // ----- retries ---------------------------------------------------------------------

    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let base = self.inner.cfg.retry_delay;
        let exp = base.saturating_mul(1u32 << attempt.min(10));
        let jitter_ms = (base.as_millis() as u64 / 2).max(1);
        let jitter = Duration::from_millis(rand::random_range(0..jitter_ms));
        (exp + jitter).min(Duration::from_secs(30))
    }

    pub(crate) async fn retrying<T, F, Fut>(&self, retries: u32, mut op: F) -> Result<T>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempt = 0;
        loop {
            match op(attempt).await {
                Err(e) if e.is_retryable() && attempt < retries => {
                    let delay = self.backoff(attempt);
                    tracing::debug!(error = %e, ?delay, attempt, "retrying registry request");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

fn with_auth(req: RequestBuilder, auth: Option<&str>) -> RequestBuilder {
    match auth {
        Some(a) => req.header(AUTHORIZATION, a),
        None => req,
    }
}

pub(crate) fn body_error(registry: &str, what: &str, e: reqwest::Error) -> RegistryError {
    RegistryError::Interrupted {
        registry: registry.to_string(),
        what: what.to_string(),
        detail: crate::unreachable::root_cause(&e),
    }
}

/// Turns an error status into an error, using the registry's JSON `errors` if present.
pub(crate) async fn error_for(
    resp: Response,
    registry: &str,
    what: &str,
    bearer_with_credentials: bool,
) -> RegistryError {
    let status = resp.status();
    let body = resp.bytes().await.unwrap_or_default();
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let entries = serde_json::from_slice::<Errors>(&body)
        .map(|e| e.errors)
        .unwrap_or_default();
    let codes: Vec<&str> = entries.iter().map(|e| e.code.as_str()).collect();
    let mut message = entries
        .iter()
        .map(|e| {
            if e.message.is_empty() {
                e.code.to_lowercase()
            } else {
                e.message.clone()
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    if message.is_empty() {
        let text = String::from_utf8_lossy(&body);
        let text = text.trim();
        message = if !text.is_empty() && text.len() < 200 && !text.starts_with('<') {
            text.to_string()
        } else {
            status.canonical_reason().unwrap_or("error").to_lowercase()
        };
    }
    let registry = registry.to_string();
    match status {
        StatusCode::UNAUTHORIZED if bearer_with_credentials || codes.contains(&"DENIED") => {
            RegistryError::Denied {
                registry,
                what: what.to_string(),
            }
        }
        StatusCode::UNAUTHORIZED => RegistryError::Unauthorized { registry },
        StatusCode::FORBIDDEN => RegistryError::Denied {
            registry,
            what: what.to_string(),
        },
        StatusCode::NOT_FOUND => RegistryError::NotFound {
            what: format!("{what} on registry {registry}"),
        },
        _ => RegistryError::Http {
            registry,
            what: what.to_string(),
            status: status.as_u16(),
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DOCKER_HUB_API;

    #[test]
    fn hosts_and_insecure_rules() {
        assert_eq!(host_of("127.0.0.1:5000"), "127.0.0.1");
        assert_eq!(host_of("[::1]:5000"), "::1");
        assert_eq!(host_of("ghcr.io"), "ghcr.io");
        let c = RegistryClient::new(ClientConfig {
            insecure_registries: vec!["reg.lan:5000".into(), "10.0.0.0/8".into()],
            docker_config: None,
            ..Default::default()
        })
        .unwrap();
        assert!(c.is_insecure("localhost:5000"));
        assert!(c.is_insecure("127.0.0.2:80"));
        assert!(c.is_insecure("[::1]:5000"));
        assert!(c.is_insecure("reg.lan:5000"));
        assert!(c.is_insecure("10.1.2.3:5000"));
        assert!(!c.is_insecure("reg.lan:5001"));
        assert!(!c.is_insecure("ghcr.io"));
        assert!(!c.is_insecure("11.0.0.1"));
        let t = c.target("docker.io").unwrap();
        assert_eq!(t.bases[0].as_str(), DOCKER_HUB_API);
        let t = c.target("localhost:5000").unwrap();
        assert_eq!(t.bases.len(), 2);
        assert_eq!(t.bases[1].as_str(), "http://localhost:5000/");
        assert_eq!(c.target("ghcr.io").unwrap().bases.len(), 1);
        assert!(c.target("a/b").is_err());
    }

    #[test]
    fn names_are_checked() {
        assert!(check_repo("library/alpine").is_ok());
        assert!(check_repo("a/../b").is_err());
        assert!(check_repo("Upper").is_err());
        assert!(check_reference("v1.0-rc_1").is_ok());
        assert!(check_reference("a?b").is_err());
    }
}
