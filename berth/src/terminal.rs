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
    let mut from_master = std::fs::File::from(master.try_clone()?);
    let output = std::thread::spawn(move || {
        let mut out = std::io::stdout();
        let mut buf = [0u8; 8192];
        loop {
            match from_master.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if out.write_all(&buf[..n]).and_then(|()| out.flush()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    // Input: stdin → master (with -i), on a thread that simply ends with the process.
    if interactive {
        let mut to_master = std::fs::File::from(master.try_clone()?);
        std::thread::spawn(move || {
            let mut stdin = std::io::stdin();
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdin.read(&mut buf) {
                if n == 0 || to_master.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
    }
    // Window size: follow the terminal (polled; cheaper than a signal-handling thread).
    let resize_master = master.try_clone()?;
    std::thread::spawn(move || {
        let mut last = window_size().map(|w| (w.ws_row, w.ws_col));
        loop {
            std::thread::sleep(Duration::from_millis(250));
            if let Some(ws) = window_size() {
                if Some((ws.ws_row, ws.ws_col)) != last {
                    last = Some((ws.ws_row, ws.ws_col));
                    // SAFETY: TIOCSWINSZ reads a Winsize; the master fd is ours.
                    let _ = unsafe { set_winsize(resize_master.as_raw_fd(), &ws) };
                }
            }
        }
    });
    let code = berth_containers::wait_for(child)?;
    // The command is gone: drain what it wrote, then give the terminal back.
    drop(master);
    let _ = output.join();
    drop(raw);
    Ok(code)
}
