//! A kernel object (a timerfd, an inotify instance) on tokio's reactor.

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};

use tokio::io::unix::AsyncFd;

/// Owns `T`, so the fd it hands the reactor stays open for as long as it is registered.
pub struct Owned<T>(pub T);

impl<T: AsFd> AsRawFd for Owned<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// Registers `t` (non-blocking already) with the current runtime's reactor.
pub fn register<T: AsFd>(t: T) -> io::Result<AsyncFd<Owned<T>>> {
    // SAFETY: `Owned` owns the object whose fd is registered, and the AsyncFd owns the
    // `Owned`: the fd is closed only after the AsyncFd deregisters it on drop.
    unsafe { AsyncFd::register(Owned(t)) }.map_err(io::Error::from)
}
