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

/// Settings the SDK sends that Berth used to refuse: tmpfs mounts with options, extra
/// groups, `runtime='runc'` (and docker's error for any other), StopTimeout used by a stop
/// that names no timeout, a stop signal, and the inspect fields clients read.
#[test]
fn container_settings_the_sdk_sends() {
    let (_reg, _b, d) = setup();
    let out = sdk(
        &d,
        r#"
import time
out = client.containers.run('busybox', 'sh -c "grep /run /proc/mounts; touch /run/x && echo wrote"',
                            tmpfs={'/run': 'size=1m,noexec'}, remove=True).decode()
print('TMPFS', 'noexec' in out and 'size=1024k' in out and 'wrote' in out)
print('GROUPS', client.containers.run('busybox', 'id -G', group_add=['nogroup', '1234'], remove=True).decode().split())
print('RUNC', client.containers.run('busybox', 'echo ok', runtime='runc', remove=True).decode().strip())
src = client.containers.run('busybox', ['sh', '-c', 'echo shared > /data/f; sleep 300'], volumes=['vfdata:/data'], detach=True)
import time
for _ in range(100):
    if src.exec_run('cat /data/f').output == b'shared\n':
        break
    time.sleep(0.1)
print('VOLFROM', client.containers.run('busybox', ['sh', '-c', 'cat /data/f; touch /data/g 2>&1 | grep -c Read-only'], volumes_from=[src.id + ':ro'], remove=True).decode().split())
src.remove(force=True)
print('CPUSET', client.containers.run('busybox', ['cat', '/sys/fs/cgroup/cpuset/cpuset.cpus', '/sys/fs/cgroup/memory/memory.swappiness'], cpuset_cpus='0', mem_swappiness=10, remove=True).decode().split())
print('MAC', client.containers.run('busybox', 'cat /sys/class/net/eth0/address', mac_address='02:42:ac:11:00:99', remove=True).decode().strip())
try:
    client.containers.run('busybox', 'true', mac_address='03:00:00:00:00:01', remove=True)
    print('BADMAC accepted')
except docker.errors.APIError as e:
    print('BADMAC', e.status_code)
try:
    client.containers.run('busybox', 'true', runtime='kata', remove=True)
    print('KATA accepted')
except docker.errors.APIError as e:
    print('KATA', e.status_code, 'unknown or invalid runtime name: kata' in str(e))
c = api.create_container('busybox', 'sleep 100', stop_timeout=1, stop_signal='SIGUSR1',
                         host_config=api.create_host_config(tmpfs=['/scratch']))
api.start(c)
i = api.inspect_container(c)
print('INSPECT', i['Config']['StopTimeout'], i['Config']['StopSignal'], i['HostConfig']['Tmpfs'],
      i['HostConfig']['CgroupnsMode'], repr(i['HostConfig']['Isolation']), i['HostConfig']['LogConfig']['Type'])
t = time.time()
client.containers.get(c['Id']).stop()
print('STOPPED', time.time() - t < 8, api.inspect_container(c)['State']['ExitCode'])
api.remove_container(c)
"#,
    );
    let line = |key: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{key} ")))
            .unwrap_or_else(|| panic!("no {key} line in:\n{out}"))
            .to_string()
    };
    assert_eq!(line("TMPFS"), "True", "{out}");
    assert_eq!(line("GROUPS"), "['0', '1234', '65534']", "{out}");
    assert_eq!(line("RUNC"), "ok", "{out}");
    assert_eq!(line("MAC"), "02:42:ac:11:00:99", "{out}");
    assert_eq!(line("VOLFROM"), "['shared', '1']", "{out}");
    // (This machine's cgroups are v1 for those controllers, as the test suite's.)
    assert_eq!(line("CPUSET"), "['0', '10']", "{out}");
    assert_eq!(line("BADMAC"), "400", "multicast MAC accepted: {out}");
    assert_eq!(line("KATA"), "400 True", "{out}");
    assert_eq!(
        line("INSPECT"),
        "1 SIGUSR1 {'/scratch': ''} private '' json-file",
        "{out}"
    );
    // A PID 1 without a handler ignores SIGUSR1, so the stop waits its StopTimeout (1 s, not
    // docker's 10) and kills.
    assert_eq!(line("STOPPED"), "True 137", "{out}");
}

/// Build options the SDK sends: extra hosts and shm size reach RUN, `networkmode=bridge` and
/// `cachefrom` are accepted, a failing step's stderr is in the stream before the error, and
/// an isolation Linux has no meaning for is refused with a sentence.
#[test]
fn build_options_the_sdk_sends() {
    let (_reg, b, d) = setup();
    let ctx = b.root().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN grep myhost /etc/hosts && df -k /dev/shm | tail -1\nRUN echo to-stderr >&2; exit 3\n",
    )
    .unwrap();
    let out = sdk(
        &d,
        &format!(
            r#"
lines = []
try:
    for l in api.build(path='{ctx}', shmsize=2 << 20, extra_hosts={{'myhost': '1.2.3.4'}},
                       network_mode='bridge', cache_from=['busybox'], decode=True):
        lines.append(l)
except docker.errors.APIError as e:
    print('BUILD-ERR', e)
text = ''.join(l.get('stream', '') for l in lines)
print('HOSTS', '1.2.3.4\tmyhost' in text)
print('SHM', [l.split()[1] for l in text.splitlines() if l.endswith('/dev/shm')])
print('STDERR', 'to-stderr' in text)
print('ERROR', [l['errorDetail']['code'] for l in lines if 'errorDetail' in l])
try:
    for _ in api.build(path='{ctx}', isolation='hyperv'):
        pass
    print('ISOLATION accepted')
except docker.errors.APIError as e:
    print('ISOLATION', e.status_code)
"#,
            ctx = ctx.display()
        ),
    );
    assert!(out.contains("HOSTS True"), "{out}");
    assert!(out.contains("SHM ['2048']"), "{out}");
    assert!(out.contains("STDERR True"), "{out}");
    assert!(out.contains("ERROR [3]"), "{out}");
    assert!(out.contains("ISOLATION 400"), "{out}");
}

/// `rename`, `diff` and `commit` through the SDK on a running container: the new name is
/// what inspect and the network answer to, the diff lists what the container added,
/// changed and deleted (and not the /etc files Berth provides), and the committed image
/// runs with those changes and the container's settings.
#[test]
fn rename_diff_and_commit_a_running_container() {
    let (_reg, _b, d) = setup();
    let out = sdk(
        &d,
        r#"
c = client.containers.run('busybox', ['sh', '-c', 'mkdir /tmp/d; echo hi > /tmp/d/new; rm /bin/ls; echo x >> /etc/passwd; sleep 300'],
                          detach=True, environment={'GREETING': 'hello'}, working_dir='/tmp', name='before')
import time; time.sleep(1)
c.rename('after')
c.reload()
print('NAME', c.name, api.inspect_container('after')['Name'])
print('DIFF', sorted((x['Kind'], x['Path']) for x in c.diff()))
img = c.commit('snap', 'v1', message='my change', author='student')
print('RUN', client.containers.run('snap:v1', ['sh', '-c', 'cat /tmp/d/new; pwd; echo $GREETING; test -e /bin/ls || echo no-ls'], remove=True).decode().split())
h = api.history('snap:v1')[0]
print('HISTORY', h['Comment'], api.inspect_image('snap:v1')['Author'])
c.remove(force=True)
"#,
    );
    assert!(out.contains("NAME after /after"), "{out}");
    assert!(
        out.contains("DIFF [(0, '/bin'), (0, '/etc'), (0, '/etc/passwd'), (0, '/tmp'), (1, '/tmp/d'), (1, '/tmp/d/new'), (2, '/bin/ls')]"),
        "{out}"
    );
    assert!(out.contains("RUN ['hi', '/tmp', 'hello', 'no-ls']"), "{out}");
    assert!(out.contains("HISTORY my change student"), "{out}");
}

/// `export` then `import` then run: the container's files (with its deletions) come back
/// as a one-layer image with the import's message; a body that is not a tar is refused in
/// a sentence and leaves no image.
#[test]
fn export_import_then_run() {
    let (_reg, _b, d) = setup();
    let out = sdk(
        &d,
        r#"
import io
c = client.containers.run('busybox', ['sh', '-c', 'echo exported > /tmp/note; rm /bin/ls; sleep 300'], detach=True)
import time; time.sleep(1)
data = b''.join(c.export())
c.remove(force=True)
import tarfile
names = tarfile.open(fileobj=io.BytesIO(data)).getnames()
print('TAR', 'tmp/note' in names, 'bin/ls' in names, 'bin/sh' in names)
api.import_image_from_data(data, repository='imported', tag='v1', changes=None)
print('RUN', client.containers.run('imported:v1', ['sh', '-c', 'cat /tmp/note; test -e /bin/ls || echo no-ls'], remove=True).decode().split())
print('HISTORY', [h['Comment'] for h in api.history('imported:v1')])
before = len(client.images.list())
try:
    api.import_image_from_data(b'garbage', repository='bad', tag='v1')
    print('GARBAGE accepted')
except docker.errors.APIError as e:
    print('GARBAGE', e.status_code, len(client.images.list()) == before)
"#,
    );
    assert!(out.contains("TAR True False True"), "{out}");
    assert!(out.contains("RUN ['exported', 'no-ls']"), "{out}");
    assert!(out.contains("HISTORY ['Imported from -']"), "{out}");
    assert!(out.contains("GARBAGE 400 True"), "{out}");
}

/// `commit --change` and `import --change`: the instructions docker allows set the new
/// image's config (a CMD, ENV expanded from the image's own, EXPOSE, WORKDIR, LABEL,
/// ENTRYPOINT dropping the CMD it did not come with), and an instruction that builds
/// (RUN) is refused in one sentence, leaving no image.
#[test]
fn commit_and_import_apply_their_changes() {
    let (_reg, _b, d) = setup();
    let out = sdk(
        &d,
        r#"
c = client.containers.run('busybox', ['sh', '-c', 'echo v1 > /version; sleep 300'], detach=True, environment=['BASE=/opt'])
import time; time.sleep(1)
c.commit('changed', 'v1', changes=['CMD ["cat", "/version"]', 'ENV APP_HOME=$BASE/app', 'EXPOSE 7000', 'WORKDIR /srv', 'LABEL course=docker'])
cfg = api.inspect_image('changed:v1')['Config']
print('CFG', cfg['Cmd'], [e for e in cfg['Env'] if e.startswith('APP_HOME')], sorted(cfg['ExposedPorts']), cfg['WorkingDir'], cfg['Labels'].get('course'))
print('RUN', client.containers.run('changed:v1', remove=True).decode().strip())
c.commit('changed', 'v2', changes=['ENTRYPOINT ["echo", "from-entrypoint"]'])
cfg = api.inspect_image('changed:v2')['Config']
print('ENTRY', cfg['Entrypoint'], cfg['Cmd'])
before = len(client.images.list())
try:
    c.commit('changed', 'bad', changes=['RUN touch /x'])
    print('BAD accepted')
except docker.errors.APIError as e:
    print('BAD', e.status_code, 'not a valid change command' in str(e), len(client.images.list()) == before)
data = b''.join(c.export())
c.remove(force=True)
api.import_image_from_data(data, repository='imported', tag='changed', changes=['CMD ["cat", "/version"]', 'ENV MODE=imported'])
cfg = api.inspect_image('imported:changed')['Config']
print('IMPORT', cfg['Cmd'], cfg['Env'], client.containers.run('imported:changed', remove=True).decode().strip())
"#,
    );
    assert!(
        out.contains("CFG ['cat', '/version'] ['APP_HOME=/opt/app'] ['7000/tcp'] /srv docker"),
        "{out}"
    );
    assert!(out.contains("RUN v1"), "{out}");
    assert!(out.contains("ENTRY ['echo', 'from-entrypoint'] None"), "{out}");
    assert!(out.contains("BAD 400 True True"), "{out}");
    assert!(
        out.contains("IMPORT ['cat', '/version'] ['MODE=imported'] v1"),
        "{out}"
    );
}

/// `update` on a running container: CPU shares, memory and memory+swap reach its cgroups
/// at once (read inside the container), the restart policy is recorded, and a swap limit
/// below the memory limit is refused with docker's reason and changes nothing.
#[test]
fn update_a_running_container() {
    let (_reg, _b, d) = setup();
    let out = sdk(
        &d,
        r#"
c = client.containers.run('busybox', 'sleep 300', detach=True, cpu_shares=512, mem_limit='64m', memswap_limit='128m')
rd = lambda: c.exec_run(['sh', '-c', 'cat /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/memory/memory.limit_in_bytes']).output.decode().split()
print('BEFORE', rd())
c.update(cpu_shares=256, mem_limit='96m', memswap_limit='200m', restart_policy={'Name': 'on-failure', 'MaximumRetryCount': 2})
print('AFTER', rd())
h = api.inspect_container(c.id)['HostConfig']
print('INSPECT', h['CpuShares'], h['Memory'], h['MemorySwap'], h['RestartPolicy']['Name'], h['RestartPolicy']['MaximumRetryCount'])
try:
    c.update(mem_limit='300m', memswap_limit='200m')
    print('REFUSED no')
except docker.errors.APIError as e:
    print('REFUSED', e.status_code, 'larger than memory limit' in str(e), rd())
c.remove(force=True)
"#,
    );
    assert!(out.contains("BEFORE ['512', '67108864']"), "{out}");
    assert!(out.contains("AFTER ['256', '100663296']"), "{out}");
    assert!(
        out.contains("INSPECT 256 100663296 209715200 on-failure 2"),
        "{out}"
    );
    assert!(out.contains("REFUSED 400 True ['256', '100663296']"), "{out}");
}

/// `GET /distribution/{name}/json` against the real registry, for a single image (its
/// platform from its config) and for a multi-platform index, then a pull by that digest.
#[test]
fn distribution_inspect_then_pull_by_digest() {
    let (reg, _b, d) = setup();
    reg.push_fixture(&fixtures::image("multiarch"), "lab/multi:latest");
    let single = reg.reference("library/busybox");
    let multi = reg.reference("lab/multi");
    let out = sdk(
        &d,
        &format!(
            r#"
rd = client.images.get_registry_data('{single}')
print('SINGLE', rd.id.startswith('sha256:'), rd.has_platform('linux/amd64'), [p['os'] for p in rd.attrs['Platforms']])
md = client.images.get_registry_data('{multi}')
print('MULTI', sorted(p['architecture'] for p in md.attrs['Platforms']), md.attrs['Descriptor']['mediaType'])
img = client.images.pull('{single}@' + rd.id)
print('PULLED', ('{single}@' + rd.id) in img.attrs['RepoDigests'] or any(d.endswith(rd.id) for d in img.attrs['RepoDigests']))
try:
    client.images.get_registry_data('{single}-nope')
    print('MISSING found')
except docker.errors.NotFound as e:
    print('MISSING', e.status_code)
"#
        ),
    );
    assert!(out.contains("SINGLE True True ['linux']"), "{out}");
    assert!(out.contains("MULTI ['amd64', 'arm64']"), "{out}");
    assert!(out.contains("PULLED True"), "{out}");
    assert!(out.contains("MISSING 404"), "{out}");
}

/// `init=True`: tini is PID 1 with the command under it, so a stop's SIGTERM reaches the
/// command (which exits at once) instead of waiting for the kill.
#[test]
fn init_runs_tini_as_pid_one() {
    let (_reg, _b, d) = setup();
    let out = sdk(
        &d,
        r#"
import time
print('PS', client.containers.run('busybox', ['sh', '-c', 'cat /proc/1/cmdline | tr "\\0" " "'], init=True, remove=True).decode().strip())
c = client.containers.run('busybox', 'sleep 300', detach=True, init=True)
print('INSPECT', api.inspect_container(c.id)['HostConfig']['Init'])
t = time.time()
c.stop(timeout=20)
print('STOP', time.time() - t < 10, api.inspect_container(c.id)['State']['ExitCode'])
c.remove()
"#,
    );
    assert!(out.contains("PS /sbin/docker-init -- sh -c"), "{out}");
    assert!(out.contains("INSPECT True"), "{out}");
    assert!(out.contains("STOP True 143"), "{out}");
}
