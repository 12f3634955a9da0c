//! The Engine API under bad input and load: docker's error JSON with the right status for
//! malformed bodies, unknown objects, unsupported settings and API versions; clients that
//! vanish mid-stream; 50 concurrent clients without errors or leaked descriptors; and the
//! daemon's socket lifecycle (mode, stale socket, live daemon refused, SIGTERM, containers
//! outliving it); `docker cp` with a stopped container: reads change nothing, writes land
//! in its upper dir or volume, and nothing is reached outside its root.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_tests::berth::Berth;
use berth_tests::daemon::Daemon;
use berth_tests::registry::Registry;

/// A store with busybox pulled from a loopback registry.
fn setup() -> (Registry, Berth) {
    berth_tests::registry::store_with_busybox()
}

fn create(d: &Daemon, name: &str, cmd: &str) -> String {
    let body = serde_json::json!({"Image": "busybox", "Cmd": ["sh", "-c", cmd]});
    let r = d.request(
        "POST",
        &format!("/v1.43/containers/create?name={name}"),
        Some(body.to_string().as_bytes()),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["Id"].as_str().expect("Id").to_string();
    let r = d.request("POST", &format!("/v1.43/containers/{id}/start"), None);
    assert_eq!(r.status, 204, "{}", r.text());
    id
}

fn message(r: &berth_tests::daemon::Response) -> String {
    assert_eq!(r.header("content-type"), Some("application/json"), "{r:?}");
    r.json()["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message: {}", r.text()))
        .to_string()
}

#[test]
fn bad_requests_get_docker_errors_and_the_daemon_stays_up() {
    let (_reg, b) = setup();
    let mut d = Daemon::start(&b);

    // Ping headers, both path forms.
    let ping = d.request("HEAD", "/_ping", None);
    assert_eq!(ping.status, 200);
    assert_eq!(ping.header("api-version"), Some("1.43"));
    assert_eq!(ping.header("docker-experimental"), Some("false"));
    assert_eq!(ping.header("ostype"), Some("linux"));
    assert_eq!(d.request("GET", "/v1.43/_ping", None).text(), "OK");
    let v = d.request("GET", "/version", None).json();
    assert_eq!(v["ApiVersion"], "1.43");
    assert_eq!(v["MinAPIVersion"], "1.24");

    // Malformed JSON.
    let r = d.request(
        "POST",
        "/v1.43/containers/create",
        Some(b"{\"Image\": \"busybox\", "),
    );
    assert_eq!(r.status, 400);
    assert!(message(&r).contains("malformed JSON"), "{}", r.text());
    let r = d.request("POST", "/v1.43/volumes/create", Some(b"[1,2"));
    assert_eq!(r.status, 400);

    // Unknown objects: 404 with docker's message shape.
    let r = d.request("GET", "/v1.43/containers/no-such-box/json", None);
    assert_eq!(r.status, 404);
    assert!(message(&r).contains("no-such-box"), "{}", r.text());
    for (method, path) in [
        ("POST", "/v1.43/containers/no-such-box/start"),
        ("DELETE", "/v1.43/containers/no-such-box"),
        ("GET", "/v1.43/images/no-such-image:1/json"),
        ("GET", "/v1.43/volumes/no-such-volume"),
        ("GET", "/v1.43/networks/no-such-network"),
        ("GET", "/v1.43/exec/0123/json"),
        ("GET", "/v1.43/no/such/endpoint"),
    ] {
        let r = d.request(method, path, None);
        assert_eq!(r.status, 404, "{method} {path}: {}", r.text());
        assert!(!message(&r).is_empty());
    }

    // API versions outside what Berth speaks.
    let r = d.request("GET", "/v1.99/info", None);
    assert_eq!(r.status, 400);
    assert_eq!(
        message(&r),
        "client version 1.99 is too new. Maximum supported API version is 1.43"
    );
    let r = d.request("GET", "/v1.12/info", None);
    assert_eq!(r.status, 400);
    assert!(message(&r).contains("too old"));

    // Unsupported settings are refused by name, never silently dropped.
    let body = serde_json::json!({"Image": "busybox", "HostConfig": {"Privileged": true, "Devices": [{"PathOnHost": "/dev/kvm"}]}});
    let r = d.request(
        "POST",
        "/v1.43/containers/create",
        Some(body.to_string().as_bytes()),
    );
    assert_eq!(r.status, 400);
    let m = message(&r);
    assert!(
        m.contains("HostConfig.Privileged") && m.contains("HostConfig.Devices"),
        "{m}"
    );
    let r = d.request(
        "GET",
        "/v1.43/containers/json?filters=%7B%22is-task%22%3A%5B%22true%22%5D%7D",
        None,
    );
    assert_eq!(r.status, 400);
    assert!(message(&r).contains("is-task"));
    let r = d.request("POST", "/v1.43/containers/create", Some(br#"{"Cmd": ["true"]}"#));
    assert_eq!(r.status, 400, "no image: {}", r.text());
    let r = d.request(
        "POST",
        "/v1.43/containers/create",
        Some(br#"{"Image": "never-pulled:1"}"#),
    );
    assert_eq!(r.status, 404, "{}", r.text());

    // Conflicts.
    let id = create(&d, "talker", "while true; do echo line; sleep 0.05; done");
    let r = d.request(
        "POST",
        "/v1.43/containers/create?name=talker",
        Some(br#"{"Image": "busybox"}"#),
    );
    assert_eq!(r.status, 409, "{}", r.text());
    let r = d.request("DELETE", &format!("/v1.43/containers/{id}"), None);
    assert_eq!(r.status, 409, "{}", r.text());
    let r = d.request("POST", &format!("/v1.43/containers/{id}/start"), None);
    assert_eq!(r.status, 304);

    // A client that goes away in the middle of a followed log stream.
    let fds_before = d.fd_count();
    for _ in 0..10 {
        let mut s = UnixStream::connect(d.socket()).expect("connect");
        write!(
            s,
            "GET /v1.43/containers/{id}/logs?follow=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: d\r\n\r\n"
        )
        .expect("send");
        let mut buf = [0u8; 256];
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let n = s.read(&mut buf).expect("some of the stream");
        assert!(n > 0);
        drop(s);
    }
    // Half a request, then gone.
    let mut s = UnixStream::connect(d.socket()).expect("connect");
    s.write_all(b"POST /v1.43/containers/create HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"Ima")
        .expect("send");
    drop(s);
    assert!(d.alive(), "daemon died:\n{}", d.log());
    assert_eq!(d.request("GET", "/_ping", None).status, 200);
    let list = d.request("GET", "/v1.43/containers/json", None).json();
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    wait_fds_settle(&d, fds_before);

    let r = d.request("DELETE", &format!("/v1.43/containers/{id}?force=1"), None);
    assert_eq!(r.status, 204, "{}", r.text());
}

/// Waits (bounded) until the daemon holds no more descriptors than `before`.
fn wait_fds_settle(d: &Daemon, before: usize) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now = d.fd_count();
        if now <= before {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "descriptors leaked: {before} before, {now} after (ls -l /proc/{}/fd)",
            d.pid()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn fifty_clients_list_inspect_and_stream_logs() {
    let secs: u64 = std::env::var("BERTH_API_LOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let (_reg, b) = setup();
    let d = Arc::new(Daemon::start(&b));
    let ids: Vec<String> = (0..3)
        .map(|i| {
            create(
                &d,
                &format!("load{i}"),
                "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.1; done",
            )
        })
        .collect();
    // Warm up every path once, then count descriptors.
    d.request("GET", "/v1.43/containers/json", None);
    d.request("GET", &format!("/v1.43/containers/{}/json", ids[0]), None);
    d.request(
        "GET",
        &format!("/v1.43/containers/{}/logs?stdout=1&tail=5", ids[0]),
        None,
    );
    std::thread::sleep(Duration::from_millis(500));
    let fds_before = d.fd_count();

    let requests = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let threads: Vec<_> = (0..50)
        .map(|n| {
            let (d, ids, requests, errors) = (d.clone(), ids.clone(), requests.clone(), errors.clone());
            std::thread::spawn(move || {
                let mut i = 0usize;
                while Instant::now() < deadline {
                    let id = &ids[(n + i) % ids.len()];
                    let (path, follow) = match (n + i) % 4 {
                        0 => ("/v1.43/containers/json?all=1".to_string(), false),
                        1 => (format!("/v1.43/containers/{id}/json"), false),
                        2 => (
                            format!("/v1.43/containers/{id}/logs?stdout=1&stderr=1&tail=50&timestamps=1"),
                            false,
                        ),
                        _ => (
                            format!("/v1.43/containers/{id}/logs?stdout=1&follow=1&tail=1"),
                            true,
                        ),
                    };
                    i += 1;
                    let result = if follow {
                        follow_briefly(&d, &path)
                    } else {
                        plain(&d, &path)
                    };
                    requests.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = result {
                        errors.lock().expect("lock").push(format!("{path}: {e}"));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    let errors = errors.lock().expect("lock").clone();
    let total = requests.load(Ordering::Relaxed);
    println!(
        "{total} requests from 50 clients in {secs} s, {} errors",
        errors.len()
    );
    assert!(
        errors.is_empty(),
        "{} of {total} requests failed, e.g. {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    assert!(total >= 50, "only {total} requests completed");
    assert_eq!(d.request("GET", "/_ping", None).status, 200);
    wait_fds_settle(&d, fds_before);
    for id in &ids {
        d.request("DELETE", &format!("/v1.43/containers/{id}?force=1"), None);
    }
}

fn plain(d: &Daemon, path: &str) -> Result<(), String> {
    let r = d.try_request("GET", path, None).map_err(|e| e.to_string())?;
    if r.status != 200 {
        return Err(format!("status {}: {}", r.status, r.text()));
    }
    if r.body.is_empty() {
        return Err("empty body".into());
    }
    Ok(())
}

/// Reads a followed stream for a moment, then hangs up.
fn follow_briefly(d: &Daemon, path: &str) -> Result<(), String> {
    let mut s = UnixStream::connect(d.socket()).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: d\r\n\r\n").map_err(|e| e.to_string())?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < until {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => return Err(e.to_string()),
        }
    }
    let text = String::from_utf8_lossy(&got);
    if !text.starts_with("HTTP/1.1 200") {
        return Err(format!("bad response: {}", text.lines().next().unwrap_or("")));
    }
    Ok(())
}

#[test]
fn socket_lifecycle_and_containers_outlive_the_daemon() {
    let (_reg, b) = setup();
    let mut d = Daemon::start(&b);
    let mode = std::fs::metadata(d.socket())
        .expect("socket")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o660, "socket mode {mode:o}");

    // A second daemon on the same socket is refused while the first is live.
    let second = b
        .command(&["daemon", "--host", &format!("unix://{}", d.socket().display())])
        .output()
        .expect("run second daemon");
    assert_eq!(second.status.code(), Some(1));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("already serving"), "{err}");

    // TCP only on loopback.
    let tcp = b
        .command(&[
            "daemon",
            "--host",
            "unix:///tmp/berth-unused.sock",
            "--tcp",
            "0.0.0.0:23750",
        ])
        .output()
        .expect("run tcp daemon");
    assert_eq!(tcp.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&tcp.stderr).contains("loopback"));

    let id = create(&d, "survivor", "sleep 300");
    let socket = d.socket().to_path_buf();
    assert_eq!(d.stop(), Some(0), "SIGTERM is a clean shutdown:\n{}", d.log());
    assert!(!socket.exists(), "the socket is removed on shutdown");
    let ps = b.ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(
        ps.contains("survivor Up"),
        "the container outlives the daemon: {ps}"
    );

    // A stale socket file (nobody listening) is replaced.
    let stale = std::os::unix::net::UnixListener::bind(&socket).expect("bind stale");
    drop(stale);
    assert!(socket.exists());
    let d2 = Daemon::start_at(&b, &socket);
    let r = d2.request("GET", &format!("/v1.43/containers/{id}/json"), None);
    assert_eq!(
        r.json()["State"]["Running"],
        true,
        "the new daemon finds the running container"
    );
    d2.request("DELETE", &format!("/v1.43/containers/{id}?force=1"), None);
}

#[test]
fn containers_survive_a_daemon_killed_with_sigkill() {
    let (_reg, b) = setup();
    let mut d = Daemon::start(&b);
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        l.local_addr().expect("addr").port()
    };
    let body = serde_json::json!({
        "Image": "busybox",
        "Cmd": ["sh", "-c", "mkdir /www && echo hello > /www/index.html && exec httpd -f -p 80 -h /www"],
        "ExposedPorts": {"80/tcp": {}},
        "HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": port.to_string()}]}},
    });
    let r = d.request(
        "POST",
        "/v1.43/containers/create?name=web",
        Some(body.to_string().as_bytes()),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = d.request("POST", "/v1.43/containers/web/start", None);
    assert_eq!(r.status, 204, "{}", r.text());
    let ticker = create(
        &d,
        "ticker",
        "i=0; while :; do echo tick-$i; i=$((i+1)); sleep 0.1; done",
    );
    berth_tests::http::wait_for_200(port, Duration::from_secs(10));

    let socket = d.socket().to_path_buf();
    d.kill9();
    // Still serving with no engine process at all.
    let page = berth_tests::http::wait_for_200(port, Duration::from_secs(5));
    assert!(page.contains("hello"), "{page}");
    let ticks_at_kill = b.ok(&["logs", "ticker"]).lines().count();

    // A new daemon (on the socket file the killed one left) finds both running.
    let d2 = Daemon::start_at(&b, &socket);
    for name in ["web", "ticker"] {
        let r = d2.request("GET", &format!("/v1.43/containers/{name}/json"), None);
        assert_eq!(r.json()["State"]["Status"], "running", "{name}: {}", r.text());
    }
    // Its logs go on: a follow from the new daemon streams lines written after the kill.
    std::thread::sleep(Duration::from_millis(500));
    let mut s = UnixStream::connect(d2.socket()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
    write!(
        s,
        "GET /v1.43/containers/{ticker}/logs?stdout=1&follow=1 HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .expect("request");
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&got);
    let last = text
        .rsplit("tick-")
        .next()
        .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0);
    assert!(
        last > ticks_at_kill,
        "logs -f through the new daemon shows new lines (tick-{last} after {ticks_at_kill} at the kill)"
    );
    for name in ["web", "ticker"] {
        d2.request("DELETE", &format!("/v1.43/containers/{name}?force=1"), None);
    }
}

/// Every path below `dir` with its type, mode, size and mtime: what "unchanged" means.
fn tree_state(dir: &std::path::Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            out.push(format!(
                "{} {:o} {} {}.{}",
                e.path().display(),
                m.mode(),
                m.size(),
                m.mtime(),
                m.mtime_nsec()
            ));
            if m.is_dir() {
                todo.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// The entries of a tar: name → (is a symlink, content).
fn tar_entries(body: &[u8]) -> std::collections::BTreeMap<String, (bool, String)> {
    let mut out = std::collections::BTreeMap::new();
    let mut archive = tar::Archive::new(body);
    for e in archive.entries().expect("a tar") {
        let mut e = e.expect("a tar entry");
        let name = e.path().expect("a path").display().to_string();
        let link = e.header().entry_type().is_symlink();
        let mut text = String::new();
        let _ = e.read_to_string(&mut text);
        out.insert(name, (link, text));
    }
    out
}

#[test]
fn cp_on_a_stopped_container_stays_inside_and_only_put_writes() {
    let (_reg, b) = setup();
    let d = Daemon::start(&b);
    // A host file the container's symlinks point at: it must never be served.
    let host = tempfile::tempdir().expect("tempdir");
    std::fs::write(host.path().join("host-secret"), "host").expect("write");
    let h = host.path().display();
    let script = format!(
        "echo layer > /in-layer.txt && echo vol > /data/in-vol.txt && ln -s {h} /up && \
         ln -s ../../../../../../../..{h} /data/up && ln -s / /data/root"
    );
    let body = serde_json::json!({
        "Image": "busybox",
        "Cmd": ["sh", "-c", script],
        "HostConfig": {"Binds": ["arch-vol:/data", format!("{h}:/ro:ro")]},
    });
    let r = d.request(
        "POST",
        "/v1.43/containers/create?name=arch",
        Some(body.to_string().as_bytes()),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["Id"].as_str().expect("Id").to_string();
    let get = |path: &str| {
        d.request(
            "GET",
            &format!("/v1.43/containers/arch/archive?path={path}"),
            None,
        )
    };

    // Never started: the image's files are there.
    let r = get("/etc/passwd");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(tar_entries(&r.body)["passwd"].1.starts_with("root:"));

    let r = d.request("POST", &format!("/v1.43/containers/{id}/start"), None);
    assert_eq!(r.status, 204, "{}", r.text());
    let r = d.request("POST", "/v1.43/containers/arch/wait", None);
    assert_eq!(r.json()["StatusCode"], 0, "{}", r.text());
    // The shim releases the run's mounts after the exit: wait until the state settles.
    let dir = b.root().join("containers").join(&id);
    let mut before = tree_state(&dir);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = tree_state(&dir);
        if now == before || Instant::now() > deadline {
            before = now;
            break;
        }
        before = now;
    }

    // From its own layer (overlaid read-only on the image), and from its volume.
    let r = get("/in-layer.txt");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(tar_entries(&r.body)["in-layer.txt"], (false, "layer\n".into()));
    let r = d.request(
        "HEAD",
        "/v1.43/containers/arch/archive?path=/data/in-vol.txt",
        None,
    );
    assert_eq!(r.status, 200);
    use base64::Engine as _;
    let stat = base64::engine::general_purpose::STANDARD
        .decode(r.header("x-docker-container-path-stat").expect("stat header"))
        .expect("base64");
    let stat: serde_json::Value = serde_json::from_slice(&stat).expect("stat JSON");
    assert_eq!(
        (stat["name"].as_str(), stat["size"].as_u64()),
        (Some("in-vol.txt"), Some(4))
    );
    let r = get("/data");
    assert_eq!(r.status, 200, "{}", r.text());
    let entries = tar_entries(&r.body);
    assert_eq!(entries["data/in-vol.txt"], (false, "vol\n".into()), "{entries:?}");
    assert!(entries["data/up"].0 && entries["data/root"].0, "{entries:?}");

    // Symlinks resolve inside the container (or the volume), never on the host.
    for path in [
        "/up/host-secret".to_string(),
        "/data/up/host-secret".to_string(),
        format!("/data/root{h}/host-secret"),
        format!("/data/../../../..{h}/host-secret"),
    ] {
        let r = get(&path);
        assert_eq!(r.status, 404, "{path} was served: {}", r.text());
    }
    // Nothing changed on disk and nothing is left mounted.
    assert_eq!(tree_state(&dir), before);
    let no_mount_left = || {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        assert!(
            !mountinfo.contains(&id),
            "a mount of the container is left: {mountinfo}"
        );
    };
    no_mount_left();

    // Copying in: into its layer (its upper dir, which its next run mounts) and into its
    // volume; a read-only mount is refused.
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(4);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "put.txt", &b"put\n"[..])
        .expect("tar");
    let tar = tar.into_inner().expect("tar");
    for dest in ["/tmp", "/data"] {
        let r = d.request(
            "PUT",
            &format!("/v1.43/containers/arch/archive?path={dest}"),
            Some(&tar),
        );
        assert_eq!(r.status, 200, "PUT into {dest}: {}", r.text());
        let r = get(&format!("{dest}/put.txt"));
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(tar_entries(&r.body)["put.txt"], (false, "put\n".into()));
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("upper/tmp/put.txt")).expect("in the upper dir"),
        "put\n"
    );
    let r = d.request("PUT", "/v1.43/containers/arch/archive?path=/ro", Some(&tar));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(message(&r).contains("read-only"), "{}", r.text());
    assert!(!host.path().join("put.txt").exists());
    no_mount_left();
    let r = d.request("DELETE", "/v1.43/containers/arch?v=1", None);
    assert_eq!(r.status, 204, "{}", r.text());
}

/// `docker run --rm` of a container that cannot start (its image's layer is gone) fails
/// with the engine's sentence and leaves no container: dockerd removes a `--rm` container
/// whose start failed, and the docker CLI waits for that removal (it hung before).
#[test]
fn docker_run_rm_whose_start_fails_ends_and_leaves_nothing() {
    let (_reg, b) = setup();
    let d = Daemon::start(&b);
    let config = tempfile::tempdir().expect("tempdir");
    let layer = b.layer_dirs("busybox").pop().expect("a layer");
    let moved = layer.with_extension("moved");
    std::fs::rename(&layer, &moved).expect("move the layer away");
    let begun = Instant::now();
    let r = d.docker(config.path(), &["run", "--rm", "busybox", "true"]);
    assert_eq!(r.code, 125, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("could not mount the container's root filesystem"),
        "{}",
        r.stderr
    );
    assert!(
        begun.elapsed() < Duration::from_secs(60),
        "took {:?}",
        begun.elapsed()
    );
    let left = d.docker(config.path(), &["ps", "-aq"]);
    assert_eq!(left.stdout.trim(), "", "the --rm container was removed");
    std::fs::rename(&moved, &layer).expect("put the layer back");
    let r = d.docker(config.path(), &["run", "--rm", "busybox", "true"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}
