//! spawn/exec against the real kernel (run as root).

mod common;

use std::io::Read;
use std::path::PathBuf;

use berth_runtime::{resolve_user, rootfs, ExecSpec, MountKind, MountSpec, RuntimeError, Stdio};
use common::*;

fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = busybox_rootfs(dir.path());
    (dir, root)
}

#[test]
fn echo_hi() {
    let (_d, root) = setup();
    let (code, out, err) = sh(&root, "echo hi; echo oops >&2; exit 3");
    assert_eq!((code, out.as_str(), err.as_str()), (3, "hi\n", "oops\n"));
}

#[test]
fn sees_only_its_own_processes() {
    let (_d, root) = setup();
    let (code, out, _) = sh(
        &root,
        "echo $$; ls /proc | grep -c '^[0-9]'; ps -o pid,comm; true",
    );
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1", "the shell is pid 1: {out}");
    // sh (pid 1), and ls + grep of the pipeline.
    assert!(lines[1].parse::<u32>().unwrap() <= 3, "{out}");
    assert!(out.contains("1 sh"), "{out}");
    assert!(!out.contains("cargo"), "{out}");
}

#[test]
fn hostname_and_capabilities() {
    let (_d, root) = setup();
    let (code, out, _) = sh(
        &root,
        "hostname; grep -E 'CapEff|CapBnd|CapInh|CapAmb|NoNewPrivs|Seccomp:' /proc/self/status",
    );
    assert_eq!(code, 0);
    assert!(out.starts_with("berthbox\n"), "{out}");
    assert!(out.contains("CapEff:\t00000000a80425fb"), "{out}");
    assert!(out.contains("CapBnd:\t00000000a80425fb"), "{out}");
    assert!(out.contains("CapInh:\t0000000000000000"), "{out}");
    assert!(out.contains("CapAmb:\t0000000000000000"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
}

#[test]
fn mounting_and_unshare_are_refused() {
    let (_d, root) = setup();
    let (code, _, err) = sh(&root, "mkdir -p /mnt; mount -t tmpfs x /mnt");
    assert_ne!(code, 0);
    assert!(err.to_lowercase().contains("permission denied"), "{err}");
    let (code, _, err) = sh(&root, "unshare -n true");
    assert_ne!(code, 0);
    assert!(err.contains("Operation not permitted"), "{err}");
    let (code, _, _) = sh(&root, "unshare -U true");
    assert_ne!(code, 0);
}

#[test]
fn masked_and_readonly_paths() {
    let (_d, root) = setup();
    // /proc/kcore only exists with CONFIG_PROC_KCORE; check every masked
    // file the host has.
    for f in [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/proc/interrupts",
    ] {
        if !std::path::Path::new(f).exists() {
            continue;
        }
        assert!(
            !std::fs::read(f).unwrap().is_empty(),
            "{f} has content on the host"
        );
        let (code, out, _) = sh(&root, &format!("stat -c %s {f}; cat {f} | wc -c"));
        assert_eq!((code, out.as_str()), (0, "0\n0\n"), "{f} is not masked");
    }
    let (code, out, _) = sh(
        &root,
        "ls /sys/firmware | wc -l; \
         echo evil > /proc/sys/kernel/hostname && echo WROTE; \
         echo t > /proc/sysrq-trigger && echo WROTE2; hostname",
    );
    assert_eq!(code, 0);
    assert_eq!(out, "0\nberthbox\n", "{out}");
}

#[test]
fn only_stdio_fds_are_open() {
    let (_d, root) = setup();
    // The listing itself opens one fd (3) for the directory.
    let (code, out, _) = sh(&root, "ls /proc/self/fd | sort");
    assert_eq!(code, 0);
    assert_eq!(out, "0\n1\n2\n3\n", "{out}");
    // The shell's own fds, listed without a pipeline: while a pipeline is
    // being set up the shell briefly holds the pipe's read end itself.
    // (`; true` keeps the shell from exec-ing ls in its own place.)
    let (code, out, _) = sh(&root, "ls /proc/$$/fd; true");
    assert_eq!((code, out.as_str()), (0, "0\n1\n2\n"), "{out}");
}

#[test]
fn dev_and_network() {
    let (_d, root) = setup();
    let (code, out, err) = sh(
        &root,
        "ls /dev | sort | tr '\\n' ' '; echo; readlink /dev/ptmx; echo x > /dev/null && echo null-ok; \
         head -c 4 /dev/zero | wc -c; cat /proc/net/dev | grep -c ':'; grep -c '^[0-9]* [0-9]* [0-9:]* [^ ]* / ' /proc/self/mountinfo",
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    for d in [
        "null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue", "ptmx", "fd", "stdin",
        "stdout", "stderr",
    ] {
        assert!(lines[0].split(' ').any(|x| x == d), "missing /dev/{d}: {out}");
    }
    assert_eq!(&lines[1..], &["pts/ptmx", "null-ok", "4", "1", "1"], "{out}");
}

#[test]
fn user_switch_and_rlimits() {
    let (_d, root) = setup();
    let user = resolve_user(&root, "alice").unwrap();
    assert_eq!(user.uid, 1000);
    let mut s = spec(
        &root,
        &["sh", "-c", "id; grep CapEff /proc/self/status; ulimit -n; pwd"],
    );
    s.user = user;
    s.cwd = "/home/alice/work".into();
    let (code, out, err) = run(&s);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "uid=1000(alice) gid=1000(alice) groups=10(wheel),50(staff)\nCapEff:\t0000000000000000\n1024\n/home/alice/work\n",
        "{out}"
    );
}

#[test]
fn bind_and_tmpfs_mounts() {
    let (d, root) = setup();
    let host_dir = d.path().join("data");
    std::fs::create_dir(&host_dir).unwrap();
    std::fs::write(host_dir.join("f"), "from-host\n").unwrap();
    let hosts = d.path().join("hosts");
    std::fs::write(&hosts, "127.0.0.1 localhost\n").unwrap();
    let mut s = spec(
        &root,
        &[
            "sh",
            "-c",
            "cat /data/f /etc/hosts; echo new > /data/g; echo x > /ro/f || echo ro-refused; \
             echo t > /scratch/t && cat /scratch/t",
        ],
    );
    s.mounts = vec![
        MountSpec {
            source: host_dir.clone(),
            destination: "/data".into(),
            kind: MountKind::Bind,
            readonly: false,
        },
        MountSpec {
            source: hosts,
            destination: "/etc/hosts".into(),
            kind: MountKind::Bind,
            readonly: true,
        },
        MountSpec {
            source: host_dir.clone(),
            destination: "/ro".into(),
            kind: MountKind::Bind,
            readonly: true,
        },
        MountSpec {
            source: PathBuf::new(),
            destination: "/scratch".into(),
            kind: MountKind::Tmpfs,
            readonly: false,
        },
    ];
    let (code, out, err) = run(&s);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "from-host\n127.0.0.1 localhost\nro-refused\nt\n");
    assert_eq!(std::fs::read_to_string(host_dir.join("g")).unwrap(), "new\n");
    // Nothing leaked into the host's mount table.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(root.to_str().unwrap()));
}

#[test]
fn missing_executable_is_a_clear_error() {
    let (_d, root) = setup();
    let err = berth_runtime::spawn(&spec(&root, &["pyhton"]), Stdio::Inherit).unwrap_err();
    assert!(matches!(err, RuntimeError::ExecutableNotFound(_)));
    assert_eq!(
        err.to_string(),
        "executable file 'pyhton' not found in $PATH of the container — check the command or the image's PATH"
    );
    let mut s = spec(&root, &["true"]);
    s.cwd = "/etc/passwd".into();
    let err = berth_runtime::spawn(&s, Stdio::Inherit).unwrap_err();
    assert!(matches!(err, RuntimeError::Cwd { .. }), "{err}");
}

#[test]
fn exec_joins_the_container() {
    let (_d, root) = setup();
    let init = berth_runtime::spawn(&spec(&root, &["sleep", "30"]), Stdio::Inherit).unwrap();
    let (mut r, w) = pipe();
    let e = ExecSpec {
        args: vec![
            "sh".into(),
            "-c".into(),
            "hostname; ps -o pid,comm | grep -c sleep; cat /proc/1/comm; grep CapEff /proc/self/status"
                .into(),
        ],
        env: vec!["PATH=/bin".into()],
        cwd: "/tmp".into(),
        user: Default::default(),
        cgroup_procs: vec![],
        tty: false,
        caps: None,
        seccomp_unconfined: false,
    };
    let (ew_dup, ew) = (w.try_clone().unwrap(), w);
    let pid = berth_runtime::exec(
        init,
        &e,
        Stdio::Fds {
            stdin: None,
            stdout: ew,
            stderr: ew_dup,
        },
    )
    .unwrap();
    let mut out = String::new();
    r.read_to_string(&mut out).unwrap();
    assert_eq!(wait(pid), 0);
    assert_eq!(out, "berthbox\n1\nsleep\nCapEff:\t00000000a80425fb\n", "{out}");
    let missing = ExecSpec {
        args: vec!["nope".into()],
        ..e
    };
    let err = berth_runtime::exec(init, &missing, Stdio::Inherit).unwrap_err();
    assert!(matches!(err, RuntimeError::ExecutableNotFound(_)), "{err}");
    // SAFETY: killing our own child.
    unsafe { libc::kill(init, libc::SIGKILL) };
    assert_eq!(wait(init), 128 + libc::SIGKILL);
    assert!(matches!(
        berth_runtime::exec(init, &missing, Stdio::Inherit),
        Err(RuntimeError::NotRunning(_))
    ));
}

#[test]
fn overlay_merges_layers() {
    let d = tempfile::tempdir().unwrap();
    let (l1, l2, up, work, merged) = (
        d.path().join("l1"),
        d.path().join("l2"),
        d.path().join("up"),
        d.path().join("work"),
        d.path().join("merged"),
    );
    for p in [&l1, &l2, &up, &work, &merged] {
        std::fs::create_dir(p).unwrap();
    }
    std::fs::write(l1.join("a"), "bottom").unwrap();
    std::fs::write(l1.join("b"), "bottom").unwrap();
    std::fs::write(l2.join("b"), "top").unwrap();
    rootfs::mount_overlay(&[l1.clone(), l2.clone()], &up, &work, &merged).unwrap();
    assert_eq!(std::fs::read_to_string(merged.join("a")).unwrap(), "bottom");
    assert_eq!(std::fs::read_to_string(merged.join("b")).unwrap(), "top");
    std::fs::write(merged.join("c"), "new").unwrap();
    rootfs::unmount(&merged).unwrap();
    assert_eq!(std::fs::read_to_string(up.join("c")).unwrap(), "new");
    assert!(!l2.join("c").exists() && !merged.join("a").exists());
    rootfs::unmount(&merged).unwrap();
}

#[test]
fn a_volatile_overlay_is_volatile_and_mounts_again_after_its_unmount() {
    let d = tempfile::tempdir().unwrap();
    let (l1, up, work, merged) = (
        d.path().join("l1"),
        d.path().join("up"),
        d.path().join("work"),
        d.path().join("merged"),
    );
    for p in [&l1, &up, &work, &merged] {
        std::fs::create_dir(p).unwrap();
    }
    std::fs::write(l1.join("a"), "bottom").unwrap();
    for round in 0..2 {
        rootfs::mount_overlay_volatile(std::slice::from_ref(&l1), &up, &work, &merged)
            .unwrap_or_else(|e| panic!("mount {round}: {e}"));
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let line = mounts
            .lines()
            .find(|l| l.contains(&*merged.to_string_lossy()))
            .expect("the overlay is mounted");
        assert!(line.contains("volatile"), "{line}");
        assert_eq!(std::fs::read_to_string(merged.join("a")).unwrap(), "bottom");
        std::fs::write(merged.join(format!("w{round}")), "x").unwrap();
        rootfs::unmount(&merged).unwrap();
    }
    assert!(up.join("w0").exists() && up.join("w1").exists());
}

#[test]
fn overlay_with_many_layers() {
    let d = tempfile::tempdir().unwrap();
    let mut lowers = Vec::new();
    for i in 0..150 {
        let l = d.path().join(format!("layer-with-a-long-name-{i:04}"));
        std::fs::create_dir(&l).unwrap();
        std::fs::write(l.join(format!("f{i}")), "x").unwrap();
        lowers.push(l);
    }
    let (up, work, merged) = (d.path().join("up"), d.path().join("work"), d.path().join("m"));
    for p in [&up, &work, &merged] {
        std::fs::create_dir(p).unwrap();
    }
    rootfs::mount_overlay(&lowers, &up, &work, &merged).unwrap();
    let n = std::fs::read_dir(&merged).unwrap().count();
    rootfs::unmount(&merged).unwrap();
    assert_eq!(n, 150);
}
