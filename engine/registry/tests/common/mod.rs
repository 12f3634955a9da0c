//! Test harness: a real CNCF distribution registry (`/usr/bin/docker-registry`) on a free
//! loopback port, optionally with htpasswd or token authentication, and a small token
//! server that signs RS256 JWTs the way distribution's token auth expects.
//!
//! Kept free of anything specific to one test file so that it can move to a shared crate.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use berth_registry::{BlobSink, BlobSource, ClientConfig, RegistryClient};

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
pub const TOKEN_SERVICE: &str = "berth-test-registry";
pub const TOKEN_ISSUER: &str = "berth-test-issuer";

/// A free TCP port on 127.0.0.1 (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How the registry authenticates clients.
pub enum Auth {
    None,
    /// An htpasswd file with one user.
    Htpasswd {
        user: String,
        password: String,
    },
    /// Bearer tokens from `realm`, signed by the key whose certificate is `cert`.
    Token {
        realm: String,
        cert: PathBuf,
    },
}

/// A running registry; killed on drop.
pub struct TestRegistry {
    child: Child,
    /// "127.0.0.1:PORT", as a registry name in a reference.
    pub addr: String,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl TestRegistry {
    pub fn start() -> TestRegistry {
        Self::start_with(Auth::None)
    }

    pub fn start_with(auth: Auth) -> TestRegistry {
        Self::start_with_config(auth, "")
    }

    /// Starts a registry whose config.yml ends with `extra` (top-level YAML sections).
    pub fn start_with_config(auth: Auth, extra: &str) -> TestRegistry {
        let dir = tempfile::tempdir().unwrap();
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).unwrap();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let auth_section = match &auth {
            Auth::None => String::new(),
            Auth::Htpasswd { user, password } => {
                let out = Command::new("htpasswd").args(["-Bbn", user, password]).output().unwrap();
                assert!(out.status.success(), "htpasswd failed");
                let path = dir.path().join("htpasswd");
                std::fs::write(&path, &out.stdout).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                    path.display()
                )
            }
            Auth::Token { realm, cert } => format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {TOKEN_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                cert.display()
            ),
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{auth_section}{extra}",
            storage.display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let mut reg = TestRegistry {
            child,
            addr,
            port,
            dir,
        };
        reg.wait_ready();
        reg
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("docker-registry exited with {status}: {}", self.log());
            }
            if let Ok(mut s) = TcpStream::connect(&self.addr) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let req = format!(
                    "GET /v2/ HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                    self.addr
                );
                if s.write_all(req.as_bytes()).is_ok() {
                    let mut buf = [0u8; 12];
                    if s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.1") {
                        return;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// The root directory of the registry's filesystem storage.
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// The file holding a blob in the registry's filesystem storage.
    pub fn blob_data_path(&self, digest: &berth_registry::Digest) -> PathBuf {
        let hex = digest.hex();
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client for tests: no stored logins (unless `docker_config` is given), fast retries.
pub fn client_config(docker_config: Option<PathBuf>) -> ClientConfig {
    ClientConfig {
        docker_config,
        max_retries: 2,
        retry_delay: Duration::from_millis(20),
        ..ClientConfig::default()
    }
}

pub fn client() -> RegistryClient {
    RegistryClient::new(client_config(None)).unwrap()
}

/// Writes a docker config.json with a base64 login for `registry`; returns its path.
pub fn docker_config_with_login(dir: &Path, registry: &str, user: &str, password: &str) -> PathBuf {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let path = dir.join("config.json");
    std::fs::write(
        &path,
        format!(r#"{{"auths":{{"{registry}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    path
}

/// A sink collecting bytes in memory.
#[derive(Default)]
pub struct VecSink {
    pub data: Vec<u8>,
    pub restarts: usize,
}

impl BlobSink for VecSink {
    fn offset(&self) -> u64 {
        self.data.len() as u64
    }
    fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(data);
        Ok(())
    }
    fn restart(&mut self) -> std::io::Result<()> {
        self.data.clear();
        self.restarts += 1;
        Ok(())
    }
}

/// A source serving bytes from memory.
pub struct VecSource(pub Vec<u8>);

impl BlobSource for VecSource {
    fn open(&self) -> std::io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(std::io::Cursor::new(self.0.clone())))
    }
}

/// Deterministic pseudo-random bytes.
pub fn test_bytes(len: usize, seed: u8) -> Vec<u8> {
    let mut x = 0x9e37_79b9_u32 ^ u32::from(seed);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

// ----- token server ------------------------------------------------------------------

/// A key pair and self-signed certificate made with the openssl CLI.
pub struct SigningKey {
    pub key: PathBuf,
    pub cert: PathBuf,
    /// The certificate in DER, base64 (standard alphabet), for the JWT `x5c` header.
    pub cert_der_b64: String,
}

impl SigningKey {
    pub fn generate(dir: &Path) -> SigningKey {
        let key = dir.join("token.key");
        let cert = dir.join("token.crt");
        let out = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=berth-test-token",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl req: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let der = Command::new("openssl")
            .args(["x509", "-outform", "der", "-in"])
            .arg(&cert)
            .output()
            .unwrap();
        assert!(der.status.success());
        SigningKey {
            key,
            cert,
            cert_der_b64: base64::engine::general_purpose::STANDARD.encode(&der.stdout),
        }
    }

    /// An RS256 JWT for `claims`, carrying the certificate in `x5c`.
    pub fn sign(&self, claims: &serde_json::Value) -> String {
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [self.cert_der_b64]});
        let signing_input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let mut child = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(&self.key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(signing_input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        format!("{signing_input}.{}", b64(&out.stdout))
    }
}

/// A token server: answers `GET /token?service=&scope=` for one user, granting every
/// requested scope except on repositories under `forbidden/`. Anonymous or wrong
/// credentials get 401. Runs until the runtime ends.
pub struct TokenServer {
    pub realm: String,
    pub requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl TokenServer {
    pub async fn start(key: SigningKey, user: &str, password: &str) -> TokenServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let realm = format!("http://{}/token", listener.local_addr().unwrap());
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let key = std::sync::Arc::new(key);
        let user = user.to_string();
        let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = requests.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (key, expected, user, counter) =
                    (key.clone(), expected.clone(), user.clone(), counter.clone());
                tokio::spawn(async move {
                    let _ = serve_token(stream, &key, &expected, &user, &counter).await;
                });
            }
        });
        TokenServer { realm, requests }
    }
}

async fn serve_token(
    mut stream: tokio::net::TcpStream,
    key: &SigningKey,
    expected_auth: &str,
    user: &str,
    counter: &std::sync::atomic::AtomicUsize,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let head = String::from_utf8_lossy(&head).to_string();
    let mut lines = head.lines();
    let target = lines
        .next()
        .unwrap_or("")
        .split(' ')
        .nth(1)
        .unwrap_or("")
        .to_string();
    let auth = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.trim().to_string());
    let url = url::Url::parse(&format!("http://x{target}")).unwrap();
    let service = url
        .query_pairs()
        .find(|(k, _)| k == "service")
        .map(|(_, v)| v.to_string());
    let scopes: Vec<String> = url
        .query_pairs()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.to_string())
        .collect();
    let (status, body) = if auth.as_deref() != Some(expected_auth)
        || service.as_deref() != Some(TOKEN_SERVICE)
    {
        ("401 Unauthorized", r#"{"details":"bad credentials"}"#.to_string())
    } else {
        let access: Vec<serde_json::Value> = scopes
            .iter()
            .flat_map(|s| s.split(' '))
            .filter_map(|s| {
                let mut parts = s.splitn(3, ':');
                let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                if name.starts_with("forbidden/") {
                    return None;
                }
                Some(serde_json::json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
            })
            .collect();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let claims = serde_json::json!({
            "iss": TOKEN_ISSUER,
            "sub": user,
            "aud": TOKEN_SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": format!("{now}-{}", counter.load(std::sync::atomic::Ordering::SeqCst)),
            "access": access,
        });
        let token = key.sign(&claims);
        (
            "200 OK",
            serde_json::json!({"token": token, "expires_in": 300}).to_string(),
        )
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(resp.as_bytes()).await?;
    stream.shutdown().await
}

// ----- a proxy that cuts responses -------------------------------------------------------

/// A TCP proxy in front of a registry that simulates a flaky network: on a connection that
/// carried a request for a path containing `pattern`, it closes the connection once
/// `cut_after` bytes of the response body went through, `cuts` times in all. It also
/// counts requests carrying a `Range` header.
pub struct CuttingProxy {
    pub addr: String,
    pub cuts_left: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    pub range_requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl CuttingProxy {
    pub async fn start(upstream: &str, pattern: &str, cut_after: usize, cuts: usize) -> CuttingProxy {
        use std::sync::atomic::AtomicUsize;
        use std::sync::Arc;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let cuts_left = Arc::new(AtomicUsize::new(cuts));
        let range_requests = Arc::new(AtomicUsize::new(0));
        let (c, r) = (cuts_left.clone(), range_requests.clone());
        let (upstream, pattern) = (upstream.to_string(), pattern.to_string());
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let (c, r, upstream, pattern) = (c.clone(), r.clone(), upstream.clone(), pattern.clone());
                tokio::spawn(async move {
                    let _ = relay(client, &upstream, &pattern, cut_after, &c, &r).await;
                });
            }
        });
        CuttingProxy {
            addr,
            cuts_left,
            range_requests,
        }
    }
}

async fn relay(
    client: tokio::net::TcpStream,
    upstream: &str,
    pattern: &str,
    cut_after: usize,
    cuts_left: &std::sync::atomic::AtomicUsize,
    range_requests: &std::sync::atomic::AtomicUsize,
) -> std::io::Result<()> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = tokio::net::TcpStream::connect(upstream).await?;
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let armed = AtomicBool::new(false);
    let up = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = cr.read(&mut buf).await?;
            if n == 0 {
                return sw.shutdown().await;
            }
            let text = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
            range_requests.fetch_add(text.matches("\r\nrange: bytes=").count(), Ordering::SeqCst);
            if text.lines().next().is_some_and(|l| l.contains(pattern)) {
                armed.store(true, Ordering::SeqCst);
            }
            sw.write_all(&buf[..n]).await?;
        }
    };
    let down = async {
        let mut buf = vec![0u8; 4 * 1024];
        let mut body_start_seen = false;
        let mut body = 0usize;
        loop {
            let n = sr.read(&mut buf).await?;
            if n == 0 {
                return cw.shutdown().await;
            }
            let mut body_from = n;
            if armed.load(Ordering::SeqCst) {
                if body_start_seen {
                    body_from = 0;
                } else if let Some(i) = buf[..n].windows(4).position(|w| w == b"\r\n\r\n") {
                    body_start_seen = true;
                    body_from = i + 4;
                }
            }
            let in_body = n - body_from;
            if in_body > 0
                && body + in_body > cut_after
                && cuts_left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| c.checked_sub(1))
                    .is_ok()
            {
                cw.write_all(&buf[..body_from + (cut_after - body)]).await?;
                return Err(std::io::Error::other("cut"));
            }
            body += in_body;
            cw.write_all(&buf[..n]).await?;
        }
    };
    // A cut (an error on either side) drops both halves of both connections.
    tokio::try_join!(up, down).map(|_| ())
}

// ----- a storage server for redirects -----------------------------------------------------

/// A static file server standing in for object storage: distribution's `redirect` storage
/// middleware sends blob downloads to it. It records whether any request carried an
/// `Authorization` header.
pub struct StorageServer {
    /// "http://127.0.0.1:PORT/", for the middleware's `baseurl`.
    pub base: String,
    /// The directory served; set once the registry (and its storage) exists.
    pub root: std::sync::Arc<std::sync::OnceLock<PathBuf>>,
    pub requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    pub saw_authorization: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl StorageServer {
    pub async fn start() -> StorageServer {
        use std::sync::atomic::{AtomicBool, AtomicUsize};
        use std::sync::{Arc, OnceLock};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/", listener.local_addr().unwrap());
        let root: Arc<OnceLock<PathBuf>> = Arc::default();
        let requests = Arc::new(AtomicUsize::new(0));
        let saw_authorization = Arc::new(AtomicBool::new(false));
        let (r, q, a) = (root.clone(), requests.clone(), saw_authorization.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (r, q, a) = (r.clone(), q.clone(), a.clone());
                tokio::spawn(async move {
                    let _ = serve_file(stream, &r, &q, &a).await;
                });
            }
        });
        StorageServer {
            base,
            root,
            requests,
            saw_authorization,
        }
    }

    /// The config.yml section that redirects blob downloads here.
    pub fn middleware_config(&self) -> String {
        format!(
            "middleware:\n  storage:\n    - name: redirect\n      options:\n        baseurl: {}\n",
            self.base
        )
    }
}

async fn serve_file(
    mut stream: tokio::net::TcpStream,
    root: &std::sync::OnceLock<PathBuf>,
    requests: &std::sync::atomic::AtomicUsize,
    saw_authorization: &std::sync::atomic::AtomicBool,
) -> std::io::Result<()> {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    requests.fetch_add(1, Ordering::SeqCst);
    let head = String::from_utf8_lossy(&head).to_string();
    let mut lines = head.lines();
    let mut first = lines.next().unwrap_or("").split(' ');
    let (method, path) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
    if lines.any(|l| l.to_ascii_lowercase().starts_with("authorization:")) {
        saw_authorization.store(true, Ordering::SeqCst);
    }
    let path = path.split('?').next().unwrap_or("");
    let file = root
        .get()
        .filter(|_| !path.contains(".."))
        .and_then(|r| std::fs::read(r.join(path.trim_start_matches('/'))).ok());
    let (status, body) = match file {
        Some(b) => ("200 OK", b),
        None => ("404 Not Found", Vec::new()),
    };
    let headers = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(headers.as_bytes()).await?;
    if method != "HEAD" {
        stream.write_all(&body).await?;
    }
    stream.shutdown().await
}
