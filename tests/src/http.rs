//! A deliberately tiny HTTP/1.1 client and head parser (std only), used to
//! probe registries, the token server and the fault proxy without pulling in
//! an HTTP stack whose own retries could hide injected faults.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, Context};

/// A parsed request or response head.
#[derive(Debug, Clone)]
pub struct Head {
    /// Request line or status line.
    pub start: String,
    /// Header fields in order.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Remove every `name` header and append `name: value`.
    pub fn set_header(&mut self, name: &str, value: &str) {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.to_string(), value.to_string()));
    }

    /// Drop every `name` header.
    pub fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    }

    /// Serialise back to wire format, including the blank line.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = String::with_capacity(256);
        s.push_str(&self.start);
        s.push_str("\r\n");
        for (k, v) in &self.headers {
            s.push_str(k);
            s.push_str(": ");
            s.push_str(v);
            s.push_str("\r\n");
        }
        s.push_str("\r\n");
        s.into_bytes()
    }

    /// Status code of a response head.
    pub fn status(&self) -> u16 {
        self.start
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    /// (method, target) of a request head.
    pub fn method_target(&self) -> (&str, &str) {
        let mut it = self.start.split_whitespace();
        (it.next().unwrap_or(""), it.next().unwrap_or(""))
    }
}

/// Read a head (up to and including CRLFCRLF) from `r`. Returns `None` on a
/// clean EOF before any byte, otherwise the head and any body bytes already
/// read past it.
pub fn read_head(r: &mut impl Read) -> anyhow::Result<Option<(Head, Vec<u8>)>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(pos) = find(&buf, b"\r\n\r\n") {
            let rest = buf.split_off(pos + 4);
            let text = std::str::from_utf8(&buf[..pos]).context("head is not UTF-8")?;
            let mut lines = text.split("\r\n");
            let start = lines.next().unwrap_or("").to_string();
            let headers = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect();
            return Ok(Some((Head { start, headers }, rest)));
        }
        if buf.len() > 64 * 1024 {
            bail!("HTTP head larger than 64 KiB");
        }
        let n = r.read(&mut chunk)?;
        if n == 0 {
            if buf.is_empty() {
                return Ok(None);
            }
            bail!("connection closed inside HTTP head");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A complete response as received (body read until EOF, de-chunked).
#[derive(Debug, Clone)]
pub struct Response {
    pub head: Head,
    pub body: Vec<u8>,
    /// True when the connection ended before `Content-Length` bytes arrived.
    pub truncated: bool,
}

impl Response {
    pub fn status(&self) -> u16 {
        self.head.status()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header(name)
    }
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body).context("response body is not JSON")
    }
}

/// Send one request with `Connection: close` and read the whole response.
/// A connection reset or early close after the head yields what arrived
/// (see [`Response::truncated`]) rather than an error.
pub fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> anyhow::Result<Response> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("connect {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut head = Head {
        start: format!("{method} {target} HTTP/1.1"),
        headers: Vec::new(),
    };
    head.set_header("Host", &addr.to_string());
    for (k, v) in headers {
        head.set_header(k, v);
    }
    head.set_header("Connection", "close");
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        head.set_header("Content-Length", &body.len().to_string());
    }
    s.write_all(&head.to_bytes())?;
    s.write_all(body)?;
    let (head, mut raw) = read_head(&mut s)?.context("connection closed before response head")?;
    let mut chunk = [0u8; 64 * 1024];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => return Err(e.into()),
        }
    }
    let (body, truncated) = if head
        .header("Transfer-Encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        dechunk(&raw)
    } else if method == "HEAD" {
        (Vec::new(), false)
    } else {
        let want = head
            .header("Content-Length")
            .and_then(|v| v.parse::<usize>().ok());
        let truncated = want.is_some_and(|w| raw.len() < w);
        (raw, truncated)
    };
    Ok(Response {
        head,
        body,
        truncated,
    })
}

/// GET `target` with extra headers.
pub fn get(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> anyhow::Result<Response> {
    request(addr, "GET", target, headers, &[])
}

fn dechunk(raw: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        let Some(eol) = find(&raw[pos..], b"\r\n") else {
            return (out, true);
        };
        let line = String::from_utf8_lossy(&raw[pos..pos + eol]);
        let Ok(size) = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16) else {
            return (out, true);
        };
        pos += eol + 2;
        if size == 0 {
            return (out, false);
        }
        if raw.len() < pos + size {
            out.extend_from_slice(&raw[pos..]);
            return (out, true);
        }
        out.extend_from_slice(&raw[pos..pos + size]);
        pos += size + 2;
    }
}

/// `Authorization: Basic …` value for `user:pass`.
pub fn basic_auth(user: &str, pass: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

/// Parse a `WWW-Authenticate: Bearer realm="…",service="…",scope="…"` value
/// into (scheme, params).
pub fn parse_challenge(value: &str) -> (String, Vec<(String, String)>) {
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let mut params = Vec::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let Some((k, after)) = rest.split_once('=') else {
            break;
        };
        let (v, after) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').unwrap_or(q.len());
            (&q[..end], q.get(end + 1..).unwrap_or(""))
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        params.push((k.trim().to_string(), v.to_string()));
        rest = after.trim_start_matches([',', ' ']);
    }
    (scheme.to_string(), params)
}

/// Percent-encode a query component.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decode a percent-encoded query component (`+` is a space).
pub fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hexval(bytes[i + 1]), hexval(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hexval(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Split `a=1&b=2` into decoded pairs.
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (url_decode(k), url_decode(v))
        })
        .collect()
}

/// `GET /` on 127.0.0.1:`port` over HTTP/1.0; the whole response, or `None` if the
/// connection failed.
pub fn get_page(port: u16) -> Option<String> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// Polls `GET /` until a 200 arrives (returns the response) or `timeout` passes (panics).
pub fn wait_for_200(port: u16, timeout: std::time::Duration) -> String {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(r) = get_page(port) {
            if r.starts_with("HTTP/1.") && r.contains(" 200 ") {
                return r;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no HTTP 200 on port {port} within {timeout:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A server on `addr` that answers one HTTP request with `body` (as a program on the host
/// would), then ends; returns its port and the thread to join.
pub fn serve_once(addr: &str, body: &'static str) -> (u16, std::thread::JoinHandle<()>) {
    use std::io::Write;
    let listener = std::net::TcpListener::bind(addr).expect("bind a host server");
    let port = listener.local_addr().expect("addr").port();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        let mut req = [0u8; 1024];
        let _ = conn.read(&mut req);
        let head = format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
        let _ = conn.write_all(head.as_bytes());
        let _ = conn.write_all(body.as_bytes());
    });
    (port, server)
}
