//! A fault-injecting HTTP/1.1 proxy in front of a registry.
//!
//! Each client connection carries one request: the proxy reads the request
//! head, forwards it upstream with `Connection: close` (one upstream
//! connection per request), streams the response back with
//! `Connection: close`, and closes. Faults apply only to blob downloads
//! (`GET` whose path contains `/blobs/sha256:`); everything else passes
//! through untouched. The `Host` header is kept, so registry-generated URLs
//! (upload locations) point back through the proxy.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::http::{self, Head};

/// What to do to blob downloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Pass everything through.
    None,
    /// Flip one byte in the middle of the body of the `nth_request`-th blob
    /// GET (1-based); other requests pass through.
    CorruptByte { nth_request: usize },
    /// Send the real head (with the full Content-Length) but only
    /// `after_bytes` of the body, then close; for the first `times` blob GETs.
    Truncate { after_bytes: usize, times: usize },
    /// Answer `503 Service Unavailable` to the first `times` blob GETs.
    Status503 { times: usize },
    /// Close the connection without any response for the first `times` blob GETs.
    CutConnection { times: usize },
    /// Pass every blob GET, but at most `bytes_per_sec` (to catch a client mid-download).
    Throttle { bytes_per_sec: usize },
}

#[derive(Default)]
struct Stats {
    requests: AtomicUsize,
    blob_gets: AtomicUsize,
    injected: AtomicUsize,
}

struct Shared {
    upstream: SocketAddr,
    fault: Mutex<Fault>,
    stats: Stats,
    log: Mutex<Vec<String>>,
    stop: AtomicBool,
}

/// A running proxy; stops on drop.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Listen on a free 127.0.0.1 port, forwarding to `upstream`.
    pub fn start(upstream: SocketAddr, fault: Fault) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fault proxy");
        let addr = listener.local_addr().expect("local_addr");
        let shared = Arc::new(Shared {
            upstream,
            fault: Mutex::new(fault),
            stats: Stats::default(),
            log: Mutex::new(Vec::new()),
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
                std::thread::spawn(move || handle(&s3, conn));
            }
        });
        FaultProxy {
            addr,
            shared,
            thread: Some(thread),
        }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:PORT`, for image references through the proxy.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Replace the fault and reset the blob counter (so `times`/`nth_request`
    /// count from the next blob GET).
    pub fn set_fault(&self, fault: Fault) {
        *self.shared.fault.lock().unwrap() = fault;
        self.shared.stats.blob_gets.store(0, Ordering::SeqCst);
        self.shared.stats.injected.store(0, Ordering::SeqCst);
    }

    /// All requests seen.
    pub fn requests(&self) -> usize {
        self.shared.stats.requests.load(Ordering::SeqCst)
    }

    /// Blob GETs seen since start or the last [`set_fault`](Self::set_fault).
    pub fn blob_requests(&self) -> usize {
        self.shared.stats.blob_gets.load(Ordering::SeqCst)
    }

    /// Faults actually injected since start or the last `set_fault`.
    pub fn faults_injected(&self) -> usize {
        self.shared.stats.injected.load(Ordering::SeqCst)
    }

    /// One line per request: `METHOD target -> outcome`.
    pub fn log(&self) -> Vec<String> {
        self.shared.log.lock().unwrap().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

enum Action {
    Pass,
    Respond503,
    Cut,
    Truncate(usize),
    Corrupt,
    Throttle(usize),
}

fn handle(shared: &Shared, mut client: TcpStream) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(120)));
    // Clients probing for TLS first (skopeo with tls-verify=false) would
    // otherwise wait out their handshake timeout: refuse TLS at once.
    let mut first = [0u8; 1];
    if matches!(client.peek(&mut first), Ok(1) if first[0] == 0x16) {
        let _ = client.shutdown(Shutdown::Both);
        return;
    }
    let (mut head, leftover) = match http::read_head(&mut client) {
        Ok(Some(x)) => x,
        _ => return,
    };
    shared.stats.requests.fetch_add(1, Ordering::SeqCst);
    let (method, target) = head.method_target();
    // The Range header shows whether a client resumed a download.
    let line = match head.header("Range") {
        Some(range) => format!("{method} {target} [{range}]"),
        None => format!("{method} {target}"),
    };
    let is_blob_get = method == "GET" && target.contains("/blobs/sha256:");
    let action = if is_blob_get {
        let n = shared.stats.blob_gets.fetch_add(1, Ordering::SeqCst) + 1;
        match *shared.fault.lock().unwrap() {
            Fault::None => Action::Pass,
            Fault::CorruptByte { nth_request } if n == nth_request => Action::Corrupt,
            Fault::Truncate { after_bytes, times } if n <= times => Action::Truncate(after_bytes),
            Fault::Status503 { times } if n <= times => Action::Respond503,
            Fault::CutConnection { times } if n <= times => Action::Cut,
            Fault::Throttle { bytes_per_sec } => Action::Throttle(bytes_per_sec.max(1)),
            _ => Action::Pass,
        }
    } else {
        Action::Pass
    };
    let outcome = match action {
        Action::Respond503 => {
            shared.stats.injected.fetch_add(1, Ordering::SeqCst);
            let body = br#"{"errors":[{"code":"UNAVAILABLE","message":"injected by berth fault proxy"}]}"#;
            let head = format!(
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = client
                .write_all(head.as_bytes())
                .and_then(|_| client.write_all(body));
            "503 (injected)".to_string()
        }
        Action::Cut => {
            shared.stats.injected.fetch_add(1, Ordering::SeqCst);
            "connection cut (injected)".to_string()
        }
        action => match forward(shared, &mut client, &mut head, leftover, action) {
            Ok(s) => s,
            Err(e) => format!("proxy error: {e:#}"),
        },
    };
    let _ = client.shutdown(Shutdown::Both);
    shared.log.lock().unwrap().push(format!("{line} -> {outcome}"));
}

fn forward(
    shared: &Shared,
    client: &mut TcpStream,
    head: &mut Head,
    leftover: Vec<u8>,
    action: Action,
) -> anyhow::Result<String> {
    let mut upstream = match TcpStream::connect_timeout(&shared.upstream, Duration::from_secs(5)) {
        Ok(s) => s,
        Err(e) => {
            let _ = client
                .write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            return Err(e.into());
        }
    };
    head.set_header("Connection", "close");
    head.remove_header("Keep-Alive");
    head.remove_header("Proxy-Connection");
    upstream.write_all(&head.to_bytes())?;
    upstream.write_all(&leftover)?;
    // Request body (any framing): copy client -> upstream until the client
    // side is shut down after the response.
    let mut c_read = client.try_clone()?;
    let mut u_write = upstream.try_clone()?;
    let pump = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c_read, &mut u_write);
    });
    let result = relay_response(shared, client, &mut upstream, action);
    let _ = upstream.shutdown(Shutdown::Both);
    let _ = client.shutdown(Shutdown::Both);
    let _ = pump.join();
    result
}

fn relay_response(
    shared: &Shared,
    client: &mut TcpStream,
    upstream: &mut TcpStream,
    action: Action,
) -> anyhow::Result<String> {
    upstream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let Some((mut rhead, mut first)) = http::read_head(upstream)? else {
        anyhow::bail!("upstream closed without a response");
    };
    let status = rhead.status();
    rhead.set_header("Connection", "close");
    rhead.remove_header("Keep-Alive");
    client.write_all(&rhead.to_bytes())?;
    let content_length = rhead
        .header("Content-Length")
        .and_then(|v| v.parse::<usize>().ok());
    let (limit, corrupt_at) = match action {
        Action::Truncate(n) if status == 200 => {
            shared.stats.injected.fetch_add(1, Ordering::SeqCst);
            (Some(n), None)
        }
        Action::Corrupt if status == 200 => {
            shared.stats.injected.fetch_add(1, Ordering::SeqCst);
            (None, Some(content_length.unwrap_or(1).saturating_sub(1) / 2))
        }
        _ => (None, None),
    };
    let throttle = match action {
        Action::Throttle(rate) => Some(rate),
        _ => None,
    };
    let mut sent = 0usize;
    let mut buf = vec![0u8; if throttle.is_some() { 8 * 1024 } else { 64 * 1024 }];
    loop {
        let mut chunk = if first.is_empty() {
            let n = upstream.read(&mut buf)?;
            if n == 0 {
                break;
            }
            buf[..n].to_vec()
        } else {
            std::mem::take(&mut first)
        };
        if let Some(at) = corrupt_at {
            if at >= sent && at < sent + chunk.len() {
                chunk[at - sent] ^= 0xff;
            }
        }
        if let Some(lim) = limit {
            let room = lim.saturating_sub(sent);
            if chunk.len() >= room {
                client.write_all(&chunk[..room])?;
                sent += room;
                return Ok(format!("{status}, truncated after {sent} bytes (injected)"));
            }
        }
        client.write_all(&chunk)?;
        sent += chunk.len();
        if let Some(rate) = throttle {
            std::thread::sleep(Duration::from_secs_f64(chunk.len() as f64 / rate as f64));
        }
    }
    let what = if corrupt_at.is_some() {
        ", one byte corrupted (injected)"
    } else {
        ""
    };
    Ok(format!("{status}, {sent} bytes{what}"))
}
