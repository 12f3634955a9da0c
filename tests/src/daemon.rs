//! `berth daemon` under test: started on a private socket and root, stopped by its PID,
//! plus the clients the API tests use — the real docker CLI and raw HTTP over the socket.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::berth::{Berth, Run};

/// The docker CLI the conformance tests drive (v28; `/usr/local/bin/docker`).
pub fn docker_cli() -> PathBuf {
    let p = std::env::var_os("DOCKER_CLI")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/local/bin/docker"));
    assert!(
        p.exists(),
        "the docker CLI is missing at {}: install docker-ce-cli v28 (scripts/install.sh) or set DOCKER_CLI",
        p.display()
    );
    p
}

pub struct Daemon {
    child: Child,
    dir: tempfile::TempDir,
    socket: PathBuf,
    root: PathBuf,
}

impl Daemon {
    /// Starts `berth daemon` on `b`'s root and a socket in a fresh temp dir; waits until it
    /// answers `/_ping`.
    pub fn start(b: &Berth) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("berth-daemon-")
            .tempdir()
            .expect("tempdir");
        let socket = dir.path().join("berth.sock");
        Self::spawn(b, dir, socket)
    }

    /// Like [`start`](Self::start) but on a given socket path.
    pub fn start_at(b: &Berth, socket: &Path) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("berth-daemon-")
            .tempdir()
            .expect("tempdir");
        Self::spawn(b, dir, socket.to_path_buf())
    }

    fn spawn(b: &Berth, dir: tempfile::TempDir, socket: PathBuf) -> Daemon {
        let log = std::fs::File::create(dir.path().join("daemon.log")).expect("log file");
        let child = b
            .command(&["daemon", "--host", &format!("unix://{}", socket.display())])
            .env("RUST_LOG", "berth_api=debug,info")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn berth daemon");
        let mut d = Daemon {
            child,
            dir,
            socket,
            root: b.root().to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = d.try_request("GET", "/_ping", None) {
                if r.status == 200 {
                    break;
                }
            }
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!("berth daemon exited at start ({status}):\n{}", d.log());
            }
            assert!(
                Instant::now() < deadline,
                "berth daemon did not answer /_ping in 20 s:\n{}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Open file descriptors of the daemon process.
    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// SIGKILL: the daemon gets no chance to clean up (its socket file stays behind).
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait (SIGKILL after 10 s); returns the exit status code.
    pub fn stop(&mut self) -> Option<i32> {
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(self.child.id() as i32).expect("pid"),
            rustix::process::Signal::TERM,
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return self.child.wait().ok().and_then(|s| s.code());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// One HTTP/1.1 request over the socket (Connection: close), read to the end.
    pub fn try_request(&self, method: &str, path: &str, body: Option<&[u8]>) -> std::io::Result<Response> {
        let mut s = UnixStream::connect(&self.socket)?;
        s.set_read_timeout(Some(Duration::from_secs(120)))?;
        let body = body.unwrap_or(b"");
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes())?;
        s.write_all(body)?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        Ok(Response::parse(&raw))
    }

    pub fn request(&self, method: &str, path: &str, body: Option<&[u8]>) -> Response {
        self.try_request(method, path, body)
            .unwrap_or_else(|e| panic!("{method} {path} failed: {e}\ndaemon log:\n{}", self.log()))
    }

    /// Runs the docker CLI against this daemon with the given config dir.
    pub fn docker(&self, config: &Path, args: &[&str]) -> Run {
        docker_at(&self.host(), config, args)
    }
}

/// Runs the docker CLI against the engine at `host` (`unix://…`).
pub fn docker_at(host: &str, config: &Path, args: &[&str]) -> Run {
    run_of(docker_command(host, config, args).stdin(Stdio::null()))
}

/// Runs a command to the end and keeps what it printed.
/// Runs a client command to completion, killing it after [`RUN_LIMIT`] so that a hung
/// server makes a step fail with a message instead of stalling the whole suite.
pub fn run_of(c: &mut Command) -> Run {
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run command");
    let reader = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = reader(Box::new(child.stdout.take().expect("stdout")));
    let err = reader(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for command") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stdout = out.join().unwrap_or_default();
    let mut stderr = err.join().unwrap_or_default();
    if status.is_none() {
        stderr.push_str(&format!(
            "\n[test harness] killed after {} s without finishing",
            RUN_LIMIT.as_secs()
        ));
    }
    Run {
        code: status.and_then(|s| s.code()).unwrap_or(-1),
        stdout,
        stderr,
    }
}

/// How long one client command may run before [`run_of`] kills it.
pub const RUN_LIMIT: Duration = Duration::from_secs(300);

pub fn docker_command(host: &str, config: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(docker_cli());
    c.args(args)
        .env("DOCKER_HOST", host)
        .env("DOCKER_CONFIG", config)
        .env("DOCKER_BUILDKIT", "0")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_API_VERSION");
    c
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.alive() {
            self.stop();
        }
        // Containers outlive the daemon by design; a test's containers must not outlive it.
        let b = crate::berth::bin();
        if let Ok(out) = Command::new(&b)
            .args(["ps", "-aq", "--no-trunc"])
            .env("BERTH_ROOT", &self.root)
            .output()
        {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new(&b)
                    .args(["rm", "-f", id])
                    .env("BERTH_ROOT", &self.root)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

/// A parsed HTTP response (chunked bodies are decoded).
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    fn parse(raw: &[u8]) -> Response {
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(raw.len());
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut body = raw.get(split + 4..).unwrap_or(&[]).to_vec();
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        if headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
        {
            body = dechunk(&body);
        }
        Response {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.text()))
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        let end = (start + size).min(data.len());
        out.extend_from_slice(&data[start..end]);
        data = data.get(end + 2..).unwrap_or(&[]);
    }
    out
}
