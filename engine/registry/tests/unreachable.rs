//! "Can't be reached", told apart by its real cause: each failure is produced for real on
//! this machine (a `.invalid` name, a closed port, a listener that never answers, HTTPS
//! spoken to a plain-HTTP server) and its classification, sentence and marker checked.
//! The proxy case needs an environment variable and lives in `proxy.rs`.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use berth_registry::unreachable::Advice;
use berth_registry::{Cause, ClientConfig, Mirrors, RegistryClient, RegistryError, Unreachable};
use common::*;

fn quick(cfg: ClientConfig) -> RegistryClient {
    RegistryClient::new(ClientConfig {
        max_retries: 0,
        connect_timeout: Duration::from_millis(400),
        read_timeout: Duration::from_millis(400),
        ..cfg
    })
    .unwrap()
}

async fn unreachable(client: &RegistryClient, registry: &str) -> Unreachable {
    let err = client
        .get_manifest(registry, "library/flask", "latest")
        .await
        .unwrap_err();
    let RegistryError::Unreachable(u) = &err else {
        panic!("expected an unreachable registry, got {err:?}");
    };
    // The message carries the marker, and reads back as the same failure.
    assert_eq!(Unreachable::parse(&err.to_string()).as_ref(), Some(u), "{err}");
    assert!(err.to_string().starts_with(&u.sentence()), "{err}");
    u.clone()
}

#[tokio::test]
async fn a_name_that_does_not_resolve_is_a_dns_failure() {
    let u = unreachable(&quick(client_config(None)), "registry.berth-test.invalid").await;
    assert_eq!(u.cause, Cause::Dns, "{u:?}");
    assert_eq!(
        u.sentence(),
        "The registry registry.berth-test.invalid can't be reached: its address could not be looked up."
    );
    // The resolver's words are the detail, not part of the sentence.
    assert!(!u.detail.is_empty() && !u.sentence().contains(&u.detail), "{u:?}");
    assert_eq!(u.code(), "registry-unreachable.dns");
}

#[tokio::test]
async fn a_closed_port_is_refused() {
    let registry = format!("127.0.0.1:{}", free_port());
    let u = unreachable(&quick(client_config(None)), &registry).await;
    assert_eq!(u.cause, Cause::Refused, "{u:?}");
    assert_eq!(u.detail, "connection refused");
    assert_eq!(
        u.sentence(),
        format!("The registry {registry} can't be reached: nothing is listening at that address.")
    );
    assert!(u.to_string().contains("that the registry is running"), "{u}");
}

#[tokio::test]
async fn a_listener_that_never_answers_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let registry = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    // Accepts every connection and holds it open without a word.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    let u = unreachable(&quick(client_config(None)), &registry).await;
    assert_eq!(u.cause, Cause::TimedOut, "{u:?}");
    assert!(
        u.sentence()
            .ends_with("can't be reached: it did not answer in time."),
        "{u:?}"
    );
}

#[tokio::test]
async fn https_to_a_plain_http_server_is_a_tls_failure() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // A plain HTTP server: answers anything with an HTTP 404.
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ =
                conn.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    // 0.0.0.0 reaches the loopback listener but is not a loopback name: HTTPS only.
    let registry = format!("0.0.0.0:{port}");
    let u = unreachable(&quick(client_config(None)), &registry).await;
    assert_eq!(u.cause, Cause::PlainHttp, "{u:?}");
    assert_eq!(
        u.sentence(),
        format!("The registry {registry} can't be reached securely: it answers in plain HTTP, not HTTPS.")
    );
    let window = u.next_step(&Advice {
        mirror: "set a registry mirror in Settings",
        insecure: "add it to Insecure registries in Settings",
    });
    assert_eq!(
        window,
        "If you trust it, add it to Insecure registries in Settings."
    );
    assert!(u.needs_setting());
    assert!(
        u.to_string().contains(&format!(
            "add \"{registry}\" to \"insecure-registries\" in daemon.json"
        )),
        "{u}"
    );
}

#[test]
fn no_route_is_said_so() {
    // A network namespace of this thread's own has no routes at all (not even loopback is
    // up), so every connect fails with "network is unreachable", like a machine offline.
    let found = std::thread::spawn(|| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Ok::<_, nix::Error>(rt.block_on(unreachable(&quick(client_config(None)), "192.0.2.10:5000")))
    })
    .join()
    .unwrap();
    let u = match found {
        Ok(u) => u,
        Err(e) => {
            eprintln!("skipped: no network namespace for this test ({e}); it needs root");
            return;
        }
    };
    assert_eq!(u.cause, Cause::NoRoute, "{u:?}");
    assert_eq!(
        u.sentence(),
        "The registry 192.0.2.10:5000 can't be reached: this computer has no network route to it."
    );
    assert_eq!(u.detail, "network is unreachable");
}

#[tokio::test]
async fn docker_hub_is_named_as_docker_hub_and_a_mirror_is_suggested() {
    // Docker Hub's endpoint pointed at a name that cannot resolve (and at a closed port):
    // the same failures a machine without internet sees, without depending on one.
    for (hub, cause) in [
        ("https://registry-1.docker.invalid/".to_string(), Cause::Dns),
        (format!("https://127.0.0.1:{}/", free_port()), Cause::Refused),
    ] {
        let client = quick(ClientConfig {
            docker_hub: hub,
            ..client_config(None)
        });
        let u = unreachable(&client, "docker.io").await;
        assert_eq!(u.cause, cause, "{u:?}");
        assert!(u.is_docker_hub());
        assert!(u.sentence().starts_with("Docker Hub can't be reached: "), "{u:?}");
        assert!(
            !u.sentence().contains("running"),
            "Docker Hub is not something one runs: {u:?}"
        );
        let step = u.next_step(&Advice {
            mirror: "set a registry mirror in Settings",
            insecure: "",
        });
        assert_eq!(
            step,
            "Check the internet connection, or set a registry mirror in Settings."
        );
        assert!(u.needs_setting());
        assert!(
            u.to_string().contains("\"registry-mirrors\" in daemon.json"),
            "{u}"
        );
    }
}

#[tokio::test]
async fn a_mirror_that_fails_too_is_named_in_the_advice_and_the_details() {
    let mirror = format!("127.0.0.1:{}", free_port());
    let client = quick(ClientConfig {
        docker_hub: "https://registry-1.docker.invalid/".into(),
        mirrors: vec![format!("http://{mirror}")],
        ..client_config(None)
    });
    let u = unreachable(&client, "docker.io").await;
    assert_eq!(u.cause, Cause::Dns, "Docker Hub's own failure leads: {u:?}");
    assert_eq!(u.mirrors, Mirrors::Unreachable);
    assert!(
        u.detail
            .ends_with(&format!("; mirror {mirror}: connection refused")),
        "{u:?}"
    );
    let step = u.next_step(&Advice {
        mirror: "set a registry mirror in Settings",
        insecure: "",
    });
    assert_eq!(
        step,
        "Check the internet connection, and the registry mirror's address: it failed too."
    );
    assert!(u.needs_setting());
}

#[test]
fn messages_without_the_marker_are_not_read_as_unreachable() {
    assert_eq!(Unreachable::parse("manifest unknown"), None);
    assert_eq!(
        Unreachable::parse("x [code=registry-unreachable.bogus registry=a] y"),
        None
    );
    let u = Unreachable::parse(
        "Error: Docker Hub can't be reached: … [code=registry-unreachable.proxy registry=docker.io proxy=10.0.0.1:3128] tcp connect error",
    )
    .unwrap();
    assert_eq!(u.cause, Cause::Proxy);
    assert_eq!(u.proxy.as_deref(), Some("10.0.0.1:3128"));
    assert_eq!(u.detail, "tcp connect error");
    assert!(!u.pushing);

    // TLS: a certificate rustls refused is told apart from other handshake failures.
    let cert = Unreachable::parse(
        "… [code=registry-unreachable.tls registry=reg.lan] invalid peer certificate: UnknownIssuer",
    )
    .unwrap();
    assert_eq!(
        cert.sentence(),
        "The registry reg.lan can't be reached securely: its HTTPS certificate was not accepted."
    );

    // A push to Docker Hub: a mirror (pull-only) is no help, so none is suggested.
    let push = Unreachable::parse(
        "Docker Hub can't be reached … [code=registry-unreachable.dns registry=docker.io op=push] dns error",
    )
    .unwrap();
    assert!(push.pushing && !push.needs_setting());
    let advice = Advice {
        mirror: "set a registry mirror",
        insecure: "",
    };
    assert_eq!(
        push.next_step(&advice),
        "Check the internet connection, then try again."
    );
    assert_eq!(Unreachable::parse(&push.to_string()), Some(push));
}
