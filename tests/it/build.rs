//! `berth build` on the real kernel: the lecture's Dockerfiles (002 and 003) on the Debian
//! python fixture, the layer cache step by step, images checked by other engines (skopeo,
//! podman), and bad input.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use berth_tests::berth::Berth;
use berth_tests::fixtures;
use berth_tests::registry::{Mode, Registry};
use berth_tests::tools;

const APP_PY: &str = r#"from flask import Flask

app = Flask(__name__)


@app.route("/")
def hello():
    return "Hello from a Berth-built image!\n"


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=5000)
"#;

/// A store with busybox (and optionally the python fixture, tagged `python:3.11-slim`
/// so the lecture Dockerfiles change only in their FROM line's registry).
fn setup(with_python: bool) -> (Registry, Berth) {
    let reg = Registry::start(Mode::Plain);
    let b = Berth::new();
    reg.push_fixture(&fixtures::image("busybox"), "library/busybox:latest");
    b.ok(&["pull", "-q", &reg.reference("library/busybox")]);
    b.ok(&["tag", &reg.reference("library/busybox"), "busybox"]);
    if with_python {
        let dir = fixtures::ensure_big().join("python");
        reg.push_fixture(&dir, "library/python:3.11-slim");
    }
    (reg, b)
}

/// One `Step N/M : …` block of docker's classic build output.
#[derive(Debug)]
struct Step {
    number: usize,
    instruction: String,
    cached: bool,
    ran: bool,
}

fn steps(out: &str) -> Vec<Step> {
    let mut v: Vec<Step> = Vec::new();
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix("Step ") {
            let (num, instr) = rest.split_once(" : ").expect("Step N/M : instruction");
            let number = num.split('/').next().unwrap().parse().unwrap();
            v.push(Step {
                number,
                instruction: instr.to_string(),
                cached: false,
                ran: false,
            });
        } else if line == " ---> Using cache" {
            v.last_mut().expect("cache line inside a step").cached = true;
        } else if line.starts_with(" ---> Running in ") {
            v.last_mut().expect("running line inside a step").ran = true;
        }
    }
    v
}

fn cached_steps(out: &str) -> Vec<usize> {
    steps(out).iter().filter(|s| s.cached).map(|s| s.number).collect()
}

fn built_id(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("Successfully built "))
        .unwrap_or_else(|| panic!("no 'Successfully built' line:\n{out}"))
        .trim()
        .to_string()
}

fn http_get(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

fn wait_for_http(port: u16, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(r) = http_get(port) {
            if r.starts_with("HTTP/1.") && r.contains(" 200 ") {
                return r;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no HTTP 200 on port {port} within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn write(dir: &Path, name: &str, content: &str) {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(p, content).unwrap();
}

fn no_build_leftovers(b: &Berth) {
    let tmp = b.root().join("builder/tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "build scratch areas left behind: {left:?}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root = b.root().to_string_lossy().to_string();
    assert!(
        !mounts.lines().any(|l| l.contains(&root) && l.contains("builder")),
        "a build mount is still there:\n{mounts}"
    );
}

fn serve_app(b: &Berth, image: &str, expect: &str) {
    let port = berth_tests::free_port();
    let name = format!("web{port}");
    b.ok(&["run", "-d", "--name", &name, "-p", &format!("{port}:5000"), image]);
    let page = wait_for_http(port, Duration::from_secs(30));
    assert!(page.contains(expect), "{page}");
    b.ok(&["rm", "-f", &name]);
}

/// The lecture's 003 Dockerfile: build, run with -p, HTTP 200; then the cache, change by
/// change: rebuild, a .dockerignore'd file, app.py, and an ARG a RUN uses.
#[test]
fn lecture_003_builds_runs_and_caches_step_by_step() {
    let (reg, b) = setup(true);
    let ctx = tempfile::tempdir().unwrap();
    let from = reg.reference("library/python:3.11-slim");
    write(
        ctx.path(),
        "Dockerfile",
        &format!(
            "FROM {from}\nWORKDIR /app\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\nCOPY . .\nCMD [\"python\", \"app.py\"]\n"
        ),
    );
    write(ctx.path(), "requirements.txt", "flask\n");
    write(ctx.path(), "app.py", APP_PY);
    write(ctx.path(), ".dockerignore", "*.log\n__pycache__\n");
    let dir = ctx.path().to_str().unwrap();

    let out = b.ok(&["build", "-t", "my-image:v1.0", dir]);
    let s = steps(&out);
    assert_eq!(s.len(), 6, "{out}");
    assert_eq!(s[0].instruction, format!("FROM {from}"));
    assert_eq!(s[3].instruction, "RUN pip install -r requirements.txt");
    assert!(s[3].ran, "the RUN step runs in a container:\n{out}");
    assert!(
        out.contains("Successfully installed") && out.to_lowercase().contains("flask"),
        "pip output is streamed:\n{out}"
    );
    assert!(out.contains("Removing intermediate container "), "{out}");
    assert!(cached_steps(&out).is_empty(), "{out}");
    assert!(out.contains("Successfully tagged my-image:v1.0"), "{out}");
    let first_id = built_id(&out);
    serve_app(&b, "my-image:v1.0", "Hello from a Berth-built image!");

    // History like docker's: one row per step, config steps as #(nop).
    let hist = b.ok(&["history", "--no-trunc", "my-image:v1.0"]);
    assert!(
        hist.contains("/bin/sh -c #(nop)  CMD [\"python\" \"app.py\"]"),
        "{hist}"
    );
    assert!(
        hist.contains("/bin/sh -c pip install -r requirements.txt"),
        "{hist}"
    );
    assert!(hist.contains("/bin/sh -c #(nop) WORKDIR /app"), "{hist}");
    assert!(hist.contains("/bin/sh -c #(nop) COPY file:"), "{hist}");

    // Unchanged: every step after FROM from the cache, same image.
    let out = b.ok(&["build", "-t", "my-image:v1.0", dir]);
    assert_eq!(cached_steps(&out), vec![2, 3, 4, 5, 6], "{out}");
    assert!(!out.contains("Running in"), "{out}");
    assert_eq!(built_id(&out), first_id);

    // A file .dockerignore excludes changes nothing.
    write(ctx.path(), "debug.log", "noise\n");
    let out = b.ok(&["build", "-t", "my-image:v1.0", dir]);
    assert_eq!(cached_steps(&out), vec![2, 3, 4, 5, 6], "{out}");
    assert_eq!(built_id(&out), first_id);

    // Touching app.py without changing it keeps the cache (mtime is not in the key).
    let f = std::fs::File::options()
        .append(true)
        .open(ctx.path().join("app.py"))
        .unwrap();
    f.set_modified(std::time::SystemTime::now() + Duration::from_secs(60))
        .unwrap();
    drop(f);
    let out = b.ok(&["build", "-t", "my-image:v1.0", dir]);
    assert_eq!(cached_steps(&out), vec![2, 3, 4, 5, 6], "{out}");

    // app.py changes: the pip install above its COPY stays cached, the rest reruns.
    write(
        ctx.path(),
        "app.py",
        &APP_PY.replace("Berth-built image", "rebuilt image"),
    );
    let out = b.ok(&["build", "-t", "my-image:v1.0", dir]);
    assert_eq!(cached_steps(&out), vec![2, 3, 4], "{out}");
    assert!(
        !out.contains("Running in"),
        "pip install must not run again:\n{out}"
    );
    assert_ne!(built_id(&out), first_id);
    serve_app(&b, "my-image:v1.0", "Hello from a rebuilt image!");

    // The cache survives the process (each command is a new one) and builder prune.
    let out = b.ok(&["builder", "prune", "-a", "-f"]);
    assert!(out.contains("Total reclaimed space:"), "{out}");
    let out = b.ok(&["build", "-t", "my-image:v1.0", dir]);
    assert!(
        cached_steps(&out).is_empty(),
        "prune -a emptied the cache:\n{out}"
    );
    no_build_leftovers(&b);
    b.assert_store_consistent();
}

/// The lecture's 002 Dockerfile (copy everything, then install), with EXPOSE and CMD.
#[test]
fn lecture_002_builds_and_serves() {
    let (reg, b) = setup(true);
    let ctx = tempfile::tempdir().unwrap();
    let from = reg.reference("library/python:3.11-slim");
    write(
        ctx.path(),
        "Dockerfile",
        &format!("FROM {from}\nWORKDIR /app\nCOPY . /app\nRUN pip install -r requirements.txt\nEXPOSE 5000\nCMD [\"python\", \"app.py\"]\n"),
    );
    write(ctx.path(), "requirements.txt", "flask\n");
    write(ctx.path(), "app.py", APP_PY);
    let out = b.ok(&["build", "-t", "lecture002", ctx.path().to_str().unwrap()]);
    assert_eq!(steps(&out).len(), 6, "{out}");
    let ports = b.ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.ExposedPorts}}",
        "lecture002",
    ]);
    assert!(ports.contains("5000/tcp"), "{ports}");
    serve_app(&b, "lecture002", "Hello from a Berth-built image!");
    no_build_leftovers(&b);
}

/// ARG values: a changed --build-arg reruns the RUN that sees it; global ARGs reach FROM;
/// multi-stage COPY --from; --target skips later stages; labels and ENV land in the config.
#[test]
fn args_stages_and_config() {
    let (_reg, b) = setup(false);
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        "Dockerfile",
        "ARG BASE=busybox\nFROM ${BASE} AS builder\nARG V=1\nRUN echo \"v=$V\" > /built.txt\nENV GREETING=hello\n\
         FROM busybox AS unused\nRUN exit 7\n\
         FROM ${BASE}\nCOPY --from=builder /built.txt /out/\nLABEL org.example.v=\"1\"\nUSER nobody\nCMD cat /out/built.txt\n",
    );
    let dir = ctx.path().to_str().unwrap();
    let out = b.ok(&["build", "-t", "multi", dir]);
    assert!(!out.contains("exit 7"), "the unused stage is skipped:\n{out}");
    assert_eq!(steps(&out).len(), 9, "{out}");
    assert_eq!(b.ok(&["run", "--rm", "multi"]).trim(), "v=1");
    let cfg = b.ok(&["image", "inspect", "--format", "{{json .Config}}", "multi"]);
    assert!(cfg.contains("\"User\":\"nobody\""), "{cfg}");
    assert!(cfg.contains("org.example.v"), "{cfg}");

    let out = b.ok(&["build", "--build-arg", "V=2", "-t", "multi", dir]);
    let s = steps(&out);
    let run = s.iter().find(|s| s.instruction.starts_with("RUN echo")).unwrap();
    assert!(!run.cached && run.ran, "the RUN using V reruns:\n{out}");
    let arg = s.iter().find(|s| s.instruction == "ARG V=1").unwrap();
    assert!(arg.cached, "{out}");
    assert_eq!(b.ok(&["run", "--rm", "multi"]).trim(), "v=2");
    let out = b.ok(&["build", "--build-arg", "V=2", "-t", "multi", dir]);
    assert!(!out.contains("Running in"), "same value, all cached:\n{out}");

    let out = b.ok(&["build", "--target", "builder", "-t", "stage1", dir]);
    assert_eq!(steps(&out).len(), 4, "{out}");
    let env = b.ok(&["image", "inspect", "--format", "{{json .Config.Env}}", "stage1"]);
    assert!(env.contains("GREETING=hello"), "{env}");

    // Unused build args are reported, as docker does.
    let r = b.run(&["build", "--build-arg", "NOPE=1", dir]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("[NOPE] were not consumed"), "{}", r.stderr);
    no_build_leftovers(&b);
}

/// Deleting a file from the base in a RUN yields a whiteout that skopeo and podman read as
/// a deletion; the built image is pushed, inspected and run by podman.
#[test]
fn other_engines_accept_what_berth_built() {
    let podman = tools::require("podman", "podman");
    tools::require("skopeo", "skopeo");
    let (reg, b) = setup(false);
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox\nRUN rm /etc/motd && mkdir -p /data && echo built > /data/marker\nCOPY hello.txt /data/\nCMD [\"cat\", \"/data/marker\"]\n",
    );
    write(ctx.path(), "hello.txt", "hi\n");
    b.ok(&["build", "-t", "wh", ctx.path().to_str().unwrap()]);
    let target = reg.reference("built/wh:1");
    b.ok(&["tag", "wh", &target]);
    b.ok(&["push", &target]);

    let o = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", &format!("docker://{target}")])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "skopeo inspect: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["Layers"].as_array().unwrap().len(), 4, "{v}");

    let tmp = tempfile::Builder::new().prefix("pm").tempdir_in("/tmp").unwrap();
    let pm = |args: &[&str]| {
        let o = Command::new(&podman)
            .arg("--root")
            .arg(tmp.path().join("r"))
            .arg("--runroot")
            .arg(tmp.path().join("rr"))
            .args(args)
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
        )
    };
    let (ok, out) = pm(&["pull", "-q", "--tls-verify=false", &target]);
    assert!(ok, "podman pull: {out}");
    let (ok, out) = pm(&["run", "--rm", "--network", "none", &target]);
    assert!(ok && out.trim() == "built", "podman run: {out}");
    let (ok, out) = pm(&[
        "run",
        "--rm",
        "--network",
        "none",
        &target,
        "sh",
        "-c",
        "test ! -e /etc/motd && cat /data/hello.txt",
    ]);
    assert!(
        ok && out.trim() == "hi",
        "the deleted file must stay deleted in podman: {out}"
    );
    let _ = pm(&["rmi", "-af"]);
    let _ = Command::new("umount").arg("-R").arg(tmp.path()).output();
}

/// Every bad input is one sentence naming what is wrong, and leaves nothing behind.
#[test]
fn bad_input_is_explained() {
    let (_reg, b) = setup(false);
    let ctx = tempfile::tempdir().unwrap();
    let dir = ctx.path().to_str().unwrap();

    let r = b.fails(&["build", dir]);
    assert!(
        r.stderr.contains("Dockerfile") && r.stderr.contains("no such file"),
        "{}",
        r.stderr
    );

    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox\nRUN true\nFROBNICATE now\n",
    );
    let r = b.fails(&["build", dir]);
    assert!(r.stderr.contains("line 3"), "{}", r.stderr);
    assert!(r.stderr.contains("FROBNICATE"), "{}", r.stderr);

    write(ctx.path(), "Dockerfile", "FROM busybox\nCOPY ../x .\n");
    let r = b.fails(&["build", dir]);
    assert!(r.stderr.contains("outside the build context"), "{}", r.stderr);

    write(ctx.path(), "secret.key", "k");
    write(ctx.path(), ".dockerignore", "# keys stay home\n*.key\n");
    write(ctx.path(), "Dockerfile", "FROM busybox\nCOPY secret.key /\n");
    let r = b.fails(&["build", dir]);
    assert!(
        r.stderr.contains("`*.key` (line 2)"),
        "the rule is named: {}",
        r.stderr
    );

    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox\nRUN echo about to fail && exit 3\n",
    );
    let r = b.fails(&["build", "-t", "broken", dir]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("The command '/bin/sh -c echo about to fail && exit 3' returned a non-zero code: 3"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.contains("about to fail"), "{}", r.stdout);
    assert!(
        !b.ok(&["images"]).contains("broken"),
        "no tag after a failed build"
    );

    let r = b.fails(&["build", "-q", "-t", "broken", dir]);
    assert!(
        r.stderr.contains("about to fail"),
        "-q shows the last output lines: {}",
        r.stderr
    );

    write(ctx.path(), "Dockerfile", "FROM busybox AS one\nRUN true\n");
    let r = b.fails(&["build", "--target", "nosuch", dir]);
    assert!(r.stderr.contains("nosuch"), "{}", r.stderr);

    no_build_leftovers(&b);
    b.assert_store_consistent();
}

/// COPY semantics: directories copy their contents, --chown by name from the image's
/// /etc/passwd, --chmod, wildcards, ADD of a local tar.gz unpacked; the cache keys on
/// content and mode.
#[test]
fn copy_add_and_content_cache() {
    let (_reg, b) = setup(false);
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), "src/a.txt", "a\n");
    write(ctx.path(), "src/sub/b.txt", "b\n");
    write(ctx.path(), "one.cfg", "1\n");
    write(ctx.path(), "two.cfg", "2\n");
    let tarball = ctx.path().join("bundle.tar.gz");
    let st = Command::new("tar")
        .args([
            "czf",
            tarball.to_str().unwrap(),
            "-C",
            ctx.path().join("src").to_str().unwrap(),
            ".",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox\nCOPY src /srv/\nCOPY --chown=nobody --chmod=600 *.cfg /cfg/\nADD bundle.tar.gz /unpacked\n\
         CMD [\"sh\", \"-c\", \"ls -ln /cfg; cat /srv/a.txt /srv/sub/b.txt /unpacked/sub/b.txt\"]\n",
    );
    let dir = ctx.path().to_str().unwrap();
    b.ok(&["build", "-t", "cp", dir]);
    let out = b.ok(&["run", "--rm", "cp"]);
    assert!(out.contains("-rw-------    1 65534    65534"), "{out}");
    assert!(out.ends_with("a\nb\nb\n"), "{out}");

    // Mode is part of the key.
    let p = ctx.path().join("one.cfg");
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = b.ok(&["build", "-t", "cp", dir]);
    assert_eq!(cached_steps(&out), vec![2], "{out}");
    no_build_leftovers(&b);
}
