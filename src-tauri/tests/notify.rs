//! A finished operation's notification reaches a real notification server: a private
//! session bus (`dbus-daemon`) with `dunst` on an Xvfb display, as a desktop session has.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Kill(Vec<Child>);

impl Drop for Kill {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn need(tool: &str) -> String {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is missing: run scripts/install.sh (apt packages xvfb dbus-daemon dunst)"
    );
    tool.to_string()
}

#[test]
fn a_hidden_window_build_notifies_through_the_session_bus() {
    let (xvfb, dbus, dunst, dunstctl) = (need("Xvfb"), need("dbus-daemon"), need("dunst"), need("dunstctl"));
    let display = (120..200)
        .find(|n| {
            !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                && !Path::new(&format!("/tmp/.X{n}-lock")).exists()
        })
        .expect("a free X display number");
    let mut kids = Kill(Vec::new());
    kids.0.push(
        Command::new(xvfb)
            .arg(format!(":{display}"))
            .args(["-screen", "0", "640x480x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb"),
    );
    let mut bus = Command::new(dbus)
        .args(["--session", "--nofork", "--nopidfile", "--print-address=1"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start dbus-daemon");
    let mut address = String::new();
    BufReader::new(bus.stdout.take().expect("stdout"))
        .read_line(&mut address)
        .expect("read the bus address");
    kids.0.push(bus);
    let address = address.trim().to_string();
    assert!(address.starts_with("unix:"), "bus address {address:?}");
    std::env::set_var("DBUS_SESSION_BUS_ADDRESS", &address);

    let deadline = Instant::now() + Duration::from_secs(20);
    while !Path::new(&format!("/tmp/.X11-unix/X{display}")).exists() {
        assert!(Instant::now() < deadline, "Xvfb did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    kids.0.push(
        Command::new(dunst)
            .env("DISPLAY", format!(":{display}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dunst"),
    );

    // The decision: a build that ends while the window is hidden notifies.
    let (summary, body) =
        berth_desktop::notify::for_operation("build-1", false, None).expect("a hidden build notifies");
    // dunst takes the bus name a moment after it starts.
    let id = loop {
        match berth_desktop::notify::send(&summary, &body) {
            Ok(id) => break id,
            Err(e) => {
                assert!(Instant::now() < deadline, "no notification server answered: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    assert!(id > 0, "the server gave id {id}");
    let count = |what: &str| {
        let out = Command::new(&dunstctl)
            .args(["count", what])
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .output()
            .expect("run dunstctl");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while count("displayed") != "1" {
        assert!(
            Instant::now() < deadline,
            "dunst displays {} notifications, not 1",
            count("displayed")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
