//! The first error a student sees offline: `berth pull flask` with no route to Docker Hub
//! (its endpoint pointed at a name that cannot resolve, so the test does not depend on
//! this machine being offline), and a registry on a closed port. The same first sentence
//! in-process, through `BERTH_HOST`, and from the docker CLI; the low-level words only on
//! a details line; never a backtrace.

use berth_tests::berth::{Berth, Run};
use berth_tests::daemon::{run_of, Daemon};

/// Docker Hub where nothing resolves (read by the engine: `berth_api::DOCKER_HUB_ENV`).
const NO_HUB: (&str, &str) = ("BERTH_DOCKER_HUB_URL", "https://registry-1.docker.invalid/");
const HUB_SENTENCE: &str = "Docker Hub can't be reached: its address could not be looked up.";

fn assert_plain(r: &Run) {
    assert_eq!(r.code, 1, "{r:?}");
    for bad in ["panicked", "stack backtrace", "[code=", "RUST_BACKTRACE"] {
        assert!(!r.stderr.contains(bad), "{bad:?} in:\n{}", r.stderr);
    }
}

#[test]
fn unreachable_registries_get_one_plain_sentence_in_process_and_through_the_api() {
    // Inherited by the daemon started below, which is the engine for BERTH_HOST.
    std::env::set_var(NO_HUB.0, NO_HUB.1);

    // In-process.
    let b = Berth::new();
    let r = b.fails(&["pull", "flask"]);
    assert_plain(&r);
    let daemon_json = b.root().join("daemon.json");
    let mut lines = r.stderr.lines();
    assert_eq!(
        lines.next(),
        Some(
            format!(
                "Error: {HUB_SENTENCE} Check the internet connection, or pull through a registry mirror \
                 (`berth --registry-mirror URL pull …`, or \"registry-mirrors\" in {}).",
                daemon_json.display()
            )
            .as_str()
        ),
        "{}",
        r.stderr
    );
    let details = lines.next().unwrap_or_default();
    assert!(
        details.starts_with("Details: ") && details.to_lowercase().contains("lookup"),
        "the resolver's words go to the details line: {}",
        r.stderr
    );
    assert_eq!(lines.next(), None, "{}", r.stderr);

    // A registry the student names: named as typed, with its own next step.
    let port = berth_tests::free_port();
    let r = b.fails(&["pull", &format!("127.0.0.1:{port}/x/y")]);
    assert_plain(&r);
    assert!(
        r.stderr.starts_with(&format!(
            "Error: The registry 127.0.0.1:{port} can't be reached: nothing is listening at that address. \
             Check the host and port, and that the registry is running.\nDetails: connection refused"
        )),
        "{}",
        r.stderr
    );

    // Through BERTH_HOST: the daemon's message, the same first sentence.
    let server = Berth::new();
    let d = Daemon::start(&server);
    let mut c = b.command(&["pull", "flask"]);
    c.env("BERTH_HOST", d.host());
    let r = run_of(&mut c);
    assert_plain(&r);
    assert!(
        r.stderr.starts_with(&format!(
            "Error: {HUB_SENTENCE} Check the internet connection, or set a registry mirror \
             (\"registry-mirrors\" in daemon.json).\nDetails: "
        )),
        "{}\n{}",
        r.stderr,
        d.log()
    );

    // The docker CLI shows the engine's message as it is (marker and all).
    let r = d.docker(b.docker_config(), &["pull", "flask"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains(HUB_SENTENCE), "{}", r.stderr);
}
