//! The per-container shim: a small detached process that owns the
//! container's init, pumps its output into the json-file log, reaps it and
//! records its exit, so the engine can restart without losing containers.
//!
//! State directory layout: `shim.json` (the [`ShimConfig`]), `state.json`
//! ([`ShimState`], once the container runs), `exit.json` ([`ExitStatus`],
//! once it exited), `start-error` (the spawn error's text), `shim.log`
//! (the shim's own stderr).

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::attach::{self, Hub};
use crate::logs::{format_time, parse_time, LineSplitter, LogWriter, Stream};
use crate::{ContainerSpec, RuntimeError, Stdio};

const EXTRA_FDS_ENV: &str = "BERTH_SHIM_EXTRA_FDS";
const START_TIMEOUT: u64 = 30;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShimConfig {
    pub state_dir: PathBuf,
    pub spec: ContainerSpec,
    pub log_path: PathBuf,
    /// Bytes per log file; 0 = unlimited.
    pub log_max_size: u64,
    /// Files kept, the live one included.
    pub log_max_files: u32,
    /// Keep the container's stdin open (a pipe whose writer the shim holds).
    pub stdin_open: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShimState {
    pub shim_pid: i32,
    pub container_pid: i32,
    /// RFC 3339 with nanoseconds.
    pub started_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// The exit code, or 128 + signal when killed by one.
    pub exit_code: i32,
    pub finished_at: String,
    pub signal: Option<i32>,
}

fn write_atomic(path: &Path, data: &[u8]) -> Result<(), RuntimeError> {
    let tmp = path.with_extension("tmp");
    let io = |e| RuntimeError::io(format!("cannot write {}", path.display()), e);
    std::fs::write(&tmp, data).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, RuntimeError> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| RuntimeError::BadState {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RuntimeError::io(format!("cannot read {}", path.display()), e)),
    }
}

pub fn read_state(state_dir: &Path) -> Result<Option<ShimState>, RuntimeError> {
    read_json(&state_dir.join("state.json"))
}

pub fn read_exit(state_dir: &Path) -> Result<Option<ExitStatus>, RuntimeError> {
    read_json(&state_dir.join("exit.json"))
}

/// Whether `pid` is still the process that started at `started_at` (RFC 3339) and not a
/// zombie; see [`berth_host::process::is_same`].
pub fn is_alive(pid: i32, started_at: &str) -> bool {
    parse_time(started_at).is_some_and(|t| berth_host::process::is_same(pid, t.into()))
}

/// Whether the shim with this pid still runs. A shim records its container's exit before it
/// ends, so while it runs a container that is gone (or a zombie) is still being recorded.
pub fn shim_running(pid: i32) -> bool {
    berth_host::process::cmdline_contains(pid, b"__shim")
}

/// Starts a detached shim: writes `shim.json`, runs `exe args..` (which
/// must call [`shim_main`] with the state directory) with `extra_fds` at
/// fd 3, 4, ..., and returns once the container runs (or its start error).
pub fn start_shim(
    exe: &Path,
    args: &[impl AsRef<std::ffi::OsStr>],
    config: &ShimConfig,
    extra_fds: Vec<OwnedFd>,
) -> Result<ShimState, RuntimeError> {
    let dir = &config.state_dir;
    std::fs::create_dir_all(dir)
        .map_err(|e| RuntimeError::io(format!("cannot create {}", dir.display()), e))?;
    for f in ["state.json", "exit.json", "start-error"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    let json = serde_json::to_vec_pretty(config)
        .map_err(|e| RuntimeError::InvalidSpec(format!("the shim config does not serialize: {e}")))?;
    write_atomic(&dir.join("shim.json"), &json)?;
    let n = extra_fds.len() as RawFd;
    // Park the fds above the target range so the dup2s cannot clobber them.
    let mut parked = Vec::new();
    for fd in &extra_fds {
        // SAFETY: F_DUPFD_CLOEXEC returns a new fd we own.
        let p = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3 + n) };
        if p < 0 {
            return Err(RuntimeError::io(
                "cannot pass fds to the shim",
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: p is fresh.
        parked.push(unsafe { OwnedFd::from_raw_fd(p) });
    }
    drop(extra_fds);
    let raw: Vec<RawFd> = parked.iter().map(|f| f.as_raw_fd()).collect();
    let log = std::fs::File::create(dir.join("shim.log"))
        .map_err(|e| RuntimeError::io(format!("cannot create {}", dir.join("shim.log").display()), e))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(args)
        .env(EXTRA_FDS_ENV, n.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log);
    // SAFETY: only dup2 (async-signal-safe) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            for (i, fd) in raw.iter().enumerate() {
                if libc::dup2(*fd, 3 + i as RawFd) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let status = cmd
        .status()
        .map_err(|e| RuntimeError::io(format!("cannot run the shim {}", exe.display()), e))?;
    drop(parked);
    let deadline = Instant::now() + Duration::from_secs(START_TIMEOUT);
    loop {
        if let Some(s) = read_state(dir)? {
            return Ok(s);
        }
        if let Ok(e) = std::fs::read_to_string(dir.join("start-error")) {
            return Err(RuntimeError::ShimStart(e.trim().to_string()));
        }
        if !status.success() {
            let log = std::fs::read_to_string(dir.join("shim.log")).unwrap_or_default();
            return Err(RuntimeError::ShimStart(format!(
                "the shim exited with {status}: {}",
                log.trim()
            )));
        }
        if Instant::now() > deadline {
            return Err(RuntimeError::ShimTimeout(START_TIMEOUT));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fresh fds.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both are fresh and ours.
    unsafe { Ok((OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))) }
}

/// A connected pair of unix stream sockets.
fn socketpair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: socketpair fills two fresh fds.
    if unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    } != 0
    {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both are fresh and ours.
    unsafe { Ok((OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))) }
}

fn pump(
    fd: OwnedFd,
    stream: Stream,
    log: Arc<Mutex<LogWriter>>,
    hub: Arc<Hub>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut f = std::fs::File::from(fd);
        let mut split = LineSplitter::default();
        let mut buf = vec![0u8; 32 * 1024];
        let write = |line: &[u8]| {
            if let Ok(mut w) = log.lock() {
                if let Err(e) = w.write(stream, line, OffsetDateTime::now_utc()) {
                    eprintln!("{e}");
                }
            }
        };
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    hub.broadcast(stream, &buf[..n]);
                    split.push(&buf[..n], write)
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // A pty master reads EIO once the last slave is gone.
                Err(_) => break,
            }
        }
        split.finish(write);
    })
}

fn wait_exit(pid: i32) -> (i32, Option<i32>) {
    match berth_host::process::wait_child(pid) {
        Ok(exit) => (exit.code(), exit.signal()),
        Err(_) => (255, None),
    }
}

/// The shim's entry point (for the hidden `__shim` subcommand). Call it
/// first thing in `main`, before any threads exist: it forks, the caller's
/// copy returns 0 at once (that is what [`start_shim`] waits for), and the
/// detached copy runs the container to its end and returns its own exit
/// code. `on_started` runs in the shim once the container is up, with the
/// extra fds passed to [`start_shim`] (e.g. to serve port proxies on
/// threads it spawns); it should return promptly.
pub fn shim_main(state_dir: &Path, on_started: impl FnOnce(&ShimConfig, i32, Vec<OwnedFd>)) -> i32 {
    let n: RawFd = std::env::var(EXTRA_FDS_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // SAFETY: fork while single-threaded (documented requirement).
    match unsafe { libc::fork() } {
        -1 => {
            let e = std::io::Error::last_os_error();
            let _ = std::fs::write(
                state_dir.join("start-error"),
                format!("cannot fork the shim: {e}"),
            );
            return 1;
        }
        0 => {}
        _ => return 0,
    }
    // SAFETY: process-wide settings in the fresh shim process.
    unsafe {
        libc::setsid();
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        // Nothing of the caller leaks in beyond stdio and the extra fds.
        libc::syscall(libc::SYS_close_range, (3 + n) as u32, u32::MAX, 0u32);
    }
    // SAFETY: fds 3..3+n were placed by start_shim for us.
    let extra: Vec<OwnedFd> = (0..n).map(|i| unsafe { OwnedFd::from_raw_fd(3 + i) }).collect();
    match run(state_dir, extra, on_started) {
        Ok(()) => 0,
        Err(e) => {
            let _ = write_atomic(&state_dir.join("start-error"), e.to_string().as_bytes());
            eprintln!("{e}");
            1
        }
    }
}

fn run(
    state_dir: &Path,
    extra: Vec<OwnedFd>,
    on_started: impl FnOnce(&ShimConfig, i32, Vec<OwnedFd>),
) -> Result<(), RuntimeError> {
    let config: ShimConfig =
        read_json(&state_dir.join("shim.json"))?.ok_or_else(|| RuntimeError::BadState {
            path: state_dir.join("shim.json"),
            reason: "missing".into(),
        })?;
    let io = |what: &str, e| RuntimeError::io(format!("the shim cannot {what}"), e);
    let log = Arc::new(Mutex::new(LogWriter::open(
        &config.log_path,
        config.log_max_size,
        config.log_max_files,
    )?));
    // Attach clients connect to a socket in the state directory; it exists before the
    // container does, so nobody who attaches right after start misses it.
    let _ = std::fs::remove_file(state_dir.join(attach::SOCKET));
    let listener = {
        let dir = std::fs::File::open(state_dir).map_err(|e| io("open its state directory", e))?;
        let path = format!("/proc/self/fd/{}/{}", dir.as_raw_fd(), attach::SOCKET);
        UnixListener::bind(path).map_err(|e| io("create its attach socket", e))?
    };
    let mut readers = Vec::new();
    // With a TTY the container's init makes the pty in its own devpts (so the terminal
    // has a name inside) and sends us the master once it is spawned.
    let mut console = None;
    let (stdio, hub) = if config.spec.tty {
        let (ours, theirs) = socketpair().map_err(|e| io("create a socket pair", e))?;
        console = Some(ours);
        // The hub is made once the master has arrived.
        (Stdio::ContainerPty(theirs), Hub::new(true, None, None))
    } else {
        let (out_r, out_w) = pipe().map_err(|e| io("create a pipe", e))?;
        let (err_r, err_w) = pipe().map_err(|e| io("create a pipe", e))?;
        readers.push((out_r, Stream::Stdout));
        readers.push((err_r, Stream::Stderr));
        let (stdin, writer) = if config.stdin_open || config.spec.stdin {
            let (r, w) = pipe().map_err(|e| io("create a pipe", e))?;
            (Some(r), Some(std::fs::File::from(w)))
        } else {
            (None, None)
        };
        let stdio = Stdio::Fds {
            stdin,
            stdout: out_w,
            stderr: err_w,
        };
        (stdio, Hub::new(false, writer, None))
    };
    let pid = crate::spawn(&config.spec, stdio)?;
    let hub = match console {
        Some(sock) => {
            let master = crate::recv_console(&sock)?;
            let input = master.try_clone().map_err(|e| io("duplicate the pty", e))?;
            let resize = master.try_clone().map_err(|e| io("duplicate the pty", e))?;
            readers.push((master, Stream::Stdout));
            Hub::new(true, Some(std::fs::File::from(input)), Some(resize))
        }
        None => hub,
    };
    let state = ShimState {
        shim_pid: std::process::id() as i32,
        container_pid: pid,
        started_at: format_time(OffsetDateTime::now_utc()),
    };
    let threads: Vec<_> = readers
        .into_iter()
        .map(|(fd, s)| pump(fd, s, log.clone(), hub.clone()))
        .collect();
    hub.clone().serve(listener);
    write_atomic(
        &state_dir.join("state.json"),
        &serde_json::to_vec(&state).unwrap_or_default(),
    )?;
    on_started(&config, pid, extra);
    let (exit_code, signal) = wait_exit(pid);
    for t in threads {
        let _ = t.join();
    }
    let exit = ExitStatus {
        exit_code,
        finished_at: format_time(OffsetDateTime::now_utc()),
        signal,
    };
    write_atomic(
        &state_dir.join("exit.json"),
        &serde_json::to_vec(&exit).unwrap_or_default(),
    )?;
    // Attached clients see the end of the stream only once exit.json tells the code.
    hub.close();
    let _ = std::fs::remove_file(state_dir.join(attach::SOCKET));
    // A client that connected just before the exit is answered (the replay, then the
    // end) before this process ends and its socket with it.
    hub.settle(Duration::from_secs(2));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::shim_running;
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    #[test]
    fn a_shim_runs_until_it_is_gone_or_a_zombie() {
        // `sleep` with argv[0] "__shim": a process whose command line names it a shim.
        let mut shim = Command::new("sleep")
            .arg0("__shim")
            .arg("30")
            .spawn()
            .expect("spawn sleep as __shim");
        let pid = shim.id() as i32;
        // Until its exec is done the child still shows the test binary's command line.
        let exec_done = || {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| c.starts_with(b"__shim\0"))
                .unwrap_or(false)
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !exec_done() {
            assert!(std::time::Instant::now() < deadline, "the shim did not start");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(shim_running(pid), "a live process named __shim");
        let mut other = Command::new("sleep").arg("30").spawn().expect("spawn sleep");
        let other_pid = other.id();
        while !std::fs::read(format!("/proc/{other_pid}/cmdline"))
            .map(|c| c.starts_with(b"sleep\0"))
            .unwrap_or(false)
        {
            assert!(std::time::Instant::now() < deadline, "sleep did not start");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(!shim_running(other_pid as i32), "a process that is not a shim");
        let _ = other.kill();
        let _ = other.wait();
        shim.kill().expect("kill");
        // Killed but not yet reaped: a zombie has recorded nothing and never will.
        let zombie = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|st| {
                    st.rsplit_once(") ")
                        .map(|(_, r)| r.starts_with('Z'))
                        .unwrap_or(false)
                })
                .unwrap_or(false)
        };
        while !zombie() {
            assert!(
                std::time::Instant::now() < deadline,
                "the killed shim never became a zombie"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(!shim_running(pid), "a zombie shim");
        shim.wait().expect("reap");
        assert!(!shim_running(pid), "a reaped shim");
    }
}
