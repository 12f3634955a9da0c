//! The QEMU command line of a machine. Pure: tested without QEMU.

use std::path::{Path, PathBuf};

use berth_units::HostPaths;

use crate::accel::Accel;
use crate::config::{MachineConfig, Paths};
use crate::virtiofs::SharesFs;

/// The virtio-serial port's name (the guest finds its link by it).
pub const PORT_NAME: &str = "berth.link";

/// The host folders a machine shares at the same paths: the user's home and the system's
/// temp directory (a folder inside another shared one is not shared twice; one that does
/// not exist is left out; QEMU's option syntax takes no commas in a path).
pub fn shares(home: Option<&Path>, temp: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for d in home.into_iter().chain([temp]) {
        let Ok(d) = std::fs::canonicalize(d) else { continue };
        if d == Path::new("/") || d.to_string_lossy().contains(',') {
            continue;
        }
        if out.iter().any(|o| d.starts_with(o)) {
            continue;
        }
        out.retain(|o| !o.starts_with(&d));
        out.push(d);
    }
    out
}

/// The QEMU binary for this host's architecture.
pub fn binary() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "qemu-system-aarch64"
    } else {
        "qemu-system-x86_64"
    }
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

/// How this host's clients spell paths ([`HostPaths::Windows`] on Windows: the guest
/// engine then translates `C:\Users\…` binds, and shares appear under `/mnt/c/…`).
pub fn host_paths() -> HostPaths {
    if cfg!(windows) {
        HostPaths::Windows
    } else {
        HostPaths::Native
    }
}

/// Where the guest mounts a share of the host's `dir`: the same path, or on Windows the
/// path a `C:\…` bind resolves to.
fn guest_path(dir: &Path, host: HostPaths) -> Option<String> {
    host.resolve(dir.to_str()?).ok()
}

/// QEMU's arguments (without the binary) for `cfg` under `accel`.
///
/// - No firmware menu, no default devices, no display: a kernel, an initramfs and virtio.
/// - The console goes to a file (`berth machine logs`), the link to a unix socket QEMU
///   listens on (`server=on,wait=off`: QEMU boots without waiting, and a relay that starts
///   again can connect again).
/// - The data disk is raw and sparse; `discard=unmap` lets the guest's fstrim shrink it.
/// - Networking is QEMU's user mode (slirp): outbound only, nothing listens on the host.
/// - A balloon with free-page reporting gives the guest's free memory back to the host.
///
/// `host`: how the host spells paths ([`host_paths`]; a parameter so tests can ask for
/// Windows' command line here). `fs`: 9p, or virtiofs through the given vhost-user sockets
/// (one per share; the guest's memory is then a shared memfd, which virtiofsd maps).
pub fn args(
    cfg: &MachineConfig,
    paths: &Paths,
    accel: Accel,
    shares: &[PathBuf],
    host: HostPaths,
    fs: &SharesFs,
) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let mut push = |xs: &[&str]| a.extend(xs.iter().map(|s| s.to_string()));
    push(&["-name", &format!("berth-{}", cfg.name)]);
    push(&["-accel", accel.name(), "-cpu", accel.cpu()]);
    push(&["-machine", "q35"]);
    push(&["-smp", &cfg.cpus.to_string(), "-m", &format!("{}M", cfg.memory)]);
    push(&["-nodefaults", "-no-user-config", "-nographic", "-no-reboot"]);
    // The uncompressed kernel when the payload has it: the guest then skips unpacking
    // itself, about 2.6 s under TCG (scripts/build-guest.sh's measurements).
    let kernel = ["vmlinux", "vmlinuz"]
        .iter()
        .map(|k| cfg.guest.join(k))
        .find(|k| k.is_file())
        .unwrap_or_else(|| cfg.guest.join("vmlinuz"));
    push(&["-kernel", &p(&kernel)]);
    push(&["-initrd", &p(&cfg.guest.join("initrd.img"))]);
    let mut append = "console=ttyS0 panic=-1 quiet".to_string();
    if host == HostPaths::Windows {
        append.push_str(" berth.hostos=windows");
    }
    if matches!(fs, SharesFs::Virtiofs { .. }) {
        append.push_str(" berth.sharefs=virtiofs");
    }
    let shares: Vec<(&PathBuf, String)> = shares
        .iter()
        .filter_map(|d| Some((d, guest_path(d, host)?)))
        .collect();
    for (i, (_, guest)) in shares.iter().enumerate() {
        append.push_str(&format!(
            " berth.share=share{i}:{}",
            berth_link::paths::encode(Path::new(guest))
        ));
    }
    push(&["-append", &append]);
    if let SharesFs::Virtiofs { sockets } = fs {
        push(&[
            "-object",
            &format!("memory-backend-memfd,id=mem,size={}M,share=on", cfg.memory),
            "-numa",
            "node,memdev=mem",
        ]);
        for (i, sock) in sockets.iter().enumerate().take(shares.len()) {
            push(&["-chardev", &format!("socket,id=vfs{i},path={}", p(sock))]);
            // The queue's size as libvirt and podman machine give it.
            push(&[
                "-device",
                &format!("vhost-user-fs-pci,chardev=vfs{i},tag=share{i},queue-size=1024"),
            ]);
        }
    }
    for (i, (dir, _)) in shares.iter().enumerate() {
        if matches!(fs, SharesFs::Virtiofs { .. }) {
            break;
        }
        // Root's QEMU keeps owners as they are; a user's records them in xattrs.
        let model = if nix::unistd::geteuid().is_root() {
            "passthrough"
        } else {
            "mapped-xattr"
        };
        push(&[
            "-virtfs",
            &format!(
                "local,path={},mount_tag=share{i},security_model={model},multidevs=remap",
                p(dir)
            ),
        ]);
    }
    push(&["-serial", &format!("file:{}", p(&paths.console()))]);
    push(&[
        "-drive",
        &format!(
            "file={},format=raw,if=virtio,discard=unmap,detect-zeroes=unmap",
            p(&paths.disk())
        ),
    ]);
    // `romfile=`: no iPXE option ROM (the guest boots its kernel directly).
    push(&[
        "-netdev",
        "user,id=net0",
        "-device",
        "virtio-net-pci,netdev=net0,romfile=",
    ]);
    push(&["-device", "virtio-serial-pci"]);
    push(&[
        "-chardev",
        &format!("socket,id=link,path={},server=on,wait=off", p(&paths.link())),
    ]);
    push(&[
        "-device",
        &format!("virtserialport,chardev=link,name={PORT_NAME}"),
    ]);
    push(&["-device", "virtio-balloon-pci,free-page-reporting=on"]);
    push(&["-pidfile", &p(&paths.qemu_pid())]);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> MachineConfig {
        MachineConfig {
            name: "default".into(),
            cpus: 3,
            memory: 1536,
            disk_size: 20,
            guest: "/g".into(),
            created: String::new(),
        }
    }

    fn after<'a>(a: &'a [String], flag: &str) -> Vec<&'a str> {
        a.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .collect()
    }

    #[test]
    fn shares_are_home_and_temp_without_nesting() {
        let t = tempfile::tempdir().unwrap();
        let home = t.path().join("home");
        let inner = home.join("tmp");
        std::fs::create_dir_all(&inner).unwrap();
        let home = std::fs::canonicalize(home).unwrap();
        let inner = std::fs::canonicalize(inner).unwrap();
        assert_eq!(shares(Some(&home), &inner), vec![home.clone()]);
        assert_eq!(shares(Some(&inner), &home), vec![home.clone()]);
        assert_eq!(shares(None, &inner), vec![inner.clone()]);
        assert_eq!(shares(Some(Path::new("/nonexistent-home")), &inner), [inner]);
        assert!(shares(Some(Path::new("/")), Path::new("/")).is_empty());
    }

    #[test]
    fn the_command_line_names_every_part() {
        let paths = Paths::new(Path::new("/m"), "default");
        let a = args(
            &cfg(),
            &paths,
            Accel::Tcg,
            &[PathBuf::from("/home/ann")],
            HostPaths::Native,
            &SharesFs::NineP,
        );
        assert_eq!(after(&a, "-accel"), ["tcg"]);
        assert_eq!(after(&a, "-cpu"), ["max"]);
        assert_eq!(after(&a, "-smp"), ["3"]);
        assert_eq!(after(&a, "-m"), ["1536M"]);
        assert_eq!(after(&a, "-kernel"), ["/g/vmlinuz"]);
        assert_eq!(after(&a, "-initrd"), ["/g/initrd.img"]);
        assert_eq!(after(&a, "-serial"), ["file:/m/default/console.log"]);
        assert_eq!(
            after(&a, "-chardev"),
            ["socket,id=link,path=/m/default/link.sock,server=on,wait=off"]
        );
        assert!(
            after(&a, "-drive")[0].starts_with("file=/m/default/disk.raw,format=raw,if=virtio,discard=unmap")
        );
        assert!(after(&a, "-device").contains(&"virtserialport,chardev=link,name=berth.link"));
        assert!(a.iter().any(|x| x == "-nodefaults"));
        // No host port is forwarded: slirp without hostfwd.
        assert!(!a.iter().any(|x| x.contains("hostfwd")));
        assert!(after(&a, "-append")[0].ends_with(" berth.share=share0:2f686f6d652f616e6e"));
        assert!(after(&a, "-virtfs")[0].starts_with("local,path=/home/ann,mount_tag=share0,security_model="));
        let kvm = args(
            &cfg(),
            &paths,
            Accel::Kvm,
            &[],
            HostPaths::Native,
            &SharesFs::NineP,
        );
        assert!(!kvm.iter().any(|x| x == "-virtfs"));
        assert_eq!(after(&kvm, "-accel"), ["kvm"]);
        assert_eq!(after(&kvm, "-cpu"), ["host"]);
    }

    #[test]
    fn on_windows_a_share_appears_where_its_drive_paths_resolve() {
        // What canonicalize gives on Windows for the home and the temp folder.
        let home = PathBuf::from(r"\\?\C:\Users\me");
        let temp = PathBuf::from(r"\\?\C:\Users\me\AppData\Local\Temp");
        let paths = Paths::new(Path::new("/m"), "default");
        let a = args(
            &cfg(),
            &paths,
            Accel::Tcg,
            &[home, temp],
            HostPaths::Windows,
            &SharesFs::NineP,
        );
        let append = &after(&a, "-append")[0];
        assert!(append.contains(" berth.hostos=windows"), "{append}");
        let guest: Vec<String> = append
            .split(' ')
            .filter_map(|w| w.strip_prefix("berth.share="))
            .map(|v| {
                let hex = v.split_once(':').unwrap().1;
                String::from_utf8(hex::decode(hex).unwrap()).unwrap()
            })
            .collect();
        assert_eq!(guest, ["/mnt/c/Users/me", "/mnt/c/Users/me/AppData/Local/Temp"]);
        // QEMU shares the Windows folder itself.
        assert!(after(&a, "-virtfs")[0].starts_with(r"local,path=\\?\C:\Users\me,mount_tag=share0,"));
        // A bind the lectures write on Windows names the same place.
        assert_eq!(
            HostPaths::Windows.resolve(r"C:\Users\me\flask-app").unwrap(),
            "/mnt/c/Users/me/flask-app"
        );
        assert!(!after(
            &args(
                &cfg(),
                &paths,
                Accel::Tcg,
                &[],
                HostPaths::Native,
                &SharesFs::NineP
            ),
            "-append"
        )[0]
        .contains("hostos"));
    }

    #[test]
    fn with_virtiofsd_the_shares_are_virtiofs_on_shared_memory() {
        let paths = Paths::new(Path::new("/m"), "default");
        let fs = SharesFs::Virtiofs {
            sockets: vec![PathBuf::from("/m/default/virtiofs0.sock")],
        };
        let a = args(
            &cfg(),
            &paths,
            Accel::Tcg,
            &[PathBuf::from("/home/ann")],
            HostPaths::Native,
            &fs,
        );
        assert_eq!(
            after(&a, "-object"),
            ["memory-backend-memfd,id=mem,size=1536M,share=on"]
        );
        assert_eq!(after(&a, "-numa"), ["node,memdev=mem"]);
        assert!(after(&a, "-chardev").contains(&"socket,id=vfs0,path=/m/default/virtiofs0.sock"));
        assert!(after(&a, "-device").contains(&"vhost-user-fs-pci,chardev=vfs0,tag=share0,queue-size=1024"));
        assert!(after(&a, "-virtfs").is_empty(), "no 9p beside virtiofs");
        let append = &after(&a, "-append")[0];
        assert!(
            append.contains(" berth.sharefs=virtiofs")
                && append.contains(" berth.share=share0:2f686f6d652f616e6e")
        );
    }
}
