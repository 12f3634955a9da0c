//! The real docker CLI (v28) against `berth daemon`: the lecture's common commands and the
//! lecture flow, each command's exit code and key output asserted. Where Debian's dockerd
//! 20.10 can run, the same steps run against it and the two are compared command by command.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_tests::berth::{Berth, Run};
use berth_tests::daemon::{docker_at, docker_command, run_of, Daemon};
use berth_tests::fixtures;
use berth_tests::registry::{Mode, Registry};

/// One engine the flow runs against.
struct Target {
    name: &'static str,
    host: String,
    config: tempfile::TempDir,
    steps: Vec<Step>,
}

#[derive(Debug, Clone)]
struct Step {
    name: String,
    code: i32,
    /// The key output the step checked (or what was there instead).
    key: String,
    ok: bool,
}

impl Target {
    fn new(name: &'static str, host: String) -> Target {
        let config = tempfile::tempdir().expect("tempdir");
        // The lecture's psFormat tip, honoured by the CLI for every engine.
        std::fs::write(
            config.path().join("config.json"),
            r#"{"psFormat": "table {{.Names}}\t{{.Image}}\t{{.Status}}"}"#,
        )
        .expect("config.json");
        Target {
            name,
            host,
            config,
            steps: Vec::new(),
        }
    }

    fn docker(&self, args: &[&str]) -> Run {
        docker_at(&self.host, self.config.path(), args)
    }

    /// Runs `docker ARGS`, expecting exit code `code` and `check` to return the key output
    /// (Err: what was wrong).
    fn step(
        &mut self,
        name: &str,
        args: &[&str],
        code: i32,
        check: impl Fn(&Run) -> Result<String, String>,
    ) -> Run {
        self.step_in(None, name, args, code, check)
    }

    /// Like [`step`](Self::step), run in directory `dir` (for `docker build .`).
    fn step_in(
        &mut self,
        dir: Option<&Path>,
        name: &str,
        args: &[&str],
        code: i32,
        check: impl Fn(&Run) -> Result<String, String>,
    ) -> Run {
        let r = match dir {
            None => self.docker(args),
            Some(d) => run_of(
                docker_command(&self.host, self.config.path(), args)
                    .current_dir(d)
                    .stdin(Stdio::null()),
            ),
        };
        let (ok, key) = if r.code != code {
            (
                false,
                format!("exit {} (wanted {code}); stderr: {}", r.code, r.stderr.trim()),
            )
        } else {
            match check(&r) {
                Ok(k) => (true, k),
                Err(e) => (false, e),
            }
        };
        self.steps.push(Step {
            name: name.to_string(),
            code: r.code,
            key,
            ok,
        });
        r
    }

    /// A check that is not a docker command (e.g. an HTTP request to a published port).
    fn record(&mut self, name: &str, result: Result<String, String>) {
        self.steps.push(Step {
            name: name.to_string(),
            code: 0,
            ok: result.is_ok(),
            key: result.unwrap_or_else(|e| e),
        });
    }

    fn failures(&self) -> Vec<&Step> {
        self.steps.iter().filter(|s| !s.ok).collect()
    }
}

fn has(out: &str, needle: &str) -> Result<String, String> {
    if out.contains(needle) {
        Ok(needle.to_string())
    } else {
        Err(format!("output lacks {needle:?}: {}", out.trim()))
    }
}

/// `docker cp SRC DEST` in `dir`, then a check that `dir/DEST` starts with `want` (for a
/// folder, DEST names the file in it to read; the folder's name is the source's).
fn cp_out(t: &mut Target, dir: &Path, name: &str, src: &str, dest: &str, want: &str) {
    let _ = std::fs::remove_file(dir.join(dest));
    let arg = if dest.contains('/') { "." } else { dest };
    t.step_in(Some(dir), name, &["cp", src, arg], 0, |_| Ok(String::new()));
    let copied = std::fs::read_to_string(dir.join(dest)).unwrap_or_default();
    t.record(
        &format!("{name}: content"),
        if copied.starts_with(want) {
            Ok(want.trim().replace('\n', " "))
        } else {
            Err(format!("copied {copied:?}"))
        },
    );
}

fn http_get(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

fn wait_http(port: u16) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(r) = http_get(port) {
            if r.contains(" 200 ") && r.contains("Hello from Flask") {
                return Ok("HTTP 200 Hello from Flask".into());
            }
        }
        if Instant::now() > deadline {
            return Err(format!("no HTTP 200 from port {port} in 60 s"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `docker logs -f`, stopped after `n` lines.
fn logs_follow(t: &Target, container: &str, n: usize) -> Result<String, String> {
    let mut child = docker_command(&t.host, t.config.path(), &["logs", "-f", container])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while lines.len() < n && Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            lines.push(l);
        }
    }
    // Still following (the container runs on): it must be killed to end.
    let still_running = matches!(child.try_wait(), Ok(None));
    let _ = child.kill();
    let _ = child.wait();
    if lines.len() < n {
        return Err(format!("logs -f gave {} lines in 20 s: {lines:?}", lines.len()));
    }
    if !still_running {
        return Err("logs -f ended by itself while the container runs".into());
    }
    Ok(format!("{n} lines, then still following"))
}

/// `docker exec -it` under a pty (`script`), as a user at a terminal.
/// Runs `docker ARGS` under a pty (`script`), as a user at a terminal; (exit code, output).
fn under_pty(t: &Target, args: &str) -> Result<(i32, String), String> {
    let cmd = format!("{} {args}", berth_tests::daemon::docker_cli().display());
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("DOCKER_HOST", &t.host)
        .env("DOCKER_CONFIG", t.config.path())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("script(1) missing ({e}): install bsdutils"))?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ))
}

/// `docker exec -it` under a pty.
fn exec_tty(t: &Target, container: &str) -> Result<String, String> {
    let (code, text) = under_pty(t, &format!("exec -it {container} sh -c 'tty; echo tty-ok'"))?;
    if code == 0 && text.contains("/dev/pts/") && text.contains("tty-ok") {
        Ok("/dev/pts/N tty-ok".into())
    } else {
        Err(format!("exec -it printed {text:?} (exit {code})"))
    }
}

/// `docker run -it` under a pty: output through the container's terminal, exit code back.
fn run_tty(t: &Target) -> Result<String, String> {
    let (code, text) = under_pty(t, "run -it --rm busybox sh -c 'echo it-ok; exit 2'")?;
    if code == 2 && text.contains("it-ok") {
        Ok("it-ok, exit 2".into())
    } else {
        Err(format!("run -it printed {text:?} (exit {code})"))
    }
}

struct Registries {
    plain: Registry,
    auth: Registry,
}

fn registries() -> Registries {
    let plain = Registry::start(Mode::Plain);
    plain.push_fixture(&fixtures::image("busybox"), "library/busybox:latest");
    let flask = fixtures::ensure_big().join("flask");
    plain.push_fixture(&flask, "lecture/flask-app:latest");
    // Only ever pulled by a build's FROM: big enough that its progress lines reach the
    // build stream while the pull is still running.
    plain.push_fixture(&flask, "lecture/flask-base:latest");
    let auth = Registry::start(Mode::htpasswd("student", "s3cret"));
    Registries { plain, auth }
}

/// The lecture flow. Every step records its exit code and key output.
fn flow(t: &mut Target, regs: &Registries, port: u16) {
    let reg = &regs.plain;
    let busybox = reg.reference("library/busybox:latest");
    let flask = reg.reference("lecture/flask-app:latest");
    let work = tempfile::tempdir().expect("tempdir");

    t.step(
        "version",
        &["version", "--format", "{{.Server.APIVersion}}"],
        0,
        |r| {
            let v = r.stdout.trim().to_string();
            if v.starts_with("1.") {
                Ok(format!("API {v}"))
            } else {
                Err(r.stdout.clone())
            }
        },
    );
    t.step("pull", &["pull", &busybox], 0, |r| {
        has(&r.stdout, "Downloaded newer image for")
    });
    t.step("pull again", &["pull", &busybox], 0, |r| {
        has(&r.stdout, "Image is up to date")
    });
    t.step("tag", &["tag", &busybox, "busybox:latest"], 0, |_| {
        Ok(String::new())
    });
    t.step("images", &["images"], 0, |r| {
        has(&r.stdout, "REPOSITORY")?;
        has(&r.stdout, "busybox")
    });
    // The lecture's build with a custom Dockerfile name (classic builder).
    std::fs::write(
        work.path().join("Dockerfile.custom"),
        "FROM busybox:latest\nRUN echo built-by-run > /built\nCOPY data.csv /app/data.csv\nCMD [\"cat\", \"/built\", \"/app/data.csv\"]\n",
    )
    .expect("write Dockerfile");
    std::fs::write(work.path().join("data.csv"), "a,b\n1,2\n").expect("write");
    let build_args = ["build", "-t", "my-image:v1.0", "-f", "Dockerfile.custom", "."];
    t.step_in(
        Some(work.path()),
        "build -f Dockerfile.custom",
        &build_args,
        0,
        |r| {
            has(&r.stdout, "Step 1/4 : FROM busybox:latest")?;
            has(&r.stdout, "Successfully tagged my-image:v1.0")
        },
    );
    t.step_in(Some(work.path()), "build again (cache)", &build_args, 0, |r| {
        has(&r.stdout, "Using cache")
    });
    t.step("run built image", &["run", "--rm", "my-image:v1.0"], 0, |r| {
        has(&r.stdout, "built-by-run")?;
        has(&r.stdout, "1,2")
    });
    std::fs::write(
        work.path().join("Dockerfile.fail"),
        "FROM busybox:latest\nRUN echo failing; exit 3\n",
    )
    .expect("write");
    t.step_in(
        Some(work.path()),
        "build failing RUN",
        &["build", "-f", "Dockerfile.fail", "."],
        3,
        |r| has(&r.stderr, "returned a non-zero code: 3"),
    );
    let base = reg.reference("lecture/flask-base:latest");
    std::fs::write(
        work.path().join("Dockerfile.pull"),
        format!("FROM {base}\nRUN echo pulled-by-from\n"),
    )
    .expect("write");
    t.step_in(
        Some(work.path()),
        "build FROM an image not pulled yet",
        &["build", "-t", "from-pulled:v1", "-f", "Dockerfile.pull", "."],
        0,
        |r| {
            has(&r.stdout, "Step 2/2 : RUN echo pulled-by-from")?;
            has(&r.stdout, "Successfully tagged from-pulled:v1")
        },
    );
    t.step(
        "run (attached)",
        &["run", "--rm", "busybox", "echo", "hi"],
        0,
        |r| {
            if r.stdout == "hi\n" {
                Ok("hi".into())
            } else {
                Err(format!("stdout {:?}", r.stdout))
            }
        },
    );
    let mut cat = docker_command(&t.host, t.config.path(), &["run", "-i", "--rm", "busybox", "cat"]);
    let piped = run_with_stdin(&mut cat, "from-stdin\n");
    t.record(
        "run -i (stdin piped)",
        if piped.code == 0 && piped.stdout == "from-stdin\n" {
            Ok("from-stdin".into())
        } else {
            Err(format!(
                "exit {}: {:?} {}",
                piped.code, piped.stdout, piped.stderr
            ))
        },
    );
    let tty_run = run_tty(t);
    t.record("run -it (pty)", tty_run);
    t.step(
        "run exit code",
        &[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ],
        3,
        |r| {
            has(&r.stdout, "out")?;
            has(&r.stderr, "err")
        },
    );
    // Detached with a published port (the image is pulled on demand).
    let publish = format!("{port}:5000");
    t.step(
        "run -d -p",
        &["run", "-d", "--name", "web", "-p", &publish, &flask],
        0,
        |r| {
            let id = r.stdout.trim();
            if id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit()) {
                Ok("64-hex ID".into())
            } else {
                Err(format!("not an ID: {id}"))
            }
        },
    );
    let page = wait_http(port);
    t.record("HTTP to published port", page);
    t.step("ps", &["ps"], 0, |r| {
        let row = r
            .stdout
            .lines()
            .find(|l| l.starts_with("web"))
            .ok_or(r.stdout.clone())?;
        has(row, "Up ")
    });
    t.step("port", &["port", "web"], 0, |r| {
        has(&r.stdout, &format!("5000/tcp -> 0.0.0.0:{port}"))
    });
    t.step("logs", &["logs", "web"], 0, |r| {
        has(&format!("{}{}", r.stdout, r.stderr), "Running on")
    });
    let follow = logs_follow(t, "web", 2);
    t.record("logs -f (killed after 2 lines)", follow);
    t.step(
        "exec",
        &["exec", "web", "python3", "-c", "print('in-container', 6*7)"],
        0,
        |r| has(&r.stdout, "in-container 42"),
    );
    t.step(
        "exec exit code",
        &["exec", "web", "sh", "-c", "exit 4"],
        4,
        |_| Ok(String::new()),
    );
    // docker cp, both ways (paths resolved inside the container).
    t.step_in(
        Some(work.path()),
        "cp into container",
        &["cp", "data.csv", "web:/tmp/"],
        0,
        |_| Ok(String::new()),
    );
    t.step("cp landed", &["exec", "web", "cat", "/tmp/data.csv"], 0, |r| {
        has(&r.stdout, "1,2")
    });
    t.step_in(
        Some(work.path()),
        "cp out of container",
        &["cp", "web:/tmp/data.csv", "copied.csv"],
        0,
        |_| Ok(String::new()),
    );
    let copied = std::fs::read_to_string(work.path().join("copied.csv")).unwrap_or_default();
    t.record(
        "cp out content",
        if copied == "a,b\n1,2\n" {
            Ok("a,b 1,2".into())
        } else {
            Err(format!("copied {copied:?}"))
        },
    );
    t.step("cp missing path", &["cp", "web:/no/such/file", "x"], 1, |r| {
        has(&r.stderr, "Could not find the file")
    });
    let tty = exec_tty(t, "web");
    t.record("exec -it (pty)", tty);
    t.step(
        "inspect",
        &[
            "inspect",
            "--format",
            "{{.State.Status}} {{.HostConfig.PortBindings}}",
            "web",
        ],
        0,
        |r| has(&r.stdout, "running"),
    );
    t.step("top", &["top", "web"], 0, |r| has(&r.stdout, "app.py"));
    t.step(
        "stats --no-stream",
        &[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}} {{.MemUsage}}",
            "web",
        ],
        0,
        |r| has(&r.stdout, "web "),
    );
    t.step("stop", &["stop", "-t", "1", "web"], 0, |r| has(&r.stdout, "web"));
    t.step("ps -a", &["ps", "-a"], 0, |r| {
        let row = r
            .stdout
            .lines()
            .find(|l| l.starts_with("web"))
            .ok_or(r.stdout.clone())?;
        has(row, "Exited (")
    });
    // docker cp out of a stopped container: from its own layer, and from a volume.
    cp_out(
        t,
        work.path(),
        "cp from exited container",
        "web:/tmp/data.csv",
        "from-exited.csv",
        "a,b\n1,2\n",
    );
    t.step(
        "cp from exited missing path",
        &["cp", "web:/no/such/file", "x"],
        1,
        |r| has(&r.stderr, "Could not find the file"),
    );
    let web_id = t.docker(&["inspect", "--format", "{{.Id}}", "web"]).stdout;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    t.record(
        "no mount left by cp from exited",
        match mountinfo
            .lines()
            .find(|l| !web_id.trim().is_empty() && l.contains(web_id.trim()))
        {
            None => Ok("none".into()),
            Some(l) => Err(format!("still mounted: {l}")),
        },
    );
    t.step(
        "run writing a volume",
        &[
            "run",
            "--name",
            "volw",
            "-v",
            "cpvol:/data",
            "busybox",
            "sh",
            "-c",
            "mkdir /data/d && echo in-volume > /data/d/v.txt",
        ],
        0,
        |_| Ok(String::new()),
    );
    let _ = std::fs::remove_dir_all(work.path().join("d"));
    cp_out(
        t,
        work.path(),
        "cp volume folder from exited container",
        "volw:/data/d",
        "d/v.txt",
        "in-volume\n",
    );
    t.step("rm volume writer", &["rm", "volw"], 0, |r| has(&r.stdout, "volw"));
    t.step("volume rm cpvol", &["volume", "rm", "cpvol"], 0, |r| {
        has(&r.stdout, "cpvol")
    });
    // ... and out of and into one that never ran (its image's layers only).
    t.step(
        "create (never started)",
        &["create", "--name", "fresh", "busybox", "cat", "/tmp/data.csv"],
        0,
        |_| Ok(String::new()),
    );
    cp_out(
        t,
        work.path(),
        "cp from created container",
        "fresh:/etc/passwd",
        "fresh-passwd",
        "root:",
    );
    t.step_in(
        Some(work.path()),
        "cp into created container",
        &["cp", "data.csv", "fresh:/tmp/"],
        0,
        |_| Ok(String::new()),
    );
    t.step("start -a sees the copy", &["start", "-a", "fresh"], 0, |r| {
        has(&r.stdout, "1,2")
    });
    t.step("rm created", &["rm", "fresh"], 0, |r| has(&r.stdout, "fresh"));
    t.step("start", &["start", "web"], 0, |r| has(&r.stdout, "web"));
    t.step("restart", &["restart", "-t", "1", "web"], 0, |r| {
        has(&r.stdout, "web")
    });
    t.step("rm running", &["rm", "web"], 1, |r| {
        has(&r.stderr.to_lowercase(), "stop the container")
    });
    t.step("rm -f", &["rm", "-f", "web"], 0, |r| has(&r.stdout, "web"));
    t.record(
        "port closed after rm",
        if http_get(port).is_none() {
            Ok("closed".into())
        } else {
            Err("still answering".into())
        },
    );

    // Attach to a detached container: its output until it exits, and its exit code.
    t.step(
        "run -d (for attach)",
        &[
            "run",
            "-d",
            "--name",
            "att",
            "busybox",
            "sh",
            "-c",
            "sleep 1; echo attached-line; sleep 1; exit 5",
        ],
        0,
        |_| Ok(String::new()),
    );
    t.step("attach", &["attach", "att"], 5, |r| {
        has(&r.stdout, "attached-line")
    });
    t.step("wait", &["wait", "att"], 0, |r| has(&r.stdout, "5"));
    t.step("rm", &["rm", "att"], 0, |r| has(&r.stdout, "att"));

    // Mounting a host directory (the lecture's -v $(pwd):/app).
    let bind = format!("{}:/app", work.path().display());
    t.step(
        "run -v $(pwd):/app",
        &["run", "--rm", "-v", &bind, "busybox", "cat", "/app/data.csv"],
        0,
        |r| has(&r.stdout, "1,2"),
    );
    t.step("volume create", &["volume", "create", "lecture-vol"], 0, |r| {
        has(&r.stdout, "lecture-vol")
    });
    t.step("volume ls", &["volume", "ls"], 0, |r| {
        has(&r.stdout, "lecture-vol")
    });
    t.step(
        "run -v volume",
        &[
            "run",
            "--rm",
            "-v",
            "lecture-vol:/data",
            "busybox",
            "sh",
            "-c",
            "echo kept > /data/f",
        ],
        0,
        |_| Ok(String::new()),
    );
    t.step(
        "volume persists",
        &[
            "run",
            "--rm",
            "-v",
            "lecture-vol:/data",
            "busybox",
            "cat",
            "/data/f",
        ],
        0,
        |r| has(&r.stdout, "kept"),
    );
    t.step(
        "volume inspect",
        &[
            "volume",
            "inspect",
            "--format",
            "{{.Name}} {{.Driver}}",
            "lecture-vol",
        ],
        0,
        |r| has(&r.stdout, "lecture-vol local"),
    );
    t.step("volume rm", &["volume", "rm", "lecture-vol"], 0, |r| {
        has(&r.stdout, "lecture-vol")
    });

    // A container on two networks: connect while it runs, then disconnect.
    t.step("network create", &["network", "create", "lecture-net"], 0, |r| {
        if r.stdout.trim().is_empty() {
            Err("no network ID printed".into())
        } else {
            Ok("ID".into())
        }
    });
    t.step(
        "run -d --network (peer)",
        &[
            "run",
            "-d",
            "--name",
            "netpeer",
            "--network",
            "lecture-net",
            "--network-alias",
            "netpeer-alias",
            "busybox",
            "sleep",
            "300",
        ],
        0,
        |_| Ok(String::new()),
    );
    t.step(
        "run -d (to connect)",
        &["run", "-d", "--name", "netx", "busybox", "sleep", "300"],
        0,
        |_| Ok(String::new()),
    );
    t.step(
        "network connect",
        &[
            "network",
            "connect",
            "--alias",
            "netx-alias",
            "lecture-net",
            "netx",
        ],
        0,
        |r| {
            if r.stdout.is_empty() {
                Ok("silent".into())
            } else {
                Err(format!("printed {:?}", r.stdout))
            }
        },
    );
    t.step(
        "connected: eth1 inside",
        &["exec", "netx", "cat", "/proc/net/dev"],
        0,
        |r| has(&r.stdout, "eth1:"),
    );
    t.step(
        "connected: peer by name",
        &["exec", "netx", "ping", "-c1", "-W3", "netpeer"],
        0,
        |r| has(&r.stdout, "1 packets received"),
    );
    t.step(
        "connected: peer by --network-alias",
        &["exec", "netx", "ping", "-c1", "-W3", "netpeer-alias"],
        0,
        |r| has(&r.stdout, "1 packets received"),
    );
    t.step(
        "connected: alias from peer",
        &["exec", "netpeer", "ping", "-c1", "-W3", "netx-alias"],
        0,
        |r| has(&r.stdout, "1 packets received"),
    );
    t.step(
        "inspect: two networks",
        &[
            "inspect",
            "--format",
            "{{len .NetworkSettings.Networks}} {{(index .NetworkSettings.Networks \"lecture-net\").Aliases}}",
            "netx",
        ],
        0,
        |r| {
            has(&r.stdout, "2 [")?;
            has(&r.stdout, "netx-alias")
        },
    );
    t.step(
        "network inspect: members",
        &[
            "network",
            "inspect",
            "--format",
            "{{range .Containers}}{{.Name}} {{end}}",
            "lecture-net",
        ],
        0,
        |r| {
            has(&r.stdout, "netx ")?;
            has(&r.stdout, "netpeer ")
        },
    );
    // Refusals: exit 1 with dockerd's words (stderr lowercased: the engines' case differs).
    for (name, net, container, needle) in [
        (
            "network connect twice",
            "lecture-net",
            "netx",
            "endpoint with name netx already exists in network lecture-net",
        ),
        (
            "network connect unknown network",
            "no-such-net",
            "netx",
            "no-such-net",
        ),
        (
            "network connect unknown container",
            "lecture-net",
            "no-such-container",
            "no such container",
        ),
        (
            "network connect host",
            "host",
            "netx",
            "container cannot be disconnected from host network or connected to host network",
        ),
    ] {
        t.step(name, &["network", "connect", net, container], 1, |r| {
            has(&r.stderr.to_lowercase(), needle)
        });
    }
    t.step(
        "create (to connect before start)",
        &["create", "--name", "netc", "busybox", "sleep", "300"],
        0,
        |_| Ok(String::new()),
    );
    t.step(
        "network connect created",
        &["network", "connect", "lecture-net", "netc"],
        0,
        |_| Ok(String::new()),
    );
    t.step("start connected", &["start", "netc"], 0, |r| {
        has(&r.stdout, "netc")
    });
    t.step(
        "started: eth1 and peer",
        &[
            "exec",
            "netc",
            "sh",
            "-c",
            "grep eth1: /proc/net/dev && ping -c1 -W3 netpeer",
        ],
        0,
        |r| {
            has(&r.stdout, "eth1:")?;
            has(&r.stdout, "1 packets received")
        },
    );
    t.step(
        "network disconnect",
        &["network", "disconnect", "lecture-net", "netx"],
        0,
        |_| Ok(String::new()),
    );
    t.step(
        "disconnected: no eth1",
        &["exec", "netx", "cat", "/proc/net/dev"],
        0,
        |r| {
            if r.stdout.contains("eth1:") {
                Err(r.stdout.clone())
            } else {
                has(&r.stdout, "eth0:")
            }
        },
    );
    t.step(
        "disconnected: peer unknown",
        &["exec", "netx", "ping", "-c1", "-W3", "netpeer"],
        1,
        |r| has(&r.stderr, "bad address"),
    );
    t.step(
        "network disconnect again",
        &["network", "disconnect", "lecture-net", "netx"],
        1,
        |r| has(&r.stderr, "is not connected to network lecture-net"),
    );
    t.step(
        "rm -f (networked)",
        &["rm", "-f", "netx", "netpeer", "netc"],
        0,
        |r| has(&r.stdout, "netpeer"),
    );
    t.step("network rm", &["network", "rm", "lecture-net"], 0, |r| {
        has(&r.stdout, "lecture-net")
    });

    // Images: tag, push, rmi, pull back.
    let mine = reg.reference("student/my-image:v1.0");
    t.step("tag for push", &["tag", "busybox:latest", &mine], 0, |_| {
        Ok(String::new())
    });
    t.step("push", &["push", &mine], 0, |r| has(&r.stdout, "digest: sha256:"));
    t.step("rmi", &["rmi", &mine], 0, |r| has(&r.stdout, "Untagged:"));
    t.step("pull pushed", &["pull", &mine], 0, |r| has(&r.stdout, "Status:"));
    t.step("history", &["history", &mine], 0, |r| {
        has(&r.stdout, "CREATED BY")
    });
    t.step("rmi unknown", &["rmi", "no-such-image:nope"], 1, |r| {
        has(&r.stderr.to_lowercase(), "no such image")
    });
    t.step("inspect unknown", &["inspect", "no-such-thing"], 1, |r| {
        has(&r.stderr.to_lowercase(), "no such")
    });

    // Login against the htpasswd registry, then an authenticated push.
    let auth = &regs.auth;
    let mut login = docker_command(
        &t.host,
        t.config.path(),
        &["login", "-u", "student", "--password-stdin", &auth.host()],
    );
    let login = run_with_stdin(&mut login, "s3cret\n");
    t.record(
        "login",
        if login.code == 0 {
            has(&login.stdout, "Login Succeeded")
        } else {
            Err(format!("exit {}: {}", login.code, login.stderr))
        },
    );
    let mut bad = docker_command(
        &t.host,
        t.config.path(),
        &["login", "-u", "student", "--password-stdin", &auth.host()],
    );
    let bad = run_with_stdin(&mut bad, "wrong\n");
    t.record(
        "login wrong password fails",
        if bad.code != 0 {
            Ok(format!("exit {}", bad.code))
        } else {
            Err("wrong password accepted".into())
        },
    );
    let private = auth.reference("student/private:v1");
    t.step(
        "tag for private push",
        &["tag", "busybox:latest", &private],
        0,
        |_| Ok(String::new()),
    );
    t.step("push with login", &["push", &private], 0, |r| {
        has(&r.stdout, "digest: sha256:")
    });

    // Cleanup commands.
    t.step(
        "run (to prune)",
        &["run", "--name", "done", "busybox", "true"],
        0,
        |_| Ok(String::new()),
    );
    t.step("container prune", &["container", "prune", "-f"], 0, |r| {
        has(&r.stdout, "Deleted Containers")
    });
    t.step("image prune", &["image", "prune", "-f"], 0, |r| {
        has(&r.stdout, "Total reclaimed space")
    });
    t.step("system df", &["system", "df"], 0, |r| has(&r.stdout, "Images"));
    t.step("system prune -a", &["system", "prune", "-a", "-f"], 0, |r| {
        has(&r.stdout, "Total reclaimed space")
    });
    t.step("images after prune", &["images", "-q"], 0, |r| {
        if r.stdout.trim().is_empty() {
            Ok("no images".into())
        } else {
            Err(format!("images left: {}", r.stdout))
        }
    });
    t.step(
        "events",
        &[
            "events",
            "--since",
            "10m",
            "--until",
            "0s",
            "--filter",
            "type=container",
            "--format",
            "{{.Action}}",
        ],
        0,
        |r| {
            has(&r.stdout, "start")?;
            has(&r.stdout, "die")
        },
    );
}

fn run_with_stdin(c: &mut Command, input: &str) -> Run {
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn docker");
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(input.as_bytes());
    }
    let out = child.wait_with_output().expect("docker output");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn report(t: &Target) -> String {
    let head = format!("[{}]\n", t.name);
    head + &t
        .steps
        .iter()
        .map(|s| {
            format!(
                "{:<32} exit {:<3} {} {}",
                s.name,
                s.code,
                if s.ok { "ok  " } else { "FAIL" },
                s.key
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn docker_cli_lecture_flow_against_berth() {
    let regs = registries();
    let b = Berth::new();
    let d = Daemon::start(&b);
    let mut t = Target::new("berth", d.host());
    flow(&mut t, &regs, berth_tests::free_port());
    println!("docker CLI v28 → berth daemon:\n{}", report(&t));
    assert!(
        t.failures().is_empty(),
        "steps failed against berth:\n{}\n\ndaemon log tail:\n{}",
        report(&t),
        d.log()
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Debian's dockerd on a private data root, exec root and socket; killed by PID on drop.
struct Dockerd {
    child: std::process::Child,
    dir: tempfile::TempDir,
}

impl Dockerd {
    fn start() -> Result<Dockerd, String> {
        let bin = berth_tests::tools::find("dockerd")
            .ok_or("dockerd is not installed (apt-get install docker.io)")?;
        let dir = tempfile::Builder::new()
            .prefix("berth-dockerd-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let p = |n: &str| dir.path().join(n);
        let log = std::fs::File::create(p("dockerd.log")).map_err(|e| e.to_string())?;
        let child = Command::new(bin)
            .arg(format!("--data-root={}", p("data").display()))
            .arg(format!("--exec-root={}", p("exec").display()))
            .arg(format!("--pidfile={}", p("dockerd.pid").display()))
            .arg(format!("--host=unix://{}", p("d.sock").display()))
            .args([
                "--iptables=false",
                "--ip-forward=false",
                "--containerd-namespace=berth-conformance",
            ])
            .arg("--containerd-plugins-namespace=berth-conformance-plugins")
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start dockerd: {e}"))?;
        let mut d = Dockerd { child, dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if std::os::unix::net::UnixStream::connect(d.socket()).is_ok() {
                let v = docker_at(&d.host(), d.dir.path(), &["version"]);
                if v.code == 0 {
                    return Ok(d);
                }
            }
            if let Ok(Some(st)) = d.child.try_wait() {
                return Err(format!("dockerd exited ({st}): {}", d.log_tail()));
            }
            if Instant::now() > deadline {
                return Err(format!("dockerd did not come up in 60 s: {}", d.log_tail()));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn socket(&self) -> std::path::PathBuf {
        self.dir.path().join("d.sock")
    }

    fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default();
        log.lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // Its containers first, then the daemon (SIGTERM stops containerd it started).
        let cfg = self.dir.path();
        let ids = docker_at(&self.host(), cfg, &["ps", "-aq"]).stdout;
        for id in ids.split_whitespace() {
            let _ = docker_at(&self.host(), cfg, &["rm", "-f", id]);
        }
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(self.child.id() as i32).expect("pid"),
            rustix::process::Signal::TERM,
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The same flow against dockerd and berth; every step's exit code must match (dockerd is
/// the reference), and berth must pass every check.
#[test]
fn docker_cli_berth_matches_dockerd() {
    let dockerd = match Dockerd::start() {
        Ok(d) => d,
        Err(why) => {
            // The one skip the issue allows: dockerd cannot run on this machine.
            println!("SKIPPED the dockerd comparison: {why}");
            return;
        }
    };
    let regs = registries();
    let mut reference = Target::new("dockerd", dockerd.host());
    flow(&mut reference, &regs, berth_tests::free_port());
    drop(dockerd);

    let b = Berth::new();
    let d = Daemon::start(&b);
    let mut ours = Target::new("berth", d.host());
    flow(&mut ours, &regs, berth_tests::free_port());

    let mut table = format!("{:<32} {:<16} {:<16}\n", "step", "dockerd 20.10", "berth");
    let mut mismatches = Vec::new();
    for (r, o) in reference.steps.iter().zip(&ours.steps) {
        assert_eq!(r.name, o.name);
        let cell = |s: &Step| format!("exit {} {}", s.code, if s.ok { "ok" } else { "FAIL" });
        table.push_str(&format!("{:<32} {:<16} {:<16}\n", r.name, cell(r), cell(o)));
        if r.code != o.code || r.ok != o.ok {
            mismatches.push(format!(
                "{}: dockerd {} / berth {} — {}",
                r.name,
                cell(r),
                cell(o),
                o.key
            ));
        }
    }
    println!("{table}");
    assert!(
        ours.failures().is_empty(),
        "berth failed steps:\n{}",
        report(&ours)
    );
    assert!(
        mismatches.is_empty(),
        "berth differs from dockerd:\n{}\n\ndockerd:\n{}",
        mismatches.join("\n"),
        report(&reference)
    );
}
