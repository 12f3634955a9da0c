//! A bare desktop session for tests of what lives outside the window: an Xvfb display and
//! a private session bus (`dbus-daemon`), plus whatever session services a test starts on
//! them (a notification server, a StatusNotifier watcher). Everything dies with it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The tool's name if it is on PATH; else the test fails saying what to install.
pub fn need(tool: &str, package: &str) -> String {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is missing: run bash scripts/install.sh tests (apt package {package})"
    );
    tool.to_string()
}

pub fn wait_until(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < deadline, "{what} within {secs} s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub struct DesktopSession {
    pub display: u32,
    /// `DBUS_SESSION_BUS_ADDRESS` of the private bus.
    pub bus: String,
    children: Vec<Child>,
}

impl DesktopSession {
    pub fn start() -> DesktopSession {
        let xvfb = need("Xvfb", "xvfb");
        let dbus = need("dbus-daemon", "dbus-daemon");
        let display = (120..200)
            .find(|n| {
                !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                    && !Path::new(&format!("/tmp/.X{n}-lock")).exists()
            })
            .expect("a free X display number");
        let mut children = vec![Command::new(xvfb)
            .arg(format!(":{display}"))
            .args(["-screen", "0", "1280x860x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb")];
        let mut daemon = Command::new(dbus)
            .args(["--session", "--nofork", "--nopidfile", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-daemon");
        let mut address = String::new();
        BufReader::new(daemon.stdout.take().expect("stdout"))
            .read_line(&mut address)
            .expect("read the bus address");
        children.push(daemon);
        let bus = address.trim().to_string();
        assert!(bus.starts_with("unix:"), "bus address {bus:?}");
        wait_until("Xvfb up", 20, || {
            Path::new(&format!("/tmp/.X11-unix/X{display}")).exists()
        });
        DesktopSession {
            display,
            bus,
            children,
        }
    }

    /// A command that runs inside the session (its display and bus).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env("DISPLAY", format!(":{}", self.display))
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus);
        c
    }

    /// Start a session service; it is killed with the session.
    pub fn service(&mut self, program: &str) {
        let child = self
            .command(program)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}"));
        self.children.push(child);
    }
}

impl Drop for DesktopSession {
    fn drop(&mut self) {
        for c in self.children.iter_mut().rev() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
