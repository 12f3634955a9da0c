//! The Engine API through `bollard` (the client the desktop app uses): pull with progress,
//! create with port bindings, start, logs, inspect, one-shot stats, exec, stop, remove,
//! volumes and networks — all against `berth daemon` on the real kernel.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, HostConfig, NetworkCreateRequest, PortBinding, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, InspectContainerOptions,
    ListContainersOptionsBuilder, ListImagesOptions, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    StatsOptionsBuilder, StopContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;

use berth_tests::berth::Berth;
use berth_tests::daemon::Daemon;
use berth_tests::fixtures;
use berth_tests::registry::{Mode, Registry};

async fn connect(d: &Daemon) -> Docker {
    Docker::connect_with_unix(&d.host(), 60, bollard::API_DEFAULT_VERSION)
        .expect("connect")
        .negotiate_version()
        .await
        .expect("negotiate the API version")
}

fn http_get(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bollard_flow() {
    let reg = Registry::start(Mode::Plain);
    reg.push_fixture(&fixtures::ensure_big().join("flask"), "lecture/flask-app:latest");
    let b = Berth::new();
    let d = Daemon::start(&b);
    let docker = connect(&d).await;

    let version = docker.version().await.expect("version");
    assert_eq!(version.api_version.as_deref(), Some(berth_api_version()));
    docker.ping().await.expect("ping");

    // Pull, with docker's progress stream.
    let image = reg.reference("lecture/flask-app");
    let opts = CreateImageOptionsBuilder::default()
        .from_image(&image)
        .tag("latest")
        .build();
    let mut stream = docker.create_image(Some(opts), None, None);
    let mut statuses = Vec::new();
    let mut saw_progress = false;
    while let Some(item) = stream.next().await {
        let info = item.unwrap_or_else(|e| panic!("pull failed: {e}\n{}", d.log()));
        saw_progress |= info
            .progress_detail
            .as_ref()
            .is_some_and(|p| p.total.unwrap_or(0) > 0);
        statuses.push(info.status.unwrap_or_default());
    }
    assert!(
        statuses.iter().any(|s| s.contains("Pull complete")),
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .any(|s| s.starts_with("Status: Downloaded newer image")),
        "{statuses:?}"
    );
    assert!(
        saw_progress || statuses.iter().any(|s| s == "Downloading"),
        "no byte progress: {statuses:?}"
    );
    let images = docker
        .list_images(None::<ListImagesOptions>)
        .await
        .expect("list images");
    assert!(
        images
            .iter()
            .any(|i| i.repo_tags.iter().any(|t| t == &format!("{image}:latest"))),
        "{images:?}"
    );

    // Create with a port binding, start, serve.
    let port = berth_tests::free_port();
    let mut bindings = HashMap::new();
    bindings.insert(
        "5000/tcp".to_string(),
        Some(vec![PortBinding {
            host_ip: Some("127.0.0.1".into()),
            host_port: Some(port.to_string()),
        }]),
    );
    let body = ContainerCreateBody {
        image: Some(format!("{image}:latest")),
        env: Some(vec!["GREETING=bollard".into()]),
        labels: Some(HashMap::from([("suite".to_string(), "bollard".to_string())])),
        host_config: Some(HostConfig {
            port_bindings: Some(bindings),
            memory: Some(256 * 1024 * 1024),
            ..Default::default()
        }),
        ..Default::default()
    };
    let created = docker
        .create_container(
            Some(CreateContainerOptionsBuilder::default().name("bweb").build()),
            body,
        )
        .await
        .unwrap_or_else(|e| panic!("create failed: {e}\n{}", d.log()));
    assert_eq!(created.id.len(), 64);
    docker.start_container("bweb", None).await.expect("start");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if http_get(port).is_some_and(|r| r.contains(" 200 ") && r.contains("Hello from Flask")) {
            break;
        }
        assert!(Instant::now() < deadline, "no HTTP 200 on 127.0.0.1:{port}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // List with a label filter, inspect.
    let filters = HashMap::from([("label".to_string(), vec!["suite=bollard".to_string()])]);
    let listed = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default().filters(&filters).build(),
        ))
        .await
        .expect("list containers");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].names.as_deref(), Some(&["/bweb".to_string()][..]));
    let inspect = docker
        .inspect_container("bweb", None::<InspectContainerOptions>)
        .await
        .expect("inspect");
    let state = inspect.state.expect("state");
    assert_eq!(state.running, Some(true));
    assert!(state.pid.unwrap_or(0) > 0);
    let config = inspect.config.expect("config");
    assert!(config
        .env
        .unwrap_or_default()
        .iter()
        .any(|e| e == "GREETING=bollard"));
    assert_eq!(
        inspect.host_config.and_then(|h| h.memory),
        Some(256 * 1024 * 1024)
    );

    // Logs (multiplexed stream, demultiplexed by bollard).
    let mut found = false;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !found && Instant::now() < deadline {
        let logs: Vec<_> = docker
            .logs(
                "bweb",
                Some(LogsOptionsBuilder::default().stdout(true).stderr(true).build()),
            )
            .collect()
            .await;
        found = logs
            .into_iter()
            .filter_map(Result::ok)
            .any(|l| l.to_string().contains("Running on"));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(found, "no Flask start line in the logs");

    // One-shot stats in docker's shape.
    let stats: Vec<_> = docker
        .stats(
            "bweb",
            Some(
                StatsOptionsBuilder::default()
                    .stream(false)
                    .one_shot(false)
                    .build(),
            ),
        )
        .collect()
        .await;
    assert_eq!(stats.len(), 1);
    let s = stats.into_iter().next().expect("one sample").expect("stats");
    assert!(
        s.memory_stats.and_then(|m| m.usage).unwrap_or(0) > 0,
        "memory usage reported"
    );
    assert!(
        s.cpu_stats
            .and_then(|c| c.cpu_usage)
            .and_then(|u| u.total_usage)
            .unwrap_or(0)
            > 0
    );
    assert!(s.pids_stats.and_then(|p| p.current).unwrap_or(0) >= 1);

    // Exec with output and exit code.
    let exec = docker
        .create_exec(
            "bweb",
            CreateExecOptions {
                cmd: Some(vec!["sh", "-c", "echo out-line; echo err-line >&2; exit 7"]),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .expect("create exec");
    let (mut out, mut err) = (String::new(), String::new());
    match docker
        .start_exec(&exec.id, None::<StartExecOptions>)
        .await
        .expect("start exec")
    {
        StartExecResults::Attached { mut output, .. } => {
            while let Some(Ok(msg)) = output.next().await {
                match msg {
                    bollard::container::LogOutput::StdOut { message } => {
                        out.push_str(&String::from_utf8_lossy(&message))
                    }
                    bollard::container::LogOutput::StdErr { message } => {
                        err.push_str(&String::from_utf8_lossy(&message))
                    }
                    _ => {}
                }
            }
        }
        StartExecResults::Detached => panic!("exec detached"),
    }
    assert_eq!(out, "out-line\n");
    assert_eq!(err, "err-line\n");
    let info = docker.inspect_exec(&exec.id).await.expect("inspect exec");
    assert_eq!(info.exit_code, Some(7));
    assert_eq!(info.running, Some(false));

    // Exec with stdin.
    let exec = docker
        .create_exec(
            "bweb",
            CreateExecOptions {
                cmd: Some(vec!["cat"]),
                attach_stdin: Some(true),
                attach_stdout: Some(true),
                ..Default::default()
            },
        )
        .await
        .expect("create exec");
    match docker
        .start_exec(&exec.id, None::<StartExecOptions>)
        .await
        .expect("start exec")
    {
        StartExecResults::Attached {
            mut output,
            mut input,
        } => {
            use tokio::io::AsyncWriteExt;
            input.write_all(b"through stdin\n").await.expect("write stdin");
            input.shutdown().await.expect("close stdin");
            let mut got = String::new();
            while let Some(Ok(msg)) = output.next().await {
                got.push_str(&msg.to_string());
            }
            assert_eq!(got, "through stdin\n");
        }
        StartExecResults::Detached => panic!("exec detached"),
    }

    // Stop and remove.
    docker
        .stop_container("bweb", Some(StopContainerOptionsBuilder::default().t(1).build()))
        .await
        .expect("stop");
    let inspect = docker
        .inspect_container("bweb", None::<InspectContainerOptions>)
        .await
        .expect("inspect");
    assert_eq!(inspect.state.and_then(|s| s.running), Some(false));
    docker
        .remove_container(
            "bweb",
            Some(RemoveContainerOptionsBuilder::default().v(true).build()),
        )
        .await
        .expect("remove");
    let err = docker
        .inspect_container("bweb", None::<InspectContainerOptions>)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }
        ),
        "{err:?}"
    );

    // Volumes.
    let v = docker
        .create_volume(VolumeCreateRequest {
            name: Some("bvol".into()),
            ..Default::default()
        })
        .await
        .expect("create volume");
    assert_eq!(v.name, "bvol");
    assert_eq!(v.driver, "local");
    let vols = docker
        .list_volumes(None::<bollard::query_parameters::ListVolumesOptions>)
        .await
        .expect("volumes");
    assert!(vols.volumes.unwrap_or_default().iter().any(|v| v.name == "bvol"));
    docker
        .remove_volume("bvol", None::<bollard::query_parameters::RemoveVolumeOptions>)
        .await
        .expect("remove volume");

    // Networks.
    let net = docker
        .create_network(NetworkCreateRequest {
            name: "bnet".into(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("create network: {e}\n{}", d.log()));
    assert_eq!(net.id.len(), 64);
    let nets = docker.list_networks(None).await.expect("networks");
    assert!(nets.iter().any(|n| n.name.as_deref() == Some("bnet")), "{nets:?}");
    assert!(nets.iter().any(|n| n.name.as_deref() == Some("bridge")));
    let inspect = docker
        .inspect_network("bnet", None)
        .await
        .expect("inspect network");
    assert_eq!(inspect.driver.as_deref(), Some("bridge"));
    docker.remove_network("bnet").await.expect("remove network");
    assert!(docker.inspect_network("bnet", None).await.is_err());
}

fn berth_api_version() -> &'static str {
    "1.43"
}

/// Every state change reaches `/events` from the service that made it, whichever client
/// asked: here the berth CLI (through the daemon serving its root) and an exit nobody
/// waited for (the engine's exit watcher, woken by the shim's exit record).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_come_from_the_services() {
    use bollard::query_parameters::EventsOptions;

    let reg = Registry::start(Mode::Plain);
    reg.push_fixture(&fixtures::image("busybox"), "library/busybox:latest");
    let b = Berth::new();
    let d = Daemon::start(&b);
    let docker = connect(&d).await;
    let mut feed = docker.events(None::<EventsOptions>);
    // The subscription is registered once the response headers are in; a ping after the
    // first poll makes sure of that ordering.
    let first = tokio::time::timeout(Duration::from_millis(300), feed.next()).await;
    assert!(first.is_err(), "no event before anything happened: {first:?}");

    let image = reg.reference("library/busybox");
    b.ok(&["pull", "-q", &image]);
    b.ok(&["tag", &image, "busybox"]);
    b.ok(&["run", "-d", "--name", "ev", "busybox", "sleep", "30"]);
    b.ok(&["stop", "-t", "1", "ev"]);
    b.ok(&["rm", "ev"]);
    b.ok(&["run", "-d", "--name", "quick", "busybox", "sh", "-c", "exit 3"]);
    b.ok(&["volume", "create", "evvol"]);
    b.ok(&["volume", "rm", "evvol"]);
    b.ok(&["network", "create", "evnet"]);
    b.ok(&["network", "rm", "evnet"]);

    let mut seen: Vec<(String, String, String, serde_json::Value)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let done = |seen: &[(String, String, String, serde_json::Value)]| {
        seen.iter()
            .any(|(t, a, _, attrs)| t == "container" && a == "die" && attrs["name"] == "quick")
            && seen.iter().any(|(t, a, _, _)| t == "network" && a == "destroy")
    };
    while !done(&seen) && Instant::now() < deadline {
        let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(5), feed.next()).await else {
            continue;
        };
        let ev = ev.expect("an event");
        let actor = ev.actor.unwrap_or_default();
        let attrs = serde_json::to_value(actor.attributes.unwrap_or_default()).unwrap();
        seen.push((
            ev.typ.map(|t| t.to_string()).unwrap_or_default(),
            ev.action.unwrap_or_default(),
            actor.id.unwrap_or_default(),
            attrs,
        ));
    }
    let of = |kind: &str, name: &str| -> Vec<String> {
        seen.iter()
            .filter(|(t, _, id, attrs)| t == kind && (attrs["name"] == name || id == name))
            .map(|(_, a, _, _)| a.clone())
            .collect()
    };
    // `sleep` as PID 1 ignores SIGTERM: after the timeout, SIGKILL (as docker does).
    assert_eq!(
        of("container", "ev"),
        ["create", "start", "kill", "kill", "die", "stop", "destroy"],
        "all events: {seen:?}"
    );
    let signals: Vec<&serde_json::Value> = seen
        .iter()
        .filter(|(_, a, _, attrs)| a == "kill" && attrs["name"] == "ev")
        .map(|(_, _, _, attrs)| &attrs["signal"])
        .collect();
    assert_eq!(signals, ["15", "9"]);
    assert_eq!(
        of("container", "quick"),
        ["create", "start", "die"],
        "all events: {seen:?}"
    );
    let die = seen
        .iter()
        .find(|(_, a, _, attrs)| a == "die" && attrs["name"] == "quick")
        .unwrap();
    assert_eq!(die.3["exitCode"], "3");
    assert_eq!(
        of("volume", "evvol"),
        ["create", "destroy"],
        "all events: {seen:?}"
    );
    assert_eq!(
        of("network", "evnet"),
        ["create", "destroy"],
        "all events: {seen:?}"
    );
    let images: Vec<&str> = seen
        .iter()
        .filter(|(t, _, _, _)| t == "image")
        .map(|(_, a, _, _)| a.as_str())
        .collect();
    assert_eq!(images, ["pull", "tag"], "all events: {seen:?}");
    b.ok(&["rm", "-f", "quick"]);
}
