//! Debian's docker-compose 1.29.2 (a real Engine API client, through docker-py) on a
//! multi-service project against `berth daemon`: a web service built from a Dockerfile with
//! a HEALTHCHECK and a published port, a second service gated on `service_healthy` that
//! reaches the first by name, a named volume. up, ps, logs, exec, a rebuild after an edit
//! (which recreates the container: compose renames the old one first), --scale, and
//! `down -v`, which leaves no container, network or volume.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use berth_tests::berth::Run;
use berth_tests::daemon::{run_of, Daemon};
use berth_tests::http::get_page;
use berth_tests::registry::store_with_busybox;

fn compose_bin() -> &'static str {
    let found = Command::new("docker-compose").arg("version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "docker-compose is missing: run bash scripts/install.sh tests (Debian's docker-compose 1.29.2)"
    );
    "docker-compose"
}

fn compose(d: &Daemon, dir: &Path, args: &[&str]) -> Run {
    run_of(
        Command::new(compose_bin())
            .args(args)
            .current_dir(dir)
            .env("DOCKER_HOST", d.host())
            .env("COMPOSE_INTERACTIVE_NO_CLI", "1"),
    )
}

fn ok(d: &Daemon, dir: &Path, args: &[&str]) -> String {
    let r = compose(d, dir, args);
    assert_eq!(
        r.code,
        0,
        "docker-compose {args:?}:\n{}\n{}\ndaemon log:\n{}",
        r.stdout,
        r.stderr,
        d.log()
    );
    format!("{}{}", r.stdout, r.stderr)
}

fn wait_for_page(port: u16, want: &str) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = get_page(port);
        if got.as_deref().is_some_and(|p| p.contains(want)) || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn docker_compose_up_scale_rebuild_and_down() {
    let (_reg, b) = store_with_busybox();
    let d = Daemon::start(&b);
    let project = format!("lecture{}", std::process::id());
    let dir = b.root().join(&project);
    std::fs::create_dir_all(dir.join("web")).unwrap();
    let port = berth_tests::free_port();
    std::fs::write(
        dir.join("web/Dockerfile"),
        "FROM busybox\nWORKDIR /www\nCOPY index.html /www/\n\
         HEALTHCHECK --interval=1s --timeout=2s --retries=3 CMD wget -q -O /dev/null http://127.0.0.1:8000/ || exit 1\n\
         EXPOSE 8000\nCMD [\"httpd\", \"-f\", \"-p\", \"8000\", \"-h\", \"/www\"]\n",
    )
    .unwrap();
    std::fs::write(dir.join("web/index.html"), "first version\n").unwrap();
    std::fs::write(
        dir.join("docker-compose.yml"),
        format!(
            r#"version: "3.8"
services:
  web:
    build: ./web
    ports:
      - "127.0.0.1:{port}:8000"
    volumes:
      - data:/data
  client:
    image: busybox
    depends_on:
      web:
        condition: service_healthy
    command: ["sh", "-c", "while true; do wget -q -O - http://web:8000/ ; sleep 1; done"]
    environment:
      - GREETING=hello
volumes:
  data:
"#
        ),
    )
    .unwrap();

    // up: built, healthy before the client starts, published, reached by name.
    let out = ok(&d, &dir, &["up", "-d"]);
    assert!(out.contains("Successfully built"), "{out}");
    let page = wait_for_page(port, "first version");
    assert!(
        page.as_deref().is_some_and(|p| p.contains("first version")),
        "{page:?}"
    );
    let ps = ok(&d, &dir, &["ps"]);
    assert!(
        ps.contains(&format!("{project}_web_1")) && ps.contains("(healthy)"),
        "{ps}"
    );
    assert!(ps.contains(&format!("{project}_client_1")), "{ps}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let logs = loop {
        let logs = ok(&d, &dir, &["logs", "client"]);
        if logs.contains("first version") || Instant::now() > deadline {
            break logs;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(
        logs.contains("first version"),
        "the client did not reach web by name: {logs}"
    );
    let out = ok(&d, &dir, &["exec", "-T", "client", "sh", "-c", "echo $GREETING"]);
    assert!(out.contains("hello"), "{out}");
    let out = ok(&d, &dir, &["exec", "-T", "web", "ls", "-d", "/data"]);
    assert!(out.contains("/data"), "{out}");

    // The docker CLI sees compose's labels.
    let r = d.docker(
        b.docker_config(),
        &[
            "ps",
            "--filter",
            &format!("label=com.docker.compose.project={project}"),
            "--format",
            "{{.Names}} {{.Status}}",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 2, "{}", r.stdout);

    // An edit, then up --build: a new image, the container recreated (renamed, then
    // replaced), the new page served.
    std::fs::write(dir.join("web/index.html"), "second version\n").unwrap();
    let out = ok(&d, &dir, &["up", "-d", "--build"]);
    assert!(out.contains("Recreating"), "{out}");
    let page = wait_for_page(port, "second version");
    assert!(
        page.as_deref().is_some_and(|p| p.contains("second version")),
        "{page:?}"
    );

    // --scale: two clients.
    ok(&d, &dir, &["up", "-d", "--scale", "client=2"]);
    let ps = ok(&d, &dir, &["ps"]);
    assert!(ps.contains(&format!("{project}_client_2")), "{ps}");

    // down -v: nothing of the project left.
    ok(&d, &dir, &["down", "-v"]);
    let left = |args: &[&str]| {
        let r = d.docker(b.docker_config(), args);
        assert_eq!(r.code, 0, "{}", r.stderr);
        r.stdout
            .lines()
            .filter(|l| l.contains(&project))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        left(&["ps", "-a", "--format", "{{.Names}}"]),
        Vec::<String>::new()
    );
    assert_eq!(
        left(&["network", "ls", "--format", "{{.Name}}"]),
        Vec::<String>::new()
    );
    assert_eq!(
        left(&["volume", "ls", "--format", "{{.Name}}"]),
        Vec::<String>::new()
    );
}

/// A healthcheck through the docker CLI v28: `(health: starting)`, then `unhealthy` after
/// the retries, `healthy` once the check passes, each change a `health_status` event, the
/// `health=` filter, and `--no-healthcheck` turning an image's check off.
#[test]
fn healthcheck_transitions_events_and_filters() {
    let (_reg, b) = store_with_busybox();
    let d = Daemon::start(&b);
    let docker = |args: &[&str]| {
        let r = d.docker(b.docker_config(), args);
        assert_eq!(r.code, 0, "docker {args:?}: {}{}", r.stdout, r.stderr);
        r.stdout.trim().to_string()
    };
    let start = time_now();
    docker(&[
        "run",
        "-d",
        "--name",
        "hc",
        "--health-cmd",
        "test -f /tmp/ok",
        "--health-interval",
        "300ms",
        "--health-retries",
        "2",
        "busybox",
        "sleep",
        "300",
    ]);
    let status = || docker(&["ps", "--filter", "name=hc", "--format", "{{.Status}}"]);
    let wait_for = |want: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = status();
            if s.contains(want) || Instant::now() > deadline {
                return s;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    assert!(
        status().contains("(health: starting)") || status().contains("(unhealthy)"),
        "{}",
        status()
    );
    assert!(wait_for("(unhealthy)").contains("(unhealthy)"));
    assert_eq!(
        docker(&["ps", "--filter", "health=unhealthy", "--format", "{{.Names}}"]),
        "hc"
    );
    docker(&["exec", "hc", "touch", "/tmp/ok"]);
    assert!(wait_for("(healthy)").ends_with("(healthy)"), "{}", status());
    assert_eq!(
        docker(&["ps", "--filter", "health=healthy", "--format", "{{.Names}}"]),
        "hc"
    );
    let health: serde_json::Value =
        serde_json::from_str(&docker(&["inspect", "--format", "{{json .State.Health}}", "hc"])).unwrap();
    assert_eq!(health["Status"], "healthy", "{health}");
    assert_eq!(health["FailingStreak"], 0, "{health}");
    assert!(
        health["Log"]
            .as_array()
            .is_some_and(|l| !l.is_empty() && l.len() <= 5),
        "{health}"
    );
    // The engine's watcher looks once a second.
    std::thread::sleep(Duration::from_millis(1500));
    let events = docker(&[
        "events",
        "--since",
        &start,
        "--until",
        &time_now(),
        "--filter",
        "container=hc",
        "--filter",
        "event=health_status",
        "--format",
        "{{.Status}}",
    ]);
    let seen: Vec<&str> = events.lines().collect();
    assert_eq!(
        seen,
        ["health_status: unhealthy", "health_status: healthy"],
        "{events}"
    );

    // --no-healthcheck: no check, no Health.
    docker(&[
        "run",
        "-d",
        "--name",
        "nohc",
        "--no-healthcheck",
        "busybox",
        "sleep",
        "300",
    ]);
    assert_eq!(
        docker(&["inspect", "--format", "{{json .State.Health}}", "nohc"]),
        "null"
    );
    let r = d.docker(
        b.docker_config(),
        &["run", "--rm", "--health-interval", "soon", "busybox", "true"],
    );
    assert_ne!(r.code, 0);
    docker(&["rm", "-f", "hc", "nohc"]);
}

/// Seconds since the epoch, as `docker events --since/--until` take them.
fn time_now() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}
