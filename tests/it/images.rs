//! The image commands of the `berth` binary against a real CNCF registry, with fixture
//! images made by buildah/skopeo/umoci and checked back by skopeo.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use berth_tests::berth::Berth;
use berth_tests::fault::{Fault, FaultProxy};
use berth_tests::fixtures;
use berth_tests::registry::{Mode, Registry};
use berth_tests::tools;

fn skopeo(args: &[&str]) -> String {
    let bin = tools::require("skopeo", "skopeo");
    let out = std::process::Command::new(bin)
        .args(args)
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn inspect(b: &Berth, image: &str, format: &str) -> String {
    b.ok(&["image", "inspect", "--format", format, image])
        .trim()
        .to_string()
}

#[test]
fn pulls_every_fixture_kind_and_unpacks_it_for_overlayfs() {
    let reg = Registry::start(Mode::Plain);
    let b = Berth::new();
    for name in ["busybox", "zstd", "whiteout"] {
        let digest = reg.push_fixture(&fixtures::image(name), &format!("t/{name}:latest"));
        let image = reg.reference(&format!("t/{name}"));
        let out = b.ok(&["pull", &image]);
        assert!(out.contains(&format!("Digest: {digest}")), "{out}");
        assert!(out.contains("Status: Downloaded newer image"), "{out}");
        assert!(out.trim_end().ends_with(&format!("{image}:latest")), "{out}");
        // A second pull finds everything in place.
        let again = b.ok(&["pull", &image]);
        assert!(again.contains("Status: Image is up to date"), "{again}");
        let repo_digests = inspect(&b, &image, "{{json .RepoDigests}}");
        assert!(repo_digests.contains(&digest), "{repo_digests}");
    }
    let busybox = reg.reference("t/busybox");
    let zstd = reg.reference("t/zstd");
    // The same content through gzip and zstd layers.
    let motd = b
        .read_in_image(&busybox, "etc/motd")
        .expect("busybox has /etc/motd");
    assert_eq!(b.read_in_image(&zstd, "etc/motd").as_ref(), Some(&motd));
    let sh = b.layer_dirs(&busybox)[0].join("bin/busybox");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&sh).unwrap().permissions());
    assert!(mode & 0o111 != 0, "busybox must stay executable");
    let meta = std::fs::read_to_string(b.root().join("metadata.json")).unwrap();
    assert!(
        meta.contains("tar+zstd"),
        "zstd layers are recorded with their media type"
    );

    // Whiteouts become overlayfs whiteouts: char 0/0 and an opaque directory.
    let whiteout = reg.reference("t/whiteout");
    let layers = b.layer_dirs(&whiteout);
    assert_eq!(layers.len(), 3);
    let gone = layers[1].join("data/gone");
    let md = std::fs::symlink_metadata(&gone).expect("whiteout for /data/gone");
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    assert!(
        md.file_type().is_char_device() && md.rdev() == 0,
        "{gone:?} is a 0/0 char device"
    );
    let mut buf = [0u8; 8];
    let n = rustix::fs::getxattr(layers[1].join("olddir"), "trusted.overlay.opaque", &mut buf)
        .expect("opaque xattr");
    assert_eq!(&buf[..n], b"y");
    assert!(!layers[1].join("olddir/.wh..wh..opq").exists());
    assert!(layers[1].join("olddir/y").is_file());

    let images = b.ok(&["images"]);
    let header = images.lines().next().unwrap();
    for col in ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"] {
        assert!(header.contains(col), "{header}");
    }
    assert_eq!(images.lines().count(), 4, "{images}");
    b.assert_store_consistent();
}

#[test]
fn multiarch_index_selects_the_platform() {
    let reg = Registry::start(Mode::Plain);
    let b = Berth::new();
    let index_digest = reg.push_fixture(&fixtures::image("multiarch"), "t/multi:latest");
    let image = reg.reference("t/multi");
    let out = b.ok(&["pull", &image]);
    assert!(
        out.contains(&format!("Digest: {index_digest}")),
        "pull reports the index digest: {out}"
    );
    assert_eq!(inspect(&b, &image, "{{.Architecture}}"), "amd64");
    assert_eq!(b.read_in_image(&image, "etc/arch").unwrap(), b"amd64\n");

    b.ok(&["pull", "--platform", "linux/arm64", &image]);
    assert_eq!(inspect(&b, &image, "{{.Architecture}}"), "arm64");
    assert_eq!(b.read_in_image(&image, "etc/arch").unwrap(), b"arm64\n");

    let r = b.fails(&["pull", "--platform", "linux/s390x", &image]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("linux/s390x") && r.stderr.contains("linux/arm64"),
        "{}",
        r.stderr
    );
    let r = b.fails(&["pull", "--platform", "linux", &image]);
    assert!(r.stderr.contains("os/arch"), "{}", r.stderr);
    b.assert_store_consistent();
}

#[test]
fn push_is_read_back_by_skopeo_and_pulled_back() {
    let reg = Registry::start(Mode::Plain);
    let b = Berth::new();
    reg.push_fixture(&fixtures::image("busybox"), "t/busybox:latest");
    let src = reg.reference("t/busybox");
    b.ok(&["pull", &src]);
    let dst = reg.reference("students/my-image:v1.0");
    b.ok(&["tag", &src, &dst]);
    let out = b.ok(&["push", &dst]);
    // "v1.0: digest: sha256:… size: N", as docker prints it.
    let line = out.lines().find(|l| l.starts_with("v1.0: digest: ")).expect(&out);
    let digest = line.split_whitespace().nth(2).unwrap().to_string();
    assert!(
        out.contains("Mounted from t/busybox") || out.contains("Already exists"),
        "{out}"
    );

    // An independent reader: skopeo sees the same manifest digest and can copy it.
    let raw = reg.skopeo_raw_manifest("students/my-image:v1.0");
    assert_eq!(berth_tests::sha256_digest(&raw), digest);
    let oci = tempfile::tempdir().unwrap();
    let dest = format!("oci:{}:x", oci.path().display());
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{dst}"),
        &dest,
    ]);

    // Another store pulls it back: same image ID.
    let other = Berth::new();
    other.ok(&["pull", &dst]);
    assert_eq!(inspect(&other, &dst, "{{.Id}}"), inspect(&b, &src, "{{.Id}}"));

    // A blob-by-blob push (no mount source): a fresh store, a new repository.
    other.ok(&["tag", &dst, &reg.reference("fresh/copy:1")]);
    let out = other.ok(&["push", &reg.reference("fresh/copy:1")]);
    assert!(out.contains("1: digest: "), "{out}");
    other.assert_store_consistent();
}

#[test]
fn htpasswd_registry_needs_login() {
    let reg = Registry::start(Mode::htpasswd("student", "s3cret"));
    reg.push_fixture(&fixtures::image("busybox"), "private/app:latest");
    let b = Berth::new();
    let image = reg.reference("private/app");
    let host = reg.host();

    let r = b.fails(&["pull", &image]);
    assert!(r.stderr.contains(&format!("berth login {host}")), "{}", r.stderr);

    let login = |user: &str, pass: &str| {
        let mut child = b
            .command(&["login", "-u", user, "--password-stdin", &host])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{pass}\n").as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let wrong = login("student", "nope");
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).starts_with("Error: "));
    let right = login("student", "s3cret");
    assert!(
        right.status.success(),
        "{}",
        String::from_utf8_lossy(&right.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&right.stdout).trim(), "Login Succeeded");
    let config = std::fs::read_to_string(b.docker_config().join("config.json")).unwrap();
    assert!(
        config.contains(&host),
        "credentials stored under the server: {config}"
    );

    b.ok(&["pull", &image]);
    b.ok(&["tag", &image, &reg.reference("private/app:v2")]);
    b.ok(&["push", &reg.reference("private/app:v2")]);
    assert!(b.ok(&["logout", &host]).contains("Removing login credentials"));
    b.ok(&["rmi", &reg.reference("private/app:v2")]);
    let r = b.fails(&["pull", &reg.reference("private/app:v2")]);
    assert!(r.stderr.contains("login"), "{}", r.stderr);
}

#[test]
fn docker_hub_conventions_through_a_token_auth_mirror() {
    // A registry configured like Docker Hub: bearer tokens from a realm, official images
    // under library/, a manifest list. Berth reaches it as docker.io through a mirror.
    let reg = Registry::start(Mode::token("hubuser", "hubpass"));
    reg.push_fixture(&fixtures::image("multiarch"), "library/busybox:latest");
    reg.push_fixture(&fixtures::image("busybox"), "someuser/tool:1.0");
    let mirror = format!("http://{}", reg.host());
    let b = Berth::new().with_global(&["--registry-mirror", &mirror]);
    let mut child = b
        .command(&["login", "-u", "hubuser", "--password-stdin", &reg.host()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hubpass\n").unwrap();
    assert!(child.wait().unwrap().success());

    let out = b.ok(&["pull", "busybox"]);
    assert!(out.contains("Using default tag: latest"), "{out}");
    assert!(out.contains("latest: Pulling from library/busybox"), "{out}");
    assert!(
        out.trim_end().ends_with("docker.io/library/busybox:latest"),
        "{out}"
    );
    b.ok(&["pull", "someuser/tool:1.0"]);
    let images = b.ok(&["images"]);
    assert!(
        images
            .lines()
            .any(|l| l.starts_with("busybox ") && l.contains("latest")),
        "{images}"
    );
    assert!(
        images
            .lines()
            .any(|l| l.starts_with("someuser/tool ") && l.contains("1.0")),
        "{images}"
    );
    let digests = inspect(&b, "busybox", "{{json .RepoDigests}}");
    assert!(digests.contains("\"busybox@sha256:"), "{digests}");
    assert_eq!(
        inspect(&b, "docker.io/library/busybox:latest", "{{.Id}}"),
        inspect(&b, "busybox", "{{.Id}}")
    );
    let (issued, _) = reg.token_stats().unwrap();
    assert!(issued > 0, "tokens came from the realm");

    // Push to the token registry by its own name: a push scope is granted.
    b.ok(&["tag", "busybox", &reg.reference("hubuser/mine:v1")]);
    b.ok(&["push", &reg.reference("hubuser/mine:v1")]);
    let raw = reg.skopeo_raw_manifest("hubuser/mine:v1");
    assert!(!raw.is_empty());
    // Not on the mirror: docker falls back to Docker Hub itself, which is out of reach here
    // (pointed at a name that cannot resolve, so this holds on a machine with internet too).
    let mut c = b.command(&["pull", "flsk"]);
    c.env("BERTH_DOCKER_HUB_URL", "https://registry-1.docker.invalid/");
    let r = berth_tests::daemon::run_of(&mut c);
    assert_eq!(r.code, 1, "{r:?}");
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some(
            "Error: Docker Hub can't be reached: its address could not be looked up. \
             Check the image name (the registry mirror does not have it), or the internet connection."
        ),
        "{}",
        r.stderr
    );
    assert!(
        lines.len() == 2 && lines[1].starts_with("Details: ") && lines[1].contains("was not found"),
        "one sentence, then the details: {}",
        r.stderr
    );
}

#[test]
fn malicious_layers_are_refused_and_leave_nothing() {
    let reg = Registry::start(Mode::Plain);
    let b = Berth::new();
    for name in ["dotdot", "absolute", "symlink_escape", "hardlink_escape"] {
        let layout = fixtures::ensure().join("malicious").join(name);
        reg.push_fixture(&layout, &format!("evil/{name}:latest"));
        let r = b.fails(&["pull", &reg.reference(&format!("evil/{name}"))]);
        assert_eq!(r.code, 1);
        assert!(r.stderr.contains("outside the layer"), "{name}: {}", r.stderr);
        assert!(
            r.stderr.contains("tar entry '"),
            "{name}: the entry is named: {}",
            r.stderr
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir("/tmp")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("berth-escape"))
        .collect();
    assert!(leftovers.is_empty(), "something escaped: {leftovers:?}");
    assert_eq!(b.ok(&["images", "-q"]).trim(), "", "no image was recorded");
    let layers: Vec<_> = std::fs::read_dir(b.root().join("layers")).unwrap().collect();
    assert!(layers.is_empty(), "no half-unpacked layer is left: {layers:?}");
    b.assert_store_consistent();
}

#[test]
fn registry_faults_are_retried_or_reported_clearly() {
    let reg = Registry::start(Mode::Plain);
    reg.push_fixture(&fixtures::image("busybox"), "t/busybox:latest");
    let proxy = FaultProxy::start(reg.addr(), Fault::None);
    let image = format!("{}/t/busybox", proxy.host());
    for fault in [
        Fault::Status503 { times: 2 },
        Fault::CutConnection { times: 2 },
        Fault::Truncate {
            after_bytes: 50_000,
            times: 3,
        },
        Fault::CorruptByte { nth_request: 1 },
    ] {
        proxy.set_fault(fault);
        let b = Berth::new();
        b.ok(&["pull", &image]);
        assert!(
            proxy.faults_injected() >= 1,
            "{fault:?} was injected: {:?}",
            proxy.log()
        );
        b.assert_store_consistent();
        if matches!(fault, Fault::Truncate { .. }) {
            assert!(
                proxy.log().iter().any(|l| l.contains("[bytes=50000-")),
                "a cut download resumes with a Range request: {:?}",
                proxy.log()
            );
        }
    }
    // A registry that keeps failing: a clear error, no image, a consistent store.
    proxy.set_fault(Fault::Status503 { times: 1000 });
    let b = Berth::new();
    let r = b.fails(&["pull", &image]);
    assert!(
        r.stderr.contains("503") || r.stderr.to_lowercase().contains("unavailable"),
        "{}",
        r.stderr
    );
    assert_eq!(b.ok(&["images", "-q"]).trim(), "");
    b.assert_store_consistent();
    // Nobody listening.
    let port = berth_tests::free_port();
    let r = Berth::new().fails(&["pull", &format!("127.0.0.1:{port}/x/y")]);
    assert!(r.stderr.contains(&format!("127.0.0.1:{port}")), "{}", r.stderr);
}

#[test]
fn killed_pull_leaves_a_store_the_next_pull_completes() {
    let reg = Registry::start(Mode::Plain);
    reg.push_fixture(&fixtures::image("busybox"), "t/busybox:latest");
    let proxy = FaultProxy::start(
        reg.addr(),
        Fault::Throttle {
            bytes_per_sec: 100_000,
        },
    );
    let image = format!("{}/t/busybox", proxy.host());
    let b = Berth::new();
    let mut child = b
        .command(&["pull", &image])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ingest = b.root().join("ingest");
    let deadline = Instant::now() + Duration::from_secs(60);
    let partial_bytes = || -> u64 {
        std::fs::read_dir(&ingest)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .max()
            .unwrap_or(0)
    };
    while partial_bytes() < 150_000 {
        assert!(Instant::now() < deadline, "the pull never got going");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the throttled pull finished too early"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    b.assert_store_consistent();
    assert_eq!(b.ok(&["images", "-q"]).trim(), "", "no half image after kill -9");

    proxy.set_fault(Fault::None);
    b.ok(&["pull", &image]);
    assert!(
        proxy
            .log()
            .iter()
            .any(|l| l.contains("/blobs/") && l.contains("[bytes=")),
        "the second pull resumed the partial download: {:?}",
        proxy.log()
    );
    b.assert_store_consistent();
    assert_eq!(b.ok(&["images", "-q"]).lines().count(), 1);
}

#[test]
fn two_pulls_on_one_root_both_succeed() {
    let reg = Registry::start(Mode::Plain);
    reg.push_fixture(&fixtures::image("busybox"), "t/busybox:latest");
    let proxy = FaultProxy::start(
        reg.addr(),
        Fault::Throttle {
            bytes_per_sec: 2_000_000,
        },
    );
    let image = format!("{}/t/busybox", proxy.host());
    let b = Berth::new();
    let children: Vec<_> = (0..2)
        .map(|_| {
            b.command(&["pull", &image])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(b.ok(&["images", "-q"]).lines().count(), 1);
    b.assert_store_consistent();
}

#[test]
fn save_and_load_interoperate_with_skopeo() {
    let reg = Registry::start(Mode::Plain);
    reg.push_fixture(&fixtures::image("busybox"), "t/busybox:latest");
    let b = Berth::new();
    let image = reg.reference("t/busybox");
    b.ok(&["pull", &image]);
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("busybox.tar");
    b.ok(&["save", "-o", archive.to_str().unwrap(), &image]);
    // skopeo reads what berth wrote…
    let oci = dir.path().join("oci");
    skopeo(&[
        "copy",
        &format!("docker-archive:{}", archive.display()),
        &format!("oci:{}:x", oci.display()),
    ]);
    // …and berth reads it back into another store.
    let other = Berth::new();
    let out = other.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(out.contains(&format!("Loaded image: {image}:latest")), "{out}");
    assert_eq!(inspect(&other, &image, "{{.Id}}"), inspect(&b, &image, "{{.Id}}"));

    // berth reads what skopeo wrote (gzip layers turned into a docker-archive by skopeo).
    let theirs = dir.path().join("whiteout.tar");
    skopeo(&[
        "copy",
        &fixtures::oci_ref(&fixtures::image("whiteout")),
        &format!("docker-archive:{}:lecture/whiteout:v1", theirs.display()),
    ]);
    let out = other.ok(&["load", "-i", theirs.to_str().unwrap()]);
    assert!(out.contains("Loaded image: lecture/whiteout:v1"), "{out}");
    let layers = other.layer_dirs("lecture/whiteout:v1");
    assert!(layers[1].join("data/gone").symlink_metadata().is_ok());
    other.assert_store_consistent();

    // A file that is not an archive: a clear error.
    let junk = dir.path().join("junk.tar");
    std::fs::write(&junk, b"definitely not a tarball").unwrap();
    let r = other.fails(&["load", "-i", junk.to_str().unwrap()]);
    assert!(r.stderr.contains("not a docker image archive"), "{}", r.stderr);
}

#[test]
fn rmi_prune_and_garbage_collection() {
    let reg = Registry::start(Mode::Plain);
    reg.push_fixture(&fixtures::image("busybox"), "t/busybox:latest");
    reg.push_fixture(&fixtures::image("whiteout"), "t/whiteout:latest");
    let b = Berth::new();
    let (busybox, whiteout) = (reg.reference("t/busybox"), reg.reference("t/whiteout"));
    b.ok(&["pull", &busybox]);
    b.ok(&["pull", &whiteout]);
    b.ok(&["tag", &busybox, "mine:v1"]);
    let id = inspect(&b, "mine:v1", "{{.Id}}");
    let short = &id["sha256:".len()..]["".len()..12 + "".len()];

    let r = b.fails(&["rmi", short]);
    assert!(r.stderr.contains("multiple repositories"), "{}", r.stderr);
    assert_eq!(b.ok(&["rmi", "mine:v1"]).trim(), "Untagged: mine:v1");
    let out = b.ok(&["rmi", &busybox]);
    assert!(out.contains(&format!("Deleted: {id}")), "{out}");
    let blob = b.root().join("blobs/sha256").join(&id["sha256:".len()..]);
    assert!(!blob.exists(), "the config blob was collected");
    let r = b.fails(&["rmi", "mine:v1"]);
    assert!(r.stderr.contains("No such image"), "{}", r.stderr);

    // docker's `image prune -a -f` removes every unused image and their content.
    let out = b.ok(&["image", "prune", "-a", "-f"]);
    assert!(
        out.contains("Deleted Images:") && out.contains("Total reclaimed space:"),
        "{out}"
    );
    assert_eq!(b.ok(&["images", "-q"]).trim(), "");
    assert_eq!(
        std::fs::read_dir(b.root().join("blobs/sha256")).unwrap().count(),
        0
    );
    assert_eq!(std::fs::read_dir(b.root().join("layers")).unwrap().count(), 0);
    let df = b.ok(&["system", "df"]);
    assert!(
        df.lines().any(|l| l.starts_with("Images") && l.contains("0B")),
        "{df}"
    );
}

#[test]
fn bad_input_gets_one_sentence_and_docker_exit_codes() {
    let b = Berth::new();
    let r = b.fails(&["pull", "Flask"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("lower-case"), "{}", r.stderr);
    let r = b.fails(&["pull", "flask@sha256:123"]);
    assert!(r.stderr.contains("sha256:<64 hex digits>"), "{}", r.stderr);
    let r = b.run(&["images", "--bogus"]);
    assert_eq!(r.code, 125, "a wrong command line exits 125 like docker");
    let r = b.fails(&["inspect", "nothing-here"]);
    assert!(r.stderr.contains("No such image"), "{}", r.stderr);
    let r = b.fails(&["tag", "nothing-here", "x:y"]);
    assert!(r.stderr.contains("berth pull"), "{}", r.stderr);
    let r = b.fails(&["save", "-o", "/nonexistent-dir/x.tar", "nothing-here"]);
    assert_eq!(r.code, 1);
    for r in [b.fails(&["pull", "Flask"]), b.fails(&["rmi", "nope"])] {
        assert_eq!(r.stderr.lines().count(), 1, "one sentence: {}", r.stderr);
    }
}
