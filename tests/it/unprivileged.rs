//! `berth` as a real unprivileged user without a login session (issue 14: `su -`, no
//! `XDG_RUNTIME_DIR`): the store goes to `~/.local/share/berth`, the sockets to
//! `/tmp/berth-UID`, which Berth makes with mode 0700, and a planted `/tmp/berth-UID` (owned
//! by root, or the user's own but open to others) is refused in one sentence. A run that
//! fails for want of privileges (the rootless engine is not there yet) leaves a container
//! `ps` lists and `rm` removes, and the engine keeps answering.
//!
//! Runs as root: it creates its own user, `berth-noroot`, when missing.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_tests::berth::{bin, Run};
use berth_tests::daemon::run_of;

const USER: &str = "berth-noroot";

/// The test's own unprivileged user (made when missing): its uid and gid.
fn test_user() -> (u32, u32) {
    let id = |flag: &str| {
        Command::new("id")
            .args([flag, USER])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<u32>().ok())
    };
    if id("-u").is_none() {
        let st = Command::new("useradd")
            .args([
                "--user-group",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                USER,
            ])
            .status()
            .expect("run useradd");
        assert!(st.success() || id("-u").is_some(), "useradd {USER} failed");
    }
    (id("-u").expect("uid"), id("-g").expect("gid"))
}

/// The user's side: a home of its own and nothing else of root's environment (no
/// `XDG_RUNTIME_DIR`, as after `su -`).
struct User {
    uid: u32,
    gid: u32,
    home: tempfile::TempDir,
}

impl User {
    fn new() -> User {
        let (uid, gid) = test_user();
        let home = tempfile::Builder::new().prefix("berth-home-").tempdir().unwrap();
        std::os::unix::fs::chown(home.path(), Some(uid), Some(gid)).unwrap();
        let b = bin();
        let mode = std::fs::metadata(&b).unwrap().permissions().mode();
        assert!(
            mode & 0o001 != 0,
            "{} must be executable by other users for this test",
            b.display()
        );
        User { uid, gid, home }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args)
            .env_clear()
            .env("HOME", self.home.path())
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .current_dir(self.home.path())
            .uid(self.uid)
            .gid(self.gid)
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Run {
        run_of(&mut self.command(args))
    }

    fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(r.code, 0, "berth {args:?} as {USER}:\n{}{}", r.stdout, r.stderr);
        r.stdout
    }

    fn socket_dir(&self) -> PathBuf {
        PathBuf::from(format!("/tmp/berth-{}", self.uid))
    }
}

/// A `berth daemon` of the user's, stopped (SIGTERM) on drop.
struct UserDaemon(Child);

impl Drop for UserDaemon {
    fn drop(&mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.0.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let _ = self.0.wait();
    }
}

/// One HTTP/1.1 GET over a unix socket; the status line and the body.
fn get(socket: &Path, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    (
        head.lines().next().unwrap_or_default().to_string(),
        body.to_string(),
    )
}

fn refused(u: &User, args: &[&str], says: &str) {
    let r = u.run(args);
    assert_ne!(
        r.code, 0,
        "berth {args:?} used a planted directory:\n{}",
        r.stdout
    );
    let errors: Vec<&str> = r.stderr.lines().filter(|l| l.contains("Error: ")).collect();
    assert_eq!(errors.len(), 1, "one sentence:\n{}", r.stderr);
    assert!(errors[0].contains(says), "{args:?}: {}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
}

#[test]
fn an_unprivileged_daemon_listens_in_its_own_private_directory() {
    let u = User::new();
    let dir = u.socket_dir();
    let _ = std::fs::remove_dir_all(&dir);

    // Planted by root (as any user could plant it first): refused by the daemon and by a
    // command, which say what is wrong and what to do.
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let not_owned = format!("{} belongs to another user (uid 0)", dir.display());
    refused(&u, &["daemon"], &not_owned);
    refused(&u, &["ps"], &not_owned);
    assert!(u.run(&["daemon"]).stderr.contains("set XDG_RUNTIME_DIR"));
    // The user's own, but open to others.
    std::os::unix::fs::chown(&dir, Some(u.uid), Some(u.gid)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    refused(&u, &["daemon"], "is open to other users (mode 0755)");
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "nothing was made in it"
    );
    std::fs::remove_dir(&dir).unwrap();

    // Missing: made with mode 0700, and the daemon listens there.
    let log = std::fs::File::create(u.home.path().join("daemon.log")).unwrap();
    let daemon = UserDaemon(
        u.command(&["daemon"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let socket = dir.join("berth.sock");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        let log = std::fs::read_to_string(u.home.path().join("daemon.log")).unwrap_or_default();
        assert!(
            Instant::now() < deadline,
            "no socket at {} in 20 s:\n{log}",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let md = std::fs::symlink_metadata(&dir).unwrap();
    assert_eq!((md.uid(), md.permissions().mode() & 0o7777), (u.uid, 0o700));
    let (status, body) = get(&socket, "/_ping");
    assert!(status.contains("200"), "{status}");
    assert_eq!(body, "OK");
    let (status, body) = get(&socket, "/version");
    assert!(
        status.contains("200") && body.contains("\"ApiVersion\""),
        "{status} {body}"
    );
    // The store is the user's data directory.
    let store = u.home.path().join(".local/share/berth");
    assert!(
        store.join("engine.lock").is_file(),
        "no store at {}",
        store.display()
    );

    // A command finds the daemon on the root's socket in the same directory.
    let roots: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("root-"))
        .collect();
    assert_eq!(roots.len(), 1, "{roots:?}");
    u.ok(&["ps", "-a"]);

    // A run that fails (here: no cgroup for a user; once the rootless engine is in, it may
    // succeed) leaves nothing that blocks the engine.
    let reg = berth_tests::registry::Registry::start(berth_tests::registry::Mode::Plain);
    reg.push_fixture(&berth_tests::fixtures::image("busybox"), "library/busybox:latest");
    let busybox = reg.reference("library/busybox");
    u.ok(&["pull", "-q", &busybox]);
    let run = u.run(&["run", "--name", "first", &busybox, "true"]);
    if run.code != 0 {
        assert_eq!(
            run.stderr.lines().filter(|l| l.contains("Error: ")).count(),
            1,
            "{}",
            run.stderr
        );
    }
    assert!(u.ok(&["ps", "-a"]).contains("first"), "the container is listed");
    u.ok(&["rm", "-f", "first"]);
    let rm_run = u.run(&["run", "--rm", &busybox, "true"]);
    assert_eq!(
        u.ok(&["ps", "-aq"]).trim(),
        "",
        "a --rm run leaves no record ({})",
        rm_run.stderr
    );
    let check = u.run(&["system", "check"]);
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
    assert_eq!(get(&socket, "/_ping").1, "OK", "the daemon still answers");

    drop(daemon);
    assert!(!socket.exists(), "the daemon removed its socket");
    // The next engine (a command's own) starts in the same directory.
    u.ok(&["ps", "-a"]);
    let _ = std::fs::remove_dir_all(&dir);
}
