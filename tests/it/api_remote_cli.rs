//! The `berth` CLI driving an engine through its API (`BERTH_HOST`, via bollard): the
//! commands run in the daemon's root, not the CLI's own.

use std::io::{Read, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use berth_tests::berth::Berth;
use berth_tests::daemon::{run_of, Daemon};
use berth_tests::fixtures;
use berth_tests::registry::{Mode, Registry};

fn http_get(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[test]
fn berth_cli_through_berth_host() {
    let reg = Registry::start(Mode::Plain);
    reg.push_fixture(&fixtures::image("busybox"), "library/busybox:latest");
    reg.push_fixture(&fixtures::ensure_big().join("flask"), "lecture/flask-app:latest");
    let server = Berth::new();
    let d = Daemon::start(&server);
    // The client has a root of its own, which must stay untouched.
    let client = Berth::new();
    let remote = |args: &[&str]| {
        let mut c = client.command(args);
        c.env("BERTH_HOST", d.host());
        run_of(&mut c)
    };
    let ok = |args: &[&str]| {
        let r = remote(args);
        assert_eq!(r.code, 0, "berth {args:?} failed: {}\n{}", r.stderr, d.log());
        r.stdout
    };

    let busybox = reg.reference("library/busybox:latest");
    ok(&["pull", "-q", &busybox]);
    ok(&["tag", &busybox, "busybox:latest"]);
    assert!(ok(&["images"]).contains("busybox"));
    assert_eq!(
        ok(&["run", "--rm", "busybox", "echo", "remote-hi"]),
        "remote-hi\n"
    );
    assert_eq!(remote(&["run", "--rm", "busybox", "sh", "-c", "exit 4"]).code, 4);

    let mut cat = client.command(&["run", "-i", "--rm", "busybox", "cat"]);
    cat.env("BERTH_HOST", d.host())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = cat.spawn().expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"through the API\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "through the API\n");

    // A published port, from an image the daemon pulls on demand.
    let port = berth_tests::free_port();
    let id = ok(&[
        "run",
        "-d",
        "--name",
        "rweb",
        "-p",
        &format!("{port}:5000"),
        &reg.reference("lecture/flask-app"),
    ]);
    assert_eq!(id.trim().len(), 64, "{id}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !http_get(port).is_some_and(|r| r.contains(" 200 ")) {
        assert!(Instant::now() < deadline, "no HTTP 200 on {port}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let ps = ok(&["ps"]);
    assert!(
        ps.contains("rweb") && ps.contains(&format!("0.0.0.0:{port}->5000/tcp")),
        "{ps}"
    );
    let r = remote(&["exec", "rweb", "sh", "-c", "echo inside; exit 3"]);
    assert_eq!((r.code, r.stdout.as_str()), (3, "inside\n"));
    let logs = remote(&["logs", "rweb"]);
    assert!(
        format!("{}{}", logs.stdout, logs.stderr).contains("Running on"),
        "{logs:?}"
    );
    assert!(ok(&["inspect", "rweb"]).contains("\"Running\": true"));
    ok(&["stop", "-t", "1", "rweb"]);
    assert!(ok(&["ps", "-a"]).contains("Exited"));
    ok(&["rm", "rweb"]);
    ok(&["volume", "create", "rvol"]);
    assert!(ok(&["volume", "ls"]).contains("rvol"));
    ok(&["volume", "rm", "rvol"]);

    // Every command works through the API, also those that once refused to.
    assert!(ok(&["system", "df"]).contains("Images"));
    assert!(ok(&["system", "check"]).contains("no problems"));
    let archive = client.root().join("busybox.tar");
    ok(&["save", "-o", archive.to_str().unwrap(), "busybox:latest"]);
    ok(&["rmi", "busybox:latest"]);
    assert!(ok(&["load", "-i", archive.to_str().unwrap()]).contains("Loaded image: busybox:latest"));
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nRUN echo built > /b\nCMD cat /b\n",
    )
    .unwrap();
    let built = ok(&["build", "-t", "remote-built", ctx.path().to_str().unwrap()]);
    assert!(
        built.contains("Successfully tagged remote-built:latest"),
        "{built}"
    );
    assert_eq!(ok(&["run", "--rm", "-e", "X=1", "remote-built"]), "built\n");
    assert_eq!(
        ok(&[
            "run",
            "--rm",
            "--mount",
            "type=volume,source=rv2,target=/v",
            "busybox",
            "sh",
            "-c",
            "echo m > /v/f && cat /v/f"
        ]),
        "m\n"
    );
    ok(&["volume", "rm", "rv2"]);
    let id = ok(&["run", "-d", "busybox", "echo", "since"]).trim().to_string();
    assert_eq!(ok(&["wait", &id]), "0\n");
    assert_eq!(ok(&["logs", "--since", "10m", &id]), "since\n");
    assert_eq!(ok(&["logs", "--until", "2000-01-01T00:00:00Z", &id]), "");
    ok(&["rm", &id]);
    // A daemon that is not there: one sentence.
    let mut c = client.command(&["ps"]);
    c.env("BERTH_HOST", "unix:///nonexistent/berth.sock");
    let r = run_of(&mut c);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("cannot reach the engine"), "{}", r.stderr);

    // Everything happened in the daemon's root; the client's root has no containers.
    assert!(
        !client.root().join("containers").exists()
            || std::fs::read_dir(client.root().join("containers"))
                .map(|d| d.count())
                .unwrap_or(0)
                <= 1
    );
    assert!(server.ok(&["images"]).contains("busybox"));
}
