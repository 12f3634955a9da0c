//! A failure leaves nothing that blocks the engine (issue 14): a start that fails at any
//! step releases what it made (mounts, network namespace, veth, address, cgroup, bound
//! port, the record of a `--rm` run), and an engine that finds a damaged container (record
//! cut short, root filesystem gone) still starts, lists it as dead, and `rm` removes it.
//! Failures are real ones (a missing command, a taken port, a bind the kernel refuses)
//! or injected at a named step of the start with `BERTH_FAIL_AT`.

use std::path::{Path, PathBuf};

use berth_tests::berth::Berth;
use berth_tests::daemon::Daemon;
use berth_tests::registry::Registry;

/// The steps of a start `BERTH_FAIL_AT` names, in the order a start takes them.
const STEPS: [&str; 6] = ["cgroup", "rootfs", "volumes", "network", "ports", "shim"];

fn setup() -> (Registry, Berth) {
    berth_tests::registry::store_with_busybox()
}

/// Cgroup directories named after `id`, anywhere in the cgroup hierarchies.
fn cgroups_of(id: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, id: &str, depth: usize, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if e.file_name().to_string_lossy() == id {
                out.push(e.path());
            } else if depth > 0 {
                walk(&e.path(), id, depth - 1, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(Path::new("/sys/fs/cgroup"), id, 3, &mut out);
    out
}

/// Everything a start of container `id` could have left on the machine; empty when it
/// left nothing.
fn leftovers(b: &Berth, id: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root = std::fs::canonicalize(b.root()).unwrap();
    for line in mounts.lines() {
        let point = line.split(' ').nth(4).unwrap_or_default();
        if point.starts_with(&root.display().to_string()) || point.contains(id) {
            found.push(format!("mount {point}"));
        }
    }
    let netns = Path::new("/run/berth/netns").join(id);
    if netns.exists() {
        found.push(format!("netns {}", netns.display()));
    }
    let veth = format!("/sys/class/net/{}", berth_net::veth_name(id));
    if Path::new(&veth).exists() {
        found.push(veth);
    }
    for cg in cgroups_of(id) {
        found.push(format!("cgroup {}", cg.display()));
    }
    let state = std::fs::read_to_string("/var/lib/berth/network/state.json").unwrap_or_default();
    if state.contains(id) {
        found.push("an address lease in /var/lib/berth/network/state.json".into());
    }
    found
}

fn full_id(b: &Berth, name: &str) -> String {
    b.ok(&["inspect", "-f", "{{.Id}}", name]).trim().to_string()
}

fn assert_check_clean(b: &Berth, after: &str) {
    let check = b.run(&["system", "check"]);
    assert_eq!(
        check.code, 0,
        "after {after}, `system check` is not clean:\n{}{}",
        check.stdout, check.stderr
    );
}

#[test]
fn a_start_that_fails_at_any_step_leaves_nothing() {
    let (_reg, b) = setup();
    let port = berth_tests::free_port().to_string();
    let publish = format!("127.0.0.1:{port}:80");
    for step in STEPS {
        // A kept container: its start fails, and it can be started again once the fault
        // is gone (the failed start left nothing in its way).
        let name = format!("kept-{step}");
        b.ok(&[
            "create", "--name", &name, "-p", &publish, "-v", "/data", "busybox", "sleep", "60",
        ]);
        let id = full_id(&b, &name);
        let r = b
            .command(&["start", &name])
            .env("BERTH_FAIL_AT", step)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert!(!r.status.success(), "{step}: the start did not fail");
        assert!(
            stderr.contains(&format!("failed at step {step}")) && !stderr.contains("panicked"),
            "{step}: {stderr}"
        );
        assert_eq!(
            leftovers(&b, &id),
            Vec::<String>::new(),
            "{step}: a failed start left these"
        );
        let state = b.ok(&["inspect", "-f", "{{.State.Status}}", &name]);
        assert_ne!(state.trim(), "dead", "{step}: the container was not released");
        // The port it would have published is free again.
        drop(std::net::TcpListener::bind(format!("127.0.0.1:{port}")).expect("the port is free"));
        assert_check_clean(&b, &format!("a start failed at {step}"));
        b.ok(&["start", &name]);
        assert_eq!(
            b.ok(&["inspect", "-f", "{{.State.Status}}", &name]).trim(),
            "running",
            "{step}: a start after the failed one"
        );
        // The probe sees what a run holds (so its silence above means something).
        let held = leftovers(&b, &id);
        assert!(
            held.iter().any(|l| l.starts_with("mount")) && held.iter().any(|l| l.starts_with("cgroup")),
            "{step}: a running container holds mounts and a cgroup: {held:?}"
        );
        b.ok(&["rm", "-f", &name]);
        assert_eq!(
            leftovers(&b, &id),
            Vec::<String>::new(),
            "{step}: rm -f left these"
        );

        // A `--rm` run: the failed start removes the container too.
        let r = b
            .command(&[
                "run",
                "-d",
                "--rm",
                "--name",
                &format!("gone-{step}"),
                "-p",
                &publish,
                "busybox",
                "sleep",
                "60",
            ])
            .env("BERTH_FAIL_AT", step)
            .output()
            .unwrap();
        assert!(!r.status.success(), "{step}: run --rm did not fail");
        assert_eq!(
            b.ok(&["ps", "-aq"]).trim(),
            "",
            "{step}: the --rm run's record is left"
        );
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let root = std::fs::canonicalize(b.root()).unwrap().display().to_string();
        assert!(!mounts.contains(&root), "{step}: a mount under the store is left");
    }
    assert_check_clean(&b, "every injected failure");
    // The engine starts again, as a daemon and as a command's own.
    let mut d = Daemon::start(&b);
    assert_eq!(d.request("GET", "/_ping", None).text(), "OK");
    d.stop();
    b.ok(&["ps", "-a"]);
}

#[test]
fn real_start_failures_leave_nothing() {
    let (_reg, b) = setup();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let cases: [(&str, Vec<String>, &str); 3] = [
        (
            "nocmd",
            vec!["busybox".into(), "/no/such/command".into()],
            "/no/such/command",
        ),
        (
            "taken",
            vec![
                "-p".into(),
                format!("127.0.0.1:{port}:80"),
                "busybox".into(),
                "true".into(),
            ],
            "in use",
        ),
        // A file bound over a directory: the kernel refuses the mount inside the
        // container's set-up, after the engine made everything else.
        (
            "badmount",
            vec![
                "-v".into(),
                "/etc/hostname:/bin".into(),
                "busybox".into(),
                "true".into(),
            ],
            "/bin",
        ),
    ];
    for (name, args, says) in &cases {
        let mut create = vec!["create", "--name", name];
        create.extend(args.iter().map(String::as_str));
        b.ok(&create);
        let id = full_id(&b, name);
        let r = b.fails(&["start", name]);
        assert!(r.stderr.contains(says), "{name}: {}", r.stderr);
        assert_eq!(
            r.stderr.trim().lines().count(),
            1,
            "{name}: one sentence: {}",
            r.stderr
        );
        assert_eq!(
            leftovers(&b, &id),
            Vec::<String>::new(),
            "{name}: a failed start left these"
        );
        assert_check_clean(&b, &format!("the failed start of {name}"));
        b.ok(&["rm", name]);

        let mut run = vec!["run", "--rm"];
        run.extend(args.iter().map(String::as_str));
        b.fails(&run);
        assert_eq!(
            b.ok(&["ps", "-aq"]).trim(),
            "",
            "{name}: the --rm run's record is left"
        );
    }
    drop(taken);
    assert_check_clean(&b, "the real failures");
    let mut d = Daemon::start(&b);
    assert_eq!(d.request("GET", "/_ping", None).text(), "OK");
    d.stop();
}

#[test]
fn a_damaged_container_is_listed_dead_and_removable() {
    let (_reg, b) = setup();
    b.ok(&["create", "--name", "cut", "busybox", "true"]);
    b.ok(&["run", "--name", "bare", "busybox", "true"]);
    b.ok(&["create", "--name", "fine", "busybox", "true"]);
    let (cut, bare) = (full_id(&b, "cut"), full_id(&b, "bare"));
    let containers = b.root().join("containers");
    // A record cut short (as a lost write leaves it) and a root filesystem directory gone.
    let record = containers.join(&cut).join("config.json");
    let bytes = std::fs::read(&record).unwrap();
    std::fs::write(&record, &bytes[..bytes.len() / 3]).unwrap();
    std::fs::remove_dir_all(containers.join(&bare).join("rootfs")).unwrap();
    // And a record that is missing altogether.
    let nameless = "ab".repeat(32);
    std::fs::create_dir_all(containers.join(&nameless).join("upper")).unwrap();

    // A command's own engine starts and lists them, dead, beside the sound one.
    let ps = b.ok(&["ps", "-a", "--format", "{{.Names}}|{{.State}}|{{.Status}}"]);
    let row = |name: &str| {
        ps.lines()
            .find(|l| l.starts_with(&format!("{name}|")))
            .unwrap_or_else(|| panic!("{name} is not listed:\n{ps}"))
            .to_string()
    };
    assert!(
        row("cut").starts_with("cut|dead|Dead: its record is damaged"),
        "{ps}"
    );
    assert!(
        row("bare").contains("|dead|Dead: its root filesystem directory is missing"),
        "{ps}"
    );
    assert!(
        row(&nameless[..12]).contains("|dead|Dead: its record is missing"),
        "{ps}"
    );
    assert!(row("fine").starts_with("fine|created|"), "{ps}");
    // Starting one says what is wrong and what to do, in one sentence.
    let r = b.fails(&["start", "bare"]);
    assert!(
        r.stderr.contains("container bare is dead") && r.stderr.contains("berth rm bare"),
        "{}",
        r.stderr
    );

    // `system check` names them, and what to do.
    let check = b.run(&["system", "check"]);
    assert_eq!(check.code, 1, "{}{}", check.stdout, check.stderr);
    assert!(
        check.stdout.contains(
            "container bare is dead: its root filesystem directory is missing — remove it with `berth rm bare`"
        ),
        "{}",
        check.stdout
    );
    assert!(
        check.stdout.contains(&format!(
            "{} holds a container with no readable record",
            containers.join(&cut).display()
        )),
        "{}",
        check.stdout
    );

    // `berth daemon` starts too, and the API shows them as docker shows dead containers.
    let mut d = Daemon::start(&b);
    let list = d.request("GET", "/containers/json?all=1", None).json();
    let by_id = |id: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|c| c["Id"] == id)
            .unwrap_or_else(|| panic!("{id} not in {list}"))
            .clone()
    };
    assert_eq!(by_id(&cut)["State"], "dead");
    assert_eq!(by_id(&bare)["State"], "dead");
    let inspect = d.request("GET", &format!("/containers/{bare}/json"), None).json();
    assert_eq!(inspect["State"]["Status"], "dead");
    assert_eq!(inspect["State"]["Dead"], true);
    let removed = d.request("DELETE", &format!("/containers/{cut}"), None);
    assert_eq!(removed.status, 204, "{}", removed.text());
    d.stop();

    // `rm` removes the rest, whatever is already gone.
    b.ok(&["rm", "bare", &nameless[..12]]);
    assert_eq!(
        b.ok(&["ps", "-aq"]).trim().lines().count(),
        1,
        "only `fine` is left"
    );
    for id in [&cut, &bare, &nameless] {
        assert!(!containers.join(id).exists(), "{id}'s directory is left");
    }
    assert_check_clean(&b, "removing the dead containers");
    b.ok(&["rm", "fine"]);
}

#[test]
fn a_run_that_cannot_be_released_is_dead_and_rm_removes_it() {
    let (_reg, b) = setup();
    let with_fault = |args: &[&str]| {
        let out = b.command(args).env("BERTH_FAIL_AT", "release").output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let state = |name: &str| {
        b.ok(&["inspect", "-f", "{{.State.Status}}", name])
            .trim()
            .to_string()
    };
    // The run ends and every release of it fails (the shim's too: it inherits the fault).
    let (code, _, err) = with_fault(&["run", "--name", "stuck", "busybox", "true"]);
    assert_eq!(
        code,
        Some(0),
        "the run's own exit code, not a hang or an error: {err}"
    );
    let id = full_id(&b, "stuck");
    let (code, ps, err) = with_fault(&["ps", "-a", "--format", "{{.Names}}|{{.State}}|{{.Status}}"]);
    assert_eq!(code, Some(0), "ps lists what it cannot release: {err}");
    assert!(
        ps.contains("stuck|dead|Dead: releasing its last run failed (failed at step release"),
        "{ps}"
    );
    let (code, _, err) = with_fault(&["start", "stuck"]);
    assert_ne!(code, Some(0));
    assert!(
        err.contains("container stuck is dead") && err.contains("berth rm stuck"),
        "{err}"
    );
    // Once the release works, the container is released and usable again: a start tries
    // it first.
    assert_eq!(state("stuck"), "dead");
    assert_eq!(b.ok(&["start", "-a", "stuck"]), "");
    // The run's shim releases it a moment after `start -a` returns; a `ps` releases it
    // now if the shim has not finished.
    b.ok(&["ps", "-a"]);
    assert_eq!(leftovers(&b, &id), Vec::<String>::new());

    // Run and dead again (a start refuses nothing that was released); `rm` removes it
    // with what can be released.
    let (code, _, err) = with_fault(&["start", "-a", "stuck"]);
    assert_eq!(code, Some(0), "{err}");
    with_fault(&["ps", "-a"]);
    assert_eq!(state("stuck"), "dead");
    let (code, _, err) = with_fault(&["rm", "stuck"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(b.ok(&["ps", "-aq"]).trim(), "");
    assert_eq!(leftovers(&b, &id), Vec::<String>::new());
    assert_check_clean(&b, "removing a dead container");
}
