//! When the host's wall clock jumps: the host woke from sleep (the kernel's resume cancels
//! every `TFD_TIMER_CANCEL_ON_SET` timer) or someone set it (an NTP step, the user). The
//! relay then sets the guest's clock again, so a machine's clock does not drift after the
//! host sleeps. Event-driven: one timer that never fires on its own, no polling.
//!
//! Linux only. On macOS the equivalent is IOKit's wake notification (not written: macOS is
//! not built here); there [`ClockJumps::new`] fails and the relay sets the clock at start
//! only.

#[cfg(target_os = "linux")]
mod imp {
    use std::io;
    use std::os::fd::AsFd;

    use nix::errno::Errno;
    use nix::sys::time::TimeSpec;
    use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
    use tokio::io::unix::AsyncFd;

    use crate::asyncfd::Owned;

    /// 2100-01-01: an alarm that stays in the future, there only to be cancelled.
    const NEVER: i64 = 4_102_444_800;

    pub struct ClockJumps {
        fd: AsyncFd<Owned<TimerFd>>,
    }

    impl ClockJumps {
        pub fn new() -> io::Result<ClockJumps> {
            let t = TimerFd::new(
                ClockId::CLOCK_REALTIME,
                TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
            )?;
            arm(&t)?;
            Ok(ClockJumps {
                fd: crate::asyncfd::register(t)?,
            })
        }

        pub async fn next(&mut self) -> io::Result<()> {
            loop {
                let mut ready = self.fd.readable().await?;
                match nix::unistd::read(self.fd.get_ref().0.as_fd(), &mut [0u8; 8]) {
                    Err(Errno::ECANCELED) => {
                        arm(&self.fd.get_ref().0)?;
                        return Ok(());
                    }
                    Err(Errno::EAGAIN) | Err(Errno::EINTR) => ready.clear_ready(),
                    // The alarm itself went off (the clock reached 2100): arm it again.
                    Ok(_) => arm(&self.fd.get_ref().0)?,
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }

    fn arm(t: &TimerFd) -> io::Result<()> {
        t.set(
            Expiration::OneShot(TimeSpec::new(NEVER, 0)),
            TimerSetTimeFlags::TFD_TIMER_ABSTIME | TimerSetTimeFlags::TFD_TIMER_CANCEL_ON_SET,
        )?;
        Ok(())
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::io;

    pub struct ClockJumps;

    impl ClockJumps {
        pub fn new() -> io::Result<ClockJumps> {
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "clock jumps are watched on Linux only",
            ))
        }

        pub async fn next(&mut self) -> io::Result<()> {
            std::future::pending().await
        }
    }
}

/// A watch on the host's wall clock: `ClockJumps::new()`, then `next().await` ends at each
/// jump (a resume from sleep or a set).
pub use imp::ClockJumps;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A set of the clock (to what it already says, so nothing else is disturbed) is seen;
    /// the kernel tells a resume from sleep the same way (timerfd_resume).
    #[tokio::test]
    async fn a_set_of_the_host_clock_is_seen_and_the_watch_goes_on() {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test sets the host's clock (to its own time): run it as root (CAP_SYS_TIME)"
        );
        let mut jumps = ClockJumps::new().expect("timerfd");
        let quiet = tokio::time::timeout(Duration::from_millis(300), jumps.next()).await;
        assert!(quiet.is_err(), "no jump without a set");
        for _ in 0..2 {
            let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME).unwrap();
            nix::time::clock_settime(nix::time::ClockId::CLOCK_REALTIME, now).expect("clock_settime");
            tokio::time::timeout(Duration::from_secs(5), jumps.next())
                .await
                .expect("the set was seen within 5 s")
                .expect("watch");
        }
    }
}
