//! The registry client: endpoints, authentication, retries and the API operations.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use berth_oci::media_type::MANIFEST_ACCEPT;
use berth_oci::{Descriptor, Digest, Sha256Writer};
use bytes::Bytes;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use url::Url;

use crate::auth::{parse_challenges, Challenge, TokenCache, TokenReply};
use crate::credentials::{self, Credential};
use crate::{BlobSink, BlobSource, ClientConfig, FetchedManifest, Mirrors, RegistryError};

type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// Manifests larger than this are refused (containerd uses the same limit).
const MANIFEST_LIMIT: u64 = 4 << 20;
/// How long looked-up credentials are reused before `config.json` is read again.
const CREDENTIAL_TTL: Duration = Duration::from_secs(30);
const OCTET_STREAM: &str = "application/octet-stream";

/// A client for OCI distribution registries. Cloning is cheap: clones share one
/// connection pool, the token cache and what was learned about each registry.
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("config", &self.inner.cfg)
            .finish_non_exhaustive()
    }
}

struct Inner {
    cfg: ClientConfig,
    /// Verifies certificates.
    secure: OnceLock<std::result::Result<reqwest::Client, String>>,
    /// For insecure registries: accepts any certificate.
    insecure: OnceLock<std::result::Result<reqwest::Client, String>>,
    endpoints: Mutex<HashMap<String, Arc<Endpoint>>>,
    tokens: Mutex<TokenCache>,
    creds: Mutex<HashMap<String, (Option<Credential>, Instant)>>,
}

/// One way to reach a registry (a base URL) and what it asked for on `GET /v2/`.
struct Endpoint {
    /// The registry as errors name it: "127.0.0.1:5000", "docker.io", or a mirror's host.
    name: String,
    /// Whose logins apply.
    cred_key: String,
    /// Ends with '/'; API paths ("v2/...") are joined to it.
    base: Url,
    insecure_tls: bool,
    challenge: Mutex<Option<Challenge>>,
}

impl Endpoint {
    fn url(&self, path: &str) -> Result<Url> {
        self.base
            .join(path)
            .map_err(|e| RegistryError::InvalidInput(format!("cannot form a URL from {path}: {e}")))
    }
}

/// How to reach a registry before it has been pinged.
#[derive(Clone)]
struct Target {
    name: String,
    cred_key: String,
    /// Base URLs to try in order (https before http for insecure registries).
    bases: Vec<Url>,
    insecure_tls: bool,
    is_mirror: bool,
}

/// A response, and whether it answered a bearer token obtained with credentials (a 401
/// then means the account lacks access, not that a login is missing).
struct Sent {
    resp: Response,
    bearer_with_credentials: bool,
}

fn pull_scope(repo: &str) -> String {
    format!("repository:{repo}:pull")
}

fn push_scope(repo: &str) -> String {
    format!("repository:{repo}:pull,push")
}

fn check_repo(repo: &str) -> Result<()> {
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

fn check_reference(reference: &str) -> Result<()> {
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
fn base_url(url: &str, what: &str) -> Result<Url> {
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
    fn is_insecure(&self, registry: &str) -> bool {
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

    fn target(&self, registry: &str) -> Result<Target> {
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

    /// Targets for pulling from `registry`: the mirrors first for docker.io.
    fn pull_targets(&self, registry: &str) -> Result<Vec<Target>> {
        let main = self.target(registry)?;
        if main.name != "docker.io" {
            return Ok(vec![main]);
        }
        let mut out = Vec::new();
        for m in &self.inner.cfg.mirrors {
            let base = base_url(m, "registry mirror")?;
            let host = match base.port() {
                Some(p) => format!("{}:{p}", base.host_str().unwrap_or_default()),
                None => base.host_str().unwrap_or_default().to_string(),
            };
            out.push(Target {
                insecure_tls: self.is_insecure(&host),
                name: host.clone(),
                cred_key: host,
                bases: vec![base],
                is_mirror: true,
            });
        }
        out.push(main);
        Ok(out)
    }

    /// Mirrors get no retries: the next mirror, or the registry itself, is tried instead.
    fn retries_for(&self, target: &Target) -> u32 {
        if target.is_mirror {
            0
        } else {
            self.inner.cfg.max_retries
        }
    }

    /// The HTTP client, built on first use: loading the system's root certificates costs
    /// milliseconds that commands which never reach a registry (`run`, `ps`) should not pay.
    fn client_for(&self, insecure_tls: bool) -> Result<&reqwest::Client> {
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
    async fn endpoint(&self, target: &Target) -> Result<Arc<Endpoint>> {
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

    // ----- authentication --------------------------------------------------------------

    async fn credentials(&self, key: &str) -> Result<Option<Credential>> {
        if let Some((c, at)) = self.inner.creds.lock().expect("credential cache").get(key) {
            if at.elapsed() < CREDENTIAL_TTL {
                return Ok(c.clone());
            }
        }
        let Some(path) = self.inner.cfg.docker_config.clone() else {
            return Ok(None);
        };
        let k = key.to_string();
        let found = tokio::task::spawn_blocking(move || credentials::lookup(Some(&path), &k))
            .await
            .map_err(|e| RegistryError::io("credential lookup failed", std::io::Error::other(e)))??;
        self.inner
            .creds
            .lock()
            .expect("credential cache")
            .insert(key.to_string(), (found.clone(), Instant::now()));
        Ok(found)
    }

    /// Asks a token server for a bearer token for `scopes`.
    async fn fetch_token(
        &self,
        ep: &Endpoint,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        cred: Option<&Credential>,
    ) -> Result<TokenReply> {
        let mut url = Url::parse(realm).map_err(|_| RegistryError::Protocol {
            registry: ep.name.clone(),
            detail: format!("its token realm '{realm}' is not a URL"),
        })?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            for s in scopes {
                q.append_pair("scope", s);
            }
        }
        let realm_host = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_string(),
        };
        let mut req = self.client_for(self.is_insecure(&realm_host))?.get(url);
        if let Some(c) = cred {
            req = req.basic_auth(&c.username, Some(&c.password));
        }
        let resp = req
            .send()
            .await
            .map_err(|e| RegistryError::from_send(&ep.name, "the token request", e))?;
        if matches!(resp.status(), StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            return Err(RegistryError::Unauthorized {
                registry: ep.name.clone(),
            });
        }
        if !resp.status().is_success() {
            return Err(error_for(resp, &ep.name, "the token request", false).await);
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| RegistryError::from_send(&ep.name, "the token request", e))?;
        let reply: TokenReply = serde_json::from_slice(&body).map_err(|e| RegistryError::Protocol {
            registry: ep.name.clone(),
            detail: format!("its token server answered something that is not a token ({e})"),
        })?;
        if reply
            .token
            .as_deref()
            .or(reply.access_token.as_deref())
            .unwrap_or("")
            .is_empty()
        {
            return Err(RegistryError::Protocol {
                registry: ep.name.clone(),
                detail: "its token server answered without a token".into(),
            });
        }
        Ok(reply)
    }

    /// The `Authorization` header for a request needing `scopes`, if the registry wants
    /// one; `fresh` skips the token cache. The flag is true for a bearer token obtained
    /// with credentials.
    async fn authorization(
        &self,
        ep: &Endpoint,
        scopes: &[String],
        fresh: bool,
    ) -> Result<(Option<String>, bool)> {
        let challenge = ep.challenge.lock().expect("challenge").clone();
        match challenge {
            None => Ok((None, false)),
            Some(Challenge::Basic) => Ok((self.credentials(&ep.cred_key).await?.map(|c| basic(&c)), false)),
            Some(Challenge::Bearer { realm, service, .. }) => {
                let mut scopes = scopes.to_vec();
                scopes.sort();
                scopes.dedup();
                let key = (
                    format!("{realm} {}", service.as_deref().unwrap_or("")),
                    scopes.join(" "),
                );
                let cred = self.credentials(&ep.cred_key).await?;
                if !fresh {
                    if let Some(t) = self.inner.tokens.lock().expect("token cache").get(&key) {
                        return Ok((Some(format!("Bearer {t}")), cred.is_some()));
                    }
                }
                let reply = self
                    .fetch_token(ep, &realm, service.as_deref(), &scopes, cred.as_ref())
                    .await?;
                let token = reply.token.or(reply.access_token).unwrap_or_default();
                self.inner
                    .tokens
                    .lock()
                    .expect("token cache")
                    .put(key, token.clone(), reply.expires_in);
                Ok((Some(format!("Bearer {token}")), cred.is_some()))
            }
        }
    }

    /// Sends a request with the authorization `scopes` need. On a 401 it learns the
    /// registry's challenge, gets new authorization and sends the request once more.
    async fn send(
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

    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.inner.cfg.retry_delay;
        let exp = base.saturating_mul(1u32 << attempt.min(10));
        let jitter_ms = (base.as_millis() as u64 / 2).max(1);
        let jitter = Duration::from_millis(rand::random_range(0..jitter_ms));
        (exp + jitter).min(Duration::from_secs(30))
    }

    async fn retrying<T, F, Fut>(&self, retries: u32, mut op: F) -> Result<T>
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

    // ----- manifests -------------------------------------------------------------------

    /// Fetches a manifest or index by tag or digest. For a digest reference the content is
    /// verified against it.
    pub async fn get_manifest(&self, registry: &str, repo: &str, reference: &str) -> Result<FetchedManifest> {
        check_repo(repo)?;
        check_reference(reference)?;
        let expected = if reference.contains(':') {
            Some(
                reference
                    .parse::<Digest>()
                    .map_err(|e| RegistryError::InvalidInput(e.to_string()))?,
            )
        } else {
            None
        };
        let targets = self.pull_targets(registry)?;
        let last = targets.len() - 1;
        let mut mirror_errors = Vec::new();
        for (i, target) in targets.iter().enumerate() {
            let res = self
                .retrying(self.retries_for(target), |_| {
                    self.get_manifest_at(target, repo, reference, expected.as_ref())
                })
                .await;
            match res {
                Err(e) if target.is_mirror && i < last => {
                    tracing::info!(mirror = %target.name, error = %e, "registry mirror failed; trying the next");
                    mirror_errors.push((target.name.clone(), e));
                }
                Err(RegistryError::Unreachable(mut u)) if !mirror_errors.is_empty() => {
                    // Docker Hub is out of reach, and the mirrors did not help: say how,
                    // with their own words in the details.
                    u.mirrors = if mirror_errors
                        .iter()
                        .all(|(_, e)| matches!(e, RegistryError::Unreachable(_)))
                    {
                        Mirrors::Unreachable
                    } else {
                        Mirrors::Lacked
                    };
                    for (name, e) in &mirror_errors {
                        let said = match e {
                            RegistryError::Unreachable(m) => m.detail.clone(),
                            other => other.to_string(),
                        };
                        u.detail.push_str(&format!("; mirror {name}: {said}"));
                    }
                    return Err(RegistryError::Unreachable(u));
                }
                other => return other,
            }
        }
        unreachable_targets()
    }

    async fn get_manifest_at(
        &self,
        target: &Target,
        repo: &str,
        reference: &str,
        expected: Option<&Digest>,
    ) -> Result<FetchedManifest> {
        let ep = self.endpoint(target).await?;
        let url = ep.url(&format!("v2/{repo}/manifests/{reference}"))?;
        let what = format!("manifest {reference} of {repo}");
        let accept = MANIFEST_ACCEPT.join(", ");
        let sent = self
            .send(&ep, &[pull_scope(repo)], &what, &|c| {
                Ok(c.get(url.clone()).header(ACCEPT, &accept))
            })
            .await?;
        let mut resp = sent.resp;
        if !resp.status().is_success() {
            return Err(error_for(resp, &ep.name, &what, sent.bearer_with_credentials).await);
        }
        if resp.content_length().is_some_and(|l| l > MANIFEST_LIMIT) {
            return Err(RegistryError::TooLarge {
                what,
                limit: MANIFEST_LIMIT,
            });
        }
        let header_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_string())
            .unwrap_or_default();
        let mut bytes = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| body_error(&ep.name, &what, e))? {
            if bytes.len() as u64 + chunk.len() as u64 > MANIFEST_LIMIT {
                return Err(RegistryError::TooLarge {
                    what,
                    limit: MANIFEST_LIMIT,
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        let digest = Digest::of(&bytes);
        if let Some(exp) = expected {
            if *exp != digest {
                return Err(RegistryError::DigestMismatch {
                    expected: exp.clone(),
                    actual: digest,
                });
            }
        }
        let media_type =
            if header_type.is_empty() || header_type == "application/json" || header_type == "text/plain" {
                #[derive(serde::Deserialize)]
                struct Probe {
                    #[serde(rename = "mediaType", default)]
                    media_type: String,
                }
                serde_json::from_slice::<Probe>(&bytes)
                    .map(|p| p.media_type)
                    .unwrap_or_default()
            } else {
                header_type
            };
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// Uploads a manifest under a tag or its digest; returns its digest.
    pub async fn put_manifest(
        &self,
        registry: &str,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest> {
        check_repo(repo)?;
        check_reference(reference)?;
        let digest = Digest::of(bytes);
        if reference.contains(':') && reference != digest.to_string() {
            return Err(RegistryError::DigestMismatch {
                expected: reference
                    .parse()
                    .map_err(|e: berth_oci::DigestError| RegistryError::InvalidInput(e.to_string()))?,
                actual: digest,
            });
        }
        let target = self.target(registry)?;
        let body = Bytes::copy_from_slice(bytes);
        let what = format!("manifest {reference} of {repo}");
        self.retrying(self.inner.cfg.max_retries, |_| async {
            let ep = self.endpoint(&target).await?;
            let url = ep.url(&format!("v2/{repo}/manifests/{reference}"))?;
            let sent = self
                .send(&ep, &[push_scope(repo)], &what, &|c| {
                    Ok(c.put(url.clone())
                        .header(CONTENT_TYPE, media_type)
                        .body(body.clone()))
                })
                .await?;
            if !sent.resp.status().is_success() {
                return Err(error_for(sent.resp, &ep.name, &what, sent.bearer_with_credentials).await);
            }
            check_digest_header(&sent.resp, &digest)
        })
        .await?;
        Ok(digest)
    }

    // ----- blobs -----------------------------------------------------------------------

    /// Whether the repository has the blob; its size if so.
    pub async fn blob_exists(&self, registry: &str, repo: &str, digest: &Digest) -> Result<Option<u64>> {
        check_repo(repo)?;
        let targets = self.pull_targets(registry)?;
        let last = targets.len() - 1;
        for (i, target) in targets.iter().enumerate() {
            let res = self
                .retrying(self.retries_for(target), |_| {
                    self.blob_exists_at(target, repo, digest)
                })
                .await;
            match res {
                Err(e) if target.is_mirror && i < last => {
                    tracing::info!(mirror = %target.name, error = %e, "registry mirror failed; trying the next");
                }
                Ok(None) if target.is_mirror && i < last => {}
                other => return other,
            }
        }
        unreachable_targets()
    }

    async fn blob_exists_at(&self, target: &Target, repo: &str, digest: &Digest) -> Result<Option<u64>> {
        let ep = self.endpoint(target).await?;
        let url = ep.url(&format!("v2/{repo}/blobs/{digest}"))?;
        let what = format!("blob {digest} of {repo}");
        let sent = self
            .send(&ep, &[pull_scope(repo)], &what, &|c| Ok(c.head(url.clone())))
            .await?;
        match sent.resp.status() {
            s if s.is_success() => Ok(Some(
                sent.resp
                    .headers()
                    .get(CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            )),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(error_for(sent.resp, &ep.name, &what, sent.bearer_with_credentials).await),
        }
    }

    /// Downloads a blob into `sink`, resuming from `sink.offset()` and retrying cut
    /// transfers. `progress` gets the number of bytes the sink holds.
    pub async fn fetch_blob(
        &self,
        registry: &str,
        repo: &str,
        desc: &Descriptor,
        sink: &mut (dyn BlobSink + Send),
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<()> {
        check_repo(repo)?;
        let targets = self.pull_targets(registry)?;
        let last = targets.len() - 1;
        for (i, target) in targets.iter().enumerate() {
            match self.fetch_blob_at(target, repo, desc, &mut *sink, progress).await {
                Err(e) if target.is_mirror && i < last && !matches!(e, RegistryError::Io { .. }) => {
                    tracing::info!(mirror = %target.name, error = %e, "registry mirror failed; trying the next");
                }
                other => return other,
            }
        }
        unreachable_targets()
    }

    async fn fetch_blob_at(
        &self,
        target: &Target,
        repo: &str,
        desc: &Descriptor,
        sink: &mut (dyn BlobSink + Send),
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<()> {
        let ep = self
            .retrying(self.retries_for(target), |_| self.endpoint(target))
            .await?;
        let url = ep.url(&format!("v2/{repo}/blobs/{}", desc.digest))?;
        let what = format!("blob {} of {repo}", desc.digest);
        let mut hasher = (sink.offset() == 0).then(Sha256Writer::new);
        let mut best = sink.offset();
        let mut failures = 0;
        loop {
            match self
                .fetch_attempt(&ep, &url, &what, repo, desc, sink, progress, &mut hasher)
                .await
            {
                Err(e) if e.is_retryable() => {
                    let now = sink.offset();
                    if now > best {
                        best = now;
                        failures = 0;
                    } else {
                        failures += 1;
                    }
                    if failures > self.inner.cfg.max_retries {
                        return Err(e);
                    }
                    let delay = self.backoff(failures.saturating_sub(1));
                    tracing::debug!(error = %e, offset = now, ?delay, "blob download failed; resuming");
                    tokio::time::sleep(delay).await;
                }
                other => return other,
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn fetch_attempt(
        &self,
        ep: &Endpoint,
        url: &Url,
        what: &str,
        repo: &str,
        desc: &Descriptor,
        sink: &mut (dyn BlobSink + Send),
        progress: &(dyn Fn(u64) + Send + Sync),
        hasher: &mut Option<Sha256Writer>,
    ) -> Result<()> {
        let io_err = |e| RegistryError::io(format!("cannot store {what}"), e);
        let mut offset = sink.offset();
        if offset > desc.size {
            sink.restart().map_err(io_err)?;
            offset = 0;
        }
        if offset == 0 {
            *hasher = Some(Sha256Writer::new());
        } else if hasher.as_ref().is_some_and(|h| h.len() != offset) {
            *hasher = None;
        }
        if offset == desc.size {
            progress(offset);
            return finish_hash(hasher, desc);
        }
        let sent = self
            .send(ep, &[pull_scope(repo)], what, &|c| {
                let req = c.get(url.clone());
                Ok(if offset > 0 {
                    req.header(RANGE, format!("bytes={offset}-"))
                } else {
                    req
                })
            })
            .await?;
        let mut resp = sent.resp;
        match resp.status() {
            StatusCode::PARTIAL_CONTENT if offset > 0 => {
                let start = resp
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("bytes "))
                    .and_then(|v| v.split('-').next())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                if start.is_some_and(|s| s != offset) {
                    return Err(RegistryError::Protocol {
                        registry: ep.name.clone(),
                        detail: format!(
                            "it answered a request for {what} from byte {offset} with another range"
                        ),
                    });
                }
            }
            s if s.is_success() => {
                if offset > 0 {
                    tracing::debug!(%what, "registry does not resume downloads; starting over");
                    sink.restart().map_err(io_err)?;
                    offset = 0;
                    *hasher = Some(Sha256Writer::new());
                }
            }
            StatusCode::RANGE_NOT_SATISFIABLE if offset > 0 => {
                sink.restart().map_err(io_err)?;
                *hasher = Some(Sha256Writer::new());
                return Err(RegistryError::Interrupted {
                    registry: ep.name.clone(),
                    what: what.to_string(),
                    detail: "the registry refused to resume it".into(),
                });
            }
            _ => return Err(error_for(resp, &ep.name, what, sent.bearer_with_credentials).await),
        }
        if resp.content_length().is_some_and(|l| offset + l > desc.size) {
            return Err(RegistryError::TooLarge {
                what: what.to_string(),
                limit: desc.size,
            });
        }
        while let Some(chunk) = resp.chunk().await.map_err(|e| body_error(&ep.name, what, e))? {
            if offset + chunk.len() as u64 > desc.size {
                return Err(RegistryError::TooLarge {
                    what: what.to_string(),
                    limit: desc.size,
                });
            }
            sink.write(&chunk).map_err(io_err)?;
            if let Some(h) = hasher.as_mut() {
                h.update(&chunk);
            }
            offset += chunk.len() as u64;
            progress(offset);
        }
        if offset < desc.size {
            return Err(RegistryError::Interrupted {
                registry: ep.name.clone(),
                what: what.to_string(),
                detail: format!("the connection closed after {offset} of {} bytes", desc.size),
            });
        }
        let res = finish_hash(hasher, desc);
        if res.is_err() {
            sink.restart().map_err(io_err)?;
        }
        res
    }

    /// Asks the registry to link a blob from another repository on it. Returns false if
    /// it did not (the blob must then be uploaded).
    pub async fn mount_blob(
        &self,
        registry: &str,
        repo: &str,
        digest: &Digest,
        from_repo: &str,
    ) -> Result<bool> {
        check_repo(repo)?;
        check_repo(from_repo)?;
        let target = self.target(registry)?;
        let what = format!("blob {digest} of {repo}");
        self.retrying(self.inner.cfg.max_retries, |_| async {
            let ep = self.endpoint(&target).await?;
            let mut url = ep.url(&format!("v2/{repo}/blobs/uploads/"))?;
            url.query_pairs_mut()
                .append_pair("mount", &digest.to_string())
                .append_pair("from", from_repo);
            let scopes = [push_scope(repo), pull_scope(from_repo)];
            let sent = self
                .send(&ep, &scopes, &what, &|c| Ok(c.post(url.clone())))
                .await?;
            match sent.resp.status() {
                StatusCode::CREATED => Ok(true),
                StatusCode::ACCEPTED => {
                    // The registry started an ordinary upload instead; cancel it.
                    if let Ok(loc) = location(&sent.resp, &ep.name) {
                        let _ = self
                            .send(&ep, &scopes, &what, &|c| Ok(c.delete(loc.clone())))
                            .await;
                    }
                    Ok(false)
                }
                _ => Err(error_for(sent.resp, &ep.name, &what, sent.bearer_with_credentials).await),
            }
        })
        .await
    }

    /// Uploads a blob: one PUT for blobs up to the chunk threshold, PATCHes of
    /// `chunk_size` then a PUT for larger ones. A failed upload is started again.
    pub async fn push_blob(
        &self,
        registry: &str,
        repo: &str,
        desc: &Descriptor,
        source: &(dyn BlobSource + Sync),
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<()> {
        check_repo(repo)?;
        let target = self.target(registry)?;
        let chunked = desc.size > self.inner.cfg.chunk_threshold;
        self.retrying(self.inner.cfg.max_retries, |_| async {
            let ep = self.endpoint(&target).await?;
            let start = self.start_upload(&ep, repo).await?;
            if chunked {
                self.push_chunked(&ep, repo, desc, source, progress, start).await
            } else {
                self.push_monolithic(&ep, repo, desc, source, progress, start)
                    .await
            }
        })
        .await
    }

    async fn start_upload(&self, ep: &Endpoint, repo: &str) -> Result<Url> {
        let url = ep.url(&format!("v2/{repo}/blobs/uploads/"))?;
        let what = format!("an upload to {repo}");
        let sent = self
            .send(ep, &[push_scope(repo)], &what, &|c| {
                Ok(c.post(url.clone()).header(CONTENT_LENGTH, 0))
            })
            .await?;
        if sent.resp.status() != StatusCode::ACCEPTED {
            return Err(error_for(sent.resp, &ep.name, &what, sent.bearer_with_credentials).await);
        }
        location(&sent.resp, &ep.name)
    }

    async fn push_monolithic(
        &self,
        ep: &Endpoint,
        repo: &str,
        desc: &Descriptor,
        source: &(dyn BlobSource + Sync),
        progress: &(dyn Fn(u64) + Send + Sync),
        mut url: Url,
    ) -> Result<()> {
        let what = format!("blob {} of {repo}", desc.digest);
        url.query_pairs_mut()
            .append_pair("digest", &desc.digest.to_string());
        let counter = Arc::new(AtomicU64::new(0));
        let read_failure: Arc<Mutex<Option<std::io::Error>>> = Arc::default();
        let build = |c: &reqwest::Client| -> Result<RequestBuilder> {
            let reader = source
                .open()
                .map_err(|e| RegistryError::io(format!("cannot read {what}"), e))?;
            counter.store(0, Ordering::Relaxed);
            Ok(c.put(url.clone())
                .header(CONTENT_TYPE, OCTET_STREAM)
                .header(CONTENT_LENGTH, desc.size)
                .body(reader_body(
                    reader,
                    desc.size,
                    counter.clone(),
                    read_failure.clone(),
                )))
        };
        let sent = with_progress(
            self.send(ep, &[push_scope(repo)], &what, &build),
            &counter,
            progress,
        )
        .await;
        // A failure of the local source surfaces as a failed request; report it as what it is.
        if let Some(e) = read_failure.lock().expect("read failure").take() {
            return Err(RegistryError::io(format!("cannot read {what}"), e));
        }
        let sent = sent?;
        if sent.resp.status() != StatusCode::CREATED {
            return Err(error_for(sent.resp, &ep.name, &what, sent.bearer_with_credentials).await);
        }
        check_digest_header(&sent.resp, &desc.digest)
    }

    async fn push_chunked(
        &self,
        ep: &Endpoint,
        repo: &str,
        desc: &Descriptor,
        source: &(dyn BlobSource + Sync),
        progress: &(dyn Fn(u64) + Send + Sync),
        mut url: Url,
    ) -> Result<()> {
        let what = format!("blob {} of {repo}", desc.digest);
        let read_err = |e| RegistryError::io(format!("cannot read {what}"), e);
        let scopes = [push_scope(repo)];
        let mut reader = source.open().map_err(read_err)?;
        let mut hasher = Sha256Writer::new();
        let mut sent_bytes = 0u64;
        while sent_bytes < desc.size {
            let n = (desc.size - sent_bytes).min(self.inner.cfg.chunk_size) as usize;
            let (r, buf) = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; n];
                let res = reader.read_exact(&mut buf);
                res.map(|()| (reader, buf))
            })
            .await
            .map_err(|e| read_err(std::io::Error::other(e)))?
            .map_err(|e| {
                read_err(if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    std::io::Error::new(
                        e.kind(),
                        format!("the content is shorter than its {} bytes", desc.size),
                    )
                } else {
                    e
                })
            })?;
            reader = r;
            hasher.update(&buf);
            let body = Bytes::from(buf);
            let range = format!("{}-{}", sent_bytes, sent_bytes + n as u64 - 1);
            let sent = self
                .send(ep, &scopes, &what, &|c| {
                    Ok(c.patch(url.clone())
                        .header(CONTENT_TYPE, OCTET_STREAM)
                        .header(CONTENT_RANGE, &range)
                        .header(CONTENT_LENGTH, n)
                        .body(body.clone()))
                })
                .await?;
            if sent.resp.status() != StatusCode::ACCEPTED {
                return Err(error_for(sent.resp, &ep.name, &what, sent.bearer_with_credentials).await);
            }
            url = location(&sent.resp, &ep.name)?;
            sent_bytes += n as u64;
            progress(sent_bytes);
        }
        let actual = hasher.finish();
        if actual != desc.digest {
            return Err(RegistryError::DigestMismatch {
                expected: desc.digest.clone(),
                actual,
            });
        }
        url.query_pairs_mut()
            .append_pair("digest", &desc.digest.to_string());
        let sent = self
            .send(ep, &scopes, &what, &|c| {
                Ok(c.put(url.clone())
                    .header(CONTENT_TYPE, OCTET_STREAM)
                    .header(CONTENT_LENGTH, 0))
            })
            .await?;
        if sent.resp.status() != StatusCode::CREATED {
            return Err(error_for(sent.resp, &ep.name, &what, sent.bearer_with_credentials).await);
        }
        check_digest_header(&sent.resp, &desc.digest)
    }

    // ----- login -----------------------------------------------------------------------

    /// Checks that `username`/`password` are accepted by the registry, the way `docker
    /// login` does: `GET /v2/` with Basic credentials or a token obtained with them.
    pub async fn check_login(&self, registry: &str, username: &str, password: &str) -> Result<()> {
        let target = self.target(registry)?;
        let ep = self
            .retrying(self.inner.cfg.max_retries, |_| self.endpoint(&target))
            .await?;
        let cred = Credential {
            username: username.to_string(),
            password: password.to_string(),
        };
        let challenge = ep.challenge.lock().expect("challenge").clone();
        let auth = match challenge {
            None => return Ok(()),
            Some(Challenge::Basic) => basic(&cred),
            Some(Challenge::Bearer { realm, service, .. }) => {
                let reply = self
                    .retrying(self.inner.cfg.max_retries, |_| {
                        self.fetch_token(&ep, &realm, service.as_deref(), &[], Some(&cred))
                    })
                    .await?;
                format!(
                    "Bearer {}",
                    reply.token.or(reply.access_token).unwrap_or_default()
                )
            }
        };
        let url = ep.url("v2/")?;
        let resp = self
            .retrying(self.inner.cfg.max_retries, |_| async {
                self.client_for(ep.insecure_tls)?
                    .request(Method::GET, url.clone())
                    .header(AUTHORIZATION, &auth)
                    .send()
                    .await
                    .map_err(|e| RegistryError::from_send(&ep.name, "the login check", e))
            })
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(RegistryError::Unauthorized {
                registry: ep.name.clone(),
            }),
            _ => Err(error_for(resp, &ep.name, "the login check", false).await),
        }
    }
}

fn unreachable_targets<T>() -> Result<T> {
    Err(RegistryError::InvalidInput("no registry endpoint to try".into()))
}

fn basic(c: &Credential) -> String {
    let raw = format!("{}:{}", c.username, c.password);
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
}

fn with_auth(req: RequestBuilder, auth: Option<&str>) -> RequestBuilder {
    match auth {
        Some(a) => req.header(AUTHORIZATION, a),
        None => req,
    }
}

fn challenge_of(resp: &Response) -> Option<Challenge> {
    resp.headers()
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(parse_challenges)
        .reduce(|a, b| {
            if matches!(a, Challenge::Bearer { .. }) {
                a
            } else {
                b
            }
        })
}

fn location(resp: &Response, registry: &str) -> Result<Url> {
    let loc = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| RegistryError::Protocol {
            registry: registry.to_string(),
            detail: "an upload response has no Location header".into(),
        })?;
    resp.url().join(loc).map_err(|e| RegistryError::Protocol {
        registry: registry.to_string(),
        detail: format!("the upload location '{loc}' is not a URL ({e})"),
    })
}

fn check_digest_header(resp: &Response, expected: &Digest) -> Result<()> {
    let got = resp
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<Digest>().ok());
    match got {
        Some(actual) if actual != *expected => Err(RegistryError::DigestMismatch {
            expected: expected.clone(),
            actual,
        }),
        _ => Ok(()),
    }
}

fn finish_hash(hasher: &mut Option<Sha256Writer>, desc: &Descriptor) -> Result<()> {
    if let Some(h) = hasher.take() {
        let actual = h.finish();
        if actual != desc.digest {
            return Err(RegistryError::DigestMismatch {
                expected: desc.digest.clone(),
                actual,
            });
        }
    }
    Ok(())
}

fn body_error(registry: &str, what: &str, e: reqwest::Error) -> RegistryError {
    RegistryError::Interrupted {
        registry: registry.to_string(),
        what: what.to_string(),
        detail: crate::unreachable::root_cause(&e),
    }
}

/// Turns an error status into an error, using the registry's JSON `errors` if present.
async fn error_for(
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

/// A request body read from a blocking reader, `size` bytes exactly, counting what was
/// read into `counter`. A read error is also left in `failure`.
fn reader_body(
    reader: Box<dyn std::io::Read + Send>,
    size: u64,
    counter: Arc<AtomicU64>,
    failure: Arc<Mutex<Option<std::io::Error>>>,
) -> reqwest::Body {
    let stream = futures_util::stream::try_unfold((reader, 0u64), move |(reader, done)| {
        let counter = counter.clone();
        let failure = failure.clone();
        async move {
            let res = read_step(reader, done, size, &counter).await;
            if let Err(e) = &res {
                *failure.lock().expect("read failure") = Some(std::io::Error::new(e.kind(), e.to_string()));
            }
            res
        }
    });
    reqwest::Body::wrap_stream(stream)
}

type ReadStep = Option<(Bytes, (Box<dyn std::io::Read + Send>, u64))>;

/// Reads the next piece (up to 1 MiB) of an upload on the blocking pool.
async fn read_step(
    mut reader: Box<dyn std::io::Read + Send>,
    done: u64,
    size: u64,
    counter: &AtomicU64,
) -> std::io::Result<ReadStep> {
    const STEP: u64 = 1 << 20;
    if done >= size {
        return Ok(None);
    }
    let want = (size - done).min(STEP) as usize;
    let (reader, buf) = tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; want];
        let n = loop {
            match reader.read(&mut buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        buf.truncate(n);
        Ok((reader, buf))
    })
    .await
    .map_err(std::io::Error::other)??;
    if buf.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("the content ended after {done} of its {size} bytes"),
        ));
    }
    let n = buf.len() as u64;
    counter.fetch_add(n, Ordering::Relaxed);
    Ok(Some((Bytes::from(buf), (reader, done + n))))
}

/// Runs `fut`, reporting `counter` to `progress` every 100 ms and at the end.
async fn with_progress<F: Future>(
    fut: F,
    counter: &AtomicU64,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            out = &mut fut => {
                progress(counter.load(Ordering::Relaxed));
                return out;
            }
            _ = tick.tick() => progress(counter.load(Ordering::Relaxed)),
        }
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

    #[test]
    fn mirrors_come_first_for_docker_hub() {
        let c = RegistryClient::new(ClientConfig {
            mirrors: vec!["http://127.0.0.1:5000".into()],
            docker_config: None,
            ..Default::default()
        })
        .unwrap();
        let t = c.pull_targets("docker.io").unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].bases[0].as_str(), "http://127.0.0.1:5000/");
        assert!(t[0].is_mirror);
        assert_eq!(c.pull_targets("ghcr.io").unwrap().len(), 1);
        assert!(RegistryClient::new(ClientConfig {
            mirrors: vec!["ftp://x".into()],
            ..Default::default()
        })
        .is_err());
    }
}
