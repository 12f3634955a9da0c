//! The keeper: a process that holds the user's user, mount and network namespaces for as
//! long as the machine runs, started by the first `berth` process that needs them and
//! joined by every later one.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::sched::{setns, unshare, CloneFlags};
use nix::unistd::{fork, ForkResult, Gid, Uid};

use crate::outbound;
use crate::{subids, Entered, Mapping, RootlessError};

fn ns_err(what: impl Into<String>, e: impl Into<std::io::Error>) -> RootlessError {
    RootlessError::Namespace {
        what: what.into(),
        source: e.into(),
        fix: crate::userns_fix(),
    }
}

fn files_err(path: &Path, e: std::io::Error) -> RootlessError {
    RootlessError::Files {
        path: path.to_path_buf(),
        source: e,
    }
}

pub(crate) fn user_name() -> String {
    nix::unistd::User::from_uid(Uid::current())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| Uid::current().to_string())
}

pub(crate) fn read_pid(dir: &Path) -> Option<i32> {
    std::fs::read_to_string(dir.join("keeper.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A live process of this user in a user namespace other than ours: the keeper the pid
/// file names (a pid reused by anything else fails one of the two).
fn is_keeper(pid: i32) -> bool {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let ours = std::fs::metadata(&proc).is_ok_and(|m| m.uid() == Uid::current().as_raw());
    let other_ns = match (
        std::fs::read_link(proc.join("ns/user")),
        std::fs::read_link("/proc/self/ns/user"),
    ) {
        (Ok(theirs), Ok(mine)) => theirs != mine,
        _ => false,
    };
    ours && other_ns && berth_host::process::alive(pid)
}

pub(crate) fn join_or_start(dir: &Path) -> Result<Entered, RootlessError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| files_err(dir, e))?;
    let lock_path = dir.join("lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| files_err(&lock_path, e))?;
    nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| files_err(&lock_path, e.into()))
        .and_then(|_held| {
            // The namespaces are held open from here on, even if the keeper dies meanwhile.
            let existing = read_pid(dir)
                .filter(|p| is_keeper(*p))
                .and_then(|pid| Some((pid, namespaces(pid).ok()?)));
            let (keeper, started, outbound, namespaces) = match existing {
                Some((pid, ns)) => (pid, false, outbound::read(dir), ns),
                None => {
                    let (pid, tell) = start(dir)?;
                    let outbound = outbound::start(pid, dir);
                    // The keeper ends the helper when it exits; it learns its pid here.
                    let helper = outbound::helper_pid(dir).unwrap_or(0);
                    let _ = File::from(tell).write_all(&helper.to_le_bytes());
                    (pid, true, outbound, namespaces(pid)?)
                }
            };
            let mapping = mapping_of(keeper);
            let user = user_name();
            join(namespaces)?;
            Ok(Entered::Joined {
                keeper,
                started,
                mapping,
                outbound,
                user,
            })
        })
}

fn mapping_of(pid: i32) -> Mapping {
    let read = |f: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/{f}"))
            .map(|t| berth_host::privilege::parse_id_map(&t))
            .unwrap_or_default()
    };
    let (uids, gids) = (read("uid_map"), read("gid_map"));
    match (uids.get(1), gids.get(1)) {
        (Some(u), Some(g)) => Mapping::Subordinate {
            uids: (u.outside, u.count),
            gids: (g.outside, g.count),
        },
        _ => Mapping::OneId,
    }
}

/// One byte over a pipe, the keeper's and its starter's only conversation.
fn send(fd: &OwnedFd, byte: u8) -> bool {
    fd.try_clone()
        .is_ok_and(|fd| File::from(fd).write_all(&[byte]).is_ok())
}

fn receive(fd: &OwnedFd) -> Option<u8> {
    let mut b = [0u8];
    File::from(fd.try_clone().ok()?).read_exact(&mut b).ok()?;
    Some(b[0])
}

/// Starts a keeper; its pid, and the pipe on which it waits for its helper's pid.
fn start(dir: &Path) -> Result<(i32, OwnedFd), RootlessError> {
    let (up_r, up_w) = nix::unistd::pipe().map_err(|e| ns_err("create a pipe", e))?;
    let (down_r, down_w) = nix::unistd::pipe().map_err(|e| ns_err("create a pipe", e))?;
    // SAFETY: called while the process has one thread (the crate's contract); the child
    // only makes system calls and never returns into the caller's code.
    match unsafe { fork() }.map_err(|e| ns_err("start the namespace keeper", e))? {
        ForkResult::Child => {
            drop((up_r, down_w));
            keeper_main(up_w, down_r, dir)
        }
        ForkResult::Parent { child } => {
            drop((up_w, down_r));
            let pid = child.as_raw();
            let result = (|| {
                if receive(&up_r) != Some(b'u') {
                    return Err(ns_err(
                        "create a user namespace",
                        std::io::Error::other(
                            "the kernel refused (unprivileged user namespaces may be switched off)",
                        ),
                    ));
                }
                write_maps(pid)?;
                send(&down_w, b'm');
                if receive(&up_r) != Some(b'r') {
                    return Err(ns_err(
                        "create the mount and network namespaces",
                        std::io::Error::other("the keeper stopped"),
                    ));
                }
                let path = dir.join("keeper.pid");
                std::fs::write(&path, format!("{pid}\n")).map_err(|e| files_err(&path, e))
            })();
            if result.is_err() {
                let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                let _ = nix::sys::wait::waitpid(child, None);
            }
            result.map(|()| (pid, down_w))
        }
    }
}

/// The keeper's whole life: new namespaces, then sleep until killed.
fn keeper_main(up: OwnedFd, down: OwnedFd, dir: &Path) -> ! {
    if unshare(CloneFlags::CLONE_NEWUSER).is_err() {
        std::process::exit(1);
    }
    send(&up, b'u');
    if receive(&down) != Some(b'm') {
        std::process::exit(1);
    }
    let _ = nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0));
    let _ = nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0));
    if unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWNET).is_err() {
        std::process::exit(1);
    }
    let _ = nix::unistd::setsid();
    // Its command line is its starter's; at least its name says what it is.
    let _ = nix::sys::prctl::set_name(c"berth-keeper");
    let _ = nix::unistd::chdir("/");
    // Hold nothing of the starter's: a pipe left open here would keep its reader waiting.
    if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stderr(&null);
    }
    send(&up, b'r');
    let mut helper = [0u8; 4];
    let helper = down
        .try_clone()
        .ok()
        .and_then(|fd| File::from(fd).read_exact(&mut helper).ok())
        .map(|()| i32::from_le_bytes(helper))
        .filter(|pid| *pid > 0);
    // SAFETY: closing every fd from 3 up; nothing in this process uses them any more.
    unsafe { libc_close_from(3) };
    for sig in [
        nix::sys::signal::Signal::SIGHUP,
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGPIPE,
    ] {
        // SAFETY: SIG_IGN is a valid disposition.
        let _ = unsafe { nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigIgn) };
    }
    watch_pid_file(dir, helper)
}

/// Sleeps while `keeper.pid` names this process. Once it no longer does (the runtime
/// directory was removed, as at the end of a login session, or another keeper took over),
/// ends the outbound `helper`, which would otherwise hold the network namespace for good,
/// and exits.
fn watch_pid_file(dir: &Path, helper: Option<i32>) -> ! {
    let me = std::process::id() as i32;
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
        if read_pid(dir) != Some(me) {
            if let Some(pid) = helper {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            std::process::exit(0);
        }
    }
}

/// close_range(first, ~0, 0).
unsafe fn libc_close_from(first: i32) {
    let _ = nix::libc::syscall(nix::libc::SYS_close_range, first as u32, u32::MAX, 0u32);
}

/// Maps the keeper's ids: the subordinate ranges through newuidmap/newgidmap when the user
/// has them and the tools are there, else the user's own ids alone.
fn write_maps(pid: i32) -> Result<(), RootlessError> {
    let (uid, gid, name) = (Uid::current().as_raw(), Gid::current().as_raw(), user_name());
    let read = |f: &str| std::fs::read_to_string(f).unwrap_or_default();
    let ranges = (
        subids::lookup(&read("/etc/subuid"), &name, uid),
        subids::lookup(&read("/etc/subgid"), &name, uid),
    );
    if let (Some(uids), Some(gids)) = ranges {
        if which("newuidmap") && which("newgidmap") {
            run_map("newuidmap", pid, &subids::map_args(uid, uids), &name)?;
            return run_map("newgidmap", pid, &subids::map_args(gid, gids), &name);
        }
    }
    let write = |file: &str, text: String| {
        std::fs::write(format!("/proc/{pid}/{file}"), text)
            .map_err(|e| ns_err(format!("write the keeper's {file}"), e))
    };
    write("uid_map", format!("0 {uid} 1\n"))?;
    write("setgroups", "deny\n".to_string())?;
    write("gid_map", format!("0 {gid} 1\n"))
}

fn which(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(["/usr/bin".into(), "/usr/sbin".into()])
        .any(|d| d.join(tool).is_file())
}

fn run_map(tool: &'static str, pid: i32, args: &[String], user: &str) -> Result<(), RootlessError> {
    let out = Command::new(tool)
        .arg(pid.to_string())
        .args(args)
        .output()
        .map_err(|e| RootlessError::IdMap {
            tool,
            user: user.to_string(),
            detail: e.to_string(),
        })?;
    if out.status.success() {
        return Ok(());
    }
    Err(RootlessError::IdMap {
        tool,
        user: user.to_string(),
        detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}

/// The keeper's user and mount namespaces, opened.
fn namespaces(pid: i32) -> Result<(File, File), RootlessError> {
    let open = |ns: &str| {
        File::open(format!("/proc/{pid}/ns/{ns}"))
            .map_err(|e| ns_err(format!("open the keeper's {ns} namespace"), e))
    };
    Ok((open("user")?, open("mnt")?))
}

/// Enters the keeper's user and mount namespaces as their root, keeping the working
/// directory (entering a mount namespace moves it to `/`).
fn join((user, mnt): (File, File)) -> Result<(), RootlessError> {
    let cwd = std::env::current_dir().ok();
    setns(user.as_fd(), CloneFlags::CLONE_NEWUSER).map_err(|e| ns_err("join the user namespace", e))?;
    setns(mnt.as_fd(), CloneFlags::CLONE_NEWNS).map_err(|e| ns_err("join the mount namespace", e))?;
    nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
        .map_err(|e| ns_err("become root in the user namespace", e))?;
    nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
        .map_err(|e| ns_err("become root in the user namespace", e))?;
    if let Some(cwd) = cwd {
        let _ = std::env::set_current_dir(cwd);
    }
    Ok(())
}
