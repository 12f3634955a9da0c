//! In-process token server for Distribution's `auth.token` mode.
//!
//! Keys and the certificate come from the `openssl` CLI; JWTs are RS256,
//! signed with `openssl dgst -sha256 -sign`, and carry a libtrust-format
//! `kid` so Distribution 2.8 can find the key in its `rootcertbundle`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use base64::Engine;

use crate::http::{self, Head};

pub(crate) const SERVICE: &str = "berth-test-registry";
pub(crate) const ISSUER: &str = "berth-test-token-issuer";

struct Shared {
    user: String,
    pass: String,
    key: PathBuf,
    kid: String,
    issued: AtomicUsize,
    denied: AtomicUsize,
    stop: AtomicBool,
}

pub(crate) struct TokenServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    pub(crate) cert: PathBuf,
}

fn openssl(args: &[&str]) -> anyhow::Result<Vec<u8>> {
    let o = Command::new("openssl")
        .args(args)
        .output()
        .context("run openssl")?;
    if !o.status.success() {
        bail!("openssl {args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    }
    Ok(o.stdout)
}

/// libtrust key ID: sha256 of the SubjectPublicKeyInfo DER, first 240 bits,
/// base32 (RFC 4648, no padding), in 12 colon-separated groups of 4.
pub(crate) fn libtrust_kid(spki_der: &[u8]) -> String {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(spki_der);
    let b32 = base32(&hash[..30]);
    b32.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(":")
}

fn base32(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in data {
        acc = (acc << 8) | b as u32;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

fn b64url(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

impl TokenServer {
    pub(crate) fn start(dir: &Path, user: &str, pass: &str) -> anyhow::Result<TokenServer> {
        crate::tools::require("openssl", "openssl");
        let key = dir.join("token-key.pem");
        let cert = dir.join("token-cert.pem");
        let (k, c) = (
            key.to_str().context("utf-8 path")?,
            cert.to_str().context("utf-8 path")?,
        );
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            k,
            "-out",
            c,
            "-days",
            "2",
            "-subj",
            "/CN=berth-test-token-issuer",
        ])?;
        let spki = openssl(&["pkey", "-in", k, "-pubout", "-outform", "DER"])?;
        let kid = libtrust_kid(&spki);
        let listener = TcpListener::bind("127.0.0.1:0").context("bind token server")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            user: user.to_string(),
            pass: pass.to_string(),
            key,
            kid,
            issued: AtomicUsize::new(0),
            denied: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let s2 = shared.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s2.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let s3 = s2.clone();
                std::thread::spawn(move || {
                    if let Err(e) = serve(&s3, conn) {
                        eprintln!("token server: {e:#}");
                    }
                });
            }
        });
        Ok(TokenServer {
            addr,
            shared,
            thread: Some(thread),
            cert,
        })
    }

    pub(crate) fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn issued(&self) -> usize {
        self.shared.issued.load(Ordering::SeqCst)
    }

    pub(crate) fn denied(&self) -> usize {
        self.shared.denied.load(Ordering::SeqCst)
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn respond(conn: &mut TcpStream, status: &str, extra: &[(&str, &str)], body: &[u8]) -> anyhow::Result<()> {
    let mut head = Head {
        start: format!("HTTP/1.1 {status}"),
        headers: Vec::new(),
    };
    head.set_header("Content-Type", "application/json");
    head.set_header("Content-Length", &body.len().to_string());
    head.set_header("Connection", "close");
    for (k, v) in extra {
        head.set_header(k, v);
    }
    conn.write_all(&head.to_bytes())?;
    conn.write_all(body)?;
    Ok(())
}

fn serve(shared: &Shared, mut conn: TcpStream) -> anyhow::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let Some((head, mut body)) = http::read_head(&mut conn)? else {
        return Ok(());
    };
    let (method, target) = head.method_target();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != "/token" {
        return respond(&mut conn, "404 Not Found", &[], br#"{"error":"not found"}"#);
    }
    // GET with Basic auth (docker/containers-image style) or POST form
    // (OAuth2 password grant, as containerd/docker use with credentials).
    let mut params = http::parse_query(query);
    let mut creds: Option<(String, String)> = head.header("Authorization").and_then(parse_basic);
    if method == "POST" {
        let len: usize = head
            .header("Content-Length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while body.len() < len {
            let mut chunk = vec![0u8; len - body.len()];
            let n = conn.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        let form = http::parse_query(&String::from_utf8_lossy(&body));
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        if get("grant_type").as_deref() == Some("password") {
            if let (Some(u), Some(p)) = (get("username"), get("password")) {
                creds = Some((u, p));
            }
        }
        params.extend(form);
    } else if method != "GET" {
        return respond(&mut conn, "405 Method Not Allowed", &[], br#"{"error":"method"}"#);
    }
    let authenticated = match &creds {
        None => false,
        Some((u, p)) if *u == shared.user && *p == shared.pass => true,
        Some(_) => {
            shared.denied.fetch_add(1, Ordering::SeqCst);
            return respond(
                &mut conn,
                "401 Unauthorized",
                &[("WWW-Authenticate", "Basic realm=\"berth-test-token\"")],
                br#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#,
            );
        }
    };
    // Anonymous callers get a valid token that grants nothing, like Docker Hub.
    let mut access = Vec::new();
    if authenticated {
        for (k, v) in &params {
            if k != "scope" {
                continue;
            }
            for scope in v.split(' ').filter(|s| !s.is_empty()) {
                let Some((typ, rest)) = scope.split_once(':') else {
                    continue;
                };
                let Some((name, actions)) = rest.rsplit_once(':') else {
                    continue;
                };
                let actions: Vec<&str> = actions.split(',').filter(|a| !a.is_empty()).collect();
                access.push(serde_json::json!({"type": typ, "name": name, "actions": actions}));
            }
        }
    }
    let subject = if authenticated {
        shared.user.clone()
    } else {
        String::new()
    };
    let token = sign(shared, &subject, access)?;
    shared.issued.fetch_add(1, Ordering::SeqCst);
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let issued_at = format_rfc3339(now);
    let body = serde_json::json!({
        "token": token,
        "access_token": token,
        "expires_in": 600,
        "issued_at": issued_at,
    });
    respond(&mut conn, "200 OK", &[], body.to_string().as_bytes())
}

fn parse_basic(v: &str) -> Option<(String, String)> {
    let enc = v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic "))?;
    let dec = base64::engine::general_purpose::STANDARD
        .decode(enc.trim())
        .ok()?;
    let s = String::from_utf8(dec).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

fn sign(shared: &Shared, subject: &str, access: Vec<serde_json::Value>) -> anyhow::Result<String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "kid": shared.kid});
    let jti = format!("{now}-{}", shared.issued.load(Ordering::SeqCst));
    let claims = serde_json::json!({
        "iss": ISSUER,
        "sub": subject,
        "aud": SERVICE,
        "exp": now + 600,
        "nbf": now.saturating_sub(60),
        "iat": now,
        "jti": jti,
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(&shared.key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawn openssl dgst")?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(signing_input.as_bytes())?;
    let o = child.wait_with_output()?;
    if !o.status.success() {
        bail!(
            "openssl dgst -sign failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    Ok(format!("{signing_input}.{}", b64url(&o.stdout)))
}

/// Seconds since the epoch as RFC 3339 UTC (civil-from-days algorithm).
fn format_rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_matches_rfc4648_vectors() {
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
    }

    #[test]
    fn kid_has_libtrust_shape() {
        let kid = libtrust_kid(b"not really DER but hashed all the same");
        let groups: Vec<&str> = kid.split(':').collect();
        assert_eq!(groups.len(), 12);
        assert!(groups.iter().all(|g| g.len() == 4));
    }

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
