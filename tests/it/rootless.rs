//! The rootless engine (issue 14): the `berth` binary run by an ordinary user made for the
//! test, with subordinate ids, pasta for outbound access and this machine's hybrid cgroups
//! (no delegation). Each test has its own store root and runtime directory, so its own
//! namespace keeper; they run one at a time (nextest group `rootless`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use berth_tests::registry::{Mode, Registry};
use berth_tests::rootless::{Session, User};

const USER: &str = "berth-rootless-it";

fn session_with_busybox() -> Session {
    let s = Session::new(&User::ensure(USER));
    s.load_fixture("busybox", "busybox:latest");
    s
}

/// An HTTP/1.0 GET of `path` on 127.0.0.1:`port`, retried for up to 5 s while refused.
fn http_get(port: u16, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(mut c) => {
                c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                write!(c, "GET {path} HTTP/1.0\r\n\r\n").unwrap();
                let mut out = String::new();
                let _ = c.read_to_string(&mut out);
                if !out.is_empty() || Instant::now() > deadline {
                    return out;
                }
            }
            Err(e) if Instant::now() > deadline => panic!("connect to 127.0.0.1:{port}: {e}"),
            Err(_) => {}
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_ordinary_user_runs_containers_whose_root_is_the_user() {
    let s = session_with_busybox();
    let user = &s.user;

    // The plain run of the issue, no warning (the user has subordinate ids).
    let r = s.run(&["run", "--rm", "--network", "none", "busybox", "echo", "hi"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "hi\n"), "{r:?}");
    assert!(!r.stderr.contains("Warning"), "{r:?}");
    let keeper = s.keeper().expect("the first command started a keeper");
    let uid_map = std::fs::read_to_string(format!("/proc/{keeper}/uid_map")).unwrap();
    let lines: Vec<Vec<u32>> = uid_map
        .lines()
        .map(|l| l.split_whitespace().map(|w| w.parse().unwrap()).collect())
        .collect();
    assert_eq!(
        lines,
        [vec![0, user.uid, 1], vec![1, user.subuid_start, 65536]],
        "container root is the user, uid 1 on the first subordinate id"
    );

    // -e, and the container's root as the user on the host through a bind mount.
    let data = s.scratch.join("data");
    s.as_user("mkdir", &[&data.display().to_string()]);
    let bind = format!("{}:/data", data.display());
    let out = s.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-e",
        "GREETING=from-env",
        "-v",
        &bind,
        "busybox",
        "sh",
        "-c",
        "id -u; echo $GREETING > /data/by-root; touch /data/by-100; chown 100:100 /data/by-100",
    ]);
    assert_eq!(out, "0\n");
    assert_eq!(
        std::fs::read_to_string(data.join("by-root")).unwrap(),
        "from-env\n"
    );
    assert_eq!(
        Session::owner(&data.join("by-root")),
        (user.uid, user.gid),
        "a file the container's root wrote belongs to the user"
    );
    assert_eq!(
        Session::owner(&data.join("by-100")),
        (user.subuid_start + 99, user.subuid_start + 99),
        "container uid 100 is subordinate id 100 (first + 99)"
    );

    // -d, --name, logs, exec, ps, rm -f.
    let id = s.ok(&[
        "run",
        "-d",
        "--name",
        "sleeper",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo started; exec sleep 300",
    ]);
    let id = id.trim();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !s.ok(&["logs", "sleeper"]).contains("started") {
        assert!(Instant::now() < deadline, "no log line from the container");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        s.ok(&["exec", "sleeper", "sh", "-c", "echo exec-$((6*7)); id -u"]),
        "exec-42\n0\n"
    );
    assert!(s.ok(&["ps"]).contains("sleeper"));
    // On this machine's hybrid cgroups nothing is delegated: no group is made for it.
    for root in [
        "/sys/fs/cgroup/cpu,cpuacct",
        "/sys/fs/cgroup/memory",
        "/sys/fs/cgroup/pids",
        "/sys/fs/cgroup/unified",
    ] {
        let dir = std::path::Path::new(root).join("berth").join(id);
        assert!(!dir.exists(), "a cgroup was made at {}", dir.display());
    }
    // The container's processes are the user's on the host.
    let init = s.ok(&["inspect", "-f", "{{.State.Pid}}", "sleeper"]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", init.trim())).unwrap();
    let uid_line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap()
        .to_string();
    assert_eq!(
        uid_line.split_whitespace().nth(1),
        Some(user.uid.to_string().as_str()),
        "{uid_line}"
    );
    s.ok(&["rm", "-f", "sleeper"]);
    assert_eq!(s.ok(&["ps", "-aq"]), "");
}

#[test]
fn limits_are_refused_in_one_sentence_without_delegated_cgroups() {
    let s = session_with_busybox();
    for flags in [["--memory", "64m"], ["--cpus", "1"], ["--pids-limit", "10"]] {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend(flags);
        args.extend(["busybox", "true"]);
        let r = s.fails(&args);
        let line = r.stderr.trim();
        assert!(
            line.starts_with("Error: Berth runs without root")
                && line.contains("--memory, --cpus and --pids-limit cannot be applied")
                && line.contains("cgroups")
                && line.lines().count() == 1,
            "{flags:?}: {r:?}"
        );
        assert_eq!(s.ok(&["ps", "-aq"]), "", "{flags:?} left a container behind");
    }
    // Without limits the same run works.
    assert_eq!(
        s.ok(&["run", "--rm", "--network", "none", "busybox", "echo", "ok"]),
        "ok\n"
    );
    // Without a freezer, pause is refused in one sentence instead of pretending.
    s.ok(&[
        "run",
        "-d",
        "--name",
        "napper",
        "--network",
        "none",
        "busybox",
        "sleep",
        "300",
    ]);
    let r = s.fails(&["pause", "napper"]);
    assert!(
        r.stderr.trim().starts_with("Error: Berth runs without root")
            && r.stderr.contains("cannot be paused"),
        "{r:?}"
    );
    assert!(
        s.ok(&["ps"]).contains("Up "),
        "the container still runs, not paused"
    );
    s.ok(&["rm", "-f", "napper"]);
}

#[test]
fn the_default_and_user_networks_live_in_the_users_own_namespace() {
    let s = session_with_busybox();
    // A server on the host's loopback, reached through pasta as host.docker.internal.
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let served = std::thread::spawn(move || {
        let (mut c, _) = server.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = c.read(&mut buf);
        c.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 14\r\n\r\nhello-the-host")
            .unwrap();
    });
    let url = format!("http://host.docker.internal:{port}/");
    let out = s.ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        &format!("wget -q -O /tmp/got {url} && cat /tmp/got"),
    ]);
    assert_eq!(out, "hello-the-host");
    served.join().unwrap();
    let helper = s.network_helper().expect("the keeper has an outbound helper");
    let cmdline = std::fs::read(format!("/proc/{helper}/cmdline")).unwrap_or_default();
    assert!(
        cmdline.starts_with(b"pasta"),
        "the helper is pasta: {:?}",
        String::from_utf8_lossy(&cmdline)
    );

    // A user network: containers reach each other by name.
    s.ok(&["network", "create", "rlnet"]);
    s.ok(&[
        "run",
        "-d",
        "--name",
        "srv",
        "--network",
        "rlnet",
        "busybox",
        "sh",
        "-c",
        "echo by-name > /index.html && exec httpd -f -p 8000 -h /",
    ]);
    let ip = s.ok(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        "srv",
    ]);
    let fetch = "for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O /tmp/o http://srv:8000/index.html && break; sleep 0.2; done; cat /tmp/o";
    assert_eq!(
        s.ok(&["run", "--rm", "--network", "rlnet", "busybox", "sh", "-c", fetch]),
        "by-name\n"
    );

    // None of it is in the host's namespace or the root engine's state.
    let id = s.ok(&["inspect", "-f", "{{.Id}}", "srv"]);
    let veth = berth_net::veth_name(id.trim());
    assert!(
        !std::path::Path::new("/sys/class/net").join(&veth).exists(),
        "the container's veth {veth} is in the host's namespace"
    );
    let root_state = std::fs::read_to_string("/var/lib/berth/network/state.json").unwrap_or_default();
    assert!(
        !root_state.contains(id.trim()) && !root_state.contains("rlnet"),
        "root's IPAM knows the user's endpoint"
    );
    let nft = std::process::Command::new("nft")
        .args(["list", "ruleset"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&nft.stdout).contains("berth network rlnet"),
        "the user network's rules are in the host's nft tables"
    );
    assert!(!ip.trim().is_empty(), "srv has an address on rlnet");
    s.ok(&["rm", "-f", "srv"]);
    s.ok(&["network", "rm", "rlnet"]);
}

#[test]
fn published_ports_listen_on_the_hosts_loopback_and_low_ports_are_refused() {
    let s = session_with_busybox();
    let port = berth_tests::free_port();
    let publish = format!("127.0.0.1:{port}:80");
    s.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &publish,
        "busybox",
        "sh",
        "-c",
        "echo published > /index.html && exec httpd -f -p 80 -h /",
    ]);
    let reply = http_get(port, "/index.html");
    assert!(
        reply.starts_with("HTTP/1.") && reply.ends_with("published\n"),
        "{reply:?}"
    );
    assert!(s.ok(&["port", "web"]).contains(&port.to_string()));
    s.ok(&["rm", "-f", "web"]);

    let start: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        start > 80,
        "this machine lets users bind port 80 (ip_unprivileged_port_start={start})"
    );
    let r = s.fails(&["run", "--rm", "-p", "80:80", "busybox", "true"]);
    assert!(
        r.stderr.contains("net.ipv4.ip_unprivileged_port_start") && r.stderr.trim().lines().count() == 1,
        "{r:?}"
    );
    assert_eq!(s.ok(&["ps", "-aq"]), "");
}

#[test]
fn an_ordinary_user_pulls_from_a_local_registry_and_builds_with_run() {
    let s = Session::new(&User::ensure(USER));
    let reg = Registry::start(Mode::Plain);
    reg.push_fixture(
        &berth_tests::fixtures::image("busybox"),
        "rootless/busybox:latest",
    );
    let image = reg.reference("rootless/busybox:latest");
    s.ok(&["pull", &image]);
    assert_eq!(
        s.ok(&["run", "--rm", "--network", "none", &image, "echo", "pulled"]),
        "pulled\n"
    );

    // The unpacked layers belong to the user and its subordinate ids, never to the host's root.
    let mut owners = std::collections::BTreeSet::new();
    let layers = s.root.join("layers");
    for entry in std::fs::read_dir(&layers).unwrap() {
        owners.insert(Session::owner(&entry.unwrap().path()).0);
    }
    assert!(!owners.contains(&0), "a layer dir belongs to root: {owners:?}");

    let ctx = s.scratch.join("ctx");
    s.as_user("mkdir", &[&ctx.display().to_string()]);
    let dockerfile = format!(
        "FROM {image}\nRUN echo built-by-run > /built && mkdir /owned && touch /owned/f && chown 1000:1000 /owned/f && rm -rf /etc/network\nCMD [\"cat\", \"/built\"]\n"
    );
    let w = s
        .command_as_user("sh", &["-c", &format!("cat > {}/Dockerfile", ctx.display())])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    w.stdin
        .as_ref()
        .unwrap()
        .write_all(dockerfile.as_bytes())
        .unwrap();
    assert!(w.wait_with_output().unwrap().status.success());
    let out = s.ok(&["build", "-t", "built", &ctx.display().to_string()]);
    assert!(out.contains("Successfully tagged built:latest"), "{out}");
    assert_eq!(
        s.ok(&["run", "--rm", "--network", "none", "built"]),
        "built-by-run\n"
    );
    let listing = s.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "built",
        "sh",
        "-c",
        "stat -c '%u:%g' /owned/f; ls /etc/network 2>&1 || echo gone",
    ]);
    assert_eq!(listing.lines().next(), Some("1000:1000"), "{listing}");
    assert!(
        listing.ends_with("gone\n"),
        "the RUN's rm is a whiteout in the layer: {listing}"
    );
}

/// Where the kernel cannot mount overlayfs in a user namespace (before Linux 5.11) the
/// user's engine mounts fuse-overlayfs instead; `BERTH_OVERLAY=fuse-overlayfs` makes this
/// kernel take that path. Roots, RUN steps, whiteouts and opaque directories all work,
/// and a layer built on fuse-overlayfs runs on the kernel's overlay too.
#[test]
fn fuse_overlayfs_serves_the_roots_where_the_kernel_would_not() {
    berth_tests::tools::require("fuse-overlayfs", "fuse-overlayfs");
    let s = session_with_busybox();
    let fuse = ["BERTH_OVERLAY=fuse-overlayfs"];
    let ok = |env: &[&str], args: &[&str]| {
        let r = s.run_with_env(env, args);
        assert_eq!(r.code, 0, "berth {args:?} with {env:?}: {r:?}");
        r.stdout
    };
    let root = ok(
        &fuse,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "grep ' / ' /proc/mounts; echo written > /new && cat /new",
        ],
    );
    assert!(
        root.contains("fuse.fuse-overlayfs"),
        "the root is not fuse-overlayfs: {root}"
    );
    assert!(root.ends_with("written\n"), "{root}");

    let ctx = s.scratch.join("fuse-ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\n\
         RUN rm -rf /etc/network && mkdir /opq && echo a > /opq/a\n\
         RUN rm -rf /opq && mkdir /opq && echo b > /opq/b\n\
         CMD [\"sh\", \"-c\", \"ls /etc/network 2>/dev/null || echo no-network; ls -a /opq\"]\n",
    )
    .unwrap();
    for p in [&ctx, &ctx.join("Dockerfile")] {
        std::os::unix::fs::chown(p, Some(s.user.uid), Some(s.user.gid)).unwrap();
    }
    let built = ok(&fuse, &["build", "-t", "fused", &ctx.display().to_string()]);
    assert!(built.contains("Successfully tagged fused:latest"), "{built}");
    // The RUN's deletion is a whiteout, the recreated folder opaque: on either overlay.
    for env in [&fuse[..], &["BERTH_OVERLAY=kernel"][..]] {
        assert_eq!(
            ok(env, &["run", "--rm", "--network", "none", "fused"]),
            "no-network\n.\n..\nb\n",
            "with {env:?}"
        );
    }
    // Nothing stays mounted: the fuse-overlayfs processes ended with their containers.
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.starts_with("fuse-overlayfs") && c.contains(&s.root.display().to_string()))
        .collect();
    assert!(left.is_empty(), "fuse-overlayfs still serves: {left:?}");
}

/// A root engine (`berth daemon` as root) serving while an ordinary user's engine works:
/// the same network and container names in both, each engine sees only its own, the
/// user's endpoints are in none of root's state, and removing one side's leaves the other's
/// running.
#[test]
fn a_root_engine_running_at_the_same_time_shares_no_state_with_the_users() {
    let s = Session::new(&User::ensure(USER));
    let reg = Registry::start(Mode::Plain);
    reg.push_fixture(&berth_tests::fixtures::image("busybox"), "twins/busybox:latest");
    let image = reg.reference("twins/busybox:latest");
    let root = berth_tests::berth::Berth::new();
    let mut daemon = berth_tests::daemon::Daemon::start(&root);
    let net = format!("twin-{}", std::process::id());
    let run = [
        "run",
        "-d",
        "--name",
        "twin",
        "--network",
        &net,
        &image,
        "sleep",
        "300",
    ];
    root.ok(&["pull", &image]);
    s.ok(&["pull", &image]);
    root.ok(&["network", "create", &net]);
    s.ok(&["network", "create", &net]);
    let root_id = root.ok(&run).trim().to_string();
    let user_id = s.ok(&run).trim().to_string();
    assert_ne!(root_id, user_id);
    assert_eq!(
        root.ok(&["ps", "-q", "--no-trunc"]).trim(),
        root_id,
        "root lists only its own"
    );
    assert_eq!(
        s.ok(&["ps", "-q", "--no-trunc"]).trim(),
        user_id,
        "the user lists only its own"
    );

    let root_state = std::fs::read_to_string("/var/lib/berth/network/state.json").unwrap_or_default();
    assert!(root_state.contains(&root_id), "root's IPAM holds root's endpoint");
    assert!(
        !root_state.contains(&user_id),
        "root's IPAM holds the user's endpoint"
    );
    assert!(
        std::path::Path::new("/sys/class/net")
            .join(berth_net::veth_name(&root_id))
            .exists(),
        "root's container has its veth in the host's namespace"
    );
    assert!(
        !std::path::Path::new("/sys/class/net")
            .join(berth_net::veth_name(&user_id))
            .exists(),
        "the user's container has its veth in the host's namespace"
    );
    let address = |ok: &dyn Fn(&[&str]) -> String| {
        ok(&[
            "inspect",
            "-f",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            "twin",
        ])
        .trim()
        .to_string()
    };
    let root_ip = address(&|a| root.ok(a));
    let user_ip = address(&|a| s.ok(a));
    assert!(
        !root_ip.is_empty() && !user_ip.is_empty(),
        "{root_ip:?} {user_ip:?}"
    );

    // Root's side goes; the user's keeps running, on its network of the same name.
    root.ok(&["rm", "-f", "twin"]);
    root.ok(&["network", "rm", &net]);
    assert_eq!(s.ok(&["inspect", "-f", "{{.State.Running}}", "twin"]), "true\n");
    assert_eq!(s.ok(&["exec", "twin", "echo", "still-here"]), "still-here\n");
    assert!(s
        .ok(&["network", "ls", "--format", "{{.Name}}"])
        .lines()
        .any(|n| n == net));
    assert_eq!(address(&|a| s.ok(a)), user_ip, "the user's address moved");
    s.ok(&["rm", "-f", "twin"]);
    s.ok(&["network", "rm", &net]);
    daemon.stop();
}

/// `login` to a registry that wants a password, a pull through it, a terminal in a
/// running container (`exec -it` under `script`, as a user's shell gives one) and `stats`,
/// all as the ordinary user; the credentials land in the user's own ~/.docker, closed to
/// others.
#[test]
fn an_ordinary_user_logs_in_pulls_and_gets_a_terminal_and_stats() {
    let s = Session::new(&User::ensure(USER));
    let reg = Registry::start(Mode::htpasswd("student", "s3cret"));
    reg.push_fixture(&berth_tests::fixtures::image("busybox"), "private/busybox:latest");
    let image = reg.reference("private/busybox:latest");
    let config = s.user.home.join(".docker").join("config.json");
    let _ = std::fs::remove_file(&config);

    let refused = s.fails(&["pull", &image]);
    assert!(
        refused.stderr.contains("login"),
        "a pull without credentials: {refused:?}"
    );
    let mut login = s
        .command_as_user(
            &berth_tests::berth::bin().display().to_string(),
            &["login", "-u", "student", "--password-stdin", &reg.host()],
        )
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    login.stdin.take().unwrap().write_all(b"s3cret\n").unwrap();
    let out = login.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "login: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Login Succeeded"));
    let meta = std::fs::metadata(&config).expect("login wrote ~/.docker/config.json");
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert_eq!(
        (meta.uid(), meta.permissions().mode() & 0o077),
        (s.user.uid, 0),
        "owner and mode"
    );
    s.ok(&["pull", &image]);

    s.ok(&[
        "run",
        "-d",
        "--name",
        "term",
        "--network",
        "none",
        &image,
        "sleep",
        "300",
    ]);
    let script = berth_tests::tools::require("script", "bsdutils");
    let cmd = format!("{} exec -it term sh", berth_tests::berth::bin().display());
    let mut run = s
        .command_as_user(&script.display().to_string(), &["-qec", &cmd, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    run.stdin
        .take()
        .unwrap()
        .write_all(b"tty; id -u; echo sum-$((40+2)); exit 7\n")
        .unwrap();
    let out = run.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("/dev/pts/"), "the shell has a terminal: {text}");
    assert!(text.contains("sum-42"), "{text}");
    assert_eq!(out.status.code(), Some(7), "the shell's exit code: {text}");

    // No cgroup of its own here: stats count its processes.
    let stats = s.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.MemUsage}}|{{.PIDs}}",
        "term",
    ]);
    let (mem, pids) = stats.trim().split_once('|').expect("two fields");
    assert!(!mem.starts_with("0B"), "memory use counted: {stats}");
    assert_ne!(pids.trim(), "0", "processes counted: {stats}");

    s.ok(&["rm", "-f", "term"]);
    s.ok(&["logout", &reg.host()]);
    let _ = std::fs::remove_file(&config);
}

/// The user's `berth daemon`, started as the user, once its socket answers (its output in
/// `daemon.log` in the scratch folder).
fn users_daemon(s: &Session) -> (std::process::Child, std::path::PathBuf) {
    let log = std::fs::File::create(s.scratch.join("daemon.log")).unwrap();
    let daemon = s
        .command_as_user(&berth_tests::berth::bin().display().to_string(), &["daemon"])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let socket = s.runtime.join("berth/berth.sock");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(
            Instant::now() < deadline,
            "no daemon socket at {}",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (daemon, socket)
}

#[test]
fn the_docker_cli_drives_an_ordinary_users_berth_daemon() {
    let docker = berth_tests::tools::require("docker", "docker.io");
    let s = session_with_busybox();
    let (mut daemon, socket) = users_daemon(&s);
    assert_eq!(Session::owner(&socket).0, s.user.uid, "the socket is the user's");
    // The user's own docker CLI, through the Engine API of the user's daemon.
    let data = s.scratch.join("api-data");
    s.as_user("mkdir", &[&data.display().to_string()]);
    let host = format!("unix://{}", socket.display());
    let bind = format!("{}:/d", data.display());
    let r = s.as_user(
        &docker.display().to_string(),
        &[
            "-H",
            &host,
            "run",
            "--rm",
            "-v",
            &bind,
            "busybox",
            "sh",
            "-c",
            "echo via-api; touch /d/made",
        ],
    );
    assert_eq!((r.code, r.stdout.as_str()), (0, "via-api\n"), "{r:?}");
    assert_eq!(Session::owner(&data.join("made")).0, s.user.uid);
    let r = s.as_user(
        &docker.display().to_string(),
        &["-H", &host, "images", "--format", "{{.Repository}}"],
    );
    assert!(r.stdout.lines().any(|l| l == "busybox"), "{r:?}");
    // The engine says it is rootless as docker's rootless mode does (the desktop's
    // "Built-in, rootless" comes from this).
    let r = s.as_user(
        &docker.display().to_string(),
        &["-H", &host, "info", "--format", "{{json .SecurityOptions}}"],
    );
    assert!(r.stdout.contains("name=rootless"), "{r:?}");
    // docker cp both ways, as the user.
    let d = |args: &[&str]| {
        let mut all = vec!["-H", host.as_str()];
        all.extend_from_slice(args);
        let r = s.as_user(&docker.display().to_string(), &all);
        assert_eq!(r.code, 0, "docker {args:?}: {r:?}");
        r.stdout
    };
    d(&["run", "-d", "--name", "rl-cp", "busybox", "sleep", "1000"]);
    let host_file = s.scratch.join("in.txt");
    s.as_user(
        "sh",
        &["-c", &format!("echo from-the-host > {}", host_file.display())],
    );
    d(&["cp", &host_file.display().to_string(), "rl-cp:/tmp/in.txt"]);
    assert_eq!(d(&["exec", "rl-cp", "cat", "/tmp/in.txt"]), "from-the-host\n");
    let out = s.scratch.join("hostname.out");
    d(&["cp", "rl-cp:/etc/hostname", &out.display().to_string()]);
    assert!(!std::fs::read_to_string(&out).unwrap().trim().is_empty());
    assert_eq!(
        Session::owner(&out).0,
        s.user.uid,
        "a file copied out is the user's"
    );
    d(&["rm", "-f", "rl-cp"]);
    if let Some(pid) = rustix::process::Pid::from_raw(daemon.id() as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    let _ = daemon.wait();
}

#[test]
fn without_subordinate_ids_one_id_is_mapped_and_a_warning_says_what_breaks() {
    let s = Session::new(&User::ensure_without_subids("berth-rootless-oneid"));
    s.load_fixture("busybox", "busybox:latest");
    let keeper = s.keeper().expect("the load started a keeper");
    let uid_map = std::fs::read_to_string(format!("/proc/{keeper}/uid_map")).unwrap();
    let fields: Vec<&str> = uid_map.split_whitespace().collect();
    assert_eq!(fields, ["0", &s.user.uid.to_string(), "1"], "one id: {uid_map}");
    // The warning came once, with the keeper's start (the load): later commands are quiet.
    let r = s.run(&["run", "--rm", "--network", "none", "busybox", "echo", "hi"]);
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (0, "hi\n", ""),
        "{r:?}"
    );

    let data = s.scratch.join("data");
    s.as_user("mkdir", &[&data.display().to_string()]);
    let bind = format!("{}:/data", data.display());
    let r = s.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &bind,
        "busybox",
        "sh",
        "-c",
        "touch /data/mine; chown 100:100 /data/mine; echo chown=$?",
    ]);
    assert_eq!(
        r.stdout.lines().last(),
        Some("chown=1"),
        "chown to an unmapped id fails: {r:?}"
    );
    assert_eq!(Session::owner(&data.join("mine")), (s.user.uid, s.user.gid));
}

#[test]
fn the_one_id_warning_is_one_sentence_naming_the_fix() {
    let s = Session::new(&User::ensure_without_subids("berth-rootless-oneid"));
    let r = s.run(&["ps"]);
    assert_eq!(r.code, 0, "{r:?}");
    let warnings: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with("Warning: ")).collect();
    assert_eq!(warnings.len(), 1, "{r:?}");
    let w = warnings[0];
    assert!(
        w.contains("no subordinate ids for berth-rootless-oneid")
            && w.contains("chown inside containers")
            && w.contains("usermod --add-subuids"),
        "{w}"
    );
}

#[test]
fn an_ordinary_user_pushes_and_uses_named_volumes() {
    let s = session_with_busybox();

    // A named volume keeps what a container wrote, owned through the user's id map: the
    // container's root is the user, its uid 1000 is subordinate id 999.
    s.ok(&["volume", "create", "rl-data"]);
    let in_volume = |script: &str| {
        s.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            "rl-data:/d",
            "busybox",
            "sh",
            "-c",
            script,
        ])
    };
    in_volume("echo kept > /d/f && touch /d/g && chown 1000:1000 /d/g");
    assert_eq!(in_volume("cat /d/f"), "kept\n");
    let inspect: serde_json::Value =
        serde_json::from_str(&s.ok(&["volume", "inspect", "rl-data"])).expect("volume inspect is JSON");
    let mountpoint = inspect[0]["Mountpoint"]
        .as_str()
        .expect("a Mountpoint")
        .to_string();
    let mountpoint = std::path::Path::new(mountpoint.trim());
    assert_eq!(
        Session::owner(&mountpoint.join("f")).0,
        s.user.uid,
        "root's file is the user's"
    );
    assert_eq!(
        Session::owner(&mountpoint.join("g")).0,
        s.user.subuid_start + 999,
        "uid 1000 is the user's subordinate id 999"
    );

    // push to a registry on the host's loopback; skopeo (an independent tool) reads it back.
    let reg = Registry::start(Mode::Plain);
    let target = reg.reference("rootless/pushed:v1");
    s.ok(&["tag", "busybox", &target]);
    let pushed = s.ok(&["push", &target]);
    assert!(pushed.contains("digest: sha256:"), "{pushed}");
    let manifest = reg.skopeo_raw_manifest("rootless/pushed:v1");
    assert!(
        String::from_utf8_lossy(&manifest).contains("\"layers\""),
        "the registry holds the pushed manifest"
    );
    s.ok(&["volume", "rm", "rl-data"]);
}

/// `berth compose` as the ordinary user: the same client, so the rootless engine runs the
/// project — a web service with a published port that a worker reaches by name on the
/// project's network (in the user's own namespace), then `down -v` leaves nothing.
#[test]
fn an_ordinary_user_runs_a_compose_project() {
    let s = session_with_busybox();
    let dir = s.scratch.join("proj");
    std::fs::create_dir_all(&dir).unwrap();
    let port = berth_tests::free_port();
    std::fs::write(
        dir.join("compose.yaml"),
        format!(
            "services:\n  web:\n    image: busybox\n    command: sh -c 'echo from-web > /index.html && exec httpd -f -p 8000 -h /'\n    ports: [\"127.0.0.1:{port}:8000\"]\n  worker:\n    image: busybox\n    command: [\"sleep\", \"300\"]\n    depends_on: [web]\n    volumes: [data:/data]\n  poller:\n    image: busybox\n    command: [\"sh\", \"-c\", \"while true; do wget -q -O /dev/null http://web:8000/ && echo reached; sleep 1; done\"]\n    depends_on: [web]\nvolumes:\n  data:\n"
        ),
    )
    .unwrap();
    for p in [&dir, &dir.join("compose.yaml")] {
        std::os::unix::fs::chown(p, Some(s.user.uid), Some(s.user.gid)).unwrap();
    }
    // Through the user's `berth daemon`, as the desktop's Compose view does.
    let bin = berth_tests::berth::bin().display().to_string();
    let (mut daemon, socket) = users_daemon(&s);
    let host = format!("unix://{}", socket.display());
    let compose = |args: &[&str]| {
        let mut all = vec!["compose"];
        all.extend_from_slice(args);
        let o = s
            .command_as_user(&bin, &all)
            .env("BERTH_HOST", &host)
            .current_dir(&dir)
            .output()
            .unwrap();
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        );
        assert!(
            o.status.success(),
            "berth compose {args:?} as the user: {out}{err}"
        );
        format!("{out}{err}")
    };
    let up = compose(&["up", "-d"]);
    assert!(up.contains(" Container proj-worker-1  Started"), "{up}");
    assert!(http_get(port, "/").contains("from-web"), "the published port");
    assert_eq!(compose(&["ps", "--services"]), "poller\nweb\nworker\n");
    let fetched = compose(&[
        "exec",
        "-T",
        "worker",
        "sh",
        "-c",
        "for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O - http://web:8000/ && break; sleep 0.2; done",
    ]);
    assert_eq!(fetched, "from-web\n");
    // Restarted (the Compose view's Restart), then its log followed while it goes down.
    let restarted = compose(&["restart"]);
    assert!(restarted.contains("proj-poller-1"), "{restarted}");
    let mut follower = s
        .command_as_user(&bin, &["logs", "-f", "proj-poller-1"])
        .env("BERTH_HOST", &host)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let down = compose(&["down", "-v"]);
    let _ = follower.kill();
    let _ = follower.wait();
    assert!(
        down.contains(" Network proj_default  Removed") && down.contains(" Volume proj_data  Removed"),
        "{down}"
    );
    let left = s
        .command_as_user(&bin, &["ps", "-aq"])
        .env("BERTH_HOST", &host)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&left.stdout), "");
    if let Some(pid) = rustix::process::Pid::from_raw(daemon.id() as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    let _ = daemon.wait();
}

/// This session's container settings on an ordinary user's engine: an IPv6 user network
/// (two containers over it), `--cap-add`, `--sysctl`, `--read-only`, `--add-host` and
/// `--security-opt seccomp=unconfined` do what they do as root.
#[test]
fn an_ordinary_users_containers_take_ipv6_caps_sysctls_and_the_rest() {
    let s = session_with_busybox();
    s.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:c0:1::/64",
        "v6user",
    ]);
    s.ok(&[
        "run",
        "-d",
        "--name",
        "srv6",
        "--network",
        "v6user",
        "busybox",
        "sh",
        "-c",
        "echo over-ipv6 > /index.html && exec httpd -f -p 8000 -h /",
    ]);
    let v6 = s.ok(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.GlobalIPv6Address}}{{end}}",
        "srv6",
    ]);
    assert_eq!(v6.trim(), "fd00:c0:1::2");
    let fetch = "for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O /tmp/o 'http://[fd00:c0:1::2]:8000/index.html' && break; sleep 0.2; done; cat /tmp/o";
    assert_eq!(
        s.ok(&["run", "--rm", "--network", "v6user", "busybox", "sh", "-c", fetch]),
        "over-ipv6\n"
    );
    s.ok(&["rm", "-f", "srv6"]);
    s.ok(&["network", "rm", "v6user"]);

    let sh = |extra: &[&str], script: &str| {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["busybox", "sh", "-c", script]);
        s.ok(&args)
    };
    assert_eq!(
        sh(
            &["--cap-add", "NET_ADMIN"],
            "ip addr add 127.0.0.9/8 dev lo && echo added"
        ),
        "added\n"
    );
    assert_eq!(
        sh(
            &["--sysctl", "net.core.somaxconn=1234"],
            "cat /proc/sys/net/core/somaxconn"
        ),
        "1234\n"
    );
    assert_eq!(
        sh(
            &["--read-only", "--tmpfs", "/tmp"],
            "touch /x 2>/dev/null || touch /tmp/y && echo tmp-only"
        ),
        "tmp-only\n"
    );
    assert!(sh(&["--add-host", "db:10.1.2.3"], "cat /etc/hosts").contains("10.1.2.3\tdb\n"));
    assert_eq!(
        sh(
            &["--security-opt", "seccomp=unconfined"],
            "grep '^Seccomp:' /proc/self/status"
        ),
        "Seccomp:\t0\n"
    );
}
