//! Containers on the real kernel: the lecture flow with a Flask image, isolation seen from
//! inside, limits, survival of the engine, leaks, and bad input.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use berth_tests::berth::Berth;
use berth_tests::fixtures;
use berth_tests::registry::{Mode, Registry};

/// A store with `busybox` (and optionally `flask`) pulled from a loopback registry.
fn setup(with_flask: bool) -> (Registry, Berth) {
    let reg = Registry::start(Mode::Plain);
    let b = Berth::new();
    reg.push_fixture(&fixtures::image("busybox"), "library/busybox:latest");
    b.ok(&["pull", "-q", &reg.reference("library/busybox")]);
    b.ok(&["tag", &reg.reference("library/busybox"), "busybox"]);
    if with_flask {
        let dir = fixtures::ensure_big().join("flask");
        reg.push_fixture(&dir, "lecture/flask-app:latest");
    }
    (reg, b)
}

/// Runs `f` until its trimmed output is `want` (at most 5 s); returns the last output.
fn poll_output(want: &str, f: impl Fn() -> String) -> String {
    let mut got = String::new();
    for _ in 0..50 {
        got = f();
        if got.trim() == want {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    got
}

fn run_out(b: &Berth, args: &[&str]) -> String {
    let mut full = vec!["run", "--rm"];
    full.extend_from_slice(args);
    b.ok(&full)
}

#[test]
fn lecture_flow_with_flask() {
    let (reg, b) = setup(true);
    let image = reg.reference("lecture/flask-app");
    b.ok(&["pull", &image]);
    let port = berth_tests::free_port();
    let id = b.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &format!("{port}:5000"),
        &image,
    ]);
    assert_eq!(id.trim().len(), 64, "run -d prints the full ID: {id}");
    let page = berth_tests::http::wait_for_200(port, Duration::from_secs(30));
    assert!(page.contains("Hello from Flask"), "{page}");

    let ps = b.ok(&["ps"]);
    assert!(ps.lines().next().unwrap().starts_with("CONTAINER ID"), "{ps}");
    let row = ps.lines().find(|l| l.contains("web")).expect(&ps);
    assert!(row.contains("Up "), "{row}");
    assert!(row.contains(&format!("0.0.0.0:{port}->5000/tcp")), "{row}");

    // Flask's start lines (on stderr, as the werkzeug server logs).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = b.run(&["logs", "web"]);
        let all = format!("{}{}", r.stdout, r.stderr);
        if all.contains("Running on") || all.contains("Serving Flask app") {
            break;
        }
        assert!(Instant::now() < deadline, "no Flask start lines in logs: {all}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = b.ok(&[
        "exec",
        "web",
        "python3",
        "-c",
        "import flask, os; print('inside', os.getpid() > 0)",
    ]);
    assert_eq!(out.trim(), "inside True");
    let inspect = b.ok(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.Running}}",
        "web",
    ]);
    assert_eq!(inspect.trim(), "running true");

    b.ok(&["stop", "-t", "2", "web"]);
    let ps_a = b.ok(&["ps", "-a"]);
    assert!(
        ps_a.lines().any(|l| l.contains("web") && l.contains("Exited (")),
        "{ps_a}"
    );
    assert!(
        berth_tests::http::get_page(port).is_none(),
        "the port is closed once the container stopped"
    );
    b.ok(&["rm", "web"]);
    assert!(!b.ok(&["ps", "-a"]).contains("web"));
}

#[test]
fn isolation_seen_from_inside() {
    let (_reg, b) = setup(false);
    // Only the container's own processes.
    let ps = run_out(&b, &["busybox", "ps", "-o", "pid,comm"]);
    let pids: Vec<&str> = ps.lines().skip(1).collect();
    assert!(pids.len() <= 2, "sees only itself: {ps}");
    assert!(pids[0].trim().starts_with('1'), "{ps}");
    // docker's default capabilities.
    let status = run_out(&b, &["busybox", "cat", "/proc/self/status"]);
    assert!(status.contains("CapEff:\t00000000a80425fb"), "{status}");
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    assert!(status.contains("Seccomp:\t2"), "{status}");
    // Hostname.
    assert_eq!(
        run_out(&b, &["--hostname", "lecture", "busybox", "hostname"]).trim(),
        "lecture"
    );
    // No mounting, /proc/kcore masked, /proc/sys read-only, unshare blocked.
    let r = b.run(&["run", "--rm", "busybox", "mount", "-t", "tmpfs", "x", "/mnt"]);
    assert_ne!(r.code, 0, "mount must fail: {}", r.stdout);
    // runc's masked paths: files with content on the host read as empty inside (this VM
    // has no /proc/kcore, so /proc/timer_list and /proc/keys stand in for it).
    for masked in ["/proc/timer_list", "/proc/keys"] {
        assert!(std::fs::metadata(masked).is_ok(), "{masked} exists on the host");
        let n = run_out(&b, &["busybox", "sh", "-c", &format!("cat {masked} | wc -c")]);
        assert_eq!(n.trim(), "0", "{masked} is masked");
    }
    let r = b.run(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo x > /proc/sys/kernel/hostname",
    ]);
    assert_ne!(r.code, 0, "/proc/sys is read-only");
    let r = b.run(&["run", "--rm", "busybox", "unshare", "-n", "true"]);
    assert_ne!(r.code, 0, "unshare is blocked by seccomp");
    // Only stdio is open.
    let fds = run_out(&b, &["busybox", "ls", "/proc/self/fd"]);
    let fds: Vec<&str> = fds.split_whitespace().collect();
    assert!(fds.len() <= 4, "no engine fds leak into the container: {fds:?}");
    // Exit codes come back like docker's.
    assert_eq!(b.run(&["run", "--rm", "busybox", "sh", "-c", "exit 3"]).code, 3);
}

#[test]
fn memory_and_pids_limits() {
    let (_reg, b) = setup(false);
    // Inside, /sys/fs/cgroup shows the container's own group (read-only), as under docker.
    let seen = run_out(
        &b,
        &[
            "--memory",
            "48m",
            "busybox",
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; \
             mkdir /sys/fs/cgroup/x 2>/dev/null && echo writable || echo read-only",
        ],
    );
    assert_eq!(seen, "50331648\nread-only\n");
    // A memory hog under 32m ends with 137 and OOMKilled.
    let hog = b.run(&[
        "run",
        "--name",
        "hog2",
        "--memory",
        "32m",
        "busybox",
        "sh",
        "-c",
        "x=a; while :; do x=$x$x$x$x; done",
    ]);
    assert_eq!(hog.code, 137, "OOM-killed: {} {}", hog.stdout, hog.stderr);
    let state = b.ok(&[
        "inspect",
        "--format",
        "{{.State.OOMKilled}} {{.State.ExitCode}}",
        "hog2",
    ]);
    assert_eq!(state.trim(), "true 137");
    let ps = b.ok(&["ps", "-a"]);
    assert!(
        ps.lines()
            .any(|l| l.contains("hog2") && l.contains("Exited (137)")),
        "{ps}"
    );
    // `stats`: a busy container under a limit, docker's columns.
    let busy = b.ok(&[
        "run",
        "-d",
        "--memory",
        "64m",
        "busybox",
        "sh",
        "-c",
        "while :; do :; done",
    ]);
    let stats = b.ok(&["stats", "--no-stream", busy.trim()]);
    let header = stats.lines().next().unwrap();
    for col in [
        "CONTAINER ID",
        "NAME",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "NET I/O",
        "PIDS",
    ] {
        assert!(header.contains(col), "{stats}");
    }
    let row = stats.lines().nth(1).expect(&stats);
    assert!(row.contains("/ 64MiB"), "{row}");
    let cpu: f64 = row
        .split_whitespace()
        .find(|c| c.ends_with('%'))
        .unwrap()
        .trim_end_matches('%')
        .parse()
        .unwrap();
    // An idle container reads 0.00%; the threshold stays low because CI shares two cores
    // with other tests.
    assert!(cpu > 5.0, "a busy loop uses CPU: {row}");
    b.ok(&["rm", "-f", busy.trim()]);
    // A fork bomb is held by --pids-limit: the shell cannot fork past the limit.
    let bomb = b.run(&[
        "run",
        "--rm",
        "--pids-limit",
        "20",
        "busybox",
        "sh",
        "-c",
        "for i in $(seq 60); do sleep 30 & done",
    ]);
    assert_ne!(bomb.code, 0, "the fork loop must fail: {bomb:?}");
    assert!(bomb.stderr.contains("can't fork"), "{bomb:?}");
    // The limit is the container's cgroup's, as the host sees it.
    let id = b.ok(&["run", "-d", "--pids-limit", "20", "busybox", "sleep", "30"]);
    let id = id.trim();
    let max = std::fs::read_to_string(format!("/sys/fs/cgroup/pids/berth/{id}/pids.max")).unwrap();
    assert_eq!(max.trim(), "20");
    b.ok(&["rm", "-f", id]);
}

#[test]
fn containers_outlive_the_cli() {
    let (reg, b) = setup(true);
    let image = reg.reference("lecture/flask-app");
    b.ok(&["pull", "-q", &image]);
    let port = berth_tests::free_port();
    b.ok(&[
        "run",
        "-d",
        "--name",
        "survivor",
        "-p",
        &format!("{port}:5000"),
        &image,
    ]);
    berth_tests::http::wait_for_200(port, Duration::from_secs(30));
    // A `logs -f` client killed with -9 does not take the container with it.
    let mut follower = b
        .command(&["logs", "-f", "survivor"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    follower.kill().unwrap();
    follower.wait().unwrap();
    berth_tests::http::wait_for_200(port, Duration::from_secs(5));
    // A fresh CLI process finds it running.
    let ps = b.ok(&["ps"]);
    assert!(
        ps.lines().any(|l| l.contains("survivor") && l.contains("Up ")),
        "{ps}"
    );
    b.ok(&["rm", "-f", "survivor"]);
}

/// The shim's pid and its command line, split at the NULs, from the container's state.
fn shim_of(b: &Berth, id: &str) -> (i32, Vec<String>) {
    let state = std::fs::read(b.root().join("containers").join(id).join("shim/state.json")).unwrap();
    let state: serde_json::Value = serde_json::from_slice(&state).unwrap();
    let pid = state["shim_pid"].as_i64().unwrap() as i32;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let argv = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    (pid, argv)
}

#[test]
fn the_production_supervisor_runs_each_container_with_its_root() {
    let (_reg, b) = setup(false);
    let id = b.ok(&["run", "-d", "busybox", "sleep", "300"]).trim().to_string();
    let (pid, argv) = shim_of(&b, &id);
    let state_dir = b.root().join("containers").join(&id).join("shim");
    // The berth binary itself, its hidden __shim, and the store root named explicitly.
    assert_eq!(
        argv[1..],
        [
            "__shim".to_string(),
            "--root".to_string(),
            b.root().display().to_string(),
            state_dir.display().to_string()
        ],
        "{argv:?}"
    );
    assert_eq!(
        std::fs::canonicalize(format!("/proc/{pid}/exe")).unwrap(),
        std::fs::canonicalize(berth_tests::berth::bin()).unwrap()
    );
    b.ok(&["rm", "-f", &id]);
    assert!(!b.root().join("containers").join(&id).exists());
    // The supervisor ends once it has seen its container gone.
    let deadline = Instant::now() + Duration::from_secs(10);
    while berth_host::process::alive(pid) {
        assert!(
            Instant::now() < deadline,
            "rm -f left the supervisor {pid} running"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // Once its container exits, the supervisor releases the run and applies --rm.
    let id = b
        .ok(&["run", "-d", "--rm", "busybox", "sleep", "0.3"])
        .trim()
        .to_string();
    let gone = poll_output("", || b.ok(&["ps", "-aq"]));
    assert_eq!(gone.trim(), "", "the --rm container is removed by its supervisor");
    assert!(!b.root().join("containers").join(&id).exists());
    let kept = b.ok(&["run", "-d", "busybox", "true"]).trim().to_string();
    let cleaned = b.root().join("containers").join(&kept).join("cleaned");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cleaned.exists() {
        assert!(
            Instant::now() < deadline,
            "the supervisor did not release the run"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    b.ok(&["rm", &kept]);
}

#[test]
fn many_containers_leave_nothing_behind() {
    let (_reg, b) = setup(false);
    let mut ids = Vec::new();
    // 100 containers, as the issue asks: a third run detached and killed with -9.
    for i in 0..100 {
        let name = format!("leak{i}");
        if i % 3 == 0 {
            ids.push(
                b.ok(&["run", "-d", "--name", &name, "busybox", "sleep", "30"])
                    .trim()
                    .to_string(),
            );
            b.ok(&["kill", &name]);
            b.ok(&["rm", "-f", &name]);
        } else {
            b.ok(&["run", "--rm", "--name", &name, "busybox", "true"]);
        }
    }
    assert_eq!(b.ok(&["ps", "-aq"]).trim(), "");
    let mounts_after = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts_after.contains(&b.root().display().to_string()),
        "no overlay or netns mount of the store is left"
    );
    // Network namespaces are pinned under /run/berth/<first 8 hex of sha256(root)>/netns.
    let tag = berth_tests::sha256_digest(b.root().display().to_string().as_bytes());
    let netns_dir = format!("/run/berth/{}/netns/", &tag["sha256:".len()..]["".len()..8]);
    assert!(
        !mounts_after.contains(&netns_dir),
        "no network namespace mount is left"
    );
    for id in &ids {
        let veth = format!("/sys/class/net/{}", berth_net::veth_name(id));
        assert!(!std::path::Path::new(&veth).exists(), "{veth} is left behind");
        let cgroup = format!("/sys/fs/cgroup/memory/berth/{id}");
        assert!(!std::path::Path::new(&cgroup).exists(), "{cgroup} is left behind");
    }
    let root = b.root().display().to_string();
    let ps = std::process::Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .unwrap();
    let shims = String::from_utf8_lossy(&ps.stdout)
        .lines()
        .filter(|l| l.contains("__shim") && l.contains(&root))
        .count();
    assert_eq!(shims, 0, "no shim is left running");
    let containers: Vec<_> = std::fs::read_dir(b.root().join("containers"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name() != ".lock")
        .collect();
    assert!(
        containers.is_empty(),
        "no container state is left: {containers:?}"
    );
}

/// A `ps` (or the desktop's refresh, or `/info`) while another command starts a container
/// must not take the half-made run for a leftover and release it: that broke the start
/// ("cannot open cgroup file …/tasks" on this machine's cgroup v1) and is why the desktop
/// once stopped refreshing on `create`.
#[test]
fn starts_survive_lists_running_at_the_same_time() {
    let (_reg, b) = setup(false);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let lister = {
        let (stop, root, config) = (
            stop.clone(),
            b.root().to_path_buf(),
            b.docker_config().to_path_buf(),
        );
        std::thread::spawn(move || {
            let mut lists = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let out = std::process::Command::new(berth_tests::berth::bin())
                    .args(["ps", "-a"])
                    .env("BERTH_ROOT", &root)
                    .env("DOCKER_CONFIG", &config)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "ps failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                lists += 1;
            }
            lists
        })
    };
    for i in 0..12 {
        let name = format!("race{i}");
        let r = b.run(&["run", "-d", "--name", &name, "busybox", "sleep", "30"]);
        assert_eq!(r.code, 0, "run -d {name} failed while ps ran: {}", r.stderr);
        let state = b.ok(&["inspect", "-f", "{{.State.Status}}", &name]);
        assert_eq!(state.trim(), "running", "{name} is not running");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let lists = lister.join().unwrap();
    assert!(lists > 0, "ps ran beside the starts");
    b.ok(&["rm", "-f", "race0", "race1", "race2", "race3", "race4", "race5"]);
    b.ok(&["rm", "-f", "race6", "race7", "race8", "race9", "race10", "race11"]);
}

#[test]
fn bad_input_is_one_sentence_and_leaves_nothing() {
    let (_reg, b) = setup(false);
    let r = b.fails(&["run", "--rm", "no-such-image-here"]);
    assert!(r.stderr.contains("no-such-image-here"), "{}", r.stderr);
    let r = b.fails(&["run", "--rm", "-p", "80800:80", "busybox", "true"]);
    assert!(r.stderr.contains("80800"), "{}", r.stderr);
    let r = b.fails(&["run", "--rm", "-v", "/definitely/not/here:/x", "busybox", "true"]);
    assert!(r.stderr.contains("/definitely/not/here"), "{}", r.stderr);
    let r = b.fails(&["run", "--rm", "--memory", "lots", "busybox", "true"]);
    assert!(r.stderr.contains("lots"), "{}", r.stderr);
    // A port already in use: a clear error before the container starts, nothing left.
    let taken = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let r = b.fails(&[
        "run",
        "-d",
        "--rm",
        "-p",
        &format!("{port}:80"),
        "busybox",
        "sleep",
        "5",
    ]);
    assert!(
        r.stderr.contains(&port.to_string()) && r.stderr.contains("in use"),
        "{}",
        r.stderr
    );
    let r = b.fails(&["run", "--rm", "busybox", "no-such-command"]);
    assert!(r.stderr.contains("no-such-command"), "{}", r.stderr);
    for r in [
        b.fails(&["rm", "nope"]),
        b.fails(&["stop", "nope"]),
        b.fails(&["logs", "nope"]),
    ] {
        assert!(r.stderr.contains("no such container"), "{}", r.stderr);
    }
    assert_eq!(b.ok(&["ps", "-aq"]).trim(), "", "nothing is left behind");
}

#[test]
fn volumes_binds_env_and_workdir() {
    let (_reg, b) = setup(false);
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("in.txt"), "from the host\n").unwrap();
    let hp = host.path().display().to_string();
    let out = run_out(
        &b,
        &[
            "-v",
            &format!("{hp}:/data"),
            "-w",
            "/data",
            "-e",
            "GREETING=hi",
            "busybox",
            "sh",
            "-c",
            "cat in.txt; echo $GREETING; pwd; echo out > out.txt",
        ],
    );
    assert_eq!(out, "from the host\nhi\n/data\n");
    assert_eq!(
        std::fs::read_to_string(host.path().join("out.txt")).unwrap(),
        "out\n"
    );
    let r = b.run(&[
        "run",
        "--rm",
        "-v",
        &format!("{hp}:/data:ro"),
        "busybox",
        "sh",
        "-c",
        "echo x > /data/y",
    ]);
    assert_ne!(r.code, 0, "a read-only bind refuses writes");
    // A named volume keeps its data across containers, and `rm` keeps the volume.
    b.ok(&["volume", "create", "notes"]);
    b.ok(&[
        "run",
        "--name",
        "w1",
        "-v",
        "notes:/notes",
        "busybox",
        "sh",
        "-c",
        "echo kept > /notes/n.txt",
    ]);
    let df = b.ok(&["system", "df"]);
    let row = |name: &str| -> Vec<String> {
        let line = df.lines().find(|l| l.starts_with(name)).expect(&df).to_string();
        line[name.len()..]
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(&row("Containers")[..2], ["1", "0"], "{df}");
    assert_eq!(&row("Local Volumes")[..2], ["1", "1"], "{df}");
    b.ok(&["rm", "w1"]);
    assert_eq!(
        run_out(&b, &["-v", "notes:/notes", "busybox", "cat", "/notes/n.txt"]),
        "kept\n"
    );
    assert!(b.ok(&["volume", "ls"]).contains("notes"));
    b.ok(&["volume", "rm", "notes"]);
}

#[test]
fn restart_policy_and_user_networks() {
    let (_reg, b) = setup(false);
    // on-failure:2 restarts a failing container twice, then leaves it exited.
    b.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "exit 1",
    ]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = b.ok(&[
            "inspect",
            "--format",
            "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}",
            "flaky",
        ]);
        if s.trim() == "2 exited 1" {
            break;
        }
        assert!(Instant::now() < deadline, "restart policy not applied: {s}");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let s = b.ok(&["inspect", "--format", "{{.RestartCount}}", "flaky"]);
    assert_eq!(s.trim(), "2", "no third restart");
    b.ok(&["rm", "flaky"]);

    // A restarted container publishes its port again: the run before let go of it.
    let port = berth_tests::free_port();
    let www = tempfile::tempdir().expect("tempdir");
    std::fs::write(www.path().join("index.html"), "again\n").expect("index");
    b.ok(&[
        "run",
        "-d",
        "--name",
        "again",
        "--restart",
        "always",
        "-p",
        &format!("127.0.0.1:{port}:8000"),
        "-v",
        &format!("{}:/www", www.path().display()),
        "busybox",
        "sh",
        "-c",
        "httpd -p 8000 -h /www; sleep 1; exit 3",
    ]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while b
        .ok(&["inspect", "--format", "{{.RestartCount}}", "again"])
        .trim()
        .parse::<u32>()
        .unwrap_or(0)
        < 2
    {
        assert!(
            Instant::now() < deadline,
            "the restart policy did not restart 'again' twice"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let page = berth_tests::http::wait_for_200(port, Duration::from_secs(10));
    assert!(page.ends_with("again\n"), "{page}");
    let s = b.ok(&["inspect", "--format", "{{.State.Status}}", "again"]);
    assert_eq!(s.trim(), "running", "a restart that failed leaves it {s}");
    b.ok(&["rm", "-f", "again"]);

    // Containers on one user network reach each other by container name.
    let net = format!("lab{}", std::process::id());
    b.ok(&["network", "create", &net]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "srv",
        "--hostname",
        "srv-host",
        "--network",
        &net,
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/etc",
    ]);
    let got = poll_output("srv-host", || {
        b.run(&[
            "run",
            "--rm",
            "--network",
            &net,
            "busybox",
            "wget",
            "-qO-",
            "http://srv/hostname",
        ])
        .stdout
    });
    assert_eq!(got.trim(), "srv-host", "reached srv by name over {net}");
    // A container started later is known to the earlier one, and forgotten when it goes.
    b.ok(&[
        "run",
        "-d",
        "--name",
        "late",
        "--hostname",
        "late-host",
        "--network",
        &net,
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/etc",
    ]);
    let got = poll_output("late-host", || {
        b.run(&["exec", "srv", "wget", "-qO-", "http://late/hostname"])
            .stdout
    });
    assert_eq!(got.trim(), "late-host", "srv reaches the later container by name");
    b.ok(&["rm", "-f", "late"]);
    let hosts = b.ok(&["exec", "srv", "cat", "/etc/hosts"]);
    assert!(!hosts.contains("late"), "{hosts}");
    let r = b.fails(&["network", "rm", &net]);
    assert!(
        r.stderr.contains(&net),
        "a network in use is not removed: {}",
        r.stderr
    );
    b.ok(&["rm", "-f", "srv"]);
    b.ok(&["network", "rm", &net]);
    assert!(!b.ok(&["network", "ls"]).contains(&net));
}

#[test]
fn exec_it_gets_a_terminal_inside_the_container() {
    let (_reg, b) = setup(false);
    b.ok(&["run", "-d", "--name", "term", "busybox", "sleep", "60"]);
    let script = berth_tests::tools::require("script", "bsdutils");
    // `script` gives berth a terminal, as a user's shell would; the shell inside reads the
    // typed lines from it.
    let cmd = format!("{} exec -it term sh", berth_tests::berth::bin().display());
    let mut script_cmd = std::process::Command::new(script);
    script_cmd
        .args(["-qec", &cmd, "/dev/null"])
        .env("BERTH_ROOT", b.root())
        .env("DOCKER_CONFIG", b.docker_config())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut run = script_cmd.spawn().unwrap();
    run.stdin
        .take()
        .unwrap()
        .write_all(b"tty; echo sum-$((40+2)); exit 7\n")
        .unwrap();
    let out = run.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("/dev/pts/"),
        "the shell has a named terminal: {text}"
    );
    assert!(text.contains("sum-42"), "{text}");
    assert_eq!(
        out.status.code(),
        Some(7),
        "exit code of the exec'd shell: {text}"
    );
    b.ok(&["rm", "-f", "term"]);
}

#[test]
fn run_attached_relays_stdin_stdout_stderr_and_exit_code() {
    let (_reg, b) = setup(false);
    let mut cmd = b.command(&[
        "run",
        "-i",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "read x; echo got-$x; echo oops >&2; exit 3",
    ]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got-hello\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");
    assert_eq!(out.status.code(), Some(3));
    // `cat` sees the end of its input when the client's stdin ends (docker's stdin-once).
    let mut cmd = b.command(&["run", "-i", "--rm", "busybox", "cat"]);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"line 1\nline 2\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "line 1\nline 2\n");
    assert_eq!(out.status.code(), Some(0));
    // Output printed before the client attached is not lost.
    let out = b.run(&["run", "--rm", "busybox", "echo", "early"]);
    assert_eq!(out.stdout, "early\n");
    assert!(
        b.ok(&["ps", "-aq"]).trim().is_empty(),
        "--rm left containers behind"
    );
}

/// A command running in a terminal made by script(1), whose output is collected as it comes.
struct InTerminal {
    child: std::process::Child,
    input: std::process::ChildStdin,
    output: std::sync::Arc<std::sync::Mutex<String>>,
}

impl InTerminal {
    fn start(b: &Berth, args: &str) -> InTerminal {
        let script = berth_tests::tools::require("script", "bsdutils");
        // A known window size, so the container's terminal size can be checked.
        let cmd = format!(
            "stty rows 33 cols 101; {} {args}",
            berth_tests::berth::bin().display()
        );
        let mut child = std::process::Command::new(script)
            .args(["-qec", &cmd, "/dev/null"])
            .env("BERTH_ROOT", b.root())
            .env("DOCKER_CONFIG", b.docker_config())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let output = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (mut stdout, sink) = (child.stdout.take().unwrap(), output.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = std::io::Read::read(&mut stdout, &mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let input = child.stdin.take().unwrap();
        InTerminal { child, input, output }
    }

    fn type_text(&mut self, text: &[u8]) {
        self.input.write_all(text).unwrap();
        self.input.flush().unwrap();
    }

    fn wait_for_output(&self, needle: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !self.output.lock().unwrap().contains(needle) {
            assert!(
                std::time::Instant::now() < deadline,
                "no {needle:?} in the terminal: {}",
                self.output.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait(mut self) -> (Option<i32>, String) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                return (st.code(), self.output.lock().unwrap().clone());
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the command did not end: {}",
                self.output.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn run_it_detach_keys_and_attach() {
    let (_reg, b) = setup(false);
    let mut term = InTerminal::start(&b, "run -it --name tt busybox sh");
    term.type_text(b"echo in-$((2+3)); stty size; tty\n");
    term.wait_for_output("in-5");
    term.wait_for_output("33 101");
    // The terminal comes from the container's own devpts, so it has a name inside.
    term.wait_for_output("/dev/pts/0");
    // Ctrl-P Ctrl-Q: the client leaves, the shell goes on.
    term.type_text(b"\x10\x11");
    let (code, out) = term.wait();
    assert_eq!(code, Some(0), "detaching exits 0: {out}");
    assert!(
        b.ok(&["ps"]).contains("tt"),
        "the container still runs after detaching"
    );
    let mut term = InTerminal::start(&b, "attach tt");
    term.type_text(b"echo again-$((1+1)); exit 4\n");
    let (code, out) = term.wait();
    assert!(out.contains("again-2"), "{out}");
    assert_eq!(code, Some(4), "attach returns the container's exit code: {out}");
    let inspect = b.ok(&["inspect", "-f", "{{.State.ExitCode}}", "tt"]);
    assert_eq!(inspect.trim(), "4");
    // Ctrl-C in a terminal reaches the container's foreground process, not the client.
    let mut term = InTerminal::start(
        &b,
        "run -it --rm busybox sh -c 'trap \"echo got-int; exit 9\" INT; echo ready; sleep 30 & wait'",
    );
    term.wait_for_output("ready");
    term.type_text(b"\x03");
    let (code, out) = term.wait();
    assert!(out.contains("got-int"), "{out}");
    assert_eq!(code, Some(9), "{out}");
    b.ok(&["rm", "-f", "tt"]);
}

#[test]
fn seccomp_is_an_allow_list_like_dockers() {
    let (reg, b) = setup(true);
    let image = reg.reference("lecture/flask-app");
    b.ok(&["pull", "-q", &image]);
    // errno of syscall(nr) from inside: 0 when it ran.
    let probe = "import ctypes, sys\n\
                 libc = ctypes.CDLL(None, use_errno=True)\n\
                 for nr in map(int, sys.argv[1:]):\n\
                 \x20   r = libc.syscall(nr, 0, 0, 0, 0, 0)\n\
                 \x20   print(nr, ctypes.get_errno() if r == -1 else 0)\n";
    // 39 getpid; 250 keyctl; 246 kexec_load; 1000: no such syscall (ENOSYS on the host,
    // EPERM under an allow-list, as with docker); 0x40000027 x32 getpid.
    let out = run_out(
        &b,
        &[
            &image,
            "python3",
            "-c",
            probe,
            "39",
            "250",
            "246",
            "1000",
            "1073741863",
        ],
    );
    let errno: std::collections::HashMap<&str, &str> =
        out.lines().filter_map(|l| l.split_once(' ')).collect();
    assert_eq!(errno["39"], "0", "{out}");
    assert_eq!(errno["250"], "1", "keyctl → EPERM: {out}");
    assert_eq!(errno["246"], "1", "kexec_load → EPERM: {out}");
    assert_eq!(errno["1000"], "1", "an unknown syscall → EPERM: {out}");
    assert_eq!(errno["1073741863"], "38", "x32 → ENOSYS: {out}");
}

#[test]
fn log_opts_rotate_the_json_log() {
    let (_reg, b) = setup(false);
    let out = b.run(&[
        "run",
        "--name",
        "chatty",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=2",
        "busybox",
        "sh",
        "-c",
        "i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let id = b.ok(&["inspect", "-f", "{{.Id}}", "chatty"]);
    let dir = b.root().join("containers").join(id.trim());
    let logs: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.contains("json.log"))
        .collect();
    assert_eq!(logs.len(), 2, "the live log and one rotated file: {logs:?}");
    for f in &logs {
        let len = std::fs::metadata(dir.join(f)).unwrap().len();
        assert!(len <= 1024 + 200, "{f} is {len} bytes, over max-size");
    }
    // `logs` reads the kept files in order: it ends with the last line, the oldest are gone.
    let text = b.ok(&["logs", "chatty"]);
    assert!(text.ends_with("line-299\n"), "{text}");
    assert!(!text.contains("line-0\n"), "{text}");
    let r = b.fails(&["run", "--log-opt", "max-sise=1k", "busybox", "true"]);
    assert!(r.stderr.contains("max-sise"), "{}", r.stderr);
    b.ok(&["rm", "chatty"]);
}

/// An image made by buildah whose layer list repeats layers (busybox, A, B, A, then the same
/// empty layer twice): it runs with docker's result (A's /f on top of B's), and a created
/// container's files are read through the Engine API's archive endpoint from the same stack.
#[test]
fn an_image_that_repeats_layers_runs() {
    let (reg, b) = setup(false);
    reg.push_fixture(&fixtures::image("repeated"), "test/repeated:latest");
    let image = reg.reference("test/repeated");
    b.ok(&["pull", "-q", &image]);
    let layers = b.layer_dirs(&image);
    assert_eq!(layers.len(), 7, "busybox's 2 layers and 5 more: {layers:?}");
    let distinct: std::collections::HashSet<_> = layers.iter().collect();
    assert_eq!(distinct.len(), 5, "two layers are repeats: {layers:?}");
    assert_eq!(run_out(&b, &[&image, "cat", "/f"]), "one\n");
    assert_eq!(
        run_out(&b, &[&image, "sh", "-c", "echo more >> /f; cat /f"]),
        "one\nmore\n"
    );

    let d = berth_tests::daemon::Daemon::start(&b);
    b.ok(&["create", "--name", "rep", &image]);
    let r = d.request("GET", "/containers/rep/archive?path=/f", None);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let mut ar = tar::Archive::new(r.body.as_slice());
    let mut entry = ar.entries().unwrap().next().expect("one entry").unwrap();
    let mut body = String::new();
    std::io::Read::read_to_string(&mut entry, &mut body).unwrap();
    assert_eq!(body, "one\n");
    b.ok(&["rm", "rep"]);
    b.assert_store_consistent();
}

/// A short attached run's output is never lost, however its exit races the attach: its
/// shim answers a client that connected just before the exit (the replay, then the end)
/// before it ends, and the engine falls back to the log if a shim ends unanswering. Before
/// that, about one `run --rm … echo` in seven printed nothing under load.
#[test]
fn a_hundred_short_attached_runs_all_print_their_output() {
    let (_reg, b) = setup(false);
    let mut lost = Vec::new();
    for i in 0..100 {
        let r = b.run(&[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "echo",
            &format!("run-{i}"),
        ]);
        if r.code != 0 || r.stdout != format!("run-{i}\n") {
            lost.push((i, r));
        }
    }
    assert!(
        lost.is_empty(),
        "{} of 100 runs lost their output: {lost:?}",
        lost.len()
    );
    assert_eq!(b.ok(&["ps", "-aq"]), "", "--rm left containers behind");
}

/// `--pid host`, `--pid container:NAME` and `--uts host`, as docker gives them: the host's
/// processes, another container's, the host's hostname (left unchanged); a bad mode or a
/// missing container refused in one sentence.
#[test]
fn pid_and_uts_namespaces_shared_with_the_host_or_another_container() {
    let (_reg, b) = setup(false);
    let run = |extra: &[&str], script: &str| run_sh(&b, extra, script);
    assert_eq!(
        run(&[], "echo $$"),
        "1\n",
        "its own PID namespace: the shell is PID 1"
    );
    let me = std::process::id();
    let host = run(
        &["--pid", "host"],
        &format!("echo $$; test -d /proc/{me} && echo sees-the-test"),
    );
    let lines: Vec<&str> = host.lines().collect();
    assert!(
        lines.len() == 2 && lines[0] != "1" && lines[1] == "sees-the-test",
        "{host}"
    );

    b.ok(&[
        "run",
        "-d",
        "--name",
        "pidowner",
        "--network",
        "none",
        "busybox",
        "sleep",
        "300",
    ]);
    let ps = run(&["--pid", "container:pidowner"], "ps -o args");
    assert!(
        ps.lines().any(|l| l.trim() == "sleep 300"),
        "pidowner's sleep is not there: {ps}"
    );
    assert_eq!(
        b.ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.PidMode}}|{{.HostConfig.UTSMode}}",
            "pidowner"
        ]),
        "|\n"
    );

    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(run(&["--uts", "host"], "hostname"), hostname);
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        hostname,
        "unchanged"
    );
    assert_ne!(
        run(&[], "hostname"),
        hostname,
        "its own UTS namespace has its own name"
    );

    for (mode, says) in [
        (&["--pid", "sideways"][..], "invalid PID mode: sideways"),
        (&["--pid", "container:nobody"][..], "nobody"),
        (&["--uts", "container:pidowner"][..], "invalid UTS mode"),
    ] {
        refused_in_one_sentence(&b, mode, says);
    }
    b.ok(&["rm", "-f", "pidowner"]);
}

/// `run --rm ARGS busybox true` fails, saying `says` in one line.
fn refused_in_one_sentence(b: &Berth, args: &[&str], says: &str) {
    let mut all = vec!["run", "--rm"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["busybox", "true"]);
    let r = b.fails(&all);
    assert!(
        r.stderr.contains(says) && r.stderr.trim().lines().count() == 1,
        "{args:?}: {r:?}"
    );
}

/// What `run --rm --network none EXTRA busybox sh -c SCRIPT` prints.
fn run_sh(b: &Berth, extra: &[&str], script: &str) -> String {
    let mut args = vec!["run", "--rm", "--network", "none"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "sh", "-c", script]);
    b.ok(&args)
}

/// `--ipc`: a container's own IPC namespace by default, the host's with `--ipc host`, or
/// another container's with `--ipc container:NAME`, /dev/shm shared along with it (POSIX
/// shared memory, as in docker); inspect names the mode; bad modes get one sentence.
#[test]
fn ipc_namespaces_shared_with_the_host_or_another_container() {
    let (_reg, b) = setup(false);
    let run = |extra: &[&str], script: &str| run_sh(&b, extra, script);
    let host_ns = std::fs::read_link("/proc/self/ns/ipc").unwrap();
    let host_ns = host_ns.to_string_lossy();
    let own = run(&[], "readlink /proc/self/ns/ipc");
    assert!(
        own.starts_with("ipc:[") && own.trim() != host_ns,
        "{own} vs the host's {host_ns}"
    );
    let note = format!("/dev/shm/berth-ipc-{}", std::process::id());
    std::fs::write(&note, "from the host\n").unwrap();
    let host = run(
        &["--ipc", "host"],
        &format!("readlink /proc/self/ns/ipc; cat {note}"),
    );
    let _ = std::fs::remove_file(&note);
    assert_eq!(host, format!("{host_ns}\nfrom the host\n"));

    b.ok(&[
        "run",
        "-d",
        "--name",
        "ipcowner",
        "--ipc",
        "shareable",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo shared > /dev/shm/note; exec sleep 300",
    ]);
    let owner_ns = b.ok(&["exec", "ipcowner", "readlink", "/proc/self/ns/ipc"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while b.run(&["exec", "ipcowner", "test", "-f", "/dev/shm/note"]).code != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "ipcowner never wrote its note"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let joined = run(
        &["--ipc", "container:ipcowner"],
        "readlink /proc/self/ns/ipc; cat /dev/shm/note",
    );
    assert_eq!(joined, format!("{}shared\n", owner_ns));
    assert_ne!(owner_ns.trim(), host_ns);
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.HostConfig.IpcMode}}", "ipcowner"]),
        "shareable\n"
    );
    b.ok(&["create", "--name", "ipcdefault", "busybox", "true"]);
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.HostConfig.IpcMode}}", "ipcdefault"]),
        "private\n"
    );
    b.ok(&[
        "run",
        "-d",
        "--name",
        "ipcplain",
        "--network",
        "none",
        "busybox",
        "sleep",
        "300",
    ]);
    for (mode, says) in [
        ("sideways", "invalid IPC mode: sideways"),
        ("container:nobody", "nobody"),
        (
            "container:ipcplain",
            "it is not shareable — run it with --ipc shareable",
        ),
        ("container:ipcdefault", "it is not running"),
    ] {
        refused_in_one_sentence(&b, &["--ipc", mode], says);
    }
    b.ok(&["rm", "-f", "ipcowner", "ipcdefault", "ipcplain"]);
}

/// `--add-host` (with `host-gateway`), `--dns`/`--dns-search`/`--dns-option`, `--shm-size`,
/// `--read-only` and `--cap-add`/`--cap-drop` do in the container what they do in docker, exec gets the
/// container's capabilities, inspect reports them, and bad values get one sentence.
#[test]
fn hosts_dns_shm_size_and_capabilities() {
    let (_reg, b) = setup(false);
    // On the default bridge: host.docker.internal (and so host-gateway) is its gateway.
    let hosts = b.ok(&[
        "run",
        "--rm",
        "--add-host",
        "db:10.1.2.3",
        "--add-host",
        "gw:host-gateway",
        "busybox",
        "cat",
        "/etc/hosts",
    ]);
    assert!(hosts.contains("10.1.2.3\tdb\n"), "{hosts}");
    let gateway = hosts
        .lines()
        .find(|l| l.ends_with("\thost.docker.internal"))
        .and_then(|l| l.split('\t').next())
        .unwrap_or_else(|| panic!("no host.docker.internal in {hosts}"));
    assert!(hosts.contains(&format!("{gateway}\tgw\n")), "{hosts}");

    let resolv = run_sh(
        &b,
        &[
            "--dns",
            "9.9.9.9",
            "--dns-search",
            "lab.example",
            "--dns-option",
            "ndots:2",
        ],
        "cat /etc/resolv.conf",
    );
    let servers: Vec<&str> = resolv.lines().filter(|l| l.starts_with("nameserver")).collect();
    assert_eq!(servers, ["nameserver 9.9.9.9"], "{resolv}");
    assert!(
        resolv.contains("search lab.example\n") && resolv.contains("options ndots:2\n"),
        "{resolv}"
    );

    let shm = run_sh(&b, &["--shm-size", "8m"], "df -k /dev/shm | tail -1");
    assert_eq!(shm.split_whitespace().nth(1), Some("8192"), "{shm}");
    let shm = run_sh(&b, &[], "df -k /dev/shm | tail -1");
    assert_eq!(shm.split_whitespace().nth(1), Some("65536"), "the default: {shm}");

    let eff = |extra: &[&str]| run_sh(&b, extra, "grep CapEff /proc/self/status");
    assert_eq!(eff(&[]), "CapEff:\t00000000a80425fb\n", "docker's default set");
    assert_eq!(eff(&["--cap-drop", "ALL"]), "CapEff:\t0000000000000000\n");
    assert_eq!(eff(&["--cap-add", "net_admin"]), "CapEff:\t00000000a80435fb\n");
    assert_eq!(
        eff(&["--cap-drop", "ALL", "--cap-add", "CAP_CHOWN"]),
        "CapEff:\t0000000000000001\n"
    );
    let r = b.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "ip",
        "addr",
        "add",
        "127.0.0.9/8",
        "dev",
        "lo",
    ]);
    assert!(r.code != 0, "NET_ADMIN is not in the default set: {r:?}");
    run_sh(
        &b,
        &["--cap-add", "NET_ADMIN"],
        "ip addr add 127.0.0.9/8 dev lo && echo added",
    );
    let r = b.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--cap-drop",
        "CHOWN",
        "busybox",
        "sh",
        "-c",
        "touch /tmp/f && chown 1 /tmp/f",
    ]);
    assert!(r.code != 0, "chown without CHOWN: {r:?}");

    // --read-only: the root is read-only, a tmpfs and the volume on it are not.
    let r = b.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--read-only",
        "busybox",
        "touch",
        "/x",
    ]);
    assert!(r.code != 0 && r.stderr.contains("Read-only file system"), "{r:?}");
    assert_eq!(
        run_sh(
            &b,
            &["--read-only", "--tmpfs", "/tmp", "-v", "rodata:/data"],
            "touch /tmp/x /data/y && echo writable"
        ),
        "writable\n"
    );
    b.ok(&[
        "run",
        "-d",
        "--name",
        "capper",
        "--network",
        "none",
        "--cap-add",
        "NET_ADMIN",
        "--add-host",
        "db:10.1.2.3",
        "--dns",
        "9.9.9.9",
        "--shm-size",
        "8m",
        "busybox",
        "sleep",
        "300",
    ]);
    assert_eq!(
        b.ok(&["exec", "capper", "grep", "CapEff", "/proc/self/status"]),
        "CapEff:\t00000000a80435fb\n",
        "exec has the container's capabilities"
    );
    assert_eq!(
        b.ok(&["inspect", "-f", "{{json .HostConfig.CapAdd}} {{json .HostConfig.ExtraHosts}} {{json .HostConfig.Dns}} {{.HostConfig.ShmSize}} {{.HostConfig.ReadonlyRootfs}}", "capper"]),
        "[\"NET_ADMIN\"] [\"db:10.1.2.3\"] [\"9.9.9.9\"] 8388608 false\n"
    );
    b.ok(&["rm", "-f", "capper"]);

    for (args, says) in [
        (&["--cap-add", "NOPE"][..], "unknown capability: \"CAP_NOPE\""),
        (&["--add-host", "nocolon"][..], "invalid --add-host nocolon"),
        (
            &["--add-host", "db:not-an-ip"][..],
            "invalid --add-host db:not-an-ip",
        ),
        (&["--dns", "dns.example"][..], "invalid --dns dns.example"),
    ] {
        refused_in_one_sentence(&b, args, says);
    }
}

/// `--sysctl`: namespaced keys (net.*, the IPC ones) are set in the container's own
/// namespaces and the host keeps its values; others, or net.* with the host's network, are
/// refused in one sentence.
#[test]
fn sysctls_set_the_containers_own_namespaces() {
    let (_reg, b) = setup(false);
    let host_somaxconn = std::fs::read_to_string("/proc/sys/net/core/somaxconn").unwrap();
    let host_shmmni = std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap();
    let seen = run_sh(
        &b,
        &[
            "--sysctl",
            "net.core.somaxconn=1234",
            "--sysctl",
            "kernel.shmmni=2048",
        ],
        "cat /proc/sys/net/core/somaxconn /proc/sys/kernel/shmmni",
    );
    assert_eq!(seen, "1234\n2048\n");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/core/somaxconn").unwrap(),
        host_somaxconn
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap(),
        host_shmmni
    );
    b.ok(&[
        "create",
        "--name",
        "tuned",
        "--sysctl",
        "net.core.somaxconn=1234",
        "busybox",
        "true",
    ]);
    assert_eq!(
        b.ok(&["inspect", "-f", "{{json .HostConfig.Sysctls}}", "tuned"]),
        "{\"net.core.somaxconn\":\"1234\"}\n"
    );
    b.ok(&["rm", "tuned"]);
    for (args, says) in [
        (
            &["--sysctl", "vm.swappiness=1"][..],
            "sysctl 'vm.swappiness' is not allowed: it is not namespaced",
        ),
        (
            &["--network", "host", "--sysctl", "net.core.somaxconn=1"][..],
            "sysctl 'net.core.somaxconn' is not allowed: the container shares",
        ),
        (
            &["--ipc", "host", "--sysctl", "kernel.shmmni=1"][..],
            "sysctl 'kernel.shmmni' is not allowed: the container shares",
        ),
    ] {
        refused_in_one_sentence(&b, args, says);
    }
}

/// Bind propagation: a `:rslave` bind sees what the host mounts under its source later, a
/// plain one (docker's `rprivate`) does not, inspect says which, and `:rshared` of a path
/// on a private mount is refused in one sentence.
#[test]
fn bind_propagation_follows_host_mounts_only_when_asked() {
    let (_reg, b) = setup(false);
    let dir = tempfile::tempdir().unwrap();
    let top = dir.path().join("top");
    std::fs::create_dir_all(&top).unwrap();
    let sh = |cmd: &str| {
        let o = std::process::Command::new("sh")
            .args(["-c", cmd])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    let t = top.display().to_string();
    sh(&format!(
        "mount -t tmpfs berth-prop {t} && mount --make-shared {t} && mkdir {t}/sub"
    ));
    let slave = format!("{t}:/mnt:rslave");
    let plain = format!("{t}:/mnt");
    b.ok(&[
        "run",
        "-d",
        "--name",
        "follows",
        "--network",
        "none",
        "-v",
        &slave,
        "busybox",
        "sleep",
        "300",
    ]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "keeps",
        "--network",
        "none",
        "-v",
        &plain,
        "busybox",
        "sleep",
        "300",
    ]);
    sh(&format!(
        "mount -t tmpfs berth-prop-sub {t}/sub && echo mounted-later > {t}/sub/f"
    ));
    let seen = b.run(&["exec", "follows", "cat", "/mnt/sub/f"]);
    let kept = b.run(&["exec", "keeps", "ls", "/mnt/sub"]);
    let modes = (
        b.ok(&[
            "inspect",
            "-f",
            "{{range .Mounts}}{{.Propagation}}{{end}}",
            "follows",
        ]),
        b.ok(&[
            "inspect",
            "-f",
            "{{range .Mounts}}{{.Propagation}}{{end}}",
            "keeps",
        ]),
    );
    b.ok(&["rm", "-f", "follows", "keeps"]);
    let _ = std::process::Command::new("umount").args(["-R", &t]).status();
    assert_eq!(seen.stdout, "mounted-later\n", "rslave: {seen:?}");
    assert_eq!(kept.stdout, "", "rprivate sees the empty directory: {kept:?}");
    assert_eq!(modes, ("rslave\n".to_string(), "rprivate\n".to_string()));
    let private = tempfile::tempdir().unwrap();
    let shared = format!("{}:/x:rshared", private.path().display());
    refused_in_one_sentence(&b, &["-v", &shared], "needs a shared one");
}

/// `--security-opt`: `seccomp=unconfined` runs the container (and its exec) without the
/// filter, `systempaths=unconfined` leaves /proc unmasked, the no-ops docker users write
/// are taken, and what Berth cannot do is refused in one sentence.
#[test]
fn security_options_lift_seccomp_and_proc_masks_when_asked() {
    let (_reg, b) = setup(false);
    let mode = |extra: &[&str]| run_sh(&b, extra, "grep '^Seccomp:' /proc/self/status");
    assert_eq!(mode(&[]), "Seccomp:\t2\n", "filtered by default");
    assert_eq!(mode(&["--security-opt", "seccomp=unconfined"]), "Seccomp:\t0\n");
    assert_eq!(
        mode(&[
            "--security-opt",
            "no-new-privileges",
            "--security-opt",
            "apparmor=unconfined",
            "--security-opt",
            "label=disable"
        ]),
        "Seccomp:\t2\n"
    );
    let timers = |extra: &[&str]| run_sh(&b, extra, "head -c 16 /proc/timer_list | wc -c");
    assert_eq!(timers(&[]).trim(), "0", "masked by default");
    assert_eq!(timers(&["--security-opt", "systempaths=unconfined"]).trim(), "16");
    b.ok(&[
        "run",
        "-d",
        "--name",
        "loose",
        "--network",
        "none",
        "--security-opt",
        "seccomp:unconfined",
        "busybox",
        "sleep",
        "300",
    ]);
    assert_eq!(
        b.ok(&["exec", "loose", "grep", "^Seccomp:", "/proc/self/status"]),
        "Seccomp:\t0\n",
        "exec is as unconfined as its container"
    );
    assert_eq!(
        b.ok(&["inspect", "-f", "{{json .HostConfig.SecurityOpt}}", "loose"]),
        "[\"seccomp:unconfined\"]\n"
    );
    b.ok(&["rm", "-f", "loose"]);
    for (opt, says) in [
        (
            "seccomp=/etc/profile.json",
            "custom seccomp profiles are not supported",
        ),
        ("no-new-privileges=false", "always sets no_new_privs"),
        ("apparmor=docker-default", "no AppArmor or SELinux profiles"),
        ("sideways", "invalid --security-opt sideways"),
    ] {
        refused_in_one_sentence(&b, &["--security-opt", opt], says);
    }
}

/// Legacy `--link NAME:ALIAS` on the default bridge (which resolves no names by itself):
/// the other container is in /etc/hosts under the alias, inspect shows docker's
/// `/other:/this/alias`, and a missing container is refused in one sentence.
#[test]
fn legacy_links_name_the_other_container_on_the_default_bridge() {
    let (_reg, b) = setup(false);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "linkdb",
        "busybox",
        "sh",
        "-c",
        "echo linked > /index.html && exec httpd -f -p 8000 -h /",
    ]);
    let fetch = "for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O - http://db:8000/ && break; sleep 0.2; done; grep -c linkdb /etc/hosts";
    assert_eq!(
        b.ok(&["run", "--rm", "--link", "linkdb:db", "busybox", "sh", "-c", fetch]),
        "linked\n1\n"
    );
    let unlinked = b.run(&[
        "run",
        "--rm",
        "busybox",
        "wget",
        "-q",
        "-T",
        "2",
        "-O",
        "-",
        "http://db:8000/",
    ]);
    assert_ne!(
        unlinked.code, 0,
        "the default bridge resolved a name without a link: {unlinked:?}"
    );
    b.ok(&[
        "create",
        "--name",
        "linker",
        "--link",
        "linkdb:db",
        "busybox",
        "true",
    ]);
    assert_eq!(
        b.ok(&["inspect", "-f", "{{json .HostConfig.Links}}", "linker"]),
        "[\"/linkdb:/linker/db\"]\n"
    );
    let r = b.fails(&["run", "--rm", "--link", "nobody:db", "busybox", "true"]);
    assert!(
        r.stderr.contains("nobody") && r.stderr.trim().lines().count() == 1,
        "{r:?}"
    );
    b.ok(&["rm", "-f", "linkdb", "linker"]);
}
