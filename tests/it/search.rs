//! Image search (issue 15): `berth search`, the docker CLI's `docker search` and the
//! Engine API's `GET /images/search`. A private registry (the CNCF registry, on loopback)
//! is searched through its catalog; docker.io through Docker Hub's search API, here a
//! loopback server answering in that API's documented shape (Docker Hub is out of reach).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use berth_tests::berth::Berth;
use berth_tests::daemon::Daemon;
use berth_tests::registry::{Mode, Registry};

/// Docker Hub's `GET /v1/search` answer for "python", in its documented shape.
const HUB_ANSWER: &str = r#"{"num_pages":1,"num_results":3,"page_size":25,"page":1,"query":"python","results":[
 {"name":"python","description":"Python is an interpreted, interactive, object-oriented, open-source programming language.","star_count":9876,"is_official":true,"is_automated":false},
 {"name":"pypy","description":"PyPy is a fast, compliant alternative implementation of Python.","star_count":380,"is_official":true,"is_automated":false},
 {"name":"someone/python-tools","description":"tools","star_count":2,"is_official":false,"is_automated":true}]}"#;

/// A loopback stand-in for Docker Hub's index: answers every request with `HUB_ANSWER`
/// and records the request lines.
fn fake_hub() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            log.lock().unwrap().push(line.trim().to_string());
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
            }
            let mut c = conn;
            let _ = write!(
                c,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{HUB_ANSWER}",
                HUB_ANSWER.len()
            );
        }
    });
    (url, seen)
}

#[test]
fn search_a_private_registrys_catalog_and_docker_hub() {
    let reg = Registry::start(Mode::Plain);
    let busybox = berth_tests::fixtures::image("busybox");
    for repo in ["demo/busybox:latest", "demo/tools:1", "other/thing:latest"] {
        reg.push_fixture(&busybox, repo);
    }
    let (hub, seen) = fake_hub();
    let b = Berth::new().with_env("BERTH_DOCKER_HUB_INDEX_URL", &hub);
    let search = |args: &[&str]| {
        let mut all = vec!["search"];
        all.extend_from_slice(args);
        berth_tests::daemon::run_of(&mut b.command(&all))
    };
    let host = reg.host();

    let r = search(&[&format!("{host}/demo")]);
    assert_eq!(r.code, 0, "{r:?}");
    let names: Vec<&str> = r
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        names,
        [format!("{host}/demo/busybox"), format!("{host}/demo/tools")]
    );
    assert!(r.stdout.starts_with("NAME "), "{r:?}");
    let one = search(&["--limit", "1", &format!("{host}/demo")]);
    assert_eq!(one.stdout.lines().count(), 2, "{one:?}");

    // docker.io: Docker Hub's search, with its stars and official marks.
    let r = search(&["python"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("python ") && l.contains("9876") && l.ends_with("[OK]")),
        "{r:?}"
    );
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .any(|l| l.starts_with("GET /v1/search?q=python&n=25 ")),
        "{seen:?}"
    );
    let official = search(&["--filter", "is-official=true", "python"]);
    assert_eq!(official.stdout.lines().count(), 3, "{official:?}");
    let starred = search(&["--filter", "stars=100", "python"]);
    assert_eq!(starred.stdout.lines().count(), 3, "{starred:?}");

    // Nothing to search for, and a Docker Hub that does not answer: one sentence each.
    let r = search(&[" "]);
    assert!(
        r.code != 0 && r.stderr.contains("give a word to search for"),
        "{r:?}"
    );
    let gone = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", gone.local_addr().unwrap());
    drop(gone);
    let mut cmd = b.command(&["search", "python"]);
    cmd.env("BERTH_DOCKER_HUB_INDEX_URL", &url);
    let r = berth_tests::daemon::run_of(&mut cmd);
    let lines: Vec<&str> = r.stderr.trim().lines().collect();
    assert!(
        r.code != 0
            && lines.len() == 2
            && lines[0].starts_with("Error: Docker Hub can't be reached")
            && lines[1].starts_with("Details: "),
        "one sentence and the low-level words: {r:?}"
    );

    // The docker CLI v28 and the API's filters, against berth daemon.
    let d = Daemon::start(&b);
    let docker = d.docker(b.docker_config(), &["search", &format!("{host}/tools")]);
    assert_eq!(docker.code, 0, "{docker:?}");
    assert!(
        docker.stdout.contains(&format!("{host}/demo/tools")),
        "{docker:?}"
    );
    let docker = d.docker(
        b.docker_config(),
        &["search", "--filter", "is-automated=true", "python"],
    );
    assert!(
        docker.stdout.contains("someone/python-tools") && !docker.stdout.contains("pypy"),
        "{docker:?}"
    );
    let bad = d.request(
        "GET",
        "/images/search?term=python&filters=%7B%22nope%22%3A%5B%22x%22%5D%7D",
        None,
    );
    assert_eq!(bad.status, 400, "an unknown filter is refused");
}
