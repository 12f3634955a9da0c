//! The terminal side of `run -it`, `exec -it` and `attach`: raw mode while a TTY session
//! runs, the window size (sent to the engine as resizes), and the relay between this
//! process's stdio and a hijacked Engine API stream.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::pin::Pin;
use std::time::Duration;

use bollard::container::LogOutput;
use futures_util::{Stream, StreamExt};
use nix::pty::Winsize;
use nix::sys::termios::{self, SetArg, Termios};
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Restores the terminal's settings when dropped (also on error paths).
pub struct RawMode {
    original: Termios,
}

impl RawMode {
    pub fn enter() -> Option<RawMode> {
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

/// The terminal's (rows, columns), if stdout is a terminal.
pub fn window_size() -> Option<(u16, u16)> {
    let mut ws = Winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ fills a Winsize; stdout is a valid fd for the whole process.
    let r = unsafe { get_winsize(std::io::stdout().as_raw_fd(), &mut ws) };
    (r.is_ok() && ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
}

/// The window size now and at every change (polled on a thread: cheaper than a SIGWINCH
/// handler); the stream ends when its receiver is dropped.
pub fn window_sizes() -> tokio::sync::mpsc::Receiver<(u16, u16)> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    std::thread::spawn(move || {
        let mut last = None;
        loop {
            let now = window_size();
            if let Some(size) = now.filter(|_| now != last) {
                last = now;
                if tx.blocking_send(size).is_err() {
                    return;
                }
            }
            if tx.is_closed() {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    });
    rx
}

/// Relays a hijacked stream: its output to stdout and stderr until it ends, and (with
/// `stdin`) this process's stdin to its input, closing the input when stdin ends (docker's
/// stdin-once). Returns whether anything was received.
pub async fn relay<S>(mut output: S, input: Pin<Box<dyn AsyncWrite + Send>>, stdin: bool) -> bool
where
    S: Stream<Item = Result<LogOutput, bollard::errors::Error>> + Unpin,
{
    // Held until the output ends, then dropped: that closes the connection, which the
    // engine waits for when it shuts down.
    let mut held = None;
    let mut feeder = None;
    if stdin {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
        // stdin blocks, so it is read on a plain thread that ends with the process.
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 8192];
            while let Ok(n) = std::io::stdin().read(&mut buf) {
                if n == 0 || tx.blocking_send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let mut input = input;
        feeder = Some(tokio::spawn(async move {
            while let Some(chunk) = rx.recv().await {
                if input.write_all(&chunk).await.is_err() || input.flush().await.is_err() {
                    return;
                }
            }
            let _ = input.shutdown().await;
        }));
    } else {
        // Closing the write half early would end the session on some engines.
        held = Some(input);
    }
    let mut received = false;
    while let Some(item) = output.next().await {
        let Ok(o) = item else { break };
        received = true;
        let _ = match o {
            LogOutput::StdErr { message } => {
                let mut e = std::io::stderr();
                e.write_all(&message).and_then(|()| e.flush())
            }
            LogOutput::StdOut { message } | LogOutput::Console { message } | LogOutput::StdIn { message } => {
                let mut o = std::io::stdout();
                o.write_all(&message).and_then(|()| o.flush())
            }
        };
    }
    if let Some(f) = feeder {
        f.abort();
        let _ = f.await;
    }
    drop(held);
    drop(output);
    received
}
