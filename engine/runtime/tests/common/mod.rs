//! Helpers shared by the integration tests (they run as root on a real kernel).
#![allow(dead_code)]

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use berth_runtime::{ContainerSpec, NetNs, Stdio, User};

pub const APPLETS: &[&str] = &[
    "sh", "cat", "ls", "sleep", "id", "hostname", "mount", "ps", "grep", "echo", "unshare", "true", "false",
    "wc", "stat", "head", "touch", "mkdir", "env", "pwd", "readlink", "umount",
];

/// A rootfs with a static busybox and applet symlinks in /bin.
pub fn busybox_rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    std::fs::copy("/usr/bin/busybox", root.join("bin/busybox")).unwrap();
    for a in APPLETS {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).unwrap();
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        root.join("etc/group"),
        "root:x:0:root\nwheel:x:10:root,alice\nalice:x:1000:\nstaff:x:50:alice\n",
    )
    .unwrap();
    root
}

pub fn spec(rootfs: &Path, args: &[&str]) -> ContainerSpec {
    ContainerSpec {
        id: "test".into(),
        rootfs: rootfs.to_path_buf(),
        args: args.iter().map(|s| s.to_string()).collect(),
        env: vec!["PATH=/usr/local/bin:/usr/bin:/bin".into(), "HOME=/root".into()],
        cwd: "/".into(),
        user: User::default(),
        hostname: "berthbox".into(),
        mounts: vec![],
        netns: NetNs::New,
        pidns: Default::default(),
        utsns: Default::default(),
        ipcns: Default::default(),
        caps: None,
        shm_size: None,
        readonly_rootfs: false,
        sysctls: Vec::new(),
        propagation: Vec::new(),
        seccomp_unconfined: false,
        systempaths_unconfined: false,
        cgroup_procs: vec![],
        tty: false,
        stdin: false,
        rlimits: vec![("nofile".into(), 1024, 4096)],
        cgroup_mounts: Vec::new(),
    }
}

pub fn pipe() -> (std::fs::File, OwnedFd) {
    let (r, w) = rustix_pipe();
    (std::fs::File::from(r), w)
}

fn rustix_pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fresh fds.
    unsafe {
        assert_eq!(libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC), 0);
        use std::os::fd::FromRawFd;
        (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
    }
}

pub fn wait(pid: i32) -> i32 {
    berth_host::process::wait_child(pid)
        .expect("a child of the test")
        .code()
}

/// Runs the spec with stdout+stderr captured; returns (exit code, stdout, stderr).
pub fn run(spec: &ContainerSpec) -> (i32, String, String) {
    let (mut out_r, out_w) = pipe();
    let (mut err_r, err_w) = pipe();
    let pid = berth_runtime::spawn(
        spec,
        Stdio::Fds {
            stdin: None,
            stdout: out_w,
            stderr: err_w,
        },
    )
    .unwrap();
    let t = std::thread::spawn(move || {
        let mut s = String::new();
        err_r.read_to_string(&mut s).unwrap();
        s
    });
    let mut out = String::new();
    out_r.read_to_string(&mut out).unwrap();
    let err = t.join().unwrap();
    (wait(pid), out, err)
}

pub fn sh(rootfs: &Path, script: &str) -> (i32, String, String) {
    run(&spec(rootfs, &["sh", "-c", script]))
}
