//! `berth compose`, Berth's own Compose (issue 15): a project as a lecture writes one — a
//! web service built from a Dockerfile with a HEALTHCHECK and a published port, a one-shot
//! `migrate` service the worker waits for (`service_completed_successfully`), a worker
//! gated on `service_healthy` that reaches the web service by name, a named volume, an
//! env_file and `.env` interpolation, a profile — run on the in-process engine. And the
//! labels: docker-compose 1.29.2 sees Berth's project and Berth sees docker-compose's.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use berth_tests::berth::{Berth, Run};
use berth_tests::daemon::{run_of, Daemon};
use berth_tests::http::get_page;
use berth_tests::registry::store_with_busybox;

fn compose(b: &Berth, dir: &Path, args: &[&str]) -> Run {
    let mut all = vec!["compose"];
    all.extend_from_slice(args);
    let mut cmd = b.command(&all);
    cmd.current_dir(dir);
    run_of(&mut cmd)
}

fn ok(b: &Berth, dir: &Path, args: &[&str]) -> String {
    let r = compose(b, dir, args);
    assert_eq!(r.code, 0, "berth compose {args:?}:\n{}\n{}", r.stdout, r.stderr);
    format!("{}{}", r.stdout, r.stderr)
}

fn wait_for_page(port: u16, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = get_page(port).unwrap_or_default();
        if got.contains(want) || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

#[test]
fn berth_compose_runs_a_lecture_project_up_to_down() {
    let (_reg, b) = store_with_busybox();
    let project = format!("lecture-{}", std::process::id());
    let dir = b.root().join(&project);
    let port = berth_tests::free_port();
    write(
        &dir,
        &[
            (
                "web/Dockerfile",
                "FROM busybox\nWORKDIR /www\nCOPY index.html /www/\n\
                 HEALTHCHECK --interval=1s --timeout=2s --retries=3 CMD wget -q -O /dev/null http://127.0.0.1:8000/ || exit 1\n\
                 EXPOSE 8000\nCMD [\"httpd\", \"-f\", \"-p\", \"8000\", \"-h\", \"/www\"]\n",
            ),
            ("web/index.html", "first version\n"),
            (".env", &format!("WEB_PORT={port}\nGREETING=hello-from-dotenv\n")),
            ("worker.env", "MODE=from-env-file\n"),
            (
                "compose.yaml",
                r#"services:
  web:
    build: ./web
    ports: ["127.0.0.1:${WEB_PORT}:8000"]
  migrate:
    image: busybox
    command: sh -c 'echo migrated > /data/schema'
    volumes: [data:/data]
  worker:
    image: busybox
    env_file: worker.env
    environment:
      GREETING: ${GREETING}
      TARGET: ${TARGET:-http://web:8000/}
    command: ["sh", "-c", "echo worker $$MODE $$GREETING; cat /data/schema; while true; do wget -q -O /data/seen $$TARGET && echo fetched; sleep 1; done"]
    volumes: [data:/data]
    depends_on:
      web:
        condition: service_healthy
      migrate:
        condition: service_completed_successfully
  debug:
    image: busybox
    command: sleep 300
    profiles: [debug]
volumes:
  data:
"#,
            ),
        ],
    );

    // config: interpolated (.env), the folder's name as the project's.
    let config = ok(&b, &dir, &["config"]);
    assert!(config.contains(&format!("127.0.0.1:{port}:8000")), "{config}");
    assert!(config.contains("GREETING: hello-from-dotenv"), "{config}");
    assert!(config.contains(&format!("name: {project}")), "{config}");
    assert_eq!(
        ok(&b, &dir, &["config", "--services"])
            .lines()
            .collect::<Vec<_>>(),
        ["web", "migrate", "worker"]
    );

    let up = ok(&b, &dir, &["up", "-d"]);
    for line in [
        format!(" Network {project}_default  Created"),
        format!(" Volume {project}_data  Created"),
        format!(" Container {project}-web-1  Healthy"),
        format!(" Container {project}-worker-1  Started"),
    ] {
        assert!(up.contains(&line), "{line:?} missing from:\n{up}");
    }
    assert!(wait_for_page(port, "first version").contains("first version"));
    let ps = ok(&b, &dir, &["ps", "--services"]);
    assert_eq!(
        ps.lines().collect::<Vec<_>>(),
        ["web", "worker"],
        "running services (migrate is done, debug has a profile)"
    );
    let all = ok(&b, &dir, &["ps", "-a"]);
    assert!(
        all.contains(&format!("{project}-migrate-1")) && all.contains("Exited (0)"),
        "{all}"
    );

    // The worker got its env_file, .env, the migration's volume, and reaches web by name.
    let deadline = Instant::now() + Duration::from_secs(20);
    let logs = loop {
        let l = ok(&b, &dir, &["logs", "worker"]);
        if l.contains("fetched") || Instant::now() > deadline {
            break l;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    let prefix = format!("{project}-worker-1  | ");
    assert!(
        logs.contains(&format!("{prefix}worker from-env-file hello-from-dotenv")),
        "{logs}"
    );
    assert!(logs.contains(&format!("{prefix}migrated")), "{logs}");
    assert!(logs.contains(&format!("{prefix}fetched")), "{logs}");
    assert_eq!(
        ok(&b, &dir, &["exec", "-T", "worker", "cat", "/data/seen"]).trim(),
        "first version"
    );

    // Compose's labels, which docker-compose and Compose v2 read.
    let labels = b.ok(&[
        "inspect",
        "-f",
        "{{json .Config.Labels}}",
        &format!("{project}-web-1"),
    ]);
    let labels: serde_json::Value = serde_json::from_str(&labels).unwrap();
    assert_eq!(labels["com.docker.compose.project"], project.as_str());
    assert_eq!(labels["com.docker.compose.service"], "web");
    assert_eq!(labels["com.docker.compose.container-number"], "1");
    assert_eq!(labels["com.docker.compose.oneoff"], "False");

    // Unchanged, up leaves the containers alone; an edit and --build recreates web only.
    let again = ok(&b, &dir, &["up", "-d"]);
    assert!(
        again.contains(&format!(" Container {project}-web-1  Running")),
        "{again}"
    );
    std::fs::write(dir.join("web/index.html"), "second version\n").unwrap();
    let rebuilt = ok(&b, &dir, &["up", "-d", "--build"]);
    assert!(
        rebuilt.contains(&format!(" Container {project}-web-1  Recreated")),
        "{rebuilt}"
    );
    assert!(wait_for_page(port, "second version").contains("second version"));

    // --scale, and a profile's service by name.
    let scaled = ok(&b, &dir, &["up", "-d", "--scale", "worker=2"]);
    assert!(
        scaled.contains(&format!(" Container {project}-worker-2  Started")),
        "{scaled}"
    );
    ok(&b, &dir, &["--profile", "debug", "up", "-d", "debug"]);
    let services = ok(&b, &dir, &["--profile", "debug", "ps", "--services"]);
    assert_eq!(services.lines().collect::<Vec<_>>(), ["debug", "web", "worker"]);

    // down -v: nothing of the project is left.
    let down = ok(&b, &dir, &["--profile", "debug", "down", "-v"]);
    assert!(
        down.contains(&format!(" Network {project}_default  Removed")),
        "{down}"
    );
    assert!(
        down.contains(&format!(" Volume {project}_data  Removed")),
        "{down}"
    );
    assert_eq!(b.ok(&["ps", "-aq"]), "");
    assert!(!b.ok(&["network", "ls"]).contains(&project));
    assert!(!b.ok(&["volume", "ls"]).contains(&project));
}

#[test]
fn bad_projects_are_refused_in_one_sentence() {
    let (_reg, b) = store_with_busybox();
    let dir = b.root().join("bad");
    let refused = |file: &str, says: &str| {
        write(&dir, &[("compose.yaml", file)]);
        let r = compose(&b, &dir, &["up", "-d"]);
        assert_ne!(r.code, 0, "{file}");
        assert!(r.stderr.contains(says), "{says:?} not in {:?}", r.stderr);
        assert_eq!(r.stderr.trim().lines().count(), 1, "one sentence: {:?}", r.stderr);
    };
    refused(
        "services:\n  a:\n    image: busybox\n    depends_on: [b]\n  b:\n    image: busybox\n    depends_on: [a]\n",
        "depend on each other in a circle",
    );
    refused(
        "services:\n  a:\n    image: busybox\n    secrets: [token]\nsecrets:\n  token:\n    file: ./t\n",
        "services.a.secrets is not supported by berth compose yet",
    );
    refused(
        "services:\n  a:\n    image: ${IMAGE:?set IMAGE in .env}\n",
        "IMAGE is required: set IMAGE in .env",
    );
    refused(
        "services:\n  a:\n    image: busybox\n    volumes: [nowhere:/x]\n",
        "is not declared in the top-level volumes",
    );
    std::fs::remove_file(dir.join("compose.yaml")).unwrap();
    let r = compose(&b, &dir, &["ps"]);
    assert!(r.stderr.contains("no compose file here"), "{r:?}");
    assert_eq!(b.ok(&["ps", "-aq"]), "", "nothing was made");
}

/// Compose's labels are the contract: a project `berth compose` started is listed and taken
/// down by docker-compose 1.29.2, and one docker-compose started by `berth compose`.
#[test]
fn docker_compose_and_berth_compose_see_each_others_projects() {
    let found = Command::new("docker-compose").arg("version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "docker-compose is missing: run bash scripts/install.sh tests (Debian's docker-compose 1.29.2)"
    );
    let (_reg, b) = store_with_busybox();
    let d = Daemon::start(&b);
    let project = format!("twotools{}", std::process::id());
    let dir = b.root().join(&project);
    write(
        &dir,
        &[(
            "docker-compose.yml",
            "version: \"3.8\"\nservices:\n  app:\n    image: busybox\n    command: sleep 300\n",
        )],
    );
    let docker_compose = |args: &[&str]| {
        run_of(
            Command::new("docker-compose")
                .args(args)
                .current_dir(&dir)
                .env("DOCKER_HOST", d.host())
                .env("COMPOSE_INTERACTIVE_NO_CLI", "1"),
        )
    };
    let berth = |args: &[&str]| {
        let mut all = vec!["compose"];
        all.extend_from_slice(args);
        let mut cmd = b.command(&all);
        cmd.current_dir(&dir).env("BERTH_HOST", d.host());
        run_of(&mut cmd)
    };

    let up = berth(&["up", "-d"]);
    assert_eq!(up.code, 0, "{up:?}");
    let ps = docker_compose(&["ps"]);
    assert_eq!(ps.code, 0, "{ps:?}");
    assert!(
        ps.stdout.contains(&format!("{project}-app-1")) && ps.stdout.contains("Up"),
        "{ps:?}"
    );
    let down = docker_compose(&["down"]);
    assert_eq!(down.code, 0, "{down:?}");
    assert_eq!(
        b.ok(&["ps", "-aq"]),
        "",
        "docker-compose down removed Berth's container"
    );

    let up = docker_compose(&["up", "-d"]);
    assert_eq!(up.code, 0, "{up:?}");
    let ps = berth(&["ps"]);
    assert!(ps.stdout.contains(&format!("{project}_app_1")), "{ps:?}");
    let down = berth(&["down"]);
    assert_eq!(down.code, 0, "{down:?}");
    assert!(
        down.stderr
            .contains(&format!(" Network {project}_default  Removed")),
        "{down:?}"
    );
    assert_eq!(b.ok(&["ps", "-aq"]), "");
}
