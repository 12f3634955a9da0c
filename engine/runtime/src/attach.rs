//! Attaching to a running container through its shim: the shim listens on
//! `attach.sock` in its state directory; a client connects, sends one JSON
//! line (an [`AttachRequest`]) and then speaks docker's hijacked wire format:
//! from the shim, raw bytes for a TTY or 8-byte-header frames (`[stream, 0,
//! 0, 0, len BE u32]`, stream 1 = stdout, 2 = stderr) without one; to the
//! shim, the container's stdin as raw bytes. A shutdown of the client's
//! write side ends stdin (and closes the container's stdin with
//! `stdin_once`). The shim closes the connection when the container exits
//! or the client typed the detach keys.
//!
//! Because attaching usually happens right after start (`run` without `-d`,
//! docker's attach-then-start), the shim keeps what the container printed in
//! its first seconds and replays it to clients that ask for it.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::logs::Stream;

/// The socket's file name inside the shim's state directory.
pub const SOCKET: &str = "attach.sock";
/// How long after start the shim keeps early output for a replaying client.
const BACKLOG_WINDOW: Duration = Duration::from_secs(10);
const BACKLOG_MAX: usize = 1 << 20;
/// A client that cannot take output for this long is dropped, so one stuck
/// client never stalls the container or the log.
const CLIENT_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachRequest {
    #[serde(default)]
    pub stdin: bool,
    #[serde(default)]
    pub stdout: bool,
    #[serde(default)]
    pub stderr: bool,
    /// Close the container's stdin when this client's stdin ends.
    #[serde(default)]
    pub stdin_once: bool,
    /// A byte sequence typed on stdin that detaches (docker's ctrl-p,ctrl-q).
    #[serde(default)]
    pub detach_keys: Vec<u8>,
    /// Send what the container printed since it started (within a few seconds of start).
    #[serde(default)]
    pub replay: bool,
    /// Only resize the container's terminal to (rows, cols), then close.
    #[serde(default)]
    pub resize: Option<(u16, u16)>,
}

/// Connects to the shim of the container whose state directory is `state_dir`.
/// The path goes through `/proc/self/fd` so that a deep state directory does not
/// exceed the 108-byte limit of socket addresses.
pub fn connect(state_dir: &Path, req: &AttachRequest) -> std::io::Result<UnixStream> {
    let dir = std::fs::File::open(state_dir)?;
    let path = format!("/proc/self/fd/{}/{SOCKET}", dir.as_raw_fd());
    let mut sock = UnixStream::connect(path)?;
    drop(dir);
    let mut line = serde_json::to_vec(req).map_err(std::io::Error::other)?;
    line.push(b'\n');
    sock.write_all(&line)?;
    if req.resize.is_some() {
        // Wait for the shim's answer so the size is applied when this returns.
        let mut answer = String::new();
        BufReader::new(&sock).read_line(&mut answer)?;
        if answer.trim() != "ok" {
            return Err(std::io::Error::other(answer.trim().to_string()));
        }
    }
    Ok(sock)
}

/// Parses docker's `--detach-keys` syntax: comma-separated `ctrl-<x>` or single characters.
pub fn parse_detach_keys(spec: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for key in spec.split(',') {
        let k = key.trim();
        if let Some(c) = k.strip_prefix("ctrl-") {
            let b = match c.as_bytes() {
                [b @ b'a'..=b'z'] => b - b'a' + 1,
                [b'@'] => 0,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => return Err(format!("invalid detach key {k:?} — use ctrl-a … ctrl-z, ctrl-@, ctrl-[, ctrl-\\, ctrl-], ctrl-^, ctrl-_ or a single character")),
            };
            out.push(b);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            return Err(format!(
                "invalid detach key {k:?} — use keys like ctrl-p,ctrl-q (comma-separated)"
            ));
        }
    }
    Ok(out)
}

/// Writes one frame of docker's multiplexed stream.
pub fn write_frame(w: &mut impl Write, stream: Stream, data: &[u8]) -> std::io::Result<()> {
    let mut header = [0u8; 8];
    header[0] = if stream == Stream::Stderr { 2 } else { 1 };
    header[4..].copy_from_slice(&(data.len() as u32).to_be_bytes());
    w.write_all(&header)?;
    w.write_all(data)
}

/// Reads one frame of docker's multiplexed stream; `None` at the end of the stream.
pub fn read_frame(r: &mut impl Read, buf: &mut Vec<u8>) -> std::io::Result<Option<Stream>> {
    let mut header = [0u8; 8];
    match r.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    buf.resize(len, 0);
    r.read_exact(buf)?;
    Ok(Some(if header[0] == 2 {
        Stream::Stderr
    } else {
        Stream::Stdout
    }))
}

struct Client {
    id: u64,
    sock: UnixStream,
    stdout: bool,
    stderr: bool,
}

#[derive(Default)]
struct HubState {
    clients: Vec<Client>,
    backlog: Vec<(Stream, Vec<u8>)>,
    backlog_bytes: usize,
    next_id: u64,
    closed: bool,
}

/// The shim's side: fans the container's output out to attached clients and feeds
/// their input to the container's stdin.
pub(crate) struct Hub {
    tty: bool,
    started: Instant,
    state: Mutex<HubState>,
    /// Where stdin goes: the pty master or the stdin pipe's writer; `None` once closed.
    stdin: Mutex<Option<std::fs::File>>,
    /// The pty master, for resizes.
    master: Option<OwnedFd>,
    /// Connections accepted whose request is not handled yet: a shim whose container
    /// exited waits for them, or they would be reset unanswered when it ends and lose
    /// the output they came for.
    arriving: std::sync::atomic::AtomicUsize,
    /// The attach socket's listener, once served.
    listener: std::sync::OnceLock<Arc<UnixListener>>,
}

/// One arriving connection, counted until its request is handled (or it goes).
struct Arriving<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Arriving<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Hub {
    pub(crate) fn new(tty: bool, stdin: Option<std::fs::File>, master: Option<OwnedFd>) -> Arc<Hub> {
        Arc::new(Hub {
            tty,
            started: Instant::now(),
            state: Mutex::new(HubState::default()),
            stdin: Mutex::new(stdin),
            master,
            arriving: std::sync::atomic::AtomicUsize::new(0),
            listener: std::sync::OnceLock::new(),
        })
    }

    /// Sends a chunk of output to every client that wants it (and keeps it for replay
    /// during the first seconds).
    pub(crate) fn broadcast(&self, stream: Stream, data: &[u8]) {
        let Ok(mut st) = self.state.lock() else { return };
        if self.started.elapsed() < BACKLOG_WINDOW && st.backlog_bytes + data.len() <= BACKLOG_MAX {
            st.backlog_bytes += data.len();
            st.backlog.push((stream, data.to_vec()));
        } else if !st.backlog.is_empty() {
            st.backlog = Vec::new();
            st.backlog_bytes = 0;
        }
        let tty = self.tty;
        st.clients.retain_mut(|c| {
            let wanted = if stream == Stream::Stderr {
                c.stderr
            } else {
                c.stdout
            };
            !wanted || send(&mut c.sock, tty, stream, data).is_ok()
        });
    }

    /// Ends every attachment (the container exited).
    pub(crate) fn close(&self) {
        if let Ok(mut st) = self.state.lock() {
            st.closed = true;
            for c in st.clients.drain(..) {
                let _ = c.sock.shutdown(std::net::Shutdown::Both);
            }
        }
    }

    /// Accepts clients until the process ends.
    pub(crate) fn serve(self: Arc<Hub>, listener: UnixListener) {
        let listener = Arc::new(listener);
        let _ = self.listener.set(listener.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let conn = match conn {
                    Ok(c) => c,
                    // `settle` took the listener over (made non-blocking) for the last ones.
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(_) => continue,
                };
                self.arriving.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let hub = self.clone();
                std::thread::spawn(move || hub.handle(conn));
            }
        });
    }

    /// After [`close`](Self::close), waits (up to `limit`) for connections already made
    /// to be answered: each then gets the replay and the end of the stream.
    pub(crate) fn settle(self: &Arc<Hub>, limit: Duration) {
        let until = Instant::now() + limit;
        // Connections still waiting to be accepted are taken here too.
        if let Some(l) = self.listener.get() {
            if l.set_nonblocking(true).is_ok() {
                while let Ok((conn, _)) = l.accept() {
                    let _ = conn.set_nonblocking(false);
                    self.arriving.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let hub = self.clone();
                    std::thread::spawn(move || hub.handle(conn));
                }
            }
        }
        while self.arriving.load(std::sync::atomic::Ordering::SeqCst) > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn handle(&self, conn: UnixStream) {
        let arriving = Arriving(&self.arriving);
        let mut reader = BufReader::new(match conn.try_clone() {
            Ok(c) => c,
            Err(_) => return,
        });
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() {
            return;
        }
        let Ok(req) = serde_json::from_str::<AttachRequest>(&line) else {
            let _ = (&conn).write_all(b"bad attach request\n");
            return;
        };
        if let Some((rows, cols)) = req.resize {
            let answer = match self.resize(rows, cols) {
                Ok(()) => "ok\n".to_string(),
                Err(e) => format!("{e}\n"),
            };
            let _ = (&conn).write_all(answer.as_bytes());
            return;
        }
        let _ = conn.set_write_timeout(Some(CLIENT_WRITE_TIMEOUT));
        let mut id = None;
        if req.stdout || req.stderr {
            let Ok(mut st) = self.state.lock() else { return };
            let Ok(mut sock) = conn.try_clone() else { return };
            if req.replay {
                for (stream, data) in &st.backlog {
                    let wanted = if *stream == Stream::Stderr {
                        req.stderr
                    } else {
                        req.stdout
                    };
                    if wanted && send(&mut sock, self.tty, *stream, data).is_err() {
                        return;
                    }
                }
            }
            if st.closed {
                // The container already exited: what it printed is all there is.
                let _ = conn.shutdown(std::net::Shutdown::Both);
                return;
            }
            st.next_id += 1;
            let cid = st.next_id;
            id = Some(cid);
            st.clients.push(Client {
                id: cid,
                sock,
                stdout: req.stdout,
                stderr: req.stderr,
            });
        }
        drop(arriving);
        if !req.stdin {
            return;
        }
        let detached = self.pump_stdin(&mut reader, &req.detach_keys);
        if detached {
            // The client typed the detach keys: it leaves, the container goes on.
            if let (Ok(mut st), Some(id)) = (self.state.lock(), id) {
                st.clients.retain(|c| c.id != id);
            }
            let _ = conn.shutdown(std::net::Shutdown::Both);
        } else if req.stdin_once {
            if let Ok(mut stdin) = self.stdin.lock() {
                // Dropping the pipe's writer gives the container EOF on its stdin.
                if !self.tty {
                    stdin.take();
                }
            }
        }
    }

    /// Copies the client's input to the container; true when the detach keys ended it.
    fn pump_stdin(&self, from: &mut impl Read, detach_keys: &[u8]) -> bool {
        let mut buf = [0u8; 4096];
        // How much of the detach sequence the input ended with, held back until known.
        let mut matched = 0usize;
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => {
                    if matched > 0 {
                        self.write_stdin(&detach_keys[..matched]);
                    }
                    return false;
                }
                Ok(n) => n,
            };
            let mut out = Vec::with_capacity(n);
            for &b in &buf[..n] {
                if !detach_keys.is_empty() && b == detach_keys[matched] {
                    matched += 1;
                    if matched == detach_keys.len() {
                        self.write_stdin(&out);
                        return true;
                    }
                    continue;
                }
                if matched > 0 {
                    out.extend_from_slice(&detach_keys[..matched]);
                    matched = 0;
                    if !detach_keys.is_empty() && b == detach_keys[0] {
                        matched = 1;
                        continue;
                    }
                }
                out.push(b);
            }
            if !self.write_stdin(&out) {
                return false;
            }
        }
    }

    fn write_stdin(&self, data: &[u8]) -> bool {
        if data.is_empty() {
            return true;
        }
        let Ok(mut stdin) = self.stdin.lock() else {
            return false;
        };
        match stdin.as_mut() {
            Some(f) => f.write_all(data).is_ok(),
            None => false,
        }
    }

    fn resize(&self, rows: u16, cols: u16) -> std::io::Result<()> {
        let Some(master) = &self.master else {
            return Err(std::io::Error::other(
                "the container has no terminal — start it with -t to resize it",
            ));
        };
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a winsize; the master fd is ours.
        if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

fn send(sock: &mut UnixStream, tty: bool, stream: Stream, data: &[u8]) -> std::io::Result<()> {
    if tty {
        sock.write_all(data)
    } else {
        write_frame(sock, stream, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse_like_docker() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(parse_detach_keys("ctrl-@,a,ctrl-_").unwrap(), vec![0, b'a', 31]);
        assert!(parse_detach_keys("ctrl-1").unwrap_err().contains("ctrl-1"));
        assert!(parse_detach_keys("ab").is_err());
    }

    #[test]
    fn frames_round_trip() {
        let mut wire = Vec::new();
        write_frame(&mut wire, Stream::Stdout, b"out").unwrap();
        write_frame(&mut wire, Stream::Stderr, b"err!").unwrap();
        assert_eq!(&wire[..8], &[1, 0, 0, 0, 0, 0, 0, 3]);
        let mut r = &wire[..];
        let mut buf = Vec::new();
        assert_eq!(read_frame(&mut r, &mut buf).unwrap(), Some(Stream::Stdout));
        assert_eq!(buf, b"out");
        assert_eq!(read_frame(&mut r, &mut buf).unwrap(), Some(Stream::Stderr));
        assert_eq!(buf, b"err!");
        assert_eq!(read_frame(&mut r, &mut buf).unwrap(), None);
    }

    fn hub_with_pipe() -> (Arc<Hub>, std::fs::File) {
        let (r, w) = std::io::pipe().unwrap();
        let hub = Hub::new(false, Some(std::fs::File::from(OwnedFd::from(w))), None);
        (hub, std::fs::File::from(OwnedFd::from(r)))
    }

    #[test]
    fn detach_keys_are_held_back_and_passed_on_when_not_completed() {
        let (hub, mut container_stdin) = hub_with_pipe();
        let keys = [16u8, 17];
        // ctrl-p then 'x': both pass through; then the full sequence detaches.
        let mut input: &[u8] = b"ab\x10x\x10\x10\x11ignored";
        assert!(hub.pump_stdin(&mut input, &keys));
        drop(hub);
        let mut got = Vec::new();
        container_stdin.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"ab\x10x\x10");
    }

    #[test]
    fn input_without_detach_keys_passes_unchanged() {
        let (hub, mut container_stdin) = hub_with_pipe();
        let mut input: &[u8] = b"hello\x10";
        assert!(!hub.pump_stdin(&mut input, &[16, 17]));
        drop(hub);
        let mut got = Vec::new();
        container_stdin.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"hello\x10");
    }
}
