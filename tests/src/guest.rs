//! The VM guest payload: `scripts/build-guest.sh` run for the berth binary under test (its
//! cache makes every run after the first quick), and bounded waits for what a VM test runs.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::tools::require;

/// How long building the payload may take (a cold build downloads ~80 MB of packages).
pub const BUILD_LIMIT: Duration = Duration::from_secs(20 * 60);

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The target directory the tests were built in (`$CARGO_TARGET_DIR`, else the one holding
/// this test binary: target/<profile>/deps/<binary>).
pub fn target_dir() -> PathBuf {
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(t);
    }
    let exe = std::env::current_exe().unwrap();
    exe.ancestors()
        .nth(3)
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf()
}

pub fn require_tools() {
    for (bin, pkg) in [
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("apt-get", "apt"),
        ("dpkg-deb", "dpkg"),
        ("depmod", "kmod"),
        ("cpio", "cpio"),
        ("readelf", "binutils"),
        ("strip", "binutils"),
        ("xz", "xz-utils"),
    ] {
        require(bin, pkg);
    }
}

/// Waits for `child` up to `limit`; past it the child's process group is killed and `None`
/// returned.
pub fn wait_limited(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        if start.elapsed() > limit {
            // The child leads its own process group (process_group(0)): its children go too.
            if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            }
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub struct Build {
    pub dir: PathBuf,
    pub stderr: String,
    pub took: Duration,
}

/// Runs `bash scripts/build-guest.sh` with the berth binary under test.
pub fn build_guest() -> Build {
    require_tools();
    let start = Instant::now();
    let out_dir = tempfile::tempdir().unwrap();
    let (out, err) = (out_dir.path().join("stdout"), out_dir.path().join("stderr"));
    let mut child = Command::new("bash")
        .arg(repo_root().join("scripts/build-guest.sh"))
        .env("BERTH_BIN", crate::berth::bin())
        .env("CARGO_TARGET_DIR", target_dir())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .process_group(0)
        .spawn()
        .expect("spawn bash scripts/build-guest.sh");
    let status = wait_limited(&mut child, BUILD_LIMIT);
    let stdout = std::fs::read_to_string(&out).unwrap();
    let stderr = std::fs::read_to_string(&err).unwrap();
    match status {
        None => panic!("build-guest.sh ran over {BUILD_LIMIT:?} and was killed:\n{stderr}"),
        Some(st) if !st.success() => panic!("build-guest.sh failed ({st}):\n{stdout}\n{stderr}"),
        Some(_) => {}
    }
    let last = stdout.lines().last().unwrap_or_default();
    let dir = PathBuf::from(last);
    assert!(
        dir.is_absolute() && dir.is_dir(),
        "the last stdout line of build-guest.sh is not a directory: {last:?}\n{stderr}"
    );
    Build {
        dir,
        stderr,
        took: start.elapsed(),
    }
}

/// The value of the first `key: value` line of manifest.txt.
pub fn manifest(dir: &Path, key: &str) -> String {
    let text = std::fs::read_to_string(dir.join("manifest.txt")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("manifest.txt has no {key}:\n{text}"))
        .to_string()
}
