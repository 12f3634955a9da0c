//! The shim against the real kernel (run as root).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_runtime::logs::{self, LogOptions, Stream};
use berth_runtime::shim::{self, ShimConfig};
use berth_runtime::{MountKind, MountSpec, RuntimeError};
use common::*;

const SHIM: &str = env!("CARGO_BIN_EXE_berth-shim");

fn config(dir: &Path, root: &Path, script: &str) -> ShimConfig {
    let state = dir.join("state");
    ShimConfig {
        state_dir: state.clone(),
        spec: spec(root, &["sh", "-c", script]),
        log_path: state.join("container.log"),
        log_max_size: 0,
        log_max_files: 1,
        stdin_open: false,
    }
}

fn wait_exit(state: &Path) -> shim::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(e) = shim::read_exit(state).unwrap() {
            return e;
        }
        assert!(Instant::now() < deadline, "no exit.json");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn start(cfg: &ShimConfig) -> shim::ShimState {
    shim::start_shim(Path::new(SHIM), &[cfg.state_dir.to_str().unwrap()], cfg, vec![]).unwrap()
}

#[test]
fn logs_and_exit_code() {
    let d = tempfile::tempdir().unwrap();
    let root = busybox_rootfs(d.path());
    let cfg = config(
        d.path(),
        &root,
        "echo hello; echo oops >&2; printf partial; exit 3",
    );
    let st = start(&cfg);
    assert!(st.container_pid > 0 && st.shim_pid > 0);
    let exit = wait_exit(&cfg.state_dir);
    assert_eq!(exit.exit_code, 3);
    assert_eq!(exit.signal, None);
    assert!(!shim::is_alive(st.container_pid, &st.started_at));

    let raw = std::fs::read_to_string(&cfg.log_path).unwrap();
    let lines: Vec<serde_json::Value> = raw.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3, "{raw}");
    let find = |log: &str| {
        lines
            .iter()
            .find(|v| v["log"] == log)
            .unwrap_or_else(|| panic!("{log}: {raw}"))
    };
    assert_eq!(find("hello\n")["stream"], "stdout");
    assert_eq!(find("oops\n")["stream"], "stderr");
    assert_eq!(find("partial")["stream"], "stdout");
    let t = find("hello\n")["time"].as_str().unwrap().to_string();
    assert_eq!(t.len(), "2026-11-26T11:00:00.123456789Z".len(), "{t}");
    assert!(t.ends_with('Z') && logs::parse_time(&t).is_some());

    let mut got = Vec::new();
    logs::read(
        &cfg.log_path,
        LogOptions {
            timestamps: true,
            ..Default::default()
        },
        |l| {
            got.push(l);
            true
        },
    )
    .unwrap();
    assert_eq!(got.len(), 3);
    assert!(got
        .iter()
        .any(|l| l.stream == Stream::Stderr && l.log.ends_with(" oops\n")));
}

#[test]
fn start_error_is_reported() {
    let d = tempfile::tempdir().unwrap();
    let root = busybox_rootfs(d.path());
    let mut cfg = config(d.path(), &root, "");
    cfg.spec.args = vec!["pyhton".into()];
    let err =
        shim::start_shim(Path::new(SHIM), &[cfg.state_dir.to_str().unwrap()], &cfg, vec![]).unwrap_err();
    assert!(matches!(err, RuntimeError::ShimStart(_)));
    assert!(
        err.to_string()
            .contains("executable file 'pyhton' not found in $PATH"),
        "{err}"
    );
}

#[test]
fn survives_the_death_of_its_starter() {
    let d = tempfile::tempdir().unwrap();
    let root = busybox_rootfs(d.path());
    let ctl = d.path().join("ctl");
    std::fs::create_dir(&ctl).unwrap();
    let mut cfg = config(
        d.path(),
        &root,
        "echo up; while [ ! -e /ctl/go ]; do sleep 0.05; done; echo done; exit 3",
    );
    cfg.spec.mounts.push(MountSpec {
        source: ctl.clone(),
        destination: "/ctl".into(),
        kind: MountKind::Bind,
        readonly: false,
    });
    std::fs::create_dir_all(&cfg.state_dir).unwrap();
    std::fs::write(cfg.state_dir.join("shim.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
    // The starter is a separate process that launches the shim and lingers.
    let mut starter = std::process::Command::new("/bin/sh")
        .args([
            "-c",
            "\"$0\" \"$1\"; exec sleep 1000",
            SHIM,
            cfg.state_dir.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let st = loop {
        if let Some(s) = shim::read_state(&cfg.state_dir).unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    };
    starter.kill().unwrap(); // SIGKILL
    starter.wait().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(shim::is_alive(st.container_pid, &st.started_at));
    assert!(Path::new(&format!("/proc/{}", st.shim_pid)).exists());
    assert_eq!(shim::read_exit(&cfg.state_dir).unwrap(), None);
    std::fs::write(ctl.join("go"), "").unwrap();
    assert_eq!(wait_exit(&cfg.state_dir).exit_code, 3);
    let log = std::fs::read_to_string(&cfg.log_path).unwrap();
    assert!(
        log.contains("\"log\":\"up\\n\"") && log.contains("\"log\":\"done\\n\""),
        "{log}"
    );
}

#[test]
fn killed_container_and_rotation() {
    let d = tempfile::tempdir().unwrap();
    let root = busybox_rootfs(d.path());
    let mut cfg = config(
        d.path(),
        &root,
        "i=0; while [ $i -lt 300 ]; do echo line $i; i=$((i+1)); done; touch /tmp/done; sleep 100",
    );
    cfg.log_max_size = 2000;
    cfg.log_max_files = 3;
    let st = start(&cfg);
    let done = root.join("tmp/done");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done.exists() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    // (init of a pid namespace cannot SIGKILL itself; the host can.)
    // SAFETY: killing the container we started.
    unsafe { libc::kill(st.container_pid, libc::SIGKILL) };
    let exit = wait_exit(&cfg.state_dir);
    assert_eq!((exit.exit_code, exit.signal), (137, Some(9)));
    let files: Vec<PathBuf> = std::fs::read_dir(&cfg.state_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("container.log")
        })
        .collect();
    assert_eq!(files.len(), 3, "{files:?}");
    for f in &files {
        assert!(std::fs::metadata(f).unwrap().len() <= 2000);
    }
    let mut got = Vec::new();
    logs::read(&cfg.log_path, LogOptions::default(), |l| {
        got.push(l.log);
        true
    })
    .unwrap();
    assert_eq!(got.last().unwrap(), "line 299\n");
    let n: Vec<u32> = got.iter().map(|l| l.trim()[5..].parse().unwrap()).collect();
    assert!(n.windows(2).all(|w| w[1] == w[0] + 1));
    let mut tail = Vec::new();
    logs::read(
        &cfg.log_path,
        LogOptions {
            tail: Some(1),
            ..Default::default()
        },
        |l| {
            tail.push(l.log);
            true
        },
    )
    .unwrap();
    assert_eq!(tail, vec!["line 299\n"]);
}

#[test]
fn follow_and_tty() {
    let d = tempfile::tempdir().unwrap();
    let root = busybox_rootfs(d.path());
    let mut cfg = config(
        d.path(),
        &root,
        "for i in 1 2 3 4 5; do echo tick $i; sleep 0.1; done; [ -t 1 ] && echo is-a-tty",
    );
    cfg.spec.tty = true;
    start(&cfg);
    let mut got = Vec::new();
    logs::read(
        &cfg.log_path,
        LogOptions {
            follow: true,
            ..Default::default()
        },
        |l| {
            got.push(l.log);
            true
        },
    )
    .unwrap();
    assert_eq!(got.len(), 6, "{got:?}");
    assert_eq!(got[0], "tick 1\r\n");
    assert_eq!(got[5], "is-a-tty\r\n");
    assert_eq!(wait_exit(&cfg.state_dir).exit_code, 0);
}
