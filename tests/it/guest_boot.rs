//! The VM guest payload (`scripts/build-guest.sh`) built and booted under QEMU TCG, with the
//! flags documented at the top of that script (the machine manager reproduces them).
//!
//! Every wait has a limit enforced here: a build or a VM that overruns is killed by its
//! process id and the test fails with what it printed (the guest's console log).

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use berth_tests::guest::{build_guest, manifest, wait_limited};
use berth_tests::tools::require;

const FLOOR_LIMIT: Duration = Duration::from_secs(90);
const SELFTEST_LIMIT: Duration = Duration::from_secs(180);

/// What a VM run produced.
struct Boot {
    /// Every line read from link.sock, with the time since QEMU was spawned.
    lines: Vec<(Duration, String)>,
    /// Time from the spawn to QEMU's own exit.
    exited_after: Duration,
    console: String,
}

impl Boot {
    fn link_text(&self) -> String {
        self.lines.iter().map(|(_, l)| format!("{l}\n")).collect()
    }

    fn line_at(&self, prefix: &str) -> Option<Duration> {
        self.lines
            .iter()
            .find(|(_, l)| l.starts_with(prefix))
            .map(|(t, _)| *t)
    }
}

/// Boots `kernel` + `initrd` from `dir` with the reference flags (plus `append` and `extra`),
/// reads link.sock until QEMU exits, all within `limit`.
fn boot(dir: &Path, kernel: &str, initrd: &str, append: &str, extra: &[String], limit: Duration) -> Boot {
    let qemu = require("qemu-system-x86_64", "qemu-system-x86");
    let run = tempfile::Builder::new().prefix("berth-guest-").tempdir().unwrap();
    let sock = run.path().join("link.sock");
    let console = run.path().join("console.log");
    let mut cmdline = String::from("console=ttyS0 panic=-1 quiet");
    if !append.is_empty() {
        cmdline.push(' ');
        cmdline.push_str(append);
    }
    let mut cmd = Command::new(qemu);
    cmd.args([
        "-accel", "tcg", "-machine", "q35", "-cpu", "max", "-smp", "2", "-m", "1024",
    ])
    .args(["-nodefaults", "-no-user-config", "-nographic", "-no-reboot"])
    .arg("-kernel")
    .arg(dir.join(kernel))
    .arg("-initrd")
    .arg(dir.join(initrd))
    .args(["-append", &cmdline])
    .arg("-serial")
    .arg(format!("file:{}", console.display()))
    .args(["-device", "virtio-serial-pci"])
    .arg("-chardev")
    .arg(format!(
        "socket,id=link,path={},server=on,wait=off",
        sock.display()
    ))
    .args(["-device", "virtserialport,chardev=link,name=berth.link"])
    .args(extra)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(run.path().join("qemu.err")).unwrap())
    .process_group(0);
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn qemu-system-x86_64");
    let console_text = || {
        let c = std::fs::read_to_string(&console).unwrap_or_default();
        let e = std::fs::read_to_string(run.path().join("qemu.err")).unwrap_or_default();
        format!("--- console.log\n{c}\n--- qemu stderr\n{e}")
    };

    // The reader: connects as soon as QEMU listens, sends each line with its time.
    let (tx, rx) = mpsc::channel::<(Duration, String)>();
    let reader_sock = sock.clone();
    std::thread::spawn(move || {
        let mut stream = loop {
            match UnixStream::connect(&reader_sock) {
                Ok(s) => break s,
                Err(_) if start.elapsed() < limit => std::thread::sleep(Duration::from_millis(5)),
                Err(_) => return,
            }
        };
        let mut pending = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            pending.extend_from_slice(&buf[..n]);
            while let Some(i) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=i).collect();
                let line = String::from_utf8_lossy(&line).trim_end().to_string();
                if tx.send((start.elapsed(), line)).is_err() {
                    return;
                }
            }
        }
    });

    let status = wait_limited(&mut child, limit);
    let exited_after = start.elapsed();
    // QEMU closed the socket on exit; give the reader a moment for what it still holds.
    let mut lines = Vec::new();
    while let Ok(l) = rx.recv_timeout(Duration::from_millis(500)) {
        lines.push(l);
    }
    let b = Boot {
        lines,
        exited_after,
        console: console_text(),
    };
    match status {
        None => panic!(
            "the guest did not power off within {limit:?}; QEMU was killed.\n--- link.sock\n{}{}",
            b.link_text(),
            b.console
        ),
        Some(st) if !st.success() => panic!(
            "QEMU exited with {st}\n--- link.sock\n{}{}",
            b.link_text(),
            b.console
        ),
        Some(_) => b,
    }
}

fn mtime(p: &Path) -> SystemTime {
    std::fs::metadata(p).unwrap().modified().unwrap()
}

#[test]
fn build_guest_is_cached() {
    let first = build_guest();
    for f in ["vmlinuz", "vmlinux", "initrd.img", "floor.img", "manifest.txt"] {
        let p = first.dir.join(f);
        assert!(
            p.is_file() && std::fs::metadata(&p).unwrap().len() > 0,
            "{} is missing or empty",
            p.display()
        );
    }
    let initrd = first.dir.join("initrd.img");
    let built_at = mtime(&initrd);
    let berth_sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(
            std::fs::read(berth_tests::berth::bin()).unwrap(),
        ))
    };
    assert_eq!(
        manifest(&first.dir, "berth_sha256"),
        berth_sha,
        "the manifest names the berth given"
    );

    let second = build_guest();
    eprintln!(
        "build-guest.sh: first run {:.1?}, second run {:.1?}",
        first.took, second.took
    );
    assert_eq!(first.dir, second.dir, "the same inputs give the same directory");
    assert_eq!(mtime(&initrd), built_at, "the second run rebuilt initrd.img");
    assert!(
        second.stderr.contains("cached:"),
        "the second run did not report a cache hit:\n{}",
        second.stderr
    );
}

#[test]
fn floor_boots_to_ready_under_tcg() {
    let guest = build_guest();
    // vmlinux (PVH) is what the machine manager boots; vmlinuz is checked to boot as well.
    for kernel in ["vmlinux", "vmlinuz"] {
        let b = boot(&guest.dir, kernel, "floor.img", "", &[], FLOOR_LIMIT);
        let ready = b.line_at("BERTH-GUEST READY floor").unwrap_or_else(|| {
            panic!(
                "no ready line on link.sock ({kernel}).\n--- link.sock\n{}{}",
                b.link_text(),
                b.console
            )
        });
        eprintln!(
            "floor.img with {kernel}: ready after {:.2?}, QEMU exited after {:.2?}",
            ready, b.exited_after
        );
    }
}

#[test]
fn full_guest_selftest_under_tcg() {
    let guest = build_guest();
    let kver = manifest(&guest.dir, "kernel");
    // The optional devices the selftest checks when present: a data disk, a user-mode
    // network, a 9p share.
    let scratch = tempfile::tempdir().unwrap();
    let disk = scratch.path().join("data.img");
    std::fs::File::create(&disk).unwrap().set_len(64 << 20).unwrap();
    let share = scratch.path().join("share");
    std::fs::create_dir(&share).unwrap();
    std::fs::write(share.join("hello-from-the-host"), "hi\n").unwrap();
    let extra: Vec<String> = [
        "-drive",
        &format!("file={},format=raw,if=none,id=data", disk.display()),
        "-device",
        "virtio-blk-pci,drive=data",
        "-netdev",
        "user,id=net",
        "-device",
        "virtio-net-pci,netdev=net",
        "-virtfs",
        &format!(
            "local,path={},mount_tag=berth-share,security_model=none,id=share",
            share.display()
        ),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();

    let b = boot(
        &guest.dir,
        "vmlinux",
        "initrd.img",
        "rdinit=/selftest",
        &extra,
        SELFTEST_LIMIT,
    );
    let link = b.link_text();
    let ok = b.line_at("BERTH-GUEST SELFTEST OK");
    assert!(
        ok.is_some(),
        "the selftest did not pass.\n--- link.sock\n{link}{}",
        b.console
    );
    eprintln!(
        "selftest: OK after {:.2?}, QEMU exited after {:.2?}",
        ok.unwrap(),
        b.exited_after
    );
    for probe in [
        "$ /usr/bin/berth --version",
        "$ nft -f /tmp/nat.nft",
        "masquerade",
        "dnat to 172.30.0.2:80",
        "$ mkfs.ext4 -q -F /dev/vda",
        "lease of 10.0.2.15 obtained",
        "hello-from-the-host",
    ] {
        assert!(
            link.contains(probe),
            "the selftest report lacks {probe:?}:\n{link}"
        );
    }
    // The guest's own kernel ran, not the host's.
    let host = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let host = host.trim();
    assert!(
        b.console.contains(&format!("guest kernel: {kver}")),
        "the console log does not show the guest kernel {kver}:\n{}",
        b.console
    );
    eprintln!("guest kernel {kver}, host kernel {host}");
    if kver != host {
        assert!(
            !b.console.contains(&format!("guest kernel: {host}")),
            "the console shows the host's kernel {host}"
        );
    }
}
