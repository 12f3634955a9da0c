//! Running the real `berth` binary as an ordinary user, for the rootless engine's tests: a
//! user made with `useradd` (with subordinate ids), a clean environment (`setpriv` and
//! `env -i`, HOME and XDG_RUNTIME_DIR set), a private store root in the user's home and a
//! private runtime directory, so each [`Session`] starts its own namespace keeper and ends
//! it again.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::berth::Run;
use crate::tools::require;

/// An ordinary user of this machine.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    /// The first of its subordinate uids (container uid 1 is this one).
    pub subuid_start: u32,
}

fn id_of(name: &str, flag: &str) -> Option<u32> {
    let o = Command::new("id").args([flag, name]).output().ok()?;
    String::from_utf8_lossy(&o.stdout).trim().parse().ok()
}

fn subid_start(file: &str, name: &str, uid: u32) -> Option<u32> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.trim().split(':').collect();
        (f.len() == 3 && (f[0] == name || f[0] == uid.to_string()) && f[2] != "0")
            .then(|| f[1].parse().ok())
            .flatten()
    })
}

/// The first id after every range in /etc/subuid and /etc/subgid (at least 300000).
fn free_subid_start() -> u32 {
    ["/etc/subuid", "/etc/subgid"]
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter_map(|l| {
            let f: Vec<&str> = l.trim().split(':').collect();
            Some(f.get(1)?.parse::<u32>().ok()? + f.get(2)?.parse::<u32>().ok()?)
        })
        .max()
        .unwrap_or(0)
        .max(300_000)
}

fn check(cmd: &mut Command, what: &str) {
    let o = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        o.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

impl User {
    /// `name`, made with `useradd -m` unless it exists, with 65536 subordinate uids and gids
    /// (`usermod --add-subuids/--add-subgids`) unless it has some. Idempotent; needs root.
    pub fn ensure(name: &str) -> User {
        let (uid, gid) = User::add(name);
        let has = |f| subid_start(f, name, uid).is_some();
        if !has("/etc/subuid") || !has("/etc/subgid") {
            let start = free_subid_start();
            let range = format!("{start}-{}", start + 65535);
            check(
                Command::new("usermod").args(["--add-subuids", &range, "--add-subgids", &range, name]),
                "usermod --add-subuids",
            );
        }
        User::made(
            name,
            uid,
            gid,
            subid_start("/etc/subuid", name, uid).expect("subordinate uids"),
        )
    }

    /// `name` like [`ensure`](Self::ensure), but without any subordinate ids (those that
    /// `useradd` gave it are taken away again): its engine maps one id. `subuid_start` is 0.
    pub fn ensure_without_subids(name: &str) -> User {
        let (uid, gid) = User::add(name);
        for (file, flag) in [("/etc/subuid", "--del-subuids"), ("/etc/subgid", "--del-subgids")] {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            for line in text.lines() {
                let f: Vec<&str> = line.trim().split(':').collect();
                if f.len() == 3 && (f[0] == name || f[0] == uid.to_string()) {
                    let (start, count): (u32, u32) = (f[1].parse().unwrap(), f[2].parse().unwrap());
                    let range = format!("{start}-{}", start + count.max(1) - 1);
                    check(
                        Command::new("usermod").args([flag, &range, name]),
                        "usermod --del-subids",
                    );
                }
            }
        }
        User::made(name, uid, gid, 0)
    }

    /// `useradd -m` of `name` unless it exists; its uid and gid.
    fn add(name: &str) -> (u32, u32) {
        assert!(
            rustix::process::geteuid().is_root(),
            "the rootless tests make a user: run them as root"
        );
        require("useradd", "passwd");
        require("setpriv", "util-linux");
        if id_of(name, "-u").is_none() {
            check(
                Command::new("useradd").args(["-m", "-s", "/bin/sh", name]),
                "useradd",
            );
        }
        let uid = id_of(name, "-u").expect("the user exists now");
        let gid = id_of(name, "-g").expect("the user has a group");
        (uid, gid)
    }

    fn made(name: &str, uid: u32, gid: u32, subuid_start: u32) -> User {
        let home = PathBuf::from(format!("/home/{name}"));
        assert!(home.is_dir(), "{name} has no home at {}", home.display());
        User {
            name: name.to_string(),
            uid,
            gid,
            home,
            subuid_start,
        }
    }
}

/// What the rootless engine needs of the machine, checked before a test: the tools (a
/// missing one fails with what to install), and the tun device open to users, which
/// Debian's udev makes 0666 (pasta opens it; a machine without udev has it 0600).
pub fn require_machine() {
    require("newuidmap", "uidmap");
    require("newgidmap", "uidmap");
    require("pasta", "passt");
    require("nft", "nftables");
    open_to_users(Path::new("/dev/net/tun"), "load the tun module (modprobe tun)");
    open_to_users(Path::new("/dev/fuse"), "load the fuse module (modprobe fuse)");
}

/// A character device users open (pasta /dev/net/tun, fuse-overlayfs /dev/fuse), which
/// Debian's udev makes 0666 and a machine without udev leaves 0600.
fn open_to_users(dev: &Path, how: &str) {
    let mode = std::fs::metadata(dev)
        .unwrap_or_else(|_| panic!("{} is missing: {how}", dev.display()))
        .permissions()
        .mode();
    if mode & 0o006 != 0o006 {
        eprintln!(
            "note: {} was {:o}; making it 0666 as Debian's udev rules do",
            dev.display(),
            mode & 0o777
        );
        std::fs::set_permissions(dev, std::fs::Permissions::from_mode(0o20666))
            .unwrap_or_else(|e| panic!("chmod 666 {}: {e}", dev.display()));
    }
}

static SESSIONS: AtomicU32 = AtomicU32::new(0);

/// One user's `berth` with a store root and a runtime directory of its own.
pub struct Session {
    pub user: User,
    /// `XDG_RUNTIME_DIR` (the keeper's files are in `berth/rootless/` below it).
    pub runtime: PathBuf,
    /// `BERTH_ROOT`, in the user's home.
    pub root: PathBuf,
    /// A directory of the user's for the test's files.
    pub scratch: PathBuf,
    bin: PathBuf,
}

impl Session {
    pub fn new(user: &User) -> Session {
        require_machine();
        let n = SESSIONS.fetch_add(1, Ordering::SeqCst);
        let tag = format!("{}-{n}", std::process::id());
        let runtime = PathBuf::from(format!("/tmp/berth-it-run-{}-{tag}", user.name));
        let root = user.home.join(format!("it-root-{tag}"));
        let scratch = user.home.join(format!("it-files-{tag}"));
        for dir in [&runtime, &root, &scratch] {
            std::fs::create_dir_all(dir).expect("create a session directory");
            std::os::unix::fs::chown(dir, Some(user.uid), Some(user.gid)).expect("chown a session directory");
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        }
        let session = Session {
            user: user.clone(),
            runtime,
            root,
            scratch,
            bin: crate::berth::bin(),
        };
        let reach = session.as_user("test", &["-x", &session.bin.display().to_string()]);
        assert_eq!(
            reach.code,
            0,
            "{} cannot run {}: put the build where every user can read it",
            user.name,
            session.bin.display()
        );
        session
    }

    /// `program args` as the user, in a clean environment, from the scratch directory.
    pub fn command_as_user(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={}", self.user.uid))
            .arg(format!("--regid={}", self.user.gid))
            .arg("--init-groups")
            .arg("env")
            .arg("-i")
            .arg(format!("HOME={}", self.user.home.display()))
            .arg(format!("USER={}", self.user.name))
            .arg(format!("LOGNAME={}", self.user.name))
            // Debian's PATH for an ordinary user: no sbin directories.
            .arg("PATH=/usr/local/bin:/usr/bin:/bin:/usr/games")
            .arg(format!("XDG_RUNTIME_DIR={}", self.runtime.display()))
            .arg(format!("BERTH_ROOT={}", self.root.display()))
            .arg(program)
            .args(args)
            .current_dir(&self.scratch);
        cmd
    }

    pub fn as_user(&self, program: &str, args: &[&str]) -> Run {
        let o = self
            .command_as_user(program, args)
            .output()
            .unwrap_or_else(|e| panic!("run {program} as {}: {e}", self.user.name));
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// `berth args` as the user.
    pub fn run(&self, args: &[&str]) -> Run {
        self.as_user(&self.bin.display().to_string(), args)
    }

    /// `berth args` as the user with `env` (`NAME=value` entries) added to its environment.
    pub fn run_with_env(&self, env: &[&str], args: &[&str]) -> Run {
        let bin = self.bin.display().to_string();
        let mut all: Vec<&str> = env.to_vec();
        all.push(&bin);
        all.extend_from_slice(args);
        self.as_user("env", &all)
    }

    /// `berth args` as the user, which must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(r.code, 0, "berth {args:?} as {} failed: {r:?}", self.user.name);
        r.stdout
    }

    /// `berth args` as the user, which must fail.
    pub fn fails(&self, args: &[&str]) -> Run {
        let r = self.run(args);
        assert_ne!(r.code, 0, "berth {args:?} as {} succeeded: {r:?}", self.user.name);
        r
    }

    /// Loads the OCI layout fixture `name` as `tag` (made a docker archive by skopeo, in the
    /// scratch directory, so the user can read it).
    pub fn load_fixture(&self, name: &str, tag: &str) {
        require("skopeo", "skopeo");
        let layout = crate::fixtures::image(name);
        let archive = self.scratch.join(format!("{name}.tar"));
        check(
            Command::new("skopeo")
                .args(["copy", "-q"])
                .arg(crate::fixtures::oci_ref(&layout))
                .arg(format!("docker-archive:{}:{tag}", archive.display())),
            "skopeo copy to a docker archive",
        );
        std::os::unix::fs::chown(&archive, Some(self.user.uid), Some(self.user.gid))
            .expect("chown the archive");
        let out = self.ok(&["load", "-i", &archive.display().to_string()]);
        assert!(out.contains(tag), "load printed {out:?}");
    }

    /// The keeper process of this session (see berth-rootless), once a command ran.
    pub fn keeper(&self) -> Option<i32> {
        self.rootless_pid("keeper.pid")
    }

    /// The outbound helper (pasta) of this session's keeper.
    pub fn network_helper(&self) -> Option<i32> {
        self.rootless_pid("network.pid")
    }

    fn rootless_pid(&self, file: &str) -> Option<i32> {
        std::fs::read_to_string(self.runtime.join("berth/rootless").join(file))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The owner (uid, gid) of a path as the host sees it.
    pub fn owner(path: &Path) -> (u32, u32) {
        let m = std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
        (m.uid(), m.gid())
    }
}

/// Removes what the session made: its containers, its keeper (whose namespaces then go,
/// and pasta with them), its directories.
impl Drop for Session {
    fn drop(&mut self) {
        if self.root.join("containers").is_dir() {
            crate::berth::remove_all_containers(|args| self.run(args));
        }
        for pid in [self.keeper(), self.network_helper()].into_iter().flatten() {
            if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
        for dir in [&self.root, &self.scratch, &self.runtime] {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
