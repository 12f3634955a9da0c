//! The tray on a real StatusNotifier host: a private session bus (`dbus-daemon`) with
//! `status-notifier-watcher`, the app on an Xvfb display running its embedded engine. The
//! test reads the tray's menu the way a panel does (com.canonical.dbusmenu over D-Bus):
//! the running count follows the engine, and "Quit Berth" ends the app while its
//! containers keep running.

mod desktop_session;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_tests::registry::{Mode, Registry};
use desktop_session::{need, wait_until, DesktopSession};

/// The app, killed if the test fails before it quits.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Bus(String);

impl Bus {
    fn send(&self, args: &[&str]) -> String {
        let out = Command::new("dbus-send")
            .args(["--session", "--print-reply"])
            .args(args)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.0)
            .output()
            .expect("run dbus-send");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Bus names of the items registered with the watcher.
    fn items(&self) -> Vec<String> {
        let out = self.send(&[
            "--dest=org.kde.StatusNotifierWatcher",
            "/StatusNotifierWatcher",
            "org.freedesktop.DBus.Properties.Get",
            "string:org.kde.StatusNotifierWatcher",
            "string:RegisteredStatusNotifierItems",
        ]);
        quoted(&out).into_iter().filter(|s| s.starts_with(':')).collect()
    }

    /// The object path of the item's menu, as the item announces it (its `Menu` property).
    fn menu_path(&self, item: &str) -> Option<String> {
        let reply = self.send(&[
            &format!("--dest={item}"),
            "/org/ayatana/NotificationItem/tray_icon_tray_app_berth",
            "org.freedesktop.DBus.Properties.Get",
            "string:org.kde.StatusNotifierItem",
            "string:Menu",
        ]);
        quoted(&reply).into_iter().find(|s| s.starts_with('/'))
    }

    /// (id, label) of every entry of the item's menu, as a panel would show them.
    fn menu(&self, item: &str) -> Vec<(i32, String)> {
        let Some(menu) = self.menu_path(item) else {
            return Vec::new();
        };
        let layout = self.send(&[
            &format!("--dest={item}"),
            &menu,
            "com.canonical.dbusmenu.GetLayout",
            "int32:0",
            "int32:-1",
            "array:string:label",
        ]);
        // dbus-send prints each entry as `int32 ID`, then its properties; a label's value
        // is on the line after `string "label"`.
        let mut entries = Vec::new();
        let mut id = None;
        let mut lines = layout.lines();
        while let Some(line) = lines.next() {
            let line = line.trim();
            if let Some(n) = line.strip_prefix("int32 ") {
                id = n.trim().parse().ok();
            } else if line.contains("string \"label\"") {
                if let (Some(i), Some(value)) = (id, lines.next().and_then(|l| quoted(l).pop())) {
                    entries.push((i, value));
                }
            }
        }
        entries
    }

    fn click(&self, item: &str, id: i32) {
        let menu = self.menu_path(item).expect("the item announces its menu");
        self.send(&[
            &format!("--dest={item}"),
            &menu,
            "com.canonical.dbusmenu.Event",
            &format!("int32:{id}"),
            "string:clicked",
            "variant:int32:0",
            "uint32:0",
        ]);
    }
}

fn quoted(text: &str) -> Vec<String> {
    text.split('"').skip(1).step_by(2).map(str::to_string).collect()
}

#[test]
fn the_tray_counts_running_containers_and_quits_without_stopping_them() {
    need("dbus-send", "dbus-bin");
    let watcher = need("status-notifier-watcher", "haskell-status-notifier-item-utils");
    let fixtures = berth_tests::fixtures::dir();
    assert!(
        fixtures.join("busybox").join("index.json").is_file(),
        "fixture busybox missing in {}: run tests/fixtures/make-fixtures.sh {}",
        fixtures.display(),
        fixtures.display()
    );
    let app = PathBuf::from(env!("CARGO_BIN_EXE_berth-desktop"));
    let berth = app.with_file_name("berth");
    assert!(
        berth.is_file(),
        "{} missing: cargo build -p berth",
        berth.display()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");

    let mut session = DesktopSession::start();
    session.service(&watcher);
    let bus = Bus(session.bus.clone());
    wait_until("the watcher on the bus", 20, || {
        bus.send(&[
            "--dest=org.freedesktop.DBus",
            "/",
            "org.freedesktop.DBus.ListNames",
        ])
        .contains("org.kde.StatusNotifierWatcher")
    });

    let log = std::fs::File::create(dir.path().join("app.log")).expect("log");
    let mut app = session
        .command(&app)
        .env("BERTH_ROOT", &root)
        .env("BERTH_BIN", &berth)
        // A settings file of its own: Built-in, whatever this user chose in the window.
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .env("NO_AT_BRIDGE", "1")
        .env_remove("BERTH_HOST")
        .env_remove("DOCKER_HOST")
        .env_remove("BERTH_DESKTOP_QUIT_ON_CLOSE")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map(KillOnDrop)
        .expect("start berth-desktop");
    let app_log = || std::fs::read_to_string(dir.path().join("app.log")).unwrap_or_default();

    let deadline = Instant::now() + Duration::from_secs(60);
    let item = loop {
        if let Some(item) = bus.items().into_iter().next() {
            break item;
        }
        assert!(
            Instant::now() < deadline && app.0.try_wait().ok().flatten().is_none(),
            "the app registered no tray item; its log:\n{}",
            app_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let labels = |bus: &Bus| bus.menu(&item).into_iter().map(|(_, l)| l).collect::<Vec<_>>();
    wait_until("the menu shows the engine, 0 running, Open and Quit", 30, || {
        let l = labels(&bus);
        l.contains(&"Engine: Built-in".to_string())
            && l.contains(&"Running containers: 0".to_string())
            && l.contains(&"Open Berth".to_string())
            && l.contains(&"Quit Berth".to_string())
    });

    // A container started beside the app (same root, through the CLI) shows in the count.
    let registry = Registry::start(Mode::Plain);
    registry.push_fixture(&fixtures.join("busybox"), "tray/busybox:latest");
    let image = registry.reference("tray/busybox:latest");
    let cli = |args: &[&str]| {
        let out = Command::new(&berth)
            .arg("--root")
            .arg(&root)
            .args(args)
            .output()
            .expect("run berth");
        assert!(
            out.status.success(),
            "berth {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    cli(&["pull", &image]);
    let id = cli(&["run", "-d", &image, "sleep", "600"]);
    wait_until("the tray to count the running container", 30, || {
        labels(&bus).contains(&"Running containers: 1".to_string())
    });

    // Quit from the tray: the app ends, the container keeps running.
    let quit = bus
        .menu(&item)
        .into_iter()
        .find(|(_, l)| l == "Quit Berth")
        .map(|(i, _)| i)
        .expect("a Quit entry");
    bus.click(&item, quit);
    wait_until("the app to quit from the tray", 20, || {
        app.0.try_wait().ok().flatten().is_some()
    });
    let running = cli(&["ps", "-q", "--no-trunc"]);
    assert!(
        running.contains(&id),
        "the container stopped with the app: ps -q says {running:?}"
    );
    cli(&["rm", "-f", &id]);
}
