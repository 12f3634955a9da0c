//! `exec -it`: the command gets the slave side of a new pty; this process relays between
//! its own terminal (in raw mode) and the pty's master, and follows window-size changes.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use berth_containers::{ContainerService, ExecOptions};
use nix::pty::{PtyMaster, Winsize};
use nix::sys::termios::{self, SetArg, Termios};

/// Restores the terminal's settings when dropped (also on error paths).
struct RawMode {
    original: Termios,
}

impl RawMode {
    fn enter() -> Option<RawMode> {
        let stdin = std::io::stdin();
        let original = termios::tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = original.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { original })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &self.original);
    }
}

nix::ioctl_read_bad!(get_winsize, nix::libc::TIOCGWINSZ, Winsize);
nix::ioctl_write_ptr_bad!(set_winsize, nix::libc::TIOCSWINSZ, Winsize);

fn window_size() -> Option<Winsize> {
    let mut ws = Winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ fills a Winsize; stdout is a valid fd for the whole process.
    let r = unsafe { get_winsize(std::io::stdout().as_raw_fd(), &mut ws) };
    (r.is_ok() && ws.ws_row > 0).then_some(ws)
}

/// A pty pair from the container's own devpts instance (through /proc/PID/root), so that
/// inside the container the terminal has a name (`tty`, `stty`, job control all work).
fn container_pty(svc: &ContainerService, container: &str) -> anyhow::Result<(OwnedFd, OwnedFd)> {
    use std::os::unix::fs::OpenOptionsExt;
    let rec = svc.find(container)?;
    let pid = svc.status(&rec).pid().ok_or_else(|| {
        anyhow::anyhow!(
            "container {} is not running — start it with `berth start {}`",
            rec.name,
            rec.name
        )
    })?;
    let root = format!("/proc/{pid}/root");
    let ptmx = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NOCTTY | nix::libc::O_CLOEXEC)
        .open(format!("{root}/dev/ptmx"))?;
    // SAFETY: the fd was just opened on a ptmx device.
    let master = unsafe { PtyMaster::from_owned_fd(OwnedFd::from(ptmx)) };
    nix::pty::grantpt(&master)?;
    nix::pty::unlockpt(&master)?;
    let name = nix::pty::ptsname_r(&master)?;
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NOCTTY | nix::libc::O_CLOEXEC)
        .open(format!("{root}{name}"))?;
    Ok((OwnedFd::from(master), OwnedFd::from(slave)))
}

pub fn exec_in_pty(
    svc: &ContainerService,
    container: &str,
    opts: &ExecOptions,
    interactive: bool,
) -> anyhow::Result<i32> {
    let (master, slave) = container_pty(svc, container)?;
    if let Some(ws) = window_size() {
        // SAFETY: TIOCSWINSZ reads a Winsize; the master fd is ours.
        let _ = unsafe { set_winsize(master.as_raw_fd(), &ws) };
    }
    let child = svc.exec_with(container, opts, berth_runtime::Stdio::Pty(slave))?;
    let raw = RawMode::enter();

    // Output: master → stdout until the pty closes (the command and its children exited).
    let from_master = std::fs::File::from(master.try_clone()?);
    let output = std::thread::spawn(move || copy_to_stdout(from_master));
    // Input: stdin → master (with -i), on a thread that simply ends with the process.
    if interactive {
        let to_master = std::fs::File::from(master.try_clone()?);
        std::thread::spawn(move || copy_stdin_to(to_master));
    }
    let resize_master = master.try_clone()?;
    follow_window_size(move |ws| {
        // SAFETY: TIOCSWINSZ reads a Winsize; the master fd is ours.
        unsafe { set_winsize(resize_master.as_raw_fd(), ws) }.is_ok()
    });
    let code = berth_containers::wait_for(child)?;
    // The command is gone: drain what it wrote, then give the terminal back.
    drop(master);
    let _ = output.join();
    drop(raw);
    Ok(code)
}

/// How an attach session ended.
pub enum Ended {
    /// The container exited with this code; `silent`: nothing reached us (it exited
    /// before the shim could serve us, so its output is only in the log).
    Exited { code: i32, silent: bool },
    /// The user typed the detach keys; the container goes on.
    Detached,
}

/// What an attach session relays.
pub struct Session {
    pub tty: bool,
    pub stdin: bool,
    pub detach_keys: Vec<u8>,
    /// Also show what the container printed since it started (run, start -a).
    pub replay: bool,
}

/// Relays this process's stdio to a running container through its shim until the
/// container exits or the user detaches. Blocking; run it off the async runtime.
pub fn attach(svc: &ContainerService, container: &str, s: &Session) -> anyhow::Result<Ended> {
    use berth_containers::AttachRequest;
    let req = AttachRequest {
        stdin: s.stdin,
        stdout: true,
        stderr: true,
        stdin_once: s.stdin,
        detach_keys: if s.stdin {
            s.detach_keys.clone()
        } else {
            Vec::new()
        },
        replay: s.replay,
        resize: None,
    };
    let sock = svc.attach(container, &req)?;
    let raw = if s.tty && s.stdin { RawMode::enter() } else { None };
    if s.tty {
        if let Some(ws) = window_size() {
            let _ = svc.resize(container, ws.ws_row, ws.ws_col);
        }
        let (svc, name) = (svc.clone(), container.to_string());
        follow_window_size(move |ws| svc.resize(&name, ws.ws_row, ws.ws_col).is_ok());
    }
    if s.stdin {
        let to_shim = sock.try_clone()?;
        std::thread::spawn(move || {
            // The end of our input ends the container's (stdin-once, as docker's run -i).
            if let Some(sock) = copy_stdin_to(to_shim) {
                let _ = sock.shutdown(std::net::Shutdown::Write);
            }
        });
    }
    let mut from_shim = sock;
    let mut received = false;
    if s.tty {
        received = copy_to_stdout(from_shim);
    } else {
        let mut buf = Vec::new();
        while let Ok(Some(stream)) = berth_runtime::attach::read_frame(&mut from_shim, &mut buf) {
            received = true;
            let w: &mut dyn Write = if stream == berth_runtime::logs::Stream::Stderr {
                &mut std::io::stderr()
            } else {
                &mut std::io::stdout()
            };
            let _ = w.write_all(&buf).and_then(|()| w.flush());
        }
    }
    drop(raw);
    // The shim closes the stream after recording the exit, or when the user detached.
    let rec = svc.find(container)?;
    Ok(match svc.status(&rec) {
        berth_containers::Status::Exited { code, .. } => Ended::Exited {
            code,
            silent: !received,
        },
        berth_containers::Status::Running { .. } | berth_containers::Status::Paused { .. } => Ended::Detached,
        _ => Ended::Exited {
            code: 0,
            silent: !received,
        },
    })
}

/// Copies a stream to stdout until it ends; whether anything came.
fn copy_to_stdout(mut from: impl Read) -> bool {
    let mut out = std::io::stdout();
    let mut buf = [0u8; 8192];
    let mut received = false;
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => return received,
            Ok(n) => {
                received = true;
                if out.write_all(&buf[..n]).and_then(|()| out.flush()).is_err() {
                    return received;
                }
            }
        }
    }
}

/// Copies stdin to `to` until stdin ends (`Some(to)`) or `to` fails (`None`).
fn copy_stdin_to<W: Write>(mut to: W) -> Option<W> {
    let mut stdin = std::io::stdin();
    let mut buf = [0u8; 4096];
    loop {
        match stdin.read(&mut buf) {
            Ok(0) | Err(_) => return Some(to),
            Ok(n) => to.write_all(&buf[..n]).ok()?,
        }
    }
}

/// Follows the terminal's window size on a thread (polled; cheaper than handling
/// SIGWINCH on a signal thread); `apply` returns false to stop.
fn follow_window_size(apply: impl Fn(&Winsize) -> bool + Send + 'static) {
    std::thread::spawn(move || {
        let mut last = window_size().map(|w| (w.ws_row, w.ws_col));
        loop {
            std::thread::sleep(Duration::from_millis(250));
            let Some(ws) = window_size() else { continue };
            if Some((ws.ws_row, ws.ws_col)) != last {
                last = Some((ws.ws_row, ws.ws_col));
                if !apply(&ws) {
                    return;
                }
            }
        }
    });
}
