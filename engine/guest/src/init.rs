//! PID 1 of a machine's guest. Single-threaded: it prepares the system, starts the guest's
//! engine as a child and then only reaps, restarts the engine if it dies, and powers off
//! when the engine exits with [`crate::EXIT_POWEROFF`].
//!
//! Everything it does is said on the console (`berth machine logs` on the host).

use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::{DATA_DISK, DATA_ROOT, EXIT_POWEROFF};

macro_rules! say {
    ($($t:tt)*) => { eprintln!("berth-guest: {}", format!($($t)*)) };
}

/// Runs as PID 1; never returns (the machine powers off at the end).
///
/// Only what the engine needs to open its store comes before it starts: the root, the
/// link's and the data disk's modules, the disk. The rest (the modules containers need,
/// the network, the shared folders) follows while the engine already answers; until it is
/// done the engine holds every request that changes something ([`SETUP_PENDING`]). That
/// rest begins once the engine is ready, so the two do not share the vCPUs before it.
pub fn run(berth: &Path) -> ! {
    let begun = Instant::now();
    // Each step's time, for the console (what a slow start spends its time on).
    let mut steps = Vec::new();
    let mut step = |name: &str, f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        steps.push(format!("{name} {}", t.elapsed().as_millis()));
    };
    step("root", &mut leave_rootfs);
    mount_basics();
    step("modules", &mut || modprobe(BOOT_MODULES));
    step("disk", &mut || {
        if let Err(e) = data_disk() {
            say!("the data disk cannot be used ({e}): the engine runs on memory only, and nothing it stores survives a stop");
            let _ = std::fs::create_dir_all(DATA_ROOT);
        }
    });
    let (mut engine, setup) = match std::os::unix::net::UnixStream::pair() {
        Ok((setup, pending)) => (start_engine(berth, Some(pending)), Some(setup)),
        Err(e) => {
            say!("cannot make a socket pair ({e}): the engine starts after the whole setup");
            (None, None)
        }
    };
    say!(
        "engine started {} ms after init ({} ms; {} s after the kernel started)",
        begun.elapsed().as_millis(),
        steps.join(", "),
        uptime()
    );
    // The rest waits for the engine's "ready" (a byte on the pair; EOF if it died; at
    // most ENGINE_READY), so that loading modules does not slow the engine's start.
    if let Some(setup) = &setup {
        use std::io::Read;
        let _ = setup.set_read_timeout(Some(ENGINE_READY));
        let _ = (&*setup).read(&mut [0u8; 1]);
    }
    let mut steps = Vec::new();
    let mut step = |name: &str, f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        steps.push(format!("{name} {}", t.elapsed().as_millis()));
    };
    step("modules", &mut || {
        let list = std::fs::read_to_string(MODULES).unwrap_or_default();
        modprobe(&list.split_whitespace().collect::<Vec<_>>())
    });
    step("network", &mut network);
    step("shares", &mut shares);
    step("trim", &mut trim);
    // The engine hears the pair close: from now on it takes every request.
    drop(setup);
    say!(
        "system ready {} ms after init (then {} ms; {} s after the kernel started)",
        begun.elapsed().as_millis(),
        steps.join(", "),
        uptime()
    );
    if engine.is_none() {
        engine = start_engine(berth, None);
    }
    loop {
        match waitpid(Pid::from_raw(-1), None) {
            Ok(WaitStatus::Exited(pid, code)) if Some(pid) == engine => {
                if code == EXIT_POWEROFF {
                    power_off();
                }
                say!("the engine exited with {code}; starting it again");
                std::thread::sleep(Duration::from_secs(1));
                engine = start_engine(berth, None);
            }
            Ok(WaitStatus::Signaled(pid, sig, _)) if Some(pid) == engine => {
                say!("the engine was killed by {sig:?}; starting it again");
                std::thread::sleep(Duration::from_secs(1));
                engine = start_engine(berth, None);
            }
            Ok(_) => {}
            Err(nix::errno::Errno::ECHILD) => {
                // No child at all: the engine could not be started; try again soon.
                std::thread::sleep(Duration::from_secs(1));
                engine = start_engine(berth, None);
            }
            Err(_) => {}
        }
    }
}

/// The kernel's seconds since boot, as /proc/uptime says.
fn uptime() -> String {
    let uptime = std::fs::read_to_string("/proc/uptime").unwrap_or_default();
    uptime.split_whitespace().next().unwrap_or("?").to_string()
}

/// The modules the engine needs before it starts (with their dependencies, which
/// modprobe adds): the PCI transport, the link's serial port, the data disk and its file
/// system. Everything else in [`MODULES`] is loaded while the engine already answers.
const BOOT_MODULES: &[&str] = &[
    "virtio_pci",
    "virtio_console",
    "virtio_blk",
    "crc32c_generic",
    "ext4",
];

/// The environment variable by which PID 1 tells the engine that its standard input is one
/// end of the setup socket pair: the engine writes a byte to it once the host has heard
/// "ready", and holds requests that change something until PID 1 closes its end.
pub const SETUP_PENDING: &str = "BERTH_GUEST_SETUP_PENDING";

/// How long PID 1 waits for the engine's "ready" before it sets up the rest anyway.
const ENGINE_READY: Duration = Duration::from_secs(10);

/// The initramfs is the kernel's rootfs, and `pivot_root` refuses a root that is the
/// namespace's first mount, which containers need. A bind mount of `/` moved onto `/`
/// is a mount with a parent: after `chroot` into it, PID 1 and everything it starts live
/// on that mount, and containers pivot away from it. No file is copied.
fn leave_rootfs() {
    let moved = (|| -> Result<(), String> {
        let new = Path::new("/.root");
        std::fs::create_dir_all(new).map_err(|e| e.to_string())?;
        mount(Some("/"), new, None::<&str>, MsFlags::MS_BIND, None::<&str>)
            .map_err(|e| format!("bind: {e}"))?;
        std::env::set_current_dir(new).map_err(|e| e.to_string())?;
        mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
            .map_err(|e| format!("move: {e}"))?;
        nix::unistd::chroot(".").map_err(|e| format!("chroot: {e}"))?;
        std::env::set_current_dir("/").map_err(|e| e.to_string())?;
        Ok(())
    })();
    if let Err(e) = moved {
        say!("cannot leave the initramfs ({e}): containers will not start");
    }
}

/// Starts `berth guest-engine`; with `pending`, as its standard input, the engine's end of
/// the setup socket pair.
fn start_engine(berth: &Path, pending: Option<std::os::unix::net::UnixStream>) -> Option<Pid> {
    let mut cmd = Command::new(berth);
    cmd.arg("guest-engine");
    if let Some(pending) = pending {
        cmd.env(SETUP_PENDING, "1")
            .stdin(std::os::fd::OwnedFd::from(pending));
    }
    match cmd.spawn() {
        Ok(child) => Some(Pid::from_raw(child.id() as i32)),
        Err(e) => {
            say!("cannot start {} guest-engine: {e}", berth.display());
            None
        }
    }
}

fn mount_one(src: &str, target: &str, fstype: &str, flags: MsFlags, data: Option<&str>) {
    let _ = std::fs::create_dir_all(target);
    if let Err(e) = mount(Some(src), target, Some(fstype), flags, data) {
        if e != nix::errno::Errno::EBUSY {
            say!("cannot mount {fstype} on {target}: {e}");
        }
    }
}

fn mount_basics() {
    let quiet = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;
    mount_one("proc", "/proc", "proc", quiet, None);
    mount_one("sysfs", "/sys", "sysfs", quiet, None);
    mount_one(
        "devtmpfs",
        "/dev",
        "devtmpfs",
        MsFlags::MS_NOSUID,
        Some("mode=0755"),
    );
    mount_one(
        "devpts",
        "/dev/pts",
        "devpts",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("gid=5,mode=0620,ptmxmode=0666"),
    );
    mount_one(
        "shm",
        "/dev/shm",
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=1777"),
    );
    mount_one(
        "tmpfs",
        "/run",
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=0755"),
    );
    mount_one(
        "tmpfs",
        "/tmp",
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=1777"),
    );
    mount_one("cgroup2", "/sys/fs/cgroup", "cgroup2", quiet, None);
    let _ = std::os::unix::fs::symlink("/proc/self/fd", "/dev/fd");
    let _ = nix::unistd::sethostname("berth");
}

/// The payload's modules, one per line in load order (scripts/build-guest.sh).
const MODULES: &str = "/etc/berth-guest/modules";

fn modprobe(names: &[&str]) {
    if names.is_empty() {
        return;
    }
    match Command::new("/bin/busybox")
        .arg("modprobe")
        .arg("-a")
        .args(names)
        .status()
    {
        Ok(s) if s.success() => {}
        Ok(s) => say!("modprobe of {} modules ended with {s}", names.len()),
        Err(e) => say!("cannot run modprobe: {e}"),
    }
}

fn ip(args: &[&str]) {
    match Command::new("/bin/busybox").arg("ip").args(args).status() {
        Ok(s) if s.success() => {}
        Ok(s) => say!("ip {} ended with {s}", args.join(" ")),
        Err(e) => say!("cannot run ip: {e}"),
    }
}

/// QEMU's user networking: the guest is 10.0.2.15, the host's gateway 10.0.2.2, its DNS
/// 10.0.2.3.
fn network() {
    ip(&["link", "set", "lo", "up"]);
    if !Path::new("/sys/class/net/eth0").exists() {
        say!("no network card (eth0): pulls and builds cannot reach the network");
        return;
    }
    ip(&["link", "set", "eth0", "up"]);
    ip(&["addr", "add", "10.0.2.15/24", "dev", "eth0"]);
    ip(&["route", "add", "default", "via", "10.0.2.2"]);
    let _ = std::fs::create_dir_all("/etc");
    let _ = std::fs::write("/etc/resolv.conf", "nameserver 10.0.2.3\n");
    host_loopback();
}

/// The host's loopback under the same names: TCP to 127.0.0.1 in the guest goes to the
/// host's 127.0.0.1 (slirp's 10.0.2.2 is the host's loopback), so a registry a user runs on
/// `localhost:5000` is pulled from, pushed to and built from as on the host. Containers
/// have their own loopback and are not affected; the guest's own connections to its
/// published ports carry [`crate::ports::MARK`] and stay in the guest.
const HOST_LOOPBACK_RULES: &str = "table ip berth_host {
    chain output {
        type nat hook output priority -100;
        meta mark 0xbe27 return
        ip daddr 127.0.0.1 meta l4proto tcp dnat to 10.0.2.2
    }
    chain postrouting {
        type nat hook postrouting priority 100;
        ip saddr 127.0.0.0/8 oifname \"eth0\" masquerade
    }
}
";

fn host_loopback() {
    // Packets from 127.0.0.1 may leave through eth0 only with route_localnet.
    for f in ["all", "eth0"] {
        let _ = std::fs::write(format!("/proc/sys/net/ipv4/conf/{f}/route_localnet"), "1");
    }
    let rules = "/run/berth-host-loopback.nft";
    if std::fs::write(rules, HOST_LOOPBACK_RULES).is_err() {
        return;
    }
    match Command::new("/usr/sbin/nft").args(["-f", rules]).status() {
        Ok(s) if s.success() => {}
        Ok(s) => say!("the host's loopback is not reachable (nft ended with {s})"),
        Err(e) => say!("the host's loopback is not reachable (cannot run nft: {e})"),
    }
}

/// The host's folders shared with the guest (`berth.share=TAG:HEXPATH` on the kernel
/// command line), mounted at the same paths so `-v $(pwd):/app` works unchanged.
fn shares() {
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let virtiofs = cmdline.split_whitespace().any(|w| w == "berth.sharefs=virtiofs");
    let (fstype, opts) = if virtiofs {
        ("virtiofs", None)
    } else {
        (
            "9p",
            Some("trans=virtio,version=9p2000.L,msize=262144,access=client"),
        )
    };
    for (tag, path) in parse_shares(&cmdline) {
        let _ = std::fs::create_dir_all(&path);
        match mount(
            Some(tag.as_str()),
            path.as_path(),
            Some(fstype),
            MsFlags::empty(),
            opts,
        ) {
            Ok(()) => say!("shared {} from the host ({fstype})", path.display()),
            Err(e) => say!(
                "cannot mount the host's {} ({e}): bind mounts from it will be empty",
                path.display()
            ),
        }
    }
}

/// How the host's clients spell paths: `berth.hostos=windows` on the kernel command line
/// (a machine on a Windows host) makes `C:\Users\…` binds resolve under `/mnt/c/…`.
pub fn host_paths(cmdline: &str) -> berth_api::HostPaths {
    if cmdline.split_whitespace().any(|w| w == "berth.hostos=windows") {
        berth_api::HostPaths::Windows
    } else {
        berth_api::HostPaths::Native
    }
}

/// `berth.share=TAG:HEXPATH` words of a kernel command line.
pub fn parse_shares(cmdline: &str) -> Vec<(String, std::path::PathBuf)> {
    cmdline
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("berth.share="))
        .filter_map(|v| {
            let (tag, hex) = v.split_once(':')?;
            let path = berth_link::paths::decode(hex)?;
            (!tag.is_empty()).then(|| (tag.to_string(), path))
        })
        .collect()
}

/// Whether the block device or file at `path` holds an ext2/3/4 file system.
pub fn has_ext4(path: &Path) -> std::io::Result<bool> {
    Ok(ext4_size(path)?.is_some())
}

/// The size in bytes of the ext2/3/4 file system at `path` (from its superblock), or
/// `None` when it holds none.
pub fn ext4_size(path: &Path) -> std::io::Result<Option<u64>> {
    Ok(superblock_size(&superblock(path)?))
}

/// The first bytes of the superblock of the disk or file at `path` (at 1024; up to
/// s_blocks_count_hi at 0x150), empty when it is shorter.
fn superblock(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path)?;
    let mut head = vec![0u8; 1024 + 0x154];
    match f.read_exact(&mut head) {
        Ok(()) => Ok(head.split_off(1024)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Whether `fsck -p` would check the ext file system of this superblock: it was not
/// unmounted cleanly (s_state lacks VALID or has ERROR), its journal needs a replay
/// (the RECOVER feature), or its mount count reached the maximum.
pub fn needs_fsck(sb: &[u8]) -> bool {
    let u16_at = |o: usize| sb.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |o: usize| {
        sb.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    const VALID: u16 = 1;
    const ERROR: u16 = 2;
    const INCOMPAT_RECOVER: u32 = 0x4;
    let (Some(state), Some(incompat), Some(count), Some(max)) =
        (u16_at(0x3a), u32_at(0x60), u16_at(0x34), u16_at(0x36))
    else {
        return true;
    };
    let max = max as i16;
    state & VALID == 0
        || state & ERROR != 0
        || incompat & INCOMPAT_RECOVER != 0
        || (max > 0 && count as i16 >= max)
}

/// An ext superblock's size in bytes: blocks (the high half only with the 64bit feature)
/// times the block size; `None` without ext's magic.
pub fn superblock_size(sb: &[u8]) -> Option<u64> {
    let u32_at = |o: usize| Some(u32::from_le_bytes(sb.get(o..o + 4)?.try_into().ok()?));
    if sb.get(0x38..0x3a)? != [0x53, 0xef] {
        return None;
    }
    let log_block = u32_at(0x18)?;
    if log_block > 6 {
        return None;
    }
    let mut blocks = u64::from(u32_at(0x04)?);
    const INCOMPAT_64BIT: u32 = 0x80;
    if u32_at(0x60)? & INCOMPAT_64BIT != 0 {
        blocks |= u64::from(u32_at(0x150)?) << 32;
    }
    Some(blocks << (10 + log_block))
}

/// The length of the block device (or file) at `path`.
fn device_size(path: &Path) -> std::io::Result<u64> {
    use std::io::{Seek, SeekFrom};
    std::fs::File::open(path)?.seek(SeekFrom::End(0))
}

/// Whether a disk of `disk` bytes has room for a file system of `fs` bytes to grow by at
/// least a MiB (resize2fs rounds to whole blocks and groups; less is not worth a run).
pub fn disk_outgrew(fs: u64, disk: u64) -> bool {
    disk > fs.saturating_add(1 << 20)
}

/// `berth machine set --disk-size` makes the disk longer: the mounted file system grows to
/// fill it (online, so no forced full fsck is needed first). A failure is said and the
/// boot goes on with the space the file system had.
fn grow_data_fs() {
    let disk = Path::new(DATA_DISK);
    let (fs, size) = match (ext4_size(disk), device_size(disk)) {
        (Ok(Some(fs)), Ok(size)) => (fs, size),
        (Err(e), _) | (_, Err(e)) => {
            say!("cannot read the size of {DATA_DISK} ({e}): its file system is not grown, and the boot goes on");
            return;
        }
        (Ok(None), _) => return,
    };
    if !disk_outgrew(fs, size) {
        return;
    }
    say!(
        "growing the data disk's file system from {} MiB to {} MiB",
        fs >> 20,
        size >> 20
    );
    match Command::new("/sbin/resize2fs").arg(DATA_DISK).output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            let why = String::from_utf8_lossy(&o.stderr);
            let why = why
                .lines()
                .rfind(|l| !l.trim().is_empty())
                .unwrap_or("no message");
            say!("resize2fs {DATA_DISK} ended with {} ({why}): the disk keeps its old size for now, and the boot goes on", o.status);
        }
        Err(e) => {
            say!("cannot run resize2fs ({e}): the disk keeps its old size for now, and the boot goes on")
        }
    }
}

fn data_disk() -> Result<(), String> {
    let disk = Path::new(DATA_DISK);
    if !disk.exists() {
        return Err(format!("{DATA_DISK} is missing"));
    }
    let sb = superblock(disk).map_err(|e| e.to_string())?;
    if superblock_size(&sb).is_some() {
        // A machine killed mid-write: fsck -p replays the journal and mends the rest. A
        // file system unmounted cleanly is one fsck -p would leave alone: no run at all.
        if needs_fsck(&sb) {
            say!("the data disk was not shut down cleanly: checking it (fsck.ext4 -p)");
            match Command::new("/sbin/fsck.ext4").args(["-p", DATA_DISK]).status() {
                Ok(s) if s.code().is_some_and(|c| c <= 1) => {}
                Ok(s) => say!("fsck.ext4 -p {DATA_DISK} ended with {s}"),
                Err(e) => say!("cannot run fsck.ext4: {e}"),
            }
        }
    } else {
        say!("formatting the new data disk {DATA_DISK} (ext4)");
        let s = Command::new("/sbin/mkfs.ext4")
            .args([
                "-q",
                "-F",
                "-L",
                "berth-data",
                "-E",
                "lazy_itable_init=1,lazy_journal_init=1",
                DATA_DISK,
            ])
            .status()
            .map_err(|e| format!("cannot run mkfs.ext4: {e}"))?;
        if !s.success() {
            return Err(format!("mkfs.ext4 ended with {s}"));
        }
    }
    std::fs::create_dir_all(DATA_ROOT).map_err(|e| e.to_string())?;
    mount(
        Some(DATA_DISK),
        DATA_ROOT,
        Some("ext4"),
        MsFlags::MS_NOATIME,
        None::<&str>,
    )
    .map_err(|e| format!("cannot mount {DATA_DISK}: {e}"))?;
    grow_data_fs();
    Ok(())
}

/// Removed images give their blocks back to the host's sparse file.
fn trim() {
    let _ = Command::new("/bin/busybox").args(["fstrim", DATA_ROOT]).status();
}

/// Ends every process, unmounts the data disk and powers off.
fn power_off() -> ! {
    say!("powering off");
    let _ = kill(Pid::from_raw(-1), Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Err(nix::errno::Errno::ECHILD) => break,
            Ok(WaitStatus::StillAlive) => std::thread::sleep(Duration::from_millis(20)),
            _ => {}
        }
    }
    let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
    while waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)).is_ok_and(|s| s != WaitStatus::StillAlive) {}
    nix::unistd::sync();
    if let Err(e) = umount2(DATA_ROOT, MntFlags::empty()) {
        say!("unmounting {DATA_ROOT}: {e}; detaching it");
        let _ = umount2(DATA_ROOT, MntFlags::MNT_DETACH);
    }
    nix::unistd::sync();
    let _ = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_POWER_OFF);
    // reboot(2) does not return for PID 1; if it did, there is nothing left to do.
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_come_from_the_command_line() {
        let got = parse_shares("console=ttyS0 berth.share=share0:2f726f6f74 quiet berth.share=share1:2f746d70 berth.share=bad:zz berth.share=rel:6161");
        assert_eq!(
            got,
            [
                ("share0".to_string(), std::path::PathBuf::from("/root")),
                ("share1".to_string(), std::path::PathBuf::from("/tmp")),
            ]
        );
    }

    #[test]
    fn a_windows_host_is_named_on_the_command_line() {
        use berth_api::HostPaths;
        assert_eq!(
            host_paths("console=ttyS0 berth.hostos=windows quiet"),
            HostPaths::Windows
        );
        assert_eq!(host_paths("console=ttyS0 quiet"), HostPaths::Native);
        assert_eq!(host_paths("berth.hostos=windowsx"), HostPaths::Native);
    }

    #[test]
    fn ext4_is_told_from_an_empty_disk() {
        let dir = std::env::temp_dir().join(format!("berth-ext4-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty");
        std::fs::File::create(&empty).unwrap().set_len(1 << 20).unwrap();
        assert!(!has_ext4(&empty).unwrap());
        let short = dir.join("short");
        std::fs::write(&short, b"x").unwrap();
        assert!(!has_ext4(&short).unwrap());
        let mut sb = vec![0u8; 4096];
        sb[1080] = 0x53;
        sb[1081] = 0xef;
        let formatted = dir.join("formatted");
        std::fs::write(&formatted, &sb).unwrap();
        assert!(has_ext4(&formatted).unwrap());
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn superblock(blocks: u64, log_block: u32, bit64: bool) -> Vec<u8> {
        let mut sb = vec![0u8; 0x154];
        sb[0x38] = 0x53;
        sb[0x39] = 0xef;
        sb[0x04..0x08].copy_from_slice(&(blocks as u32).to_le_bytes());
        sb[0x18..0x1c].copy_from_slice(&log_block.to_le_bytes());
        if bit64 {
            sb[0x60..0x64].copy_from_slice(&0x80u32.to_le_bytes());
        }
        sb[0x150..0x154].copy_from_slice(&((blocks >> 32) as u32).to_le_bytes());
        sb
    }

    #[test]
    fn a_cleanly_unmounted_file_system_is_not_checked() {
        let mut sb = superblock(1024, 2, true);
        assert!(needs_fsck(&sb), "state 0: mounted, or killed while mounted");
        sb[0x3a] = 1;
        assert!(!needs_fsck(&sb), "valid, no error, no journal to replay");
        sb[0x3a] = 3;
        assert!(needs_fsck(&sb), "errors recorded");
        sb[0x3a] = 1;
        sb[0x60] |= 0x4;
        assert!(needs_fsck(&sb), "the journal needs a replay");
        sb[0x60] &= !0x4;
        sb[0x34] = 20;
        sb[0x36] = 20;
        assert!(needs_fsck(&sb), "the maximum mount count is reached");
        sb[0x36] = 0xff;
        sb[0x37] = 0xff;
        assert!(!needs_fsck(&sb), "a maximum of -1 means never");
        assert!(needs_fsck(&[]), "no superblock at all");
    }

    #[test]
    fn the_file_system_size_is_read_from_the_superblock() {
        // 20 GiB of 4 KiB blocks, as mkfs.ext4 makes it on a 20 GiB disk.
        assert_eq!(superblock_size(&superblock(5 << 20, 2, true)), Some(20 << 30));
        // 32 TiB needs the high half, which only the 64bit feature makes count.
        assert_eq!(superblock_size(&superblock(1 << 33, 2, true)), Some(32 << 40));
        assert_eq!(superblock_size(&superblock(1 << 33, 2, false)), Some(0));
        assert_eq!(superblock_size(&superblock(1024, 0, false)), Some(1 << 20));
        assert_eq!(superblock_size(&[0u8; 0x154]), None);
        assert_eq!(superblock_size(&[0u8; 10]), None);
        assert!(disk_outgrew(20 << 30, 30 << 30));
        assert!(!disk_outgrew(20 << 30, 20 << 30));
        assert!(
            !disk_outgrew(20 << 30, (20 << 30) + 4096),
            "a block more is not worth a run"
        );
    }
}
