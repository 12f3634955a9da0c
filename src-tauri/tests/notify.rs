//! A finished operation's notification reaches a real notification server: a private
//! session bus (`dbus-daemon`) with `dunst` on an Xvfb display, as a desktop session has.

mod desktop_session;

use std::process::Command;
use std::time::{Duration, Instant};

use desktop_session::{need, wait_until, DesktopSession};

#[test]
fn a_hidden_window_build_notifies_through_the_session_bus() {
    let dunst = need("dunst", "dunst");
    let dunstctl = need("dunstctl", "dunst");
    let mut session = DesktopSession::start();
    session.service(&dunst);
    std::env::set_var("DBUS_SESSION_BUS_ADDRESS", &session.bus);

    // The decision: a build that ends while the window is hidden notifies.
    let (summary, body) =
        berth_desktop::notify::for_operation("build-1", false, None).expect("a hidden build notifies");
    // dunst takes the bus name a moment after it starts.
    let deadline = Instant::now() + Duration::from_secs(20);
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
            .env("DBUS_SESSION_BUS_ADDRESS", &session.bus)
            .output()
            .expect("run dunstctl");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    wait_until("dunst to display the notification", 10, || {
        count("displayed") == "1"
    });
}
