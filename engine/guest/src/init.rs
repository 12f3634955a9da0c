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
pub fn run(berth: &Path) -> ! {
    let begun = Instant::now();
    if std::env::var_os(SWITCHED).is_none() {
        leave_rootfs(berth);
    }
    mount_basics();
    // Each step's time, for the console (what a slow start spends its time on).
    let mut steps = Vec::new();
    if let Some(ms) = std::env::var_os(SWITCHED) {
        steps.push(format!("tmpfs root {}", ms.to_string_lossy()));
    }
    let mut step = |name: &str, f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        steps.push(format!("{name} {}", t.elapsed().as_millis()));
    };
    step("modules", &mut || {
        let list = std::fs::read_to_string(MODULES).unwrap_or_default();
        modprobe(&list.split_whitespace().map(String::from).collect::<Vec<_>>())
    });
    step("network", &mut network);
    step("shares", &mut shares);
    step("disk", &mut || {
        if let Err(e) = data_disk() {
            say!("the data disk cannot be used ({e}): the engine runs on memory only, and nothing it stores survives a stop");
            let _ = std::fs::create_dir_all(DATA_ROOT);
        }
    });
    let uptime = std::fs::read_to_string("/proc/uptime").unwrap_or_default();
    say!(
        "system ready in {} ms ({} ms; {} s after the kernel started); starting the engine",
        begun.elapsed().as_millis(),
        steps.join(", "),
        uptime.split_whitespace().next().unwrap_or("?")
    );
    let mut engine = start_engine(berth);
    loop {
        match waitpid(Pid::from_raw(-1), None) {
            Ok(WaitStatus::Exited(pid, code)) if Some(pid) == engine => {
                if code == EXIT_POWEROFF {
                    power_off();
                }
                say!("the engine exited with {code}; starting it again");
                std::thread::sleep(Duration::from_secs(1));
                engine = start_engine(berth);
            }
            Ok(WaitStatus::Signaled(pid, sig, _)) if Some(pid) == engine => {
                say!("the engine was killed by {sig:?}; starting it again");
                std::thread::sleep(Duration::from_secs(1));
                engine = start_engine(berth);
            }
            Ok(_) => {}
            Err(nix::errno::Errno::ECHILD) => {
                // No child at all: the engine could not be started; try again soon.
                std::thread::sleep(Duration::from_secs(1));
                engine = start_engine(berth);
            }
            Err(_) => {}
        }
    }
}

/// Set once PID 1 runs on the tmpfs root.
const SWITCHED: &str = "BERTH_GUEST_ON_TMPFS";

/// The initramfs is the kernel's rootfs, which cannot be pivoted away from, and containers
/// need `pivot_root`. So PID 1 first moves the system onto a tmpfs (as switch_root does:
/// copy, empty the old root, move the new one onto `/`, chroot) and execs itself there.
fn leave_rootfs(berth: &Path) {
    let begun = Instant::now();
    let new = Path::new("/.root");
    let switched = (|| -> Result<(), String> {
        std::fs::create_dir_all(new).map_err(|e| e.to_string())?;
        mount(
            Some("tmpfs"),
            new,
            Some("tmpfs"),
            MsFlags::empty(),
            Some("mode=0755"),
        )
        .map_err(|e| format!("mount tmpfs: {e}"))?;
        let skip = [new, Path::new("/proc"), Path::new("/sys"), Path::new("/dev")];
        copy_tree(Path::new("/"), new, &skip).map_err(|e| format!("copy: {e}"))?;
        for d in ["proc", "sys", "dev"] {
            let _ = std::fs::create_dir_all(new.join(d));
        }
        // Free the initramfs's memory: everything on the old root but the new one goes.
        if let Ok(entries) = std::fs::read_dir("/") {
            for e in entries.flatten() {
                let p = e.path();
                if p != new && !skip.contains(&p.as_path()) {
                    let _ = if p.is_dir() && !p.is_symlink() {
                        std::fs::remove_dir_all(&p)
                    } else {
                        std::fs::remove_file(&p)
                    };
                }
            }
        }
        std::env::set_current_dir(new).map_err(|e| e.to_string())?;
        mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
            .map_err(|e| format!("move: {e}"))?;
        nix::unistd::chroot(".").map_err(|e| format!("chroot: {e}"))?;
        std::env::set_current_dir("/").map_err(|e| e.to_string())?;
        Ok(())
    })();
    match switched {
        Ok(()) => {
            use std::os::unix::process::CommandExt;
            // The value is the move's time in ms, for the console's report.
            let ms = begun.elapsed().as_millis().to_string();
            let e = Command::new(berth).arg("guest-init").env(SWITCHED, ms).exec();
            say!("cannot exec {} on the new root: {e}", berth.display());
        }
        Err(e) => say!("cannot leave the initramfs ({e}): containers will not start"),
    }
}

/// Copies `from` into `to` (files, directories, symlinks, modes), leaving out `skip`.
fn copy_tree(from: &Path, to: &Path, skip: &[&Path]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let src = entry.path();
        if skip.contains(&src.as_path()) {
            continue;
        }
        let dst = to.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&src)?;
        let ft = meta.file_type();
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if ft.is_dir() {
            std::fs::create_dir_all(&dst)?;
            copy_tree(&src, &dst, skip)?;
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(meta.permissions().mode()))?;
        } else if ft.is_file() {
            std::fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

fn start_engine(berth: &Path) -> Option<Pid> {
    match Command::new(berth).arg("guest-engine").spawn() {
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

fn modprobe(names: &[String]) {
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
    let mut f = std::fs::File::open(path)?;
    // The superblock is at 1024; what is read here ends with s_blocks_count_hi (0x150).
    let mut head = [0u8; 1024 + 0x154];
    match f.read_exact(&mut head) {
        Ok(()) => Ok(superblock_size(&head[1024..])),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
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
    if has_ext4(disk).map_err(|e| e.to_string())? {
        // A machine killed mid-write: the journal replays at mount; fsck -p mends the rest.
        match Command::new("/sbin/fsck.ext4").args(["-p", DATA_DISK]).status() {
            Ok(s) if s.code().is_some_and(|c| c <= 1) => {}
            Ok(s) => say!("fsck.ext4 -p {DATA_DISK} ended with {s}"),
            Err(e) => say!("cannot run fsck.ext4: {e}"),
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
    // Removed images give their blocks back to the host's sparse file.
    trim();
    Ok(())
}

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
    fn copy_tree_keeps_files_links_and_modes_and_skips() {
        use std::os::unix::fs::PermissionsExt;
        let t = std::env::temp_dir().join(format!("berth-copy-{}", std::process::id()));
        let (a, b) = (t.join("a"), t.join("b"));
        std::fs::create_dir_all(a.join("bin")).unwrap();
        std::fs::create_dir_all(a.join("proc/1")).unwrap();
        std::fs::write(a.join("bin/busybox"), "elf").unwrap();
        std::fs::set_permissions(a.join("bin/busybox"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("busybox", a.join("bin/sh")).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        copy_tree(&a, &b, &[&a.join("proc")]).unwrap();
        assert_eq!(std::fs::read_to_string(b.join("bin/busybox")).unwrap(), "elf");
        let mode = std::fs::metadata(b.join("bin/busybox"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(
            std::fs::read_link(b.join("bin/sh")).unwrap(),
            Path::new("busybox")
        );
        assert!(!b.join("proc").exists());
        let _ = std::fs::remove_dir_all(&t);
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
