//! berth-guest: Berth inside a machine's guest (a Linux VM on macOS, Windows, or Linux
//! where the native engine cannot run).
//!
//! - [`init`] is PID 1 (`berth guest-init`, exec'd by the initramfs's `/init`): it mounts
//!   the kernel's file systems, loads the modules the payload lists, brings up the network
//!   QEMU's user networking expects, checks and mounts the data disk, then runs the guest's
//!   engine as its child, reaps every orphan, and powers the machine off when asked.
//! - [`engine`] is that child (`berth guest-engine`): the ordinary engine on the data disk,
//!   and the guest's end of the host link ([`berth_link`]), which turns each stream the
//!   host opens into a connection to the engine's socket.
//!
//! # Link targets (streams the host opens)
//! - `api`: a connection to the Engine API.
//! - `time <unix-nanoseconds>`: sets the guest's clock (sent at every link start, so the
//!   clock is right again after the host slept).
//! - `poweroff`: stops the engine; PID 1 then powers the machine off.
//! - `connect tcp|udp <ip> <port>`: a connection (or UDP flow) the host accepted on a
//!   published port ([`ports`]); the guest opens `publish …` streams the other way.
//!
//! Architecture invariant: nothing here listens on a network address; the host reaches
//! the guest through the link only.

pub mod engine;
pub mod init;
mod port;
pub mod ports;
pub mod watch;

pub use port::find_port;

/// Where the data disk is mounted, and so the engine's store root.
pub const DATA_ROOT: &str = "/var/lib/berth";
/// The data disk (the first virtio disk).
pub const DATA_DISK: &str = "/dev/vda";
/// The virtio-serial port's name on the QEMU command line.
pub const PORT_NAME: &str = "berth.link";
/// The host as QEMU's user networking shows it to the guest (its loopback): what
/// `host.docker.internal` names inside containers.
pub const HOST_GATEWAY: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 0, 2, 2);
/// The exit code by which the guest's engine asks PID 1 to power off.
pub const EXIT_POWEROFF: i32 = 0;
