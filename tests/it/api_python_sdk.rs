//! The Docker SDK for Python (PyPI, in tests/.venv made by `scripts/install.sh tests`)
//! against `berth daemon`: a real client that reads hijacked streams its own way.

use std::path::PathBuf;
use std::process::Command;

use berth_tests::berth::Berth;
use berth_tests::daemon::{run_of, Daemon};
use berth_tests::fixtures;
use berth_tests::registry::{Mode, Registry};

fn python() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        p.exists(),
        "the Docker SDK for Python is missing at {}: run bash scripts/install.sh tests",
        p.display()
    );
    p
}

/// Runs a Python script with `docker` imported and `client` connected to the daemon.
fn sdk(d: &Daemon, script: &str) -> String {
    let prelude = format!(
        "import docker, sys\nclient = docker.DockerClient(base_url='{}', version='1.43')\napi = client.api\n",
        d.host()
    );
    let r = run_of(Command::new(python()).arg("-c").arg(format!("{prelude}{script}")));
    assert_eq!(
        r.code,
        0,
        "python failed:\n{}\n{}\ndaemon log:\n{}",
        r.stdout,
        r.stderr,
        d.log()
    );
    r.stdout
}

fn setup() -> (Registry, Berth, Daemon) {
    let reg = Registry::start(Mode::Plain);
    let b = Berth::new();
    reg.push_fixture(&fixtures::image("busybox"), "library/busybox:latest");
    b.ok(&["pull", "-q", &reg.reference("library/busybox")]);
    b.ok(&["tag", &reg.reference("library/busybox"), "busybox"]);
    let d = Daemon::start(&b);
    (reg, b, d)
}

/// `exec_start()` without a stream reads the 101 response with a buffered reader, then the
/// raw socket: output that arrived together with the headers was lost (17 of 30 empty).
/// Every one of 200 must carry its output now; `exec_run` gives output and exit codes.
#[test]
fn exec_start_never_loses_output() {
    let (_reg, b, d) = setup();
    b.ok(&["run", "-d", "--name", "sleeper", "busybox", "sleep", "300"]);
    let out = sdk(
        &d,
        r#"
c = client.containers.get('sleeper')
bad = []
for i in range(200):
    e = api.exec_create(c.id, ['echo', 'out-%d' % i])
    got = api.exec_start(e['Id'])
    if got != b'out-%d\n' % i:
        bad.append((i, got))
print('bad', len(bad), bad[:5])
r = c.exec_run(['sh', '-c', 'echo to-out; echo to-err >&2; exit 3'], demux=True)
print('exit', r.exit_code, r.output)
"#,
    );
    assert!(
        out.contains("bad 0 []"),
        "every exec_start has its output:\n{out}"
    );
    assert!(
        out.contains("exit 3 (b'to-out\\n', b'to-err\\n')"),
        "exec_run keeps stdout, stderr and the exit code apart:\n{out}"
    );
    b.ok(&["rm", "-f", "sleeper"]);
}

/// The SDK's everyday calls: run detached, logs, list, stop, remove.
#[test]
fn containers_run_logs_and_remove() {
    let (_reg, _b, d) = setup();
    let out = sdk(
        &d,
        r#"
c = client.containers.run('busybox', ['sh', '-c', 'echo hello-sdk; sleep 300'], detach=True, name='sdk1')
import time
for _ in range(100):
    if b'hello-sdk' in c.logs():
        break
    time.sleep(0.05)
print('logs', c.logs())
print('listed', [x.name for x in client.containers.list()])
print('ran', client.containers.run('busybox', ['echo', 'attached-run'], remove=True))
c.stop(timeout=1)
c.reload()
print('status', c.status)
c.remove()
print('left', [x.name for x in client.containers.list(all=True)])
"#,
    );
    assert!(out.contains("logs b'hello-sdk\\n'"), "{out}");
    assert!(out.contains("listed ['sdk1']"), "{out}");
    assert!(out.contains("ran b'attached-run\\n'"), "{out}");
    assert!(out.contains("status exited"), "{out}");
    assert!(out.contains("left []"), "{out}");
}
