//! Real registries: `/usr/bin/docker-registry` (Distribution 2.8) on a free
//! loopback port with throw-away storage, in three authentication modes.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::token::TokenServer;

/// How the registry authenticates clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// No authentication.
    Plain,
    /// HTTP Basic against a bcrypt htpasswd file.
    Htpasswd { user: String, pass: String },
    /// Bearer tokens from an in-process token server (RS256 JWTs).
    Token { user: String, pass: String },
}

impl Mode {
    pub fn htpasswd(user: &str, pass: &str) -> Mode {
        Mode::Htpasswd {
            user: user.into(),
            pass: pass.into(),
        }
    }
    pub fn token(user: &str, pass: &str) -> Mode {
        Mode::Token {
            user: user.into(),
            pass: pass.into(),
        }
    }
}

/// A running registry; killed (by PID) and its storage deleted on drop.
pub struct Registry {
    child: Child,
    addr: SocketAddr,
    mode: Mode,
    token: Option<TokenServer>,
    dir: tempfile::TempDir,
}

impl Registry {
    /// Start a registry and wait until `/v2/` answers. Panics on failure
    /// (with the registry's log).
    pub fn start(mode: Mode) -> Registry {
        Self::try_start(mode).unwrap_or_else(|e| panic!("starting docker-registry failed: {e:#}"))
    }

    pub fn try_start(mode: Mode) -> anyhow::Result<Registry> {
        let bin = crate::tools::require("docker-registry", "docker-registry");
        let mut dir = tempfile::Builder::new().prefix("berth-registry-").tempdir()?;
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage)?;
        let token = match &mode {
            Mode::Token { user, pass } => Some(TokenServer::start(dir.path(), user, pass)?),
            _ => None,
        };
        let auth = match &mode {
            Mode::Plain => String::new(),
            Mode::Htpasswd { user, pass } => {
                crate::tools::require("htpasswd", "apache2-utils");
                let o = Command::new("htpasswd").args(["-Bbn", user, pass]).output()?;
                if !o.status.success() {
                    bail!("htpasswd failed: {}", String::from_utf8_lossy(&o.stderr));
                }
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, &o.stdout)?;
                format!(
                    "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                    file.display()
                )
            }
            Mode::Token { .. } => {
                let t = token.as_ref().expect("token server");
                format!(
                    "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                    t.realm(),
                    crate::token::SERVICE,
                    crate::token::ISSUER,
                    t.cert.display()
                )
            }
        };
        let mut last_err = None;
        for _attempt in 0..5 {
            let addr = crate::loopback(crate::free_port());
            let config = format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  \
                 filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    \
                 uploadpurging:\n      enabled: false\nhttp:\n  addr: {}\n  secret: berth-test-secret\n{}",
                storage.display(),
                addr,
                auth
            );
            let cfg = dir.path().join("config.yml");
            std::fs::write(&cfg, config)?;
            let log_path = dir.path().join("registry.log");
            let log = File::create(&log_path)?;
            let child = Command::new(&bin)
                .arg("serve")
                .arg(&cfg)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .context("spawn docker-registry")?;
            let mut reg = Registry {
                child,
                addr,
                mode: mode.clone(),
                token: None,
                dir,
            };
            match reg.wait_ready(Duration::from_secs(20)) {
                Ok(()) => {
                    reg.token = token;
                    return Ok(reg);
                }
                Err(e) => {
                    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    last_err = Some(anyhow::anyhow!("{e:#}\nregistry log:\n{log}"));
                    let _ = reg.child.kill();
                    let _ = reg.child.wait();
                    // Take the temp dir back for the next attempt without deleting it.
                    dir = std::mem::replace(&mut reg.dir, tempfile::tempdir()?);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("registry did not start")))
    }

    fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let expected = if self.mode == Mode::Plain { 200 } else { 401 };
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("docker-registry exited early: {status}");
            }
            if let Ok(r) = crate::http::get(self.addr, "/v2/", &[]) {
                if r.status() == expected {
                    return Ok(());
                }
                bail!("GET /v2/ answered {} (expected {expected})", r.status());
            }
            if Instant::now() > deadline {
                bail!("GET /v2/ did not answer within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:PORT` as a string (the registry part of image references).
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `127.0.0.1:PORT/<repo_tag>`.
    pub fn reference(&self, repo_tag: &str) -> String {
        format!("{}/{repo_tag}", self.addr)
    }

    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// (user, pass) in the authenticated modes.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        match &self.mode {
            Mode::Plain => None,
            Mode::Htpasswd { user, pass } | Mode::Token { user, pass } => Some((user, pass)),
        }
    }

    /// Token realm URL (`http://127.0.0.1:P/token`) in token mode.
    pub fn token_realm(&self) -> Option<String> {
        self.token.as_ref().map(|t| t.realm())
    }

    /// Address of the token server in token mode.
    pub fn token_addr(&self) -> Option<SocketAddr> {
        self.token.as_ref().map(|t| t.addr())
    }

    /// Tokens issued / requests refused for bad credentials so far (token mode).
    pub fn token_stats(&self) -> Option<(usize, usize)> {
        self.token.as_ref().map(|t| (t.issued(), t.denied()))
    }

    /// Registry storage root (filesystem driver).
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// The registry's combined stdout/stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Extra `skopeo` arguments for talking to this registry as `prefix`
    /// (`src` or `dest`): TLS off, credentials in auth modes.
    pub fn skopeo_args(&self, prefix: &str) -> Vec<String> {
        let mut a = vec![format!("--{prefix}-tls-verify=false")];
        if let Some((u, p)) = self.credentials() {
            a.push(format!("--{prefix}-creds={u}:{p}"));
        }
        a
    }

    /// Push an OCI layout fixture (tag `latest`) as `repo:tag` with
    /// `skopeo copy --all --preserve-digests`; returns the pushed top-level
    /// digest (equal to the layout's).
    pub fn push_fixture(&self, fixture_dir: &Path, repo_tag: &str) -> String {
        crate::tools::require("skopeo", "skopeo");
        let o = Command::new("skopeo")
            .args(["copy", "--all", "--preserve-digests", "--retry-times", "2"])
            .args(self.skopeo_args("dest"))
            .arg(crate::fixtures::oci_ref(fixture_dir))
            .arg(format!("docker://{}", self.reference(repo_tag)))
            .output()
            .expect("run skopeo copy");
        assert!(
            o.status.success(),
            "skopeo copy {} -> {} failed: {}\nregistry log tail:\n{}",
            fixture_dir.display(),
            repo_tag,
            String::from_utf8_lossy(&o.stderr),
            tail(&self.log(), 40)
        );
        crate::fixtures::top_digest(fixture_dir)
    }

    /// `skopeo inspect --raw` of `repo:tag`: the manifest bytes as served.
    pub fn skopeo_raw_manifest(&self, repo_tag: &str) -> Vec<u8> {
        let o = Command::new("skopeo")
            .args(["inspect", "--raw"])
            .args(self.skopeo_args("src").iter().map(|a| a.replace("--src-", "--")))
            .arg(format!("docker://{}", self.reference(repo_tag)))
            .output()
            .expect("run skopeo inspect");
        assert!(
            o.status.success(),
            "skopeo inspect {repo_tag} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o.stdout
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A store with `busybox` pulled from a fresh loopback registry and tagged `busybox`.
pub fn store_with_busybox() -> (Registry, crate::berth::Berth) {
    let reg = Registry::start(Mode::Plain);
    let b = crate::berth::Berth::new();
    reg.push_fixture(&crate::fixtures::image("busybox"), "library/busybox:latest");
    b.ok(&["pull", "-q", &reg.reference("library/busybox")]);
    b.ok(&["tag", &reg.reference("library/busybox"), "busybox"]);
    (reg, b)
}
