//! The machinery around the real window: an Xvfb display, tauri-driver (with Debian's
//! WebKitWebDriver), the engine the app talks to, a `$BROWSER` that records URLs, and a
//! small fantoccini wrapper that waits on DOM conditions and saves screenshots.
// Shared by the e2e and bench test binaries; each uses a different part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use fantoccini::{Client, ClientBuilder, Locator};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Berth's engine started inside the app (no endpoint configured).
    Embedded,
    /// A podman API service this test starts on its own storage.
    Podman,
}

/// A tool the test needs, or a panic saying how to install it (never a silent skip).
fn need(bin: &str, how: &str) -> PathBuf {
    if let Some(p) = berth_tests::tools::find(bin) {
        return p;
    }
    let cargo_bin = std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cargo/bin").join(bin))
        .filter(|p| p.is_file());
    cargo_bin.unwrap_or_else(|| panic!("missing {bin}: {how}"))
}

/// `target/debug` (or release): where cargo put the app and the berth CLI.
pub fn target_dir() -> PathBuf {
    let app = PathBuf::from(env!("CARGO_BIN_EXE_berth-desktop"));
    app.parent().map(Path::to_path_buf).unwrap_or_default()
}

pub struct Session {
    pub engine: Engine,
    pub dir: tempfile::TempDir,
    pub shots: PathBuf,
    children: Vec<Child>,
    driver_port: u16,
    display: u32,
    pub root: PathBuf,
    browser_log: PathBuf,
    podman: Option<(PathBuf, PathBuf, PathBuf)>,
    /// The ordinary user the app runs as (its built-in engine is then the rootless one),
    /// and that user's `XDG_RUNTIME_DIR` for the session.
    user: Option<(berth_tests::rootless::User, PathBuf)>,
}

/// The environment of an ordinary user's login, for `program` run through `setpriv`:
/// HOME, USER, PATH without sbin, and the session's own runtime directory.
fn as_user(user: &berth_tests::rootless::User, runtime: &Path, program: &Path) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={}", user.uid))
        .arg(format!("--regid={}", user.gid))
        .arg("--init-groups")
        .arg("--")
        .arg(program)
        .env("HOME", &user.home)
        .env("USER", &user.name)
        .env("LOGNAME", &user.name)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("XDG_RUNTIME_DIR", runtime)
        .env_remove("XDG_DATA_HOME")
        .env_remove("BERTH_ROOT")
        .env_remove("CARGO_HOME")
        .env_remove("RUSTUP_HOME");
    cmd
}

fn spawn_group(cmd: &mut Command) -> anyhow::Result<Child> {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0)
        .spawn()
        .with_context(|| format!("starting {:?}", cmd.get_program()))
}

fn free_display() -> u32 {
    (90..200)
        .find(|n| {
            !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                && !Path::new(&format!("/tmp/.X{n}-lock")).exists()
        })
        .unwrap_or(199)
}

fn wait_for(what: &str, secs: u64, mut ok: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("{what} did not come up within {secs} s")
}

impl Session {
    pub fn start(engine: Engine, registry_host: &str) -> anyhow::Result<Session> {
        Session::start_with(engine, registry_host, |_| Vec::new())
    }

    /// As `start`, with more environment for the app: `env` is given the session's
    /// directory (a machine's directory can live in it).
    pub fn start_with(
        engine: Engine,
        registry_host: &str,
        env: impl FnOnce(&Path) -> Vec<(String, std::ffi::OsString)>,
    ) -> anyhow::Result<Session> {
        Session::start_full(engine, registry_host, None, env)
    }

    /// As `start`, with the app (and its driver) run as the ordinary user `user`, as a
    /// student who installed the .deb opens it: its built-in engine is the rootless one.
    pub fn start_as(user: &berth_tests::rootless::User, registry_host: &str) -> anyhow::Result<Session> {
        berth_tests::rootless::require_machine();
        need("setpriv", "apt package util-linux");
        Session::start_full(Engine::Embedded, registry_host, Some(user), |_| Vec::new())
    }

    fn start_full(
        engine: Engine,
        registry_host: &str,
        user: Option<&berth_tests::rootless::User>,
        env: impl FnOnce(&Path) -> Vec<(String, std::ffi::OsString)>,
    ) -> anyhow::Result<Session> {
        let xvfb = need("Xvfb", "run bash scripts/install.sh tests (apt package xvfb)");
        let driver = need(
            "tauri-driver",
            "run bash scripts/install.sh tests (cargo install tauri-driver --locked)",
        );
        let native = need(
            "WebKitWebDriver",
            "run bash scripts/install.sh tests (apt package webkit2gtk-driver)",
        );
        need(
            "xdg-open",
            "run bash scripts/install.sh tests (apt package xdg-utils)",
        );
        let berth = target_dir().join("berth");
        if !berth.is_file() {
            panic!(
                "missing {}: build it first with cargo build -p berth",
                berth.display()
            );
        }
        let dir = tempfile::Builder::new().prefix("berth-desktop-e2e-").tempdir()?;
        let shots = match std::env::var_os("BERTH_E2E_SCREENSHOTS") {
            Some(d) => PathBuf::from(d),
            None => PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("desktop-e2e"),
        }
        .join(match (engine, user) {
            (Engine::Embedded, None) => "embedded",
            (Engine::Embedded, Some(_)) => "rootless",
            (Engine::Podman, _) => "podman",
        });
        std::fs::create_dir_all(&shots)?;
        let mut children = Vec::new();

        let display = free_display();
        children.push(spawn_group(
            Command::new(&xvfb)
                .arg(format!(":{display}"))
                .args(["-screen", "0", "1280x860x24", "-nolisten", "tcp"])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )?);
        wait_for("Xvfb", 20, || {
            Path::new(&format!("/tmp/.X11-unix/X{display}")).exists()
        })?;

        // $BROWSER for xdg-open: record the URL instead of opening a browser.
        let browser_log = dir.path().join("browser.log");
        let browser = dir.path().join("browser.sh");
        std::fs::write(
            &browser,
            format!("#!/bin/sh\necho \"$1\" >> '{}'\n", browser_log.display()),
        )?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&browser, std::fs::Permissions::from_mode(0o755))?;
        }

        let root = dir.path().join("root");
        let mut podman = None;
        let endpoint = match engine {
            Engine::Embedded => None,
            Engine::Podman => {
                let bin = need("podman", "run bash scripts/install.sh tests (apt package podman)");
                let proot = dir.path().join("podman-root");
                let prun = dir.path().join("podman-run");
                let conf = dir.path().join("registries.conf");
                std::fs::write(
                    &conf,
                    format!("[[registry]]\nlocation = \"{registry_host}\"\ninsecure = true\n"),
                )?;
                let sock = dir.path().join("podman.sock");
                children.push(spawn_group(
                    Command::new(&bin)
                        .arg("--root")
                        .arg(&proot)
                        .arg("--runroot")
                        .arg(&prun)
                        .args(["system", "service", "--time=0"])
                        .arg(format!("unix://{}", sock.display()))
                        .env("CONTAINERS_REGISTRIES_CONF", &conf)
                        .stdout(Stdio::null())
                        .stderr(std::fs::File::create(dir.path().join("podman.log"))?),
                )?);
                wait_for("podman system service", 30, || {
                    std::os::unix::net::UnixStream::connect(&sock).is_ok()
                })?;
                podman = Some((bin, proot, prun));
                Some(format!("unix://{}", sock.display()))
            }
        };

        let driver_port = berth_tests::free_port();
        let native_port = loop {
            let p = berth_tests::free_port();
            if p != driver_port {
                break p;
            }
        };
        // The app saves downloads in the XDG Downloads folder: point it into the session.
        let xdg_config = dir.path().join("xdg-config");
        std::fs::create_dir_all(&xdg_config)?;
        std::fs::write(
            xdg_config.join("user-dirs.dirs"),
            format!(
                "XDG_DOWNLOAD_DIR=\"{}\"\n",
                dir.path().join("downloads").display()
            ),
        )?;
        let runtime = dir.path().join("run");
        let mut cmd = match user {
            None => Command::new(&driver),
            Some(u) => {
                // Everything the app writes in the session's directory is the user's.
                std::fs::create_dir_all(&runtime)?;
                let chown = Command::new("chown")
                    .arg("-R")
                    .arg(format!("{}:{}", u.uid, u.gid))
                    .arg(dir.path())
                    .status()?;
                ensure!(chown.success(), "chown -R of the session's directory failed");
                {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700))?;
                }
                let reach = as_user(u, &runtime, Path::new("test"))
                    .arg("-x")
                    .arg(&berth)
                    .status()?;
                ensure!(
                    reach.success(),
                    "{} cannot run {}: put the build where every user can read it",
                    u.name,
                    berth.display()
                );
                as_user(u, &runtime, &driver)
            }
        };
        cmd.args(["--port", &driver_port.to_string(), "--native-port"])
            .arg(native_port.to_string())
            .arg("--native-driver")
            .arg(&native)
            .env("DISPLAY", format!(":{display}"))
            .env("BROWSER", &browser)
            .env("BERTH_ROOT", &root)
            .env("BERTH_BIN", &berth)
            .env("DOCKER_CONFIG", dir.path().join("docker-config"))
            .env("BERTH_DESKTOP_QUIT_ON_CLOSE", "1")
            .env("XDG_CONFIG_HOME", &xdg_config)
            .env("NO_AT_BRIDGE", "1")
            // No route to Docker Hub, whatever this machine's network: the embedded engine
            // sees it at a name that cannot resolve (berth_api::DOCKER_HUB_ENV).
            .env("BERTH_DOCKER_HUB_URL", "https://registry-1.docker.invalid/")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .env_remove("BERTH_HOST")
            .env_remove("DOCKER_HOST")
            .stdout(std::fs::File::create(dir.path().join("driver.log"))?)
            .stderr(std::fs::File::create(dir.path().join("app.log"))?);
        if let Some(ep) = &endpoint {
            cmd.env("DOCKER_HOST", ep);
        }
        cmd.envs(env(dir.path()));
        children.push(spawn_group(&mut cmd)?);
        // tauri-driver listens before the WebKitWebDriver it starts does, and forwards a
        // session request to it as is: both must be up before the first request.
        wait_for("tauri-driver and WebKitWebDriver", 20, || {
            std::net::TcpStream::connect(("127.0.0.1", driver_port)).is_ok()
                && std::net::TcpStream::connect(("127.0.0.1", native_port)).is_ok()
        })?;
        Ok(Session {
            engine,
            dir,
            shots,
            children,
            driver_port,
            display,
            root,
            browser_log,
            podman,
            user: user.map(|u| (u.clone(), runtime)),
        })
    }

    /// `berth args` on the session's store root, as the app's user.
    fn berth(&self, args: &[&str]) -> std::io::Result<std::process::Output> {
        let berth = target_dir().join("berth");
        let mut cmd = match &self.user {
            None => Command::new(&berth),
            Some((u, runtime)) => as_user(u, runtime, &berth),
        };
        cmd.arg("--root").arg(&self.root).args(args).output()
    }

    pub async fn connect(&self) -> anyhow::Result<Ui> {
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), "wry".into());
        caps.insert(
            "tauri:options".into(),
            serde_json::json!({ "application": env!("CARGO_BIN_EXE_berth-desktop") }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.driver_port))
            .await
            .with_context(|| {
                format!(
                    "tauri-driver could not start the app; its log: {}",
                    std::fs::read_to_string(self.dir.path().join("app.log")).unwrap_or_default()
                )
            })?;
        Ok(Ui {
            client,
            shots: self.shots.clone(),
            display: self.display,
        })
    }

    /// Copy the app's and the driver's logs next to the screenshots (on failure).
    pub fn keep_logs(&self) {
        for name in ["app.log", "driver.log", "podman.log"] {
            let _ = std::fs::copy(self.dir.path().join(name), self.shots.join(name));
        }
    }

    /// The URL the app handed to `$BROWSER`.
    pub async fn wait_browser_url(&self, secs: u64) -> anyhow::Result<String> {
        for _ in 0..secs * 10 {
            if let Ok(text) = std::fs::read_to_string(&self.browser_log) {
                if let Some(line) = text.lines().next() {
                    return Ok(line.trim().to_string());
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("nothing was opened in the browser within {secs} s (xdg-open → $BROWSER)")
    }

    /// The Engine API the app talks to, for acting beside the UI: podman's socket, or the
    /// embedded engine's, which serves this session's store root on the root's socket.
    pub fn engine_api(&self) -> anyhow::Result<bollard::Docker> {
        let socket = match &self.podman {
            Some(_) => self.dir.path().join("podman.sock"),
            None if self.user.is_some() => {
                // The rootless engine is the app's child `berth daemon`, on the user's
                // default socket.
                let (_, runtime) = self.user.as_ref().expect("checked");
                let socket = runtime.join("berth").join("berth.sock");
                if !socket.exists() {
                    bail!("the user's engine does not listen on {}", socket.display());
                }
                socket
            }
            None => {
                let socket = berth_api::root_socket(&self.root);
                if !socket.exists() {
                    bail!("no engine serves this session's root on {}", socket.display());
                }
                socket
            }
        };
        Ok(bollard::Docker::connect_with_unix(
            &socket.display().to_string(),
            120,
            bollard::API_DEFAULT_VERSION,
        )?)
    }

    /// How many containers the engine still has, asked without the UI.
    pub fn container_count(&self) -> anyhow::Result<usize> {
        let out = match &self.podman {
            None => self.berth(&["ps", "-aq"])?,
            Some((bin, root, run)) => Command::new(bin)
                .arg("--root")
                .arg(root)
                .arg("--runroot")
                .arg(run)
                .args(["ps", "-aq"])
                .output()?,
        };
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Whatever the test left: containers first (their mounts live under the root).
        match &self.podman {
            None => {
                if let Ok(o) = self.berth(&["ps", "-aq"]) {
                    let ids: Vec<String> = String::from_utf8_lossy(&o.stdout)
                        .split_whitespace()
                        .map(String::from)
                        .collect();
                    if !ids.is_empty() {
                        let mut args = vec!["rm", "-f"];
                        args.extend(ids.iter().map(String::as_str));
                        let _ = self.berth(&args);
                    }
                }
            }
            Some((bin, root, run)) => {
                let _ = Command::new(bin)
                    .arg("--root")
                    .arg(root)
                    .arg("--runroot")
                    .arg(run)
                    .args(["rm", "-af"])
                    .output();
            }
        }
        for child in self.children.iter_mut().rev() {
            // Each child leads its own process group: the driver's WebKitWebDriver and
            // the app go with it.
            let _ = Command::new("kill")
                .args(["-TERM", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
        }
        if let Some((_, runtime)) = &self.user {
            // The user's engine (the app's child daemon, if quitting did not end it), its
            // namespace keeper and pasta: their namespaces and mounts go with them.
            let rootless = runtime.join("berth").join("rootless");
            let mut pids: Vec<String> = ["keeper.pid", "network.pid"]
                .iter()
                .filter_map(|f| std::fs::read_to_string(rootless.join(f)).ok())
                .map(|p| p.trim().to_string())
                .collect();
            let dir = self.dir.path().display().to_string();
            for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                if String::from_utf8_lossy(&cmdline).contains(&dir) {
                    pids.push(entry.file_name().to_string_lossy().into_owned());
                }
            }
            for pid in pids.iter().filter(|p| !p.is_empty()) {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
        }
        if let Some((bin, root, run)) = &self.podman {
            // podman's overlay mounts must go before the temp dir can.
            let _ = Command::new(bin)
                .arg("--root")
                .arg(root)
                .arg("--runroot")
                .arg(run)
                .args(["system", "reset", "--force"])
                .output();
            // podman's exec sessions keep a conmon each; end those under our storage.
            let dir = self.dir.path().display().to_string();
            for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                if String::from_utf8_lossy(&cmdline).contains(&dir) {
                    let pid = entry.file_name().to_string_lossy().into_owned();
                    let _ = Command::new("kill").arg(&pid).status();
                }
            }
            // podman leaves its overlay directory bind-mounted on itself: unmount whatever
            // is still mounted under the session's directory, deepest first.
            std::thread::sleep(Duration::from_millis(500));
            let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
            let mut under: Vec<&str> = mounts
                .lines()
                .filter_map(|l| l.split_whitespace().nth(1))
                .filter(|m| m.starts_with(dir.as_str()))
                .collect();
            under.sort_by_key(|m| std::cmp::Reverse(m.len()));
            for m in under {
                let _ = Command::new("umount").args(["-l", m]).status();
            }
        }
    }
}

pub struct Ui {
    client: Client,
    shots: PathBuf,
    display: u32,
}

impl Ui {
    pub async fn close(self) {
        let _ = self.client.close().await;
    }

    async fn element(&self, css: &str) -> anyhow::Result<fantoccini::elements::Element> {
        self.client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await
            .with_context(|| format!("no element matches {css}"))
    }

    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        let element = self.element(css).await?;
        self.settled(css).await;
        element.click().await.with_context(|| format!("clicking {css}"))?;
        Ok(())
    }

    /// Waits (up to 2 s) until `css`'s box stays put for 100 ms: a WebDriver click lands
    /// where the element *was*, so a row that reflows meanwhile (a status that grows from
    /// "Up Less than a second" to "Up 2 seconds") sent a click for Logs to the Terminal
    /// button beside it once (a CI run's podman flow).
    async fn settled(&self, css: &str) {
        let rect = || async {
            self.client
                .execute(
                    "const r = document.querySelector(arguments[0])?.getBoundingClientRect(); \
                     return r ? [r.x, r.y, r.width, r.height].join(',') : null;",
                    vec![css.into()],
                )
                .await
                .ok()
                .and_then(|v| v.as_str().map(String::from))
        };
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut last = rect().await;
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = rect().await;
            if now == last {
                return;
            }
            last = now;
        }
    }

    pub async fn type_into(&self, css: &str, text: &str) -> anyhow::Result<()> {
        self.element(css)
            .await?
            .send_keys(text)
            .await
            .with_context(|| format!("typing into {css}"))?;
        Ok(())
    }

    pub async fn clear(&self, css: &str) -> anyhow::Result<()> {
        self.element(css).await?.clear().await?;
        Ok(())
    }

    pub async fn text(&self, css: &str) -> anyhow::Result<String> {
        let t: serde_json::Value = self
            .client
            .execute(
                "return document.querySelector(arguments[0])?.textContent ?? null",
                vec![css.into()],
            )
            .await?;
        t.as_str()
            .map(|s| s.trim().to_string())
            .with_context(|| format!("no element matches {css}"))
    }

    pub async fn attr(&self, css: &str, name: &str) -> anyhow::Result<String> {
        let t = self
            .client
            .execute(
                "return document.querySelector(arguments[0])?.getAttribute(arguments[1]) ?? null",
                vec![css.into(), name.into()],
            )
            .await?;
        t.as_str()
            .map(String::from)
            .with_context(|| format!("{css} has no {name}"))
    }

    pub async fn value(&self, css: &str) -> anyhow::Result<String> {
        let t = self
            .client
            .execute(
                "return document.querySelector(arguments[0])?.value ?? null",
                vec![css.into()],
            )
            .await?;
        t.as_str()
            .map(String::from)
            .with_context(|| format!("no input matches {css}"))
    }

    /// What `script` (a function body that returns a string) returns.
    pub async fn eval_string(&self, script: &str) -> anyhow::Result<String> {
        let v = self.client.execute(script, vec![]).await?;
        v.as_str()
            .map(String::from)
            .with_context(|| format!("the script returned {v}, not a string"))
    }

    /// Poll a JavaScript condition until it holds.
    pub async fn wait_js(&self, condition: &str, secs: u64) -> anyhow::Result<()> {
        let script = format!("return !!({condition})");
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if self.client.execute(&script, vec![]).await?.as_bool() == Some(true) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!("timed out after {secs} s waiting for: {condition}")
    }

    pub async fn wait_css(&self, css: &str, secs: u64) -> anyhow::Result<()> {
        self.wait_js(&format!("!!document.querySelector(\"{css}\")"), secs)
            .await
    }

    /// Wait for `css`, failing early with the UI's own error sentence if one appears.
    pub async fn wait_css_or_error(&self, css: &str, secs: u64) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            let state = self
                .client
                .execute(
                    "const e = document.querySelector('main [data-testid=error-box]'); \
                     if (document.querySelector(arguments[0])) return 'ok'; \
                     return e ? e.textContent : null;",
                    vec![css.into()],
                )
                .await?;
            match state.as_str() {
                Some("ok") => return Ok(()),
                Some(err) => bail!("the UI reported an error: {err}"),
                None => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
        bail!("timed out after {secs} s waiting for {css}")
    }

    /// Capture the window as the X server shows it (ImageMagick's `import` on the Xvfb
    /// display). WebDriver's own screenshot waits forever when WebKit runs without its
    /// DMA-BUF renderer, which the app turns off to save memory.
    pub async fn shot(&self, name: &str) -> anyhow::Result<()> {
        // Let the last state change paint before capturing.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let path = self.shots.join(format!("{name}.png"));
        let out = tokio::process::Command::new("import")
            .args([
                "-display",
                &format!(":{}", self.display),
                "-window",
                "root",
                "-crop",
                "1200x780+0+0",
            ])
            .arg(&path)
            .output()
            .await
            .context("run ImageMagick's import (apt package imagemagick; scripts/install.sh)")?;
        ensure!(
            out.status.success(),
            "import could not capture the window: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(())
    }
}
