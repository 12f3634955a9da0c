//! `berth build` on the real kernel: the lecture's Dockerfiles (002 and 003) on the Debian
//! python fixture, the layer cache step by step, images checked by other engines (skopeo,
//! podman), and bad input.

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

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
    let page = berth_tests::http::wait_for_200(port, Duration::from_secs(30));
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

    // system prune -a takes images and build cache; GC then frees every layer.
    let out = b.ok(&["system", "prune", "-a", "-f"]);
    assert!(out.contains("Deleted build cache objects:"), "{out}");
    assert_eq!(b.ok(&["images", "-q"]).trim(), "", "no image is left");
    let layers = std::fs::read_dir(b.root().join("layers")).unwrap().count();
    assert_eq!(layers, 0, "build cache and images are gone, so are their layers");
    b.assert_store_consistent();
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
    // The RUN layer holds what the command changed and nothing the runtime mounted
    // (/etc/hosts, /etc/hostname, /etc/resolv.conf, /proc, /sys, /dev stay out).
    let dirs = b.layer_dirs("wh");
    let run_layer = &dirs[dirs.len() - 2];
    let mut top: Vec<String> = std::fs::read_dir(run_layer)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, ["data", "etc"], "{run_layer:?}");
    let etc: Vec<String> = std::fs::read_dir(run_layer.join("etc"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(etc, ["motd"], "only the whiteout of /etc/motd");
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
    let r = b.fails(&["build", "/nonexistent/context"]);
    assert!(
        r.stderr.contains("build context /nonexistent/context"),
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

    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox\nRUN --mount=type=cache,target=/c true\n",
    );
    let r = b.fails(&["build", dir]);
    assert!(
        r.stderr.contains("line 2") && r.stderr.contains("--mount needs BuildKit"),
        "{}",
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

    // bzip2 and xz tars unpack too; a gzip file that is no tar is copied as it is; a tar
    // whose entries climb out of the root is refused, naming the entry.
    let xz = ctx.path().join("bundle.tar.xz");
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "tar cJf {} -C {} . && echo plain | gzip > {}/notes.gz",
            xz.display(),
            ctx.path().join("src").display(),
            ctx.path().display()
        ))
        .status()
        .unwrap();
    assert!(st.success());
    let adds = ctx.path().join("adds");
    std::fs::create_dir(&adds).unwrap();
    std::fs::rename(&xz, adds.join("bundle.tar.xz")).unwrap();
    std::fs::rename(ctx.path().join("notes.gz"), adds.join("notes.gz")).unwrap();
    write(
        &adds,
        "Dockerfile",
        "FROM busybox\nADD bundle.tar.xz /x/\nADD notes.gz /n/\n",
    );
    b.ok(&["build", "-t", "adds", adds.to_str().unwrap()]);
    let out = b.ok(&[
        "run",
        "--rm",
        "adds",
        "sh",
        "-c",
        "cat /x/sub/b.txt; zcat /n/notes.gz",
    ]);
    assert_eq!(out, "b\nplain\n");
    let evil = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures::ensure().join("malicious/dotdot.tar"),
        evil.path().join("evil.tar"),
    )
    .unwrap();
    write(evil.path(), "Dockerfile", "FROM busybox\nADD evil.tar /e/\n");
    let r = b.fails(&["build", evil.path().to_str().unwrap()]);
    assert!(r.stderr.contains("ADD cannot extract evil.tar"), "{}", r.stderr);
    assert!(r.stderr.contains(".."), "the error names the entry: {}", r.stderr);

    // .dockerignore with an exception and `**`, end to end through COPY . .
    let di = tempfile::tempdir().unwrap();
    for (f, c) in [
        ("x.log", "1"),
        ("keep.log", "2"),
        ("a/tmp/junk", "3"),
        ("b/ok", "4"),
    ] {
        write(di.path(), f, c);
    }
    write(di.path(), ".dockerignore", "*.log\n!keep.log\n**/tmp\n");
    write(
        di.path(),
        "Dockerfile",
        "FROM busybox\nCOPY . /c/\nCMD [\"find\", \"/c\"]\n",
    );
    b.ok(&["build", "-t", "di", di.path().to_str().unwrap()]);
    let mut found: Vec<String> = b.ok(&["run", "--rm", "di"]).lines().map(String::from).collect();
    found.sort();
    assert_eq!(
        found,
        [
            "/c",
            "/c/.dockerignore",
            "/c/Dockerfile",
            "/c/a",
            "/c/b",
            "/c/b/ok",
            "/c/keep.log"
        ]
    );

    // Mode is part of the key.
    let p = ctx.path().join("one.cfg");
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = b.ok(&["build", "-t", "cp", dir]);
    assert_eq!(cached_steps(&out), vec![2], "{out}");
    no_build_leftovers(&b);
}

/// Serves `body` for every request on a loopback port, in a thread; returns the port.
fn serve_once_per_request(body: &'static [u8]) -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(body);
        }
    });
    port
}

/// RUN and COPY heredocs (a `#!` script runs as a file that stays out of the layer),
/// ADD of an http URL, ONBUILD triggers run by a child build, SHELL and HEALTHCHECK.
#[test]
fn heredocs_urls_onbuild_and_config() {
    let (_reg, b) = setup(false);
    let port = serve_once_per_request(b"downloaded content\n");
    let parent = tempfile::tempdir().unwrap();
    write(
        parent.path(),
        "Dockerfile",
        &format!(
            "FROM busybox\nARG WHO=world\nRUN <<EOT\necho \"hello $WHO\" > /hello.txt\nEOT\n\
             RUN <<EOT\n#!/bin/sh -e\necho \"script $0\" > /script.txt\nEOT\n\
             COPY <<EOF /greet.txt\nhi ${{WHO}}\nEOF\n\
             ADD http://127.0.0.1:{port}/files/data.txt /downloads/\n\
             SHELL [\"/bin/sh\", \"-ec\"]\nHEALTHCHECK --interval=5s CMD true\n\
             ONBUILD COPY child.txt /child.txt\nONBUILD RUN echo trigger ran > /trigger.txt\n"
        ),
    );
    b.ok(&["build", "-t", "parent", parent.path().to_str().unwrap()]);
    let out = b.ok(&[
        "run",
        "--rm",
        "parent",
        "cat",
        "/hello.txt",
        "/script.txt",
        "/greet.txt",
        "/downloads/data.txt",
    ]);
    assert_eq!(
        out,
        "hello world\nscript /dev/pipes/EOT\nhi world\ndownloaded content\n"
    );
    let r = b.run(&["run", "--rm", "parent", "ls", "/dev/pipes"]);
    assert!(
        r.code != 0 || r.stdout.trim().is_empty(),
        "the script is not in the image: {r:?}"
    );
    let cfg = b.ok(&["image", "inspect", "--format", "{{json .Config}}", "parent"]);
    assert!(
        cfg.contains("\"Healthcheck\":{\"Interval\":5000000000,\"Test\":[\"CMD-SHELL\",\"true\"]}"),
        "{cfg}"
    );
    assert!(
        cfg.contains("\"OnBuild\":[\"COPY child.txt /child.txt\""),
        "{cfg}"
    );
    assert!(cfg.contains("\"Shell\":[\"/bin/sh\",\"-ec\"]"), "{cfg}");

    let child = tempfile::tempdir().unwrap();
    write(
        child.path(),
        "Dockerfile",
        "FROM parent\nCMD [\"cat\", \"/child.txt\", \"/trigger.txt\"]\n",
    );
    write(child.path(), "child.txt", "from the child context\n");
    let out = b.ok(&["build", "-t", "child", child.path().to_str().unwrap()]);
    assert!(out.contains("# Executing 2 build triggers"), "{out}");
    assert_eq!(
        b.ok(&["run", "--rm", "child"]),
        "from the child context\ntrigger ran\n"
    );
    let cfg = b.ok(&["image", "inspect", "--format", "{{json .Config}}", "child"]);
    assert!(
        !cfg.contains("OnBuild\":[\""),
        "triggers are not inherited further: {cfg}"
    );
    no_build_leftovers(&b);
}

/// A builder killed with SIGKILL in the middle of a RUN leaves a scratch area, a mount, a
/// network endpoint and a running command; the next builder cleans all of it, and the
/// store stays consistent.
#[test]
fn a_killed_build_is_cleaned_by_the_next_one() {
    let (_reg, b) = setup(false);
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox\nRUN echo started && sleep 60\n",
    );
    let mut child = b
        .command(&["build", "-t", "killed", ctx.path().to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut seen = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut buf = [0u8; 256];
    // The command's own line, not the Step line that names it.
    while !seen.contains("\nstarted\n") {
        assert!(
            std::time::Instant::now() < deadline,
            "the RUN never started: {seen}"
        );
        let n = out.read(&mut buf).unwrap();
        assert!(n > 0, "build ended early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let areas: Vec<_> = std::fs::read_dir(b.root().join("builder/tmp"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(
        areas.len(),
        1,
        "the killed build left its area (that is what we clean)"
    );
    let listing: Vec<_> = std::fs::read_dir(areas[0].path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    let pid: i32 = std::fs::read_to_string(areas[0].path().join("pid"))
        .unwrap_or_else(|e| panic!("{e}: {:?} holds {listing:?}", areas[0].path()))
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let name = areas[0].file_name().to_string_lossy().into_owned();
    let id = name.split_once('-').unwrap().1.to_string();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        mounts.contains(&id),
        "the RUN's network namespace is pinned while it runs"
    );
    // Any builder start sweeps; `builder prune` is the cheapest one.
    b.ok(&["builder", "prune", "-f"]);
    no_build_leftovers(&b);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&id),
        "the network namespace was released:\n{mounts}"
    );
    // SIGKILL was sent; the process may take a moment to become a zombie (or vanish).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let (mut state, mut running);
    loop {
        state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        running = state
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X'));
        if !running || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!running, "the orphaned RUN command was killed: {state}");
    assert!(!b.ok(&["images"]).contains("killed"), "no tag");
    b.assert_store_consistent();
    // And the next build works from a clean slate.
    write(ctx.path(), "Dockerfile", "FROM busybox\nRUN echo fine\n");
    b.ok(&["build", "-t", "after", ctx.path().to_str().unwrap()]);
}

/// FROM --platform selects that platform's manifest from an index.
#[test]
fn from_platform_selects_the_manifest() {
    let (reg, b) = setup(false);
    reg.push_fixture(&fixtures::image("multiarch"), "library/multi:latest");
    let ctx = tempfile::tempdir().unwrap();
    let base = reg.reference("library/multi");
    write(
        ctx.path(),
        "Dockerfile",
        &format!("FROM --platform=linux/arm64 {base}\nLABEL picked=arm64\n"),
    );
    let out = b.ok(&["build", "-t", "armish", ctx.path().to_str().unwrap()]);
    // The base is pulled with docker's pull lines between FROM and its image ID.
    assert!(
        out.contains("latest: Pulling from ") && out.contains("/library/multi"),
        "{out}"
    );
    assert!(out.contains("Step 1/2 : FROM --platform=linux/arm64 "), "{out}");
    assert!(out.contains(": Pull complete"), "{out}");
    assert!(out.contains("Status: Downloaded newer image for"), "{out}");
    let arch = b.ok(&["image", "inspect", "--format", "{{.Architecture}}", "armish"]);
    assert_eq!(arch.trim(), "arm64");
    assert_eq!(b.read_in_image("armish", "/etc/arch").unwrap(), b"arm64\n");
}

/// Ctrl-C (SIGINT) during a RUN stops it: exit 1, "cancelled", nothing left behind, no tag.
#[test]
fn ctrl_c_cancels_a_build_cleanly() {
    let (_reg, b) = setup(false);
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox\nRUN echo working && sleep 60\n",
    );
    let mut child = b
        .command(&["build", "-t", "interrupted", ctx.path().to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 256];
    while !seen.contains("\nworking\n") {
        let n = out.read(&mut buf).unwrap();
        assert!(n > 0, "build ended early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let started = std::time::Instant::now();
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("Error: the build was cancelled"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the RUN was stopped, not waited for"
    );
    no_build_leftovers(&b);
    assert!(!b.ok(&["images"]).contains("interrupted"), "no tag");
}

/// Steps that change nothing give the same empty layer, so one layer directory appears
/// twice in the stack (`WORKDIR` on a directory the base already has, then two `RUN`s that
/// write nothing). overlayfs refuses a repeated lower layer (ELOOP), so every later step and
/// the container used to fail; the layer now counts once, at its topmost place.
#[test]
fn steps_that_change_nothing_still_stack() {
    let (_reg, b) = setup(false);
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), "requirements.txt", "flask\n");
    write(ctx.path(), "app.py", "print('hi')\n");
    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox\nRUN mkdir /app\nWORKDIR /app\nRUN true\nRUN true\nCOPY requirements.txt .\n\
         RUN cat requirements.txt\nCOPY . .\nRUN true\nCMD [\"cat\", \"app.py\", \"requirements.txt\"]\n",
    );
    let dir = ctx.path().to_str().unwrap();
    let out = b.ok(&["build", "-t", "same-layers", dir]);
    assert!(out.contains("Successfully tagged same-layers:latest"), "{out}");
    let layers = b.layer_dirs("same-layers");
    let distinct: std::collections::HashSet<_> = layers.iter().collect();
    assert!(
        distinct.len() < layers.len(),
        "the image repeats a layer, as the case needs: {layers:?}"
    );
    assert_eq!(b.ok(&["run", "--rm", "same-layers"]), "print('hi')\nflask\n");
    // Built again on top: the repeated layers are lowers of the next build's steps too.
    write(
        ctx.path(),
        "Dockerfile.next",
        "FROM same-layers\nRUN true\nRUN ls /app > /app/list\nCMD [\"cat\", \"/app/list\"]\n",
    );
    b.ok(&[
        "build",
        "-f",
        &format!("{dir}/Dockerfile.next"),
        "-t",
        "same-layers-2",
        dir,
    ]);
    let list = b.ok(&["run", "--rm", "same-layers-2"]);
    assert!(
        list.contains("app.py") && list.contains("requirements.txt"),
        "{list}"
    );
    no_build_leftovers(&b);
    b.assert_store_consistent();
}
